"""
FlashSigmoid: fused sigmoid attention in Triton (forward and backward).

    O = sigmoid(S) V,   S = scale * Q K^T + b + A,   no row normalisation
    b: one float, or one per head (bias=(H,) tensor; it rides as a second row of the slopes)
    A[h, i, j] = -slope_h * (i - j)       causal ALiBi (true distance: sigmoid is not shift invariant)
    A[h, i, j] = -slope_h * |i - j|       non-causal ALiBi (symmetric)
    masked entries (causal j > i, padded keys j >= Tk, keys outside the window) have S = -inf, so
    weight exactly 0.
    window = (left, right), FlashAttention's window_size: row i sees keys i - left <= j <= i + right
    only (-1 = no limit on that side; causal makes right 0). None = (-1, -1).
    Packed sequences (sigmoid_attention_varlen, as flash_attn_varlen_func): q (total_q, H, D) and k, v
    (total_k, Hkv, D) hold sequences s in rows cu_seqlens[s]:cu_seqlens[s+1]; each is its own problem
    (keys of other sequences masked), with its own positions: all of the above per sequence.

Positions: with Tq != Tk, query row i sits at absolute position i + (Tk - Tq) (bottom-right
alignment, as in FlashAttention; what KV-cache decoding and chunked prefill need). The causal mask,
the window and the ALiBi distance all use these absolute positions, causal or not.

Backward (P = sigmoid(S) recomputed from q, k and b; nothing T x T is stored):
    dV = P^T dO;   dP = dO V^T;   dS = P * (1 - P) * dP
    dQ = scale * dS K;   dK = scale * dS^T Q
There is no D = rowsum(dO * O) preprocessing and O is not read: sigmoid has no normaliser.
With a = tanh(S/2) (the fast sigmoid below), P = (1 + a) / 2 and P (1 - P) = (1 - a^2) / 4: the loops
carry 4 dS = (1 - a^2) dP, one FMA and a multiply per element, and the 1/4 rides in the final scale.
With QK-norm (q = xq r g, r = 1/rms(xq) per row; qknorm.py's fused op, QKNORM) the dK/dV and dQ
kernels end in its backward, so they write the gradients of the raw heads x; they read x r back from
the normed rows they attend with, x r = q / g, so that nothing but q, k, v and r is kept:
    dx = r (dq g - (x r) mean_d(dq g x r)),   dg = sum over rows of dq (x r)     (likewise for k)
b and the slopes get no gradient. For GQA/MQA, dK and dV of a kv head sum over its query heads.

Attention dropout (dropout_p = p > 0), inverted so that E[O] is the O without dropout:
    M[b, h, i, j] = uniform(Philox(seed; j, i, h, b)) >= p            the keep mask, P(keep) = 1 - p
    O = P_drop V,   P_drop = M * P / (1 - p)
    dV = P_drop^T dO;   dS = P * (1 - P) * M * dP / (1 - p),  dP = dO V^T;   dQ, dK from dS as above
M is never stored: each kernel regenerates it from the seed with the same _dropout_keep, whose
Philox-4x32 counter is the element's own (j, i, h, b) (the seed is the key), so it is independent of
the tiling and of which kernel asks, and no index product can overflow. The 1/(1 - p) is applied once
to O, dV, and (inside `scale`) dQ and dK, not per element. With p = 0 (HAS_DROPOUT=False) none of it
is compiled in.

Algorithm (FlashAttention-2 tiling without the softmax bookkeeping):
  forward, one program per (query block, head, batch): loop over key blocks up to the diagonal
    only, first the blocks that are fully visible (no mask at all), then the diagonal/tail blocks
    (causal and key-padding mask); p = sigmoid(s) in fp32, acc += p.to(v.dtype) @ v, store O.
    No running max, no running sum, no rescaling: key blocks simply add up.
  Hopper (USE_TMA): the tiles a loop streams (the forward's and dQ's k, v; dK/dV's q, dO) and the
    forward's q and O move by tensor descriptors, the copy engine; rows past T arrive as zeros (as
    the masked loads give: v = 0 there, so no key mask is needed for them) and are clipped on stores.
    Elsewhere, pointer loads.
  Hopper at head dims 64 and 128 (GLUON_FWD): the forward is a Gluon kernel with asynchronous wgmma, so the
    tensor cores work on the next S and on P V while the sigmoid runs (section Hopper forward in Gluon);
    at head dims 64 and 128 (GLUON_DKDV; at 128 without grouped heads) the dK/dV kernel likewise (the
    same section, its end). At head dim 128 the forward and the dQ kernel are warp-specialised as
    FlashAttention-3's (GLUON_FWD_WS, GLUON_DQ_WS): a producer warp loads, two consumer warpgroups compute,
    and one persistent program per SM takes the tiles from a counter (dQ's in dK's buffer before dK is written:
    the dQ kernel runs first, so the backward needs no memory beyond its outputs).
  dK/dV, one program per (key block, kv head, batch): loop over the query heads of the group and,
    for each, over the query blocks that see the key block (diagonal blocks masked first, then
    unmasked full blocks, then a masked tail): dV += p^T dO, dK += dS^T Q. Summing the group inside
    the program keeps GQA deterministic without atomics or an H-sized buffer.
  dQ, one program per (query block, head, batch): the forward's loop, accumulating dS K.
    That makes 7 matrix products and a bitwise reproducible backward. With pointer loads, from
    ATOMIC_DQ_MIN_LEN keys on (where it measured faster), unless deterministic, the dK/dV programs
    instead add each step's scale * dS K into an fp32 dQ buffer with atomic adds (5 products, no dQ
    kernel), as FlashAttention does; the order of the adds, so the last bits of dQ, then vary from run
    to run. With Hopper's descriptors the 7-product backward measured faster from 2048 keys on and
    level below, so there it is the default at every length (ATOMIC_DQ_MIN_LEN_TMA).
  Launch order (_tile): programs start in grid order, and a causal query block's work grows with its
    index, so each head's longest blocks go first. From LPT_MIN_LEN (8192) on, the grid is ordered as
    FlashAttention-3's LPT scheduler orders it: sections of (batch, head) pairs whose streamed tiles fit
    in L2, within each every pair's longest block first (measured 4% faster fwd+bwd at T = 8192: run 64);
    shorter ones on a (blocks, heads, batch) grid, one pair after another.
  With a window (the HAS_WINDOW variant; bounds WL, WR are run-time ints, one compile for all) the
    key loop of a query block runs over [lo, hi), the union of its rows' windows: masked blocks at
    the left edge, unmasked blocks that every row sees whole, masked blocks at the right edge or
    diagonal; the dK/dV programs likewise step over the query rows that see their key block only.
    Blocks outside are never read, so the cost grows with the window, not with T. Without a window
    (or packed sequences) the kernels compile to what they were before these existed. The decode
    kernel has no window: windowed decoding takes the prefill kernel, which reads the window only.
  Packed sequences (the VARLEN variant) reuse these loops: the programs tile the packed rows as one
    long sequence (the dense grid, whatever the number of sequences, so cu_seqlens padded with empty
    sequences cost nothing); each row finds its sequence by a binary search of cu_seqlens, which
    bounds its keys to that sequence's, and a block spanning two sequences is masked per row.

Fast sigmoid: sigmoid(x) = 0.5 + 0.5 * tanh(x / 2) with the hardware `tanh.approx.f32` (one MUFU
op against exp + reciprocal). The 1/2 is folded into scale, bias and slope. Its error (~5e-4
relative) is below the bf16 rounding of p that the P@V product does anyway. The exact path
(tl.sigmoid) is used under the Triton interpreter (inline asm cannot run there), for fp32 inputs
(whose callers want fp32 accuracy), on AMD GPUs (the fast one is PTX), when `flashsigmoid.EXACT_SIGMOID = True`,
or per call with `sigmoid_attention(..., exact=True)`.

Decoding (Tq <= DECODE_MAX_TQ: a KV cache's one-token steps) takes a split-K forward kernel instead,
FlashDecoding without its rescaling: the keys split over programs that fill the GPU, the query rows
of a GQA group share each K/V tile, and the splits' partial outputs simply add up (section Decoding).

Host side, as in Triton's fused-attention tutorial but as custom ops: `sigmoid_attention` validates
and calls `flashsigmoid::fwd`, whose autograd calls `flashsigmoid::bwd` (`sigmoid_attention_varlen`:
`fwd_varlen`, `bwd_varlen`); each computes a grid and
launches `kernel[grid](...)`. The ops carry fake implementations, so torch.compile traces through
them without a graph break. O, dQ, dK and dV come back in the memory order of q, k and v: for a
(B, H, T, D) view of (B, T, H, D) memory, as a model's heads are, that spares a transpose copy.

Block sizes are autotuned per (head dim, causal, ALiBi, GQA group, dtype, length bucket) unless
FLASHSIGMOID_AUTOTUNE=0 or `flashsigmoid.AUTOTUNE = False` (then entry _DEFAULT of each table, or where the
GPU has too little shared memory for it, the first smaller tile that fits); autotuning cannot run inside CUDA
graph capture, so call the kernel once before capturing. The tables were tuned on an H200; each also has a tile
that fits the 99 KB of shared memory per block of consumer GPUs (compiled for sm_89 in the tests, not run on one).
"""

import functools
import math
import os
import warnings
from typing import Optional

import torch
import triton
import triton.language as tl
from triton.compiler.errors import CompilationError
from triton.runtime.errors import OutOfResources

try:
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # a Triton without host-side tensor descriptors: the kernels use pointer loads
    TensorDescriptor = None
try:  # Gluon (Triton's lower-level language, 3.6 on): the Hopper forward with asynchronous wgmma
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import (fence_async_shared, mbarrier, tma, warpgroup_mma,
                                                                  warpgroup_mma_wait)
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor as GluonDescriptor
    # TMA copies: async_load / async_store from Triton 3.8 on (3.9 removed the older names that 3.6 has)
    _tma_load = getattr(tma, "async_load", None) or tma.async_copy_global_to_shared
    _tma_store = getattr(tma, "async_store", None) or tma.async_copy_shared_to_global
except ImportError:  # without it that path is off (_gluon_ok) and its kernel is never built
    import types
    gluon = types.SimpleNamespace(jit=lambda fn: None)
    gl = types.SimpleNamespace(constexpr=None)
    GluonDescriptor = None

_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
if _INTERPRET:
    # Triton 3.6's interpreter turns a scalar into an index by int() of its 1-element array, which numpy
    # 2.4 refuses ("only 0-dimensional arrays ..."), so every loop with a tensor bound fails; Triton 3.8
    # squeezes first. The same, for any Triton whose interpreter has this hook:
    from triton.runtime import interpreter as _interp
    _orig_patch = getattr(_interp, "_patch_lang_tensor", None)
    if _orig_patch is not None:
        def _patch_lang_tensor(tensor, scope):
            _orig_patch(tensor, scope)
            scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.squeeze()))

        _interp._patch_lang_tensor = _patch_lang_tensor
EXACT_SIGMOID = False  # True: tl.sigmoid everywhere (slower, exact to fp32)
# An AMD GPU (PyTorch's ROCm build): the kernels compile for it with the exact sigmoid and pointer loads; the
# fast tanh is NVIDIA's PTX, and tensor descriptors and the Gluon kernels are Hopper's
_HIP = torch.version.hip is not None
AUTOTUNE = os.environ.get("FLASHSIGMOID_AUTOTUNE", "1") != "0"
# Shortest key length at which the backward sums dQ with atomic adds by default, with pointer loads and
# with tensor descriptors (Hopper). Measured on an H200 (BENCHMARKS.md): with pointer loads the atomics
# save 2-5% of fwd+bwd device time at T >= 2048 and cost 9% at T = 1024 (run 12); with descriptors the dQ
# kernel is 3-16% faster at T >= 2048 and level at 1024 (run 32), so there it is never the default.
ATOMIC_DQ_MIN_LEN = 2048
ATOMIC_DQ_MIN_LEN_TMA = math.inf
MAX_HEAD_DIM = 256
_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


# ----------------------------------------------------------------------------------------------
# Triton kernels
# ----------------------------------------------------------------------------------------------

@triton.jit
def _tanh_approx(x):
    return tl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [x], dtype=tl.float32,
                                     is_pure=True, pack=1)


@triton.jit
def _sigmoid_half(t, FAST: tl.constexpr):
    # t is HALF the logit: the callers fold the 1/2 of 0.5 + 0.5*tanh(x/2) into scale and bias.
    return _p_of(_act(t, FAST), FAST)


# The backward needs p and p' = p (1 - p). With a = tanh(t), p = (1 + a) / 2 and 4 p' = 1 - a^2: one FMA
# from a, where p (1 - p) costs two more ops after p. So the loops keep a ("activation"), masked to
# _a_zero (p = 0, p' = 0), and the backward carries dS' = 4 dS = (1 - a^2) dP, its final scales taking the
# 1/4 back (exact: a power of two). The exact path (a = p = sigmoid(2t)) does the same with 4 p (1 - p).
@triton.jit
def _act(t, FAST: tl.constexpr):
    if FAST:
        return _tanh_approx(t)
    else:
        return tl.sigmoid(t + t)


@triton.jit
def _a_zero(FAST: tl.constexpr):
    return -1.0 if FAST else 0.0


@triton.jit
def _p_of(a, FAST: tl.constexpr):
    if FAST:
        return 0.5 * a + 0.5
    else:
        return a


@triton.jit
def _dsig4(a, FAST: tl.constexpr):  # 4 p (1 - p)
    if FAST:
        return 1.0 - a * a
    else:
        return 4.0 * a * (1.0 - a)


@triton.jit
def _for_dot(x, DT: tl.constexpr, UPCAST: tl.constexpr, ROUND_F16: tl.constexpr):
    # On GPU: round to the input dtype for the tensor cores. Under the interpreter everything stays
    # fp32 (its bf16 arithmetic is broken), but fp16 rounding is still mimicked so CPU tests see
    # the same rounding of p and dS as the GPU does.
    if UPCAST:
        if ROUND_F16:
            x = x.to(tl.float16).to(tl.float32)
        return x
    else:
        return x.to(DT)


@triton.jit
def _half_logits(qk, offs_m_abs, start_n, hscale, hbias, hslope, BLOCK_N: tl.constexpr,
                 CAUSAL: tl.constexpr, HAS_ALIBI: tl.constexpr):
    if HAS_ALIBI:
        if CAUSAL:
            # -slope (i - j) = -slope (i - n0) + slope (j - n0), n0 the key block's start: a row and a
            # column term, one add per element instead of an int subtract, a convert (quarter rate on
            # Hopper) and an FMA. The column term is small, so nothing large cancels.
            row = hbias - hslope * (offs_m_abs - start_n).to(tl.float32)
            col = hslope * tl.arange(0, BLOCK_N).to(tl.float32)
            return qk * hscale + row[:, None] + col[None, :]
        dist = tl.abs((offs_m_abs[:, None] - (start_n + tl.arange(0, BLOCK_N))[None, :]).to(tl.float32))
        return qk * hscale + hbias - hslope * dist
    return qk * hscale + hbias


@triton.jit
def _qkn_backward(dy, y_base, r_base, offs, rmask, stride_ym, stride_rm, G, dg_ptr, offs_d, dm, D: tl.constexpr):
    # QK-norm's backward in the epilogue (QKNORM): dy, the gradient of this block's normed rows
    # y = xh g (xh = x r, r = 1/rms(x); rows offs of y_base and r_base), becomes the raw rows' gradient
    # (returned), and their share of g's gradient goes to dg_ptr; xh = y / g:
    #     dx = r (dy g - xh mean_d(dy g xh)),   dg = sum_rows dy xh
    tl.debug_barrier()  # (keeps the loads below after the main loop: hoisted, their tile held registers through it)
    r = tl.load(r_base + offs.to(tl.int64) * stride_rm, mask=rmask, other=0.0)
    g = tl.load(G + offs_d, mask=dm, other=1.0).to(tl.float32)
    xh = tl.load(y_base + offs[:, None].to(tl.int64) * stride_ym + offs_d[None, :], mask=rmask[:, None] & dm[None, :],
                 other=0.0).to(tl.float32) * (1.0 / g)[None, :]
    c = tl.sum(dy * xh * g[None, :], axis=1) / D
    tl.store(dg_ptr + offs_d, tl.sum(dy * xh, axis=0))
    return r[:, None] * (dy * g[None, :] - xh * c[:, None])


@triton.jit
def _dropout_keep(seed, b, h, i, j, drop_p):
    # The keep mask of attention dropout at query rows i, key columns j (broadcastable index tiles,
    # either orientation): uniform(Philox-4x32-10, key = the 64-bit seed, counter = (j, i, h, b)) >=
    # drop_p. Every kernel calls this one function, so the forward, dK/dV (transposed tiles) and dQ
    # regenerate the same bits: element (b, h, i, j)'s number depends on nothing else (not on block
    # sizes or grid). One counter word per index: no i * Tk + j product that could overflow int32.
    z = (i + j) * 0
    r, _, _, _ = tl.philox(seed, j + z, i + z, h + z, b + z)
    return tl.uint_to_uniform_float(r) >= drop_p


@triton.jit
def _kv_and_p(q, k_ptrs, v_ptrs, start_n, offs_m_abs, Tk, dm, hscale, hbias, hslope,
              BLOCK_N: tl.constexpr, MASK: tl.constexpr, CAUSAL: tl.constexpr, HAS_ALIBI: tl.constexpr, FAST: tl.constexpr,
              UPCAST: tl.constexpr, DOT_PREC: tl.constexpr, wl, wr, HAS_WINDOW: tl.constexpr,
              lo_r, hi_r, VARLEN: tl.constexpr, K, V, kb, kh, HEAD_DIM: tl.constexpr, TMA: tl.constexpr):
    # One key block of a query-block loop (the forward's and dQ's): its k, v and the activation a of
    # p = sigmoid(S) (see _act).
    # dm masks the head dim's padding (all true, and compiled away, for a power-of-two head dim).
    # TMA: K, V are tensor descriptors (k_ptrs, v_ptrs unused); keys past Tk arrive as zeros, as masked
    # loads give.
    offs_n = start_n + tl.arange(0, BLOCK_N)
    if TMA:
        k = K.load([kb, kh, start_n, 0]).reshape(BLOCK_N, HEAD_DIM)
        v = V.load([kb, kh, start_n, 0]).reshape(BLOCK_N, HEAD_DIM)
    elif MASK:
        kmask = offs_n < Tk
        k = tl.load(k_ptrs, mask=kmask[:, None] & dm[None, :], other=0.0)
        v = tl.load(v_ptrs, mask=kmask[:, None] & dm[None, :], other=0.0)
    else:
        k = tl.load(k_ptrs, mask=dm[None, :], other=0.0)
        v = tl.load(v_ptrs, mask=dm[None, :], other=0.0)
    if UPCAST:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    qk = tl.dot(q, tl.trans(k), input_precision=DOT_PREC)
    t = _half_logits(qk, offs_m_abs, start_n, hscale, hbias, hslope, BLOCK_N, CAUSAL, HAS_ALIBI)
    a = _act(t, FAST)
    if MASK:
        # where() on a rather than -inf logits: p = p' = 0 exactly whatever the sigmoid approximation
        if VARLEN:  # row r sees keys [lo_r, hi_r): its sequence, the causal mask and the window in one
            valid = (offs_n[None, :] >= lo_r[:, None]) & (offs_n[None, :] < hi_r[:, None])
        elif HAS_WINDOW:  # keys i - wl <= j <= i + wr (wr = 0 when causal: the causal mask too)
            rel = offs_n[None, :] - offs_m_abs[:, None]
            valid = (offs_n < Tk)[None, :] & (rel >= -wl) & (rel <= wr)
        else:
            valid = (offs_n < Tk)[None, :]
            if CAUSAL:
                valid = valid & (offs_n[None, :] <= offs_m_abs[:, None])
        a = tl.where(valid, a, _a_zero(FAST))
    return k, v, a


@triton.jit
def _fwd_inner(acc, q, k_ptrs, v_ptrs, stride_kn, stride_vn, lo, hi, offs_m_abs, Tk, dm,
               hscale, hbias, hslope,
               BLOCK_N: tl.constexpr, MASK: tl.constexpr, CAUSAL: tl.constexpr,
               HAS_ALIBI: tl.constexpr, FAST: tl.constexpr, UPCAST: tl.constexpr,
               ROUND_F16: tl.constexpr, DOT_PREC: tl.constexpr,
               offs_m, seed, b, h, drop_p, HAS_DROPOUT: tl.constexpr,
               wl, wr, HAS_WINDOW: tl.constexpr, lo_r, hi_r, VARLEN: tl.constexpr,
               K, V, hk, HEAD_DIM: tl.constexpr, TMA: tl.constexpr):
    k_ptrs += lo * stride_kn
    v_ptrs += lo * stride_vn
    for start_n in range(lo, hi, BLOCK_N):
        k, v, a = _kv_and_p(q, k_ptrs, v_ptrs, start_n, offs_m_abs, Tk, dm, hscale, hbias, hslope,
                            BLOCK_N, MASK, CAUSAL, HAS_ALIBI, FAST, UPCAST, DOT_PREC, wl, wr, HAS_WINDOW,
                            lo_r, hi_r, VARLEN, K, V, b, hk, HEAD_DIM, TMA)
        p = _p_of(a, FAST)
        if HAS_DROPOUT:  # dropped weights are 0; the 1/(1-p) is applied once to the output
            offs_n = start_n + tl.arange(0, BLOCK_N)
            p = tl.where(_dropout_keep(seed, b, h, offs_m[:, None], offs_n[None, :], drop_p), p, 0.0)
        acc += tl.dot(_for_dot(p, v.dtype, UPCAST, ROUND_F16), v, input_precision=DOT_PREC)
        k_ptrs += BLOCK_N * stride_kn
        v_ptrs += BLOCK_N * stride_vn
    return acc


