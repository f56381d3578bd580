"""qknorm.py: QK-norm's one-pass kernels equal nn.RMSNorm per head, forward and backward.

CPU: through the Triton interpreter against a float64 reference; GPU (skipped without CUDA): bf16
under torch.compile, and the model with and without the fused path.
"""
import os

import pytest
import torch
import torch.nn as nn

if not torch.cuda.is_available():  # must precede the import of qknorm (kernels are defined then)
    os.environ.setdefault("TRITON_INTERPRET", "1")

import qknorm  # noqa: E402
from helpers import Launches  # noqa: E402

CUDA = torch.cuda.is_available() and not qknorm._INTERPRET
DEV = "cuda" if CUDA else "cpu"


def _reference(x, wq, wk, nh, nkv, eps):
    """nn.RMSNorm(hs) with weight wq on each q head and wk on each k head, in float64."""
    B, T, C = x.shape
    hs = C // (nh + nkv)
    q, k = x.double().split([nh * hs, nkv * hs], dim=-1)
    out = []
    for t, w, n in ((q, wq, nh), (k, wk, nkv)):
        norm = nn.RMSNorm(hs, eps=eps).double().to(x.device)
        norm.weight = nn.Parameter(w.detach().double())
        out.append((norm(t.reshape(B, T, n, hs)), norm.weight))
    return out


def _attention_reference(qkv, wq, wk, nh, nkv, dy, **kw):
    """qk_norm_sigmoid_attention in float64 (RMSNorm per head, then model.sigmoid_attention_torch with the
    keyword arguments kw): the output and the gradients of qkv, wq and wk for output gradient dy."""
    from model import sigmoid_attention_torch
    B, T, C = qkv.shape
    hs = C // (nh + 2 * nkv)
    x64 = qkv.detach().double().requires_grad_(True)
    (q64, wq64), (k64, wk64) = _reference(x64[..., :(nh + nkv) * hs], wq, wk, nh, nkv, 1e-5)
    v64 = x64[..., (nh + nkv) * hs:].view(B, T, nkv, hs)
    y64 = sigmoid_attention_torch(q64.transpose(1, 2), k64.transpose(1, 2), v64.transpose(1, 2), **kw)
    return (y64, *torch.autograd.grad(y64, (x64, wq64, wk64), dy.double()))


@pytest.mark.parametrize("B,T,nh,nkv,hs,dtype", [
    (2, 7, 4, 4, 16, torch.float32),   # odd length; rows not a multiple of the block
    (1, 5, 4, 2, 40, torch.float32),   # GQA, head dim no power of two
    (3, 3, 3, 1, 64, torch.float16),   # MQA, fp16
    (1, 9, 2, 2, 3, torch.float32),    # a tiny head dim, padded to 4
])
def test_matches_rmsnorm_per_head_forward_and_backward(B, T, nh, nkv, hs, dtype):
    g = torch.Generator().manual_seed(hs + T)
    C = (nh + 2 * nkv) * hs
    qkv = (torch.randn(B, T, C, generator=g) * 3).to(DEV, dtype).requires_grad_(True)
    wq = (torch.rand(hs, generator=g) + 0.5).to(DEV).requires_grad_(True)
    wk = (torch.rand(hs, generator=g) + 0.5).to(DEV).requires_grad_(True)
    x = qkv[..., :(nh + nkv) * hs]  # the q and k slice of the projection, as the model passes it
    q, k = qknorm.qk_rmsnorm(x, wq, wk, nh, nkv, 1e-5)
    assert q.shape == (B, T, nh, hs) and k.shape == (B, T, nkv, hs) and q.dtype == k.dtype == dtype
    dq, dk = torch.randn(q.shape, generator=g).to(DEV, dtype), torch.randn(k.shape, generator=g).to(DEV, dtype)
    gx, gwq, gwk = torch.autograd.grad((q, k), (qkv, wq, wk), (dq, dk))

    x64 = qkv.detach().double().requires_grad_(True)
    (q64, wq64), (k64, wk64) = _reference(x64[..., :(nh + nkv) * hs], wq, wk, nh, nkv, 1e-5)
    rx, rwq, rwk = torch.autograd.grad((q64, k64), (x64, wq64, wk64), (dq.double(), dk.double()))
    tol = 1e-5 if dtype == torch.float32 else 2e-3
    for got, ref in ((q, q64), (k, k64), (gx, rx), (gwq, rwq), (gwk, rwk)):
        err = ((got.double() - ref).norm() / ref.norm().clamp_min(1e-30)).item()
        assert err < tol, err
    assert gx[..., (nh + nkv) * hs:].abs().max() == 0  # v's part of the projection gets nothing from here


