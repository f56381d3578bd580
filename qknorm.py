"""
QK-norm in one pass over memory: RMSNorm of every query and key head, read straight from the qkv
projection's output, written in the attention kernel's dtype (Triton, forward and backward).

    forward   r = rsqrt(mean_d x^2 + eps),  y = (x r) w        per row x: one head of one token
    backward  g = dy w,  dx = r (g - (x r) mean_d(g x r)),  dw = sum_rows dy (x r)

x is the (B, T, (nh + nkv) hs) slice of the projection that holds q and k; rows are (token, head)
pairs, the first nh heads of a token normalised with wq, the other nkv with wk. One program takes
BLOCK_R rows. The backward writes dx for q and k into one (B, T, (nh + nkv) hs) tensor, whose
concatenation with dv is the projection's gradient, and sums dw per program into an fp32 buffer that
sum_rows reduces over programs in a fixed order: deterministic, no atomics.

Why a kernel: with nn.RMSNorm per head, torch.compile's GPT-2 step spent about 2 ms (of 34.6) on
QK-norm: the backward, its weight-gradient reductions (one aten reduce per norm) and the cat into
the projection's gradient, each a pass over memory (BENCHMARKS.md, profile of 2026-12-02).
Like flashsigmoid.py, the host side is a pair of custom ops with fake implementations, so
torch.compile traces through without a graph break; on a CPU the kernels run under
TRITON_INTERPRET=1 (the tests), otherwise model.py uses nn.RMSNorm.

qk_norm_sigmoid_attention (at the bottom) fuses the two ops of QK-norm and FlashSigmoid's attention
into one pair, so that their backward writes the whole projection gradient (dq, dk, dv) in one
buffer, without the concatenation autograd would add after it; model.py takes it when both run.
Its forward writes p = [q, k normed; v] laid out as the projection and keeps only p and 1/rms for the
backward, which reads x r back as y / w from the normed rows (as Apex's memory-efficient norms do):
the raw projection is not kept beside the normed heads (at 124M, 16 x 1024: 0.56 GiB less).
Where FlashSigmoid's dQ kernel runs (on Hopper always; elsewhere T < 2048 or deterministic) and the
head dim is at most 64, that backward has no QK-norm pass at all: the attention's dK/dV and dQ kernels
end in it (flashsigmoid's QKNORM).

post_norm_bwd (at the very bottom) is the recipe's other norm kernel: the backward of hybrid-norm's
post-norm and residual add (model.ResidualRMSNorm) in one pass, the gain's gradient summed in it;
post_pre_norm_bwd, the same pass with the next pre-norm's backward (model.ResidualRMSNormPre).
"""

import os
from typing import Optional

import torch
import triton
import triton.language as tl

import flashsigmoid

_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
BLOCK_R = 32  # rows (token x head) per program


@triton.jit
def _rows(pid, X, Wq, Wk, n_rows, stride_xt, NH: tl.constexpr, NKV: tl.constexpr, HS: tl.constexpr,
          HS_PAD: tl.constexpr, BLOCK_R: tl.constexpr):
    # A program's BLOCK_R rows (token t, head h): x in fp32, each row's gain, and where its q or k
    # head sits in Q (B, T, NH, HS) or K (B, T, NKV, HS), both contiguous.
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, HS_PAD)
    t, h = rows // (NH + NKV), rows % (NH + NKV)
    is_q = h < NH
    mask = (rows < n_rows)[:, None] & (cols < HS)[None, :]
    x = tl.load(X + t[:, None].to(tl.int64) * stride_xt + h[:, None] * HS + cols[None, :], mask=mask,
                other=0.0).to(tl.float32)
    wq = tl.load(Wq + cols, mask=cols < HS, other=0.0).to(tl.float32)
    wk = tl.load(Wk + cols, mask=cols < HS, other=0.0).to(tl.float32)
    w = tl.where(is_q[:, None], wq[None, :], wk[None, :])
    q_at = (t.to(tl.int64) * (NH * HS) + h * HS)[:, None] + cols[None, :]
    k_at = (t.to(tl.int64) * (NKV * HS) + (h - NH) * HS)[:, None] + cols[None, :]
    return rows, cols, is_q, mask, x, w, q_at, k_at


