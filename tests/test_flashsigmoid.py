"""Tests of the FlashSigmoid Triton kernel (flashsigmoid.py).

CPU (CI): through the Triton interpreter, small shapes, fp32 and fp16 against a float64 reference.
GPU (skipped without CUDA): bf16 with the paper's criterion (kernel error <= 2x the error of a
same-precision PyTorch implementation, plus a small floor), long sequences, torch.compile.
"""
import math
import os

import pytest
import torch

if not torch.cuda.is_available():  # must precede the import of flashsigmoid (kernels are defined then)
    os.environ.setdefault("TRITON_INTERPRET", "1")

import flashsigmoid  # noqa: E402
from flashsigmoid import sigmoid_attention  # noqa: E402
from helpers import Launches  # noqa: E402
from model import sigmoid_attention_torch  # noqa: E402  the one materialised reference

CUDA = torch.cuda.is_available() and not flashsigmoid._INTERPRET
DEV = "cuda" if CUDA else "cpu"
gpu = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
cpu_only = pytest.mark.skipif(CUDA, reason="interpreter tests (CPU)")


@pytest.fixture(autouse=True)
def _fixed_config(monkeypatch):
    # one launch config per kernel: autotuning every shape of the sweep would cost minutes of compiles
    monkeypatch.setattr(flashsigmoid, "AUTOTUNE", False)
    if not CUDA:  # the interpreter's lengths are short: let them take the atomic-dQ path too
        _atomic_from(monkeypatch, 1)


def _atomic_from(monkeypatch, n):
    # the backward's atomic dQ from n keys on, pointer loads and tensor descriptors alike
    monkeypatch.setattr(flashsigmoid, "ATOMIC_DQ_MIN_LEN", n)
    monkeypatch.setattr(flashsigmoid, "ATOMIC_DQ_MIN_LEN_TMA", n)


def _inputs(B, H, Hkv, Tq, Tk, D, dtype, seed, device=DEV, alibi=True):
    g = torch.Generator().manual_seed(seed)
    mk = lambda *s: torch.randn(*s, generator=g, dtype=torch.float32).to(device=device, dtype=dtype)  # noqa: E731
    q, k, v = mk(B, H, Tq, D), mk(B, Hkv, Tk, D), mk(B, Hkv, Tk, D)
    do = mk(B, H, Tq, D)
    bias = float(torch.empty(1).uniform_(-10, 2, generator=g))
    slopes = (torch.rand(H, generator=g) * 0.3 + 0.01).to(device) if alibi else None
    return q, k, v, do, bias, slopes


def _run(fn, q, k, v, do, **kw):
    # detach, not clone: the kernel must see the caller's storage (clone would give fresh, 16-byte
    # aligned memory, hiding a misaligned input)
    q, k, v = (t.detach().requires_grad_(True) for t in (q, k, v))
    o = fn(q, k, v, **kw)
    dq, dk, dv = torch.autograd.grad(o, (q, k, v), do)
    return o, dq, dk, dv


def _ref64(q, k, v, do, causal, bias, slopes, window=None):
    return _run(lambda a, b, c, **kw: sigmoid_attention_torch(
        a, b, c, causal=causal, bias=bias, alibi_slopes=None if slopes is None else slopes.double(),
        window=window), q.double(), k.double(), v.double(), do.double())


def _rel(a, b):
    a, b = a.double(), b.double()
    assert torch.isfinite(a).all(), "non-finite values in the kernel's result"
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def _case_id(c):  # (B, H, Hkv, Tq, Tk, D, causal, alibi, dtype)
    return "B{}H{}kv{}q{}k{}D{}{}{}{}".format(*c[:6], "c" if c[6] else "n", "A" if c[7] else "", str(c[8])[-2:])


# (B, H, Hkv, Tq, Tk, D, causal, alibi, dtype): odd lengths, decoding (Tq=1), chunked prefill
# (Tq < Tk), Tq > Tk, GQA/MQA, all head dims, causal or not.
CPU_CASES = [
    (1, 2, 2, 1, 1, 16, True, False, torch.float32),
    (2, 2, 2, 17, 17, 32, True, True, torch.float32),
    (1, 2, 2, 113, 113, 64, False, True, torch.float32),
    (1, 4, 2, 128, 128, 64, True, True, torch.float16),
    (1, 4, 1, 1, 113, 32, True, True, torch.float16),
    (1, 4, 2, 17, 255, 16, True, False, torch.float32),
    (1, 2, 2, 255, 255, 16, True, True, torch.float16),
    (1, 2, 2, 64, 40, 32, True, True, torch.float32),
    (1, 4, 1, 33, 97, 128, False, True, torch.float32),
    (1, 1, 1, 40, 40, 256, True, False, torch.float16),
    (1, 2, 1, 96, 96, 16, False, False, torch.float16),
    (1, 1, 1, 512, 512, 16, True, True, torch.float32),
    # head dims that are no power of two, padded inside the kernel
    (1, 2, 1, 37, 53, 1, True, True, torch.float32),
    (1, 4, 2, 70, 70, 40, True, True, torch.float16),
    (1, 2, 2, 33, 65, 96, False, True, torch.float32),
    (1, 2, 1, 45, 45, 111, True, False, torch.float16),
    (1, 1, 1, 30, 30, 200, True, True, torch.float32),
]


@cpu_only
@pytest.mark.parametrize("case", CPU_CASES, ids=_case_id)
@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "det"])
def test_cpu_against_float64(case, deterministic):
    _check_float64(case, deterministic)


@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "det"])
def test_launch_order_in_l2_sections_computes_every_block_once(monkeypatch, deterministic):
    # The 1-D launch order (_tile): (batch, head) pairs in sections narrower than the grid, the last one
    # narrower still, every block of a section longest first. Every query and key block of every head must
    # be computed exactly once: the results are the float64 reference's (on Hopper: the Gluon kernels)
    B, Hkv, T = 5, 2, (70 if not CUDA else 1000)
    dtype = torch.float32 if not CUDA else torch.bfloat16
    for H, D in ((4, 16), (2, 64), (2, 128)) if CUDA else ((4, 16),):
        kv = 2 * T * D * dtype.itemsize // (H // Hkv)  # K, V bytes per (batch, query head)
        monkeypatch.setattr(flashsigmoid, "L2_SECTION_BYTES", 3 * kv)
        monkeypatch.setattr(flashsigmoid, "LPT_MIN_LEN", T)
        assert flashsigmoid._section(B * H, kv, T) == 3 and B * H % 3  # sections of 3 query heads, the last narrower
        if not CUDA:
            _check_float64((B, H, Hkv, T, T, D, True, True, dtype), deterministic)
        else:
            _check_paper((B, H, Hkv, T, T, D, True, True), exact=False, deterministic=deterministic)


def test_l2_sections_are_equal_and_fit_the_budget(monkeypatch):
    monkeypatch.setattr(flashsigmoid, "L2_SECTION_BYTES", 1000)
    n = flashsigmoid.LPT_MIN_LEN
    assert flashsigmoid._section(10, 100, n) == 10  # all in one
    assert flashsigmoid._section(11, 100, n) == 6  # 6 + 5, not 10 + 1
    assert flashsigmoid._section(7, 300, n) == 3  # 3 + 3 + 1 (at most 3 fit)
    assert flashsigmoid._section(7, 5000, n) == 1  # one pair past the budget: one at a time
    assert flashsigmoid._section(10, 100, n - 1) == 1  # shorter sequences: one pair after another


def test_fixed_config_launch_takes_smaller_tiles_where_the_gpu_has_less_shared_memory(monkeypatch):
    # With autotuning off a launch takes entry _DEFAULT of its table. Consumer GPUs (sm_86, 89, 120) have 99 KB of
    # shared memory per block against Hopper's 227, and a tile that needs more fails before it starts (Triton's
    # OutOfResources): the launch then tries the table's other tiles, smallest first, and keeps the first that
    # fits. A fake kernel plays such a GPU: tiles over a budget of BLOCK_M * BLOCK_N * stages fail.
    from triton.runtime.errors import OutOfResources
    launched, budget = [], [64 * 64 * 2]

    class Kernel:
        arg_names = ["Q"]

        def __getitem__(self, grid):
            def launch(*args, BLOCK_M2, BLOCK_N2, num_stages, num_warps, **meta):
                launched.append((BLOCK_M2, BLOCK_N2, num_stages, num_warps))
                if BLOCK_M2 * BLOCK_N2 * num_stages > budget[0]:
                    raise OutOfResources(BLOCK_M2 * BLOCK_N2 * num_stages, budget[0], "shared memory")
            return launch
    monkeypatch.setattr(flashsigmoid, "_INTERPRET", False)
    monkeypatch.setitem(flashsigmoid._KERNELS, "dq", Kernel())
    monkeypatch.setattr(flashsigmoid, "_FITS", {})
    monkeypatch.setattr(flashsigmoid, "_DQ_CONFIGS", {"small": [(128, 32, 5, 4), (128, 64, 3, 8), (64, 64, 3, 4),
                                                                (64, 32, 4, 4), (128, 64, 2, 8)]})
    monkeypatch.setitem(flashsigmoid._TABLES, "dq", flashsigmoid._DQ_CONFIGS)
    monkeypatch.setattr(flashsigmoid, "_DEFAULT", 1)
    q = torch.empty(1, 1, 8, 64, dtype=torch.bfloat16)

    def launch():
        flashsigmoid._launch("dq", 1024, 12, 2, 0, (q,), dict(HEAD_DIM=64))
    launch()  # (128, 64, 3, 8) does not fit; of the others, smallest first: (64, 32, 4, 4) fits
    assert launched == [(128, 64, 3, 8), (64, 32, 4, 4)]
    launch()  # and is taken at once from then on
    assert launched[2:] == [(64, 32, 4, 4)]
    budget[0] = 1 << 30  # a GPU where the default fits launches only the default (a fresh process)
    monkeypatch.setattr(flashsigmoid, "_FITS", {})
    launch()
    assert launched[3:] == [(128, 64, 3, 8)]
    budget[0] = 1000  # where nothing fits, Triton's error reaches the caller
    monkeypatch.setattr(flashsigmoid, "_FITS", {})
    with pytest.raises(OutOfResources):
        launch()
    assert len(launched[4:]) == 5  # (after every tile was tried)


def test_amd_gpus_take_the_exact_sigmoid_and_pointer_loads(monkeypatch):
    # On PyTorch's ROCm build (torch.version.hip) no PTX may reach the kernels: the fast sigmoid's tanh.approx is
    # NVIDIA's, tensor descriptors and the Gluon kernels are Hopper's (test_sm90_compile compiles the kernels for an
    # MI300X as dispatch gives them there)
    q = torch.randn(1, 2, 64, 64).to(torch.bfloat16)
    monkeypatch.setattr(flashsigmoid, "_INTERPRET", False)  # (as on a GPU)
    assert flashsigmoid._meta(2, 2, 64, torch.bfloat16, True, True, False)["FAST"]
    monkeypatch.setattr(flashsigmoid, "_HIP", True)
    assert not flashsigmoid._meta(2, 2, 64, torch.bfloat16, True, True, False)["FAST"]
    monkeypatch.setattr(flashsigmoid, "_INTERPRET", True)  # (where descriptors run on CPU tensors)
    assert not flashsigmoid._tma_ok(q, q, q, q)
    monkeypatch.setattr(flashsigmoid, "_HIP", False)
    assert flashsigmoid._tma_ok(q, q, q, q) == (flashsigmoid.TensorDescriptor is not None)


def _check_float64(case, deterministic, window=None):
    B, H, Hkv, Tq, Tk, D, causal, alibi, dtype = case
    q, k, v, do, bias, slopes = _inputs(B, H, Hkv, Tq, Tk, D, dtype, seed=Tq * 1000 + Tk + D)
    got = _run(sigmoid_attention, q, k, v, do, causal=causal, bias=bias, alibi_slopes=slopes,
               deterministic=deterministic, window=window)
    ref = _ref64(q, k, v, do, causal, bias, slopes, window)
    tol = 2e-5 if dtype == torch.float32 else 5e-3
    for name, a, b in zip(("o", "dq", "dk", "dv"), got, ref):
        assert a.shape == b.shape and a.dtype == dtype, name
        assert _rel(a, b) < tol, (name, _rel(a, b))
    if dtype == torch.float16:  # the paper's criterion against a same-precision PyTorch version
        same = _run(lambda a, b_, c, **kw: sigmoid_attention_torch(a, b_, c, causal=causal, bias=bias,
                                                                   alibi_slopes=slopes, upcast=False,
                                                                   window=window), q, k, v, do)
        for name, a, s, b in zip(("o", "dq", "dk", "dv"), got, same, ref):
            ek = (a.double() - b).abs().max().item()
            et = (s.double() - b).abs().max().item()
            assert ek <= 2 * et + 1e-3 * max(1.0, b.abs().max().item()), (name, ek, et)