@triton.jit
def _key_range(start_m, Tk, off_q, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
               CAUSAL: tl.constexpr):
    # [0, full_end) are key blocks every row of the query block sees entirely (no mask needed);
    # [full_end, diag_end) are the diagonal/tail blocks that need the mask.
    full_tk = (Tk // BLOCK_N) * BLOCK_N
    if CAUSAL:
        first = tl.maximum(start_m + off_q + 1, 0)  # keys visible to the first row of the block
        full_end = tl.minimum((first // BLOCK_N) * BLOCK_N, full_tk)
        diag_end = tl.minimum(tl.maximum(start_m + BLOCK_M + off_q, 0), Tk)
        diag_end = tl.maximum(diag_end, full_end)
    else:
        full_end = full_tk
        diag_end = Tk
    return full_end, diag_end


@triton.jit
def _window_range(lo_r, hi_r, BLOCK_N: tl.constexpr):
    # Key blocks of a query block whose row r sees keys [lo_r, hi_r) (lo_r >= 0): the loop runs over
    # [lo, full_lo) masked (the window's left edge), [full_lo, full_end) unmasked (blocks every row
    # sees whole) and [full_end, hi) masked (right edge / diagonal); blocks outside are never read.
    lo = (tl.min(lo_r, 0) // BLOCK_N) * BLOCK_N
    hi = tl.maximum(tl.max(hi_r, 0), lo)
    full_lo = tl.minimum(tl.cdiv(tl.max(lo_r, 0), BLOCK_N) * BLOCK_N, hi)
    full_end = tl.maximum((tl.maximum(tl.min(hi_r, 0), 0) // BLOCK_N) * BLOCK_N, full_lo)
    return lo, full_lo, full_end, hi


@triton.jit
def _seq_of(Cu, idx, n_seq, SEARCH):
    # The sequence s of packed indices idx, Cu[s] <= idx < Cu[s + 1] (empty sequences never match):
    # a binary search of the sorted Cu[0..n_seq], SEARCH >= log2(n_seq) halvings.
    lo = tl.zeros_like(idx)
    hi = lo + n_seq
    for _ in range(SEARCH):  # Cu[lo] <= idx < Cu[hi]
        mid = (lo + hi) // 2
        go = tl.load(Cu + mid) <= idx
        lo = tl.where(go, mid, lo)
        hi = tl.where(go, hi, mid)
    return lo


@triton.jit
def _row_keys(offs_m, Tq, Tk, off_q, WL, WR, CuQ, CuK, n_seq, SEARCH, VARLEN: tl.constexpr):
    # Query rows' absolute positions a (in K's rows) and the keys [lo_r, hi_r) each sees: those of its
    # sequence (varlen: packed, each bottom-right aligned) within a - WL .. a + WR. Rows past Tq
    # count as the last row.
    r = tl.minimum(offs_m, Tq - 1)
    if VARLEN:
        s = _seq_of(CuQ, r, n_seq, SEARCH)
        ks = tl.load(CuK + s)
        ke = tl.load(CuK + s + 1)
        a = r + ke - tl.load(CuQ + s + 1)
    else:
        ks = 0
        ke = Tk
        a = r + off_q
    return a, tl.maximum(a - WL, ks), tl.minimum(a + WR + 1, ke)


@triton.jit
def _key_rows(offs_n, Tq, Tk, off_q, WL, WR, CuQ, CuK, n_seq, SEARCH, VARLEN: tl.constexpr):
    # The mirror for keys: the query rows [r_lo, r_hi) that see key j, and the shift d of j's
    # sequence (row r sits at absolute position r + d). Keys past Tk count as the last key.
    n = tl.minimum(offs_n, Tk - 1)
    if VARLEN:
        s = _seq_of(CuK, n, n_seq, SEARCH)
        qs = tl.load(CuQ + s)
        qe = tl.load(CuQ + s + 1)
        d = tl.load(CuK + s + 1) - qe
    else:
        qs = 0
        qe = Tq
        d = off_q
    r_lo = tl.minimum(tl.maximum(n - WR - d, qs), qe)
    return d, r_lo, tl.maximum(tl.minimum(n + WL + 1 - d, qe), r_lo)


# Launch order. Programs start in grid order and a causal program's work grows with its query block
# (shrinks with its key block). From LPT_MIN_LEN on (LPT) the grids are 1-D, ordered as FlashAttention-3's
# LPT scheduler orders them: the (batch, head) pairs in sections whose streamed tiles fit in L2 (_section),
# and within a section block by block, longest first, each block of every pair of the section at once. The
# last wave is then short blocks, where one head after another left each head's longest blocks to the end.
# Below, the grid is (blocks, heads, batch): one head after another, each head's longest block first
# (there it measured faster, runs 64 and 70).
@triton.jit
def _tile(n_blk, n_heads, section, LPT: tl.constexpr):
    """(i, head, batch) of this program; i = 0 is the longest block. Without LPT the grid is (blocks,
    heads, batch) and the program ids say it (the 1-D decode measured 3% slower at T=1024: run 70)."""
    if LPT:
        i, h, b = _tile_of(tl.program_id(0), n_blk, tl.num_programs(0), n_heads, section)
    else:
        i, h, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    return i, h, b


@triton.jit
def _tile_of(t, n_blk, n_tiles, n_heads, section):
    """(i, head, batch) of tile t of n_tiles in the LPT order: sections of `section` (batch, head) pairs, in each
    every pair's i = 0 (its longest block) first (also the persistent kernels' order of tickets, _gl_ws_tile)."""
    first = t // (section * n_blk) * section  # its section's first (batch, head) pair
    width = tl.minimum(n_tiles // n_blk - first, section)  # (the last section may be narrower)
    rest = t - first * n_blk
    hb = first + rest % width
    return rest // width, hb % n_heads, hb // n_heads


@triton.jit(do_not_specialize=["WL", "WR", "n_seq", "SEARCH", "section"])  # one compile for every window
def _fwd_kernel(Q, K, V, O, Slopes, hscale, hbias, Tq, Tk, off_q,
                stride_qb, stride_qh, stride_qm, stride_kb, stride_kh, stride_kn,
                stride_vb, stride_vh, stride_vn, stride_ob, stride_oh, stride_om,
                TQ_KEY, TK_KEY, WL, WR, CuQ, CuK, n_seq, SEARCH,
                GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr,
                BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr, HAS_ALIBI: tl.constexpr,
                FAST: tl.constexpr, UPCAST: tl.constexpr, ROUND_F16: tl.constexpr,
                DOT_PREC: tl.constexpr, Seed, drop_p, drop_scale, HAS_DROPOUT: tl.constexpr,
                HAS_WINDOW: tl.constexpr, VARLEN: tl.constexpr,
                HEAD_BIAS: tl.constexpr, TMA: tl.constexpr, n_heads, section, LPT: tl.constexpr):
    # TMA: Q, K, V, O are (B, H, T, D) tensor descriptors, tiles moved by Hopper's copy engine (_tma_ok);
    # else pointers.
    i, h, b = _tile(tl.cdiv(Tq, BLOCK_M), n_heads, section, LPT)
    pid_m = tl.cdiv(Tq, BLOCK_M) - 1 - i  # (causal: the last query blocks are the longest)
    hk = h // GROUP
    start_m = pid_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    mmask = offs_m < Tq
    dm = offs_d < D  # HEAD_DIM is D padded to a power of two
    if TMA:
        q = Q.load([b, h, start_m, 0]).reshape(BLOCK_M, HEAD_DIM)
        k_ptrs, v_ptrs = 0, 0
    else:
        q_base = Q + b.to(tl.int64) * stride_qb + h.to(tl.int64) * stride_qh
        k_base = K + b.to(tl.int64) * stride_kb + hk.to(tl.int64) * stride_kh
        v_base = V + b.to(tl.int64) * stride_vb + hk.to(tl.int64) * stride_vh
        q = tl.load(q_base + offs_m[:, None].to(tl.int64) * stride_qm + offs_d[None, :],
                    mask=mmask[:, None] & dm[None, :], other=0.0)
        offs_n0 = tl.arange(0, BLOCK_N)
        k_ptrs = k_base + offs_n0[:, None].to(tl.int64) * stride_kn + offs_d[None, :]
        v_ptrs = v_base + offs_n0[:, None].to(tl.int64) * stride_vn + offs_d[None, :]
    if UPCAST:
        q = q.to(tl.float32)
    hslope = 0.0
    if HAS_ALIBI:
        hslope = 0.5 * tl.load(Slopes + h)
    if HEAD_BIAS:  # a bias per head: the second row of Slopes (H = the grid's heads)
        hbias = 0.5 * tl.load(Slopes + n_heads + h)
    offs_m_abs = offs_m + off_q
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    seed = 0
    if HAS_DROPOUT:
        seed = tl.load(Seed)
    if HAS_WINDOW or VARLEN:  # row i sees keys [lo_r, hi_r): blocks outside every row's are skipped
        offs_m_abs, lo_r, hi_r = _row_keys(offs_m, Tq, Tk, off_q, WL, WR, CuQ, CuK, n_seq, SEARCH, VARLEN)
        lo, full_lo, full_end, diag_end = _window_range(lo_r, hi_r, BLOCK_N)
        acc = _fwd_inner(acc, q, k_ptrs, v_ptrs, stride_kn, stride_vn, lo, full_lo, offs_m_abs, Tk, dm,
                         hscale, hbias, hslope, BLOCK_N, True, CAUSAL, HAS_ALIBI, FAST, UPCAST,
                         ROUND_F16, DOT_PREC, offs_m, seed, b, h, drop_p, HAS_DROPOUT,
                         WL, WR, HAS_WINDOW, lo_r, hi_r, VARLEN, K, V, hk, HEAD_DIM, TMA)
    else:
        lo_r, hi_r, full_lo = 0, 0, 0
        full_end, diag_end = _key_range(start_m, Tk, off_q, BLOCK_M, BLOCK_N, CAUSAL)
    acc = _fwd_inner(acc, q, k_ptrs, v_ptrs, stride_kn, stride_vn, full_lo, full_end, offs_m_abs, Tk, dm,
                     hscale, hbias, hslope, BLOCK_N, False, CAUSAL, HAS_ALIBI, FAST, UPCAST,
                     ROUND_F16, DOT_PREC, offs_m, seed, b, h, drop_p, HAS_DROPOUT,
                     WL, WR, HAS_WINDOW, lo_r, hi_r, VARLEN, K, V, hk, HEAD_DIM, TMA)
    acc = _fwd_inner(acc, q, k_ptrs, v_ptrs, stride_kn, stride_vn, full_end, diag_end, offs_m_abs,
                     Tk, dm, hscale, hbias, hslope, BLOCK_N, True, CAUSAL, HAS_ALIBI, FAST, UPCAST,
                     ROUND_F16, DOT_PREC, offs_m, seed, b, h, drop_p, HAS_DROPOUT,
                     WL, WR, HAS_WINDOW, lo_r, hi_r, VARLEN, K, V, hk, HEAD_DIM, TMA)
    if HAS_DROPOUT:  # inverted dropout: E[O] is the O without dropout
        acc = acc * drop_scale
    if TMA:  # rows past Tq are clipped by the copy engine
        O.store([b, h, start_m, 0], acc.to(O.dtype).reshape(1, 1, BLOCK_M, HEAD_DIM))
    else:
        o_base = O + b.to(tl.int64) * stride_ob + h.to(tl.int64) * stride_oh
        tl.store(o_base + offs_m[:, None].to(tl.int64) * stride_om + offs_d[None, :],
                 acc.to(O.dtype.element_ty), mask=mmask[:, None] & dm[None, :])


@triton.jit
def _bwd_dkdv_inner(dk, dv, k, v, q_base, do_base, dq_base, stride_qm, stride_dom, stride_dqm,
                    start_m, num_steps, offs_n, Tq, off_q, scale, hscale, hbias, hslope,
                    BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr, D: tl.constexpr, MASK: tl.constexpr,
                    CAUSAL: tl.constexpr, HAS_ALIBI: tl.constexpr, FAST: tl.constexpr,
                    UPCAST: tl.constexpr, ROUND_F16: tl.constexpr, DOT_PREC: tl.constexpr,
                    ATOMIC_DQ: tl.constexpr, seed, b, h, drop_p, HAS_DROPOUT: tl.constexpr,
                    r_lo, r_hi, kshift, HAS_WINDOW: tl.constexpr, VARLEN: tl.constexpr,
                    Q, DO, TMA: tl.constexpr):
    # Works on transposed tiles (keys along rows) so dk, dv accumulate without transposing them.
    # TMA: Q, DO are tensor descriptors (rows past Tq arrive as zeros, as the masked loads give).
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    dm = offs_d < D
    if not TMA:
        qT_ptrs = q_base + offs_m[None, :].to(tl.int64) * stride_qm + offs_d[:, None]
        do_ptrs = do_base + offs_m[:, None].to(tl.int64) * stride_dom + offs_d[None, :]
    dq_ptrs = dq_base + offs_m[:, None].to(tl.int64) * stride_dqm + offs_d[None, :]
    for i in range(num_steps):
        if TMA:
            qT = tl.trans(Q.load([b, h, start_m + i * BLOCK_M, 0]).reshape(BLOCK_M, HEAD_DIM))
            do = DO.load([b, h, start_m + i * BLOCK_M, 0]).reshape(BLOCK_M, HEAD_DIM)
        elif MASK:
            # rows past Tq load as zeros: q = dO = 0 makes their dS and p^T dO contributions 0
            mmask = offs_m < Tq
            qT = tl.load(qT_ptrs, mask=mmask[None, :] & dm[:, None], other=0.0)
            do = tl.load(do_ptrs, mask=mmask[:, None] & dm[None, :], other=0.0)
        else:
            qT = tl.load(qT_ptrs, mask=dm[:, None], other=0.0)
            do = tl.load(do_ptrs, mask=dm[None, :], other=0.0)
        if UPCAST:
            qT = qT.to(tl.float32)
            do = do.to(tl.float32)
        sT = tl.dot(k, qT, input_precision=DOT_PREC)  # (BLOCK_N, BLOCK_M)
        tT = hscale * sT + hbias
        if HAS_ALIBI:
            # (the forward's row + column split of this term measured no faster here, where the
            # matrix products bound the time, and cost registers: spills at D=128)
            if VARLEN:  # row r sits at r + kshift_j for key j (kshift: j's sequence's alignment)
                dist = (offs_m[None, :] - (offs_n - kshift)[:, None]).to(tl.float32)
            else:
                dist = ((offs_m + off_q)[None, :] - offs_n[:, None]).to(tl.float32)
            if not CAUSAL:
                dist = tl.abs(dist)
            tT = tT - hslope * dist
        aT = _act(tT, FAST)
        if MASK:
            if HAS_WINDOW or VARLEN:  # key j is seen by rows [r_lo, r_hi): window, causal mask, sequence
                aT = tl.where((offs_m[None, :] >= r_lo[:, None]) & (offs_m[None, :] < r_hi[:, None]), aT,
                              _a_zero(FAST))
            elif CAUSAL:
                aT = tl.where((offs_m + off_q)[None, :] >= offs_n[:, None], aT, _a_zero(FAST))
        pT = _p_of(aT, FAST)
        if HAS_DROPOUT:
            # the forward's mask, regenerated on the transposed tile: dV = P_drop^T dO and only the
            # kept weights pass gradient; the 1/(1-p) is folded into the final scales
            keepT = _dropout_keep(seed, b, h, offs_m[None, :], offs_n[:, None], drop_p)
            dv += tl.dot(_for_dot(tl.where(keepT, pT, 0.0), do.dtype, UPCAST, ROUND_F16), do,
                         input_precision=DOT_PREC)
        else:
            dv += tl.dot(_for_dot(pT, do.dtype, UPCAST, ROUND_F16), do, input_precision=DOT_PREC)
        dpT = tl.dot(v, tl.trans(do), input_precision=DOT_PREC)
        if HAS_DROPOUT:
            dpT = tl.where(keepT, dpT, 0.0)
        dsT = _for_dot(_dsig4(aT, FAST) * dpT, qT.dtype, UPCAST, ROUND_F16)  # 4 dS^T
        dk += tl.dot(dsT, tl.trans(qT), input_precision=DOT_PREC)
        if ATOMIC_DQ:
            # this key block's share of dQ = scale * dS K, added into an fp32 buffer: no dQ kernel
            # recomputing S and dP, 5 matrix products in all instead of 7, but sums in any order
            dq = tl.dot(tl.trans(dsT), k, input_precision=DOT_PREC) * scale
            if MASK:
                tl.atomic_add(dq_ptrs, dq, mask=(offs_m < Tq)[:, None] & dm[None, :], sem="relaxed")
            else:
                tl.atomic_add(dq_ptrs, dq, mask=dm[None, :], sem="relaxed")
            dq_ptrs += BLOCK_M * stride_dqm
        offs_m += BLOCK_M
        if not TMA:
            qT_ptrs += BLOCK_M * stride_qm
            do_ptrs += BLOCK_M * stride_dom
    return dk, dv


@triton.jit(do_not_specialize=["WL", "WR", "n_seq", "SEARCH", "section"])
def _bwd_dkdv_kernel(Q, K, V, DO, DK, DV, DQ, Slopes, scale, hscale, hbias, Tq, Tk, off_q,
                     stride_qb, stride_qh, stride_qm, stride_kb, stride_kh, stride_kn,
                     stride_vb, stride_vh, stride_vn, stride_dob, stride_doh, stride_dom,
                     stride_dkb, stride_dkh, stride_dkn, stride_dvb, stride_dvh, stride_dvn,
                     stride_dqb, stride_dqh, stride_dqm,
                     TQ_KEY, TK_KEY, WL, WR, CuQ, CuK, n_seq, SEARCH,
                     GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, D: tl.constexpr, BLOCK_M1: tl.constexpr,
                     BLOCK_N1: tl.constexpr, CAUSAL: tl.constexpr, HAS_ALIBI: tl.constexpr,
                     FAST: tl.constexpr, UPCAST: tl.constexpr, ROUND_F16: tl.constexpr,
                     DOT_PREC: tl.constexpr, ATOMIC_DQ: tl.constexpr,
                     Seed, drop_p, drop_scale, HAS_DROPOUT: tl.constexpr,
                     HAS_WINDOW: tl.constexpr, VARLEN: tl.constexpr,
                     HEAD_BIAS: tl.constexpr, XQ, XK, RQ, RK, GQ, GK, DG, stride_xb, stride_xh, stride_xm,
                     stride_rb, stride_rm, QKNORM: tl.constexpr, TMA: tl.constexpr, n_heads, section,
                     LPT: tl.constexpr):
    # with dropout, the host passes scale / (1 - p) as `scale`: dK and dQ get the 1/(1-p) there
    # TMA: Q and DO are tensor descriptors (the tiles the query loop streams); K, V, the outputs pointers
    scale = 0.25 * scale  # the loop carries 4 dS (_dsig4)
    pid_n, hk, b = _tile(tl.cdiv(Tk, BLOCK_N1), n_heads, section, LPT)  # (causal: the first key blocks are the longest)
    start_n = pid_n * BLOCK_N1
    offs_n = start_n + tl.arange(0, BLOCK_N1)
    offs_d = tl.arange(0, HEAD_DIM)
    nmask = offs_n < Tk
    dm = offs_d < D
    k_base = K + b.to(tl.int64) * stride_kb + hk.to(tl.int64) * stride_kh
    v_base = V + b.to(tl.int64) * stride_vb + hk.to(tl.int64) * stride_vh
    k = tl.load(k_base + offs_n[:, None].to(tl.int64) * stride_kn + offs_d[None, :],
                mask=nmask[:, None] & dm[None, :], other=0.0)
    v = tl.load(v_base + offs_n[:, None].to(tl.int64) * stride_vn + offs_d[None, :],
                mask=nmask[:, None] & dm[None, :], other=0.0)
    if UPCAST:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    dk = tl.zeros([BLOCK_N1, HEAD_DIM], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N1, HEAD_DIM], dtype=tl.float32)
    # Query rows that see this key block: rows [m_lo, m_full) see part of it (masked steps),
    # rows >= m_full see all of it (unmasked steps, then one masked step for the Tq tail).
    if CAUSAL:
        m_lo = tl.minimum(tl.maximum(start_n - off_q, 0), Tq)
        m_full = tl.minimum(tl.maximum(start_n + BLOCK_N1 - 1 - off_q, m_lo), Tq)
        n_diag = tl.cdiv(m_full - m_lo, BLOCK_M1)
    else:
        m_lo = 0
        n_diag = 0
    start_full = m_lo + n_diag * BLOCK_M1
    n_full = tl.maximum(Tq - start_full, 0) // BLOCK_M1
    start_tail = start_full + n_full * BLOCK_M1
    n_tail = (start_tail < Tq).to(tl.int32)
    r_lo, r_hi, kshift = 0, 0, 0
    if HAS_WINDOW or VARLEN:
        # Key j is seen by rows [r_lo, r_hi): the block by the union [m_lo, m_hi) of those, all of it
        # by their intersection [f0, f1). Masked steps up to f0, unmasked steps inside [f0, f1),
        # masked steps to m_hi; rows outside are skipped.
        d, r_lo, r_hi = _key_rows(offs_n, Tq, Tk, off_q, WL, WR, CuQ, CuK, n_seq, SEARCH, VARLEN)
        if VARLEN:  # row r sits at r + d_j for key j: the ALiBi distance takes each key's shift
            kshift = d
            off_q = 0
        m_lo = tl.min(r_lo, 0)
        m_hi = tl.max(r_hi, 0)
        f0 = tl.minimum(tl.max(r_lo, 0), m_hi)
        n_diag = tl.cdiv(f0 - m_lo, BLOCK_M1)
        start_full = m_lo + n_diag * BLOCK_M1
        n_full = tl.maximum(tl.min(r_hi, 0) - start_full, 0) // BLOCK_M1
        start_tail = start_full + n_full * BLOCK_M1
        n_tail = tl.cdiv(tl.maximum(m_hi - start_tail, 0), BLOCK_M1)
    seed = 0
    if HAS_DROPOUT:
        seed = tl.load(Seed)
    for g in range(GROUP):
        h = hk * GROUP + g
        q_base, do_base = 0, 0
        if not TMA:
            q_base = Q + b.to(tl.int64) * stride_qb + h.to(tl.int64) * stride_qh
            do_base = DO + b.to(tl.int64) * stride_dob + h.to(tl.int64) * stride_doh
        dq_base = DQ + b.to(tl.int64) * stride_dqb + h.to(tl.int64) * stride_dqh
        hslope = 0.0
        if HAS_ALIBI:
            hslope = 0.5 * tl.load(Slopes + h)
        hb = hbias
        if HEAD_BIAS:  # a bias per head: the second row of Slopes (the grid has the kv heads)
            hb = 0.5 * tl.load(Slopes + n_heads * GROUP + h)
        # diagonal steps (masked), full steps (unmasked), the Tq tail (masked)
        dk, dv = _bwd_dkdv_inner(dk, dv, k, v, q_base, do_base, dq_base, stride_qm, stride_dom,
                                 stride_dqm, m_lo, n_diag, offs_n, Tq, off_q, scale, hscale, hb,
                                 hslope, BLOCK_M1, HEAD_DIM, D, True, CAUSAL, HAS_ALIBI, FAST, UPCAST,
                                 ROUND_F16, DOT_PREC, ATOMIC_DQ,
                                 seed, b, h, drop_p, HAS_DROPOUT, r_lo, r_hi, kshift, HAS_WINDOW, VARLEN,
                                 Q, DO, TMA)
        dk, dv = _bwd_dkdv_inner(dk, dv, k, v, q_base, do_base, dq_base, stride_qm, stride_dom,
                                 stride_dqm, start_full, n_full, offs_n, Tq, off_q, scale, hscale,
                                 hb, hslope, BLOCK_M1, HEAD_DIM, D, False, CAUSAL, HAS_ALIBI, FAST,
                                 UPCAST, ROUND_F16, DOT_PREC, ATOMIC_DQ,
                                 seed, b, h, drop_p, HAS_DROPOUT, r_lo, r_hi, kshift, HAS_WINDOW, VARLEN,
                                 Q, DO, TMA)
        dk, dv = _bwd_dkdv_inner(dk, dv, k, v, q_base, do_base, dq_base, stride_qm, stride_dom,
                                 stride_dqm, start_tail, n_tail, offs_n, Tq, off_q, scale, hscale,
                                 hb, hslope, BLOCK_M1, HEAD_DIM, D, True, CAUSAL, HAS_ALIBI, FAST,
                                 UPCAST, ROUND_F16, DOT_PREC, ATOMIC_DQ,
                                 seed, b, h, drop_p, HAS_DROPOUT, r_lo, r_hi, kshift, HAS_WINDOW, VARLEN,
                                 Q, DO, TMA)
    dk *= scale
    if HAS_DROPOUT:
        dv *= drop_scale
    dv_base = DV + b.to(tl.int64) * stride_dvb + hk.to(tl.int64) * stride_dvh
    tl.store(dv_base + offs_n[:, None].to(tl.int64) * stride_dvn + offs_d[None, :],
             dv.to(DV.dtype.element_ty), mask=nmask[:, None] & dm[None, :])
    tl.static_assert(not (QKNORM and ATOMIC_DQ), "QK-norm's backward in the epilogue needs the dQ kernel")
    if QKNORM:  # dK of the normed k -> of the raw k; this block's share of k's gain gradient
        dk = _qkn_backward(dk, XK + b.to(tl.int64) * stride_xb + hk.to(tl.int64) * stride_xh,
                           RK + b.to(tl.int64) * stride_rb + hk, offs_n, nmask, stride_xm, stride_rm, GK,
                           DG + ((b * n_heads + hk) * tl.cdiv(Tk, BLOCK_N1) + pid_n).to(tl.int64) * HEAD_DIM,
                           offs_d, dm, D)
    dk_base = DK + b.to(tl.int64) * stride_dkb + hk.to(tl.int64) * stride_dkh
    tl.store(dk_base + offs_n[:, None].to(tl.int64) * stride_dkn + offs_d[None, :],
             dk.to(DK.dtype.element_ty), mask=nmask[:, None] & dm[None, :])


@triton.jit
def _bwd_dq_inner(dq, q, do, k_ptrs, v_ptrs, stride_kn, stride_vn, lo, hi, offs_m_abs, Tk, dm,
                  hscale, hbias, hslope,
                  BLOCK_N: tl.constexpr, MASK: tl.constexpr, CAUSAL: tl.constexpr,
                  HAS_ALIBI: tl.constexpr, FAST: tl.constexpr, UPCAST: tl.constexpr,
                  ROUND_F16: tl.constexpr, DOT_PREC: tl.constexpr,
                  offs_m, seed, b, h, drop_p, HAS_DROPOUT: tl.constexpr,
                  wl, wr, HAS_WINDOW: tl.constexpr, lo_r, hi_r, VARLEN: tl.constexpr,
                  K, V, hk, HEAD_DIM: tl.constexpr, TMA: tl.constexpr):
    k_ptrs += lo * stride_kn
    v_ptrs += lo * stride_vn
    for start_n in range(lo, hi, BLOCK_N):
        k, v, a = _kv_and_p(q, k_ptrs, v_ptrs, start_n, offs_m_abs, Tk, dm, hscale, hbias, hslope,
                            BLOCK_N, MASK, CAUSAL, HAS_ALIBI, FAST, UPCAST, DOT_PREC, wl, wr, HAS_WINDOW,
                            lo_r, hi_r, VARLEN, K, V, b, hk, HEAD_DIM, TMA)
        dp = tl.dot(do, tl.trans(v), input_precision=DOT_PREC)
        if HAS_DROPOUT:  # dropped weights pass no gradient; 1/(1-p) is in `scale`
            offs_n = start_n + tl.arange(0, BLOCK_N)
            dp = tl.where(_dropout_keep(seed, b, h, offs_m[:, None], offs_n[None, :], drop_p), dp, 0.0)
        ds = _dsig4(a, FAST) * dp  # 4 dS (p is not needed here)
        dq += tl.dot(_for_dot(ds, k.dtype, UPCAST, ROUND_F16), k, input_precision=DOT_PREC)
        k_ptrs += BLOCK_N * stride_kn
        v_ptrs += BLOCK_N * stride_vn
    return dq


@triton.jit(do_not_specialize=["WL", "WR", "n_seq", "SEARCH", "section"])
def _bwd_dq_kernel(Q, K, V, DO, DQ, Slopes, scale, hscale, hbias, Tq, Tk, off_q,
                   stride_qb, stride_qh, stride_qm, stride_kb, stride_kh, stride_kn,
                   stride_vb, stride_vh, stride_vn, stride_dob, stride_doh, stride_dom,
                   stride_dqb, stride_dqh, stride_dqm,
                   TQ_KEY, TK_KEY, WL, WR, CuQ, CuK, n_seq, SEARCH,
                   GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, D: tl.constexpr, BLOCK_M2: tl.constexpr,
                   BLOCK_N2: tl.constexpr, CAUSAL: tl.constexpr, HAS_ALIBI: tl.constexpr,
                   FAST: tl.constexpr, UPCAST: tl.constexpr, ROUND_F16: tl.constexpr,
                   DOT_PREC: tl.constexpr, Seed, drop_p, drop_scale, HAS_DROPOUT: tl.constexpr,
                   HAS_WINDOW: tl.constexpr, VARLEN: tl.constexpr,
                   HEAD_BIAS: tl.constexpr, XQ, XK, RQ, RK, GQ, GK, DG, stride_xb, stride_xh, stride_xm,
                   stride_rb, stride_rm, QKNORM: tl.constexpr, TMA: tl.constexpr, n_heads, section,
                     LPT: tl.constexpr):
    # TMA: K and V are tensor descriptors (the tiles the key loop streams); the rest pointers
    scale = 0.25 * scale  # the loop carries 4 dS (_dsig4)
    i, h, b = _tile(tl.cdiv(Tq, BLOCK_M2), n_heads, section, LPT)
    pid_m = tl.cdiv(Tq, BLOCK_M2) - 1 - i
    hk = h // GROUP
    start_m = pid_m * BLOCK_M2
    offs_m = start_m + tl.arange(0, BLOCK_M2)
    offs_d = tl.arange(0, HEAD_DIM)
    mmask = offs_m < Tq
    dm = offs_d < D
    q_base = Q + b.to(tl.int64) * stride_qb + h.to(tl.int64) * stride_qh
    do_base = DO + b.to(tl.int64) * stride_dob + h.to(tl.int64) * stride_doh
    q = tl.load(q_base + offs_m[:, None].to(tl.int64) * stride_qm + offs_d[None, :],
                mask=mmask[:, None] & dm[None, :], other=0.0)
    do = tl.load(do_base + offs_m[:, None].to(tl.int64) * stride_dom + offs_d[None, :],
                 mask=mmask[:, None] & dm[None, :], other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
        do = do.to(tl.float32)
    hslope = 0.0
    if HAS_ALIBI:
        hslope = 0.5 * tl.load(Slopes + h)
    if HEAD_BIAS:  # a bias per head: the second row of Slopes (H = the grid's heads)
        hbias = 0.5 * tl.load(Slopes + n_heads + h)
    offs_m_abs = offs_m + off_q
    k_ptrs, v_ptrs = 0, 0
    if not TMA:
        offs_n0 = tl.arange(0, BLOCK_N2)
        k_ptrs = (K + b.to(tl.int64) * stride_kb + hk.to(tl.int64) * stride_kh
                  + offs_n0[:, None].to(tl.int64) * stride_kn + offs_d[None, :])
        v_ptrs = (V + b.to(tl.int64) * stride_vb + hk.to(tl.int64) * stride_vh
                  + offs_n0[:, None].to(tl.int64) * stride_vn + offs_d[None, :])
    dq = tl.zeros([BLOCK_M2, HEAD_DIM], dtype=tl.float32)
    seed = 0
    if HAS_DROPOUT:
        seed = tl.load(Seed)
    if HAS_WINDOW or VARLEN:  # the forward's key blocks: left edge, full blocks, right edge
        offs_m_abs, lo_r, hi_r = _row_keys(offs_m, Tq, Tk, off_q, WL, WR, CuQ, CuK, n_seq, SEARCH, VARLEN)
        lo, full_lo, full_end, diag_end = _window_range(lo_r, hi_r, BLOCK_N2)
        dq = _bwd_dq_inner(dq, q, do, k_ptrs, v_ptrs, stride_kn, stride_vn, lo, full_lo, offs_m_abs,
                           Tk, dm, hscale, hbias, hslope, BLOCK_N2, True, CAUSAL, HAS_ALIBI, FAST,
                           UPCAST, ROUND_F16, DOT_PREC, offs_m, seed, b, h, drop_p, HAS_DROPOUT,
                           WL, WR, HAS_WINDOW, lo_r, hi_r, VARLEN, K, V, hk, HEAD_DIM, TMA)
    else:
        lo_r, hi_r, full_lo = 0, 0, 0
        full_end, diag_end = _key_range(start_m, Tk, off_q, BLOCK_M2, BLOCK_N2, CAUSAL)
    dq = _bwd_dq_inner(dq, q, do, k_ptrs, v_ptrs, stride_kn, stride_vn, full_lo, full_end, offs_m_abs,
                       Tk, dm, hscale, hbias, hslope, BLOCK_N2, False, CAUSAL, HAS_ALIBI, FAST,
                       UPCAST, ROUND_F16, DOT_PREC, offs_m, seed, b, h, drop_p, HAS_DROPOUT,
                       WL, WR, HAS_WINDOW, lo_r, hi_r, VARLEN, K, V, hk, HEAD_DIM, TMA)
    dq = _bwd_dq_inner(dq, q, do, k_ptrs, v_ptrs, stride_kn, stride_vn, full_end, diag_end,
                       offs_m_abs, Tk, dm, hscale, hbias, hslope, BLOCK_N2, True, CAUSAL, HAS_ALIBI,
                       FAST, UPCAST, ROUND_F16, DOT_PREC, offs_m, seed, b, h, drop_p, HAS_DROPOUT,
                       WL, WR, HAS_WINDOW, lo_r, hi_r, VARLEN, K, V, hk, HEAD_DIM, TMA)
    dq *= scale
    if QKNORM:  # dQ of the normed q -> of the raw q; this block's share of q's gain gradient
        dq = _qkn_backward(dq, XQ + b.to(tl.int64) * stride_xb + h.to(tl.int64) * stride_xh,
                           RQ + b.to(tl.int64) * stride_rb + h, offs_m, mmask, stride_xm, stride_rm, GQ,
                           DG + ((b * n_heads + h) * tl.cdiv(Tq, BLOCK_M2) + pid_m).to(tl.int64) * HEAD_DIM,
                           offs_d, dm, D)
    tl.store(DQ + b.to(tl.int64) * stride_dqb + h.to(tl.int64) * stride_dqh
             + offs_m[:, None].to(tl.int64) * stride_dqm + offs_d[None, :],
             dq.to(DQ.dtype.element_ty), mask=mmask[:, None] & dm[None, :])


@triton.jit
def _dropout_mask_kernel(Seed, Out, Tq, Tk, drop_p, stride_ob, stride_oh, stride_om,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    # The attention kernels' keep mask, materialised (B, H, Tq, Tk) through the same _dropout_keep:
    # what tests compare the fused kernels against, and a way to inspect a run's mask.
    h = tl.program_id(1)
    b = tl.program_id(2)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    seed = tl.load(Seed)
    out = Out + b.to(tl.int64) * stride_ob + h.to(tl.int64) * stride_oh
    for start_n in range(0, Tk, BLOCK_N):
        keep = _dropout_keep(seed, b, h, offs_m[:, None], (start_n + offs_n)[None, :], drop_p)
        tl.store(out + offs_m[:, None].to(tl.int64) * stride_om + (start_n + offs_n)[None, :], keep.to(tl.int8),
                 mask=(offs_m < Tq)[:, None] & (start_n + offs_n < Tk)[None, :])


# ----------------------------------------------------------------------------------------------
# Hopper forward in Gluon
# ----------------------------------------------------------------------------------------------
# The same forward, written with Hopper's asynchronous warpgroup MMA (wgmma), which Triton's tl.dot
# does not expose: there every S = Q K^T is waited for before the sigmoid, so the tensor cores idle
# while the ALUs work. Here (FlashAttention-3's intra-warpgroup overlap) each step of the key loop, P_j
# in hand, queues S_{j+1} = Q K_{j+1}^T and then O += P_j V_j on the tensor cores, waits for S_{j+1} only,
# and computes P_{j+1} = sigmoid(S_{j+1}) while P_j V_j runs. No wgmma stays in flight across the loop's
# back edge: a version that left P V running into the next step gave NaNs in random rows (runs 38-41;
# our reading: the accumulator's registers can be copied at the back edge before the result lands). One
# warpgroup of 64 query rows per program keeps two programs on an SM, which interleave on their own
# (FA3's ping-pong between warpgroups, without its explicit scheduling). K and V come by TMA in two-slot
# rings, loaded by the same warps as soon as the wgmma that read a slot is done, more than a step ahead.
# Same maths and rounding as _fwd_kernel (bitwise its output without ALiBi on an H200, runs 36 and 42).
# Hopper only (wgmma is sm_90's), 16-bit, the head dims of GLUON_FWD, tanh sigmoid, causal or not, ALiBi,
# a bias per head, GQA; dropout, windows, packed sequences and the exact sigmoid take _fwd_kernel
# (_fwd_launch). Gluon is experimental and its API moves between Triton releases: if this kernel does
# not compile, the first call warns and _fwd_kernel runs from then on (capability, not version checks).
# The Triton interpreter cannot run Gluon: the CPU tests cover _fwd_kernel, and
# tests/test_sm90_compile.py compiles this one for sm_90.

@gluon.jit
def _gl_tanh(x):
    return gl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [x], dtype=gl.float32, is_pure=True,
                                     pack=1)


@gluon.jit
def _gl_load(desc, smem, bar, b, h, j, n, BLOCK_N: gl.constexpr):
    # key block j (of K or V) into ring slot j % 2; nothing past the last block n - 1
    s = j % 2
    mbarrier.expect(bar.index(s), desc.block_type.nbytes, pred=j < n)
    _tma_load(desc, [b, h, j * BLOCK_N, 0], bar.index(s), smem.index(s), pred=j < n)


@gluon.jit
def _gl_half_logits(s, j, rows, cols0, hscale, hbias, hslope, BLOCK_N: gl.constexpr, CAUSAL: gl.constexpr,
                    HAS_ALIBI: gl.constexpr):
    # half logits of key block j from its S, as _half_logits computes them (the same operations in the same order)
    if HAS_ALIBI and CAUSAL:
        row = hbias - hslope * (rows - j * BLOCK_N).to(gl.float32)
        return s * hscale + row[:, None] + (hslope * cols0.to(gl.float32))[None, :]
    elif HAS_ALIBI:
        cols = j * BLOCK_N + cols0
        return s * hscale + hbias - hslope * gl.abs(rows[:, None] - cols[None, :]).to(gl.float32)
    else:
        return s * hscale + hbias


@gluon.jit
def _gl_p(s, j, n_full, rows, cols0, hscale, hbias, hslope, p_layout: gl.constexpr, BLOCK_N: gl.constexpr,
          CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr, MASK: gl.constexpr, dtype: gl.constexpr):
    # P of key block j from its S, as the P V product's register operand; MASK: j may be a diagonal block
    cols = j * BLOCK_N + cols0
    p = 0.5 * _gl_tanh(_gl_half_logits(s, j, rows, cols0, hscale, hbias, hslope, BLOCK_N, CAUSAL, HAS_ALIBI)) + 0.5
    if CAUSAL and MASK:
        if j >= n_full:  # the diagonal blocks (keys past Tk arrive as zeros, v = 0: no mask needed)
            p = gl.where(cols[None, :] <= rows[:, None], p, 0.0)
    return gl.convert_layout(p.to(dtype), p_layout)


@gluon.jit
def _gl_step(p, acc, q, k_smem, v_smem, kbar, vbar, k_desc, v_desc, b, hk, j, n, n_full, rows, cols0,
             hscale, hbias, hslope, s_zero, p_layout: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr,
             CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr, HAS_NEXT: gl.constexpr, MASK: gl.constexpr):
    # key block j, its P already computed: S_{j+1} and then P_j V_j go to the tensor cores, and P_{j+1} is
    # computed while P_j V_j runs. Nothing is left in flight at the end of a step (see the section's comment).
    if HAS_NEXT:
        mbarrier.wait(kbar.index((j + 1) % 2), ((j + 1) // 2) & 1)
        s_next = warpgroup_mma(q, k_smem.index((j + 1) % 2).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero,
                               use_acc=False, is_async=True)
    mbarrier.wait(vbar.index(j % 2), (j // 2) & 1)
    acc = warpgroup_mma(p, v_smem.index(j % 2).reshape([BLOCK_N, HEAD_DIM]), acc, is_async=True)
    if HAS_NEXT:  # S_{j+1} done: K's slot of block j + 1 takes block j + 3
        s = warpgroup_mma_wait(num_outstanding=1, deps=(s_next, ))
        _gl_load(k_desc, k_smem, kbar, b, hk, j + 3, n, BLOCK_N)
        p_next = _gl_p(s, j + 1, n_full, rows, cols0, hscale, hbias, hslope, p_layout, BLOCK_N, CAUSAL, HAS_ALIBI,
                       MASK, k_smem.dtype)
    else:
        p_next = p
    # P_j V_j done (P_j, its register operand, kept alive until here): V's slot of block j takes block j + 2
    acc, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc, p))
    _gl_load(v_desc, v_smem, vbar, b, hk, j + 2, n, BLOCK_N)
    return p_next, acc


@gluon.jit
def _gl_fwd_kernel(q_desc, k_desc, v_desc, o_desc, Slopes, hscale, hbias, Tq, Tk, off_q, n_heads, section,
                   GROUP: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr,
                   CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr, HEAD_BIAS: gl.constexpr, LPT: gl.constexpr,
                   num_warps: gl.constexpr):
    i, h, b = _tile(gl.cdiv(Tq, BLOCK_M), n_heads, section, LPT)
    pid_m = gl.cdiv(Tq, BLOCK_M) - 1 - i
    hk = h // GROUP
    start_m = pid_m * BLOCK_M
    dtype: gl.constexpr = q_desc.dtype
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                       instr_shape=[16, BLOCK_N, 16])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                       instr_shape=[16, HEAD_DIM, 16])
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    q_smem = gl.allocate_shared_memory(dtype, q_desc.block_type.shape, q_desc.layout)
    k_smem = gl.allocate_shared_memory(dtype, [2] + k_desc.block_type.shape, k_desc.layout)
    v_smem = gl.allocate_shared_memory(dtype, [2] + v_desc.block_type.shape, v_desc.layout)
    qbar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    kbar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    vbar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    mbarrier.init(qbar, count=1)
    for i in gl.static_range(2):
        mbarrier.init(kbar.index(i), count=1)
        mbarrier.init(vbar.index(i), count=1)
    hslope = 0.0
    if HAS_ALIBI:
        hslope = 0.5 * gl.load(Slopes + h)
    if HEAD_BIAS:
        hbias = 0.5 * gl.load(Slopes + n_heads + h)
    # key blocks [0, n), of which the first n_full need no mask (_key_range's bounds)
    full_tk = (Tk // BLOCK_N) * BLOCK_N
    if CAUSAL:
        full_end = gl.minimum((gl.maximum(start_m + off_q + 1, 0) // BLOCK_N) * BLOCK_N, full_tk)
        diag_end = gl.maximum(gl.minimum(gl.maximum(start_m + BLOCK_M + off_q, 0), Tk), full_end)
    else:
        full_end = full_tk
        diag_end = Tk
    # (rows before every key, with Tq > Tk, see none: their one block is all masked, so O = 0)
    n = gl.maximum(gl.cdiv(diag_end, BLOCK_N), 1)
    n_full = full_end // BLOCK_N

    mbarrier.expect(qbar, q_desc.block_type.nbytes)
    _tma_load(q_desc, [b, h, start_m, 0], qbar, q_smem)
    for j in gl.static_range(2):
        _gl_load(k_desc, k_smem, kbar, b, hk, j, n, BLOCK_N)
        _gl_load(v_desc, v_smem, vbar, b, hk, j, n, BLOCK_N)
    q = q_smem.reshape([BLOCK_M, HEAD_DIM])
    acc = gl.zeros([BLOCK_M, HEAD_DIM], dtype=gl.float32, layout=o_layout)
    rows = start_m + off_q + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, s_layout))  # absolute positions
    cols0 = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, s_layout))
    s_zero = gl.zeros([BLOCK_M, BLOCK_N], dtype=gl.float32, layout=s_layout)
    mbarrier.wait(qbar, 0)
    mbarrier.wait(kbar.index(0), 0)
    s = warpgroup_mma(q, k_smem.index(0).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero, use_acc=False,
                      is_async=True)
    s = warpgroup_mma_wait(num_outstanding=0, deps=(s, ))
    _gl_load(k_desc, k_smem, kbar, b, hk, 2, n, BLOCK_N)
    p = _gl_p(s, 0, n_full, rows, cols0, hscale, hbias, hslope, p_layout, BLOCK_N, CAUSAL, HAS_ALIBI, True, dtype)
    # Step j makes P of block j + 1, which needs the causal mask only from n_full on: the steps before run as a
    # loop of their own, without it. (In one loop the mask's compares and predicated selects are issued at every
    # step: sm_90 SASS of the loop, 341 instructions per step at D=64 against 255 without; Triton 3.6)
    n_off = n - 1
    if CAUSAL:
        n_off = gl.minimum(gl.maximum(n_full - 1, 0), n - 1)
    for j in range(n_off):
        p, acc = _gl_step(p, acc, q, k_smem, v_smem, kbar, vbar, k_desc, v_desc, b, hk, j, n, n_full, rows, cols0,
                          hscale, hbias, hslope, s_zero, p_layout, BLOCK_N, HEAD_DIM, CAUSAL, HAS_ALIBI, True, False)
    if CAUSAL:
        for j in range(n_off, n - 1):
            p, acc = _gl_step(p, acc, q, k_smem, v_smem, kbar, vbar, k_desc, v_desc, b, hk, j, n, n_full, rows,
                              cols0, hscale, hbias, hslope, s_zero, p_layout, BLOCK_N, HEAD_DIM, CAUSAL, HAS_ALIBI,
                              True, True)
    p, acc = _gl_step(p, acc, q, k_smem, v_smem, kbar, vbar, k_desc, v_desc, b, hk, n - 1, n, n_full, rows, cols0,
                      hscale, hbias, hslope, s_zero, p_layout, BLOCK_N, HEAD_DIM, CAUSAL, HAS_ALIBI, False, True)
    mbarrier.invalidate(qbar)
    for i in gl.static_range(2):
        mbarrier.invalidate(kbar.index(i))
        mbarrier.invalidate(vbar.index(i))
    # O through q's tile, now free; the copy engine clips rows past Tq
    q.store(acc.to(dtype))
    fence_async_shared()
    _tma_store(o_desc, [b, h, start_m, 0], q_smem)
    tma.store_wait(0)


# The same forward with FlashAttention-3's warp specialisation (Hopper, Gluon's gl.warp_specialize): a program
# takes BLOCK_M = 128 query rows as two consumer warpgroups of 64 rows each (the default partition and a
# worker), and one producer warp copies Q and the K, V blocks into STAGES-slot rings by TMA, which both
# consumers read (half the K, V traffic of two 64-row programs). Each consumer runs _gl_fwd_kernel's step
# (S_{j+1} and P_j V_j queued, P_{j+1} computed while P_j V_j runs); with PINGPONG the two take turns to queue
# their matrix products (two mbarriers), so that one computes sigmoids while the other's products run:
# FA3's ping-pong schedule (measured level to 3% slower, run 94: the consumers drift apart on their own, so it is
# off in GLUON_FWD_WS). Registers move from the producer to the consumers (worker_num_regs, setmaxnreg). A slot
# is free when both consumers' wgmmas that read it are done (empty barriers count two arrivals). Same maths and
# rounding as _gl_fwd_kernel (bitwise its output, run 94). At head dim 64 the one-warpgroup kernel, 3-4 programs
# per SM, stays faster. A Triton whose Gluon lacks warp_specialize takes _gl_fwd_kernel.
# Persistent (PERSIST, FA3's dynamic tile scheduler): one program per SM (one fits: ~192 KB of shared memory), whose
# producer takes tiles in _tile's order from a counter (an atomic add, the counter zeroed per launch) and tells each
# consumer which through a global word, released by the Q tile's mbarrier; rings and turns run on across tiles, and a
# consumer frees its Q tile (qempty) before its last step and stores O through its own tile, so the next tile's
# loads and first products overlap this one's last product and store. Measured 5-12% faster than a program per
# tile (runs 100, 102), whose start and end (Q's load, the pipeline's fill and drain, O's store) showed in a fit of
# run 99's kernel times as ~5 us per program.
@gluon.jit
def _gl_ws_turn(turn, c: gl.constexpr, it, PINGPONG: gl.constexpr):
    # consumer c's turn to queue its it-th pair of products: consumer 0 goes first (a fresh mbarrier's
    # previous phase counts as complete), then each waits for the other's arrival after its own turn
    if PINGPONG:
        mbarrier.wait(turn.index(c), (it & 1) ^ (1 - c))


@gluon.jit
def _gl_ws_pass(turn, c: gl.constexpr, PINGPONG: gl.constexpr):
    if PINGPONG:
        mbarrier.arrive(turn.index(1 - c), count=1)


@gluon.jit
def _gl_ws_barriers(STAGES: gl.constexpr):
    # per consumer: its Q tile landed, its turn (PINGPONG); per ring slot: K's and V's block landed (the copy
    # engine arrives) and slot free (both consumers arrive)
    qbar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    turn = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    kready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    kempty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    vready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    vempty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    for c in gl.static_range(2):
        mbarrier.init(qbar.index(c), count=1)
        mbarrier.init(turn.index(c), count=1)
    for s in gl.static_range(STAGES):
        mbarrier.init(kready.index(s), count=1)
        mbarrier.init(vready.index(s), count=1)
        mbarrier.init(kempty.index(s), count=2)
        mbarrier.init(vempty.index(s), count=2)
    return qbar, turn, kready, kempty, vready, vempty


@gluon.jit
def _gl_ws_blocks(start_m, off_q, Tk, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, CAUSAL: gl.constexpr):
    # the program's key blocks [0, n): the later consumer's (_gl_fwd_kernel's bounds for all BLOCK_M rows); rows
    # before every key (Tq > Tk) see one all-masked block
    if CAUSAL:
        diag_end = gl.minimum(gl.maximum(start_m + BLOCK_M + off_q, 0), Tk)
    else:
        diag_end = Tk
    return gl.maximum(gl.cdiv(diag_end, BLOCK_N), 1)


@gluon.jit
def _gl_ws_full_blocks(m0, off_q, Tk, BLOCK_N: gl.constexpr, CAUSAL: gl.constexpr):
    # how many of the key blocks need no mask for the 64 rows from m0 (_gl_fwd_kernel's n_full)
    full_tk = (Tk // BLOCK_N) * BLOCK_N
    if CAUSAL:
        return gl.minimum((gl.maximum(m0 + off_q + 1, 0) // BLOCK_N) * BLOCK_N, full_tk) // BLOCK_N
    else:
        return full_tk // BLOCK_N


@gluon.jit
def _gl_ws_kv_stream(k_desc, v_desc, k_smem, v_smem, kready, kempty, vready, vempty, b, hk, n, base,
                     BLOCK_N: gl.constexpr, STAGES: gl.constexpr):
    # the producer's loop: key blocks 0..n-1 of K and V into their rings from ring position `base` on, each slot
    # once both consumers freed it
    for j in range(n):  # K_j before V_j: the consumers queue S_{j+1} = Q K_{j+1}^T before P_j V_j
        s = (base + j) % STAGES
        ph = (((base + j) // STAGES) & 1) ^ 1  # (the first round of slots is free)
        mbarrier.wait(kempty.index(s), ph)
        mbarrier.expect(kready.index(s), k_desc.block_type.nbytes)
        _tma_load(k_desc, [b, hk, j * BLOCK_N, 0], kready.index(s), k_smem.index(s))
        mbarrier.wait(vempty.index(s), ph)
        mbarrier.expect(vready.index(s), v_desc.block_type.nbytes)
        _tma_load(v_desc, [b, hk, j * BLOCK_N, 0], vready.index(s), v_smem.index(s))


@gluon.jit
def _gl_ws_tile(t, n_blk, n_tiles, n_heads, section, off_q, Tk, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr,
                CAUSAL: gl.constexpr):
    # tile t in _tile's order (_tile_of): batch, head, first query row and the tile's key blocks
    i, h, b = _tile_of(t, n_blk, n_tiles, n_heads, section)
    start_m = (n_blk - 1 - i) * BLOCK_M
    return b, h, start_m, _gl_ws_blocks(start_m, off_q, Tk, BLOCK_M, BLOCK_N, CAUSAL)


@gluon.jit
def _gl_ws_ticket(Tiles):
    # the next tile of the launch: the counter at Tiles[0] (zeroed per launch), one lane's atomic add
    lane = gl.arange(0, 32, layout=gl.BlockedLayout([1], [32], [1], [0]))
    got = gl.atomic_add(Tiles + lane * 0, gl.full([32], 1, gl.int32, lane.type.layout), mask=lane == 0)
    return gl.max(gl.where(lane == 0, got, -1), axis=0)


@gluon.jit
def _gl_ws_word(Tiles, c: gl.constexpr):
    # where a persistent program's producer tells consumer c its next tile
    return Tiles + 1 + 2 * gl.program_id(0) + c


@gluon.jit
def _gl_ws_load_q(q_desc, q_smem, do_desc, do_smem, qbar, qempty, Tiles, c: gl.constexpr, t, it, b, h, row,
                  DO: gl.constexpr, PERSIST: gl.constexpr):
    # consumer c's Q tile (and dO's: DO) for its it-th tile (t, published at Tiles[1 + 2 pid + c]; -1: no more)
    # once its last one is free; every lane stores, so the lane that arrives has stored too (its arrival releases
    # the store to the consumer, whose wait acquires it)
    if PERSIST:
        mbarrier.wait(qempty.index(c), (it & 1) ^ 1)
        lane = gl.arange(0, 32, layout=gl.BlockedLayout([1], [32], [1], [0]))
        gl.store(_gl_ws_word(Tiles, c) + lane * 0, gl.full([32], 0, gl.int32, lane.type.layout) + t)
    if t >= 0:
        if DO:
            mbarrier.expect(qbar.index(c), q_desc.block_type.nbytes + do_desc.block_type.nbytes)
            _tma_load(do_desc, [b, h, row, 0], qbar.index(c), do_smem.index(c))
        else:
            mbarrier.expect(qbar.index(c), q_desc.block_type.nbytes)
        _tma_load(q_desc, [b, h, row, 0], qbar.index(c), q_smem.index(c))
    else:
        mbarrier.arrive(qbar.index(c), count=1)


@gluon.jit
def _gl_ws_loader(q_desc, do_desc, k_desc, v_desc, q_smem, do_smem, k_smem, v_smem, qbar, qempty, kready, kempty,
                  vready, vempty, Tiles, n_blk, n_tiles, n_heads, section, off_q, Tk, GROUP: gl.constexpr,
                  HALF: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr, CAUSAL: gl.constexpr,
                  DO: gl.constexpr, PERSIST: gl.constexpr):
    # the producer of both warp-specialised kernels: per tile, both consumers' Q (and dO) tiles, then the tile's K, V
    # blocks into the rings (ring position `base` on)
    t = gl.program_id(0)
    if PERSIST:
        t = _gl_ws_ticket(Tiles)
    it = 0
    base = 0
    while t < n_tiles:
        b, h, start_m, n = _gl_ws_tile(t, n_blk, n_tiles, n_heads, section, off_q, Tk, 2 * HALF, BLOCK_N, CAUSAL)
        for c in gl.static_range(2):
            _gl_ws_load_q(q_desc, q_smem, do_desc, do_smem, qbar, qempty, Tiles, c, t, it, b, h, start_m + c * HALF,
                          DO, PERSIST)
        _gl_ws_kv_stream(k_desc, v_desc, k_smem, v_smem, kready, kempty, vready, vempty, b, h // GROUP, n, base,
                         BLOCK_N, STAGES)
        base += n
        it += 1
        t = n_tiles
        if PERSIST:
            t = _gl_ws_ticket(Tiles)
    if PERSIST:  # no more tiles
        for c in gl.static_range(2):
            _gl_ws_load_q(q_desc, q_smem, do_desc, do_smem, qbar, qempty, Tiles, c, -1, it, 0, 0, 0, DO, PERSIST)


@gluon.jit
def _gl_ws_step(p, acc, q, k_smem, v_smem, kready, kempty, vready, vempty, turn, c: gl.constexpr, j, r, tr, n_full,
                rows, cols0, hscale, hbias, hslope, s_zero, p_layout: gl.constexpr, BLOCK_N: gl.constexpr,
                HEAD_DIM: gl.constexpr, STAGES: gl.constexpr, CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr,
                HAS_NEXT: gl.constexpr, MASK: gl.constexpr, PINGPONG: gl.constexpr):
    # _gl_step with the slots' ready/empty barriers and the turn: both products queued in one turn; block j sits at
    # ring position r (its slot r % STAGES), in the program's turn tr
    sn = (r + 1) % STAGES
    sv = r % STAGES
    if HAS_NEXT:
        mbarrier.wait(kready.index(sn), ((r + 1) // STAGES) & 1)
    mbarrier.wait(vready.index(sv), (r // STAGES) & 1)
    _gl_ws_turn(turn, c, tr, PINGPONG)
    if HAS_NEXT:
        s_next = warpgroup_mma(q, k_smem.index(sn).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero,
                               use_acc=False, is_async=True)
    acc = warpgroup_mma(p, v_smem.index(sv).reshape([BLOCK_N, HEAD_DIM]), acc, is_async=True)
    _gl_ws_pass(turn, c, PINGPONG)
    if HAS_NEXT:
        s = warpgroup_mma_wait(num_outstanding=1, deps=(s_next, ))
        mbarrier.arrive(kempty.index(sn), count=1)
        p_next = _gl_p(s, j + 1, n_full, rows, cols0, hscale, hbias, hslope, p_layout, BLOCK_N, CAUSAL, HAS_ALIBI,
                       MASK, k_smem.dtype)
    else:
        p_next = p
    acc, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc, p))
    mbarrier.arrive(vempty.index(sv), count=1)
    return p_next, acc


@gluon.jit
def _gl_ws_tile_rows(t, c: gl.constexpr, Slopes, n_blk, n_tiles, n_heads, section, off_q, Tk, hbias,
                     HALF: gl.constexpr, BLOCK_N: gl.constexpr, CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr,
                     HEAD_BIAS: gl.constexpr, row_layout: gl.constexpr):
    # consumer c's share of tile t: batch, head, the tile's key blocks, its first row, its unmasked key blocks, its
    # rows (absolute), the head's ALiBi half-slope and half-bias
    b, h, start_m, n = _gl_ws_tile(t, n_blk, n_tiles, n_heads, section, off_q, Tk, 2 * HALF, BLOCK_N, CAUSAL)
    hslope = 0.0
    if HAS_ALIBI:
        hslope = 0.5 * gl.load(Slopes + h)
    hb = hbias
    if HEAD_BIAS:
        hb = 0.5 * gl.load(Slopes + n_heads + h)
    m0 = start_m + c * HALF
    n_full = _gl_ws_full_blocks(m0, off_q, Tk, BLOCK_N, CAUSAL)
    return b, h, n, m0, n_full, m0 + off_q + gl.arange(0, HALF, layout=row_layout), hslope, hb


@gluon.jit
def _gl_ws_out(desc, o_smem, c: gl.constexpr, x, b, h, m0):
    # consumer c's result tile (O or dQ) out through its shared tile once the last copy out of it is done; the copy
    # engine clips rows past Tq
    tma.store_wait(0)
    o_smem.index(c).reshape(x.shape).store(x.to(desc.dtype))
    fence_async_shared()
    _tma_store(desc, [b, h, m0, 0], o_smem.index(c))


@gluon.jit
def _gl_ws_consumer(c: gl.constexpr, o_desc, q_smem, k_smem, v_smem, o_smem, qbar, qempty, kready, kempty, vready,
                    vempty, turn, Tiles, Slopes, n_blk, n_tiles, n_heads, section, off_q, Tk, hscale, hbias,
                    HALF: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr, STAGES: gl.constexpr,
                    CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr, HEAD_BIAS: gl.constexpr, PINGPONG: gl.constexpr,
                    PERSIST: gl.constexpr):
    # per tile, rows start_m + c * HALF on: _gl_fwd_kernel's loop over the tile's n key blocks (for consumer 0 the
    # last block may be all masked: both take the same steps, so that turns and slots stay in step). Ring positions
    # and turns run on across the program's tiles (base: the blocks of its earlier tiles)
    dtype: gl.constexpr = o_desc.dtype
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, BLOCK_N, 16])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, HEAD_DIM, 16])
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    q = q_smem.index(c).reshape([HALF, HEAD_DIM])
    cols0 = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, s_layout))
    s_zero = gl.zeros([HALF, BLOCK_N], dtype=gl.float32, layout=s_layout)
    mbarrier.wait(qbar.index(c), 0)
    t = gl.program_id(0)
    if PERSIST:
        t = gl.load(_gl_ws_word(Tiles, c), cache_modifier=".cg")
    it = 0
    base = 0
    while t >= 0:
        b, h, n, m0, n_full, rows, hslope, hb = _gl_ws_tile_rows(t, c, Slopes, n_blk, n_tiles, n_heads, section, off_q,
                                                                 Tk, hbias, HALF, BLOCK_N, CAUSAL, HAS_ALIBI,
                                                                 HEAD_BIAS, gl.SliceLayout(1, s_layout))
        acc = gl.zeros([HALF, HEAD_DIM], dtype=gl.float32, layout=o_layout)
        mbarrier.wait(kready.index(base % STAGES), (base // STAGES) & 1)
        _gl_ws_turn(turn, c, base + it, PINGPONG)
        s = warpgroup_mma(q, k_smem.index(base % STAGES).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero,
                          use_acc=False, is_async=True)
        _gl_ws_pass(turn, c, PINGPONG)
        s = warpgroup_mma_wait(num_outstanding=0, deps=(s, ))
        mbarrier.arrive(kempty.index(base % STAGES), count=1)
        p = _gl_p(s, 0, n_full, rows, cols0, hscale, hb, hslope, p_layout, BLOCK_N, CAUSAL, HAS_ALIBI, True, dtype)
        n_off = n - 1
        if CAUSAL:
            n_off = gl.minimum(gl.maximum(n_full - 1, 0), n - 1)
        # (turns: one for the tile's first S, one per step)
        for j in range(n_off):
            p, acc = _gl_ws_step(p, acc, q, k_smem, v_smem, kready, kempty, vready, vempty, turn, c, j, base + j,
                                 base + it + j + 1, n_full, rows, cols0, hscale, hb, hslope, s_zero, p_layout, BLOCK_N,
                                 HEAD_DIM, STAGES, CAUSAL, HAS_ALIBI, True, False, PINGPONG)
        if CAUSAL:
            for j in range(n_off, n - 1):
                p, acc = _gl_ws_step(p, acc, q, k_smem, v_smem, kready, kempty, vready, vempty, turn, c, j, base + j,
                                     base + it + j + 1, n_full, rows, cols0, hscale, hb, hslope, s_zero, p_layout,
                                     BLOCK_N, HEAD_DIM, STAGES, CAUSAL, HAS_ALIBI, True, True, PINGPONG)
        if PERSIST:  # Q's last product is done: the producer may load the next tile's
            mbarrier.arrive(qempty.index(c), count=1)
        p, acc = _gl_ws_step(p, acc, q, k_smem, v_smem, kready, kempty, vready, vempty, turn, c, n - 1, base + n - 1,
                             base + it + n, n_full, rows, cols0, hscale, hb, hslope, s_zero, p_layout, BLOCK_N,
                             HEAD_DIM, STAGES, CAUSAL, HAS_ALIBI, False, True, PINGPONG)
        _gl_ws_out(o_desc, o_smem, c, acc, b, h, m0)
        base += n
        it += 1
        t = -1
        if PERSIST:
            mbarrier.wait(qbar.index(c), it & 1)
            t = gl.load(_gl_ws_word(Tiles, c), cache_modifier=".cg")
    tma.store_wait(0)


@gluon.jit
def _gl_ws_fwd_kernel(q_desc, k_desc, v_desc, o_desc, Slopes, hscale, hbias, Tq, Tk, off_q, n_heads, section, Tiles,
                      n_tiles, GROUP: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr,
                      HEAD_DIM: gl.constexpr, STAGES: gl.constexpr, CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr,
                      HEAD_BIAS: gl.constexpr, PINGPONG: gl.constexpr, REGS: gl.constexpr, PERSIST: gl.constexpr,
                      num_warps: gl.constexpr):
    # one tile per program, or (PERSIST) a program per SM taking tiles from a counter until none is left
    HALF: gl.constexpr = BLOCK_M // 2
    n_blk = gl.cdiv(Tq, BLOCK_M)
    dtype: gl.constexpr = q_desc.dtype
    q_smem = gl.allocate_shared_memory(dtype, [2] + q_desc.block_type.shape, q_desc.layout)
    k_smem = gl.allocate_shared_memory(dtype, [STAGES] + k_desc.block_type.shape, k_desc.layout)
    v_smem = gl.allocate_shared_memory(dtype, [STAGES] + v_desc.block_type.shape, v_desc.layout)
    o_smem = gl.allocate_shared_memory(dtype, [2] + o_desc.block_type.shape, o_desc.layout)
    qbar, turn, kready, kempty, vready, vempty = _gl_ws_barriers(STAGES)
    qempty = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    for c in gl.static_range(2):
        mbarrier.init(qempty.index(c), count=1)
    gl.warp_specialize([
        (_gl_ws_consumer, (0, o_desc, q_smem, k_smem, v_smem, o_smem, qbar, qempty, kready, kempty, vready, vempty,
                           turn, Tiles, Slopes, n_blk, n_tiles, n_heads, section, off_q, Tk, hscale, hbias, HALF,
                           BLOCK_N, HEAD_DIM, STAGES, CAUSAL, HAS_ALIBI, HEAD_BIAS, PINGPONG, PERSIST)),
        (_gl_ws_consumer, (1, o_desc, q_smem, k_smem, v_smem, o_smem, qbar, qempty, kready, kempty, vready, vempty,
                           turn, Tiles, Slopes, n_blk, n_tiles, n_heads, section, off_q, Tk, hscale, hbias, HALF,
                           BLOCK_N, HEAD_DIM, STAGES, CAUSAL, HAS_ALIBI, HEAD_BIAS, PINGPONG, PERSIST)),
        (_gl_ws_loader, (q_desc, q_desc, k_desc, v_desc, q_smem, q_smem, k_smem, v_smem, qbar, qempty, kready, kempty,
                         vready, vempty, Tiles, n_blk, n_tiles, n_heads, section, off_q, Tk, GROUP, HALF, BLOCK_N,
                         STAGES, CAUSAL, False, PERSIST))],
                       [4, 1], [REGS, 40])


# dQ in the same warp-specialised form (the 7-product backward's dQ kernel, deterministic): 128 query rows
# per program as two consumer warpgroups, Q and dO tiles per consumer, K and V blocks streamed by a producer warp
# into STAGES-slot rings. Each step, 4 dS_j in hand, a consumer queues S_{j+1} = Q K_{j+1}^T, dP_{j+1} = dO V_{j+1}^T
# and dQ += 4 dS_j K_j in one turn, waits for the first two, computes 4 dS_{j+1} while dQ's product runs, then waits
# for it. K_j's slot is free after dQ's product of block j, V's after dP: with STAGES = 3 each load has a step to land
# (2 measured 8-10% slower, run 94). Bitwise the Triton dQ kernel's result at the bench shapes (run 94).
@gluon.jit
def _gl_ds(s, dp, j, n_full, rows, cols0, hscale, hbias, hslope, op_layout: gl.constexpr, BLOCK_N: gl.constexpr,
           CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr, MASK: gl.constexpr, dtype: gl.constexpr):
    # 4 dS = (1 - a^2) dP of key block j, a = tanh(t) from its S, as the dQ product's register operand; masked
    # entries take a = -1 (p = 0, dS = 0) as _kv_and_p's
    cols = j * BLOCK_N + cols0
    a = _gl_tanh(_gl_half_logits(s, j, rows, cols0, hscale, hbias, hslope, BLOCK_N, CAUSAL, HAS_ALIBI))
    if CAUSAL and MASK:
        if j >= n_full:
            a = gl.where(cols[None, :] <= rows[:, None], a, -1.0)
    return gl.convert_layout(((1.0 - a * a) * dp).to(dtype), op_layout)


@gluon.jit
def _gl_wsdq_step(ds, dq, q, do, k_smem, v_smem, kready, kempty, vready, vempty, turn, c: gl.constexpr, j, r, tr,
                  n_full, rows, cols0, hscale, hbias, hslope, s_zero, op_layout: gl.constexpr, BLOCK_N: gl.constexpr,
                  HEAD_DIM: gl.constexpr, STAGES: gl.constexpr, CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr,
                  HAS_NEXT: gl.constexpr, MASK: gl.constexpr, PINGPONG: gl.constexpr):
    # block j at ring position r, in the program's turn tr (as _gl_ws_step)
    sn = (r + 1) % STAGES
    if HAS_NEXT:
        mbarrier.wait(kready.index(sn), ((r + 1) // STAGES) & 1)
        mbarrier.wait(vready.index(sn), ((r + 1) // STAGES) & 1)
    _gl_ws_turn(turn, c, tr, PINGPONG)
    if HAS_NEXT:
        s_next = warpgroup_mma(q, k_smem.index(sn).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero,
                               use_acc=False, is_async=True)
        dp_next = warpgroup_mma(do, v_smem.index(sn).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero,
                                use_acc=False, is_async=True)
    dq = warpgroup_mma(ds, k_smem.index(r % STAGES).reshape([BLOCK_N, HEAD_DIM]), dq, is_async=True)
    _gl_ws_pass(turn, c, PINGPONG)
    if HAS_NEXT:
        s, dp = warpgroup_mma_wait(num_outstanding=1, deps=(s_next, dp_next))
        mbarrier.arrive(vempty.index(sn), count=1)
        ds_next = _gl_ds(s, dp, j + 1, n_full, rows, cols0, hscale, hbias, hslope, op_layout, BLOCK_N, CAUSAL,
                         HAS_ALIBI, MASK, k_smem.dtype)
    else:
        ds_next = ds
    dq, ds = warpgroup_mma_wait(num_outstanding=0, deps=(dq, ds))
    mbarrier.arrive(kempty.index(r % STAGES), count=1)
    return ds_next, dq


@gluon.jit
def _gl_wsdq_consumer(c: gl.constexpr, dq_desc, q_smem, do_smem, k_smem, v_smem, o_smem, qbar, qempty, kready, kempty,
                      vready, vempty, turn, Tiles, Slopes, n_blk, n_tiles, n_heads, section, off_q, Tk, scale, hscale,
                      hbias, HALF: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr, STAGES: gl.constexpr,
                      CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr, HEAD_BIAS: gl.constexpr, PINGPONG: gl.constexpr,
                      PERSIST: gl.constexpr):
    # per tile as _gl_ws_consumer, with dO's tile beside Q's and dQ's loop
    dtype: gl.constexpr = dq_desc.dtype
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, BLOCK_N, 16])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, HEAD_DIM, 16])
    op_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    q = q_smem.index(c).reshape([HALF, HEAD_DIM])
    do = do_smem.index(c).reshape([HALF, HEAD_DIM])
    cols0 = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, s_layout))
    s_zero = gl.zeros([HALF, BLOCK_N], dtype=gl.float32, layout=s_layout)
    mbarrier.wait(qbar.index(c), 0)
    t = gl.program_id(0)
    if PERSIST:
        t = gl.load(_gl_ws_word(Tiles, c), cache_modifier=".cg")
    it = 0
    base = 0
    while t >= 0:
        b, h, n, m0, n_full, rows, hslope, hb = _gl_ws_tile_rows(t, c, Slopes, n_blk, n_tiles, n_heads, section, off_q,
                                                                 Tk, hbias, HALF, BLOCK_N, CAUSAL, HAS_ALIBI,
                                                                 HEAD_BIAS, gl.SliceLayout(1, s_layout))
        dq = gl.zeros([HALF, HEAD_DIM], dtype=gl.float32, layout=o_layout)
        mbarrier.wait(kready.index(base % STAGES), (base // STAGES) & 1)
        mbarrier.wait(vready.index(base % STAGES), (base // STAGES) & 1)
        _gl_ws_turn(turn, c, base + it, PINGPONG)
        s = warpgroup_mma(q, k_smem.index(base % STAGES).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero,
                          use_acc=False, is_async=True)
        dp = warpgroup_mma(do, v_smem.index(base % STAGES).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero,
                           use_acc=False, is_async=True)
        _gl_ws_pass(turn, c, PINGPONG)
        s, dp = warpgroup_mma_wait(num_outstanding=0, deps=(s, dp))
        mbarrier.arrive(vempty.index(base % STAGES), count=1)
        ds = _gl_ds(s, dp, 0, n_full, rows, cols0, hscale, hb, hslope, op_layout, BLOCK_N, CAUSAL, HAS_ALIBI, True,
                    dtype)
        n_off = n - 1
        if CAUSAL:
            n_off = gl.minimum(gl.maximum(n_full - 1, 0), n - 1)
        for j in range(n_off):
            ds, dq = _gl_wsdq_step(ds, dq, q, do, k_smem, v_smem, kready, kempty, vready, vempty, turn, c, j, base + j,
                                   base + it + j + 1, n_full, rows, cols0, hscale, hb, hslope, s_zero, op_layout,
                                   BLOCK_N, HEAD_DIM, STAGES, CAUSAL, HAS_ALIBI, True, False, PINGPONG)
        if CAUSAL:
            for j in range(n_off, n - 1):
                ds, dq = _gl_wsdq_step(ds, dq, q, do, k_smem, v_smem, kready, kempty, vready, vempty, turn, c, j,
                                       base + j, base + it + j + 1, n_full, rows, cols0, hscale, hb, hslope, s_zero,
                                       op_layout, BLOCK_N, HEAD_DIM, STAGES, CAUSAL, HAS_ALIBI, True, True, PINGPONG)
        if PERSIST:  # Q's and dO's last products are done: the producer may load the next tile's
            mbarrier.arrive(qempty.index(c), count=1)
        ds, dq = _gl_wsdq_step(ds, dq, q, do, k_smem, v_smem, kready, kempty, vready, vempty, turn, c, n - 1,
                               base + n - 1, base + it + n, n_full, rows, cols0, hscale, hb, hslope, s_zero, op_layout,
                               BLOCK_N, HEAD_DIM, STAGES, CAUSAL, HAS_ALIBI, False, True, PINGPONG)
        _gl_ws_out(dq_desc, o_smem, c, dq * (0.25 * scale), b, h, m0)  # (the loop carries 4 dS)
        base += n
        it += 1
        t = -1
        if PERSIST:
            mbarrier.wait(qbar.index(c), it & 1)
            t = gl.load(_gl_ws_word(Tiles, c), cache_modifier=".cg")
    tma.store_wait(0)


@gluon.jit
def _gl_wsdq_kernel(q_desc, k_desc, v_desc, do_desc, dq_desc, Slopes, scale, hscale, hbias, Tq, Tk, off_q, n_heads,
                    section, Tiles, n_tiles, GROUP: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr,
                    HEAD_DIM: gl.constexpr, STAGES: gl.constexpr, CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr,
                    HEAD_BIAS: gl.constexpr, PINGPONG: gl.constexpr, REGS: gl.constexpr, PERSIST: gl.constexpr,
                    num_warps: gl.constexpr):
    HALF: gl.constexpr = BLOCK_M // 2
    n_blk = gl.cdiv(Tq, BLOCK_M)
    dtype: gl.constexpr = q_desc.dtype
    q_smem = gl.allocate_shared_memory(dtype, [2] + q_desc.block_type.shape, q_desc.layout)
    do_smem = gl.allocate_shared_memory(dtype, [2] + do_desc.block_type.shape, do_desc.layout)
    k_smem = gl.allocate_shared_memory(dtype, [STAGES] + k_desc.block_type.shape, k_desc.layout)
    v_smem = gl.allocate_shared_memory(dtype, [STAGES] + v_desc.block_type.shape, v_desc.layout)
    o_smem = gl.allocate_shared_memory(dtype, [2] + dq_desc.block_type.shape, dq_desc.layout)
    qbar, turn, kready, kempty, vready, vempty = _gl_ws_barriers(STAGES)
    qempty = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    for c in gl.static_range(2):
        mbarrier.init(qempty.index(c), count=1)
    gl.warp_specialize([
        (_gl_wsdq_consumer, (0, dq_desc, q_smem, do_smem, k_smem, v_smem, o_smem, qbar, qempty, kready, kempty, vready,
                             vempty, turn, Tiles, Slopes, n_blk, n_tiles, n_heads, section, off_q, Tk, scale, hscale,
                             hbias, HALF, BLOCK_N, HEAD_DIM, STAGES, CAUSAL, HAS_ALIBI, HEAD_BIAS, PINGPONG, PERSIST)),
        (_gl_wsdq_consumer, (1, dq_desc, q_smem, do_smem, k_smem, v_smem, o_smem, qbar, qempty, kready, kempty, vready,
                             vempty, turn, Tiles, Slopes, n_blk, n_tiles, n_heads, section, off_q, Tk, scale, hscale,
                             hbias, HALF, BLOCK_N, HEAD_DIM, STAGES, CAUSAL, HAS_ALIBI, HEAD_BIAS, PINGPONG, PERSIST)),
        (_gl_ws_loader, (q_desc, do_desc, k_desc, v_desc, q_smem, do_smem, k_smem, v_smem, qbar, qempty, kready,
                         kempty, vready, vempty, Tiles, n_blk, n_tiles, n_heads, section, off_q, Tk, GROUP, HALF,
                         BLOCK_N, STAGES, CAUSAL, True, PERSIST))],
        [4, 1], [REGS, 40])

# dK/dV in Gluon, the forward's scheme on the backward's larger half (4 of its 7 matrix products): one
# program per key block (K, V in shared memory, dK, dV in registers), streaming the query blocks that see
# it (Q, dO by TMA, a ring of SLOTS slots). On transposed tiles (keys along rows), each step, P^T_j and
# 4 dS^T_j in hand, queues S^T_{j+1} = K Q_{j+1}^T and dP^T_{j+1} = V dO_{j+1}^T, then dV += P^T_j dO_j and
# dK += 4 dS^T_j Q_j; waits for the first two only and computes P^T_{j+1}, 4 dS^T_{j+1} while the last two
# run; then waits for everything (nothing in flight at the back edge, as in the forward). A query block is
# read in two steps (S^T, dP^T one step before dV, dK), so its slot is free only after the second: with
# three slots the load of block j + 3 has one step to land (at D=128, 64-row blocks, two slots measured
# faster: three would leave room for one program per SM). Same maths and rounding as _bwd_dkdv_kernel's
# loop: bitwise its dK and dV (run 43, H200), which makes the choice a matter of speed only.
# Deterministic (no atomics): the 7-product backward's dQ kernel runs after it. Rows past Tq arrive as zeros
# (dO = 0: no contribution), keys past Tk are clipped on the stores, so only causal diagonal steps mask.

@gluon.jit
def _gl_qdo_load(q_desc, do_desc, q_smem, do_smem, bar, b, h, row, c, pred, SLOTS: gl.constexpr):
    # the query block at `row` (Q and dO) into ring slot c % SLOTS
    s = c % SLOTS
    mbarrier.expect(bar.index(s), q_desc.block_type.nbytes + do_desc.block_type.nbytes, pred=pred)
    _tma_load(q_desc, [b, h, row, 0], bar.index(s), q_smem.index(s), pred=pred)
    _tma_load(do_desc, [b, h, row, 0], bar.index(s), do_smem.index(s), pred=pred)


@gluon.jit
def _gl_pds(sT, dpT, row0, j, n_diag, keys, cols0, hscale, hbias, hslope, op_layout: gl.constexpr,
            CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr, MASK: gl.constexpr, dtype: gl.constexpr):
    # P^T and 4 dS^T of the query block at row0 (relative to Tq; + off_q absolute), as _bwd_dkdv_inner makes them;
    # MASK: block j may meet the diagonal
    rows = row0 + cols0
    tT = hscale * sT + hbias
    if HAS_ALIBI:
        dist = (rows[None, :] - keys[:, None]).to(gl.float32)
        if not CAUSAL:
            dist = gl.abs(dist)
        tT = tT - hslope * dist
    aT = _gl_tanh(tT)
    if CAUSAL and MASK:
        if j < n_diag:
            aT = gl.where(rows[None, :] >= keys[:, None], aT, -1.0)
    pT = gl.convert_layout((0.5 * aT + 0.5).to(dtype), op_layout)
    dsT = gl.convert_layout(((1.0 - aT * aT) * dpT).to(dtype), op_layout)
    return pT, dsT


@gluon.jit
def _gl_kv(ring, j, HEAD_DIM: gl.constexpr):
    # K or V (a ring of one slot) as an MMA operand. At D=128 its slot index is j >> 30, always 0 but not known to
    # be: that keeps the 8 wgmma descriptors of each (16 registers) from being hoisted out of the query loop. The
    # kernel is at the 255-register cap there, and Triton 3.9, which hoists them, spills 80-160 bytes in the loop;
    # recomputed per step they cost a few integer adds (250 registers, no spill, with Triton 3.6, 3.8 and 3.9)
    i = j >> 30 if HEAD_DIM > 64 else 0
    return ring.index(i).reshape([ring.shape[3], HEAD_DIM])


@gluon.jit
def _gl_bwd_step(pT, dsT, dk, dv, k, v, q_smem, do_smem, bar, q_desc, do_desc, b, h, j, c, n, n_diag, m_lo, keys,
                 cols0, hscale, hbias, hslope, st_zero, op_layout: gl.constexpr, BLOCK_M: gl.constexpr,
                 HEAD_DIM: gl.constexpr, SLOTS: gl.constexpr, CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr,
                 HAS_NEXT: gl.constexpr, MASK: gl.constexpr):
    # query block j (ring counter c), its P^T, 4 dS^T already computed; see the section's comment
    s = c % SLOTS
    k = _gl_kv(k, j, HEAD_DIM)
    v = _gl_kv(v, j, HEAD_DIM)
    if HAS_NEXT:
        s1 = (c + 1) % SLOTS
        mbarrier.wait(bar.index(s1), ((c + 1) // SLOTS) & 1)
        sT_n = warpgroup_mma(k, q_smem.index(s1).reshape([BLOCK_M, HEAD_DIM]).permute((1, 0)), st_zero,
                             use_acc=False, is_async=True)
        dpT_n = warpgroup_mma(v, do_smem.index(s1).reshape([BLOCK_M, HEAD_DIM]).permute((1, 0)), st_zero,
                              use_acc=False, is_async=True)
    dv = warpgroup_mma(pT, do_smem.index(s).reshape([BLOCK_M, HEAD_DIM]), dv, is_async=True)
    dk = warpgroup_mma(dsT, q_smem.index(s).reshape([BLOCK_M, HEAD_DIM]), dk, is_async=True)
    if HAS_NEXT:
        sT, dpT = warpgroup_mma_wait(num_outstanding=2, deps=(sT_n, dpT_n))
        pT_n, dsT_n = _gl_pds(sT, dpT, m_lo + (j + 1) * BLOCK_M, j + 1, n_diag, keys, cols0, hscale, hbias, hslope,
                              op_layout, CAUSAL, HAS_ALIBI, MASK, k.dtype)
    else:
        pT_n = pT
        dsT_n = dsT
    # dV, dK of block j done (their register operands kept alive until here): its slot takes block j + SLOTS
    dv, dk, pT, dsT = warpgroup_mma_wait(num_outstanding=0, deps=(dv, dk, pT, dsT))
    _gl_qdo_load(q_desc, do_desc, q_smem, do_smem, bar, b, h, m_lo + (j + SLOTS) * BLOCK_M, c + SLOTS,
                 j + SLOTS < n, SLOTS)
    return pT_n, dsT_n, dk, dv


@gluon.jit
def _gl_qkn_rows(XK, RK, GK, b, hk, offs_n, offs_d, nmask, stride_xb, stride_xh, stride_xm, stride_rb, stride_rm):
    # QK-norm's epilogue operands (QKNORM): the block's normed k rows, their 1/rms and k's gain
    rk = gl.load(RK + b.to(gl.int64) * stride_rb + hk + offs_n.to(gl.int64) * stride_rm, mask=nmask, other=0.0)
    xk = gl.load(XK + b.to(gl.int64) * stride_xb + hk.to(gl.int64) * stride_xh
                 + offs_n[:, None].to(gl.int64) * stride_xm + offs_d[None, :], mask=nmask[:, None], other=0.0)
    return rk, xk, gl.load(GK + offs_d).to(gl.float32)


@gluon.jit
def _gl_dkdv_kernel(q_desc, k_desc, v_desc, do_desc, DK, DV, Slopes, scale, hscale, hbias, Tq, Tk, off_q, n_heads,
                    section,
                    stride_dkb, stride_dkh, stride_dkn, stride_dvb, stride_dvh, stride_dvn,
                    XK, RK, GK, DG, stride_xb, stride_xh, stride_xm, stride_rb, stride_rm,
                    GROUP: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr,
                    SLOTS: gl.constexpr, CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr, HEAD_BIAS: gl.constexpr,
                    QKNORM: gl.constexpr, LPT: gl.constexpr, num_warps: gl.constexpr):
    pid_n, hk, b = _tile(gl.cdiv(Tk, BLOCK_N), n_heads, section, LPT)
    start_n = pid_n * BLOCK_N
    dtype: gl.constexpr = q_desc.dtype
    st_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                        instr_shape=[16, BLOCK_M, 16])
    acc_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                         instr_shape=[16, HEAD_DIM, 16])
    op_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=acc_layout, k_width=2)
    k_smem = gl.allocate_shared_memory(dtype, [1] + k_desc.block_type.shape, k_desc.layout)  # (see _gl_kv)
    v_smem = gl.allocate_shared_memory(dtype, [1] + v_desc.block_type.shape, v_desc.layout)
    q_smem = gl.allocate_shared_memory(dtype, [SLOTS] + q_desc.block_type.shape, q_desc.layout)
    do_smem = gl.allocate_shared_memory(dtype, [SLOTS] + do_desc.block_type.shape, do_desc.layout)
    kvbar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    bar = gl.allocate_shared_memory(gl.int64, [SLOTS, 1], mbarrier.MBarrierLayout())
    mbarrier.init(kvbar, count=1)
    for i in gl.static_range(SLOTS):
        mbarrier.init(bar.index(i), count=1)
    mbarrier.expect(kvbar, k_desc.block_type.nbytes + v_desc.block_type.nbytes)
    _tma_load(k_desc, [b, hk, start_n, 0], kvbar, k_smem.index(0))
    _tma_load(v_desc, [b, hk, start_n, 0], kvbar, v_smem.index(0))
    # the query rows that see this key block (_bwd_dkdv_kernel's bounds): steps from m_lo, the first
    # n_diag of them (causal) masked; rows past Tq come as zeros
    if CAUSAL:
        m_lo = gl.minimum(gl.maximum(start_n - off_q, 0), Tq)
        m_full = gl.minimum(gl.maximum(start_n + BLOCK_N - 1 - off_q, m_lo), Tq)
        n_diag = gl.cdiv(m_full - m_lo, BLOCK_M)
    else:
        m_lo = 0
        n_diag = 0
    n = gl.cdiv(Tq - m_lo, BLOCK_M)
    # the first head's first query blocks: issued now, so that they travel with K and V instead of after them
    for i in gl.static_range(SLOTS):
        _gl_qdo_load(q_desc, do_desc, q_smem, do_smem, bar, b, hk * GROUP, m_lo + i * BLOCK_M, i, i < n, SLOTS)
    keys = start_n - off_q + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, st_layout))  # as query rows (r at r + off_q)
    cols0 = gl.arange(0, BLOCK_M, layout=gl.SliceLayout(0, st_layout))
    st_zero = gl.zeros([BLOCK_N, BLOCK_M], dtype=gl.float32, layout=st_layout)
    dk = gl.zeros([BLOCK_N, HEAD_DIM], dtype=gl.float32, layout=acc_layout)
    dv = gl.zeros([BLOCK_N, HEAD_DIM], dtype=gl.float32, layout=acc_layout)
    k = k_smem.index(0).reshape([BLOCK_N, HEAD_DIM])
    v = v_smem.index(0).reshape([BLOCK_N, HEAD_DIM])
    offs_n = start_n + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, acc_layout))
    offs_d = gl.arange(0, HEAD_DIM, layout=gl.SliceLayout(0, acc_layout))
    nmask = offs_n < Tk
    # QK-norm's epilogue operands, loaded while the loop runs (run 54: the fused QK-norm op 1.9-2.4% faster); not
    # with grouped heads, whose longer loop would hold them in registers it needs (it spills: the sm_90 compile test)
    PREFETCH: gl.constexpr = QKNORM and GROUP == 1
    if PREFETCH:
        rk, xk, gk = _gl_qkn_rows(XK, RK, GK, b, hk, offs_n, offs_d, nmask, stride_xb, stride_xh, stride_xm,
                                  stride_rb, stride_rm)
    mbarrier.wait(kvbar, 0)
    for g in range(GROUP):
        h = hk * GROUP + g
        hslope = 0.0
        if HAS_ALIBI:
            hslope = 0.5 * gl.load(Slopes + h)
        hb = hbias
        if HEAD_BIAS:
            hb = 0.5 * gl.load(Slopes + n_heads * GROUP + h)
        c0 = g * n  # ring counter of this head's first block
        if n > 0:
            if g > 0:  # (the first head's: issued above)
                for i in gl.static_range(SLOTS):
                    _gl_qdo_load(q_desc, do_desc, q_smem, do_smem, bar, b, h, m_lo + i * BLOCK_M, c0 + i, i < n, SLOTS)
            mbarrier.wait(bar.index(c0 % SLOTS), (c0 // SLOTS) & 1)
            sT = warpgroup_mma(k, q_smem.index(c0 % SLOTS).reshape([BLOCK_M, HEAD_DIM]).permute((1, 0)), st_zero,
                               use_acc=False, is_async=True)
            dpT = warpgroup_mma(v, do_smem.index(c0 % SLOTS).reshape([BLOCK_M, HEAD_DIM]).permute((1, 0)), st_zero,
                                use_acc=False, is_async=True)
            sT, dpT = warpgroup_mma_wait(num_outstanding=0, deps=(sT, dpT))
            pT, dsT = _gl_pds(sT, dpT, m_lo, 0, n_diag, keys, cols0, hscale, hb, hslope, op_layout, CAUSAL,
                              HAS_ALIBI, True, dtype)
            # Step j makes P^T, dS^T of block j + 1, which would need the causal mask only before n_diag; with
            # query blocks at least as long as key blocks n_diag <= 1, so the loop has no mask (in one loop with a
            # run-time check its compares and predicated selects were issued at every step: 508 -> 414
            # instructions per step at D=64, Triton 3.6)
            gl.static_assert(BLOCK_M >= BLOCK_N - 1, "only the first query block may meet the diagonal")
            for j in range(n - 1):
                pT, dsT, dk, dv = _gl_bwd_step(pT, dsT, dk, dv, k_smem, v_smem, q_smem, do_smem, bar, q_desc, do_desc,
                                               b, h, j, c0 + j, n, n_diag, m_lo, keys, cols0, hscale, hb, hslope,
                                               st_zero, op_layout, BLOCK_M, HEAD_DIM, SLOTS, CAUSAL, HAS_ALIBI, True,
                                               False)
            pT, dsT, dk, dv = _gl_bwd_step(pT, dsT, dk, dv, k_smem, v_smem, q_smem, do_smem, bar, q_desc, do_desc, b,
                                           h, n - 1, c0 + n - 1, n, n_diag, m_lo, keys, cols0, hscale, hb, hslope,
                                           st_zero, op_layout, BLOCK_M, HEAD_DIM, SLOTS, CAUSAL, HAS_ALIBI, False,
                                           False)
    mbarrier.invalidate(kvbar)
    for i in gl.static_range(SLOTS):
        mbarrier.invalidate(bar.index(i))
    gl.store(DV + b.to(gl.int64) * stride_dvb + hk.to(gl.int64) * stride_dvh + offs_n[:, None].to(gl.int64) * stride_dvn
             + offs_d[None, :], dv.to(dtype), mask=nmask[:, None])
    dk = dk * (0.25 * scale)  # the loop carries 4 dS
    if QKNORM:  # _qkn_backward: dK of the normed k -> of the raw k; this block's share of k's gain gradient
        if not PREFETCH:
            rk, xk, gk = _gl_qkn_rows(XK, RK, GK, b, hk, offs_n, offs_d, nmask, stride_xb, stride_xh, stride_xm,
                                      stride_rb, stride_rm)
        xh = xk.to(gl.float32) * (1.0 / gk)[None, :]  # k's rows are x r g
        cr = gl.sum(dk * xh * gk[None, :], axis=1) / HEAD_DIM
        gl.store(DG + ((b * n_heads + hk) * gl.cdiv(Tk, BLOCK_N) + pid_n).to(gl.int64) * HEAD_DIM + offs_d,
                 gl.sum(dk * xh, axis=0))
        dk = rk[:, None] * (dk * gk[None, :] - xh * cr[:, None])
    gl.store(DK + b.to(gl.int64) * stride_dkb + hk.to(gl.int64) * stride_dkh + offs_n[:, None].to(gl.int64) * stride_dkn
             + offs_d[None, :], dk.to(dtype), mask=nmask[:, None])


# ----------------------------------------------------------------------------------------------
# Launch configurations
# ----------------------------------------------------------------------------------------------

# (block_m, block_n, num_stages, num_warps). Hopper, after Triton's fused-attention tutorial: big
# query tiles in the forward; long key tiles with short query steps for dK/dV, the mirror for dQ.
_FWD_CONFIGS = {
    "small": [(128, 64, 3, 4), (128, 64, 4, 8), (128, 128, 3, 8), (64, 64, 4, 4), (128, 64, 3, 8),
              (128, 128, 2, 8), (64, 64, 3, 4)],  # 16-bit D <= 128
    # 16-bit D of 129-256 (padded to 256); (64, 32, 2, 4) is the one that fits the 99 KB of shared memory per
    # block of consumer GPUs (sm_86, sm_89, sm_120) with pointer loads (tests/test_sm90_compile.py)
    "large": [(64, 64, 2, 4), (128, 64, 2, 8), (64, 32, 3, 4), (64, 32, 2, 4)],
    "xl": [(32, 32, 1, 4)],  # fp32
}
_DKDV_CONFIGS = {  # (BLOCK_M1, BLOCK_N1, ...); with the atomic dQ, D=128 fits in registers only
    # with 8 warps and BLOCK_M1 * BLOCK_N1 <= 4096 (the sm_90 compile test shows the spills)
    "small": [(64, 128, 3, 8), (32, 128, 3, 8), (64, 64, 3, 4), (32, 64, 4, 4), (64, 128, 2, 8),
              (64, 64, 3, 8), (32, 64, 3, 8), (16, 128, 3, 8)],
    "large": [(32, 64, 2, 4), (32, 32, 2, 4), (16, 32, 2, 4)],
    "xl": [(16, 32, 1, 4)],
}
_DQ_CONFIGS = {  # (BLOCK_M2, BLOCK_N2, ...)
    "small": [(128, 32, 5, 4), (128, 64, 3, 8), (64, 64, 3, 4), (128, 64, 4, 4), (64, 32, 4, 4),
              (128, 64, 2, 8)],
    "large": [(64, 32, 2, 4), (64, 64, 2, 8), (32, 32, 2, 4)],
    "xl": [(32, 16, 1, 4)],
}
_TABLES = {"fwd": _FWD_CONFIGS, "dkdv": _DKDV_CONFIGS, "dq": _DQ_CONFIGS}
_NAMES = {"fwd": ("BLOCK_M", "BLOCK_N"), "dkdv": ("BLOCK_M1", "BLOCK_N1"), "dq": ("BLOCK_M2", "BLOCK_N2")}
_DEFAULT = 1  # the config of each table used when autotuning is off
# Interpreter: one config (autotune with several fails there) with unequal blocks so that the
# masked/unmasked loop splits are exercised by the CPU tests.
_INTERP_CFG = {"fwd": (32, 16), "dkdv": (16, 32), "dq": (32, 16)}


# The kernels' tiles by Hopper's tensor-memory-accelerator copy engine (TMA): faster than pointer loads at
# the same tiles (H200, BENCHMARKS.md), and with them a 64 x 64 forward tile pays at head dim 128.
USE_TMA = True  # False: pointer loads everywhere (the portable path, which every other GPU takes)


@functools.lru_cache(maxsize=None)
def _capability(device):
    return torch.cuda.get_device_capability(device)


def _tma_ok(*ts):
    """Whether the kernels can take tensor descriptors for these (B, H, T, D) tensors: a Triton that has
    them, Hopper or newer (or the interpreter, which runs them too), 16-bit (fp32 keeps its exact FMA
    path), a head dim that is a power of two (the tile is the whole row), 16-byte aligned storage.
    The varlen op keeps pointer loads (descriptors there are not built nor measured)."""
    t = ts[0]
    D = t.shape[-1]
    if not USE_TMA or _HIP or TensorDescriptor is None or D < 16 or D & (D - 1):
        return False
    if not _INTERPRET and (t.dtype == torch.float32 or not t.is_cuda or _capability(t.device)[0] < 9):
        return False
    return all(x.data_ptr() % 16 == 0 and all(s * x.element_size() % 16 == 0 for s in x.stride()[:-1]) for x in ts)


# The Gluon forward (_gl_fwd_kernel) where it measured faster than _fwd_kernel on an H200 (BENCHMARKS.md: runs 36-37,
# 1.08x and 1.12x at head dim 128; run 49, at 64: 1.10x at T=1024, 1.00-1.01x at 4096 and 8192; its 64 x 128 and
# two-warpgroup 128-row tiles were slower): head dim -> (BLOCK_M, BLOCK_N).
GLUON_FWD = {64: (64, 64), 128: (64, 64)}
# The Gluon dK/dV (_gl_dkdv_kernel), head dim -> (BLOCK_M, BLOCK_N, SLOTS, num_warps): the fastest of five tiles
# each in run 43 (H200; the whole backward 1.01-1.03x at D=64, 1.04x at 128, against the Triton dK/dV)
GLUON_DKDV = {64: (64, 64, 3, 4), 128: (64, 64, 2, 4)}
USE_GLUON = True  # False: the Triton kernels everywhere
# The warp-specialised Gluon forward (_gl_ws_fwd_kernel) in place of _gl_fwd_kernel, head dim -> (BLOCK_M, BLOCK_N,
# STAGES, PINGPONG, consumer registers, PERSIST), where Gluon has warp_specialize. Run 94 (H100, BENCHMARKS.md): 1.08x
# and 1.23x _gl_fwd_kernel at head dim 128 (T = 2048, 8192), ping-pong 1-3% slower than without; 0.67-0.95x at 64.
# PERSIST (a program per SM, _ws_grid), run 100: 1.08-1.10x one program per tile at T=2048, 1.05-1.12x at 8192.
GLUON_FWD_WS = {128: (128, 128, 2, False, 232, True)}
# The warp-specialised Gluon dQ (_gl_wsdq_kernel) in place of the Triton dQ kernel, same tuple: run 94, forward +
# backward 1.05x at head dim 128, 0.91-0.98x at 64 (ping-pong level); PERSIST, run 102: forward + backward 0.7-4.5%
# faster at head dim 128. Without QK-norm (its epilogue is Triton's).
GLUON_DQ_WS = {128: (128, 64, 3, False, 232, True)}


def _gluon_ok(q, k, v, o, table=None):
    """Whether a Gluon kernel runs for these (B, H, T, D) tensors (the caller rules out dropout, windows,
    packed sequences and the exact sigmoid): a Triton with Gluon, a head dim of its table (GLUON_FWD by
    default), what tensor descriptors need (_tma_ok: 16-bit, CUDA, Hopper or newer, aligned), and Hopper
    itself (wgmma is sm_90's)."""
    return (USE_GLUON and GluonDescriptor is not None and not _INTERPRET
            and q.shape[-1] in (GLUON_FWD if table is None else table)
            and _tma_ok(q, k, v, o) and _capability(q.device)[0] == 9)


def _gluon_off(err):
    global USE_GLUON
    USE_GLUON = False
    warnings.warn(f"flashsigmoid: the Gluon kernels do not compile with Triton {triton.__version__} "
                  f"({str(err).strip().splitlines()[-1][:200]}); the Triton kernels run instead")


def _gl_desc(t, rows):
    """A Gluon tensor descriptor over (B, H, T, D) t whose box is `rows` rows of one head."""
    box = [1, 1, rows, t.shape[-1]]
    return GluonDescriptor.from_tensor(t, box, gl.NVMMASharedLayout.get_default_for(
        box, gl.bfloat16 if t.dtype == torch.bfloat16 else gl.float16))


def _tma_blocks(nargs):
    """Autotune pre-hook (and fixed-config launch): a descriptor's box is its tile, the query block for
    the query side (Q, O, DO), the key block for the key side (K, V)."""
    m = nargs.get("BLOCK_M", nargs.get("BLOCK_M1", nargs.get("BLOCK_M2")))
    n = nargs.get("BLOCK_N", nargs.get("BLOCK_N1", nargs.get("BLOCK_N2")))
    for name in ("Q", "K", "V", "O", "DO"):
        if TensorDescriptor is not None and isinstance(nargs.get(name), TensorDescriptor):
            nargs[name].block_shape = [1, 1, m if name in ("Q", "O", "DO") else n, nargs["HEAD_DIM"]]


def _desc(t):
    """A tensor descriptor over (B, H, T, D) t, its strides as they are; its box is set per config (_tma_blocks)."""
    return TensorDescriptor.from_tensor(t, [1, 1, 16, t.shape[-1]])


def _itemsize(x):
    return (x.base if TensorDescriptor is not None and isinstance(x, TensorDescriptor) else x).element_size()


def _size_class(head_dim, itemsize):
    # shared memory per tile row grows with D * element size: pick the table whose tiles fit.
    # fp32 goes through FMA dots (tf32 off), whose big unrolled tiles compile slowly: small tiles.
    if itemsize >= 4:
        return "xl"
    return "small" if head_dim * itemsize <= 256 else "large"


def _autotuned(kind, fn):
    names = _NAMES[kind]

    def prune(configs, named_args, **kwargs):  # only the table that fits this head dim and dtype
        d = kwargs.get("HEAD_DIM", named_args.get("HEAD_DIM"))
        wanted = set(_TABLES[kind][_size_class(d, _itemsize(named_args["Q"]))])
        return [c for c in configs
                if (c.kwargs[names[0]], c.kwargs[names[1]], c.num_stages, c.num_warps) in wanted]
    configs = [triton.Config({names[0]: bm, names[1]: bn}, num_stages=s, num_warps=w, pre_hook=_tma_blocks)
               for bm, bn, s, w in dict.fromkeys(c for table in _TABLES[kind].values() for c in table)]
    key = ["TQ_KEY", "TK_KEY", "HEAD_DIM", "D", "CAUSAL", "HAS_ALIBI", "GROUP", "FAST", "HAS_DROPOUT", "HEAD_BIAS",
           "HAS_WINDOW", "VARLEN", "TMA"]
    if kind == "fwd":
        return triton.autotune(configs, key=key, prune_configs_by={"early_config_prune": prune})(fn)
    # trial runs add into the dQ buffer, and with other block sizes leave QK-norm's gain partials in
    # other rows of DG: zero both before each and after the last
    return triton.autotune(configs, key=key + ["QKNORM"] + (["ATOMIC_DQ"] if kind == "dkdv" else []),
                           reset_to_zero=["DQ", "DG"] if kind == "dkdv" else ["DG"],
                           prune_configs_by={"early_config_prune": prune})(fn)


# L2 bytes for one section of the launch order's streamed tiles (_tile): FA3's figure for Hopper (50 MB of L2)
L2_SECTION_BYTES = 32 << 20
# Shortest sequence (the grid's axis: queries for fwd and dQ, keys for dK/dV) launched in sections; shorter
# ones go one (batch, head) pair after another, longest block first within each (sections of one pair)
LPT_MIN_LEN = 8192


def _grid(n_blk, heads, batch, n):
    """The launch grid of _tile's order for n (the grid's axis): 1-D in sections from LPT_MIN_LEN on, else
    (blocks, heads, batch)."""
    return (n_blk * heads * batch,) if n >= LPT_MIN_LEN else (n_blk, heads, batch)


def _section(pairs, streamed, n):
    """(batch, head) pairs per section of the launch order: as many as fit their streamed tiles in
    L2_SECTION_BYTES, in sections of equal width; one below LPT_MIN_LEN."""
    if n < LPT_MIN_LEN:
        return 1
    return _cdiv(pairs, _cdiv(pairs, max(1, L2_SECTION_BYTES // max(streamed, 1))))


_KERNELS = {"fwd": _fwd_kernel, "dkdv": _bwd_dkdv_kernel, "dq": _bwd_dq_kernel}
_TUNED = {} if _INTERPRET else {kind: _autotuned(kind, fn) for kind, fn in _KERNELS.items()}


def _launch(kind, n, heads, batch, streamed, args, meta):
    """kernel[grid](*args, **constexprs): autotuned, or one fixed config (interpreter, AUTOTUNE off).
    One program per block of n (queries for fwd and dQ, keys for dK/dV), head and batch row, in _tile's
    order; `streamed`: the bytes per (batch, head) pair that its loop streams (_section)."""
    along = _NAMES[kind][1 if kind == "dkdv" else 0]
    meta = {**meta, "n_heads": heads, "section": _section(heads * batch, streamed, n), "LPT": n >= LPT_MIN_LEN}

    def grid(blocks):
        return _grid(triton.cdiv(n, blocks[along]), heads, batch, n)

    def run(bm, bn, **cfg):
        blocks = dict(zip(_NAMES[kind], (bm, bn)))
        _tma_blocks(dict(zip(_KERNELS[kind].arg_names, args), **meta, **blocks))
        _KERNELS[kind][grid(blocks)](*args, **meta, **blocks, **cfg)
    if AUTOTUNE and not _INTERPRET:  # (the autotuner skips tiles that do not fit the GPU's shared memory)
        _TUNED[kind][grid](*args, **meta)
    elif _INTERPRET:
        run(*_INTERP_CFG[kind])
    else:  # entry _DEFAULT of the table; where its tiles need more shared memory than the GPU has (99 KB per
        # block on consumer cards), the launch fails before it starts: then the smaller ones, the first that fits kept
        size = _size_class(meta["HEAD_DIM"], _itemsize(args[0]))
        table = _TABLES[kind][size]
        first = table[min(_DEFAULT, len(table) - 1)]
        order = [first] + sorted((c for c in table if c != first), key=lambda c: c[0] * c[1] * c[2])
        for c in order[order.index(_FITS.get((kind, size, first), first)):]:
            try:
                run(c[0], c[1], num_stages=c[2], num_warps=c[3])
            except OutOfResources:
                if c == order[-1]:
                    raise
                continue
            _FITS[(kind, size, first)] = c
            return


_FITS = {}  # (kind, size class, entry _DEFAULT): the table entry that the fixed-config launch fits the GPU with


# ----------------------------------------------------------------------------------------------
# Host side: one custom op per direction (opaque to torch.compile, so no graph break), autograd
# registered on the forward
# ----------------------------------------------------------------------------------------------

def _bucket(n):  # the next power of two (autotune key buckets, decode tiles)
    return 1 << max(0, (int(n) - 1).bit_length())


def _meta(H, Hkv, D, dtype, causal, has_alibi, exact, has_dropout=False, has_window=False, varlen=False,
          head_bias=False):
    """The kernels' constexprs. Tiles are HEAD_DIM wide: D padded to a power of two (at least 16, the
    tensor cores' smallest k), the padding masked on loads and stores. HAS_DROPOUT=False compiles the
    dropout mask away."""
    return dict(GROUP=H // Hkv, HEAD_DIM=max(16, triton.next_power_of_2(D)), D=D, CAUSAL=bool(causal),
                HAS_ALIBI=bool(has_alibi),
                FAST=not (exact or _INTERPRET or _HIP), UPCAST=_INTERPRET,
                ROUND_F16=_INTERPRET and dtype == torch.float16,
                DOT_PREC="ieee" if dtype == torch.float32 else "tf32", HAS_DROPOUT=bool(has_dropout),
                HAS_WINDOW=bool(has_window), VARLEN=bool(varlen), HEAD_BIAS=bool(head_bias))


def _head_bias(alibi):
    """A bias per head rides in `alibi` as its second row: (2, H) = [slopes (0 without ALiBi), biases]."""
    return alibi is not None and alibi.dim() == 2


def _dropout_args(dropout_p, seed, fallback):
    """The kernels' dropout arguments, by keyword (they close the signatures): without dropout the
    seed pointer is never read, so any tensor (`fallback`) stands in for it."""
    return dict(Seed=seed if seed is not None else fallback, drop_p=float(dropout_p),
                drop_scale=1.0 / (1.0 - dropout_p))


def _window_args(wl, wr, causal, Tq, Tk):
    """The kernels' run-time window bounds WL, WR (-1 = unlimited becomes a bound no row reaches) and
    whether there is a window at all. Causal rows see no key right of them: WR = 0."""
    big = Tq + Tk
    has = wl >= 0 or (wr >= 0 and not causal)
    return (min(wl, big) if wl >= 0 else big, 0 if causal else (min(wr, big) if wr >= 0 else big)), has


def _seq_args(cu_q, cu_k):
    """The kernels' CuQ, CuK, n_seq and SEARCH (binary search steps). Dense calls pass any tensor as
    the (never read) cumulative lengths."""
    n_seq = cu_q.numel() - 1
    return cu_q, cu_k, n_seq, max(1, n_seq.bit_length())


def _atomic_dq(deterministic, Tk, tma):
    """Whether the backward sums dQ with atomic adds in the dK/dV kernel (else: the dQ kernel); tma:
    whether the kernels take tensor descriptors (_tma_ok)."""
    return not deterministic and Tk >= (ATOMIC_DQ_MIN_LEN_TMA if tma else ATOMIC_DQ_MIN_LEN)


def _qkn_args(qkn, T, xq, xk):
    """The backward kernels' QK-norm arguments. qkn: None, or (r, gq, gk, nh, nkv) to end them in QK-norm's
    backward (QKNORM): xq, xk, the normed heads attended with, are then (B, nh|nkv, T, hs) views of one packed
    projection-shaped tensor (one set of strides), r (B * T * (nh + nkv),) fp32 the raw rows' 1/rms laid out as
    (B, T, nh + nkv) (qknorm.py's forward kernel writes both), gq, gk the gains (nonzero: the kernels divide by
    them). Without it the pointers are never read: xq stands in for them."""
    if qkn is None:
        f = xq
        return dict(XQ=f, XK=f, RQ=f, RK=f, GQ=f, GK=f, stride_xb=0, stride_xh=0, stride_xm=0, stride_rb=0,
                    stride_rm=0, QKNORM=False)
    r, gq, gk, nh, nkv = qkn
    assert xq.stride()[:3] == xk.stride()[:3] and xq.stride(3) == 1
    return dict(XQ=xq, XK=xk, RQ=r, RK=r[nh:], GQ=gq, GK=gk, stride_xb=xq.stride(0), stride_xh=xq.stride(1),
                stride_xm=xq.stride(2), stride_rb=T * (nh + nkv), stride_rm=nh + nkv, QKNORM=True)


def _empty_like(t):
    """An empty tensor shaped like t (B, H, T, D) in t's memory order: (B, T, H, D) memory when t is a
    view of it (the model's heads split off a projection), else contiguous. Returning outputs and
    gradients in their inputs' layout spares the caller a transpose copy each way, as cuDNN does."""
    B, H, T, D = t.shape
    if t.stride(1) < t.stride(2):
        return t.new_empty(B, T, H, D).transpose(1, 2)
    return t.new_empty(B, H, T, D)


def _lastdim_contig(t):
    return t if t.stride(-1) == 1 else t.contiguous()


def _strides(*ts):
    return [s for t in ts for s in t.stride()[:3]]


@torch.library.custom_op("flashsigmoid::fwd", mutates_args=())
def _fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, alibi: Optional[torch.Tensor],
         causal: bool, bias: float, scale: float, exact: bool, deterministic: bool,
         dropout_p: float = 0.0, seed: Optional[torch.Tensor] = None,
         wl: int = -1, wr: int = -1) -> torch.Tensor:
    return _fwd_impl(q, k, v, alibi, causal, bias, scale, exact, dropout_p, seed, wl, wr)


def _fwd_impl(q, k, v, alibi, causal, bias, scale, exact, dropout_p, seed, wl, wr):
    """The forward op's body, also called by qknorm.py's fused op (one dispatch fewer)."""
    o = _empty_like(q)
    q, k, v = (_lastdim_contig(t) for t in (q, k, v))
    # decoding: the split-K kernel fills the GPU (section Decoding below); it has no dropout (inference
    # has none) and no window, so a short query with dropout (e.g. a training step on short rows) or
    # a window takes the prefill kernel, whose key loop reads the window's blocks only
    if q.shape[2] <= DECODE_MAX_TQ and dropout_p == 0.0 and not _window_args(wl, wr, causal, q.shape[2], k.shape[2])[1]:
        _decode_fwd(q, k, v, o, alibi, causal, bias, scale, exact)
        return o
    _fwd_launch(q, k, v, o, alibi, causal, bias, scale, exact, dropout_p, seed, wl, wr)
    return o


def _fwd_launch(q, k, v, o, alibi, causal, bias, scale, exact, dropout_p, seed, wl, wr, seqs=None):
    """The forward kernel over (B, H, T, D) q, k, v, o (last dims contiguous). seqs: None, or (cu_q, cu_k,
    max_q, max_k) for packed sequences (the (1, H, total, D) views of the varlen op)."""
    B, H, Tq, D = q.shape
    Hkv, Tk = k.shape[1], k.shape[2]
    slopes = alibi if alibi is not None else q  # never read without ALiBi
    window, has_window = _window_args(wl, wr, causal, Tq, Tk)
    kv = 2 * Tk * D * k.element_size() // (H // Hkv)  # the K, V bytes a (batch, head) pair streams
    gluon = seqs is None and not has_window and dropout_p == 0.0 and not exact
    ws = gluon and D in GLUON_FWD_WS and hasattr(gl, "warp_specialize") and _gluon_ok(q, k, v, o, GLUON_FWD_WS)
    if ws or (gluon and _gluon_ok(q, k, v, o)):
        if ws:  # the warp-specialised kernel: two consumers of BLOCK_M / 2 rows each; a 1-D grid in _tile's order,
            # or (persistent) a program per SM that takes the tiles in that order from a counter
            bm, bn, stages, pingpong, regs, *persist = GLUON_FWD_WS[D]
            n_tiles = triton.cdiv(Tq, bm) * H * B
            grid, tiles = _ws_grid(q, n_tiles, persist)
            kernel, rows, args = _gl_ws_fwd_kernel, bm // 2, (tiles, n_tiles)
            extra = dict(STAGES=stages, PINGPONG=bool(pingpong), REGS=regs, PERSIST=bool(persist and persist[0]))
        else:
            (bm, bn), kernel, extra = GLUON_FWD[D], _gl_fwd_kernel, {"LPT": Tq >= LPT_MIN_LEN}
            rows, args, grid = bm, (), _grid(triton.cdiv(Tq, bm), H, B, Tq)
        descs = [_gl_desc(t, rows if t is q or t is o else bn) for t in (q, k, v, o)]
        try:
            kernel[grid](
                *descs, slopes, 0.5 * scale, 0.5 * bias, Tq, Tk, Tk - Tq, H, _section(H * B, kv, Tq), *args,
                GROUP=H // Hkv, BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D, CAUSAL=bool(causal), HAS_ALIBI=alibi is not None,
                HEAD_BIAS=_head_bias(alibi), num_warps=4, **extra)
            return
        except CompilationError as e:  # a Triton whose Gluon API has moved on: say so, keep _fwd_kernel
            _gluon_off(e)
    cu_q, cu_k, max_q, max_k = seqs if seqs is not None else (q, q, Tq, Tk)
    tma = seqs is None and _tma_ok(q, k, v, o)  # (not the varlen op: see _tma_ok)
    tiles = [_desc(t) if tma else t for t in (q, k, v, o)]
    _launch("fwd", Tq, H, B, kv,
            (*tiles, slopes, 0.5 * scale, 0.5 * bias, Tq, Tk, Tk - Tq if seqs is None else 0,
             *_strides(q, k, v, o), _bucket(max_q), _bucket(max_k), *window, *_seq_args(cu_q, cu_k)),
            {**_meta(H, Hkv, D, q.dtype, causal, alibi is not None, exact, dropout_p > 0, has_window=has_window,
                     varlen=seqs is not None, head_bias=_head_bias(alibi)),
             **_dropout_args(dropout_p, seed, q), "TMA": tma})


@_fwd.register_fake
def _(q, k, v, alibi, causal, bias, scale, exact, deterministic, dropout_p=0.0, seed=None, wl=-1, wr=-1):
    return _empty_like(q)


@torch.library.custom_op("flashsigmoid::bwd", mutates_args=())
def _bwd(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
         alibi: Optional[torch.Tensor], causal: bool, bias: float, scale: float, exact: bool,
         deterministic: bool, dropout_p: float = 0.0, seed: Optional[torch.Tensor] = None,
         wl: int = -1, wr: int = -1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    dq, dk, dv = _empty_like(q), _empty_like(k), _empty_like(v)
    _bwd_into(do, q, k, v, alibi, causal, bias, scale, exact, deterministic, dropout_p, seed, wl, wr, dq, dk, dv)
    return dq, dk, dv


def _bwd_into(do, q, k, v, alibi, causal, bias, scale, exact, deterministic, dropout_p, seed, wl, wr, dq, dk, dv,
              seqs=None, qkn=None):
    """The backward's kernels, writing dq, dk, dv (B, H, T, D) of any strides whose last is 1: the
    custom op's own buffers, or views into a caller's (qknorm.py's packed projection gradient).
    seqs: as _fwd_launch's. qkn (see _qkn_args): q and k are QK-normed heads, dq and dk become those
    of the raw heads, through the dQ kernel (deterministic); returns the gains' gradients as partial sums, fp32
    (2, rows, >= D): q's, k's, to be summed over rows (qknorm.sum_rows) in the first D columns."""
    q, k, v, do = (_lastdim_contig(t) for t in (q, k, v, do))
    B, H, Tq, D = q.shape
    Hkv, Tk = k.shape[1], k.shape[2]
    slopes = alibi if alibi is not None else q  # never read without ALiBi
    window, has_window = _window_args(wl, wr, causal, Tq, Tk)
    cu_q, cu_k, max_q, max_k = seqs if seqs is not None else (q, q, Tq, Tk)
    meta = {**_meta(H, Hkv, D, q.dtype, causal, alibi is not None, exact, dropout_p > 0, has_window=has_window,
                    varlen=seqs is not None, head_bias=_head_bias(alibi)),
            **_dropout_args(dropout_p, seed, q)}
    # dropout's 1/(1-p) on dQ and dK rides in `scale`, their last factor (1 exactly without dropout)
    common = (scale / (1.0 - dropout_p), 0.5 * scale, 0.5 * bias, Tq, Tk, Tk - Tq if seqs is None else 0,
              *_strides(q, k, v, do))
    buckets = (_bucket(max_q), _bucket(max_k), *window, *_seq_args(cu_q, cu_k))
    # the tiles the kernels stream by tensor descriptors where they can: q and dO in dK/dV's loop, k and v in dQ's
    tma = seqs is None and _tma_ok(q, k, v, do)
    # dQ: summed by the dK/dV programs with atomic adds into fp32 (5 matrix products), or, when
    # deterministic, short or on descriptors, by a kernel of its own that recomputes S and dP per query block
    # (7 products)
    atomic = _atomic_dq(deterministic, max_k, tma) and qkn is None
    acc = torch.zeros(q.shape, device=q.device, dtype=torch.float32) if atomic else dq
    meta.update(_qkn_args(qkn, Tq, q, k))
    # QK-norm's gain gradients: a row of partial sums per program (blocks are 16 rows at least; one buffer for
    # both gains, q's rows then k's: one fill and one sum for the two). Without QK-norm DG is never written, nor
    # dK/dV's DQ without atomic adds: there they are the kernel's own output (dQ's dq, dK/dV's dk), which it writes
    # after its autotuner's trials have zeroed them (and so not the dq that the dQ kernel, run first, wrote)
    rows = max(B * n * _cdiv(t, 16) for n, t in ((H, Tq), (Hkv, Tk)))
    dg = torch.zeros(2, rows, meta["HEAD_DIM"], device=q.device) if qkn is not None else [dq, dk]
    dkdv_dq = acc if atomic else dk
    q_d, k_d, v_d, do_d = (_desc(t) if tma else t for t in (q, k, v, do))
    kv = 2 * Tk * D * k.element_size() // (H // Hkv)  # the bytes a (batch, head) pair streams: dQ's K, V
    qdo = 2 * Tq * D * q.element_size() * (H // Hkv)  # dK/dV's Q, dO
    # (at D=128 with grouped heads the Gluon dK/dV spills registers: the sm_90 compile test; Triton's runs there)
    gluon = not atomic and seqs is None and not has_window and dropout_p == 0.0 and not exact
    # dQ's own kernel first: the persistent one's tile counter borrows dK's memory, which dK/dV's kernel writes next
    if not atomic and not (gluon and qkn is None and D in GLUON_DQ_WS and hasattr(gl, "warp_specialize")
                           and _gluon_ok(q, k, v, do, GLUON_DQ_WS) and _tma_ok(dq)
                           and _gl_wsdq(q, k, v, do, dq, slopes, common, meta, kv, scratch=dk)):
        _launch("dq", Tq, H, B, kv, (q, k_d, v_d, do, dq, slopes, *common, *_strides(dq), *buckets),
                {**meta, "DG": dg[0], "TMA": tma})
    if not (gluon and (H == Hkv or D <= 64) and _gluon_ok(q, k, v, do, GLUON_DKDV)
            and _gl_dkdv(q, k, v, do, dk, dv, slopes, common, meta, dg[1], qdo)):
        _launch("dkdv", Tk, Hkv, B, qdo, (q_d, k, v, do_d, dk, dv, dkdv_dq, slopes, *common,
                                          *_strides(dk, dv, dkdv_dq), *buckets),
                {**meta, "ATOMIC_DQ": atomic, "DG": dg[1], "TMA": tma})
    if atomic:
        dq.copy_(acc)
    if qkn is not None:
        return dg  # (HEAD_DIM > D where D is no power of two)


def _ws_grid(q, n_tiles, persist, scratch=None):
    """A warp-specialised kernel's 1-D grid in _tile's order, and its tile counter: a program per tile, or
    (persist: a table entry's optional 6th item) a program per SM taking tiles from a counter zeroed per launch
    (then Tiles[1 + 2 pid + c] tells consumer c of program pid its next tile). The counter takes scratch's
    memory where scratch is a whole buffer that only later kernels write (dK for the dQ kernel), else its own."""
    if not (persist and persist[0]):
        return (n_tiles,), q  # (the counter is not read)
    sms = _num_sms(q.device)
    n = 1 + 2 * sms
    whole = scratch is not None and scratch.untyped_storage().nbytes() == scratch.numel() * scratch.element_size()
    if whole and scratch.untyped_storage().nbytes() >= 4 * n:
        tiles = q.new_empty(0, dtype=torch.int32).set_(scratch.untyped_storage(), 0, (n,), (1,)).zero_()
    else:
        tiles = torch.zeros(n, dtype=torch.int32, device=q.device)
    return (min(n_tiles, sms),), tiles


def _gl_wsdq(q, k, v, do, dq, slopes, common, meta, kv, scratch=None):
    """The warp-specialised Gluon dQ kernel; False if it does not compile (then the Triton one runs). scratch:
    see _ws_grid."""
    B, H, Tq, D = q.shape
    Hkv = k.shape[1]
    bm, bn, stages, pingpong, regs, *persist = GLUON_DQ_WS[D]
    descs = [_gl_desc(t, bn if t is k or t is v else bm // 2) for t in (q, k, v, do, dq)]
    n_tiles = triton.cdiv(Tq, bm) * H * B
    grid, tiles = _ws_grid(q, n_tiles, persist, scratch)
    try:
        _gl_wsdq_kernel[grid](
            *descs, slopes, *common[:6], H, _section(H * B, kv, Tq), tiles, n_tiles,
            GROUP=H // Hkv, BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D, STAGES=stages, CAUSAL=meta["CAUSAL"],
            HAS_ALIBI=meta["HAS_ALIBI"], HEAD_BIAS=meta["HEAD_BIAS"], PINGPONG=bool(pingpong), REGS=regs,
            PERSIST=bool(persist and persist[0]), num_warps=4)
        return True
    except CompilationError as e:
        _gluon_off(e)
        return False


def _gl_dkdv(q, k, v, do, dk, dv, slopes, common, meta, dg, qdo):
    """The Gluon dK/dV kernel; False if it does not compile (then the Triton one runs)."""
    B, H, Tq, D = q.shape
    Hkv, Tk = k.shape[1], k.shape[2]
    bm, bn, slots, warps = GLUON_DKDV[D]
    descs = [_gl_desc(t, bn if t is k or t is v else bm) for t in (q, k, v, do)]
    try:
        _gl_dkdv_kernel[_grid(triton.cdiv(Tk, bn), Hkv, B, Tk)](
            *descs, dk, dv, slopes, *common[:6], Hkv, _section(Hkv * B, qdo, Tk), *dk.stride()[:3], *dv.stride()[:3],
            meta["XK"], meta["RK"], meta["GK"], dg, *(meta[n] for n in ("stride_xb", "stride_xh", "stride_xm",
                                                                         "stride_rb", "stride_rm")),
            GROUP=H // Hkv, BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D, SLOTS=slots, CAUSAL=meta["CAUSAL"],
            HAS_ALIBI=meta["HAS_ALIBI"], HEAD_BIAS=meta["HEAD_BIAS"], QKNORM=meta["QKNORM"], LPT=Tk >= LPT_MIN_LEN,
            num_warps=warps)
        return True
    except CompilationError as e:  # a Triton whose Gluon API has moved on: say so, keep the Triton kernels
        _gluon_off(e)
        return False


@_bwd.register_fake
def _(do, q, k, v, alibi, causal, bias, scale, exact, deterministic, dropout_p=0.0, seed=None, wl=-1, wr=-1):
    return _empty_like(q), _empty_like(k), _empty_like(v)


def _setup_context(ctx, inputs, output):
    q, k, v, alibi, *args, dropout_p, seed, wl, wr = inputs
    # O(T) memory: no T x T tensor is kept, not even the dropout mask: the backward regenerates it
    # from the seed, kept as the forward saw it (the generator may have moved on by then)
    ctx.save_for_backward(q, k, v, alibi, seed)
    ctx.args = (*args, dropout_p)  # causal, bias, scale, exact, deterministic, dropout_p
    ctx.window = (wl, wr)


def _backward(ctx, do):
    q, k, v, alibi, seed = ctx.saved_tensors
    return *_bwd(do, q, k, v, alibi, *ctx.args, seed, *ctx.window), *[None] * 10


_fwd.register_autograd(_backward, setup_context=_setup_context)


# Packed variable-length sequences: q (total_q, H, D), k and v (total_k, Hkv, D), sequence s in rows
# cu_q[s]:cu_q[s+1] and cu_k[s]:cu_k[s+1]. The kernels see (1, H, total, D) views and tile the packed
# rows as one long sequence, each row masked to its own sequence's keys (VARLEN): the grid is the
# dense kernel's, whatever the number of sequences, so padding cu_seqlens with empty sequences (a
# static shape for torch.compile, no host sync) costs nothing.

def _packed(*ts):
    return [t.unsqueeze(0).transpose(1, 2) for t in ts]


@torch.library.custom_op("flashsigmoid::fwd_varlen", mutates_args=())
def _fwd_varlen(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_q: torch.Tensor, cu_k: torch.Tensor,
                max_q: int, max_k: int, alibi: Optional[torch.Tensor], causal: bool, bias: float, scale: float,
                exact: bool, deterministic: bool, dropout_p: float, seed: Optional[torch.Tensor], wl: int,
                wr: int) -> torch.Tensor:
    q, k, v = (_lastdim_contig(t) for t in (q, k, v))
    o = q.new_empty(q.shape)
    _fwd_launch(*_packed(q, k, v, o), alibi, causal, bias, scale, exact, dropout_p, seed, wl, wr,
                seqs=(cu_q, cu_k, max_q, max_k))
    return o


@_fwd_varlen.register_fake
def _(q, k, v, cu_q, cu_k, max_q, max_k, alibi, causal, bias, scale, exact, deterministic, dropout_p, seed, wl, wr):
    return q.new_empty(q.shape)


@torch.library.custom_op("flashsigmoid::bwd_varlen", mutates_args=())
def _bwd_varlen(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_q: torch.Tensor,
                cu_k: torch.Tensor, max_q: int, max_k: int, alibi: Optional[torch.Tensor], causal: bool,
                bias: float, scale: float, exact: bool, deterministic: bool, dropout_p: float,
                seed: Optional[torch.Tensor], wl: int, wr: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q, k, v, do = (_lastdim_contig(t) for t in (q, k, v, do))
    dq, dk, dv = q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)
    _bwd_into(*_packed(do, q, k, v), alibi, causal, bias, scale, exact, deterministic, dropout_p, seed, wl, wr,
              *_packed(dq, dk, dv), seqs=(cu_q, cu_k, max_q, max_k))  # dQ's mode as the dense backward's
    return dq, dk, dv


@_bwd_varlen.register_fake
def _(do, q, k, v, cu_q, cu_k, max_q, max_k, alibi, causal, bias, scale, exact, deterministic, dropout_p, seed,
      wl, wr):
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


def _setup_context_varlen(ctx, inputs, output):
    q, k, v, cu_q, cu_k, max_q, max_k, alibi, *args, seed, wl, wr = inputs
    ctx.save_for_backward(q, k, v, cu_q, cu_k, alibi, seed)  # the dropout seed as the forward saw it
    ctx.args, ctx.n_inputs = (max_q, max_k, *args), len(inputs)
    ctx.window = (wl, wr)


def _backward_varlen(ctx, do):
    q, k, v, cu_q, cu_k, alibi, seed = ctx.saved_tensors
    max_q, max_k, *args = ctx.args  # ..., deterministic, dropout_p
    return (*_bwd_varlen(do, q, k, v, cu_q, cu_k, max_q, max_k, alibi, *args, seed, *ctx.window),
            *[None] * (ctx.n_inputs - 3))


_fwd_varlen.register_autograd(_backward_varlen, setup_context=_setup_context_varlen)


# ----------------------------------------------------------------------------------------------
# Decoding: a split-K forward for short query lengths (KV-cache decoding, a few draft tokens)
# ----------------------------------------------------------------------------------------------
#
# With Tq = 1 the prefill grid, (cdiv(Tq, BLOCK_M), H, B), is B * H programs whose 128-row query
# tiles hold one real row each: 12 programs on 132 SMs for the 124M model at batch 1, each reading
# its head's whole cache alone, and the GROUP heads of a GQA group each reading the same keys. A
# decoding step is bound by reading K and V once; this kernel spreads that read over the GPU:
#   one program per (key split, kv head, batch) (times row blocks when GROUP * Tq > BLOCK_M): the
#   keys [split * keys_per_split, (split + 1) * keys_per_split) against all GROUP * Tq query rows
#   of the kv head, stacked as the rows of one tile (row r = query head r // Tq of the group,
#   query r % Tq), so K and V are read once for the whole group.
# Sigmoid has no row normaliser, so the splits' outputs simply add up: FlashDecoding has to keep
# each split's row max and sum to rescale them; we keep nothing.
# Combining the splits: with one split the program stores O itself (one launch). Otherwise each
# writes its fp32 partial into a (splits, B, H, Tq, D) buffer and _decode_reduce_kernel sums the
# splits in order and casts. Atomic adds into one fp32 buffer would need it zeroed first (a memset
# launch) and a cast after (another), three launches to these two, and their order of adds varies
# from run to run; the partials are splits * B * H * Tq * D * 4 bytes (under 100 KB at the
# splits' target), written and read once. So decoding is bitwise reproducible whatever
# `deterministic` says: there is no atomic to avoid.
# Splits: enough that splits * (programs per split) fills the SMs once, but at least
# DECODE_MIN_SPLIT_KEYS keys each. Splitting a short cache saves a few us of device time at most
# (bench.py --mode=decode's table has the one-split column) while its reduce is a second launch,
# which costs the host more than that in eager decoding (Triton's launch: tens of us); on long
# caches the loads dominate and splitting pays (8192 keys at batch 1: 9 us against the prefill
# kernel's 60, H200). At batch 32 of the 124M model, 384 programs fill the GPU: one split, no reduce.
# Dispatch: every Tq <= DECODE_MAX_TQ decodes here, whatever the grid: at such lengths the prefill
# kernel's query tiles (64-128 rows) are mostly padding and a GQA group reads its keys GROUP times;
# this kernel was as fast or faster at every shape measured (batch 1 to 32, 320 to 8192 keys).
# Positions, the causal mask and ALiBi are the prefill kernel's: query row i at absolute position
# i + Tk - Tq (the last query sees every key), p = 0 where masked, the same fast/exact sigmoid.
# No autotuning: the key length changes every step (each new bucket would re-tune mid-generation)
# and a memory-bound loop is not sensitive to the tile; one config per size class, no autotuning
# also means the kernel can be captured in a CUDA graph on its first call.

DECODE_MAX_TQ = 16  # query lengths up to this take the decode kernel (Tq > 16: the prefill kernel)
DECODE_MIN_SPLIT_KEYS = 256  # fewest keys per split (see Splits above)
_NUM_SMS = {}


@triton.jit
def _decode_kernel(Q, K, V, O, Slopes, hscale, hbias, Tq, Tk, off_q, keys_per_split, n_row_blocks,
                   stride_qb, stride_qh, stride_qm, stride_kb, stride_kh, stride_kn,
                   stride_vb, stride_vh, stride_vn, stride_os, stride_ob, stride_oh, stride_om,
                   GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr,
                   BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr, HAS_ALIBI: tl.constexpr,
                   FAST: tl.constexpr, UPCAST: tl.constexpr, ROUND_F16: tl.constexpr,
                   DOT_PREC: tl.constexpr, HEAD_BIAS: tl.constexpr):
    # neighbouring programs are the row blocks of one split: they read the same keys (L2 hits)
    split = tl.program_id(0) // n_row_blocks
    rb = tl.program_id(0) % n_row_blocks
    hk = tl.program_id(1)
    b = tl.program_id(2)
    offs_r = rb * BLOCK_M + tl.arange(0, BLOCK_M)
    rmask = offs_r < GROUP * Tq
    h = hk * GROUP + offs_r // Tq  # each row's query head and query index
    i = offs_r % Tq
    offs_d = tl.arange(0, HEAD_DIM)
    dm = offs_d < D  # HEAD_DIM is D padded to a power of two
    q_rows = b.to(tl.int64) * stride_qb + h.to(tl.int64) * stride_qh + i.to(tl.int64) * stride_qm
    q = tl.load(Q + q_rows[:, None] + offs_d[None, :], mask=rmask[:, None] & dm[None, :], other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
    hslope = tl.zeros([BLOCK_M], dtype=tl.float32)
    if HAS_ALIBI:  # per row: the rows of a tile belong to different heads
        hslope = 0.5 * tl.load(Slopes + h, mask=rmask, other=0.0)
    hb = tl.zeros([BLOCK_M], dtype=tl.float32) + hbias
    if HEAD_BIAS:  # a bias per head: the second row of Slopes
        hb = 0.5 * tl.load(Slopes + tl.num_programs(1) * GROUP + h, mask=rmask, other=0.0)
    pos = i + off_q  # absolute positions, bottom-right aligned
    lo = split * keys_per_split
    hi = tl.minimum(lo + keys_per_split, Tk)
    offs_n = lo + tl.arange(0, BLOCK_N)
    k_ptrs = (K + b.to(tl.int64) * stride_kb + hk.to(tl.int64) * stride_kh
              + offs_n[:, None].to(tl.int64) * stride_kn + offs_d[None, :])
    v_ptrs = (V + b.to(tl.int64) * stride_vb + hk.to(tl.int64) * stride_vh
              + offs_n[:, None].to(tl.int64) * stride_vn + offs_d[None, :])
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    # Every block is masked (the split's end, and the causal mask of the last Tq - 1 keys): a
    # decoding step is bound by loading K and V, the mask's few integer ops hide under the loads.
    for _ in range(lo, hi, BLOCK_N):
        kmask = offs_n < hi
        k = tl.load(k_ptrs, mask=kmask[:, None] & dm[None, :], other=0.0)
        v = tl.load(v_ptrs, mask=kmask[:, None] & dm[None, :], other=0.0)
        if UPCAST:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        t = tl.dot(q, tl.trans(k), input_precision=DOT_PREC) * hscale + hb[:, None]
        if HAS_ALIBI:
            dist = (pos[:, None] - offs_n[None, :]).to(tl.float32)
            if not CAUSAL:
                dist = tl.abs(dist)
            t = t - hslope[:, None] * dist
        p = _sigmoid_half(t, FAST)
        valid = kmask[None, :]
        if CAUSAL:
            valid = valid & (offs_n[None, :] <= pos[:, None])
        p = tl.where(valid, p, 0.0)  # exact zeros, as in the prefill kernel
        acc += tl.dot(_for_dot(p, v.dtype, UPCAST, ROUND_F16), v, input_precision=DOT_PREC)
        offs_n += BLOCK_N
        k_ptrs += BLOCK_N * stride_kn
        v_ptrs += BLOCK_N * stride_vn
    o_rows = (split.to(tl.int64) * stride_os + b.to(tl.int64) * stride_ob + h.to(tl.int64) * stride_oh
              + i.to(tl.int64) * stride_om)
    tl.store(O + o_rows[:, None] + offs_d[None, :], acc.to(O.dtype.element_ty),
             mask=rmask[:, None] & dm[None, :])


@triton.jit
def _decode_reduce_kernel(P, O, n_splits, stride_ps, stride_pb, stride_ph, stride_pm,
                          stride_ob, stride_oh, stride_om, HEAD_DIM: tl.constexpr, D: tl.constexpr):
    # one program per output row (query, head, batch): the splits' partials summed in split order
    m = tl.program_id(0)
    h = tl.program_id(1)
    b = tl.program_id(2)
    offs_d = tl.arange(0, HEAD_DIM)
    dm = offs_d < D
    p_ptrs = P + b.to(tl.int64) * stride_pb + h.to(tl.int64) * stride_ph + m.to(tl.int64) * stride_pm + offs_d
    acc = tl.zeros([HEAD_DIM], dtype=tl.float32)
    for _ in range(n_splits):
        acc += tl.load(p_ptrs, mask=dm, other=0.0)
        p_ptrs += stride_ps
    tl.store(O + b.to(tl.int64) * stride_ob + h.to(tl.int64) * stride_oh + m.to(tl.int64) * stride_om + offs_d,
             acc.to(O.dtype.element_ty), mask=dm)


def _cdiv(a, b):
    # plain ints (and _bucket for the next power of two): triton.cdiv and triton.next_power_of_2 are
    # ConstexprFunction wrappers in Triton 3.9, ~4 us a call on the host, which a decoding step (one
    # call per layer per token) would feel
    return -(-a // b)


def _num_sms(device):
    """Multiprocessors of the device; under the interpreter an H100's/H200's 132, so the CPU tests
    take the splits the GPU would."""
    if device.type != "cuda":
        return 132
    if device not in _NUM_SMS:
        _NUM_SMS[device] = torch.cuda.get_device_properties(device).multi_processor_count
    return _NUM_SMS[device]


def _decode_config(head_dim, itemsize, rows):
    """(BLOCK_M, BLOCK_N, num_stages, num_warps): rows of the tile (the group's GROUP * Tq query rows,
    at least 16, the tensor cores' smallest m), keys per step. Interpreter: short key steps and at
    most 32 rows, so that the CPU tests cross several key blocks per split and several row blocks."""
    if _INTERPRET:
        return min(max(16, _bucket(rows)), 32), 16, 1, 4
    max_m, block_n, stages = {"small": (64, 64, 3), "large": (32, 32, 2),
                              "xl": (32, 32, 1)}[_size_class(head_dim, itemsize)]
    return min(max(16, _bucket(rows)), max_m), block_n, stages, 4


def decode_splits(Tk, programs, block_n, sms):
    """(splits, keys per split) for `programs` programs per split: enough splits to give every SM one
    program, as long as each gets DECODE_MIN_SPLIT_KEYS keys; keys_per_split a multiple of block_n."""
    want = max(1, min(_cdiv(sms, programs), Tk // DECODE_MIN_SPLIT_KEYS))
    kps = _cdiv(_cdiv(Tk, want), block_n) * block_n
    return _cdiv(Tk, kps), kps  # no split left empty by the rounding


def _decode_fwd(q, k, v, o, alibi, causal, bias, scale, exact):
    """O of a short query (Tq <= DECODE_MAX_TQ) into o by the split-K decode kernel."""
    B, H, Tq, D = q.shape
    Hkv, Tk = k.shape[1], k.shape[2]
    m = _meta(H, Hkv, D, q.dtype, causal, alibi is not None, exact, head_bias=_head_bias(alibi))
    # the constexprs this kernel takes, by name: keys that other kernels' features add to _meta stay out
    meta = {n: m[n] for n in ("GROUP", "HEAD_DIM", "D", "CAUSAL", "HAS_ALIBI", "FAST", "UPCAST",
                              "ROUND_F16", "DOT_PREC", "HEAD_BIAS")}
    rows = meta["GROUP"] * Tq
    block_m, block_n, stages, warps = _decode_config(meta["HEAD_DIM"], q.element_size(), rows)
    n_rb = _cdiv(rows, block_m)
    splits, kps = decode_splits(Tk, B * Hkv * n_rb, block_n, _num_sms(q.device))
    # one split: the programs store O; several: fp32 partials, summed in order by the reduce kernel
    part = o if splits == 1 else torch.empty(splits, B, H, Tq, D, device=q.device, dtype=torch.float32)
    pstrides = [0, *o.stride()[:3]] if splits == 1 else part.stride()[:4]
    slopes = alibi if alibi is not None else q  # never read without ALiBi
    cfg = {} if _INTERPRET else dict(num_stages=stages, num_warps=warps)
    _decode_kernel[(splits * n_rb, Hkv, B)](
        q, k, v, part, slopes, 0.5 * scale, 0.5 * bias, Tq, Tk, Tk - Tq, kps, n_rb,
        *_strides(q, k, v), *pstrides, **meta, BLOCK_M=block_m, BLOCK_N=block_n, **cfg)
    if splits > 1:
        _decode_reduce_kernel[(Tq, H, B)](part, o, splits, *part.stride()[:4], *o.stride()[:3],
                                          HEAD_DIM=meta["HEAD_DIM"], D=D)
    return splits



# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------

def _check(q, k, v, alibi_slopes, bias, scale):
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{name} must be 4-D (B, H, T, D), got shape {tuple(t.shape)}")
    if k.shape != v.shape:
        raise ValueError(f"k and v must have the same shape, got k {tuple(k.shape)} and v {tuple(v.shape)}")
    B, H, Tq, D = q.shape
    Bk, Hkv, Tk, Dk = k.shape
    if Bk != B:
        raise ValueError(f"batch size mismatch: q has B={B}, k/v have B={Bk}")
    if Dk != D:
        raise ValueError(f"head dim mismatch: q has D={D}, k/v have D={Dk}")
    if Hkv < 1 or H % Hkv:
        raise ValueError(f"H % Hkv != 0: q has H={H} heads, k/v have Hkv={Hkv} (H must be a multiple)")
    if not 1 <= D <= MAX_HEAD_DIM:
        raise ValueError(f"unsupported head dim D={D}; supported: 1 to {MAX_HEAD_DIM}")
    if Tq < 1 or Tk < 1 or B < 1:
        raise ValueError(f"empty input: B={B}, Tq={Tq}, Tk={Tk} (all must be >= 1)")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"dtype mismatch: q {q.dtype}, k {k.dtype}, v {v.dtype}")
    if q.dtype not in _DTYPES:
        raise ValueError(f"unsupported dtype {q.dtype}; supported: float16, bfloat16, float32")
    if not (q.device == k.device == v.device):
        raise ValueError(f"device mismatch: q on {q.device}, k on {k.device}, v on {v.device}")
    if q.device.type != "cuda" and not _INTERPRET:
        raise ValueError(f"flashsigmoid needs CUDA tensors or TRITON_INTERPRET=1 set before import; "
                         f"got tensors on {q.device}")
    if max(H, B) > 65535:
        raise ValueError(f"B={B} and H={H} must each be <= 65535 (CUDA grid limit)")
    if alibi_slopes is not None:
        if not isinstance(alibi_slopes, torch.Tensor) or tuple(alibi_slopes.shape) != (H,):
            shape = tuple(alibi_slopes.shape) if isinstance(alibi_slopes, torch.Tensor) else type(alibi_slopes)
            raise ValueError(f"alibi_slopes must be a tensor of shape (H,) = ({H},), got {shape}")
        if alibi_slopes.device != q.device:
            raise ValueError(f"device mismatch: alibi_slopes on {alibi_slopes.device}, q on {q.device}")
    if not math.isfinite(bias):
        raise ValueError(f"bias must be finite, got {bias}")
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")


def _head_params(bias, alibi_slopes, H, device):
    """(float bias, slopes for the kernels): slopes as fp32, and a (H,) tensor bias, one per head, as
    the second row of a (2, H) slopes tensor (first row 0 without ALiBi; see _head_bias)."""
    if alibi_slopes is not None:
        alibi_slopes = alibi_slopes.to(torch.float32).contiguous()
    if not isinstance(bias, torch.Tensor):
        return bias, alibi_slopes
    if tuple(bias.shape) != (H,) or bias.device != device:
        raise ValueError(f"a tensor bias must have shape (H,) = ({H},) on {device}, got {tuple(bias.shape)} "
                         f"on {bias.device}")
    if not torch.isfinite(bias).all():
        raise ValueError(f"bias must be finite, got {bias.tolist()}")
    slopes = alibi_slopes if alibi_slopes is not None else torch.zeros(H, device=device)
    return 0.0, torch.stack([slopes, bias.to(torch.float32)]).contiguous()


def _window(window):
    """window=None or (left, right), ints >= -1 (-1 = unlimited), FlashAttention's window_size."""
    if window is None:
        return -1, -1
    if (not isinstance(window, (tuple, list)) or len(window) != 2
            or not all(isinstance(w, int) and not isinstance(w, bool) and w >= -1 for w in window)):
        raise ValueError(f"window must be None or (left, right) with ints >= -1 (-1 = unlimited), got {window!r}")
    return int(window[0]), int(window[1])


def _check_dropout(dropout_p, seed):
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, (int, float)) or not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be a number in [0, 1), got {dropout_p!r}")
    if isinstance(seed, torch.Tensor):
        if seed.numel() != 1 or seed.dtype.is_floating_point or seed.dtype.is_complex or seed.dtype == torch.bool:
            raise ValueError(f"seed must be an int or an integer tensor of one element, got a {seed.dtype} "
                             f"tensor of shape {tuple(seed.shape)}")
    elif seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be None, an int or an integer tensor of one element, got {type(seed).__name__}")
    elif isinstance(seed, int) and not 0 <= seed < 2 ** 63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")


def new_seed(device):
    """A dropout seed drawn from torch's default generator of `device`: what seed=None uses. A 0-d int64
    tensor on the device, so no host round trip and nothing for torch.compile to break the graph on,
    and CUDA-graph replays draw afresh; torch.manual_seed (and train.py's saved RNG states) fix it."""
    return torch.randint(0, 2 ** 63 - 1, (), dtype=torch.int64, device=device)


def _seed_tensor(seed, device):
    if seed is None:
        return new_seed(device)
    if isinstance(seed, torch.Tensor):
        return seed.reshape(()).to(device=device, dtype=torch.int64)
    return torch.tensor(seed, dtype=torch.int64, device=device)


def dropout_mask(seed, B, H, Tq, Tk, dropout_p, device):
    """The keep mask (bool, (B, H, Tq, Tk)) that sigmoid_attention(..., dropout_p, seed) applies to
    its weights, computed by the kernels' own _dropout_keep: for tests against the materialised
    reference (model.sigmoid_attention_torch(..., dropout_mask=...)) and for inspecting a run."""
    _check_dropout(dropout_p, seed)
    if seed is None:
        raise ValueError("dropout_mask needs the seed whose mask it materialises, got None")
    if min(B, H, Tq, Tk) < 1 or max(H, B) > 65535:
        raise ValueError(f"bad shape B={B}, H={H}, Tq={Tq}, Tk={Tk}")
    device = torch.device(device)
    if device.type != "cuda" and not _INTERPRET:
        raise ValueError(f"dropout_mask needs a CUDA device or TRITON_INTERPRET=1 set before import; got {device}")
    out = torch.empty(B, H, Tq, Tk, dtype=torch.int8, device=device)
    grid = (triton.cdiv(Tq, 32), H, B)
    _dropout_mask_kernel[grid](_seed_tensor(seed, device), out, Tq, Tk, float(dropout_p), *out.stride()[:3],
                               BLOCK_M=32, BLOCK_N=64)
    return out.view(torch.bool)


def sigmoid_attention(q, k, v, *, causal=True, bias=None, scale=None, alibi_slopes=None, exact=None,
                      deterministic=None, dropout_p=0.0, seed=None, window=None):
    """Sigmoid attention O = sigmoid(scale * q k^T + bias + ALiBi) v, fused (see module docstring).

    q: (B, H, Tq, D); k, v: (B, Hkv, Tk, D), H % Hkv == 0, any D from 1 to 256 (tiles are D padded to
    a power of two); fp16/bf16 (fp32: slower, exact dots).
    bias: float, default -ln(Tk), or a (H,) tensor, a bias per head; scale: default 1/sqrt(D);
    alibi_slopes: None or (H,) tensor.
    exact: None = module flag EXACT_SIGMOID (always exact for fp32 and on AMD GPUs); True = tl.sigmoid instead of
    tanh.approx. deterministic: None = torch.are_deterministic_algorithms_enabled(); True = a
    bitwise reproducible backward (a dQ kernel of its own: 7 matrix products); False = for
    Tk >= ATOMIC_DQ_MIN_LEN (pointer loads; ATOMIC_DQ_MIN_LEN_TMA, never by default, with Hopper's tensor
    descriptors, where the dQ kernel measured faster), dQ summed with atomic adds by the dK/dV programs
    (5 products), whose order varies from run to run, as in FlashAttention's and cuDNN's default backward. Any strides are accepted (a last dim that is not contiguous is copied).
    dropout_p: attention dropout on the weights, O = (keep * sigmoid(S) / (1 - dropout_p)) V, in [0, 1);
    0 runs the kernels without any dropout code. seed: the Philox key (int in [0, 2**63) or a
    one-element integer tensor); the mask is a function of (seed, b, h, i, j) only, so the same seed
    gives the same mask and dropout_mask(seed, ...) shows it. None (default) draws one from torch's
    generator of q's device (see new_seed): reproducible under torch.manual_seed. Read only when
    dropout_p > 0; the forward's seed is kept for the backward.
    window: None, or (left, right) as FlashAttention's window_size: query i (at absolute position
    i + Tk - Tq) sees keys i - left <= j <= i + right, -1 = unlimited on that side; causal makes
    right 0. Key blocks outside every row's window are skipped: the cost grows with the window, not T.
    Returns (B, H, Tq, D), laid out in memory like q (see _empty_like).
    """
    return _fwd(q, k, v, *_op_args(q, k, v, causal, bias, scale, alibi_slopes, exact, deterministic, dropout_p,
                                   seed, window))


def _op_args(q, k, v, causal, bias, scale, alibi_slopes, exact, deterministic, dropout_p, seed, window):
    """sigmoid_attention's arguments checked and as the custom op takes them, after q, k, v: (alibi,
    causal, bias, scale, exact, deterministic, dropout_p, seed, wl, wr)."""
    wl, wr = _window(window)
    bias = -math.log(k.shape[2]) if (bias is None and isinstance(k, torch.Tensor) and k.dim() == 4
                                     and k.shape[2] > 0) else bias
    bias = bias if isinstance(bias, torch.Tensor) else float(bias) if bias is not None else 0.0
    scale = 1.0 / math.sqrt(q.shape[-1]) if (scale is None and isinstance(q, torch.Tensor)
                                             and q.dim() == 4) else scale
    scale = float(scale) if scale is not None else 1.0
    _check(q, k, v, alibi_slopes, 0.0 if isinstance(bias, torch.Tensor) else bias, scale)
    _check_dropout(dropout_p, seed)
    dropout_p = float(dropout_p)
    # no dropout: no seed drawn either, so a dropout_p=0 call leaves torch's RNG stream untouched
    seed = _seed_tensor(seed, q.device) if dropout_p > 0 else None
    bias, alibi_slopes = _head_params(bias, alibi_slopes, q.shape[1], q.device)
    # fp32 callers asked for fp32 accuracy: tanh.approx (~5e-4 relative) would dominate their error
    exact = (EXACT_SIGMOID or q.dtype == torch.float32) if exact is None else bool(exact)
    if deterministic is None:
        deterministic = torch.are_deterministic_algorithms_enabled()
    return alibi_slopes, bool(causal), bias, scale, exact, bool(deterministic), dropout_p, seed, wl, wr


def sigmoid_attention_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, *, causal=True,
                             bias=None, scale=None, alibi_slopes=None, window=None, exact=None, deterministic=None,
                             dropout_p=0.0, seed=None, check=True):
    """sigmoid_attention over packed sequences of different lengths, as flash_attn_varlen_func.

    q: (total_q, H, D); k, v: (total_k, Hkv, D); cu_seqlens_q, cu_seqlens_k: int32 (B + 1,), the
    cumulative lengths (sequence s is rows cu_seqlens_q[s]:cu_seqlens_q[s+1] of q and
    cu_seqlens_k[s]:cu_seqlens_k[s+1] of k and v; empty sequences are allowed). Each sequence is
    attended on its own, bottom-right aligned as in the dense kernel (query i of a sequence sits at
    position i + Tk_s - Tq_s), with the causal mask, window and ALiBi distances of that sequence.
    bias: default -ln(max_seqlen_k). max_seqlen_*: the longest sequence (the bias default, the
    autotuning bucket and the backward's mode use it; the kernels do not need it). check=True reads
    cu_seqlens on the host once to name a bad one (a device sync); check=False trusts them.
    dropout: the mask of (seed, 0, h, i, j) with i, j the packed row and key (dropout_mask(seed, 1, H,
    total_q, total_k, ...) shows it). Other arguments as sigmoid_attention. Returns (total_q, H, D).
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.dim() != 3:
            raise ValueError(f"{name} must be a 3-D tensor (total, heads, D), got "
                             f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
    for name, m in (("max_seqlen_q", max_seqlen_q), ("max_seqlen_k", max_seqlen_k)):
        if not isinstance(m, int) or isinstance(m, bool) or m < 1:
            raise ValueError(f"{name}={m!r} must be an int >= 1")
    for name, cu, total in (("cu_seqlens_q", cu_seqlens_q, q.shape[0]), ("cu_seqlens_k", cu_seqlens_k, k.shape[0])):
        if not isinstance(cu, torch.Tensor) or cu.dtype != torch.int32 or cu.dim() != 1 or cu.numel() < 2:
            raise ValueError(f"{name} must be an int32 tensor of shape (B + 1,), got "
                             + (f"{cu.dtype} {tuple(cu.shape)}" if isinstance(cu, torch.Tensor) else type(cu).__name__))
        if cu.device != q.device:
            raise ValueError(f"device mismatch: {name} on {cu.device}, q on {q.device}")
    if cu_seqlens_q.numel() != cu_seqlens_k.numel():
        raise ValueError(f"cu_seqlens_q has {cu_seqlens_q.numel() - 1} sequences, cu_seqlens_k "
                         f"{cu_seqlens_k.numel() - 1}")
    if check:
        cq, ck = torch.stack([cu_seqlens_q, cu_seqlens_k]).tolist()
        for name, cu, total, m in (("cu_seqlens_q", cq, q.shape[0], max_seqlen_q),
                                   ("cu_seqlens_k", ck, k.shape[0], max_seqlen_k)):
            lens = [b - a for a, b in zip(cu, cu[1:])]
            if cu[0] != 0 or min(lens) < 0 or cu[-1] != total:
                raise ValueError(f"{name} must rise from 0 to the {total} packed rows, got {cu}")
            if max(lens) > m:
                raise ValueError(f"{name} holds a sequence of {max(lens)} > max_seqlen={m}")
    q4, k4, v4 = _packed(q, k, v)
    bias = -math.log(max_seqlen_k) if bias is None else bias if isinstance(bias, torch.Tensor) else float(bias)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    _check(q4, k4, v4, alibi_slopes, 0.0 if isinstance(bias, torch.Tensor) else bias, scale)
    wl, wr = _window(window)
    _check_dropout(dropout_p, seed)
    dropout_p = float(dropout_p)
    seed = _seed_tensor(seed, q.device) if dropout_p > 0 else None
    bias, alibi_slopes = _head_params(bias, alibi_slopes, q.shape[1], q.device)
    exact = (EXACT_SIGMOID or q.dtype == torch.float32) if exact is None else bool(exact)
    if deterministic is None:
        deterministic = torch.are_deterministic_algorithms_enabled()
    return _fwd_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, alibi_slopes, bool(causal),
                       bias, scale, exact, bool(deterministic), dropout_p, seed, wl, wr)


__all__ = ["sigmoid_attention", "sigmoid_attention_varlen", "dropout_mask", "new_seed", "EXACT_SIGMOID",
           "AUTOTUNE"]


if __name__ == "__main__":
    # Self-check: python flashsigmoid.py (GPU), or TRITON_INTERPRET=1 python flashsigmoid.py (CPU),
    # against the materialised reference that the model's PyTorch path runs. model.py imports this
    # file by name: hand it this very module, or the custom ops would be registered twice.
    import sys
    sys.modules["flashsigmoid"] = sys.modules[__name__]
    from model import sigmoid_attention_torch
    dev = "cuda" if torch.cuda.is_available() and not _INTERPRET else "cpu"
    dt = torch.bfloat16 if dev == "cuda" else torch.float32
    torch.manual_seed(0)
    for (B, H, Hkv, Tq, Tk, D, causal) in [(2, 4, 2, 113, 113, 64, True), (1, 4, 1, 17, 203, 32, True),
                                           (1, 2, 2, 67, 45, 16, False)]:
        q = torch.randn(B, H, Tq, D, device=dev, dtype=dt, requires_grad=True)
        k = torch.randn(B, Hkv, Tk, D, device=dev, dtype=dt, requires_grad=True)
        v = torch.randn(B, Hkv, Tk, D, device=dev, dtype=dt, requires_grad=True)
        sl = torch.rand(H, device=dev) * 0.5
        do = torch.randn(B, H, Tq, D, device=dev, dtype=dt)
        o = sigmoid_attention(q, k, v, causal=causal, alibi_slopes=sl)
        g = torch.autograd.grad(o, (q, k, v), do)
        o_ref = sigmoid_attention_torch(q, k, v, causal=causal, bias=-math.log(Tk), alibi_slopes=sl)
        g_ref = torch.autograd.grad(o_ref, (q, k, v), do)
        errs = [((a.float() - b.float()).norm() / b.float().norm()).item()
                for a, b in zip((o,) + g, (o_ref,) + g_ref)]
        print(f"B={B} H={H} Hkv={Hkv} Tq={Tq} Tk={Tk} D={D} causal={causal}: rel err o/dq/dk/dv "
              + " ".join(f"{e:.2e}" for e in errs))
        assert all(e < (2e-2 if dt == torch.bfloat16 else 1e-4) for e in errs), errs
        # attention dropout: the reference with the kernel's own keep mask
        p, seed = 0.2, 1234
        o = sigmoid_attention(q, k, v, causal=causal, alibi_slopes=sl, dropout_p=p, seed=seed)
        g = torch.autograd.grad(o, (q, k, v), do)
        mask = dropout_mask(seed, B, H, Tq, Tk, p, dev)
        o_ref = sigmoid_attention_torch(q, k, v, causal=causal, bias=-math.log(Tk), alibi_slopes=sl, dropout_p=p,
                                        dropout_mask=mask)
        g_ref = torch.autograd.grad(o_ref, (q, k, v), do)
        errs = [((a.float() - b.float()).norm() / b.float().norm()).item()
                for a, b in zip((o,) + g, (o_ref,) + g_ref)]
        print(f"  dropout p={p}: rel err o/dq/dk/dv " + " ".join(f"{e:.2e}" for e in errs))
        assert all(e < (2e-2 if dt == torch.bfloat16 else 1e-4) for e in errs), errs
    print("ok")
