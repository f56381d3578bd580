"""
A GPT language model with sigmoid attention, in one file.

The recipe (Ramapuram et al., "Theory, Analysis, and Best Practices for Sigmoid Self-Attention",
ICLR 2025; see PAPER notes in the README):
    attention  O = sigmoid(Q K^T / sqrt(d) + b + ALiBi) V,  b = -ln(block_size), no row normalisation
    QK-norm    RMSNorm over each head's q and k before the scale
    hybrid-norm  x = x + RMSNorm_post(branch(RMSNorm_pre(x))) for attention and MLP alike
Softmax attention (through PyTorch SDPA) stays as an option, so the two can be compared in one repo.
"""

import math
import inspect
from collections import namedtuple
from dataclasses import dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

try:  # the fused Triton kernels; optional (no Triton on macOS/Windows, or no GPU)
    import flashsigmoid
    import qknorm
except Exception:  # noqa: BLE001 - any import failure means "not available"
    flashsigmoid = qknorm = None
# QK-norm through qknorm.py's one-pass kernels (the maths of the nn.RMSNorm modules, whose weights they
# use): "auto" = on CUDA; True = always (on a CPU under TRITON_INTERPRET=1: the tests); False = never.
# On the kernel (no RoPE, no KV cache, no documents) QK-norm and attention run as one op
# (qknorm.qk_norm_sigmoid_attention). train.py sets "auto" (--fused_qk_norm, on by default since it measured
# faster, BENCHMARKS.md); a bare GPT() here keeps nn.RMSNorm
FUSED_QK_NORM = False


def _kernel_on(flag, x):
    """Whether a FUSED_* switch runs qknorm.py's kernels for input x: True = always (the CPU tests, under
    TRITON_INTERPRET=1), "auto" = on CUDA, False = never."""
    return qknorm is not None and (flag is True or (bool(flag) and x.is_cuda))


CHOICES = dict(attention=("sigmoid", "softmax"), pos_encoding=("alibi", "rope", "learned", "none"),
               norm=("hybrid", "pre"), mlp=("gelu", "swiglu"), init=("paper", "gpt2"))


@dataclass
class GPTConfig:
    block_size: int = 1024
    vocab_size: int = 50304  # GPT-2's 50257 padded up to a multiple of 64 for speed
    n_layer: int = 12
    n_head: int = 12
    n_kv_head: int | None = None  # None = n_head; fewer for GQA/MQA
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = False  # biases in Linear layers (GPT-2 has them; the paper's LMs do not)
    attention: str = "sigmoid"
    sigmoid_bias: float | str | None = None  # None = -ln(block_size), the paper's b; "per_head": see head_biases
    pos_encoding: str = "alibi"
    norm: str = "hybrid"
    qk_norm: bool = True
    layerscale: float | None = None  # init of a per-channel gain on each branch output (paper: 1e-4)
    mlp: str = "gelu"
    init: str = "paper"  # paper: N(0, 1/fan_in) linears, N(0, 1/d) embeddings; gpt2: N(0, 0.02)
    rope_theta: float = 10000.0
    attn_window: int | None = None  # None = full; w: token i attends to keys i - w .. i (itself and w before)

    def __post_init__(self):
        for name, ok in CHOICES.items():
            if getattr(self, name) not in ok:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {ok}")
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_kv_head", "n_embd"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be a positive integer")
        if isinstance(self.sigmoid_bias, str) and self.sigmoid_bias != "per_head":
            raise ValueError(f"sigmoid_bias={self.sigmoid_bias!r} must be a number, None or 'per_head'")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout!r} must be in [0, 1)")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_head={self.n_head} is not divisible by n_kv_head={self.n_kv_head}")
        if self.pos_encoding == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"rope needs an even head dim, got {self.n_embd // self.n_head}")
        if self.attn_window is not None and (not isinstance(self.attn_window, int) or isinstance(self.attn_window, bool)
                                             or self.attn_window < 0):
            raise ValueError(f"attn_window={self.attn_window!r} must be None (full attention) or an integer >= 0")

    @property
    def attn_bias(self):
        """b: a float, or with sigmoid_bias='per_head' a (n_head,) tensor (head_biases)."""
        if self.sigmoid_bias == "per_head":
            return head_biases(alibi_slopes(self.n_head) if self.pos_encoding == "alibi" else None,
                               self.n_head, self.block_size)
        return -math.log(self.block_size) if self.sigmoid_bias is None else self.sigmoid_bias

    @property
    def window(self):
        """attn_window as (left, right) for the attention functions (FlashAttention's window_size)."""
        return None if self.attn_window is None else (self.attn_window, 0)