@cpu_only
@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "det"])
@pytest.mark.parametrize("kw", [{}, {"dropout_p": 0.3, "seed": 4}, {"window": (9, 0)}, {"causal": False}], ids=str)
def test_cpu_tma_kernels_are_the_pointer_kernels(monkeypatch, kw, deterministic):
    # The kernels stream tiles through tensor descriptors where they can (Hopper's copy engine; the
    # interpreter runs them too) and through pointers elsewhere: the same sums in the same order, the
    # same bits on a GPU (test_gpu_tma_kernels_are_the_pointer_kernels). Here numpy does the tiles'
    # products, and its BLAS may order a product's sums by the operands' memory layout (a loaded qT tile
    # against a transposed loaded q tile), so the paths agree to the last bit or two, not bitwise: the
    # bound is a few ulps, far below what a wrong tile, row or mask would give. Odd lengths (zero-filled
    # tails, clipped stores), GQA, Tq != Tk, ALiBi, the model's (B, T, H, D) layout; a head dim that is
    # no power of two keeps the pointer path.
    taken = []
    real_ok = flashsigmoid._tma_ok
    monkeypatch.setattr(flashsigmoid, "_tma_ok", lambda *ts: taken.append(real_ok(*ts)) or taken[-1])
    bthd = lambda t: t.transpose(1, 2).contiguous().transpose(1, 2)  # noqa: E731
    for B, H, Hkv, Tq, Tk, D, dtype in ((2, 4, 2, 37, 53, 32, torch.float32), (1, 2, 1, 70, 70, 16, torch.float16),
                                        (1, 2, 2, 45, 45, 24, torch.float32)):
        q, k, v, do, bias, slopes = _inputs(B, H, Hkv, Tq, Tk, D, dtype, seed=Tq)
        q, k, v, do = bthd(q), bthd(k), bthd(v), bthd(do)
        runs = []
        for tma in (True, False):
            monkeypatch.setattr(flashsigmoid, "USE_TMA", tma)
            taken.clear()
            runs.append(_run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes,
                             deterministic=deterministic, **kw))
            assert taken == [tma and D in (16, 32)] * 2, (D, tma, taken)  # the forward's and the backward's
        ulp = torch.finfo(dtype).eps
        for name, a, b in zip(("o", "dq", "dk", "dv"), *runs):
            err = ((a - b).abs().max() / b.abs().max()).item()
            assert err <= 8 * ulp, (name, B, H, Hkv, Tq, Tk, D, err)
        if "dropout_p" not in kw:
            ref = _ref64(q, k, v, do, kw.get("causal", True), bias, slopes, kw.get("window"))
            for name, a, r in zip(("o", "dq", "dk", "dv"), runs[0], ref):
                assert _rel(a, r) < (2e-5 if dtype == torch.float32 else 5e-3), name


# (case as CPU_CASES, window): windows of 0, small, larger than T, one-sided, with ALiBi, GQA/MQA,
# decoding, Tq != Tk both ways, causal (right forced to 0) and not
WINDOW_CASES = [
    ((1, 2, 2, 113, 113, 32, True, True, torch.float32), (0, 0)),
    ((1, 4, 2, 113, 113, 16, True, True, torch.float16), (17, -1)),
    ((1, 2, 1, 70, 70, 40, True, False, torch.float32), (200, 0)),
    ((1, 2, 2, 97, 97, 16, False, True, torch.float32), (9, 30)),
    ((1, 2, 2, 65, 65, 16, False, False, torch.float16), (-1, 5)),
    ((1, 2, 2, 65, 65, 16, False, True, torch.float32), (12, -1)),
    ((2, 4, 1, 33, 150, 32, True, True, torch.float16), (40, 0)),
    ((1, 4, 2, 150, 33, 16, False, True, torch.float32), (3, 7)),
    ((1, 4, 2, 150, 33, 16, True, True, torch.float32), (5, -1)),
    ((1, 4, 2, 1, 200, 64, True, True, torch.float32), (31, 0)),
    ((1, 6, 2, 200, 200, 24, True, True, torch.float16), (50, -1)),
    ((1, 2, 2, 40, 60, 16, False, True, torch.float32), (0, 0)),
    ((1, 2, 1, 96, 96, 16, False, True, torch.float16), (1000, 1000)),
]


@cpu_only
@pytest.mark.parametrize("case,window", WINDOW_CASES, ids=lambda c: str(c).replace(" ", "").replace("torch.", ""))
@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "det"])
def test_cpu_window_against_float64(case, window, deterministic):
    _check_float64(case, deterministic, window)


@cpu_only
@pytest.mark.parametrize("blocks", [dict(fwd=(16, 16), dkdv=(16, 16), dq=(16, 16)),
                                    dict(fwd=(64, 32), dkdv=(32, 64), dq=(64, 32))], ids=["16", "64"])
@pytest.mark.parametrize("case,window", [WINDOW_CASES[1], WINDOW_CASES[3], WINDOW_CASES[6], WINDOW_CASES[8]],
                         ids=["causal", "two-sided", "mqa-prefill", "tq>tk"])
def test_cpu_window_other_block_sizes(monkeypatch, blocks, case, window):
    # the window's block ranges are arithmetic on the block sizes: check them at other tiles too
    monkeypatch.setattr(flashsigmoid, "_INTERP_CFG", blocks)
    _check_float64(case, False, window)


def _garbage(t, rows):
    """t with NaN and inf written into rows (dim 2): a kernel that reads them returns non-finite values."""
    t = t.clone()
    t[:, :, rows] = float("nan")
    t[:, :, rows.start] = float("inf")
    return t


@cpu_only
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "det"])
def test_cpu_window_never_reads_blocks_outside(causal, deterministic):
    """Blocks outside every row's window are skipped, not masked: NaN and inf written there change
    nothing. The garbage fills whole blocks of the interpreter's tiles (only blocks partly inside a
    window are read, and masked)."""
    assert flashsigmoid._INTERP_CFG == {"fwd": (32, 16), "dkdv": (16, 32), "dq": (32, 16)}
    # keys left of the window: queries at 180..199 see keys >= 130, so keys 0..127 (4 dK/dV blocks of
    # 32, 8 forward/dQ blocks of 16) are never read; their dK and dV are exactly 0
    window = (50, 0 if causal else 3)
    q, k, v, do, bias, slopes = _inputs(1, 4, 2, 20, 200, 16, torch.float32, seed=11)
    got = _run(sigmoid_attention, q, _garbage(k, slice(0, 128)), _garbage(v, slice(0, 128)), do, causal=causal,
               bias=bias, alibi_slopes=slopes, window=window, deterministic=deterministic)
    ref = _ref64(q, k, v, do, causal, bias, slopes, window)
    for name, a, b in zip(("o", "dq", "dk", "dv"), got, ref):
        assert _rel(a, b) < 2e-5, (name, _rel(a, b))
    assert (got[2][:, :, :128] == 0).all() and (got[3][:, :, :128] == 0).all()
    # query rows past the window's left reach: key block 0..31 is seen by rows <= 31 + 10 only, so the
    # dK/dV programs of that block never read q and dO rows 64..127
    q, k, v, do, bias, slopes = _inputs(1, 2, 1, 128, 128, 16, torch.float32, seed=12)
    got = _run(sigmoid_attention, _garbage(q, slice(64, 128)), k, v, _garbage(do, slice(64, 128)), causal=causal,
               bias=bias, alibi_slopes=slopes, window=(10, 0 if causal else 2), deterministic=deterministic)
    ref = _ref64(q, k, v, do, causal, bias, slopes, (10, 0 if causal else 2))
    for name, a, b in zip(("dk", "dv"), got[2:], ref[2:]):
        assert _rel(a[:, :, :32], b[:, :, :32]) < 2e-5, name
    if causal:
        return
    # keys right of the window: rows 0..31 (one forward/dQ block) see keys <= 35, so keys 48..127 are
    # never read for them (later rows do read them and are not checked)
    q, k, v, do, bias, slopes = _inputs(1, 2, 2, 128, 128, 16, torch.float32, seed=13)
    got = _run(sigmoid_attention, q, _garbage(k, slice(48, 128)), _garbage(v, slice(48, 128)), do, causal=False,
               bias=bias, alibi_slopes=slopes, window=(-1, 4), deterministic=deterministic)
    ref = _ref64(q, k, v, do, False, bias, slopes, (-1, 4))
    assert _rel(got[0][:, :, :32], ref[0][:, :, :32]) < 2e-5
    if deterministic:  # the atomic dQ also takes the (NaN) shares of the dK/dV programs of keys 32..63
        assert _rel(got[1][:, :, :32], ref[1][:, :, :32]) < 2e-5


@pytest.mark.parametrize("window", [(-2, 0), (1.5, 0), "8", (1, 2, 3), (True, 0), (4,)], ids=str)
def test_bad_window_raises(window):
    with pytest.raises(ValueError, match="window") as e:
        sigmoid_attention(*(_t(1, 2, 8, 16),) * 3, window=window)
    assert repr(window) in str(e.value)


# ---------------------------------------------------------------------------------------------
# packed variable-length sequences (sigmoid_attention_varlen)
# ---------------------------------------------------------------------------------------------

def _cu(lens, device=DEV):
    return torch.tensor([0] + [sum(lens[:i + 1]) for i in range(len(lens))], dtype=torch.int32, device=device)


def _varlen_inputs(lq, lk, H, Hkv, D, dtype, seed, alibi=True, device=DEV):
    q, k, v, do, bias, slopes = _inputs(1, H, Hkv, sum(lq), sum(lk), D, dtype, seed, device=device, alibi=alibi)
    packed = lambda t: t[0].transpose(0, 1)  # noqa: E731  (total, heads, D) views, as a model's are
    return packed(q), packed(k), packed(v), packed(do), bias, slopes, _cu(lq, device), _cu(lk, device)


def _varlen_ref64(q, k, v, do, cu_q, cu_k, causal, bias, slopes, window=None, mask=None, p=0.0):
    """Each sequence through the dense float64 reference on its own, the results packed again; mask:
    dropout's keep mask over the packed rows and keys, (1, H, total_q, total_k)."""
    def fn(q, k, v):
        outs = []
        for s in range(len(cu_q) - 1):
            qs, ks, vs = (t[c[s]:c[s + 1]].transpose(0, 1)[None] for t, c in ((q, cu_q), (k, cu_k), (v, cu_k)))
            ms = None if mask is None else mask[:, :, cu_q[s]:cu_q[s + 1], cu_k[s]:cu_k[s + 1]]
            outs.append(sigmoid_attention_torch(qs, ks, vs, causal=causal, bias=bias, window=window,
                                                alibi_slopes=None if slopes is None else slopes.double(),
                                                dropout_p=p, dropout_mask=ms)[0].transpose(0, 1))
        return torch.cat(outs)
    return _run(lambda a, b, c, **kw: fn(a, b, c), q.double(), k.double(), v.double(), do.double())


# (query lengths, key lengths, H, Hkv, D, causal, alibi, dtype, window): odd lengths, sequences of 1 and
# of 0 (trailing empty ones pad cu_seqlens to a fixed size), Tq != Tk per sequence both ways, GQA/MQA
VARLEN_CASES = [
    ([37, 1, 64, 20], [37, 1, 64, 20], 2, 1, 16, True, True, torch.float32, None),
    ([1, 1, 1], [1, 1, 1], 2, 2, 32, True, False, torch.float16, None),
    ([5, 30, 1], [40, 10, 33], 4, 2, 16, True, True, torch.float32, None),
    ([5, 30, 17], [40, 10, 3], 4, 1, 40, False, True, torch.float16, None),
    ([50, 0, 33], [50, 0, 33], 2, 1, 16, True, True, torch.float32, (7, 0)),
    ([40, 33], [20, 60], 2, 2, 16, False, False, torch.float32, (5, 3)),
    ([100, 3, 90, 2], [100, 3, 90, 2], 4, 2, 64, True, True, torch.float16, None),
    ([13, 70, 0, 0, 0], [13, 70, 0, 0, 0], 2, 2, 16, False, True, torch.float32, None),
    ([33, 65], [33, 65], 6, 2, 24, True, True, torch.float16, (20, -1)),
]


@cpu_only
@pytest.mark.parametrize("case", VARLEN_CASES, ids=lambda c: f"{c[0]}{c[1]}H{c[2]}kv{c[3]}D{c[4]}"
                         f"{'c' if c[5] else 'n'}{'A' if c[6] else ''}{str(c[7])[-2:]}w{c[8]}".replace(" ", ""))
@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "det"])
def test_cpu_varlen_against_float64_per_sequence(case, deterministic):
    lq, lk, H, Hkv, D, causal, alibi, dtype, window = case
    q, k, v, do, bias, slopes, cu_q, cu_k = _varlen_inputs(lq, lk, H, Hkv, D, dtype, seed=sum(lq) + 7 * sum(lk),
                                                          alibi=alibi)
    got = _run(lambda a, b, c, **kw: flashsigmoid.sigmoid_attention_varlen(
        a, b, c, cu_q, cu_k, max(lq), max(lk), causal=causal, bias=bias, alibi_slopes=slopes, window=window,
        deterministic=deterministic), q, k, v, do)
    ref = _varlen_ref64(q, k, v, do, cu_q, cu_k, causal, bias, slopes, window)
    tol = 2e-5 if dtype == torch.float32 else 5e-3
    for name, a, b in zip(("o", "dq", "dk", "dv"), got, ref):
        assert a.shape == b.shape and a.dtype == dtype, name
        assert _rel(a, b) < tol, (name, _rel(a, b))