@triton.jit
def _qknorm_fwd_kernel(X, Wq, Wk, Q, K, R, eps, n_rows, stride_xt,
                       NH: tl.constexpr, NKV: tl.constexpr, HS: tl.constexpr, HS_PAD: tl.constexpr,
                       BLOCK_R: tl.constexpr):
    rows, cols, is_q, mask, x, w, q_at, k_at = _rows(tl.program_id(0), X, Wq, Wk, n_rows, stride_xt,
                                                     NH, NKV, HS, HS_PAD, BLOCK_R)
    r = 1.0 / tl.sqrt(tl.sum(x * x, axis=1) / HS + eps)  # (BLOCK_R,)
    y = x * r[:, None] * w
    tl.store(Q + q_at, y.to(Q.dtype.element_ty), mask=mask & is_q[:, None])
    tl.store(K + k_at, y.to(K.dtype.element_ty), mask=mask & ~is_q[:, None])
    tl.store(R + rows, r, mask=rows < n_rows)  # saved for the backward: no second reduction there


@triton.jit
def _qknorm_pack_kernel(X, Wq, Wk, P, R, eps, n_rows, stride_xt, stride_pt, NH: tl.constexpr, NKV: tl.constexpr,
                        HS: tl.constexpr, HS_PAD: tl.constexpr, BLOCK_R: tl.constexpr):
    # The fused op's forward: P = [q and k normed, v copied], laid out as the projection X, whose rows are now all
    # NH + 2 NKV heads of a token; R as _qknorm_fwd_kernel's (q and k rows only)
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, HS_PAD)
    t, h = rows // (NH + 2 * NKV), rows % (NH + 2 * NKV)
    mask = (rows < n_rows)[:, None] & (cols < HS)[None, :]
    at = h[:, None] * HS + cols[None, :]
    x = tl.load(X + t[:, None].to(tl.int64) * stride_xt + at, mask=mask, other=0.0).to(tl.float32)
    wq = tl.load(Wq + cols, mask=cols < HS, other=0.0).to(tl.float32)
    wk = tl.load(Wk + cols, mask=cols < HS, other=0.0).to(tl.float32)
    is_v = h >= NH + NKV
    w = tl.where((h < NH)[:, None], wq[None, :], wk[None, :])
    r = 1.0 / tl.sqrt(tl.sum(x * x, axis=1) / HS + eps)
    y = tl.where(is_v[:, None], x, x * r[:, None] * w)
    tl.store(P + t[:, None].to(tl.int64) * stride_pt + at, y.to(P.dtype.element_ty), mask=mask)
    tl.store(R + t.to(tl.int64) * (NH + NKV) + h, r, mask=(rows < n_rows) & ~is_v)


@triton.jit
def _qknorm_bwd_kernel(X, Wq, Wk, R, DQ, DK, DX, DW, n_rows, stride_xt, stride_dxt,
                       NH: tl.constexpr, NKV: tl.constexpr, HS: tl.constexpr, HS_PAD: tl.constexpr,
                       BLOCK_R: tl.constexpr, FROM_Y: tl.constexpr):
    # FROM_Y: X holds the normed rows y = x r w (the fused op keeps those, not x), so x r = y / w
    pid = tl.program_id(0)
    rows, cols, is_q, mask, x, w, q_at, k_at = _rows(pid, X, Wq, Wk, n_rows, stride_xt,
                                                     NH, NKV, HS, HS_PAD, BLOCK_R)
    r = tl.load(R + rows, mask=rows < n_rows, other=0.0)
    dq = tl.load(DQ + q_at, mask=mask & is_q[:, None], other=0.0)
    dk = tl.load(DK + k_at, mask=mask & ~is_q[:, None], other=0.0)
    dy = dq.to(tl.float32) + dk.to(tl.float32)  # each row is either a q or a k head
    xr = x / tl.where((cols < HS)[None, :], w, 1.0) if FROM_Y else x * r[:, None]
    g = dy * w
    dx = r[:, None] * (g - xr * (tl.sum(g * xr, axis=1) / HS)[:, None])
    # dX: token t's q and k heads at t * stride_dxt (the q, k part of a projection-shaped gradient)
    t = rows // (NH + NKV)
    h = rows % (NH + NKV)
    dx_at = (t.to(tl.int64) * stride_dxt + h * HS)[:, None] + cols[None, :]
    tl.store(DX + dx_at, dx.to(DX.dtype.element_ty), mask=mask)
    dw = dy * xr
    tl.store(DW + pid * HS_PAD + cols, tl.sum(tl.where(is_q[:, None], dw, 0.0), axis=0))  # (2, programs, HS_PAD)
    tl.store(DW + (tl.num_programs(0) + pid) * HS_PAD + cols, tl.sum(tl.where(is_q[:, None], 0.0, dw), axis=0))