def alibi_slopes(n_head):
    """ALiBi's head slopes 2^(-8h/H), h = 1..H, with its interpolation for H not a power of two."""
    def pow2(n):
        return [2 ** (-8 * (i + 1) / n) for i in range(n)]
    p = 2 ** math.floor(math.log2(n_head))
    return torch.tensor(pow2(p) + pow2(2 * p)[0::2][: n_head - p], dtype=torch.float32)


def head_biases(slopes, n_head, T):
    """A bias per head that counts only the keys the head effectively sees (an idea beyond the paper):
    b_h = -ln(min(T, 1 / (1 - exp(-m_h)))), where 1 / (1 - exp(-m)) = sum_d exp(-m d) is how many keys
    an ALiBi head of slope m weighs; the paper's -ln T for every head without ALiBi (slopes None)."""
    if slopes is None:
        return torch.full((n_head,), -math.log(T))
    return -torch.log(torch.clamp(1.0 / -torch.expm1(-slopes.double()), max=T)).float()


def distance(Tq, Tk, q_offset, device):
    """i - j for query i (at absolute position i + q_offset) and key j: (Tq, Tk); negative = future."""
    return (torch.arange(Tq, device=device) + q_offset)[:, None] - torch.arange(Tk, device=device)


Documents = namedtuple("Documents", "pos ids cu")


def documents(idx, eot):
    """Packed documents of a batch idx (B, T) whose documents each end with token eot: per token its
    position inside its document (B, T), its document's number in the row (B, T), and the int32
    cumulative lengths of all documents of the flattened B*T tokens, padded with empty documents to
    B*T + 1 entries (a fixed shape: no host sync, no recompiles)."""
    B, T = idx.shape
    t = torch.arange(T, device=idx.device)
    starts = torch.ones_like(idx, dtype=torch.bool)
    starts[:, 1:] = idx[:, :-1] == eot  # a document starts each row and follows each eot
    pos = t - torch.where(starts, t, 0).cummax(1).values
    flat = starts.view(-1)
    n = B * T
    cu = torch.full((n + 1,), n, dtype=torch.int32, device=idx.device)
    slot = torch.where(flat, flat.cumsum(0) - 1, n)  # the k-th start goes to cu[k], the others to cu[n]
    cu.scatter_(0, slot, torch.where(flat, torch.arange(n, device=idx.device), n).to(torch.int32))
    return Documents(pos, starts.cumsum(1), cu)


def other_documents(docs):
    """True where key j is in another document than query i: (B, 1, T, T), for the materialised paths."""
    return docs.ids[:, None, :, None] != docs.ids[:, None, None, :]


def window_mask(dist, causal, window):
    """True where key j is hidden from query i, for dist = i - j: future keys when causal, and keys
    outside window = (left, right) (i - left <= j <= i + right, -1 = unlimited; FlashAttention's
    window_size). None when nothing is hidden."""
    left, right = (-1, -1) if window is None else window
    mask = None
    for hide, on in ((dist < 0, causal), (dist > left, left >= 0), (dist < -right, right >= 0)):
        if on:
            mask = hide if mask is None else mask | hide
    return mask