@cpu_only
def test_cpu_varlen_of_equal_lengths_is_the_dense_batch_and_bias_defaults_to_max_seqlen_k():
    """B sequences of T rows each are the dense (B, H, T, D) problem; bias None = -ln(max_seqlen_k)."""
    B, H, T, D = 3, 2, 29, 16
    q, k, v, do, _, slopes = _inputs(B, H, H, T, T, D, torch.float32, seed=21)
    pack = lambda t: t.transpose(1, 2).reshape(B * T, H, D)  # noqa: E731
    cu = _cu([T] * B)
    got = flashsigmoid.sigmoid_attention_varlen(pack(q), pack(k), pack(v), cu, cu, T, T, alibi_slopes=slopes)
    want = sigmoid_attention(q, k, v, alibi_slopes=slopes, bias=-math.log(T))
    torch.testing.assert_close(got, pack(want), rtol=1e-5, atol=1e-6)
    # a larger max_seqlen_k only changes the default bias
    got = flashsigmoid.sigmoid_attention_varlen(pack(q), pack(k), pack(v), cu, cu, T, 4 * T, alibi_slopes=slopes)
    want = sigmoid_attention(q, k, v, alibi_slopes=slopes, bias=-math.log(4 * T))
    torch.testing.assert_close(got, pack(want), rtol=1e-5, atol=1e-6)


@cpu_only
def test_cpu_varlen_custom_ops_pass_opcheck_and_compile_without_graph_breaks():
    q, k, v, do, bias, slopes, cu_q, cu_k = _varlen_inputs([7, 12], [9, 12], 2, 1, 16, torch.float32, seed=4)
    torch.library.opcheck(torch.ops.flashsigmoid.fwd_varlen.default,
                          (q.requires_grad_(True), k, v, cu_q, cu_k, 12, 12, slopes, True, bias, 0.25, True, False, 0.2,
                           torch.tensor(7), 3, -1),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
    torch.library.opcheck(torch.ops.flashsigmoid.bwd_varlen.default,
                          (do, q.detach(), k, v, cu_q, cu_k, 12, 12, None, False, bias, 0.25, True, False, 0.0, None,
                           -1, -1),
                          test_utils=("test_schema", "test_faketensor"))

    def f(q, k, v):
        return flashsigmoid.sigmoid_attention_varlen(q, k, v, cu_q, cu_k, 12, 12, bias=bias, alibi_slopes=slopes,
                                                     check=False).square().sum()
    qq, qr = (q.detach().clone().requires_grad_(True) for _ in range(2))
    torch.compile(f, backend="aot_eager", fullgraph=True)(qq, k, v).backward()  # fullgraph: no graph break
    f(qr, k, v).backward()
    assert torch.allclose(qq.grad, qr.grad, rtol=1e-5, atol=1e-6)


def _vt(*s, dtype=torch.float16):
    return torch.randn(*s, dtype=dtype, device=DEV)


@pytest.mark.parametrize("args,needle", [
    ((_vt(2, 4, 8, 16), _vt(8, 4, 16), _vt(8, 4, 16), _cu([8]), _cu([8]), 8, 8), "3-D"),
    ((_vt(8, 4, 16),) * 3 + (_cu([8]).long(), _cu([8]), 8, 8), "int32"),
    ((_vt(8, 4, 16),) * 3 + (_cu([8])[None], _cu([8]), 8, 8), "(B + 1,)"),
    ((_vt(8, 4, 16),) * 3 + (_cu([3, 5]), _cu([8]), 8, 8), "2 sequences"),
    ((_vt(8, 4, 16),) * 3 + (_cu([3, 4]), _cu([3, 5]), 8, 8), "the 8 packed rows"),
    ((_vt(8, 4, 16),) * 3 + (_cu([3, 5]) + 1, _cu([3, 5]), 8, 8), "from 0"),
    ((_vt(8, 4, 16),) * 3 + (torch.tensor([0, 5, 3, 8], dtype=torch.int32, device=DEV), _cu([3, 0, 5]), 8, 8), "rise"),
    ((_vt(8, 4, 16),) * 3 + (_cu([3, 5]), _cu([3, 5]), 4, 8), "max_seqlen=4"),
    ((_vt(8, 4, 16),) * 3 + (_cu([3, 5]), _cu([3, 5]), 8, 0), "max_seqlen_k=0"),
    ((_vt(8, 4, 16), _vt(8, 3, 16), _vt(8, 3, 16), _cu([8]), _cu([8]), 8, 8), "Hkv=3"),
], ids=["4-D", "int64", "2-D", "count", "total", "start", "falling", "max_seqlen", "max_seqlen-0", "heads"])
def test_bad_varlen_inputs_raise(args, needle):
    with pytest.raises(ValueError) as e:
        flashsigmoid.sigmoid_attention_varlen(*args)
    assert needle in str(e.value), str(e.value)


VARLEN_GPU_CASES = [  # (query lengths, key lengths, H, Hkv, D, causal, alibi, window)
    ([1000, 1, 3000, 77, 4], [1000, 1, 3000, 77, 4], 8, 2, 64, True, True, None),
    ([512, 700, 129], [2048, 700, 3000], 4, 4, 128, True, True, None),
    ([333, 4096, 0, 0], [333, 4096, 0, 0], 4, 1, 96, False, True, None),
    ([2500, 1700], [2500, 1700], 4, 2, 64, True, True, (256, 0)),
]


@gpu
@pytest.mark.parametrize("case", VARLEN_GPU_CASES, ids=str)
@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "det"])
def test_gpu_bf16_varlen(case, deterministic):
    # bf16 against the fp32 per-sequence reference, the paper's criterion as _check_paper
    lq, lk, H, Hkv, D, causal, alibi, window = case
    q, k, v, do, bias, slopes, cu_q, cu_k = _varlen_inputs(lq, lk, H, Hkv, D, torch.bfloat16, seed=1, alibi=alibi)
    got = _run(lambda a, b, c, **kw: flashsigmoid.sigmoid_attention_varlen(
        a, b, c, cu_q, cu_k, max(lq), max(lk), causal=causal, bias=bias, alibi_slopes=slopes, window=window,
        deterministic=deterministic), q, k, v, do)
    ref = _varlen_ref64(q.float(), k.float(), v.float(), do.float(), cu_q, cu_k, causal, bias, slopes, window)
    for name, a, r in zip(("o", "dq", "dk", "dv"), got, ref):
        assert _rel(a, r) < 2e-2, (name, _rel(a, r), case)


@cpu_only
def test_cpu_defaults_and_masking():
    # default bias -ln(Tk) and scale 1/sqrt(D); fully masked rows (Tq > Tk, causal) are exactly 0
    q, k, v, do, _, _ = _inputs(1, 2, 2, 24, 8, 32, torch.float32, seed=1, alibi=False)
    o = sigmoid_attention(q, k, v)
    ref = sigmoid_attention_torch(q.double(), k.double(), v.double(), bias=-math.log(8), scale=1 / math.sqrt(32))
    assert _rel(o, ref) < 2e-5
    assert (o[:, :, : 24 - 8] == 0).all()  # rows whose absolute position is before key 0


@cpu_only
def test_cpu_noncontiguous_and_determinism():
    B, T, H, Hkv, D = 1, 72, 4, 2, 32
    g = torch.Generator().manual_seed(3)
    x = torch.randn(B, T, H + 2 * Hkv, D, generator=g)
    q, k, v = (t.transpose(1, 2) for t in x.split([H, Hkv, Hkv], dim=2))  # strided views, as in model.py
    assert not q.is_contiguous()
    vt = torch.randn(B, Hkv, D, T, generator=g).transpose(2, 3)  # last dim not contiguous
    do = torch.randn(B, H, T, D, generator=g)
    slopes = torch.rand(H, generator=g)
    r1 = _run(sigmoid_attention, q, k, vt, do, bias=-3.0, alibi_slopes=slopes, deterministic=True)
    r2 = _run(sigmoid_attention, q, k, vt, do, bias=-3.0, alibi_slopes=slopes, deterministic=True)
    for a, b in zip(r1, r2):
        assert torch.equal(a, b)
    ref = _ref64(q, k, vt, do, True, -3.0, slopes)
    for a, b, c in zip(r1, _run(sigmoid_attention, q, k, vt, do, bias=-3.0, alibi_slopes=slopes), ref):
        assert _rel(a, c) < 2e-5 and _rel(b, c) < 2e-5


def test_atomic_dq_where_it_measured_faster(monkeypatch):
    # dQ by atomic adds (5 matrix products, run-to-run order) only when allowed, and only where it measured
    # faster on an H200: pointer loads from 2048 keys on; with Hopper's tensor descriptors never by default
    monkeypatch.undo()  # the module's own thresholds, not the CPU fixture's
    at = flashsigmoid._atomic_dq
    assert at(False, 4096, False) and at(False, 2048, False) and not at(False, 2047, False)
    assert not at(True, 4096, False)  # deterministic: the dQ kernel
    assert not at(False, 1 << 20, True)


def test_deterministic_follows_torch_use_deterministic_algorithms(monkeypatch):
    # deterministic=None (the default) takes torch's global switch, so train.py's `deterministic`
    # option and any user's torch.use_deterministic_algorithms(True) reach the kernel alike
    launched = []
    real = flashsigmoid._launch
    monkeypatch.setattr(flashsigmoid, "_launch", lambda kind, *a: launched.append(kind) or real(kind, *a))
    _atomic_from(monkeypatch, 16)  # (by default short keys, and Hopper's descriptors, take the 7 products)
    T = 20
    q, k, v, do, bias, slopes = _inputs(1, 2, 1, T, T, 16, torch.bfloat16 if CUDA else torch.float32, seed=2)
    was = torch.are_deterministic_algorithms_enabled()
    try:
        for flag, kinds in ((False, ["fwd", "dkdv"]), (True, ["fwd", "dq", "dkdv"])):  # (dQ first: _bwd_into)
            torch.use_deterministic_algorithms(flag, warn_only=True)
            launched.clear()
            _run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes)
            assert launched == kinds, (flag, launched)
    finally:
        torch.use_deterministic_algorithms(was)


@cpu_only
def test_cpu_exact_flag_and_compile():
    q, k, v, do, bias, slopes = _inputs(1, 2, 1, 20, 20, 16, torch.float32, seed=5)
    a = sigmoid_attention(q, k, v, bias=bias, alibi_slopes=slopes, exact=True)
    b = sigmoid_attention(q, k, v, bias=bias, alibi_slopes=slopes, exact=False)
    assert torch.equal(a, b)  # the interpreter always takes the exact path

    def f(q, k, v):
        return sigmoid_attention(q, k, v, bias=bias, alibi_slopes=slopes).sum()
    cf = torch.compile(f, backend="aot_eager", fullgraph=True)  # fullgraph: fails on a graph break
    qq = q.clone().requires_grad_(True)
    cf(qq, k, v).backward()
    qr = q.clone().requires_grad_(True)
    f(qr, k, v).backward()
    assert torch.allclose(qq.grad, qr.grad, rtol=1e-5, atol=1e-6)


def _t(*s, dtype=torch.float16, device=DEV):
    return torch.randn(*s, dtype=dtype, device=device)


@pytest.mark.parametrize("args,kw,needle", [
    ((_t(2, 4, 8, 32), _t(2, 4, 8, 32), _t(2, 4, 9, 32)), {}, "same shape"),
    ((_t(4, 8, 32), _t(2, 4, 8, 32), _t(2, 4, 8, 32)), {}, "4-D"),
    ((_t(2, 4, 8, 32), _t(3, 4, 8, 32), _t(3, 4, 8, 32)), {}, "B=2"),
    ((_t(2, 4, 8, 32), _t(2, 3, 8, 32), _t(2, 3, 8, 32)), {}, "Hkv=3"),
    ((_t(2, 4, 8, 257), _t(2, 4, 8, 257), _t(2, 4, 8, 257)), {}, "D=257"),
    ((_t(2, 4, 8, 32), _t(2, 4, 8, 64), _t(2, 4, 8, 64)), {}, "D=32"),
    ((_t(2, 4, 8, 32), _t(2, 4, 8, 32, dtype=torch.float32), _t(2, 4, 8, 32)), {}, "dtype mismatch"),
    ((_t(2, 4, 8, 32, dtype=torch.float64),) * 3, {}, "float64"),
    ((_t(2, 4, 0, 32), _t(2, 4, 8, 32), _t(2, 4, 8, 32)), {}, "Tq=0"),
    ((_t(2, 4, 8, 32),) * 3, {"alibi_slopes": torch.ones(3, device=DEV)}, "(4,)"),
    ((_t(2, 4, 8, 32),) * 3, {"bias": float("nan")}, "bias"),
])
def test_bad_inputs_raise(args, kw, needle):
    with pytest.raises(ValueError) as e:
        sigmoid_attention(*args, **kw)
    assert needle in str(e.value), str(e.value)


def test_cpu_tensors_without_interpreter_raise(monkeypatch):
    monkeypatch.setattr(flashsigmoid, "_INTERPRET", False)
    with pytest.raises(ValueError, match="CUDA"):
        sigmoid_attention(*(_t(1, 2, 8, 16, device="cpu"),) * 3)