@triton.jit
def _sum_rows_kernel(X, Y, n_rows, stride_xg, stride_xr, stride_yg, N, CHUNK: tl.constexpr, BLOCK_R: tl.constexpr,
                     BLOCK_N: tl.constexpr):
    # Y[g, c, cols] = sum of X[g, rows, cols] over chunk c's CHUNK rows, in a fixed order (deterministic)
    c, j, grp = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    cols = j * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_R, BLOCK_N), dtype=tl.float32)
    for r0 in tl.static_range(0, CHUNK, BLOCK_R):
        rows = c * CHUNK + r0 + tl.arange(0, BLOCK_R)
        m = (rows < n_rows)[:, None] & (cols < N)[None, :]
        acc += tl.load(X + grp * stride_xg + rows[:, None] * stride_xr + cols[None, :], mask=m, other=0.0)
    tl.store(Y + grp * stride_yg + c * N + cols, tl.sum(acc, axis=0), mask=cols < N)


def sum_rows(x, n):
    """Partial sums x (G, R, >= n) fp32, last dim contiguous -> their sums over R of the first n columns, (G, n)
    fp32: chunks of 128 rows in parallel, then the chunks' sums (aten's sum over such a tall, narrow
    buffer is a slow reduction: ~10-30 us each, 36 per 124M step, BENCHMARKS run 77)."""
    G, R, _ = x.shape
    bn = min(64, triton.next_power_of_2(n))
    while True:
        ch = 128 if R > 128 else max(16, triton.next_power_of_2(R))
        chunks = triton.cdiv(R, ch)
        y = torch.empty(G, chunks, n, device=x.device, dtype=torch.float32)
        _sum_rows_kernel[(chunks, triton.cdiv(n, bn), G)](x, y, R, x.stride(0), x.stride(1), y.stride(0), n, CHUNK=ch,
                                                        BLOCK_R=min(ch, 64), BLOCK_N=bn)
        if chunks == 1:
            return y.view(G, n)
        x, R = y, chunks


def _shape(x, nh, nkv):
    B, T, C = x.shape
    return B, T, C // (nh + nkv), B * T * (nh + nkv)


