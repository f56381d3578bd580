"""Run 41 diagnosis: flashsigmoid's Gluon forward with knobs that take its overlaps away one at a time."""
from flashsigmoid import gl, gluon, mbarrier, tma, warpgroup_mma, warpgroup_mma_init, warpgroup_mma_wait, fence_async_shared  # noqa

@gluon.jit
def _gl_tanh(x):
    return gl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [x], dtype=gl.float32, is_pure=True,
                                     pack=1)


@gluon.jit
def _gl_load(desc, smem, bar, b, h, j, n, BLOCK_N: gl.constexpr):
    # key block j (of K or V) into ring slot j % 2; nothing past the last block n - 1
    s = j % 2
    mbarrier.expect(bar.index(s), desc.block_type.nbytes, pred=j < n)
    tma.async_copy_global_to_shared(desc, [b, h, j * BLOCK_N, 0], bar.index(s), smem.index(s), pred=j < n)


@gluon.jit
def _gl_step(s, acc, p_prev, q, k_smem, v_smem, kbar, vbar, k_desc, v_desc, b, hk, j, n, n_full, rows, cols0,
             hscale, hbias, hslope, s_zero, p_layout: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr,
             CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr, HAS_NEXT: gl.constexpr, SYNC_S: gl.constexpr, SYNC_PV: gl.constexpr):
    # key block j: S_j (done) -> P_j -> acc += P_j V_j, with S_{j+1} issued first when there is one.
    # P_{j-1} (p_prev) is the in-flight P V's register operand: it stays alive (a dependency of the wait)
    # until that wgmma is done, or P_j could be computed into its registers while the tensor cores read them.
    if HAS_NEXT:
        mbarrier.wait(kbar.index((j + 1) % 2), ((j + 1) // 2) & 1)
        s_next = warpgroup_mma(q, k_smem.index((j + 1) % 2).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero,
                               use_acc=False, is_async=True)
        if SYNC_S:
            s_next = warpgroup_mma_wait(num_outstanding=0, deps=(s_next, ))
    cols = j * BLOCK_N + cols0
    # half logits, as _half_logits computes them (the same operations in the same order)
    if HAS_ALIBI and CAUSAL:
        row = hbias - hslope * (rows - j * BLOCK_N).to(gl.float32)
        t = s * hscale + row[:, None] + (hslope * cols0.to(gl.float32))[None, :]
    elif HAS_ALIBI:
        t = s * hscale + hbias - hslope * gl.abs(rows[:, None] - cols[None, :]).to(gl.float32)
    else:
        t = s * hscale + hbias
    p = 0.5 * _gl_tanh(t) + 0.5
    if CAUSAL:
        if j >= n_full:  # the diagonal blocks (keys past Tk arrive as zeros, v = 0: no mask needed)
            p = gl.where(cols[None, :] <= rows[:, None], p, 0.0)
    p = gl.convert_layout(p.to(k_smem.dtype), p_layout)
    # the previous P V is done, so V's slot of block j - 1 takes block j + 1
    acc, p_prev = warpgroup_mma_wait(num_outstanding=1 if HAS_NEXT else 0, deps=(acc, p_prev))
    if j > 0:
        _gl_load(v_desc, v_smem, vbar, b, hk, j + 1, n, BLOCK_N)
    mbarrier.wait(vbar.index(j % 2), (j // 2) & 1)
    acc = warpgroup_mma(p, v_smem.index(j % 2).reshape([BLOCK_N, HEAD_DIM]), acc, is_async=True)
    if SYNC_PV:
        acc, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc, p))
        acc = warpgroup_mma_init(acc)
    if HAS_NEXT:  # S_{j+1} done: K's slot of block j + 1 takes block j + 3
        s = warpgroup_mma_wait(num_outstanding=1, deps=(s_next, ))
        _gl_load(k_desc, k_smem, kbar, b, hk, j + 3, n, BLOCK_N)
    return s, acc, p


@gluon.jit
def _gl_fwd_kernel(q_desc, k_desc, v_desc, o_desc, Slopes, hscale, hbias, Tq, Tk, off_q,
                   GROUP: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr,
                   CAUSAL: gl.constexpr, HAS_ALIBI: gl.constexpr, HEAD_BIAS: gl.constexpr, num_warps: gl.constexpr, SYNC_S: gl.constexpr, SYNC_PV: gl.constexpr):
    pid_m = gl.num_programs(0) - 1 - gl.program_id(0)  # longest (causal) query blocks first
    h = gl.program_id(1)
    b = gl.program_id(2)
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
        hbias = 0.5 * gl.load(Slopes + gl.num_programs(1) + h)
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
    tma.async_copy_global_to_shared(q_desc, [b, h, start_m, 0], qbar, q_smem)
    for j in gl.static_range(2):
        _gl_load(k_desc, k_smem, kbar, b, hk, j, n, BLOCK_N)
        _gl_load(v_desc, v_smem, vbar, b, hk, j, n, BLOCK_N)
    q = q_smem.reshape([BLOCK_M, HEAD_DIM])
    acc = warpgroup_mma_init(gl.zeros([BLOCK_M, HEAD_DIM], dtype=gl.float32, layout=o_layout))
    rows = start_m + off_q + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, s_layout))  # absolute positions
    cols0 = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, s_layout))
    s_zero = gl.zeros([BLOCK_M, BLOCK_N], dtype=gl.float32, layout=s_layout)
    mbarrier.wait(qbar, 0)
    mbarrier.wait(kbar.index(0), 0)
    s = warpgroup_mma(q, k_smem.index(0).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero, use_acc=False,
                      is_async=True)
    s = warpgroup_mma_wait(num_outstanding=0, deps=(s, ))
    _gl_load(k_desc, k_smem, kbar, b, hk, 2, n, BLOCK_N)
    p = gl.zeros([BLOCK_M, BLOCK_N], dtype=dtype, layout=p_layout)  # (no P V in flight yet)
    for j in range(n - 1):
        s, acc, p = _gl_step(s, acc, p, q, k_smem, v_smem, kbar, vbar, k_desc, v_desc, b, hk, j, n, n_full, rows,
                             cols0, hscale, hbias, hslope, s_zero, p_layout, BLOCK_N, HEAD_DIM, CAUSAL, HAS_ALIBI, True, SYNC_S, SYNC_PV)
    s, acc, p = _gl_step(s, acc, p, q, k_smem, v_smem, kbar, vbar, k_desc, v_desc, b, hk, n - 1, n, n_full, rows,
                         cols0, hscale, hbias, hslope, s_zero, p_layout, BLOCK_N, HEAD_DIM, CAUSAL, HAS_ALIBI, False, SYNC_S, SYNC_PV)
    acc, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc, p))
    mbarrier.invalidate(qbar)
    for i in gl.static_range(2):
        mbarrier.invalidate(kbar.index(i))
        mbarrier.invalidate(vbar.index(i))
    # O through q's tile, now free; the copy engine clips rows past Tq
    q.store(acc.to(dtype))
    fence_async_shared()
    tma.async_copy_shared_to_global(o_desc, [b, h, start_m, 0], q_smem)
    tma.store_wait(0)