@gpu
def test_gpu_device_mismatch():
    with pytest.raises(ValueError, match="device mismatch"):
        sigmoid_attention(_t(1, 2, 8, 16), _t(1, 2, 8, 16), _t(1, 2, 8, 16, device="cpu"))


# ---------------------------------------------------------------------------------------------
# GPU: bf16 against an fp32 reference, with the paper's criterion
# ---------------------------------------------------------------------------------------------

def _check_paper(case, exact, seed=0, dropout_p=0.0, deterministic=None, window=None):
    B, H, Hkv, Tq, Tk, D, causal, alibi = case
    q, k, v, do, bias, slopes = _inputs(B, H, Hkv, Tq, Tk, D, torch.bfloat16, seed=seed, alibi=alibi)
    # with dropout, the references apply the kernel's own mask (dropout_mask of the same seed)
    mask = flashsigmoid.dropout_mask(seed, B, H, Tq, Tk, dropout_p, DEV) if dropout_p else None
    drop = dict(dropout_p=dropout_p, dropout_mask=mask, window=window)
    got = _run(sigmoid_attention, q, k, v, do, causal=causal, bias=bias, alibi_slopes=slopes, exact=exact,
               dropout_p=dropout_p, seed=seed, deterministic=deterministic, window=window)
    ref = _run(lambda a, b, c, **kw: sigmoid_attention_torch(a, b, c, causal=causal, bias=bias, alibi_slopes=slopes,
                                                             **drop),
               q.float(), k.float(), v.float(), do.float())
    same = _run(lambda a, b, c, **kw: sigmoid_attention_torch(a, b, c, causal=causal, bias=bias, alibi_slopes=slopes,
                                                              upcast=False, **drop),
                q, k, v, do)
    for name, a, s, r in zip(("o", "dq", "dk", "dv"), got, same, ref):
        assert torch.isfinite(a).all(), name
        ek = (a.float() - r).abs().max().item()
        et = (s.float() - r).abs().max().item()
        assert ek <= 2 * et + 1e-3 * max(1.0, r.abs().max().item()), (name, ek, et, case)


GPU_CASES = [  # (B, H, Hkv, Tq, Tk, D, causal, alibi)
    (2, 4, 4, 113, 203, 64, True, True), (2, 4, 2, 203, 113, 128, False, True),
    (1, 4, 1, 1023, 1024, 64, True, False), (2, 8, 2, 1024, 1024, 128, True, True),
    (1, 4, 4, 1, 777, 128, True, True), (1, 4, 2, 255, 2049, 64, True, True),
    (1, 2, 2, 300, 300, 16, True, True), (1, 2, 1, 300, 300, 32, False, True),
    (1, 2, 2, 300, 517, 256, True, True), (1, 2, 2, 129, 129, 256, False, False),
    (1, 2, 2, 4096, 4096, 128, True, True), (1, 2, 1, 8192, 8192, 64, True, True),
    (1, 4, 2, 300, 2100, 96, True, True), (1, 2, 2, 200, 333, 40, False, True),  # padded head dims
]


@gpu
@pytest.mark.parametrize("exact", [False, True], ids=["tanh", "exact"])
@pytest.mark.parametrize("case", GPU_CASES, ids=str)
def test_gpu_bf16_paper_criterion(case, exact):
    _check_paper(case, exact)


@gpu
@pytest.mark.parametrize("case", [(1, 2, 2, 16384, 16384, 64, True, True),
                                  (1, 2, 1, 16384, 16384, 128, True, False)], ids=str)
def test_gpu_bf16_long(case):
    _check_paper(case, exact=False)


# (case as GPU_CASES, window): the bench's shape, windows of 0 and past T, one-sided, Tq != Tk, GQA
GPU_WINDOW_CASES = [
    ((1, 4, 2, 8192, 8192, 64, True, True), (1024, 0)), ((2, 8, 2, 2048, 2048, 128, True, True), (256, -1)),
    ((1, 4, 4, 1000, 3000, 64, True, True), (700, 0)), ((1, 4, 2, 4096, 4096, 64, False, True), (300, 300)),
    ((1, 2, 2, 777, 777, 96, False, False), (-1, 50)), ((1, 4, 2, 300, 300, 40, True, True), (0, 0)),
    ((1, 2, 1, 513, 513, 256, True, True), (5000, 0)), ((1, 4, 1, 1, 4000, 128, True, True), (100, 0)),
    ((1, 4, 2, 3000, 1000, 64, False, True), (60, 9)),
]


@gpu
@pytest.mark.parametrize("case,window", GPU_WINDOW_CASES, ids=str)
def test_gpu_bf16_window(case, window):
    _check_paper(case, exact=False, window=window)


@gpu
@pytest.mark.parametrize("default", range(8))
def test_gpu_window_every_tile_config(monkeypatch, default):
    # the window's block ranges are arithmetic on the tile sizes: each table config of each kernel
    # (the fixed-config path takes entry _DEFAULT of its table), both backward modes
    monkeypatch.setattr(flashsigmoid, "_DEFAULT", default)
    for atomic_from in (1, 1 << 30):  # the atomic dQ, then the dQ kernel
        _atomic_from(monkeypatch, atomic_from)
        _check_paper((1, 4, 2, 2100, 2100, 64, True, True), exact=False, window=(333, 0))
        _check_paper((1, 2, 2, 999, 1500, 128, False, True), exact=False, window=(100, 40))


@gpu
@pytest.mark.parametrize("dtype,D", [(torch.float16, 64), (torch.float32, 64), (torch.float32, 128),
                                     (torch.float32, 256), (torch.float16, 256)], ids=str)
def test_gpu_fp16_fp32_and_determinism(dtype, D):
    tol = 1e-2 if dtype == torch.float16 else 1e-4
    q, k, v, do, bias, slopes = _inputs(2, 4, 2, 333, 333, D, dtype, seed=7)
    r1 = _run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes, deterministic=True)
    r2 = _run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes, deterministic=True)
    r3 = _run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes)  # atomic dQ
    ref = _ref64(q, k, v, do, True, bias, slopes)
    for name, a, b, c, r in zip(("o", "dq", "dk", "dv"), r1, r2, r3, ref):
        assert torch.equal(a, b), name  # deterministic: bitwise the same twice
        assert _rel(a, r) < tol and _rel(c, r) < tol, (name, _rel(a, r), _rel(c, r))


@pytest.mark.parametrize("Hkv", [4, 2], ids=["mha", "gqa"])
def test_outputs_and_gradients_come_back_in_the_inputs_memory_order(Hkv):
    # A model splits heads off one projection: q, k, v are (B, H, T, D) views of (B, T, H, D) memory.
    # O and the gradients must come back laid out the same way (no transpose copy for the caller),
    # and contiguous inputs give contiguous results.
    B, H, T, D = 2, 4, 37, 16
    dt = torch.bfloat16 if CUDA else torch.float32
    q0, k0, v0, do0, bias, slopes = _inputs(B, H, Hkv, T, T, D, dt, seed=3)
    bthd = lambda t: t.transpose(1, 2).contiguous().transpose(1, 2)  # noqa: E731
    for q, k, v, do in ((bthd(q0), bthd(k0), bthd(v0), bthd(do0)), (q0, k0, v0, do0)):
        got = _run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes)
        ref = _ref64(q, k, v, do, True, bias, slopes)
        for name, a, like, r in zip(("o", "dq", "dk", "dv"), got, (q, q, k, v), ref):
            assert a.stride() == like.stride(), (name, a.stride(), like.stride())
            assert _rel(a, r) < (2e-2 if CUDA else 1e-5), name


@cpu_only
def test_custom_op_passes_torch_library_opcheck():
    # The fake (meta) implementation must agree with the real one in shape, dtype and strides, or
    # torch.compile would plan the wrong memory layout around the kernel.
    q, k, v, do, bias, slopes = _inputs(1, 2, 1, 9, 9, 16, torch.float32, seed=1)
    q = q.transpose(1, 2).contiguous().transpose(1, 2).requires_grad_(True)
    torch.library.opcheck(torch.ops.flashsigmoid.fwd.default, (q, k, v, slopes, True, bias, 0.25, True, False),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
    torch.library.opcheck(torch.ops.flashsigmoid.bwd.default, (do, q.detach(), k, v, None, True, bias, 0.25, True, False),
                          test_utils=("test_schema", "test_faketensor"))
    seed = torch.tensor(5)  # with dropout: the seed tensor goes in, is saved, and gets no gradient
    torch.library.opcheck(torch.ops.flashsigmoid.fwd.default,
                          (q, k, v, slopes, True, bias, 0.25, True, False, 0.3, seed),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
    torch.library.opcheck(torch.ops.flashsigmoid.bwd.default,
                          (do, q.detach(), k, v, None, True, bias, 0.25, True, False, 0.3, seed),
                          test_utils=("test_schema", "test_faketensor"))
    # with a window (the two trailing ints)
    torch.library.opcheck(torch.ops.flashsigmoid.fwd.default,
                          (q, k, v, slopes, False, bias, 0.25, True, False, 0.0, None, 3, 2),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))


@gpu
@pytest.mark.parametrize("autotune", [False, True], ids=["fixed", "autotune"])
def test_gpu_odd_lengths_and_misaligned_storage(monkeypatch, autotune):
    # Triton specialises on 16-byte alignment and on lengths divisible by 16: inputs that break
    # either must still give the reference's results, autotuned or not.
    monkeypatch.setattr(flashsigmoid, "AUTOTUNE", autotune)
    for Tq, Tk, offset in ((256, 256, 0), (256, 256, 1), (131, 200, 0), (131, 200, 3)):
        q, k, v, do, bias, slopes = _inputs(2, 4, 2, Tq, Tk, 64, torch.bfloat16, seed=Tq + offset)
        if offset:  # same values, storage starting `offset` elements into a buffer: not 16-byte aligned
            buf = torch.empty(q.numel() + offset, device=DEV, dtype=q.dtype)
            q = buf[offset:].view(q.shape).copy_(q)
            assert q.data_ptr() % 16
        got = _run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes)
        ref = _ref64(q, k, v, do, True, bias, slopes)
        for name, a, r in zip(("o", "dq", "dk", "dv"), got, ref):
            assert _rel(a, r) < 2e-2, (name, Tq, Tk, offset)


@gpu
@pytest.mark.parametrize("autotune", [False, True], ids=["fixed", "autotune"])
def test_gpu_tma_kernels_are_the_pointer_kernels(monkeypatch, autotune):
    # On Hopper the kernels take tensor descriptors (bf16/fp16, power-of-two head dims, aligned):
    # bitwise the pointer path's results at the same tiles (fixed config; the deterministic backward),
    # the reference's when autotuned (the atomic dQ from 2048 keys on); odd lengths, GQA, Tq != Tk and
    # the model's (B, T, H, D) layout included.
    monkeypatch.setattr(flashsigmoid, "AUTOTUNE", autotune)
    monkeypatch.setattr(flashsigmoid, "USE_GLUON", False)  # the Triton kernels (test_gpu_gluon_forward: Gluon's)
    hopper = torch.cuda.get_device_capability()[0] >= 9
    bthd = lambda t: t.transpose(1, 2).contiguous().transpose(1, 2)  # noqa: E731
    for B, H, Hkv, Tq, Tk, D in ((2, 4, 2, 1000, 1000, 64), (1, 4, 4, 333, 2049, 128), (2, 8, 2, 4096, 4096, 64)):
        q, k, v, do, bias, slopes = _inputs(B, H, Hkv, Tq, Tk, D, torch.bfloat16, seed=Tk)
        q, k, v, do = bthd(q), bthd(k), bthd(v), bthd(do)
        monkeypatch.setattr(flashsigmoid, "USE_TMA", True)
        assert flashsigmoid._tma_ok(q, k, v, do) == hopper
        runs = []
        for tma in (True, False):
            monkeypatch.setattr(flashsigmoid, "USE_TMA", tma)
            runs.append(_run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes,
                             deterministic=not autotune))
        ref = _ref64(q, k, v, do, True, bias, slopes)
        for name, a, b, r in zip(("o", "dq", "dk", "dv"), *runs, ref):
            if not autotune:
                assert torch.equal(a, b), (name, Tq, Tk, D, (a - b).abs().max())
            assert _rel(a, r) < 1e-2 and _rel(b, r) < 1e-2, (name, Tq, Tk, D, _rel(a, r), _rel(b, r))


def test_without_gluon_the_triton_kernels_run():
    # A Triton without Gluon's Hopper API (before 3.5, or where it moved): flashsigmoid still imports, the
    # Gluon forward is off, and attention runs on the Triton kernels (here through the interpreter)
    import subprocess
    import sys
    code = ("import builtins, torch\n"
            "real = builtins.__import__\n"
            "def imp(name, g=None, *a, **k):  # Gluon fails to import, for flashsigmoid only (Triton uses it)\n"
            "    if (g or {}).get('__name__') == 'flashsigmoid' and name.startswith('triton.experimental.gluon'):\n"
            "        raise ImportError(name)\n"
            "    return real(name, g, *a, **k)\n"
            "builtins.__import__ = imp\n"
            "import flashsigmoid as fs\n"
            "builtins.__import__ = real\n"
            "assert fs.GluonDescriptor is None and fs._gl_fwd_kernel is None\n"
            "q, k, v = (torch.randn(1, 2, 40, 128) for _ in range(3))\n"
            "o = fs.sigmoid_attention(q, k, v, bias=-3.0)\n"
            "from model import sigmoid_attention_torch\n"
            "r = sigmoid_attention_torch(q.double(), k.double(), v.double(), bias=-3.0)\n"
            "assert ((o.double() - r).norm() / r.norm()).item() < 1e-5\n")
    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]