def test_output_dtype_and_errors():
    x = torch.randn(1, 2, 3 * 8, device=DEV)
    w = torch.ones(8, device=DEV)
    q, k = qknorm.qk_rmsnorm(x, w, w, 2, 1, dtype=torch.float16)
    assert q.dtype == k.dtype == torch.float16
    with pytest.raises(ValueError, match="nh=2, nkv=3"):
        qknorm.qk_rmsnorm(x, w, w, 2, 3)
    with pytest.raises(ValueError, match=r"\(8,\)"):
        qknorm.qk_rmsnorm(x, torch.ones(4, device=DEV), w, 2, 1)


def test_opcheck():
    x = torch.randn(2, 3, 3 * 16, device=DEV, requires_grad=True)
    w = torch.rand(16, device=DEV, requires_grad=True)
    torch.library.opcheck(qknorm._fwd, (x, w, w.detach().clone().requires_grad_(True), 2, 1, 1e-5, torch.float32))


def _assert_fused_equals_unfused(monkeypatch, attn_impl, T):
    """A small GQA model's loss and gradients with model.FUSED_QK_NORM off and on agree."""
    import model
    torch.manual_seed(0)
    cfg = model.GPTConfig(block_size=T, vocab_size=64, n_layer=2, n_head=4, n_kv_head=2, n_embd=64)
    m = model.GPT(cfg, attn_impl=attn_impl).to(DEV)
    for blk in m.transformer.h:  # gains away from 1, so a mix-up of wq and wk would show
        nn.init.uniform_(blk.attn.q_norm.weight, 0.5, 1.5)
        nn.init.uniform_(blk.attn.k_norm.weight, 0.5, 1.5)
    idx = torch.randint(64, (2, T), device=DEV)
    out = {}
    for fused in (False, True):
        monkeypatch.setattr(model, "FUSED_QK_NORM", fused)
        m.zero_grad()
        _, loss = m(idx, idx)
        loss.backward()
        out[fused] = (loss.item(), [p.grad.clone() for p in m.parameters()])
    assert abs(out[True][0] - out[False][0]) < 1e-5
    for a, b in zip(out[True][1], out[False][1]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_model_with_and_without_the_fused_qk_norm(monkeypatch):
    _assert_fused_equals_unfused(monkeypatch, "torch", 16)


# ----------------------------------------------------------------------------------------------
# QK-norm and FlashSigmoid attention as one op, from the packed projection


@pytest.mark.parametrize("nh,nkv,hs,window,per_head,deterministic,epilogue", [
    (4, 4, 16, None, False, True, False),    # the dQ kernel, then QK-norm's backward kernel
    (4, 2, 16, (5, 0), True, False, False),  # GQA, a window, a bias per head; dQ by atomic adds
    (2, 1, 24, None, False, False, False),   # MQA, head dim no power of two; atomic dQ
    (4, 4, 16, None, False, True, True),     # QK-norm's backward in the attention kernels' epilogues
    (4, 2, 16, (5, 0), True, True, True),    # the same: GQA, a window, a bias per head
    (2, 1, 24, None, False, True, True),     # the same: MQA, head dim padded (24 -> 32)
])
def test_qk_norm_attention_matches_rmsnorm_then_attention(monkeypatch, nh, nkv, hs, window, per_head, deterministic,
                                                          epilogue):
    """qk_norm_sigmoid_attention equals RMSNorm per head (float64) then model.sigmoid_attention_torch,
    output and the gradients of qkv (all three parts, from one buffer) and of both gains; with QK-norm's
    backward in the attention kernels' epilogues (the default where the dQ kernel runs) and without."""
    import flashsigmoid
    from model import alibi_slopes
    monkeypatch.setattr(flashsigmoid, "ATOMIC_DQ_MIN_LEN", 16)  # the interpreter's lengths are short
    monkeypatch.setattr(flashsigmoid, "ATOMIC_DQ_MIN_LEN_TMA", 16)
    monkeypatch.setattr(qknorm, "EPILOGUE", epilogue)
    calls = []
    monkeypatch.setattr(flashsigmoid, "_bwd_into",
                        lambda *a, _f=flashsigmoid._bwd_into, **kw: calls.append("qkn" in kw) or _f(*a, **kw))
    g = torch.Generator().manual_seed(nh * hs)
    B, T, C = 2, 21, (nh + 2 * nkv) * hs  # T > 16: the prefill kernel, not decoding's
    qkv = torch.randn(B, T, C, generator=g).to(DEV).requires_grad_(True)
    wq = (torch.rand(hs, generator=g) + 0.5).to(DEV).requires_grad_(True)
    wk = (torch.rand(hs, generator=g) + 0.5).to(DEV).requires_grad_(True)
    slopes = alibi_slopes(nh).to(DEV)
    bias = -torch.rand(nh, generator=g).to(DEV) * 3 if per_head else -3.0
    y = qknorm.qk_norm_sigmoid_attention(qkv, wq, wk, nh, nkv, 1e-5, bias=bias, alibi_slopes=slopes, window=window,
                                         deterministic=deterministic)
    assert y.shape == (B, nh, T, hs) and y.transpose(1, 2).is_contiguous()  # laid out as (B, T, nh, hs)
    dy = torch.randn(y.shape, generator=g).to(DEV)
    grads = torch.autograd.grad(y, (qkv, wq, wk), dy)

    refs = _attention_reference(qkv, wq, wk, nh, nkv, dy, bias=bias.double() if per_head else bias,
                                alibi_slopes=slopes.double(), window=window)
    for name, got, ref in zip(("y", "dqkv", "dwq", "dwk"), (y, *grads), refs):
        err = ((got.double() - ref).norm() / ref.norm()).item()
        assert err < 1e-4, (name, err)
    assert calls == [epilogue]  # the epilogue ran exactly when asked for and possible (deterministic)


@pytest.mark.skipif(not CUDA or torch.cuda.get_device_capability()[0] != 9, reason="Hopper's Gluon dK/dV")
@pytest.mark.parametrize("nkv", [4, 2])  # the epilogue's rows loaded before the key loop, and with grouped heads after
def test_gpu_backward_in_the_gluon_dkdv_epilogue(monkeypatch, nkv):
    """At head dim 64 on Hopper the fused op's dK/dV is the Gluon kernel, with QK-norm's backward in its
    epilogue: it runs (counted), and the bf16 output and gradients are as close to float64 as those of the
    separate QK-norm backward kernel (EPILOGUE off)."""
    import math

    import flashsigmoid
    from model import alibi_slopes
    if flashsigmoid.GluonDescriptor is None or 64 not in flashsigmoid.GLUON_DKDV:
        pytest.skip("a Triton without Gluon")
    spy = Launches(flashsigmoid._gl_dkdv_kernel)
    monkeypatch.setattr(flashsigmoid, "_gl_dkdv_kernel", spy)
    nh, hs, B, T = 4, 64, 2, 600
    g = torch.Generator().manual_seed(nkv)
    qkv = torch.randn(B, T, (nh + 2 * nkv) * hs, generator=g).to(DEV, torch.bfloat16).requires_grad_(True)
    wq = (torch.rand(hs, generator=g) + 0.5).to(DEV).requires_grad_(True)
    wk = (torch.rand(hs, generator=g) + 0.5).to(DEV).requires_grad_(True)
    slopes = alibi_slopes(nh).to(DEV)
    dy = torch.randn(B, nh, T, hs, generator=g).to(DEV, torch.bfloat16)
    out = {}
    for epilogue in (True, False):
        monkeypatch.setattr(qknorm, "EPILOGUE", epilogue)
        y = qknorm.qk_norm_sigmoid_attention(qkv, wq, wk, nh, nkv, bias=-math.log(T), alibi_slopes=slopes,
                                             deterministic=True)
        out[epilogue] = (y, *torch.autograd.grad(y, (qkv, wq, wk), dy))
    assert spy.n == 2  # the Gluon dK/dV, with the epilogue and without
    refs = _attention_reference(qkv, wq, wk, nh, nkv, dy, bias=-math.log(T), alibi_slopes=slopes.double())
    for name, a, b, r in zip(("y", "dqkv", "dwq", "dwk"), out[True], out[False], refs):
        ea, eb = (((t.double() - r).norm() / r.norm()).item() for t in (a, b))
        assert ea <= 1.2 * eb + 1e-4, (name, ea, eb)


def test_qk_norm_backward_in_the_epilogue_with_dropout_equals_the_separate_kernel(monkeypatch):
    """With attention dropout (the same seed, so the same mask), QK-norm's backward in the attention
    kernels' epilogues gives the separate kernel's gradients."""
    g = torch.Generator().manual_seed(7)
    nh, nkv, hs, B, T = 4, 2, 16, 2, 19
    qkv = torch.randn(B, T, (nh + 2 * nkv) * hs, generator=g).to(DEV).requires_grad_(True)
    wq = (torch.rand(hs, generator=g) + 0.5).to(DEV).requires_grad_(True)
    wk = (torch.rand(hs, generator=g) + 0.5).to(DEV).requires_grad_(True)
    dy = torch.randn(B, nh, T, hs, generator=g).to(DEV)
    out = {}
    for epilogue in (False, True):
        monkeypatch.setattr(qknorm, "EPILOGUE", epilogue)
        y = qknorm.qk_norm_sigmoid_attention(qkv, wq, wk, nh, nkv, dropout_p=0.3, seed=1234, deterministic=True)
        out[epilogue] = (y, *torch.autograd.grad(y, (qkv, wq, wk), dy))
    for a, b in zip(out[False], out[True]):
        assert a.abs().max() > 0  # not trivially zero
        assert ((a.double() - b.double()).norm() / b.double().norm()).item() < 1e-5


def test_model_with_qk_norm_and_attention_fused_on_the_kernel(monkeypatch):
    """The model on the kernel (attn_impl='triton'), with FUSED_QK_NORM: one op for QK-norm and attention
    (ALiBi), the same loss and gradients as nn.RMSNorm then the kernel."""
    calls = []
    monkeypatch.setattr(qknorm, "qk_norm_sigmoid_attention",
                        lambda *a, _f=qknorm.qk_norm_sigmoid_attention, **kw: calls.append(1) or _f(*a, **kw))
    _assert_fused_equals_unfused(monkeypatch, "triton", 20)
    assert len(calls) == 2  # the fused op ran, once per layer (2), only when asked for


def test_qk_norm_attention_opcheck():
    """The fused op's fake (torch.compile) implementation agrees with the real one, autograd included."""
    x = torch.randn(1, 20, 4 * 16, device=DEV, requires_grad=True)
    w = torch.rand(16, device=DEV, requires_grad=True)
    torch.library.opcheck(qknorm._attn_fwd, (x, w, w.detach().clone().requires_grad_(True), 2, 1, 1e-5, None, -3.0,
                                             0.25, True, True, 0.0, None, -1, -1))


def test_qk_norm_attention_keeps_the_normed_heads_not_the_projection():
    """For its backward the fused op keeps p = [q, k normed; v] (qkv's size) and the rows' 1/rms, not qkv
    itself beside them: qkv's memory is free once the forward returns."""
    nh, nkv, hs, B, T = 4, 2, 16, 2, 19
    g = torch.Generator().manual_seed(8)
    qkv = torch.randn(B, T, (nh + 2 * nkv) * hs, generator=g).to(DEV).requires_grad_(True)
    wq = (torch.rand(hs, generator=g) + 0.5).to(DEV).requires_grad_(True)
    wk = (torch.rand(hs, generator=g) + 0.5).to(DEV).requires_grad_(True)
    h = qkv * 1.0  # a fresh projection-like tensor, as c_attn's output
    saved = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = qknorm.qk_norm_sigmoid_attention(h, wq, wk, nh, nkv, deterministic=True)
    assert h.untyped_storage().data_ptr() not in saved
    assert sum(saved.values()) <= h.numel() * 4 + B * T * (nh + nkv) * 4 + 2 * hs * 4 + 64
    assert torch.autograd.grad(y.sum(), qkv)[0].abs().max() > 0


def test_qk_norm_attention_backward_fills_no_gradient_for_the_kept_outputs():
    """The op's extra outputs (p, 1/rms) are for its backward only: autograd must not zero-fill gradients of their
    sizes (a p-sized fill is 75 MB per layer at 124M, 16 x 1024) before calling it, and the gradients are unchanged."""
    from torch.profiler import ProfilerActivity, profile
    nh, nkv, hs, B, T = 2, 2, 16, 1, 24
    g = torch.Generator().manual_seed(5)
    qkv = torch.randn(B, T, (nh + 2 * nkv) * hs, generator=g).to(DEV).requires_grad_(True)
    wq = (torch.rand(hs, generator=g) + 0.5).to(DEV).requires_grad_(True)
    wk = (torch.rand(hs, generator=g) + 0.5).to(DEV).requires_grad_(True)
    dy = torch.randn(B, nh, T, hs, generator=g).to(DEV)
    y = qknorm.qk_norm_sigmoid_attention(qkv, wq, wk, nh, nkv, deterministic=True)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        got = torch.autograd.grad(y, (qkv, wq, wk), dy)
    filled = [e.input_shapes[0] for e in prof.key_averages(group_by_input_shape=True)
              if e.key in ("aten::zero_", "aten::fill_", "aten::zeros_like") and e.input_shapes]
    assert list(qkv.shape) not in filled and [B * T * (nh + nkv)] not in filled, filled
    ref = _attention_reference(qkv, wq, wk, nh, nkv, dy, causal=True, bias=-float(torch.log(torch.tensor(T))))
    for a, b in zip(got, ref[1:]):
        assert (a.double() - b).norm() / b.norm() < 1e-4


@pytest.mark.parametrize("hs", [16, 48])
def test_qk_norm_attention_backward_op_matches_its_fake(hs):
    """The backward op's outputs have the shapes and strides its fake implementation promises (torch.compile
    trusts them): also where the kernels pad a head dim that is no power of two (48 runs as 64)."""
    nh, nkv = 2, 1
    g = torch.Generator().manual_seed(9)
    x = torch.randn(1, 20, (nh + 2 * nkv) * hs, generator=g).to(DEV)
    w = (torch.rand(hs, generator=g) + 0.5).to(DEV)
    y, p, r = qknorm._attn_fwd(x, w, w.clone(), nh, nkv, 1e-5, None, -3.0, hs ** -0.5, False, True, 0.0, None, -1, -1)
    torch.library.opcheck(qknorm._attn_bwd, (torch.randn_like(y), p, r, w, w.clone(), nh, nkv, None, -3.0, hs ** -0.5,
                                             False, True, 0.0, None, -1, -1), test_utils=("test_schema", "test_faketensor"))


# ----------------------------------------------------------------------------------------------
# Hybrid-norm's post-norm backward (model.ResidualRMSNorm) in one kernel


def _post_norm_case(shape, a_dtype, seed):
    """x (fp32 residual), a (the branch output), w (gains away from 1), and the forward's out and 1/rms r."""
    g = torch.Generator().manual_seed(seed)
    C = shape[-1]
    x = torch.randn(shape, generator=g).to(DEV)
    a = (torch.randn(shape, generator=g) * 3).to(DEV, a_dtype)
    w = (torch.rand(C, generator=g) + 0.5).to(DEV)
    r = torch.rsqrt(a.float().pow(2).mean(-1, keepdim=True) + 1e-5)
    return x, a, w, r, x + a.float() * r * w, torch.randn(shape, generator=g).to(DEV)


# launch configs (rows per step, warps, programs per SM, pipeline stages): the row loop pipelined by Triton (2) or
# not (1), with row blocks of 1 and 2
LOOPS = [(1, 8, 4, 1), (2, 2, 4, 1), (1, 1, 8, 2)]


@pytest.mark.parametrize("shape,a_dtype", [
    ((2, 7, 48), torch.float32),    # 14 rows: not a multiple of the row block; width no power of two
    ((3, 11, 64), torch.bfloat16),  # the model's dtypes under autocast: a bf16, x fp32; 33 rows over 4 programs
    ((1, 5, 3), torch.float16),     # a tiny width, padded to 4
])
@pytest.mark.parametrize("config", LOOPS)
def test_post_norm_backward_matches_float64_autograd(shape, a_dtype, config, monkeypatch):
    monkeypatch.setattr(qknorm, "POST_CONFIG", config)
    x, a, w, r, out, dy = _post_norm_case(shape, a_dtype, sum(shape))
    da, dw = qknorm.post_norm_bwd(dy, x, out, w, r, a_dtype)
    assert da.dtype == a_dtype and da.shape == a.shape and dw.dtype == w.dtype and dw.shape == w.shape
    a64, w64 = a.double().requires_grad_(True), w.double().requires_grad_(True)
    norm = nn.RMSNorm(shape[-1], eps=1e-5).double().to(DEV)
    norm.weight = nn.Parameter(w64)
    ref_da, ref_dw = torch.autograd.grad(x.double() + norm(a64), (a64, norm.weight), dy.double())
    tol = 1e-5 if a_dtype == torch.float32 else 1e-2  # da is rounded to a's dtype
    for got, ref in ((da, ref_da), (dw, ref_dw)):
        err = ((got.double() - ref).norm() / ref.norm()).item()
        assert err < tol, err
    assert ((dw.double() - ref_dw).norm() / ref_dw.norm()).item() < 1e-5  # the gain's sum stays fp32


@pytest.mark.parametrize("config", LOOPS)
@pytest.mark.parametrize("shape,a_dtype", [((2, 7, 48), torch.float32), ((3, 11, 64), torch.bfloat16)])
def test_post_norm_and_next_pre_norm_backward_matches_float64_autograd(shape, a_dtype, config, monkeypatch):
    """out = x + RMSNorm(a) w, h = RMSNorm(out) v: one pass gives out's whole gradient (= x's), a's, w's and v's."""
    monkeypatch.setattr(qknorm, "POST_PRE_CONFIG", config)
    x, a, w, r, out, g = _post_norm_case(shape, a_dtype, sum(shape) + 1)
    gen = torch.Generator().manual_seed(5)
    v = (torch.rand(shape[-1], generator=gen) + 0.5).to(DEV)
    s = torch.rsqrt(out.pow(2).mean(-1, keepdim=True) + 1e-5)
    gh = torch.randn(shape, generator=gen).to(DEV, a_dtype)  # h's gradient comes from a matmul in h's dtype
    dx, da, dwv = qknorm.post_pre_norm_bwd(g, gh, x, out, w, r, v, s, a_dtype)
    assert dx.dtype == torch.float32 and da.dtype == a_dtype and dwv.shape == (2, shape[-1])
    x64, a64, w64, v64 = (t.double().requires_grad_(True) for t in (x, a, w, v))
    post, pre = (nn.RMSNorm(shape[-1], eps=1e-5).double().to(DEV) for _ in range(2))
    post.weight, pre.weight = nn.Parameter(w64), nn.Parameter(v64)
    out64 = x64 + post(a64)
    refs = torch.autograd.grad((out64, pre(out64)), (x64, a64, post.weight, pre.weight), (g.double(), gh.double()))
    tol = 1e-5 if a_dtype == torch.float32 else 1e-2
    for got, ref, t in ((dx, refs[0], 1e-5), (da, refs[1], tol), (dwv[0], refs[2], 1e-5), (dwv[1], refs[3], 1e-5)):
        err = ((got.double() - ref).norm() / ref.norm()).item()
        assert err < t, err
    torch.library.opcheck(qknorm._post_pre_norm_bwd, (g, gh, x, out, w, r, v, s, a_dtype),
                          test_utils=("test_schema", "test_faketensor"))


def test_post_norm_backward_errors_and_opcheck():
    x, a, w, r, out, dy = _post_norm_case((2, 5, 16), torch.float32, 1)
    with pytest.raises(ValueError, match=r"w \(8,\)"):
        qknorm.post_norm_bwd(dy, x, out, w[:8], r, torch.float32)
    torch.library.opcheck(qknorm._post_norm_bwd, (dy, x, out, w, r, torch.bfloat16),
                          test_utils=("test_schema", "test_faketensor"))


@pytest.mark.parametrize("sharded", [False, True], ids=["", "sharded"])
@pytest.mark.parametrize("attn_impl", ["torch"] + (["triton"] if CUDA else []))
def test_model_with_and_without_the_post_norm_kernel(monkeypatch, attn_impl, sharded):
    """A small hybrid-norm model's gradients with model.FUSED_POST_NORM off and on agree (the kernels replace
    the post-norms' PyTorch backward, with the next pre-norm's where they fuse it); on a GPU under bf16
    autocast too, where a is bf16 and x fp32."""
    import model
    torch.manual_seed(0)
    cfg = model.GPTConfig(block_size=32, vocab_size=64, n_layer=2, n_head=4, n_embd=64)
    m = model.GPT(cfg, attn_impl=attn_impl).to(DEV)
    for mod in m.modules():  # gains away from 1, so a mix-up of gains would show
        if isinstance(mod, nn.RMSNorm):
            nn.init.uniform_(mod.weight, 0.5, 1.5)
    if sharded:  # as FSDP2 leaves the next block's gain outside that block's forward: not used across blocks
        m.transformer.h[1].attn_norm.weight.device_mesh = "a DTensor's attribute"
    idx = torch.randint(64, (4, 32), device=DEV)
    out, calls, real = {}, [], qknorm.post_pre_norm_bwd
    monkeypatch.setattr(qknorm, "post_pre_norm_bwd", lambda *a: calls.append(1) or real(*a))
    for fused in (False, True):
        monkeypatch.setattr(model, "FUSED_POST_NORM", fused)
        m.zero_grad()
        with torch.autocast(DEV, dtype=torch.bfloat16, enabled=CUDA):
            _, loss = m(idx, idx)
        loss.backward()
        out[fused] = (loss.item(), {n: p.grad.clone() for n, p in m.named_parameters()})
    # every post-norm is followed by a pre-norm (the MLP's, the next block's, the final one): all fused but one
    # when the next block's gain is a shard
    assert len(calls) == 2 * cfg.n_layer - sharded
    assert abs(out[True][0] - out[False][0]) < 1e-5  # the same maths (norms inside ResidualRMSNormPre)
    tol = 2e-2 if CUDA else 1e-4  # bf16's da, rounded at different places
    for n, ref in out[False][1].items():
        got = out[True][1][n]
        assert (got - ref).norm() <= tol * ref.norm() + 1e-7, n
    post = out[True][1]["transformer.h.0.mlp_post_norm.weight"]
    assert post.abs().sum() > 0


@pytest.mark.parametrize("G,R,W,n", [(1, 5, 4, 3), (2, 300, 64, 64), (1, 20000, 16, 10)])
def test_sum_rows_equals_a_float64_sum(G, R, W, n):
    """The gains' partial sums, reduced in one pass (R <= 128 rows) or in chunks, then the chunks' sums."""
    x = torch.randn(G, R, W, generator=torch.Generator().manual_seed(R)).to(DEV)
    got = qknorm.sum_rows(x, n)
    assert got.shape == (G, n) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), x[..., :n].double().sum(1), rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(CUDA, reason="on the CPU, through the interpreter (the rule it checks is the device's too)")