@torch.library.custom_op("qknorm::fwd", mutates_args=())
def _fwd(x: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor, nh: int, nkv: int, eps: float,
         dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    B, T, hs, n = _shape(x, nh, nkv)
    q, k = x.new_empty(B, T, nh, hs, dtype=dtype), x.new_empty(B, T, nkv, hs, dtype=dtype)
    r = x.new_empty(n, dtype=torch.float32)
    _qknorm_fwd_kernel[(triton.cdiv(n, BLOCK_R),)](x, wq, wk, q, k, r, eps, n, x.stride(1), NH=nh, NKV=nkv, HS=hs,
                                            HS_PAD=triton.next_power_of_2(hs), BLOCK_R=BLOCK_R)
    return q, k, r


@_fwd.register_fake
def _(x, wq, wk, nh, nkv, eps, dtype):
    B, T, hs, n = _shape(x, nh, nkv)
    return (x.new_empty(B, T, nh, hs, dtype=dtype), x.new_empty(B, T, nkv, hs, dtype=dtype),
            x.new_empty(n, dtype=torch.float32))


@torch.library.custom_op("qknorm::bwd", mutates_args=())
def _bwd(dq: torch.Tensor, dk: torch.Tensor, x: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor,
         r: torch.Tensor, nh: int, nkv: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    B, T, hs, n = _shape(x, nh, nkv)
    dq, dk = dq.contiguous(), dk.contiguous()  # (B, T, H, hs) memory; a no-op for flashsigmoid's grads
    dx = torch.empty(B, T, (nh + nkv) * hs, device=x.device, dtype=x.dtype)
    dw = _bwd_into(dq, dk, x, wq, wk, r, nh, nkv, dx)
    return dx, dw[0].to(wq.dtype, copy=True), dw[1].to(wk.dtype, copy=True)  # (outputs may not alias)


def _bwd_into(dq, dk, x, wq, wk, r, nh, nkv, dx, from_y=False):
    """The backward kernel, writing dx's q and k heads (dx: (B, T, >= (nh + nkv) hs), last dim
    contiguous); returns the gains' gradients, (2, hs) fp32. from_y: x holds the normed rows y = x r w instead."""
    B, T, hs, n = _shape(x, nh, nkv)
    grid = triton.cdiv(n, BLOCK_R)
    hp = triton.next_power_of_2(hs)
    dw = torch.empty(2, grid, hp, device=x.device, dtype=torch.float32)
    _qknorm_bwd_kernel[(grid,)](x, wq, wk, r, dq, dk, dx, dw, n, x.stride(1), dx.stride(1), NH=nh, NKV=nkv, HS=hs,
                                HS_PAD=hp, BLOCK_R=BLOCK_R, FROM_Y=from_y)
    return sum_rows(dw, hs)


@_bwd.register_fake
def _(dq, dk, x, wq, wk, r, nh, nkv):
    B, T, hs, n = _shape(x, nh, nkv)
    return x.new_empty(B, T, (nh + nkv) * hs), wq.new_empty(hs), wk.new_empty(hs)


def _setup_context(ctx, inputs, output):
    x, wq, wk, nh, nkv, eps, dtype = inputs
    ctx.mark_non_differentiable(output[2])
    ctx.save_for_backward(x, wq, wk, output[2])
    ctx.nh, ctx.nkv = nh, nkv


def _backward(ctx, dq, dk, dr):
    x, wq, wk, r = ctx.saved_tensors
    dx, dwq, dwk = _bwd(dq, dk, x, wq, wk, r, ctx.nh, ctx.nkv)
    return dx, dwq, dwk, None, None, None, None


_fwd.register_autograd(_backward, setup_context=_setup_context)


def _check_gains(wq, wk, hs):
    if wq.shape != (hs,) or wk.shape != (hs,):
        raise ValueError(f"wq and wk must have shape ({hs},); got {tuple(wq.shape)} and {tuple(wk.shape)}")


def qk_rmsnorm(x, wq, wk, nh, nkv, eps=1e-5, dtype=None):
    """RMSNorm of each head of q and of k. x: (B, T, (nh + nkv) * hs), the q and k part of a qkv
    projection (a slice of it is fine: its last dim must be contiguous); wq, wk: (hs,) gains.
    Returns q (B, T, nh, hs), k (B, T, nkv, hs) in `dtype` (default x.dtype), as nn.RMSNorm(hs, eps)
    with weights wq and wk would, computed in fp32."""
    if x.dim() != 3 or x.shape[-1] % (nh + nkv):
        raise ValueError(f"x must be (B, T, (nh + nkv) * hs) with nh={nh}, nkv={nkv}; got {tuple(x.shape)}")
    hs = x.shape[-1] // (nh + nkv)
    _check_gains(wq, wk, hs)
    if x.stride(-1) != 1 or x.stride(0) != x.shape[1] * x.stride(1):  # rows are addressed as token * stride
        x = x.contiguous()
    q, k, _ = _fwd(x, wq, wk, nh, nkv, float(eps), x.dtype if dtype is None else dtype)
    return q, k


# ----------------------------------------------------------------------------------------------
# QK-norm and FlashSigmoid attention from the packed projection, one op each way. Apart, the
# backward hands autograd the q, k gradient (from the QK-norm kernel) and v's (from the attention),
# which it concatenates into the projection's gradient: a copy of all three. Together, the op
# allocates that gradient once and the two kernels write their parts of it in place.
# ----------------------------------------------------------------------------------------------

def _parts(qkv, nh, nkv):
    """hs, the width of the q and k part, and v as (B, nkv, T, hs) view of qkv (B, T, (nh + 2 nkv) hs)."""
    B, T, C = qkv.shape
    hs = C // (nh + 2 * nkv)
    c = (nh + nkv) * hs
    return hs, c, qkv[..., c:].view(B, T, nkv, hs).transpose(1, 2)


# QK-norm's backward in the epilogues of the attention's backward kernels (flashsigmoid's QKNORM) where
# the dQ kernel runs (not with the atomic dQ: its dQ is complete only after the last program) and the
# head dim is at most 64 (above, those kernels sit at the register cap and the epilogue would spill).
EPILOGUE = True
EPILOGUE_MAX_HEAD_DIM = 64


def _heads(x, nh, nkv):
    """The q (B, nh, T, hs) and k (B, nkv, T, hs) heads of a projection-shaped x (B, T, >= (nh + nkv) hs)."""
    B, T, C = x.shape
    hs = C // (nh + 2 * nkv)
    return (x[..., :nh * hs].view(B, T, nh, hs).transpose(1, 2),
            x[..., nh * hs:(nh + nkv) * hs].view(B, T, nkv, hs).transpose(1, 2))


@torch.library.custom_op("qknorm::attn_fwd", mutates_args=())
def _attn_fwd(qkv: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor, nh: int, nkv: int, eps: float,
              alibi: Optional[torch.Tensor], bias: float, scale: float, exact: bool, deterministic: bool,
              dropout_p: float, seed: Optional[torch.Tensor], wl: int, wr: int
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # p = [q, k normed; v] laid out as qkv: the backward keeps p and r only (qkv itself is freed), and reads
    # x r = y / w back from p's normed rows
    B, T, _ = qkv.shape
    hs = _parts(qkv, nh, nkv)[0]
    p, r = torch.empty_like(qkv), qkv.new_empty(B * T * (nh + nkv), dtype=torch.float32)
    n = B * T * (nh + 2 * nkv)
    _qknorm_pack_kernel[(triton.cdiv(n, BLOCK_R),)](qkv, wq, wk, p, r, eps, n, qkv.stride(1), p.stride(1), NH=nh,
                                                   NKV=nkv, HS=hs, HS_PAD=triton.next_power_of_2(hs), BLOCK_R=BLOCK_R)
    o = flashsigmoid._fwd_impl(*_heads(p, nh, nkv), _parts(p, nh, nkv)[2], alibi, True, bias, scale, exact, dropout_p,
                               seed, wl, wr)
    return o, p, r


@_attn_fwd.register_fake
def _(qkv, wq, wk, nh, nkv, eps, alibi, bias, scale, exact, deterministic, dropout_p, seed, wl, wr):
    B, T, _ = qkv.shape
    hs, c, _ = _parts(qkv, nh, nkv)
    return (qkv.new_empty(B, T, nh, hs).transpose(1, 2), torch.empty_like(qkv),
            qkv.new_empty(B * T * (nh + nkv), dtype=torch.float32))


@torch.library.custom_op("qknorm::attn_bwd", mutates_args=())
def _attn_bwd(do: torch.Tensor, p: torch.Tensor, r: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor, nh: int,
              nkv: int, alibi: Optional[torch.Tensor], bias: float, scale: float, exact: bool, deterministic: bool,
              dropout_p: float, seed: Optional[torch.Tensor], wl: int, wr: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    hs, c, v = _parts(p, nh, nkv)
    q, k = _heads(p, nh, nkv)  # (B, nh|nkv, T, hs), normed
    dqkv = torch.empty(p.shape, device=p.device, dtype=p.dtype)
    dv = _parts(dqkv, nh, nkv)[2]
    tma = flashsigmoid._tma_ok(do, q, k, v)
    if EPILOGUE and not flashsigmoid._atomic_dq(deterministic, q.shape[2], tma) and hs <= EPILOGUE_MAX_HEAD_DIM:
        # QK-norm's backward at the end of the attention's backward kernels: they write the raw heads'
        # gradients into dqkv and the gains' partial sums, and no normed-q/k gradient exists
        dw = flashsigmoid._bwd_into(do, q, k, v, alibi, True, bias, scale, exact, True, dropout_p, seed, wl, wr,
                                    *_heads(dqkv, nh, nkv), dv, qkn=(r, wq, wk, nh, nkv))
        return dqkv, sum_rows(dw, hs)  # (the gains' gradients in one (2, hs) fp32 tensor: outputs may not alias)
    dq, dk = (flashsigmoid._empty_like(t) for t in (q, k))  # the attention's gradients of the normed q, k
    flashsigmoid._bwd_into(do, q, k, v, alibi, True, bias, scale, exact, deterministic, dropout_p, seed, wl, wr,
                           dq, dk, dv)  # dv: straight into its part of dqkv
    dw = _bwd_into(dq.transpose(1, 2), dk.transpose(1, 2), p[..., :c], wq, wk, r, nh, nkv, dqkv,
                   from_y=True)  # dq, dk: into theirs
    return dqkv, dw


@_attn_bwd.register_fake
def _(do, p, r, wq, wk, nh, nkv, alibi, bias, scale, exact, deterministic, dropout_p, seed, wl, wr):
    return p.new_empty(p.shape), wq.new_empty((2, wq.shape[0]), dtype=torch.float32)


def _attn_setup_context(ctx, inputs, output):
    qkv, wq, wk, nh, nkv, eps, alibi, bias, scale, exact, deterministic, dropout_p, seed, wl, wr = inputs
    _, p, r = output
    ctx.mark_non_differentiable(p, r)
    ctx.set_materialize_grads(False)  # (else eager autograd zero-fills a p-sized gradient for p: 75 MB at 124M)
    ctx.save_for_backward(p, r, wq, wk, alibi, seed)
    ctx.args = (nh, nkv, bias, scale, exact, deterministic, dropout_p, wl, wr)


def _attn_backward(ctx, do, dp, dr):
    if do is None:  # the output took no part in what is differentiated
        return (None,) * 15
    p, r, wq, wk, alibi, seed = ctx.saved_tensors
    nh, nkv, bias, scale, exact, deterministic, dropout_p, wl, wr = ctx.args
    dqkv, dw = _attn_bwd(do, p, r, wq, wk, nh, nkv, alibi, bias, scale, exact, deterministic, dropout_p, seed, wl, wr)
    return dqkv, dw[0].to(wq.dtype), dw[1].to(wk.dtype), *[None] * 12


_attn_fwd.register_autograd(_attn_backward, setup_context=_attn_setup_context)


def qk_norm_sigmoid_attention(qkv, wq, wk, nh, nkv, eps=1e-5, *, bias=None, scale=None, alibi_slopes=None,
                              dropout_p=0.0, seed=None, window=None, exact=None, deterministic=None):
    """Causal sigmoid attention of QK-normed heads, from the packed projection qkv (B, T, (nh + 2 nkv) hs):
    flashsigmoid.sigmoid_attention(q, k, v, ...) with q, k = qk_rmsnorm(qkv's q and k part, wq, wk, ...)
    in qkv's dtype; the keyword arguments are sigmoid_attention's. Returns (B, nh, T, hs), laid out as
    (B, T, nh, hs). Its backward writes qkv's gradient in one buffer (see above)."""
    if qkv.dim() != 3 or qkv.shape[-1] % (nh + 2 * nkv):
        raise ValueError(f"qkv must be (B, T, (nh + 2 * nkv) * hs) with nh={nh}, nkv={nkv}; got {tuple(qkv.shape)}")
    qkv = qkv.contiguous()
    hs, _, v = _parts(qkv, nh, nkv)
    _check_gains(wq, wk, hs)
    alibi, _, *rest = flashsigmoid._op_args(*_heads(qkv, nh, nkv), v, True, bias, scale, alibi_slopes, exact,
                                            deterministic, dropout_p, seed, window)
    return _attn_fwd(qkv, wq, wk, nh, nkv, float(eps), alibi, *rest)[0]


# ----------------------------------------------------------------------------------------------
# Hybrid-norm's post-norm backward (model.ResidualRMSNorm: out = x + RMSNorm(a) w, a's normed rows
# recovered as (out - x) / w), one pass:   g' = g w,  da = r (g' - ah mean_d(g' ah)),  dw = sum_rows g ah.
# Under torch.compile, inductor folds each softmax pre-norm's gain sum into its norm's row kernel, but
# groups the recipe's gain sums of several layers into separate kernels that read every activation
# they need a second time (about 1 ms of a 124M step at 16 x 1024, BENCHMARKS run 71). Here a
# persistent grid sums each program's rows' gain gradient in registers, then one tiny sum over programs.
# ----------------------------------------------------------------------------------------------
# (rows per program and loop step, warps, programs per SM, the row loop's pipeline stages) of the post-norm pass alone
# and fused with the next pre-norm (PRE): run 88's fastest (H100, 16384 rows of 768: 92 us fused, a copy of its
# bytes 85; Triton's pipelining and one warp per row were slower; the pass alone is level across configs)
POST_CONFIG, POST_PRE_CONFIG = (1, 8, 4, 1), (1, 8, 4, 1)


@triton.jit
def _post_norm_bwd_kernel(G, X, OUT, W, R, DA, DW, GH, V, S, DG, n_rows, C: tl.constexpr, C_PAD: tl.constexpr,
                          BLOCK_R: tl.constexpr, PRE: tl.constexpr, STAGES: tl.constexpr):
    # PRE: out also feeds the next pre-norm, h = RMSNorm(out) v (1/rms s), whose gradient GH comes back; the
    # residual gradient is then G + that norm's backward, written to DG and used at once (not read back).
    # Every load of a row block is issued before its first row sum, which waits on them all: with x loaded after
    # the first sum (two trips to memory per row) the pass took 109 against 92 us (run 88, H100; a copy 85)
    pid = tl.program_id(0)
    cols = tl.arange(0, C_PAD)
    cm = cols < C
    w = tl.load(W + cols, mask=cm, other=1.0).to(tl.float32)
    dw = tl.zeros((C_PAD,), dtype=tl.float32)
    if PRE:
        v = tl.load(V + cols, mask=cm, other=0.0).to(tl.float32)
        dv = tl.zeros((C_PAD,), dtype=tl.float32)
    for start in tl.range(pid * BLOCK_R, n_rows, tl.num_programs(0) * BLOCK_R, num_stages=STAGES):
        rows = start + tl.arange(0, BLOCK_R)  # rows pid, pid + P, ... (by blocks)
        rm = rows < n_rows
        m = rm[:, None] & cm[None, :]
        at = rows[:, None].to(tl.int64) * C + cols[None, :]
        g = tl.load(G + at, mask=m, other=0.0).to(tl.float32)
        out = tl.load(OUT + at, mask=m, other=0.0).to(tl.float32)
        x = tl.load(X + at, mask=m, other=0.0).to(tl.float32)
        r = tl.load(R + rows, mask=rm, other=0.0)
        if PRE:
            gh = tl.load(GH + at, mask=m, other=0.0).to(tl.float32)
            s = tl.load(S + rows, mask=rm, other=0.0)
            oh = out * s[:, None]
            gv = gh * v
            g += s[:, None] * (gv - oh * (tl.sum(gv * oh, axis=1) / C)[:, None])
            tl.store(DG + at, g.to(DG.dtype.element_ty), mask=m)
            dv += tl.sum(gh * oh, axis=0)
        ah = (out - x) / w
        gw = g * w
        da = r[:, None] * (gw - ah * (tl.sum(gw * ah, axis=1) / C)[:, None])
        tl.store(DA + at, da.to(DA.dtype.element_ty), mask=m)
        dw += tl.sum(g * ah, axis=0)
    tl.store(DW + pid * C_PAD + cols, dw)
    if PRE:
        tl.store(DW + (tl.num_programs(0) + pid) * C_PAD + cols, dv)


def _programs(device, per_sm):
    if device.type != "cuda":
        return 4  # the interpreter: a few programs, so that each loops over several row blocks
    return per_sm * torch.cuda.get_device_properties(device).multi_processor_count


def _post_norm_launch(g, x, out, w, r, a_dtype, pre=None):
    C = g.shape[-1]
    n = g.numel() // C
    g, x, out, r = (t.contiguous() for t in (g, x, out, r))
    da = torch.empty(g.shape, device=g.device, dtype=a_dtype)
    block_r, warps, per_sm, stages = POST_CONFIG if pre is None else POST_PRE_CONFIG
    grid = max(1, min(triton.cdiv(n, block_r), _programs(g.device, per_sm)))
    cp = triton.next_power_of_2(C)
    dw = torch.empty(1 if pre is None else 2, grid, cp, device=g.device, dtype=torch.float32)
    gh, v, s = (g, w, r) if pre is None else (pre[0].contiguous(), pre[1], pre[2].contiguous())  # (unread without PRE)
    dg = g if pre is None else torch.empty_like(g)
    _post_norm_bwd_kernel[(grid,)](g, x, out, w, r, da, dw, gh, v, s, dg, n, C=C, C_PAD=cp, BLOCK_R=block_r,
                                   PRE=pre is not None, STAGES=stages, num_warps=warps)
    return dg, da, sum_rows(dw, C)


@torch.library.custom_op("qknorm::post_norm_bwd", mutates_args=())
def _post_norm_bwd(g: torch.Tensor, x: torch.Tensor, out: torch.Tensor, w: torch.Tensor, r: torch.Tensor,
                   a_dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    _, da, dw = _post_norm_launch(g, x, out, w, r, a_dtype)
    return da, dw[0].to(w.dtype)


@_post_norm_bwd.register_fake
def _(g, x, out, w, r, a_dtype):
    return g.new_empty(g.shape, dtype=a_dtype), w.new_empty(w.shape)


def _check_post(g, x, out, w, r):
    if not (g.shape == x.shape == out.shape and w.shape == g.shape[-1:] and r.numel() * g.shape[-1] == g.numel()):
        raise ValueError(f"post_norm_bwd: shapes g {tuple(g.shape)}, x {tuple(x.shape)}, out {tuple(out.shape)}, "
                         f"w {tuple(w.shape)}, r {tuple(r.shape)} do not match")


def post_norm_bwd(g, x, out, w, r, a_dtype):
    """The backward of out = x + RMSNorm(a) w (gain w, saved 1/rms r, one per row) from out and x, a's
    normed rows being (out - x) / w: returns (da in a_dtype, dw). g, x, out: (..., C) fp32; w: (C,)."""
    _check_post(g, x, out, w, r)
    return _post_norm_bwd(g, x, out, w, r, a_dtype)


@torch.library.custom_op("qknorm::post_pre_norm_bwd", mutates_args=())
def _post_pre_norm_bwd(g: torch.Tensor, gh: torch.Tensor, x: torch.Tensor, out: torch.Tensor, w: torch.Tensor,
                       r: torch.Tensor, v: torch.Tensor, s: torch.Tensor, a_dtype: torch.dtype
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _post_norm_launch(g, x, out, w, r, a_dtype, pre=(gh, v, s))


@_post_pre_norm_bwd.register_fake
def _(g, gh, x, out, w, r, v, s, a_dtype):
    return g.new_empty(g.shape), g.new_empty(g.shape, dtype=a_dtype), w.new_empty((2, w.shape[0]), dtype=torch.float32)


def post_pre_norm_bwd(g, gh, x, out, w, r, v, s, a_dtype):
    """The backward of out = x + RMSNorm(a) w and h = RMSNorm(out) v (the next pre-norm, gain v, saved 1/rms s)
    in one pass, given the gradients g of out (the residual path) and gh of h: returns (the whole gradient of
    out, fp32; da in a_dtype; (2, C) fp32: dw, dv)."""
    _check_post(g, x, out, w, r)
    if gh.shape != g.shape or v.shape != w.shape or s.numel() != r.numel():
        raise ValueError(f"post_pre_norm_bwd: shapes gh {tuple(gh.shape)}, v {tuple(v.shape)}, s {tuple(s.shape)} "
                         f"do not match g {tuple(g.shape)}")
    return _post_pre_norm_bwd(g, gh, x, out, w, r, v, s, a_dtype)