def test_gluon_forward_that_does_not_compile_falls_back(monkeypatch):
    # A Triton whose Gluon API has moved: the first launch's CompilationError turns the Gluon forward
    # off with a warning, and that call and the next run on the Triton forward, correct
    from triton.compiler.errors import CompilationError

    class Broken:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                raise CompilationError(None, None, "module 'tma' has no attribute 'async_copy_global_to_shared'")
            return launch
    monkeypatch.setattr(flashsigmoid, "USE_GLUON", True)
    monkeypatch.setattr(flashsigmoid, "_gluon_ok", lambda *ts: flashsigmoid.USE_GLUON)
    monkeypatch.setattr(flashsigmoid, "GLUON_FWD", {32: (64, 64)})
    monkeypatch.setattr(flashsigmoid, "_gl_desc", lambda t, rows: t)
    monkeypatch.setattr(flashsigmoid, "_gl_fwd_kernel", Broken())
    # (fp16: fp32 callers take the exact sigmoid, which the Gluon forward does not serve)
    q, k, v, do, bias, slopes = _inputs(1, 2, 2, 40, 40, 32, torch.float16, seed=3, device=DEV)
    with pytest.warns(UserWarning, match="do not compile"):
        o = sigmoid_attention(q, k, v, bias=bias, alibi_slopes=slopes)
    assert not flashsigmoid.USE_GLUON
    ref = _ref64(q, k, v, do, True, bias, slopes)[0]
    assert _rel(o, ref) < 1e-2
    assert torch.equal(sigmoid_attention(q, k, v, bias=bias, alibi_slopes=slopes), o)


hopper_gluon = pytest.mark.skipif(
    not CUDA or torch.cuda.get_device_capability()[0] != 9 or flashsigmoid.GluonDescriptor is None,
    reason="the Gluon kernels run on Hopper only, with a Triton that has Gluon")
GLUON_CASES = [  # (B, H, Hkv, Tq, Tk, causal, alibi, head bias, dtype, model layout)
    (2, 4, 2, 1000, 1000, True, True, False, torch.bfloat16, True),
    (2, 8, 8, 2048, 2048, True, False, False, torch.bfloat16, True),
    (1, 4, 1, 333, 2049, True, True, True, torch.float16, False),  # chunked prefill, MQA
    (1, 4, 2, 300, 100, True, True, False, torch.bfloat16, False),  # Tq > Tk: the first 200 rows see no key
    (2, 4, 2, 203, 113, False, True, True, torch.bfloat16, True),
    (1, 2, 2, 64, 64, False, False, False, torch.float16, False)]


def _gluon_inputs(case, D, seed):
    """q, k, v, dO, bias, slopes of a GLUON_CASES case at head dim D: a bias per head if the case asks, and the
    model's (B, T, H, D) memory if it asks (all four tensors)."""
    B, H, Hkv, Tq, Tk, causal, alibi, head_bias, dtype, bthd = case
    q, k, v, do, bias, slopes = _inputs(B, H, Hkv, Tq, Tk, D, dtype, seed=seed, alibi=alibi)
    if head_bias:
        bias = torch.linspace(-8.0, 0.0, H, device=DEV)
    if bthd:
        q, k, v, do = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (q, k, v, do))
    return q, k, v, do, bias, slopes


@gpu
@hopper_gluon
@pytest.mark.parametrize("case", GLUON_CASES, ids=str)
def test_gpu_gluon_forward(monkeypatch, case):
    # On Hopper the forward at the head dims of GLUON_FWD is the Gluon kernel: it must run (counted), match
    # float64 as the paper's criterion asks, and give what _fwd_kernel gives (to bf16/fp16 rounding)
    B, H, Hkv, Tq, Tk, causal, alibi, head_bias, dtype, bthd = case
    monkeypatch.setattr(flashsigmoid, "GLUON_FWD_WS", {})  # (the warp-specialised one has a test of its own)
    for D in flashsigmoid.GLUON_FWD:
        q, k, v, do, bias, slopes = _gluon_inputs(case, D, seed=Tq + D)
        spy = Launches(flashsigmoid._gl_fwd_kernel)
        monkeypatch.setattr(flashsigmoid, "_gl_fwd_kernel", spy)
        fn = lambda a, b, c, **kw: sigmoid_attention(a, b, c, causal=causal, bias=bias, alibi_slopes=slopes)  # noqa
        got = fn(q, k, v)
        assert spy.n == 1, "the Gluon forward did not run"
        monkeypatch.setattr(flashsigmoid, "USE_GLUON", False)
        triton_o = fn(q, k, v)
        monkeypatch.setattr(flashsigmoid, "USE_GLUON", True)
        assert spy.n == 1
        ref = _ref64(q, k, v, do, causal, bias.double() if head_bias else bias, slopes)[0]
        same = sigmoid_attention_torch(q, k, v, causal=causal, bias=bias, alibi_slopes=slopes, upcast=False)
        ek, et = (got.double() - ref).abs().max().item(), (same.double() - ref).abs().max().item()
        assert ek <= 2 * et + 1e-3 * max(1.0, ref.abs().max().item()), (D, ek, et)
        assert _rel(got, triton_o) < 2e-3, (D, _rel(got, triton_o))
        if Tq > Tk and causal:
            assert not got[:, :, :Tq - Tk].any()  # rows before every key: O = 0


# the warp-specialised forward's tiles: GLUON_FWD_WS's, and the candidates that the A/B script times
WS_TILES = sorted(set(flashsigmoid.GLUON_FWD_WS.values()) | {(128, 128, 2, True, 232), (128, 64, 2, True, 232),
                                                             (128, 128, 2, False, 232), (128, 128, 2, False, 232, True),
                                                             (128, 128, 2, True, 232, True)}, key=str)


@gpu
@hopper_gluon
@pytest.mark.skipif(not hasattr(flashsigmoid.gl, "warp_specialize"), reason="a Gluon without warp_specialize")
@pytest.mark.parametrize("tile", WS_TILES, ids=str)
@pytest.mark.parametrize("case", GLUON_CASES, ids=str)
def test_gpu_gluon_ws_forward(monkeypatch, case, tile):
    # The warp-specialised forward (two consumer warpgroups, a producer warp): it must run (counted), match
    # float64 as the paper's criterion asks, give what _fwd_kernel gives (to rounding), and the same bits
    # on every call (no races between the partitions: 20 calls)
    B, H, Hkv, Tq, Tk, causal, alibi, head_bias, dtype, bthd = case
    for D in (64, 128):
        monkeypatch.setattr(flashsigmoid, "GLUON_FWD_WS", {D: tile})
        q, k, v, do, bias, slopes = _gluon_inputs(case, D, seed=Tq + D + 2)
        spy = Launches(flashsigmoid._gl_ws_fwd_kernel)
        monkeypatch.setattr(flashsigmoid, "_gl_ws_fwd_kernel", spy)
        fn = lambda: sigmoid_attention(q, k, v, causal=causal, bias=bias, alibi_slopes=slopes)  # noqa: E731
        got = fn()
        assert spy.n == 1, "the warp-specialised forward did not run"
        for _ in range(19):
            assert torch.equal(fn(), got)
        monkeypatch.setattr(flashsigmoid, "USE_GLUON", False)
        triton_o = fn()
        monkeypatch.setattr(flashsigmoid, "USE_GLUON", True)
        assert spy.n == 20
        ref = _ref64(q, k, v, do, causal, bias.double() if head_bias else bias, slopes)[0]
        same = sigmoid_attention_torch(q, k, v, causal=causal, bias=bias, alibi_slopes=slopes, upcast=False)
        ek, et = (got.double() - ref).abs().max().item(), (same.double() - ref).abs().max().item()
        assert ek <= 2 * et + 1e-3 * max(1.0, ref.abs().max().item()), (D, ek, et)
        assert _rel(got, triton_o) < 2e-3, (D, _rel(got, triton_o))
        if Tq > Tk and causal:
            assert not got[:, :, :Tq - Tk].any()  # rows before every key: O = 0


@gpu
@hopper_gluon
@pytest.mark.skipif(not hasattr(flashsigmoid.gl, "warp_specialize"), reason="a Gluon without warp_specialize")
@pytest.mark.parametrize("case", [(4, 16, 16, 2048, 2048, True, False, False, torch.bfloat16, True),
                                  (3, 8, 2, 1500, 1500, True, True, True, torch.float16, False),
                                  (3, 8, 4, 900, 3000, True, True, False, torch.bfloat16, False),
                                  (3, 8, 8, 1100, 1100, False, True, False, torch.bfloat16, True)], ids=str)