def test_under_fsdp2_the_post_norms_fuse_within_blocks_only(monkeypatch):
    """FSDP2 gathers a block's gains only inside its forward: a model sharded per block (one gloo process here)
    fuses each post-norm with the MLP's pre-norm and the last with ln_f, not with the next block's, and its
    gradients are the unsharded model's."""
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard
    import model
    torch.manual_seed(0)
    cfg = model.GPTConfig(block_size=32, vocab_size=64, n_layer=3, n_head=4, n_embd=64)
    ref = model.GPT(cfg, attn_impl="torch")
    for mod in ref.modules():
        if isinstance(mod, nn.RMSNorm):
            nn.init.uniform_(mod.weight, 0.5, 1.5)
    m = model.GPT(cfg, attn_impl="torch")
    m.load_state_dict(ref.state_dict())
    idx = torch.randint(64, (2, 32))
    calls, real = [], qknorm.post_pre_norm_bwd
    monkeypatch.setattr(qknorm, "post_pre_norm_bwd", lambda *a: calls.append(1) or real(*a))
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        for block in m.transformer.h:
            fully_shard(block)
        fully_shard(m)
        monkeypatch.setattr(model, "FUSED_POST_NORM", True)
        m(idx, idx)[1].backward()
        grads = {n: p.grad.full_tensor() for n, p in m.named_parameters()}
    finally:
        dist.destroy_process_group()
    assert len(calls) == cfg.n_layer + 1
    monkeypatch.setattr(model, "FUSED_POST_NORM", False)
    ref(idx, idx)[1].backward()
    for n, p in ref.named_parameters():
        assert (grads[n] - p.grad).norm() <= 1e-5 * p.grad.norm() + 1e-7, n