def sigmoid_attention_torch(q, k, v, *, bias, causal=True, scale=None, alibi_slopes=None, q_offset=None,
                            upcast=True, dropout_p=0.0, training=False, stats=None, dropout_mask=None, window=None,
                            hide=None):
    """The reference sigmoid attention, materialised (Tq x Tk), in the conventions of the kernel's
    flashsigmoid.sigmoid_attention: O = sigmoid(scale q.k_j + bias - slope_h * dist_ij) V, no row
    normalisation. causal: dist = i - j and future keys at -inf (weight exactly 0); else dist = |i - j|.
    q (B, nh, Tq, hs), k/v (B, nkv, Tk, hs); scale defaults to 1/sqrt(hs); query i sits at absolute
    position i + q_offset, by default Tk - Tq (bottom-right, as with a KV cache). upcast computes in at
    least fp32 (fp64 for double inputs), as the paper says; upcast=False in the input dtype.
    window = (left, right): query i sees only keys i - left <= j <= i + right (-1 = unlimited), the
    others at -inf as the future ones; hide: a bool tensor broadcastable to (B, nh, Tq, Tk), True
    where a key is hidden too (other documents). A dict `stats` receives the largest row mass
    sum_j p_ij (softmax's is always 1).
    Dropout on the weights p: F.dropout(p, dropout_p, training), or, given `dropout_mask` (bool,
    broadcastable to (B, nh, Tq, Tk), True = keep; the kernel's own is flashsigmoid.dropout_mask), that
    mask with the same 1/(1 - dropout_p) scaling, training or not: the reference of the kernel's dropout."""
    B, nh, Tq, hs = q.shape
    Tk = k.size(2)
    if k.size(1) != nh:  # GQA: share each kv head among its group of query heads
        k, v = (t.repeat_interleave(nh // k.size(1), dim=1) for t in (k, v))
    f = torch.promote_types(q.dtype, torch.float32) if upcast else q.dtype
    scale = 1 / math.sqrt(hs) if scale is None else scale
    if torch.is_tensor(bias):  # one bias per head
        bias = bias.to(device=q.device, dtype=f).view(1, nh, 1, 1)
    s = (q.to(f) @ k.to(f).transpose(-2, -1)) * scale + bias  # (B, nh, Tq, Tk)
    dist = distance(Tq, Tk, Tk - Tq if q_offset is None else q_offset, q.device)
    if alibi_slopes is not None:  # the true distance: sigmoid is not shift-invariant
        s = s - alibi_slopes.to(s.dtype).view(1, nh, 1, 1) * (dist if causal else dist.abs())
    hidden = window_mask(dist, causal, window)
    if hide is not None:
        hidden = hide if hidden is None else hidden | hide
    if hidden is not None:
        s = s.masked_fill(hidden, float("-inf"))
    p = torch.sigmoid(s)
    if stats is not None:
        stats["row_mass_max"] = p.sum(-1).max().item()
    if dropout_mask is not None:
        p = torch.where(dropout_mask.to(p.device), p / (1 - dropout_p), 0.0)
    else:
        p = F.dropout(p, dropout_p, training)
    return (p @ v.to(f)).to(v.dtype)


def rope(x, pos, theta):
    """Rotary embedding of x (B, T, nh, hs) at absolute positions pos (T,) or (B, T)."""
    hs = x.size(-1)
    f = torch.promote_types(x.dtype, torch.float32)
    inv = theta ** (-torch.arange(0, hs, 2, device=x.device, dtype=f) / hs)
    ang = pos.to(f)[..., None, None] * inv  # ([B,] T, 1, hs/2)
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x.to(f).chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


class KVCache:
    """Keys and values of every layer's past positions, for generation.

    max_len: each layer's keys and values go into (B, nkv, max_len, hs) buffers allocated at its first
    update (gpt-fast's static cache); a step writes only its new positions and attention gets views of
    the filled part. Without it (None) they grow by torch.cat, which copies the whole cache every step:
    O(T) memory traffic per token and layer, and a fresh allocation each time.
    Keys are kept in the values' dtype: under autocast the RMSNorm'd keys come out fp32 while the
    values are bf16, and the kernel and SDPA both take one dtype; casting the new positions once here
    spares casting the whole cache again at every step."""

    def __init__(self, n_layer, max_len=None):
        self.k, self.v, self.pos, self.max_len = [None] * n_layer, [None] * n_layer, 0, max_len

    def update(self, layer, k, v):  # k, v: (B, nkv, T, hs) of the new positions, which start at self.pos
        k = k.to(v.dtype)
        if self.max_len is None:
            if self.k[layer] is not None:
                k, v = torch.cat([self.k[layer], k], dim=2), torch.cat([self.v[layer], v], dim=2)
            self.k[layer], self.v[layer] = k, v
            return k, v
        end = self.pos + k.size(2)
        if end > self.max_len:
            raise ValueError(f"KV cache of max_len={self.max_len} positions cannot hold {end}")
        if self.k[layer] is None:
            B, nkv, _, hs = k.shape
            self.k[layer], self.v[layer] = (v.new_empty(B, nkv, self.max_len, hs) for _ in range(2))
        self.k[layer][:, :, self.pos:end] = k
        self.v[layer][:, :, self.pos:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


class CausalSelfAttention(nn.Module):

    def __init__(self, config, attn_impl="auto"):
        super().__init__()
        # attn_impl, a run-time choice: 'triton' = the FlashSigmoid kernel (attention dropout included),
        # 'torch' = sigmoid_attention_torch, 'auto' = the kernel on CUDA where it applies (not while
        # attention_stats runs), else PyTorch
        if attn_impl not in ("auto", "triton", "torch"):
            raise ValueError(f"attn_impl={attn_impl!r} is not one of ('auto', 'triton', 'torch')")
        if attn_impl == "triton" and (config.attention != "sigmoid" or flashsigmoid is None):
            raise ValueError("attn_impl='triton' needs attention='sigmoid' and an importable flashsigmoid "
                             "(Triton installed)")
        self.attn_impl = attn_impl
        self.nh, self.nkv, self.hs = config.n_head, config.n_kv_head, config.n_embd // config.n_head
        self.c_attn = nn.Linear(config.n_embd, (self.nh + 2 * self.nkv) * self.hs, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.q_norm = nn.RMSNorm(self.hs, eps=1e-5) if config.qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(self.hs, eps=1e-5) if config.qk_norm else nn.Identity()
        self.register_buffer("slopes", alibi_slopes(self.nh) if config.pos_encoding == "alibi" else None,
                             persistent=False)
        # b: the config's float, or with sigmoid_bias='per_head' a buffer of one per head (on the model's device)
        bias = config.attn_bias
        self.register_buffer("head_bias", bias if isinstance(bias, torch.Tensor) else None, persistent=False)
        self.config = config
        self.stats = None  # a dict while GPT.attention_stats runs

    def forward(self, x, pos, cache=None, layer=0, docs=None):
        B, T, C = x.size()
        qkv = self.c_attn(x)
        fused = self.config.qk_norm and _kernel_on(FUSED_QK_NORM, x)
        if fused and self.on_kernel(x) and cache is None and docs is None and self.config.pos_encoding != "rope":
            # QK-norm and the kernel as one op: its backward writes qkv's gradient in place, no cat
            y = qknorm.qk_norm_sigmoid_attention(qkv, self.q_norm.weight, self.k_norm.weight, self.nh, self.nkv,
                                                 self.q_norm.eps, bias=self.attn_bias, alibi_slopes=self.slopes,
                                                 dropout_p=self.config.dropout if self.training else 0.0,
                                                 window=self.config.window)
        else:
            q, k, v = qkv.split([self.nh * self.hs, self.nkv * self.hs, self.nkv * self.hs], dim=2)
            if fused:
                # one pass over memory each way, q and k straight from the projection, in v's dtype
                q, k = qknorm.qk_rmsnorm(qkv[..., :(self.nh + self.nkv) * self.hs], self.q_norm.weight,
                                         self.k_norm.weight, self.nh, self.nkv, self.q_norm.eps, dtype=v.dtype)
            else:
                q = self.q_norm(q.view(B, T, self.nh, self.hs))  # (B, T, nh, hs)
                k = self.k_norm(k.view(B, T, self.nkv, self.hs))  # (B, T, nkv, hs)
            if self.config.pos_encoding == "rope":
                q, k = rope(q, pos, self.config.rope_theta), rope(k, pos, self.config.rope_theta)
            # heads as (B, nh, T, hs) views of (B, T, nh, hs) memory: the kernel answers in the same layout,
            # so the transpose back before c_proj copies nothing
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.view(B, T, self.nkv, self.hs).transpose(1, 2)
            if cache is not None:
                k, v = cache.update(layer, k, v)
            y = self.attend(q, k, v, docs)
        y = self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        if self.stats is not None:
            self.stats["out_rms"] = y.float().pow(2).mean().sqrt().item()
        return y

    @property
    def attn_bias(self):  # b, a float or (nh,) tensor
        return self.head_bias if self.head_bias is not None else self.config.attn_bias

    def on_kernel(self, x):
        """Whether sigmoid attention runs on the FlashSigmoid kernel (see attn_impl) for input x."""
        return self.config.attention == "sigmoid" and self.stats is None and (
            self.attn_impl == "triton" or (self.attn_impl == "auto" and x.is_cuda and flashsigmoid is not None))

    def attend(self, q, k, v, docs=None):
        """q (B, nh, Tq, hs), k and v (B, nkv, Tk, hs); docs: documents() of the batch, whose documents
        then attend only within themselves (Tq = Tk), or None."""
        cfg, (B, _, Tq, hs), Tk = self.config, q.shape, k.size(2)
        drop = cfg.dropout if self.training else 0.0
        if cfg.attention == "sigmoid":
            if self.on_kernel(q):
                # under autocast the RMSNorm'd q, k come out fp32 while v is bf16: one dtype for the kernel.
                # Its dropout seed comes from torch's generator (seed=None), which train.py seeds and
                # checkpoints, so runs stay reproducible and resume exactly as on the PyTorch path.
                q, k = q.to(v.dtype), k.to(v.dtype)
                if docs is not None:  # the documents of the flattened batch as packed sequences
                    packed = [t.transpose(1, 2).reshape(B * t.size(2), t.size(1), hs) for t in (q, k, v)]
                    y = flashsigmoid.sigmoid_attention_varlen(*packed, docs.cu, docs.cu, Tq, Tk, causal=True,
                                                              bias=self.attn_bias, alibi_slopes=self.slopes,
                                                              window=cfg.window, dropout_p=drop, check=False)
                    return y.view(B, Tq, self.nh, hs).transpose(1, 2)
                return flashsigmoid.sigmoid_attention(q, k, v, causal=True, bias=self.attn_bias, alibi_slopes=self.slopes,
                                                      dropout_p=drop, window=cfg.window)
            return sigmoid_attention_torch(q, k, v, bias=self.attn_bias, alibi_slopes=self.slopes, dropout_p=drop,
                                           training=self.training, stats=self.stats, window=cfg.window,
                                           hide=None if docs is None else other_documents(docs))
        # softmax: SDPA picks the fastest kernel; ALiBi, a window, documents and cached decoding need an
        # explicit mask (SDPA's is_causal aligns top-left, a KV cache needs bottom-right). A single query
        # (decoding without ALiBi or a window) is the last position and sees every key: no mask to build.
        mask = None
        if self.slopes is not None or (Tq != Tk and Tq > 1) or cfg.window is not None or docs is not None:
            dist = distance(Tq, Tk, Tk - Tq, q.device)
            hidden = window_mask(dist, True, cfg.window)
            hidden = hidden if docs is None else hidden | other_documents(docs)
            mask = torch.zeros(hidden.shape, device=q.device).masked_fill(hidden, float("-inf"))
            if self.slopes is not None:
                mask = mask - self.slopes.view(-1, 1, 1) * dist  # ([B,] nh, Tq, Tk)
            mask = mask.to(q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop,
                                              is_causal=mask is None and Tq > 1, enable_gqa=self.nkv != self.nh)


class MLP(nn.Module):

    def __init__(self, config):
        super().__init__()
        d, self.swiglu = config.n_embd, config.mlp == "swiglu"
        hidden = math.ceil(8 * d / 3 / 256) * 256 if self.swiglu else 4 * d
        self.c_fc = nn.Linear(d, 2 * hidden if self.swiglu else hidden, bias=config.bias)
        self.c_proj = nn.Linear(hidden, d, bias=config.bias)

    def forward(self, x):
        if self.swiglu:
            a, b = self.c_fc(x).chunk(2, dim=-1)
            return self.c_proj(F.silu(a) * b)
        return self.c_proj(F.gelu(self.c_fc(x)))


def _fused_post_norm(x):
    """Whether the post-norms' backward runs in qknorm.py's kernel for residual stream x (FUSED_POST_NORM)."""
    return x.dtype == torch.float32 and _kernel_on(FUSED_POST_NORM, x)


def _post_norm_backward(g, x, out, w, r, a_dtype):
    """da, dw of out = x + RMSNorm(a) w given out's gradient g, a's normed rows recovered as (out - x) / w."""
    if _fused_post_norm(x):  # the same maths in one Triton pass, the gain's sum included
        return qknorm.post_norm_bwd(g, x, out, w, r, a_dtype)
    xh = (out - x) / w  # a r
    gw = g * w
    da = r * (gw - xh * (gw * xh).mean(-1, keepdim=True))
    return da.to(a_dtype), (g * xh).flatten(0, -2).sum(0).to(w.dtype)


def _post_norm_forward(x, a, w, eps):
    """out = x + RMSNorm(a) w in fp32 at least, and 1/rms(a) r (..., 1), which the backward keeps."""
    a32 = a.to(torch.promote_types(a.dtype, torch.float32))
    r = torch.rsqrt(a32.pow(2).mean(-1, keepdim=True) + eps)
    return x + a32 * r * w, r


class ResidualRMSNorm(torch.autograd.Function):
    """x + RMSNorm(a) w: hybrid-norm's post-norm and its residual add, whose backward keeps no copy of a.
    It needs only a's normalised rows, which it recovers as (x + RMSNorm(a) w - x) / w from the sum and x,
    two tensors the pre-norms keep anyway (Apex's memory-efficient norms recover them from the output the same
    way). At 124M, 16 x 1024, that is 0.56 GiB less. Exact up to fp32 rounding when x is fp32 (train.py's
    residual stream under autocast: RMSNorm's output is fp32); a gain of exactly 0 would give NaN gradients."""

    @staticmethod
    def forward(ctx, x, a, w, eps):
        out, r = _post_norm_forward(x, a, w, eps)
        ctx.save_for_backward(x, out, w, r)
        ctx.a_dtype = a.dtype
        return out

    @staticmethod
    def backward(ctx, g):
        return g, *_post_norm_backward(g, *ctx.saved_tensors, ctx.a_dtype), None


class ResidualRMSNormPre(torch.autograd.Function):
    """ResidualRMSNorm, then the next pre-norm h = RMSNorm(out) v, as one function whose backward is one Triton
    pass (qknorm.post_pre_norm_bwd): out's gradient from the pre-norm is added to the residual's and used at
    once, not written by one kernel and read back by the next. h comes in h_dtype: under autocast, the dtype
    the next matmul casts it to anyway."""

    @staticmethod
    def forward(ctx, x, a, w, eps, v, eps_pre, h_dtype):
        out, r = _post_norm_forward(x, a, w, eps)
        s = torch.rsqrt(out.pow(2).mean(-1, keepdim=True) + eps_pre)
        ctx.save_for_backward(x, out, w, r, v, s)
        ctx.a_dtype = a.dtype
        return out, (out * s * v).to(h_dtype)

    @staticmethod
    def backward(ctx, g, gh):
        x, out, w, r, v, s = ctx.saved_tensors
        g, da, dwv = qknorm.post_pre_norm_bwd(g, gh, x, out, w, r, v, s, ctx.a_dtype)
        return g, da, dwv[0].to(w.dtype), None, dwv[1].to(v.dtype), None, None


# False: nn.RMSNorm and a plain residual add for the post-norms (keeps their inputs for the backward)
POST_NORM_FROM_SUM = True
# ResidualRMSNorm's backward in qknorm.post_norm_bwd's kernel: "auto" = on CUDA, True = always (the CPU tests,
# under TRITON_INTERPRET=1), False = in PyTorch ops. train.py sets "auto" (--fused_post_norm)
FUSED_POST_NORM = False


class Block(nn.Module):
    """x + post(attn(pre(x))), then h + post(mlp(pre(h))); post = identity for norm='pre'. Returns the output
    and, where the kernels fuse it (see residual), the next pre-norm of it."""

    def __init__(self, config, attn_impl="auto"):
        super().__init__()
        d, hybrid = config.n_embd, config.norm == "hybrid"
        self.attn_norm, self.mlp_norm = nn.RMSNorm(d, eps=1e-5), nn.RMSNorm(d, eps=1e-5)
        self.attn_post_norm = nn.RMSNorm(d, eps=1e-5) if hybrid else nn.Identity()
        self.mlp_post_norm = nn.RMSNorm(d, eps=1e-5) if hybrid else nn.Identity()
        self.attn, self.mlp = CausalSelfAttention(config, attn_impl), MLP(config)
        ls = config.layerscale
        self.attn_scale = nn.Parameter(torch.full((d,), ls)) if ls is not None else None
        self.mlp_scale = nn.Parameter(torch.full((d,), ls)) if ls is not None else None
        self.drop = nn.Dropout(config.dropout)

    def residual(self, x, a, post_norm, scale, next_norm=None):
        """(x + drop(post_norm(a) [* scale]), next_norm of it or None). With next_norm given (the next pre-norm)
        and the post-norm kernel on, the two norms and the add run as ResidualRMSNormPre; else the second is
        None and the caller applies next_norm itself. Never with a shard's gain: FSDP2 gathers a block's gains
        only inside that block's forward."""
        if (POST_NORM_FROM_SUM and isinstance(post_norm, nn.RMSNorm) and scale is None and x.dtype in
                (torch.float32, torch.float64) and (self.drop.p == 0 or not self.training)):
            if next_norm is not None and _fused_post_norm(x) and not hasattr(next_norm.weight, "device_mesh"):
                dev = x.device.type
                h_dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
                return ResidualRMSNormPre.apply(x, a, post_norm.weight, post_norm.eps, next_norm.weight,
                                                next_norm.eps, h_dtype)
            return ResidualRMSNorm.apply(x, a, post_norm.weight, post_norm.eps), None
        a = post_norm(a)
        return x + self.drop(a if scale is None else a * scale), None

    def forward(self, x, pos, cache=None, layer=0, docs=None, h=None, next_norm=None):
        """Returns (the block's output, next_norm of it or None: see residual). h: attn_norm(x), if the
        previous block returned it."""
        a = self.attn(self.attn_norm(x) if h is None else h, pos, cache, layer, docs)
        x, h = self.residual(x, a, self.attn_post_norm, self.attn_scale, self.mlp_norm)
        return self.residual(x, self.mlp(self.mlp_norm(x) if h is None else h), self.mlp_post_norm, self.mlp_scale,
                             next_norm)


class GPT(nn.Module):

    def __init__(self, config, attn_impl="auto"):
        """attn_impl: how sigmoid attention runs (see CausalSelfAttention); not part of the model or its config."""
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd) if config.pos_encoding == "learned" else None,
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, attn_impl) for _ in range(config.n_layer)]),
            ln_f=nn.RMSNorm(config.n_embd, eps=1e-5),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)
        if config.init == "gpt2":  # GPT-2's scaled init of the residual projections
            for pn, p in self.named_parameters():
                if pn.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        # paper: std 1/sqrt(fan_in) for linears, 1/sqrt(d) for embeddings (= lm_head's fan_in when tied)
        if isinstance(module, (nn.Linear, nn.Embedding)):
            fan_in = module.weight.size(1)
            std = 0.02 if self.config.init == "gpt2" else fan_in ** -0.5
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def get_num_params(self, non_embedding=True):
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and self.transformer.wpe is not None:
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(self, idx, targets=None, cache=None, eot=None, return_logits=True):
        """idx (B, T) tokens; targets (B, T) or None (then only the last position's logits); cache: a
        KVCache to extend. eot: the end-of-text token: each row's documents (each ending with eot)
        then attend only within themselves, their positions starting at 0 (packed training data).
        return_logits=False (with targets): (None, loss), train.py's step. Logits returned from a compiled
        graph get a zero-filled gradient from autograd, which the loss's backward then reads: at 124M, 16 x 1024,
        0.8 ms of kernels and 4.5 GiB of peak memory (BENCHMARKS run 74)."""
        B, T = idx.size()
        start = cache.pos if cache is not None else 0
        pos = torch.arange(start, start + T, dtype=torch.long, device=idx.device)
        docs = None
        if eot is not None:
            if cache is not None:
                raise ValueError("eot (document masking) does not work with a KV cache")
            docs = documents(idx, eot)
            pos = docs.pos
        x = self.transformer.wte(idx)  # (B, T, n_embd)
        if self.transformer.wpe is not None:
            if start + T > self.config.block_size:
                raise ValueError(f"sequence of {start + T} tokens exceeds block_size={self.config.block_size} "
                                 "with learned positions")
            x = x + self.transformer.wpe(pos)
        x = self.transformer.drop(x)
        blocks, h = self.transformer.h, None
        for i, block in enumerate(blocks):  # each block also returns the next norm of its output, where fused
            nxt = blocks[i + 1].attn_norm if i + 1 < len(blocks) else self.transformer.ln_f
            x, h = block(x, pos, cache, i, docs, h, nxt)
        if cache is not None:
            cache.pos += T
        x = self.transformer.ln_f(x) if h is None else h
        if targets is None:  # inference: only the last position's logits are needed
            return self.lm_head(x[:, [-1], :]), None
        logits = self.lm_head(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return (logits if return_logits else None), loss

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type, matrix_lr_scale=1.0,
                             decoupled_wd=False):
        """AdamW; 2D weights decay, gains and biases do not. matrix_lr_scale multiplies the lr of the
        linear weights (the paper: min(768/d, 1)); decoupled_wd makes weight_decay an absolute per-step
        decay (PyTorch's AdamW multiplies it by lr, so it is divided by each group's peak lr)."""
        params = {pn: p for pn, p in self.named_parameters() if p.requires_grad}
        emb = {id(self.transformer.wte.weight)} | ({id(self.transformer.wpe.weight)} if self.transformer.wpe else set())
        groups = [
            dict(params=[p for p in params.values() if p.dim() >= 2 and id(p) in emb], lr_scale=1.0, decay=True),
            dict(params=[p for p in params.values() if p.dim() >= 2 and id(p) not in emb],
                 lr_scale=matrix_lr_scale, decay=True),
            dict(params=[p for p in params.values() if p.dim() < 2], lr_scale=1.0, decay=False),
        ]
        for g in groups:
            g["lr"] = learning_rate * g["lr_scale"]
            wd = weight_decay / g["lr"] if decoupled_wd and g["lr"] > 0 else weight_decay
            g["weight_decay"] = wd if g.pop("decay") else 0.0
        groups = [g for g in groups if g["params"]]
        fused = device_type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=1e-8, **({"fused": True} if fused else {}))

    def flops_per_token(self, T=None):
        """6N for the matmuls with weights, plus 12 * L * d * T for attention (nanoGPT / PaLM)."""
        cfg = self.config
        return 6 * self.get_num_params() + 12 * cfg.n_layer * cfg.n_embd * (T or cfg.block_size)

    @staticmethod
    def peak_flops(device):
        """Dense bf16 peak of the device in FLOP/s, or None where we do not know it."""
        if device.type != "cuda":
            return None
        name = torch.cuda.get_device_name(device)
        for key, peak in (("H100", 989e12), ("H200", 989e12), ("H800", 989e12), ("A100", 312e12)):
            if key in name:
                return peak
        return None

    def estimate_mfu(self, tokens_per_iter, dt, device):
        """Model FLOPs utilisation as a fraction of the device's bf16 peak; None if the peak is unknown."""
        peak = self.peak_flops(device)
        return None if peak is None else self.flops_per_token() * tokens_per_iter / dt / peak

    @torch.no_grad()
    def attention_stats(self, idx):
        """The paper's diagnostic of early training, per layer: the RMS of the attention branch's output
        (before its post-norm) and, for sigmoid, the largest row mass sum_j p_ij. Runs the PyTorch path."""
        was_training = self.training
        attns = [block.attn for block in self.transformer.h]
        for a in attns:
            a.stats = {}
        try:
            self.eval()
            self(idx)
            return [a.stats for a in attns]
        finally:
            for a in attns:
                a.stats = None
            self.train(was_training)

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, use_cache=True):
        """Sample max_new_tokens after idx (B, T). With use_cache the keys and values of past positions
        are kept, so up to block_size each new token costs one position's forward pass. The context is
        always the last block_size tokens; once it is full, the window moves and every layer's keys
        would change (deeper layers saw the token that left), so each token then re-reads the window,
        exactly as without the cache."""
        bs = self.config.block_size
        cache = None
        for step in range(max_new_tokens):
            if not use_cache:
                logits, _ = self(idx[:, -bs:])
            elif cache is None or cache.pos >= bs:
                # preallocated for the positions this cache will hold: the window, then one per
                # remaining token up to block_size
                n = min(idx.size(1), bs)
                cache = KVCache(self.config.n_layer, max_len=min(bs, n + max_new_tokens - 1 - step))
                logits, _ = self(idx[:, -bs:], cache=cache)
            else:
                logits, _ = self(idx[:, -1:], cache=cache)
            logits = logits[:, -1, :].float() / max(temperature, 1e-8)
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("inf")
            if top_p is not None and top_p < 1.0:
                srt, order = torch.sort(logits, descending=True)
                p = srt.softmax(-1)
                srt[p.cumsum(-1) - p > top_p] = -float("inf")  # keep the smallest set with mass >= top_p
                logits = torch.full_like(logits, -float("inf")).scatter(-1, order, srt)
            probs = F.softmax(logits, dim=-1)
            idx = torch.cat((idx, torch.multinomial(probs, num_samples=1)), dim=1)
        return idx


def config_from_dict(d):
    """GPTConfig from a dict that may hold other keys (train.py's globals, a checkpoint's config)."""
    names = {f.name for f in fields(GPTConfig)}
    return GPTConfig(**{k: v for k, v in d.items() if k in names})