def test_gpu_gluon_ws_persistent(monkeypatch, case):
    # The persistent warp-specialised forward and dQ kernel (a program per SM taking tiles from a counter: several
    # tiles per program at these shapes, ring positions and barrier phases running on across them) must give the
    # bits of one program per tile (the same maths per tile; that form is held to float64 above), with and without
    # ping-pong, on every call (the counter is zeroed per launch)
    D = 128
    q, k, v, do, bias, slopes = _gluon_inputs(case, D, seed=case[3] + 7)
    fn = lambda: _run(sigmoid_attention, q, k, v, do, causal=case[5], bias=bias, alibi_slopes=slopes)  # noqa: E731
    n_tiles = -(-case[3] // 128) * case[0] * case[1]
    sms = torch.cuda.get_device_properties(DEV).multi_processor_count
    assert n_tiles > sms
    for pingpong in (False, True):
        fwd, dq = (128, 128, 2, pingpong, 232), (128, 64, 3, pingpong, 232)
        monkeypatch.setattr(flashsigmoid, "GLUON_FWD_WS", {D: fwd + (False,)})
        monkeypatch.setattr(flashsigmoid, "GLUON_DQ_WS", {D: dq + (False,)})
        ref = fn()
        monkeypatch.setattr(flashsigmoid, "GLUON_FWD_WS", {D: fwd + (True,)})
        monkeypatch.setattr(flashsigmoid, "GLUON_DQ_WS", {D: dq + (True,)})
        spies = [Launches(flashsigmoid._gl_ws_fwd_kernel), Launches(flashsigmoid._gl_wsdq_kernel)]
        monkeypatch.setattr(flashsigmoid, "_gl_ws_fwd_kernel", spies[0])
        monkeypatch.setattr(flashsigmoid, "_gl_wsdq_kernel", spies[1])
        for _ in range(5):
            got = fn()
            assert all(torch.equal(a, b) for a, b in zip(got, ref)), pingpong
        assert all(s.n == 5 and s.grid == (sms,) for s in spies), [(s.n, s.grid) for s in spies]
        monkeypatch.setattr(flashsigmoid, "_gl_ws_fwd_kernel", spies[0].kernel)
        monkeypatch.setattr(flashsigmoid, "_gl_wsdq_kernel", spies[1].kernel)


@gpu
@pytest.mark.parametrize("shape", [(2, 8, 1024, 128), (2, 8, 1024, 64), (1, 4, 5, 128)], ids=str)
def test_gpu_forward_backward_holds_only_its_outputs(shape):
    # One forward + backward (deterministic, so no fp32 dQ buffer) needs no device memory beyond O, dQ, dK and dV:
    # at head dim 128 on Hopper the persistent dQ kernel's tile counter lives in dK's buffer, which the dK/dV kernel
    # writes after it (a buffer of its own added a 1.5 KB block to the peak), also where dK is barely large enough
    # for it (T=5: 5 KB; below 1,060 bytes the counter takes a block of its own)
    torch.manual_seed(0)
    q, k, v = (torch.randn(shape, device=DEV, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    do = torch.randn(shape, device=DEV, dtype=torch.bfloat16)
    fb = lambda: torch.autograd.grad(sigmoid_attention(q, k, v, deterministic=True), (q, k, v), do)  # noqa: E731
    ref = fb()  # (compiles and autotunes first)
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    got = fb()
    torch.cuda.synchronize()
    out_bytes = sum(-(-t.numel() * t.element_size() // 512) * 512 for t in (q, *got))  # O, dQ, dK, dV in 512 B blocks
    assert torch.cuda.max_memory_allocated() - base == out_bytes
    assert all(torch.equal(a, b) for a, b in zip(got, ref))


WSDQ_TILES = sorted(set(flashsigmoid.GLUON_DQ_WS.values()) | {(128, 64, 3, True, 232), (128, 64, 3, False, 232),
                                                              (128, 64, 3, False, 232, True)}, key=str)


@gpu
@hopper_gluon
@pytest.mark.skipif(not hasattr(flashsigmoid.gl, "warp_specialize"), reason="a Gluon without warp_specialize")
@pytest.mark.parametrize("tile", WSDQ_TILES, ids=str)
@pytest.mark.parametrize("case", GLUON_CASES, ids=str)
def test_gpu_gluon_ws_dq(monkeypatch, case, tile):
    # The warp-specialised dQ kernel: it must run (counted), give dQ as close to float64 as the Triton dQ kernel's
    # (and close to it), leave dK and dV as they were, and give the same bits on every call (5 calls)
    B, H, Hkv, Tq, Tk, causal, alibi, head_bias, dtype, bthd = case
    for D in (64, 128):
        q, k, v, do, bias, slopes = _gluon_inputs(case, D, seed=Tq + D + 3)
        fn = lambda: _run(sigmoid_attention, q, k, v, do, causal=causal, bias=bias, alibi_slopes=slopes)  # noqa
        monkeypatch.setattr(flashsigmoid, "GLUON_DQ_WS", {})
        tri = fn()
        monkeypatch.setattr(flashsigmoid, "GLUON_DQ_WS", {D: tile})
        spy = Launches(flashsigmoid._gl_wsdq_kernel)
        monkeypatch.setattr(flashsigmoid, "_gl_wsdq_kernel", spy)
        got = fn()
        assert spy.n == 1, "the warp-specialised dQ did not run"
        for _ in range(4):
            assert torch.equal(fn()[1], got[1])
        assert torch.equal(got[2], tri[2]) and torch.equal(got[3], tri[3])  # dK, dV: the same kernels
        ref = _ref64(q, k, v, do, causal, bias.double() if head_bias else bias, slopes)
        ek, et = (got[1].double() - ref[1]).abs().max().item(), (tri[1].double() - ref[1]).abs().max().item()
        assert ek <= 1.5 * et + 1e-4 * max(1.0, ref[1].abs().max().item()), (D, ek, et)
        assert _rel(got[1], tri[1]) < 5e-3, (D, _rel(got[1], tri[1]))


@gpu
@hopper_gluon
@pytest.mark.parametrize("case", GLUON_CASES, ids=str)
def test_gpu_gluon_dkdv(monkeypatch, case):
    # On Hopper the backward's dK/dV at the head dims of GLUON_DKDV is the Gluon kernel: it must run
    # (counted), give dK and dV as close to float64 as the Triton kernel's are (and close to them), leave dQ
    # as it was, and give the same bits on a second call (no atomics)
    B, H, Hkv, Tq, Tk, causal, alibi, head_bias, dtype, bthd = case
    table = flashsigmoid.GLUON_DKDV
    for D in table:
        q, k, v, do, bias, slopes = _gluon_inputs(case, D, seed=Tq + D + 1)
        spy = Launches(flashsigmoid._gl_dkdv_kernel)
        monkeypatch.setattr(flashsigmoid, "_gl_dkdv_kernel", spy)
        fn = lambda: _run(sigmoid_attention, q, k, v, do, causal=causal, bias=bias, alibi_slopes=slopes)  # noqa
        got, again = fn(), fn()
        assert spy.n == (2 if H == Hkv or D <= 64 else 0), (D, spy.n)  # grouped heads at 128: Triton's (spills)
        monkeypatch.setattr(flashsigmoid, "GLUON_DKDV", {})  # the Triton dK/dV, all else the same
        tri = fn()
        monkeypatch.setattr(flashsigmoid, "GLUON_DKDV", table)
        ref = _ref64(q, k, v, do, causal, bias.double() if head_bias else bias, slopes)
        for name, a, a2, t, r in zip(("o", "dq", "dk", "dv"), got, again, tri, ref):
            assert torch.equal(a, a2), (D, name, "not deterministic")
            if name in ("o", "dq"):
                assert torch.equal(a, t), (D, name)
                continue
            ea, et = (a.double() - r).abs().max().item(), (t.double() - r).abs().max().item()
            assert ea <= 1.5 * et + 1e-3 * max(1.0, r.abs().max().item()), (D, name, ea, et)
            assert _rel(a, t) < 2e-3, (D, name, _rel(a, t))


@gpu
def test_gpu_torch_compile_fullgraph():
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(64, 3 * 64)
            self.register_buffer("slopes", torch.rand(4) * 0.1)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.proj(x).view(B, T, 3, 4, 16).permute(2, 0, 3, 1, 4)
            y = sigmoid_attention(q, k, v, alibi_slopes=self.slopes)
            return y.transpose(1, 2).reshape(B, T, C)

    m = Tiny().cuda().to(torch.bfloat16)
    x = torch.randn(2, 100, 64, device="cuda", dtype=torch.bfloat16)
    cm = torch.compile(m, fullgraph=True)
    y = cm(x)
    y.float().square().sum().backward()
    g_c = m.proj.weight.grad.clone()
    m.zero_grad()
    m(x).float().square().sum().backward()
    assert torch.allclose(g_c.float(), m.proj.weight.grad.float(), rtol=2e-2, atol=2e-2)


# ---------------------------------------------------------------------------------------------
# Decoding: the split-K kernel for Tq <= DECODE_MAX_TQ
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def decode_calls(monkeypatch):
    """The number of splits of each decode-kernel call: proof of which path the forward took."""
    calls = []
    real = flashsigmoid._decode_fwd
    monkeypatch.setattr(flashsigmoid, "_decode_fwd", lambda *a: calls.append(real(*a)) or calls[-1])
    return calls


# (B, H, Hkv, Tq, Tk, D, causal, alibi, dtype): one token and a few (speculative / chunked) tokens,
# odd cache lengths, MHA, GQA and MQA (groups of 4 and 8 rows per query: several row blocks), head
# dims that are and are not powers of two
DECODE_CASES = [
    (2, 4, 4, 1, 77, 64, True, True, torch.float32),
    (1, 4, 1, 1, 131, 16, True, False, torch.float16),
    (1, 8, 2, 2, 97, 40, True, True, torch.float16),
    (2, 4, 2, 7, 45, 16, False, True, torch.float32),
    (1, 8, 1, 7, 63, 40, True, True, torch.float32),
    (1, 2, 1, 2, 33, 128, False, False, torch.float32),
    (1, 2, 2, 7, 51, 128, True, True, torch.float16),
    (1, 4, 4, 16, 40, 16, True, True, torch.float32),
]


@cpu_only
@pytest.mark.parametrize("case", DECODE_CASES, ids=_case_id)
def test_cpu_decode_against_float64(case, decode_calls, monkeypatch):
    # short splits, so that the CPU-sized caches split several ways and the reduce runs
    monkeypatch.setattr(flashsigmoid, "DECODE_MIN_SPLIT_KEYS", 16)
    B, H, Hkv, Tq, Tk, D, causal, alibi, dtype = case
    q, k, v, do, bias, slopes = _inputs(B, H, Hkv, Tq, Tk, D, dtype, seed=Tq * 1000 + Tk + D, alibi=alibi)
    got = _run(sigmoid_attention, q, k, v, do, causal=causal, bias=bias, alibi_slopes=slopes)
    assert len(decode_calls) == 1 and decode_calls[0] > 1, decode_calls  # the decode path, split
    ref = _ref64(q, k, v, do, causal, bias, slopes)
    tol = 2e-5 if dtype == torch.float32 else 5e-3
    for name, a, b in zip(("o", "dq", "dk", "dv"), got, ref):  # the backward is the prefill's
        assert a.shape == b.shape and a.dtype == dtype, name
        assert _rel(a, b) < tol, (name, _rel(a, b))
    if dtype == torch.float16:  # the paper's criterion against a same-precision PyTorch version
        same = sigmoid_attention_torch(q, k, v, causal=causal, bias=bias, alibi_slopes=slopes, upcast=False)
        ek = (got[0].double() - ref[0]).abs().max().item()
        et = (same.double() - ref[0]).abs().max().item()
        assert ek <= 2 * et + 1e-3 * max(1.0, ref[0].abs().max().item()), (ek, et)
    # and the prefill kernel agrees (to rounding: the keys are summed in another order)
    monkeypatch.setattr(flashsigmoid, "DECODE_MAX_TQ", 0)
    o_prefill = sigmoid_attention(q, k, v, causal=causal, bias=bias, alibi_slopes=slopes)
    assert len(decode_calls) == 1
    assert _rel(got[0], o_prefill) < tol


@cpu_only
def test_cpu_decode_threshold_masked_rows_and_layout(decode_calls):
    # Tq = DECODE_MAX_TQ decodes, one more prefills; causal rows before the first key (Tq > Tk) are
    # exactly 0; the output comes back in q's memory order, from strided views as the model passes
    # them (heads split off (B, T, H, D) memory; keys a view of a longer preallocated cache)
    B, H, Hkv, D, Tk, L = 1, 4, 2, 16, 9, 24
    n = flashsigmoid.DECODE_MAX_TQ
    g = torch.Generator().manual_seed(9)
    cache = torch.randn(2, B, Hkv, L, D, generator=g)
    k, v = cache[0, :, :, :Tk], cache[1, :, :, :Tk]
    slopes = torch.rand(H, generator=g)
    for Tq, decoded in ((n, True), (n + 1, False)):
        decode_calls.clear()
        q = torch.randn(B, Tq, H, D, generator=g).transpose(1, 2)
        o = sigmoid_attention(q, k, v, bias=-1.0, alibi_slopes=slopes)
        assert bool(decode_calls) == decoded, (Tq, decode_calls)
        assert o.stride() == q.stride()
        ref = sigmoid_attention_torch(q.double(), k.double(), v.double(), bias=-1.0, alibi_slopes=slopes.double())
        assert _rel(o, ref) < 2e-5
        assert (o[:, :, : Tq - Tk] == 0).all()  # rows whose absolute position is before key 0


@cpu_only
def test_cpu_decode_is_bitwise_reproducible(decode_calls, monkeypatch):
    # partials summed in split order, no atomics: the same bits every run, deterministic or not
    monkeypatch.setattr(flashsigmoid, "DECODE_MIN_SPLIT_KEYS", 16)
    q, k, v, _, bias, slopes = _inputs(2, 4, 1, 3, 100, 32, torch.float16, seed=4)
    runs = [sigmoid_attention(q, k, v, bias=bias, alibi_slopes=slopes, deterministic=d) for d in (True, True, False)]
    assert decode_calls and min(decode_calls) > 1
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])


def test_decode_splits_fill_the_gpu_with_long_enough_splits():
    sms, bn, least = 132, 64, flashsigmoid.DECODE_MIN_SPLIT_KEYS
    for Tk in (1, 63, 64, 65, 320, 1000, 1024, 4097, 32768):
        for programs in (1, 12, 24, 96, 132, 384):
            splits, kps = flashsigmoid.decode_splits(Tk, programs, bn, sms)
            assert splits >= 1 and kps % bn == 0
            assert (splits - 1) * kps < Tk <= splits * kps, (Tk, programs)  # every split has keys
            assert (splits - 1) * programs < sms, (Tk, programs)  # no more splits than fill the SMs
            if splits > 1:  # each split gets its share of keys (the last one the rest)
                assert kps >= least, (Tk, programs)
    assert flashsigmoid.decode_splits(320, 12, bn, sms) == (1, 320)  # 124M, batch 1: too short to split
    assert flashsigmoid.decode_splits(1024, 12, bn, sms) == (4, 256)  # a full 124M block
    assert flashsigmoid.decode_splits(1024, 384, bn, sms) == (1, 1024)  # batch 32: already 384 programs
    assert flashsigmoid.decode_splits(8192, 12, bn, sms) == (11, 768)  # long cache: 132 programs


GPU_DECODE_CASES = [  # (B, H, Hkv, Tq, Tk, D, causal, alibi)
    (1, 12, 12, 1, 320, 64, True, True), (32, 12, 12, 1, 320, 64, True, True),
    (1, 32, 8, 1, 4097, 128, True, True), (2, 32, 1, 1, 8192, 128, True, False),
    (1, 16, 4, 7, 1001, 96, True, True), (4, 8, 2, 2, 777, 40, False, True),
    (1, 8, 8, 16, 2048, 256, True, True), (1, 4, 1, 3, 2, 64, True, True),
]


@gpu
@pytest.mark.parametrize("exact", [False, True], ids=["tanh", "exact"])
@pytest.mark.parametrize("case", GPU_DECODE_CASES, ids=str)
def test_gpu_decode_bf16_paper_criterion(case, exact, decode_calls):
    B, H, Hkv, Tq, Tk, D, causal, alibi = case
    q, k, v, _, bias, slopes = _inputs(B, H, Hkv, Tq, Tk, D, torch.bfloat16, seed=Tk, alibi=alibi)
    o = sigmoid_attention(q, k, v, causal=causal, bias=bias, alibi_slopes=slopes, exact=exact)
    assert len(decode_calls) == 1
    ref = sigmoid_attention_torch(q.float(), k.float(), v.float(), causal=causal, bias=bias, alibi_slopes=slopes)
    same = sigmoid_attention_torch(q, k, v, causal=causal, bias=bias, alibi_slopes=slopes, upcast=False)
    assert torch.isfinite(o).all()
    ek, et = (o.float() - ref).abs().max().item(), (same.float() - ref).abs().max().item()
    assert ek <= 2 * et + 1e-3 * max(1.0, ref.abs().max().item()), (ek, et, case)
    assert torch.equal(o, sigmoid_attention(q, k, v, causal=causal, bias=bias, alibi_slopes=slopes, exact=exact))


@gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=str)
def test_gpu_decode_fp16_fp32(dtype, decode_calls):
    q, k, v, _, bias, slopes = _inputs(2, 8, 2, 1, 3001, 64, dtype, seed=1)
    o = sigmoid_attention(q, k, v, bias=bias, alibi_slopes=slopes)
    assert decode_calls and decode_calls[0] > 1
    ref = sigmoid_attention_torch(q.double(), k.double(), v.double(), bias=bias, alibi_slopes=slopes.double())
    assert _rel(o, ref) < (1e-2 if dtype == torch.float16 else 1e-4)


# ---------------------------------------------------------------------------------------------
# Attention dropout: the kernels against the float64 reference with the kernels' own keep mask
# (flashsigmoid.dropout_mask), the mask's independence of tiling, its statistics, reproducibility
# ---------------------------------------------------------------------------------------------

def _ref64_drop(q, k, v, do, causal, bias, slopes, mask, p):
    return _run(lambda a, b, c, **kw: sigmoid_attention_torch(
        a, b, c, causal=causal, bias=bias, alibi_slopes=None if slopes is None else slopes.double(),
        dropout_p=p, dropout_mask=mask), q.double(), k.double(), v.double(), do.double())


# (B, H, Hkv, Tq, Tk, D, causal, alibi, dtype, dropout_p)
DROP_CASES = [
    (2, 2, 2, 17, 17, 32, True, True, torch.float32, 0.1),
    (1, 4, 2, 70, 45, 40, True, True, torch.float16, 0.5),  # Tq > Tk, GQA, padded head dim
    (1, 4, 1, 33, 97, 64, False, True, torch.float32, 0.3),  # Tq < Tk, MQA, not causal
    (1, 2, 2, 1, 53, 16, True, False, torch.float16, 0.2),  # a decode row
    (1, 2, 1, 113, 113, 16, False, False, torch.float32, 0.9),
    (1, 2, 2, 129, 129, 16, True, True, torch.float16, 0.25),  # several diagonal / full blocks
]


@cpu_only
@pytest.mark.parametrize("case", DROP_CASES, ids=lambda c: "B{}H{}kv{}q{}k{}D{}{}{}{}p{}".format(
    *c[:6], "c" if c[6] else "n", "A" if c[7] else "", str(c[8])[-2:], c[9]))
@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "det"])
def test_cpu_dropout_against_float64(case, deterministic):
    B, H, Hkv, Tq, Tk, D, causal, alibi, dtype, p = case
    q, k, v, do, bias, slopes = _inputs(B, H, Hkv, Tq, Tk, D, dtype, seed=Tq * 1000 + Tk + D)
    seed = 99991 * Tq + Tk
    got = _run(sigmoid_attention, q, k, v, do, causal=causal, bias=bias, alibi_slopes=slopes,
               deterministic=deterministic, dropout_p=p, seed=seed)
    mask = flashsigmoid.dropout_mask(seed, B, H, Tq, Tk, p, DEV)
    ref = _ref64_drop(q, k, v, do, causal, bias, slopes, mask, p)
    tol = 2e-5 if dtype == torch.float32 else 5e-3
    for name, a, b in zip(("o", "dq", "dk", "dv"), got, ref):
        assert a.shape == b.shape and a.dtype == dtype, name
        assert _rel(a, b) < tol, (name, _rel(a, b))
    # the mask matters: without it (or with another seed's) the same comparison fails by far
    other = _ref64_drop(q, k, v, do, causal, bias, slopes, flashsigmoid.dropout_mask(seed + 1, B, H, Tq, Tk, p, DEV), p)
    for name, a, b in zip(("o", "dq", "dk", "dv"), got, other):
        assert _rel(a, b) > 20 * tol, name


