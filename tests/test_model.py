"""Specification of model.py: sigmoid attention, positions, hybrid-norm, init, config checks,
generation with and without the KV cache, and the optimizer set-up. CPU, tiny models, float64
references written out here (not taken from model.py)."""
import math

import pytest
import torch
import torch.nn as nn

import model as M
from helpers import INTERPRETED
from model import GPT, GPTConfig, alibi_slopes, sigmoid_attention_torch

ATTENTIONS = ("sigmoid", "softmax")
POSITIONS = ("alibi", "rope", "learned", "none")


def tiny(**kw):
    """A tiny model config: 2 layers, 32 wide, block 16."""
    return GPTConfig(**{**dict(block_size=16, vocab_size=23, n_layer=2, n_head=4, n_embd=32), **kw})


def make_model(seed=0, double=False, **kw):
    torch.manual_seed(seed)
    m = GPT(tiny(**kw)).eval()
    return m.double() if double else m


def rand(*shape, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


def ref_attention(q, k, v, bias, slopes=None, kind="sigmoid", causal=True, scale=None, window=None):
    """Explicit float64 reference, loops over (b, h, i, j): query i sits at absolute position
    pos_i = i + Tk - Tq; logit = scale q_i.k_j + bias - m_h |pos_i - j|, scale 1/sqrt(d) unless given;
    causal: keys j > pos_i left out; window (left, right): keys j < pos_i - left and j > pos_i + right
    left out (-1: no limit). sigmoid: O_i = sum_j sigmoid(logit_ij) v_j; softmax: the row-normalised
    exp instead."""
    left, right = window or (-1, -1)
    q, k, v = q.double(), k.double(), v.double()
    B, H, Tq, D = q.shape
    Hkv, Tk = k.shape[1], k.shape[2]
    scale = 1 / math.sqrt(D) if scale is None else scale
    out = torch.zeros(B, H, Tq, v.shape[-1], dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            hk = h // (H // Hkv)  # the kv head of query head h's group
            for i in range(Tq):
                pos = i + Tk - Tq
                keys = [j for j in (range(pos + 1) if causal else range(Tk))
                        if (left < 0 or j >= pos - left) and (right < 0 or j <= pos + right)]
                logits = []
                for j in keys:
                    s = float(q[b, h, i] @ k[b, hk, j]) * scale + bias
                    if slopes is not None:
                        s -= float(slopes[h]) * abs(pos - j)
                    logits.append(s)
                logits = torch.tensor(logits, dtype=torch.float64)
                w = torch.sigmoid(logits) if kind == "sigmoid" else torch.softmax(logits, 0)
                out[b, h, i] = (w[:, None] * v[b, hk, keys]).sum(0)
    return out


def rmsnorm(x, g, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


# ---------------------------------------------------------------------------------------------
# sigmoid attention


@pytest.mark.parametrize("alibi", [False, True], ids=["no-alibi", "alibi"])
@pytest.mark.parametrize("n_kv", [4, 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("Tq,Tk", [(9, 9), (3, 9), (1, 9)], ids=["full", "q-offset", "decode"])
def test_sigmoid_attention_matches_float64_formula(alibi, n_kv, Tq, Tk):
    """sigmoid(q.k/sqrt(d) + b - m_h (i - j)) v over j <= i, no normalisation; GQA shares kv heads
    among groups of query heads; with Tq < Tk query i sits at absolute position i + Tk - Tq."""
    H, D = 4, 8
    q, k, v = rand(2, H, Tq, D, seed=1), rand(2, n_kv, Tk, D, seed=2), rand(2, n_kv, Tk, D, seed=3)
    slopes = alibi_slopes(H) if alibi else None
    b = -1.7
    got = sigmoid_attention_torch(q, k, v, bias=b, alibi_slopes=slopes, q_offset=Tk - Tq)
    want = ref_attention(q, k, v, b, slopes)
    assert got.shape == want.shape
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("alibi", [False, True], ids=["no-alibi", "alibi"])
@pytest.mark.parametrize("n_kv", [4, 1], ids=["mha", "mqa"])
@pytest.mark.parametrize("Tq,Tk", [(9, 9), (3, 9), (9, 4)], ids=["square", "fewer-queries", "fewer-keys"])
def test_non_causal_sigmoid_attention_with_scale_matches_float64_formula(alibi, n_kv, Tq, Tk):
    """causal=False: every key is seen, ALiBi on the symmetric distance |pos_i - j| (query i at
    i + Tk - Tq), and a given scale replaces 1/sqrt(d). Double inputs are computed in double."""
    H, D = 4, 8
    f64 = torch.float64
    q, k, v = rand(2, H, Tq, D, seed=40, dtype=f64), rand(2, n_kv, Tk, D, seed=41, dtype=f64), \
        rand(2, n_kv, Tk, D, seed=42, dtype=f64)
    slopes = alibi_slopes(H) if alibi else None
    got = sigmoid_attention_torch(q, k, v, bias=-1.2, causal=False, scale=0.3, alibi_slopes=slopes)
    want = ref_attention(q, k, v, -1.2, slopes, causal=False, scale=0.3)
    assert got.dtype == f64
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # the non-causal path is not the causal one: the future keys count
    assert not torch.allclose(got, sigmoid_attention_torch(q, k, v, bias=-1.2, causal=True, scale=0.3,
                                                           alibi_slopes=slopes))


def test_upcast_computes_in_fp32_and_returns_the_input_dtype():
    """bf16 inputs: upcast=True (the default) computes in fp32, upcast=False in bf16; both return
    bf16, and the fp32 path is several times closer to the float64 formula."""
    q, k, v = (rand(1, 2, 64, 16, seed=s, dtype=torch.bfloat16) for s in (43, 44, 45))
    slopes = alibi_slopes(2)
    want = ref_attention(q, k, v, -math.log(64), slopes)
    errs = []
    for upcast in (True, False):
        got = sigmoid_attention_torch(q, k, v, bias=-math.log(64), alibi_slopes=slopes, upcast=upcast)
        assert got.dtype == torch.bfloat16
        errs.append(((got.double() - want).norm() / want.norm()).item())
    assert errs[0] < 5e-3 and errs[0] * 3 < errs[1], errs


def test_sigmoid_attention_rows_are_not_normalised():
    """Unlike softmax, a row's weights do not sum to 1: with b = -ln(n) a row of n keys has mass ~1
    only on average, and an all-ones value gives out = sum_j p_ij (not 1)."""
    q, k = rand(1, 2, 8, 8, seed=4), rand(1, 2, 8, 8, seed=5)
    v = torch.ones(1, 2, 8, 8)
    out = sigmoid_attention_torch(q, k, v, bias=-math.log(8))
    mass = out[..., 0]
    assert not torch.allclose(mass, torch.ones_like(mass), atol=1e-2)
    assert torch.all(mass[..., 0] < 1)  # row 0 sees a single key: sigmoid(.) < 1


def test_alibi_uses_true_distance_not_shift():
    """With ALiBi the logit of (i, j) carries -m (i - j) with i the query's absolute position: a row
    far from key 0 (large q_offset) gets a much smaller weight on it than the +m*j shortcut gives."""
    H, D, Tk = 2, 4, 12
    q, k = rand(1, H, 1, D, seed=6), rand(1, H, Tk, D, seed=7)
    v = torch.zeros(1, H, Tk, D)
    v[:, :, 0] = rand(H, D, seed=8)  # only key 0 has a value: out = p_{i,0} * v_0
    slopes = alibi_slopes(H)
    out = sigmoid_attention_torch(q, k, v, bias=-2.0, alibi_slopes=slopes, q_offset=Tk - 1)
    s = (q.double() @ k.double().transpose(-2, -1))[0, :, 0, 0] / math.sqrt(D) - 2.0
    want_p = torch.sigmoid(s - slopes.double() * (Tk - 1))  # distance 11 from key 0
    torch.testing.assert_close(out[0, :, 0].double(), want_p[:, None] * v[0, :, 0].double(), rtol=1e-5, atol=1e-7)
    shortcut_p = torch.sigmoid(s + slopes.double() * 0)  # the FlashAttention "+m*j" form, j = 0
    assert torch.all((want_p - shortcut_p).abs() > 1e-3)


def test_future_keys_have_exactly_zero_weight():
    """Masked logits are -inf so their sigmoid is exactly 0: changing the values (and keys) of future
    positions arbitrarily leaves every earlier output bitwise unchanged."""
    q, k, v = rand(2, 4, 10, 8, seed=9), rand(2, 4, 10, 8, seed=10), rand(2, 4, 10, 8, seed=11)
    slopes = alibi_slopes(4)
    out = sigmoid_attention_torch(q, k, v, bias=-2.3, alibi_slopes=slopes)
    t = 4
    k2, v2 = k.clone(), v.clone()
    k2[:, :, t + 1:] = rand(2, 4, 5, 8, seed=12) * 100
    v2[:, :, t + 1:] = rand(2, 4, 5, 8, seed=13) * 1e6
    out2 = sigmoid_attention_torch(q, k2, v2, bias=-2.3, alibi_slopes=slopes)
    assert torch.equal(out[:, :, : t + 1], out2[:, :, : t + 1])
    assert not torch.allclose(out[:, :, t + 1:], out2[:, :, t + 1:])


def test_bias_defaults_to_minus_ln_block_size_and_can_be_overridden():
    """b = -ln(block_size) by default (config.attn_bias); sigmoid_bias replaces it."""
    assert GPTConfig(block_size=1024).attn_bias == pytest.approx(-6.931471805599453)
    assert tiny(block_size=64).attn_bias == pytest.approx(-math.log(64))
    assert tiny(block_size=64, sigmoid_bias=-3.25).attn_bias == -3.25
    assert tiny(block_size=64, sigmoid_bias=0.0).attn_bias == 0.0  # 0 is a value, not "unset"


@pytest.mark.parametrize("sigmoid_bias", [None, -0.5])
def test_attention_module_uses_the_config_bias(sigmoid_bias):
    """CausalSelfAttention.attend computes the formula with b = config.attn_bias."""
    cfg = tiny(block_size=32, pos_encoding="none", sigmoid_bias=sigmoid_bias)
    attn = M.CausalSelfAttention(cfg).eval()
    q, k, v = rand(1, 4, 6, 8, seed=14), rand(1, 4, 6, 8, seed=15), rand(1, 4, 6, 8, seed=16)
    b = -math.log(32) if sigmoid_bias is None else sigmoid_bias
    torch.testing.assert_close(attn.attend(q, k, v).double(), ref_attention(q, k, v, b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_kv", [4, 2])
@pytest.mark.parametrize("Tq", [7, 2])
def test_softmax_alibi_matches_manual_softmax(n_kv, Tq):
    """attention='softmax' with ALiBi = softmax(q.k/sqrt(d) - m_h (i - j), causal) v in float64,
    with GQA and with fewer queries than keys (bottom-right causal alignment, as in a KV cache)."""
    cfg = tiny(attention="softmax", pos_encoding="alibi", n_kv_head=n_kv)
    attn = M.CausalSelfAttention(cfg).double().eval()
    q, k, v = (rand(2, 4, Tq, 8, seed=17, dtype=torch.float64), rand(2, n_kv, 7, 8, seed=18, dtype=torch.float64),
               rand(2, n_kv, 7, 8, seed=19, dtype=torch.float64))
    want = ref_attention(q, k, v, 0.0, alibi_slopes(4), kind="softmax")
    torch.testing.assert_close(attn.attend(q, k, v), want, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# sliding window


@pytest.mark.parametrize("causal,window", [(True, (0, 0)), (True, (2, -1)), (True, (3, 5)), (False, (2, 1)),
                                           (False, (-1, 0)), (False, (0, 3)), (False, (20, 20))], ids=str)
@pytest.mark.parametrize("n_kv,Tq,Tk", [(4, 9, 9), (2, 3, 9), (1, 9, 4)], ids=["square", "gqa-q-offset", "mqa-tq>tk"])
def test_sigmoid_attention_window_matches_float64_formula(causal, window, n_kv, Tq, Tk):
    """window=(left, right): query i (at absolute position i + Tk - Tq) sees keys i - left .. i + right
    only (-1 = no limit; causal caps right at 0), the others get weight exactly 0; with ALiBi and GQA."""
    H, D = 4, 8
    f64 = torch.float64
    q, k, v = rand(2, H, Tq, D, seed=60, dtype=f64), rand(2, n_kv, Tk, D, seed=61, dtype=f64), \
        rand(2, n_kv, Tk, D, seed=62, dtype=f64)
    got = sigmoid_attention_torch(q, k, v, bias=-1.1, causal=causal, alibi_slopes=alibi_slopes(H), window=window)
    want = ref_attention(q, k, v, -1.1, alibi_slopes(H), causal=causal, window=window)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    if 0 <= window[0] < Tk - 1:  # the window hides something: not the full attention
        assert not torch.allclose(got, sigmoid_attention_torch(q, k, v, bias=-1.1, causal=causal,
                                                               alibi_slopes=alibi_slopes(H)))


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("pos", ["alibi", "rope"])
def test_attention_module_with_window_matches_float64_formula(attention, pos):
    """attn_window=w: CausalSelfAttention.attend sees keys i - w .. i, for sigmoid and softmax (the
    latter through SDPA with an explicit mask), with fewer queries than keys (a KV cache)."""
    cfg = tiny(attention=attention, pos_encoding=pos, n_kv_head=2, attn_window=3)
    assert cfg.window == (3, 0)
    attn = M.CausalSelfAttention(cfg).double().eval()
    f64 = torch.float64
    for Tq in (7, 2):
        q, k, v = rand(2, 4, Tq, 8, seed=63, dtype=f64), rand(2, 2, 7, 8, seed=64, dtype=f64), \
            rand(2, 2, 7, 8, seed=65, dtype=f64)
        bias = cfg.attn_bias if attention == "sigmoid" else 0.0
        want = ref_attention(q, k, v, bias, attn.slopes, kind=attention, window=(3, 0))
        torch.testing.assert_close(attn.attend(q, k, v), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_model_with_window_sees_only_its_receptive_field(attention):
    """attn_window=w in 2 layers: the logits at t depend on tokens t - 2w .. t only (each layer reaches
    w back), so changing a token further back changes nothing, and changing t - 2w does."""
    w, t = 2, 12
    m = make_model(attention=attention, attn_window=w, double=True)
    idx = torch.randint(0, 23, (1, 16), generator=torch.Generator().manual_seed(66))
    with torch.no_grad():
        base, _ = m(idx, targets=idx)
        for j, changes in ((t - 2 * w - 1, False), (0, False), (t - 2 * w, True), (t, True)):
            idx2 = idx.clone()
            idx2[0, j] = (idx[0, j] + 1) % 23
            out, _ = m(idx2, targets=idx2)
            assert torch.allclose(out[0, t], base[0, t], rtol=0, atol=1e-12) != changes, (j, changes)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_cached_decode_with_window_equals_full_forward(attention):
    """With the KV cache the window applies in absolute positions: each decoded token's logits equal
    the full forward's."""
    m = make_model(attention=attention, attn_window=3, double=True)
    seq = torch.randint(0, 23, (2, 16), generator=torch.Generator().manual_seed(67))
    cache = M.KVCache(2)
    with torch.no_grad():
        m(seq[:, :5], cache=cache)
        for t in range(5, 16):
            logits, _ = m(seq[:, t:t + 1], cache=cache)
            torch.testing.assert_close(logits, m(seq[:, :t + 1])[0], rtol=1e-9, atol=1e-9)


# Tests that run the kernel on CPU tensors (helpers.INTERPRETED)
interpreted = pytest.mark.skipif(M.flashsigmoid is None or not INTERPRETED,
                                 reason="the kernel on CPU tensors needs Triton's interpreter (a machine without CUDA)")


def _assert_kernel_path_is_torch_path(kw, idx, **forward_kw):
    """The same tiny model (kw) on attn_impl='triton' (the interpreter on a CPU) and 'torch': equal loss
    and first-layer qkv gradient."""
    losses, grads = [], []
    for impl in ("triton", "torch"):
        torch.manual_seed(0)
        m = GPT(tiny(**kw), attn_impl=impl)
        _, loss = m(idx, targets=idx, **forward_kw)
        loss.backward()
        losses.append(loss.item())
        grads.append(m.transformer.h[0].attn.c_attn.weight.grad)
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


@interpreted
@pytest.mark.parametrize("kw", [dict(attn_window=3), dict(attn_window=0, n_kv_head=2, pos_encoding="rope")], ids=str)
def test_kernel_path_with_window_equals_torch_path(kw):
    """attn_impl='triton' (the kernel; the interpreter on a CPU) gives the PyTorch path's loss and
    gradients with a window."""
    _assert_kernel_path_is_torch_path(kw, torch.randint(0, 23, (2, 16), generator=torch.Generator().manual_seed(68)))


# ---------------------------------------------------------------------------------------------
# packed documents (GPT.forward's eot)


def test_documents_gives_positions_numbers_and_padded_cu_seqlens():
    """documents(idx, eot): a document starts each row and after each eot; positions restart there;
    the cumulative lengths of the flattened batch's documents are padded to B*T + 1 entries."""
    idx = torch.tensor([[1, 2, 9, 3, 4, 5], [9, 1, 2, 3, 9, 9], [1, 2, 3, 4, 5, 9]])
    docs = M.documents(idx, 9)
    assert docs.pos.tolist() == [[0, 1, 2, 0, 1, 2], [0, 0, 1, 2, 3, 0], [0, 1, 2, 3, 4, 5]]
    assert docs.ids.tolist() == [[1, 1, 1, 2, 2, 2], [1, 2, 2, 2, 2, 3], [1, 1, 1, 1, 1, 1]]
    assert docs.cu.dtype == torch.int32 and docs.cu.tolist() == [0, 3, 6, 7, 11, 12] + [18] * 13


def _two_docs(seed, lens=(5, 7), eot=22):
    """A batch of 2 rows, [doc a, eot | doc b] and [doc c | eot | doc d, eot] (documents end with eot)."""
    g = torch.Generator().manual_seed(seed)
    docs = [torch.randint(0, eot, (n,), generator=g) for n in (*lens, 2, 9)]
    for d in docs[:1] + docs[2:]:
        d[-1] = eot
    docs[3] = torch.cat([torch.tensor([eot]), docs[3]])  # a document of the eot alone
    return torch.stack([torch.cat(docs[:2]), torch.cat(docs[2:])]), [[docs[0], docs[1]], [docs[2], docs[3][:1], docs[3][1:]]]


@pytest.mark.parametrize("pos", POSITIONS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_documents_attend_only_within_themselves(attention, pos):
    """forward(idx, eot=...): each document's logits are those of the model run on that document alone
    (positions restart, no attention across), and differ from the run without eot."""
    m = make_model(attention=attention, pos_encoding=pos, n_kv_head=2, double=True)
    idx, rows = _two_docs(70)
    with torch.no_grad():
        logits, _ = m(idx, targets=idx, eot=22)
        plain, _ = m(idx, targets=idx)
        for b, docs in enumerate(rows):
            t = 0
            for d in docs:
                alone, _ = m(d[None], targets=d[None])
                torch.testing.assert_close(logits[b, t:t + len(d)], alone[0], rtol=1e-9, atol=1e-9)
                t += len(d)
    assert not torch.allclose(logits[0, 5:], plain[0, 5:], atol=1e-3)


@interpreted
@pytest.mark.parametrize("kw", [dict(), dict(pos_encoding="rope", attn_window=3, n_kv_head=2)], ids=str)
def test_kernel_path_with_documents_equals_torch_path(kw):
    """attn_impl='triton' takes sigmoid_attention_varlen over the flattened batch's documents (the
    interpreter on a CPU): the loss and gradients of the PyTorch path's block-diagonal mask."""
    _assert_kernel_path_is_torch_path(kw, _two_docs(71)[0], eot=22)


def test_documents_with_a_kv_cache_raise():
    with pytest.raises(ValueError, match="KV cache"):
        make_model()(_prompt(), cache=M.KVCache(2), eot=3)


# ---------------------------------------------------------------------------------------------
# ALiBi slopes


def test_alibi_slopes_power_of_two():
    """8 heads: m_h = 2^(-8h/8) = 2^-1 .. 2^-8; 4 heads: 2^-2, 2^-4, 2^-6, 2^-8."""
    torch.testing.assert_close(alibi_slopes(8).double(), torch.tensor([2.0 ** -h for h in range(1, 9)],
                                                                      dtype=torch.float64))
    torch.testing.assert_close(alibi_slopes(4).double(), torch.tensor([2.0 ** (-2 * h) for h in range(1, 5)],
                                                                      dtype=torch.float64))


def test_alibi_slopes_interpolate_for_12_heads():
    """ALiBi's interpolation: the 8 slopes of 8 heads, then every other slope of 16 heads
    (2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5)."""
    want = [2.0 ** -h for h in range(1, 9)] + [2.0 ** -0.5, 2.0 ** -1.5, 2.0 ** -2.5, 2.0 ** -3.5]
    torch.testing.assert_close(alibi_slopes(12).double(), torch.tensor(want, dtype=torch.float64))


def test_model_attention_carries_alibi_slopes_only_with_alibi():
    """Each layer's attention holds alibi_slopes(n_head) with ALiBi and no slopes otherwise."""
    m = make_model(n_head=4, pos_encoding="alibi")
    for block in m.transformer.h:
        torch.testing.assert_close(block.attn.slopes, alibi_slopes(4))
    for pe in ("rope", "learned", "none"):
        assert all(b.attn.slopes is None for b in make_model(pos_encoding=pe).transformer.h)


# ---------------------------------------------------------------------------------------------
# the whole model


@pytest.mark.parametrize("pos", POSITIONS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_gpt_is_causal(attention, pos):
    """Changing the tokens after position t leaves the logits at positions <= t unchanged (and does
    change later ones)."""
    m = make_model(attention=attention, pos_encoding=pos)
    g = torch.Generator().manual_seed(20)
    idx = torch.randint(0, 23, (2, 16), generator=g)
    t = 6
    idx2 = idx.clone()
    idx2[:, t + 1:] = (idx[:, t + 1:] + torch.randint(1, 23, (2, 16 - t - 1), generator=g)) % 23
    with torch.no_grad():
        l1, _ = m(idx, targets=idx)
        l2, _ = m(idx2, targets=idx2)
    assert l1.shape == (2, 16, 23)
    torch.testing.assert_close(l1[:, : t + 1], l2[:, : t + 1], rtol=0, atol=1e-6)
    assert not torch.allclose(l1[:, t + 1:], l2[:, t + 1:], atol=1e-3)


def test_forward_without_targets_returns_last_position_logits():
    """Inference forward: logits (B, 1, V) equal the last position of the full logits; loss None."""
    m = make_model()
    idx = torch.randint(0, 23, (3, 11), generator=torch.Generator().manual_seed(21))
    with torch.no_grad():
        last, loss = m(idx)
        full, _ = m(idx, targets=idx)
    assert loss is None and last.shape == (3, 1, 23)
    torch.testing.assert_close(last, full[:, -1:], rtol=1e-6, atol=1e-6)


def test_loss_is_cross_entropy_and_ignores_minus_one():
    """The loss is the mean cross-entropy of the logits over targets != -1."""
    m = make_model()
    g = torch.Generator().manual_seed(22)
    idx, tgt = torch.randint(0, 23, (2, 9), generator=g), torch.randint(0, 23, (2, 9), generator=g)
    tgt[0, :4] = -1
    logits, loss = m(idx, targets=tgt)
    keep = tgt.view(-1) != -1
    want = nn.functional.cross_entropy(logits.view(-1, 23)[keep].double(), tgt.view(-1)[keep])
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)


def test_learned_positions_refuse_sequences_longer_than_block_size():
    """Learned absolute positions exist for block_size positions only: longer input is a ValueError."""
    m = make_model(pos_encoding="learned")
    with pytest.raises(ValueError, match="block_size"):
        m(torch.randint(0, 23, (1, 17)))


# ---------------------------------------------------------------------------------------------
# hybrid-norm, QK-norm


@pytest.mark.parametrize("norm", ["hybrid", "pre"])
def test_block_norm_modules(norm):
    """hybrid: pre and post RMSNorms (eps 1e-5, gains 1) around attention and MLP; pre: the post
    norms are Identity. Both have a final RMSNorm ln_f."""
    m = make_model(norm=norm)
    norms = ["attn_norm", "mlp_norm"] + (["attn_post_norm", "mlp_post_norm"] if norm == "hybrid" else [])
    for block in m.transformer.h:
        for name in norms:
            mod = getattr(block, name)
            assert isinstance(mod, nn.RMSNorm), name
            assert mod.eps == 1e-5 and mod.weight.shape == (32,) and torch.all(mod.weight == 1), name
        if norm == "pre":
            assert isinstance(block.attn_post_norm, nn.Identity) and isinstance(block.mlp_post_norm, nn.Identity)
    ln_f = m.transformer.ln_f
    assert isinstance(ln_f, nn.RMSNorm) and ln_f.eps == 1e-5 and torch.all(ln_f.weight == 1)


def _randomise_gains(m, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.RMSNorm):
                mod.weight.copy_(1 + 0.5 * torch.randn(mod.weight.shape, generator=g))


@pytest.mark.parametrize("norm", ["hybrid", "pre"])
def test_block_forward_is_pre_and_post_norm_residual(norm):
    """h = x + post(attn(pre(x))); out = h + post(mlp(pre(h))), RMSNorm written out here
    (post = identity for norm='pre'); checked with random gains so that every norm counts."""
    m = make_model(norm=norm)
    _randomise_gains(m, 23)
    block = m.transformer.h[0]
    x = rand(2, 10, 32, seed=24)
    pos = torch.arange(10)
    seen = {}
    block.attn.register_forward_hook(lambda mod, args, out: seen.setdefault("attn_in", args[0]))
    with torch.no_grad():
        out, _ = block(x, pos)
        a = block.attn(rmsnorm(x, block.attn_norm.weight), pos)
        h = x + (rmsnorm(a, block.attn_post_norm.weight) if norm == "hybrid" else a)
        f = block.mlp(rmsnorm(h, block.mlp_norm.weight))
        want = h + (rmsnorm(f, block.mlp_post_norm.weight) if norm == "hybrid" else f)
    torch.testing.assert_close(seen["attn_in"], rmsnorm(x, block.attn_norm.weight), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)


def test_post_norm_backward_recovers_its_input_from_the_sum():
    """ResidualRMSNorm: x + RMSNorm(a) w, forward and gradients (x, a, w) as the written-out formula's, in
    float64, with gains far from 1 (its backward divides by them)."""
    x, a = rand(3, 5, 16, seed=40, dtype=torch.float64), rand(3, 5, 16, seed=41, dtype=torch.float64)
    w = 1 + 0.7 * rand(16, seed=42, dtype=torch.float64)
    g = rand(3, 5, 16, seed=43, dtype=torch.float64)
    ins = [t.clone().requires_grad_(True) for t in (x, a, w)]
    out = M.ResidualRMSNorm.apply(*ins, 1e-5)
    grads = torch.autograd.grad(out, ins, g)
    ref_ins = [t.clone().requires_grad_(True) for t in (x, a, w)]
    ref = ref_ins[0] + rmsnorm(ref_ins[1], ref_ins[2])
    want = torch.autograd.grad(ref, ref_ins, g)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for got, exp in zip(grads, want):
        torch.testing.assert_close(got, exp, rtol=1e-10, atol=1e-10)


def _saved_bytes(m, idx):
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        m(idx, idx)
    return sum(seen.values())


@pytest.mark.parametrize("compiled", [False, True])
def test_hybrid_norm_keeps_no_post_norm_input_for_the_backward(compiled):
    """The post-norms' backward needs only tensors the pre-norms keep: a hybrid-norm model saves for its
    backward what the same model with pre-norm saves, plus one 1/rms per row and norm (eager and compiled);
    with POST_NORM_FROM_SUM off it keeps every post-norm's input too. Gradients agree either way."""
    idx = torch.randint(0, 23, (2, 16), generator=torch.Generator().manual_seed(44))
    sizes, grads = {}, {}
    torch._dynamo.reset()  # what the partitioner saves, not what earlier tests' compiles left cached
    for norm, from_sum in (("pre", True), ("hybrid", True), ("hybrid", False)):
        m = make_model(norm=norm, attention="softmax", pos_encoding="learned").train()
        _randomise_gains(m, 45)
        old = M.POST_NORM_FROM_SUM
        M.POST_NORM_FROM_SUM = from_sum
        try:
            f = torch.compile(m, backend="aot_eager") if compiled else m
            sizes[norm, from_sum] = _saved_bytes(f, idx)
            _, loss = f(idx, idx)
            loss.backward()
            grads[norm, from_sum] = [p.grad for p in m.parameters()]
        finally:
            M.POST_NORM_FROM_SUM = old
    rows = 2 * 16 * 4  # rows x post-norms (2 layers x 2)
    assert sizes["hybrid", True] - sizes["pre", True] <= rows * 4 + 1024
    assert sizes["hybrid", False] - sizes["hybrid", True] >= 2 * 16 * 32 * 4 * 4 - rows * 4
    for got, want in zip(grads["hybrid", True], grads["hybrid", False]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_final_norm_precedes_the_lm_head():
    """logits = lm_head(RMSNorm_f(output of the last block))."""
    m = make_model()
    _randomise_gains(m, 25)
    seen = {}
    m.transformer.h[-1].register_forward_hook(lambda mod, args, out: seen.update(x=out[0]))  # out: (x, h)
    idx = torch.randint(0, 23, (2, 8), generator=torch.Generator().manual_seed(26))
    with torch.no_grad():
        logits, _ = m(idx, targets=idx)
        want = rmsnorm(seen["x"], m.transformer.ln_f.weight) @ m.lm_head.weight.T
    torch.testing.assert_close(logits, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_kv", [4, 2])
def test_qk_norm_is_rmsnorm_over_each_heads_q_and_k(n_kv):
    """Attention output = c_proj(sigmoid-attention(RMSNorm_hs(q_h) g_q, RMSNorm_hs(k_h) g_k, v)) with
    the norms over each head's dim (eps 1e-5), the formula written out here."""
    cfg = tiny(n_kv_head=n_kv, pos_encoding="alibi")
    torch.manual_seed(27)
    attn = M.CausalSelfAttention(cfg).eval()
    assert isinstance(attn.q_norm, nn.RMSNorm) and attn.q_norm.eps == 1e-5 and attn.q_norm.weight.shape == (8,)
    assert isinstance(attn.k_norm, nn.RMSNorm) and attn.k_norm.eps == 1e-5
    with torch.no_grad():
        attn.q_norm.weight.copy_(rand(8, seed=28).abs() + 0.5)
        attn.k_norm.weight.copy_(rand(8, seed=29).abs() + 0.5)
        x = rand(2, 7, 32, seed=30)
        out = attn(x, torch.arange(7))
        qkv = x @ attn.c_attn.weight.T
        q, k, v = qkv.split([4 * 8, n_kv * 8, n_kv * 8], dim=-1)
        q = rmsnorm(q.view(2, 7, 4, 8), attn.q_norm.weight).transpose(1, 2)
        k = rmsnorm(k.view(2, 7, n_kv, 8), attn.k_norm.weight).transpose(1, 2)
        v = v.view(2, 7, n_kv, 8).transpose(1, 2)
        y = ref_attention(q, k, v, cfg.attn_bias, alibi_slopes(4)).float()
        want = y.transpose(1, 2).reshape(2, 7, 32) @ attn.c_proj.weight.T
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-5)


def test_qk_norm_off_gives_identity():
    """qk_norm=False: no norms on q and k."""
    attn = M.CausalSelfAttention(tiny(qk_norm=False))
    assert isinstance(attn.q_norm, nn.Identity) and isinstance(attn.k_norm, nn.Identity)


def test_layerscale_gains_start_at_the_given_value():
    """layerscale=1e-4: a per-channel gain on each branch output, initialised to 1e-4."""
    m = make_model(layerscale=1e-4)
    for block in m.transformer.h:
        assert torch.all(block.attn_scale == 1e-4) and torch.all(block.mlp_scale == 1e-4)
        assert block.attn_scale.shape == (32,)
    assert make_model().transformer.h[0].attn_scale is None


# ---------------------------------------------------------------------------------------------
# init


def _wide(init):
    torch.manual_seed(31)
    return GPT(GPTConfig(block_size=64, vocab_size=512, n_layer=2, n_head=4, n_embd=256, pos_encoding="learned",
                         mlp="gelu", init=init))


def test_paper_init_statistics():
    """init='paper': every linear weight ~ N(0, 1/fan_in), embeddings ~ N(0, 1/d), gains 1."""
    m = _wide("paper")
    checked = 0
    for name, mod in m.named_modules():
        if isinstance(mod, nn.Linear):
            want = mod.weight.size(1) ** -0.5
        elif isinstance(mod, nn.Embedding):
            want = 256 ** -0.5
        else:
            continue
        w = mod.weight.detach()
        assert w.std().item() == pytest.approx(want, rel=0.03), name
        assert abs(w.mean().item()) < 0.1 * want, name
        checked += 1
    assert checked >= 2 + 2 * 4  # wte, wpe, lm_head + 4 linears per block
    mlp_proj = m.transformer.h[0].mlp.c_proj.weight
    assert mlp_proj.std().item() == pytest.approx(1024 ** -0.5, rel=0.03)  # fan_in 4d, not d
    for mod in m.modules():
        if isinstance(mod, nn.RMSNorm):
            assert torch.all(mod.weight == 1)


def test_gpt2_init_statistics():
    """init='gpt2': N(0, 0.02) everywhere, except residual projections c_proj: 0.02/sqrt(2 n_layer)."""
    m = _wide("gpt2")
    for name, p in m.named_parameters():
        if p.dim() < 2:
            continue
        want = 0.02 / math.sqrt(2 * 2) if name.endswith("c_proj.weight") else 0.02
        assert p.std().item() == pytest.approx(want, rel=0.03), name


def test_embeddings_are_tied_to_the_lm_head():
    """wte.weight is lm_head.weight (one tensor), and it is counted once in the parameters."""
    m = make_model()
    assert m.transformer.wte.weight is m.lm_head.weight
    assert sum(p is m.lm_head.weight for p in m.parameters()) == 1


# ---------------------------------------------------------------------------------------------
# config validation


@pytest.mark.parametrize("kw,needle", [
    (dict(attention="foo"), "foo"),
    (dict(pos_encoding="x"), "'x'"),
    (dict(norm="y"), "'y'"),
    (dict(mlp="relu"), "relu"),
    (dict(init="xavier"), "xavier"),
    (dict(n_embd=30, n_head=4), "n_embd=30"),
    (dict(n_head=4, n_kv_head=3), "n_kv_head=3"),
    (dict(pos_encoding="rope", n_embd=36, n_head=4), "9"),  # rope needs an even head dim
    (dict(dropout=1.0), "dropout=1.0"),
    (dict(attn_window=-1), "attn_window=-1"),
    (dict(attn_window=2.5), "attn_window=2.5"),
    (dict(attn_window=True), "attn_window=True"),
])
def test_bad_config_values_raise_value_error_naming_them(kw, needle):
    """GPTConfig rejects bad values with a ValueError that names the value."""
    with pytest.raises(ValueError, match=needle):
        tiny(**kw)


def test_attn_impl_is_a_run_time_attribute_not_config():
    """attn_impl is given to GPT and held by each layer's attention, not by GPTConfig (so not by the
    checkpoints' model_args either); config_from_dict drops it from older checkpoints' dicts."""
    assert "attn_impl" not in vars(tiny())
    assert M.config_from_dict({**vars(tiny()), "attn_impl": "triton"}) == tiny()
    assert all(b.attn.attn_impl == "auto" for b in make_model().transformer.h)
    m = GPT(tiny(), attn_impl="torch")
    assert all(b.attn.attn_impl == "torch" for b in m.transformer.h)


@pytest.mark.parametrize("kw,impl,needle", [
    (dict(), "fast", "attn_impl='fast'"),
    (dict(attention="softmax"), "triton", "attention='sigmoid'"),
])
def test_attn_impl_that_cannot_apply_raises_value_error(kw, impl, needle):
    """A bad attn_impl or the kernel for softmax attention: a ValueError naming what is wrong."""
    with pytest.raises(ValueError, match=needle):
        GPT(tiny(**kw), attn_impl=impl)


def test_reference_applies_a_given_dropout_mask_with_inverted_scaling():
    """sigmoid_attention_torch(dropout_mask=M): weights M * p / (1 - dropout_p), training or not
    (the reference of the kernel's dropout); with v the identity, the output is those weights."""
    Tq, Tk, p = 6, 8, 0.25
    q, k = rand(2, 4, Tq, 8, seed=50), rand(2, 2, Tk, 8, seed=51)
    eye = torch.eye(Tk).expand(2, 2, Tk, Tk)
    weights = sigmoid_attention_torch(q, k, eye, bias=-1.0, alibi_slopes=alibi_slopes(4))
    mask = torch.rand(2, 4, Tq, Tk, generator=torch.Generator().manual_seed(52)) > p
    got = sigmoid_attention_torch(q, k, eye, bias=-1.0, alibi_slopes=alibi_slopes(4), dropout_p=p, dropout_mask=mask)
    torch.testing.assert_close(got, torch.where(mask, weights / (1 - p), 0.0))
    assert (got == 0).sum() > (weights == 0).sum()  # the mask dropped some weights


@pytest.mark.skipif(M.flashsigmoid is None, reason="flashsigmoid (Triton) not importable")
def test_kernel_runs_attention_dropout_while_training():
    """attn_impl='triton' with dropout: training applies the kernel's dropout with a seed drawn from
    torch's generator (so torch.manual_seed reproduces it): the reference with the mask of that seed;
    eval runs without dropout, as the PyTorch path does."""
    dev = "cuda" if torch.cuda.is_available() else "cpu"  # the kernel runs interpreted on the CPU
    tol = dict(rtol=1e-4, atol=1e-5)
    cfg = tiny(dropout=0.4, pos_encoding="alibi", n_kv_head=2)
    attn = M.CausalSelfAttention(cfg, attn_impl="triton").to(dev)
    q, k, v = (rand(*s, seed=i).to(dev) for s, i in (((2, 4, 9, 8), 53), ((2, 2, 9, 8), 54), ((2, 2, 9, 8), 55)))
    torch.manual_seed(56)
    got = attn.train().attend(q, k, v)
    torch.manual_seed(56)
    mask = M.flashsigmoid.dropout_mask(M.flashsigmoid.new_seed(dev), 2, 4, 9, 9, 0.4, dev)
    assert not mask.all()
    want = sigmoid_attention_torch(q, k, v, bias=cfg.attn_bias, alibi_slopes=attn.slopes, dropout_p=0.4,
                                   dropout_mask=mask)
    torch.testing.assert_close(got, want, **tol)
    assert not torch.allclose(got, attn.attend(q, k, v))  # the next call draws another mask
    torch.testing.assert_close(attn.eval().attend(q, k, v),
                               sigmoid_attention_torch(q, k, v, bias=cfg.attn_bias, alibi_slopes=attn.slopes), **tol)


@pytest.mark.parametrize("kw,needle", [
    (dict(n_head=0), "n_head=0"),
    (dict(n_kv_head=0), "n_kv_head=0"),
    (dict(n_head=-4), "n_head=-4"),
])
def test_non_positive_head_counts_raise_value_error(kw, needle):
    """Head counts must be positive: a ValueError naming the value."""
    with pytest.raises(ValueError, match=needle):
        tiny(**kw)


# ---------------------------------------------------------------------------------------------
# generation, KV cache


def _prompt(B=2, T=5, seed=32):
    return torch.randint(0, 23, (B, T), generator=torch.Generator().manual_seed(seed))


def _generate(m, idx, n, seed=33, **kw):
    torch.manual_seed(seed)
    return m.generate(idx, n, **kw)


@pytest.mark.parametrize("pos", POSITIONS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_cached_decode_logits_equal_full_forward(attention, pos):
    """Prefill then one token at a time through the KV cache: each step's logits equal the full
    forward's last-position logits over the same tokens (within block_size)."""
    m = make_model(attention=attention, pos_encoding=pos, double=True)
    seq = torch.randint(0, 23, (2, 16), generator=torch.Generator().manual_seed(34))
    cache = M.KVCache(2)
    with torch.no_grad():
        logits, _ = m(seq[:, :5], cache=cache)
        torch.testing.assert_close(logits, m(seq[:, :5])[0], rtol=1e-6, atol=1e-6)
        for t in range(5, 16):
            logits, _ = m(seq[:, t:t + 1], cache=cache)
            torch.testing.assert_close(logits, m(seq[:, :t + 1])[0], rtol=1e-6, atol=1e-6)
    assert cache.pos == 16


@pytest.mark.parametrize("pos", POSITIONS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_generate_with_cache_equals_without_within_block(attention, pos):
    """Same seed, prompt + new tokens <= block_size: the cached and uncached generations agree."""
    m = make_model(attention=attention, pos_encoding=pos, double=True)
    idx = _prompt()
    a, b = _generate(m, idx, 11, use_cache=True), _generate(m, idx, 11, use_cache=False)
    assert a.shape == (2, 16) and torch.equal(a[:, :5], idx)
    assert torch.equal(a, b)


@pytest.mark.parametrize("pos", POSITIONS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_generate_with_cache_equals_without_past_block_size(attention, pos):
    """Same seed, prompt + new tokens > block_size (the sliding-window / re-prefill paths run): the
    cached and uncached generations agree token for token."""
    m = make_model(attention=attention, pos_encoding=pos, double=True)
    idx = _prompt(B=4)
    a, b = _generate(m, idx, 40, use_cache=True), _generate(m, idx, 40, use_cache=False)
    assert a.shape == (4, 45)
    assert torch.equal(a, b), f"{(a != b).sum().item()} of {a.numel()} tokens differ"


@pytest.mark.parametrize("pos", ["alibi", "learned"])
@pytest.mark.parametrize("sampling", [dict(top_k=5), dict(top_p=0.8), dict(top_k=8, top_p=0.9, temperature=0.7)],
                         ids=["top_k", "top_p", "both"])
def test_generate_with_cache_equals_without_top_k_top_p(pos, sampling):
    """The top-k / top-p paths give the same tokens with and without the cache (same seed)."""
    m = make_model(pos_encoding=pos, double=True)
    idx = _prompt()
    assert torch.equal(_generate(m, idx, 11, **sampling), _generate(m, idx, 11, use_cache=False, **sampling))


def _greedy(m, idx, n):
    for _ in range(n):
        logits, _ = m(idx[:, -m.config.block_size:])
        idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx


@pytest.mark.parametrize("sampling", [dict(top_p=1e-9), dict(top_k=1), dict(temperature=1e-9)])
def test_degenerate_sampling_is_greedy(sampling):
    """top_p -> 0, top_k = 1 and temperature -> 0 all pick the argmax token at every step."""
    m = make_model(double=True)
    idx = _prompt()
    with torch.no_grad():
        want = _greedy(m, idx, 10)
    for seed in (1, 2):
        assert torch.equal(_generate(m, idx, 10, seed=seed, **sampling), want)


def test_top_k_samples_only_among_the_k_best():
    """With top_k=3 every sampled token is one of the 3 highest logits."""
    m = make_model()
    idx = _prompt(B=1).repeat(300, 1)
    with torch.no_grad():
        logits, _ = m(idx[:1])
    best = set(torch.topk(logits[0, -1], 3).indices.tolist())
    out = _generate(m, idx, 1, top_k=3, temperature=3.0)[:, -1]
    assert set(out.tolist()) <= best
    assert len(set(out.tolist())) > 1  # it still samples


def test_top_p_samples_only_in_the_nucleus():
    """With top_p=0.5 every sampled token is in the smallest set of top tokens with mass >= 0.5."""
    m = make_model(seed=3)
    idx = _prompt(B=1).repeat(300, 1)
    with torch.no_grad():
        logits, _ = m(idx[:1])
    p, order = logits[0, -1].double().softmax(-1).sort(descending=True)
    n = int((p.cumsum(0) < 0.5).sum()) + 1
    assert 1 < n < 12  # a real restriction, and still a choice
    nucleus = set(order[:n].tolist())
    out = _generate(m, idx, 1, top_p=0.5)[:, -1]
    assert set(out.tolist()) <= nucleus
    assert len(set(out.tolist())) > 1


# ---------------------------------------------------------------------------------------------
# optimizer, MFU, diagnostics


def test_configure_optimizers_groups():
    """AdamW: every parameter in exactly one group; 2D weights decay, 1D gains/biases do not;
    the linear weights get lr * matrix_lr_scale, embeddings and gains the plain lr."""
    m = make_model(bias=True, pos_encoding="learned")
    opt = m.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu", matrix_lr_scale=0.25)
    assert isinstance(opt, torch.optim.AdamW)
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in m.parameters())  # all, once (tied wte/lm_head once)
    emb = {id(m.transformer.wte.weight), id(m.transformer.wpe.weight)}
    for g in opt.param_groups:
        for p in g["params"]:
            if p.dim() >= 2:
                assert g["weight_decay"] == pytest.approx(0.1)
                assert g["lr"] == pytest.approx(1e-3 if id(p) in emb else 2.5e-4)
            else:
                assert g["weight_decay"] == 0.0 and g["lr"] == pytest.approx(1e-3)
    assert any(p.dim() == 1 and p.shape == (96,) for g in opt.param_groups for p in g["params"])  # c_attn bias
    assert opt.defaults["betas"] == (0.9, 0.95) and opt.defaults["eps"] == 1e-8


def test_decoupled_weight_decay_divides_by_group_lr():
    """decoupled_wd: weight_decay is an absolute per-step decay, so each decaying group gets
    weight_decay / its lr (PyTorch multiplies by lr); non-decaying groups stay at 0."""
    m = make_model()
    opt = m.configure_optimizers(1e-4, 1e-2, (0.9, 0.95), "cpu", matrix_lr_scale=0.5, decoupled_wd=True)
    decaying = [g for g in opt.param_groups if g["params"][0].dim() >= 2]
    assert len(decaying) == 2
    for g in decaying:
        assert g["weight_decay"] == pytest.approx(1e-4 / g["lr"])
        assert g["weight_decay"] * g["lr"] == pytest.approx(1e-4)
    assert {round(g["lr"], 12) for g in decaying} == {1e-2, 5e-3}
    assert all(g["weight_decay"] == 0.0 for g in opt.param_groups if g["params"][0].dim() < 2)


def test_estimate_mfu_is_none_on_cpu():
    """MFU needs a known peak: on the CPU it is None, not a made-up number."""
    m = make_model()
    assert m.estimate_mfu(4096, 0.1, torch.device("cpu")) is None
    assert GPT.peak_flops(torch.device("cpu")) is None


def test_attention_stats_per_layer():
    """attention_stats gives each layer's attention-output RMS and (sigmoid) largest row mass, and
    leaves the model's train/eval mode as it was."""
    m = make_model().train()
    stats = m.attention_stats(_prompt(T=12))
    assert len(stats) == 2 and m.training
    for st in stats:
        assert st["out_rms"] > 0 and 0 < st["row_mass_max"] < 12
    assert all(b.attn.stats is None for b in m.transformer.h)


def test_rope_rotates_each_position_by_its_own_angle_and_keeps_relative_scores():
    from model import rope
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 7, 3, 16, generator=g)  # (B, T, nh, hs)
    pos = torch.arange(10, 17)
    whole = rope(x, pos, 1e4)
    for t in range(7):  # token t turned by its own position, whatever the others
        assert torch.allclose(whole[:, t:t + 1], rope(x[:, t:t + 1], pos[t:t + 1], 1e4), atol=1e-6)
    q, k = x[:1, :1], x[1:, :1]

    def score(i, j):
        return (rope(q, torch.tensor([i]), 1e4) * rope(k, torch.tensor([j]), 1e4)).sum(-1)
    assert torch.allclose(score(5, 2), score(13, 10), atol=1e-5)  # only i - j matters
    assert not torch.allclose(score(5, 2), score(5, 3), atol=1e-3)


# ---------------------------------------------------------------------------------------------
# decoding: the preallocated KV cache and the kernel's decode path


def test_preallocated_kv_cache_matches_growing_one():
    """KVCache(max_len) hands back the same keys and values as the torch.cat cache, as views of one
    buffer per layer (no copy of the past positions per step), keys in the values' dtype; writing past
    max_len raises."""
    grow, fixed = M.KVCache(2), M.KVCache(2, max_len=9)
    for T in (5, 1, 1, 2):
        k = rand(2, 3, T, 4, seed=T, dtype=torch.float64)  # fp32 keys with bf16 values, as under autocast
        v = rand(2, 3, T, 4, seed=T + 9).to(torch.bfloat16)
        for layer in (0, 1):
            a, b = grow.update(layer, k, v), fixed.update(layer, k, v)
            for x, y in zip(a, b):
                assert x.dtype == y.dtype == torch.bfloat16 and torch.equal(x, y)
            assert b[0].data_ptr() == fixed.k[layer].data_ptr() and fixed.k[layer].size(2) == 9
        grow.pos += T
        fixed.pos += T
    with pytest.raises(ValueError, match="max_len=9"):
        fixed.update(0, k[:, :, :1], v[:, :, :1])


def test_generate_preallocates_its_caches(monkeypatch):
    """generate's caches are preallocated to the positions they will hold (block_size at most), and
    the tokens are those of the uncached generation, within and past block_size."""
    made = []

    class Spy(M.KVCache):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)
    monkeypatch.setattr(M, "KVCache", Spy)
    m = make_model(double=True)
    idx = _prompt()
    for n in (7, 30):
        made.clear()
        out = _generate(m, idx, n)
        assert torch.equal(out, _generate(m, idx, n, use_cache=False))
        assert made and all(c.max_len is not None and c.max_len <= m.config.block_size for c in made)
        assert made[0].max_len == min(m.config.block_size, 5 + n - 1)


@interpreted
@pytest.mark.parametrize("n_kv", [4, 1], ids=["mha", "mqa"])
def test_cached_decoding_on_the_kernel(n_kv, monkeypatch):
    """attn_impl='triton' (the interpreter here): prefill and one-token steps through the KV cache take
    the kernel's decode path, and each step's logits match the PyTorch path's full forward."""
    import flashsigmoid
    calls = []
    real = flashsigmoid._decode_fwd
    monkeypatch.setattr(flashsigmoid, "_decode_fwd", lambda *a: calls.append(a[0].shape) or real(*a))
    torch.manual_seed(0)
    kernel = GPT(tiny(n_kv_head=n_kv, block_size=32), attn_impl="triton").eval()
    ref = GPT(tiny(n_kv_head=n_kv, block_size=32), attn_impl="torch").eval()
    ref.load_state_dict(kernel.state_dict())
    seq = torch.randint(0, 23, (2, 12), generator=torch.Generator().manual_seed(5))
    cache = M.KVCache(2, max_len=12)
    with torch.no_grad():
        kernel(seq[:, :4], cache=cache)
        for t in range(4, 12):
            calls.clear()
            logits, _ = kernel(seq[:, t:t + 1], cache=cache)
            assert [s[2] for s in calls] == [1, 1]  # both layers, one query each
            torch.testing.assert_close(logits, ref(seq[:, :t + 1])[0], rtol=1e-4, atol=1e-4)


def test_per_head_bias_formula_and_attention():
    """sigmoid_bias='per_head': b_h = -ln min(T, 1/(1 - exp(-m_h))) with ALiBi, -ln T for every head
    without; the attention adds each head's own b_h (PyTorch path)."""
    from model import head_biases
    m = alibi_slopes(4)
    b = tiny(block_size=64, n_head=4, sigmoid_bias="per_head").attn_bias
    assert torch.allclose(b, torch.tensor([-math.log(min(64, 1 / (1 - math.exp(-s)))) for s in m.tolist()]))
    assert b[0] > b[-1]  # the most local head (largest slope) counts the fewest keys
    assert torch.allclose(tiny(n_head=4, pos_encoding="rope", sigmoid_bias="per_head").attn_bias,
                          torch.full((4,), -math.log(tiny().block_size)))
    assert torch.allclose(head_biases(torch.tensor([1e-6]), 1, 32), torch.tensor([-math.log(32)]))  # capped at T
    with pytest.raises(ValueError, match="per_head"):
        tiny(sigmoid_bias="per_layer")
    cfg = tiny(block_size=32, n_head=4, sigmoid_bias="per_head")
    attn = M.CausalSelfAttention(cfg, attn_impl="torch")
    q, k, v = (torch.randn(2, 4, 32, cfg.n_embd // 4) for _ in range(3))
    want = torch.cat([sigmoid_attention_torch(q[:, h:h + 1], k[:, h:h + 1], v[:, h:h + 1], bias=cfg.attn_bias[h].item(),
                                              alibi_slopes=attn.slopes[h:h + 1]) for h in range(4)], dim=1)
    assert torch.allclose(attn.attend(q, k, v), want, atol=1e-6)


def test_training_forward_without_logits_leaves_autograd_no_logits_gradient_to_fill():
    """return_logits=False (train.py's step) gives the same loss and gradients, and returns no logits: logits
    returned from a compiled graph get a zero gradient of their size from autograd (the whole (B, T, vocab),
    1.6 GB at 124M, 16 x 1024), which the graph's backward then reads."""
    from torch.profiler import ProfilerActivity, profile
    B, T, V = 2, 16, 23
    idx = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(46))
    filled, losses, grads = {}, {}, {}
    for return_logits in (True, False):
        torch._dynamo.reset()
        m = make_model().train()
        logits, loss = torch.compile(m, backend="aot_eager")(idx, idx, return_logits=return_logits)
        assert (logits is None) == (not return_logits)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            loss.backward()
        filled[return_logits] = [e.input_shapes[0] for e in prof.key_averages(group_by_input_shape=True)
                                 if e.key in ("aten::zeros_like", "aten::zeros", "aten::fill_", "aten::zero_")
                                 and e.input_shapes]
        losses[return_logits], grads[return_logits] = loss, [p.grad for p in m.parameters()]
    assert [B, T, V] in filled[True]  # what the option removes is there without it
    assert [B, T, V] not in filled[False], filled[False]
    torch.testing.assert_close(losses[False], losses[True])
    for got, want in zip(grads[False], grads[True]):
        torch.testing.assert_close(got, want)