@cpu_only
@pytest.mark.parametrize("case,window,p", [((1, 4, 2, 90, 90, 32, True, True, torch.float32), (20, 0), 0.2),
                                           ((1, 2, 1, 50, 70, 16, False, True, torch.float16), (5, 7), 0.1)], ids=str)
@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "det"])
def test_cpu_window_with_dropout_against_float64(case, window, p, deterministic):
    """A window and dropout together: the reference with the window and the kernel's own keep mask."""
    B, H, Hkv, Tq, Tk, D, causal, alibi, dtype = case
    q, k, v, do, bias, slopes = _inputs(B, H, Hkv, Tq, Tk, D, dtype, seed=31)
    got = _run(sigmoid_attention, q, k, v, do, causal=causal, bias=bias, alibi_slopes=slopes, window=window,
               dropout_p=p, seed=17, deterministic=deterministic)
    ref = _run(lambda a, b, c, **kw: sigmoid_attention_torch(
        a, b, c, causal=causal, bias=bias, alibi_slopes=slopes.double(), window=window, dropout_p=p,
        dropout_mask=flashsigmoid.dropout_mask(17, B, H, Tq, Tk, p, DEV)), q.double(), k.double(), v.double(), do.double())
    tol = 2e-5 if dtype == torch.float32 else 5e-3
    for name, a, b in zip(("o", "dq", "dk", "dv"), got, ref):
        assert _rel(a, b) < tol, (name, _rel(a, b))


@cpu_only
@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "det"])
def test_cpu_varlen_with_dropout_against_float64_per_sequence(deterministic):
    """Packed sequences with dropout: the mask of the packed rows and keys (dropout_mask with B = 1 over
    total_q x total_k), each sequence's block of it applied by the per-sequence reference."""
    lq, lk, H, p, seed = [37, 1, 50, 0, 20], [37, 1, 64, 0, 9], 4, 0.25, 5
    q, k, v, do, bias, slopes, cu_q, cu_k = _varlen_inputs(lq, lk, H, 2, 16, torch.float32, seed=8)
    got = _run(lambda a, b, c, **kw: flashsigmoid.sigmoid_attention_varlen(
        a, b, c, cu_q, cu_k, max(lq), max(lk), bias=bias, alibi_slopes=slopes, dropout_p=p, seed=seed,
        deterministic=deterministic), q, k, v, do)
    mask = flashsigmoid.dropout_mask(seed, 1, H, sum(lq), sum(lk), p, DEV)
    ref = _varlen_ref64(q, k, v, do, cu_q, cu_k, True, bias, slopes, mask=mask, p=p)
    other = _varlen_ref64(q, k, v, do, cu_q, cu_k, True, bias, slopes, p=p,
                          mask=flashsigmoid.dropout_mask(seed + 1, 1, H, sum(lq), sum(lk), p, DEV))
    for name, a, b, c in zip(("o", "dq", "dk", "dv"), got, ref, other):
        assert _rel(a, b) < 2e-5 and _rel(a, c) > 1e-2, (name, _rel(a, b), _rel(a, c))


def _one_hot_run(T_q, T_k, H, p, seed, dtype=torch.float32, **kw):
    # v = identity columns (D = Tk) makes O expose P_drop itself (O[i, j] = P_drop[i, j]), and
    # dO = identity rows (Tq <= Tk) makes dV expose P_drop^T: the masks the forward and dK/dV kernels applied
    q, k, _, _, bias, _ = _inputs(1, H, H, T_q, T_k, 16, dtype, seed=seed, alibi=False)
    q = q.repeat(1, 1, 1, T_k // 16 + 1)[..., :T_k] * 0.3  # moderate logits: no weight underflows to 0
    k = k.repeat(1, 1, 1, T_k // 16 + 1)[..., :T_k] * 0.3
    v = torch.eye(T_k, device=DEV, dtype=dtype).expand(1, H, T_k, T_k).contiguous()
    do = torch.eye(T_q, T_k, device=DEV, dtype=dtype).expand(1, H, T_q, T_k).contiguous()
    return q, k, v, do, _run(sigmoid_attention, q, k, v, do, causal=False, bias=-1.0, dropout_p=p, seed=seed, **kw)


@cpu_only
@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "det"])
def test_cpu_dropout_mask_is_dropout_mask_whatever_the_blocks(monkeypatch, deterministic):
    Tq, Tk, H, p, seed = 37, 50, 2, 0.4, 2024
    mask = flashsigmoid.dropout_mask(seed, 1, H, Tq, Tk, p, DEV)
    results = []
    for cfg in ({"fwd": (32, 16), "dkdv": (16, 32), "dq": (32, 16)},
                {"fwd": (16, 64), "dkdv": (64, 16), "dq": (16, 64)}):
        monkeypatch.setattr(flashsigmoid, "_INTERP_CFG", cfg)
        q, k, v, do, got = _one_hot_run(Tq, Tk, H, p, seed, deterministic=deterministic)
        o, dq, dk, dv = got
        assert torch.equal(o != 0, mask)  # the forward's mask, element for element
        assert torch.equal(dv[..., :Tq].transpose(-1, -2) != 0, mask)  # dK/dV's, on transposed tiles
        ref = _ref64_drop(q, k, v, do, False, -1.0, None, mask, p)
        for name, a, b in zip(("o", "dq", "dk", "dv"), got, ref):  # dQ (and atomic dQ): same mask
            assert _rel(a, b) < 2e-5, (name, cfg)
        results.append(got)
    for a, b in zip(*results):  # other tiles sum in another order: equal up to rounding only
        assert _rel(a, b) < 1e-6


@cpu_only
def test_cpu_dropout_mask_statistics():
    p, n_b, n_h, Tq, Tk = 0.3, 2, 4, 200, 300
    m = flashsigmoid.dropout_mask(7, n_b, n_h, Tq, Tk, p, DEV)
    assert m.shape == (n_b, n_h, Tq, Tk) and m.dtype == torch.bool
    sigma = math.sqrt(p * (1 - p) / m.numel())  # the keep fraction's standard deviation
    assert abs(m.float().mean().item() - (1 - p)) < 5 * sigma
    per_head = m.float().mean((-1, -2))
    assert ((per_head - (1 - p)).abs() < 5 * sigma * math.sqrt(n_b * n_h)).all()
    # independent bits: two different heads, batches, rows, columns or seeds agree on a fraction
    # p^2 + (1-p)^2 of entries, as independent draws do (a shared counter would make them equal)
    agree = p * p + (1 - p) * (1 - p)
    m2 = flashsigmoid.dropout_mask(8, n_b, n_h, Tq, Tk, p, DEV)
    for a, b in ((m[0, 0], m[0, 1]), (m[0, 0], m[1, 0]), (m[..., 1:, :], m[..., :-1, :]),
                 (m[..., 1:], m[..., :-1]), (m[:, :, :Tq, :Tq], m[:, :, :Tq, :Tq].transpose(-1, -2)), (m, m2)):
        frac = (a == b).float().mean().item()
        assert abs(frac - agree) < 5 * math.sqrt(agree * (1 - agree) / a.numel()) + 1e-3, frac
    assert flashsigmoid.dropout_mask(7, 1, 1, 5, 7, 0.0, DEV).all()  # p = 0 keeps everything
    assert torch.equal(flashsigmoid.dropout_mask(7, 1, 2, Tq, Tk, p, DEV), m[:1, :2])  # shape-independent bits


@cpu_only
def test_cpu_dropout_is_unbiased():
    # inverted dropout: the sum of P_drop = M P / (1 - p) over N entries has mean sum(P) and standard
    # deviation sqrt(sum(P^2) p / (1 - p)); v = ones makes O's rows those sums
    B, H, T, p = 1, 4, 256, 0.4
    q, k, _, _, bias, _ = _inputs(B, H, H, T, T, 16, torch.float32, seed=11, alibi=False)
    v = torch.ones(B, H, T, 16)
    P = sigmoid_attention_torch(q.double(), k.double(), torch.eye(T, dtype=torch.float64).expand(B, H, T, T),
                                causal=False, bias=-1.0)
    total, sigma = P.sum().item(), math.sqrt((P * P).sum().item() * p / (1 - p))
    assert p * total > 50 * sigma  # the test's power: forgetting the 1/(1-p) would fail by far
    for seed in (1, 2):
        o = sigmoid_attention(q, k, v, causal=False, bias=-1.0, dropout_p=p, seed=seed)
        assert abs(o[..., 0].double().sum().item() - total) < 5 * sigma


@cpu_only
def test_cpu_dropout_seed_reproducibility():
    q, k, v, do, bias, slopes = _inputs(1, 2, 1, 40, 40, 16, torch.float32, seed=4)
    kw = dict(bias=bias, alibi_slopes=slopes, dropout_p=0.3)
    a = _run(sigmoid_attention, q, k, v, do, seed=5, **kw)
    b = _run(sigmoid_attention, q, k, v, do, seed=torch.tensor([5]), **kw)  # an int or a tensor, same key
    c = _run(sigmoid_attention, q, k, v, do, seed=6, **kw)
    for name, x, y, z in zip(("o", "dq", "dk", "dv"), a, b, c):
        assert torch.equal(x, y), name
        assert not torch.allclose(x, z), name
    # seed=None: drawn from torch's generator, so torch.manual_seed reproduces it (the seed new_seed gives)
    torch.manual_seed(123)
    d = sigmoid_attention(q, k, v, **kw)
    torch.manual_seed(123)
    seed = flashsigmoid.new_seed(DEV)
    assert torch.equal(d, sigmoid_attention(q, k, v, seed=seed, **kw))
    assert not torch.equal(d, sigmoid_attention(q, k, v, **kw))  # the generator moved on: a new mask


@cpu_only
def test_cpu_dropout_backward_uses_the_forwards_seed():
    # the generator moves on between forward and backward (other layers draw): the backward must
    # regenerate the forward's mask from the saved seed, not draw a new one
    B, H, T, p = 1, 2, 33, 0.5
    q, k, v, do, bias, slopes = _inputs(B, H, H, T, T, 16, torch.float32, seed=9)
    torch.manual_seed(77)
    seed = flashsigmoid.new_seed(DEV)
    qq, kk, vv = (t.clone().requires_grad_(True) for t in (q, k, v))
    torch.manual_seed(77)
    o = sigmoid_attention(qq, kk, vv, bias=bias, alibi_slopes=slopes, dropout_p=p)
    torch.rand(1000)
    got = (o, *torch.autograd.grad(o, (qq, kk, vv), do))
    ref = _ref64_drop(q, k, v, do, True, bias, slopes, flashsigmoid.dropout_mask(seed, B, H, T, T, p, DEV), p)
    for name, a, b in zip(("o", "dq", "dk", "dv"), got, ref):
        assert _rel(a, b) < 2e-5, name


@cpu_only
def test_cpu_dropout_zero_is_the_kernel_without_dropout(monkeypatch):
    # dropout_p = 0 launches the kernels compiled without dropout (HAS_DROPOUT=False), gives bitwise
    # the plain call's results, and draws no seed (the RNG stream of a model without dropout is untouched)
    launched = []
    real = flashsigmoid._launch
    monkeypatch.setattr(flashsigmoid, "_launch", lambda *a: launched.append(a[-1]["HAS_DROPOUT"]) or real(*a))
    q, k, v, do, bias, slopes = _inputs(1, 2, 1, 30, 30, 16, torch.float32, seed=3)
    plain = _run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes)
    state = torch.get_rng_state()
    zero = _run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes, dropout_p=0.0)
    assert torch.equal(state, torch.get_rng_state())
    assert launched and not any(launched), launched
    for a, b in zip(plain, zero):
        assert torch.equal(a, b)
    launched.clear()
    _run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes, dropout_p=0.1)
    assert launched and all(launched)


@cpu_only
def test_cpu_dropout_compiles_without_graph_break():
    # seed=None draws a device tensor inside the traced function: no .item(), no graph break, and the
    # compiled step draws the same seed as the eager one
    q, k, v, do, bias, slopes = _inputs(1, 2, 1, 20, 20, 16, torch.float32, seed=5)

    def f(q, k, v):
        return sigmoid_attention(q, k, v, bias=bias, alibi_slopes=slopes, dropout_p=0.3)
    cf = torch.compile(f, backend="aot_eager", fullgraph=True)  # fullgraph: fails on a graph break
    torch.manual_seed(3)
    got = _run(lambda a, b, c, **kw: cf(a, b, c), q, k, v, do)
    torch.manual_seed(3)
    want = _run(lambda a, b, c, **kw: f(a, b, c), q, k, v, do)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw,needle", [
    (dict(dropout_p=1.0), "dropout_p"), (dict(dropout_p=-0.1), "dropout_p"),
    (dict(dropout_p=float("nan")), "dropout_p"), (dict(dropout_p="0.1"), "dropout_p"),
    (dict(dropout_p=True), "dropout_p"),
    (dict(dropout_p=0.1, seed="1"), "seed"), (dict(dropout_p=0.1, seed=1.5), "seed"),
    (dict(dropout_p=0.1, seed=-1), "seed"), (dict(dropout_p=0.1, seed=2 ** 63), "seed"),
    (dict(dropout_p=0.1, seed=True), "seed"), (dict(dropout_p=0.1, seed=torch.tensor([1.5])), "seed"),
    (dict(dropout_p=0.1, seed=torch.tensor([1, 2])), "seed"),
], ids=str)
def test_bad_dropout_arguments_raise(kw, needle):
    with pytest.raises(ValueError, match=needle):
        sigmoid_attention(*(_t(1, 2, 8, 16),) * 3, **kw)


def test_dropout_mask_needs_a_seed():
    with pytest.raises(ValueError, match="seed"):
        flashsigmoid.dropout_mask(None, 1, 1, 4, 4, 0.1, DEV)


@gpu
@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "det"])
@pytest.mark.parametrize("p", [0.1, 0.5])
@pytest.mark.parametrize("case", [
    (2, 4, 4, 113, 203, 64, True, True), (2, 4, 2, 203, 113, 128, False, True),
    (1, 4, 1, 1023, 1024, 64, True, False), (1, 4, 2, 255, 2049, 64, True, True),
    (1, 2, 2, 300, 517, 256, True, True), (1, 4, 2, 300, 2100, 96, True, True),
    (1, 2, 1, 4096, 4096, 128, True, True)], ids=str)
def test_gpu_dropout_bf16_paper_criterion(case, p, deterministic):
    _check_paper(case, exact=False, seed=17, dropout_p=p, deterministic=deterministic)


@gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=str)
def test_gpu_dropout_fp16_fp32(dtype):
    tol = 1e-2 if dtype == torch.float16 else 1e-4
    B, H, Hkv, T, p, seed = 2, 4, 2, 333, 0.2, 5
    q, k, v, do, bias, slopes = _inputs(B, H, Hkv, T, T, 64, dtype, seed=7)
    ref = _ref64_drop(q, k, v, do, True, bias, slopes, flashsigmoid.dropout_mask(seed, B, H, T, T, p, DEV), p)
    r1 = _run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes, dropout_p=p, seed=seed, deterministic=True)
    r2 = _run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes, dropout_p=p, seed=seed, deterministic=True)
    r3 = _run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes, dropout_p=p, seed=seed)
    for name, a, b, c, r in zip(("o", "dq", "dk", "dv"), r1, r2, r3, ref):
        assert torch.equal(a, b), name  # deterministic: bitwise the same twice
        assert _rel(a, r) < tol and _rel(c, r) < tol, (name, _rel(a, r), _rel(c, r))


@gpu
@pytest.mark.parametrize("config", [0, 1, 2, "autotune"], ids=str)
@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "det"])
def test_gpu_dropout_mask_is_dropout_mask_whatever_the_blocks(monkeypatch, config, deterministic):
    # the GPU's block sizes (table entries, or autotuned) differ from the interpreter's and from each
    # other: the mask is the same
    monkeypatch.setattr(flashsigmoid, "AUTOTUNE", config == "autotune")
    if config != "autotune":
        monkeypatch.setattr(flashsigmoid, "_DEFAULT", config)
    _atomic_from(monkeypatch, 1)
    Tq, Tk, H, p, seed = 100, 128, 2, 0.3, 31337
    q, k, v, do, got = _one_hot_run(Tq, Tk, H, p, seed, dtype=torch.bfloat16, exact=True, deterministic=deterministic)
    mask = flashsigmoid.dropout_mask(seed, 1, H, Tq, Tk, p, DEV)
    assert torch.equal(got[0] != 0, mask)
    assert torch.equal(got[3][..., :Tq].transpose(-1, -2) != 0, mask)


@gpu
def test_gpu_dropout_statistics():
    p = 0.2
    m = flashsigmoid.dropout_mask(3, 4, 8, 1024, 1024, p, DEV)
    sigma = math.sqrt(p * (1 - p) / m.numel())
    assert abs(m.float().mean().item() - (1 - p)) < 5 * sigma
    B, H, T = 1, 8, 2048  # unbiased, through the atomic-dQ length
    q, k, _, _, bias, _ = _inputs(B, H, H, T, T, 64, torch.bfloat16, seed=11, alibi=False)
    v = torch.ones(B, H, T, 64, device=DEV, dtype=torch.bfloat16)
    P = torch.sigmoid((q.double() @ k.double().transpose(-1, -2)) / 8 - 2.0)
    total, sd = P.sum().item(), math.sqrt((P * P).sum().item() * p / (1 - p))
    o = sigmoid_attention(q, k, v, causal=False, bias=-2.0, dropout_p=p, seed=1, exact=True)
    assert abs(o[..., 0].double().sum().item() - total) < 5 * sd + 1e-3 * total  # bf16 rounding of O


@cpu_only
def test_cpu_dropout_short_queries_take_the_prefill_kernel(decode_calls):
    # the decode kernel has no dropout: a short query with dropout_p > 0 takes the prefill kernel,
    # which applies the mask; without dropout the decode kernel still runs
    B, H, Tq, Tk, p, seed = 1, 2, 3, 40, 0.5, 8
    q, k, v, do, bias, slopes = _inputs(B, H, H, Tq, Tk, 16, torch.float32, seed=2)
    got = _run(sigmoid_attention, q, k, v, do, bias=bias, alibi_slopes=slopes, dropout_p=p, seed=seed)
    assert not decode_calls
    ref = _ref64_drop(q, k, v, do, True, bias, slopes, flashsigmoid.dropout_mask(seed, B, H, Tq, Tk, p, DEV), p)
    for name, a, b in zip(("o", "dq", "dk", "dv"), got, ref):
        assert _rel(a, b) < 2e-5, name
    sigmoid_attention(q, k, v, bias=bias, alibi_slopes=slopes)
    assert decode_calls


# A bias per head (bias=(H,) tensor: model.py's sigmoid_bias='per_head'): each head adds its own b_h;
# prefill, decoding (Tq <= DECODE_MAX_TQ) and packed sequences, with and without ALiBi.
HEAD_BIAS_CASES = [  # (B, H, Hkv, Tq, Tk, D, causal, alibi, dtype)
    (2, 4, 2, 37, 37, 32, True, True, torch.float32),
    (1, 4, 4, 3, 50, 16, True, True, torch.float32),  # decode kernel
    (1, 4, 1, 20, 33, 16, False, False, torch.float32),
    (1, 2, 2, 45, 45, 40, True, True, torch.float16),
]


@cpu_only
@pytest.mark.parametrize("case", HEAD_BIAS_CASES, ids=str)
@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "det"])
def test_cpu_per_head_bias_against_float64(case, deterministic):
    B, H, Hkv, Tq, Tk, D, causal, alibi, dtype = case
    q, k, v, do, _, slopes = _inputs(B, H, Hkv, Tq, Tk, D, dtype, seed=Tq + Tk, alibi=alibi)
    bias = torch.linspace(-6.0, 1.5, H)  # far apart: a head given another's bias would show
    got = _run(lambda a, b, c, **kw: sigmoid_attention(a, b, c, causal=causal, bias=bias, alibi_slopes=slopes,
                                                       deterministic=deterministic), q, k, v, do)
    ref = _ref64(q, k, v, do, causal, bias.double(), slopes)
    tol = 2e-5 if dtype == torch.float32 else 5e-3
    for name, a, b in zip(("o", "dq", "dk", "dv"), got, ref):
        assert _rel(a, b) < tol, (name, _rel(a, b))


@cpu_only
def test_cpu_per_head_bias_varlen_and_errors():
    lq, lk = [5, 17, 1], [9, 17, 30]
    q, k, v, do, _, slopes, cu_q, cu_k = _varlen_inputs(lq, lk, 4, 2, 32, torch.float32, seed=3)
    bias = torch.tensor([-5.0, -2.0, 0.5, -1.0])
    got = _run(lambda a, b, c, **kw: flashsigmoid.sigmoid_attention_varlen(
        a, b, c, cu_q, cu_k, max(lq), max(lk), bias=bias, alibi_slopes=slopes), q, k, v, do)
    ref = _varlen_ref64(q, k, v, do, cu_q, cu_k, True, bias.double(), slopes)
    for name, a, b in zip(("o", "dq", "dk", "dv"), got, ref):
        assert _rel(a, b) < 2e-5, (name, _rel(a, b))
    q, k, v = (torch.randn(1, 4, 8, 16) for _ in range(3))
    with pytest.raises(ValueError, match=r"shape \(H,\) = \(4,\)"):
        sigmoid_attention(q, k, v, bias=torch.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        sigmoid_attention(q, k, v, bias=torch.tensor([0.0, float("nan"), 0.0, 0.0]))


@gpu
@pytest.mark.parametrize("case", [(2, 8, 2, 1024, 1024, 64, True, True), (1, 4, 4, 1, 777, 128, True, True),
                                  (1, 4, 2, 300, 2100, 96, True, False)], ids=str)
def test_gpu_bf16_per_head_bias(case):
    B, H, Hkv, Tq, Tk, D, causal, alibi = case
    q, k, v, do, _, slopes = _inputs(B, H, Hkv, Tq, Tk, D, torch.bfloat16, seed=Tq, alibi=alibi)
    bias = torch.linspace(-8.0, 0.0, H, device=DEV)
    got = _run(lambda a, b, c, **kw: sigmoid_attention(a, b, c, causal=causal, bias=bias, alibi_slopes=slopes),
               q, k, v, do)
    ref = _ref64(q, k, v, do, causal, bias.double(), slopes)
    for name, a, b in zip(("o", "dq", "dk", "dv"), got, ref):
        assert _rel(a, b) < 2e-2, (name, _rel(a, b))
