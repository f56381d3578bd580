"""Experiment (issue 11): a Gluon FlashSigmoid forward for Hopper, FA3's intra-warpgroup overlap.

One warpgroup per program (BLOCK_M = 64 rows, 4 warps), so two programs share an SM and interleave on
their own (the ping-pong that FA3 schedules by hand between two warpgroups). Inside a program the key
loop is software-pipelined with asynchronous wgmma: the next block's S = Q K^T is issued before this
block's sigmoid, and P V runs while the next sigmoid is computed. K and V tiles arrive by TMA in a
STAGES-deep ring each, issued by the same warps once the wgmma that read a slot has completed (a K
slot once its S is done, a V slot once its P V is done: each load has about one iteration to land).
Causal self-attention, no ALiBi (experiment). No torch import at module level: it compiles ahead of time.
"""
import triton
import triton.language as tl
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (fence_async_shared, mbarrier, tma, warpgroup_mma,
                                                              warpgroup_mma_init,
                                                              warpgroup_mma_wait)


@gluon.jit
def _tanh(x):
    return gl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [x], dtype=gl.float32, is_pure=True,
                                     pack=1)


@gluon.jit
def _issue(desc, smem, bar, b, h, j, n, BLOCK_N: gl.constexpr, STAGES: gl.constexpr):
    # the load of key block j (K or V) into ring slot j % STAGES; none past the last block
    s = j % STAGES
    pred = j < n
    mbarrier.expect(bar.index(s), desc.block_type.nbytes, pred=pred)
    tma.async_copy_global_to_shared(desc, [b, h, j * BLOCK_N, 0], bar.index(s), smem.index(s), pred=pred)


@gluon.jit
def _step(s, acc, q2, k_smem, v_smem, kbar, vbar, k_desc, v_desc, b, h, j, n, n_full, rows, cols0, hscale, hbias,
          s_zero, p_layout: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr, STAGES: gl.constexpr,
          HAS_NEXT: gl.constexpr):
    # one key block j: S_j (done) -> P_j -> acc += P_j V_j, with S_{j+1} issued first when there is one
    slot = j % STAGES
    if HAS_NEXT:  # next block's S on the tensor cores while this block's sigmoid runs
        nslot = (j + 1) % STAGES
        mbarrier.wait(kbar.index(nslot), ((j + 1) // STAGES) & 1)
        s_next = warpgroup_mma(q2, k_smem.index(nslot).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero,
                               use_acc=False, is_async=True)
    p = 0.5 * _tanh(s * hscale + hbias) + 0.5
    if j >= n_full:  # the diagonal blocks: causal mask (keys past T are also past every row)
        cols = j * BLOCK_N + cols0
        p = gl.where(cols[None, :] <= rows[:, None], p, 0.0)
    p = gl.convert_layout(p.to(k_smem.dtype), p_layout)
    # the previous P V has finished: its V slot (and its K slot) are free
    acc = warpgroup_mma_wait(num_outstanding=1 if HAS_NEXT else 0, deps=(acc, ))
    if j > 0:  # V's slot of block j - 1 is free: it takes block j - 1 + STAGES
        _issue(v_desc, v_smem, vbar, b, h, j - 1 + STAGES, n, BLOCK_N, STAGES)
    mbarrier.wait(vbar.index(slot), (j // STAGES) & 1)
    acc = warpgroup_mma(p, v_smem.index(slot).reshape([BLOCK_N, HEAD_DIM]), acc, is_async=True)
    if HAS_NEXT:  # S_{j+1} done: K's slot of block j + 1 takes block j + 1 + STAGES
        s = warpgroup_mma_wait(num_outstanding=1, deps=(s_next, ))
        _issue(k_desc, k_smem, kbar, b, h, j + 1 + STAGES, n, BLOCK_N, STAGES)
    return s, acc


@gluon.jit
def _gl_fwd_kernel(q_desc, k_desc, v_desc, o_desc, hscale, hbias, T,
                   BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr, STAGES: gl.constexpr,
                   num_warps: gl.constexpr):
    pid_m = gl.num_programs(0) - 1 - gl.program_id(0)  # longest query blocks first
    h = gl.program_id(1)
    b = gl.program_id(2)
    start_m = pid_m * BLOCK_M
    dtype: gl.constexpr = q_desc.dtype

    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                       instr_shape=[16, BLOCK_N, 16])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                       instr_shape=[16, HEAD_DIM, 16])
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)

    q_smem = gl.allocate_shared_memory(dtype, q_desc.block_type.shape, q_desc.layout)
    k_smem = gl.allocate_shared_memory(dtype, [STAGES] + k_desc.block_type.shape, k_desc.layout)
    v_smem = gl.allocate_shared_memory(dtype, [STAGES] + v_desc.block_type.shape, v_desc.layout)
    qbar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    kbar = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    vbar = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    mbarrier.init(qbar, count=1)
    for i in gl.static_range(STAGES):
        mbarrier.init(kbar.index(i), count=1)
        mbarrier.init(vbar.index(i), count=1)

    # causal: key blocks [0, n); the first n_full need no mask (BLOCK_N divides BLOCK_M)
    n = gl.cdiv(gl.minimum(start_m + BLOCK_M, T), BLOCK_N)
    n_full = start_m // BLOCK_N

    mbarrier.expect(qbar, q_desc.block_type.nbytes)
    tma.async_copy_global_to_shared(q_desc, [b, h, start_m, 0], qbar, q_smem)
    for j in gl.static_range(STAGES):
        _issue(k_desc, k_smem, kbar, b, h, j, n, BLOCK_N, STAGES)
        _issue(v_desc, v_smem, vbar, b, h, j, n, BLOCK_N, STAGES)

    q2 = q_smem.reshape([BLOCK_M, HEAD_DIM])
    acc = warpgroup_mma_init(gl.zeros([BLOCK_M, HEAD_DIM], dtype=gl.float32, layout=o_layout))
    s_zero = gl.zeros([BLOCK_M, BLOCK_N], dtype=gl.float32, layout=s_layout)
    rows = start_m + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, s_layout))
    cols0 = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, s_layout))

    mbarrier.wait(qbar, 0)
    mbarrier.wait(kbar.index(0), 0)
    s = warpgroup_mma(q2, k_smem.index(0).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero, use_acc=False,
                      is_async=True)
    s = warpgroup_mma_wait(num_outstanding=0, deps=(s, ))
    _issue(k_desc, k_smem, kbar, b, h, STAGES, n, BLOCK_N, STAGES)
    for j in range(n - 1):
        s, acc = _step(s, acc, q2, k_smem, v_smem, kbar, vbar, k_desc, v_desc, b, h, j, n, n_full, rows, cols0,
                       hscale, hbias, s_zero, p_layout, BLOCK_N, HEAD_DIM, STAGES, True)
    s, acc = _step(s, acc, q2, k_smem, v_smem, kbar, vbar, k_desc, v_desc, b, h, n - 1, n, n_full, rows, cols0,
                   hscale, hbias, s_zero, p_layout, BLOCK_N, HEAD_DIM, STAGES, False)
    acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc, ))

    mbarrier.invalidate(qbar)
    for i in gl.static_range(STAGES):
        mbarrier.invalidate(kbar.index(i))
        mbarrier.invalidate(vbar.index(i))
    # O through q's (now free) shared tile; the copy engine clips rows past T
    q2.store(acc.to(dtype))
    fence_async_shared()
    tma.async_copy_shared_to_global(o_desc, [b, h, start_m, 0], q_smem)
    tma.store_wait(0)


def compile_sm90(cfg, D=128):
    """Ahead-of-time compile for sm_90 (no GPU)."""
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource
    bm, bn, st, w = cfg
    lq = gl.NVMMASharedLayout.get_default_for([1, 1, bm, D], gl.bfloat16)
    lk = gl.NVMMASharedLayout.get_default_for([1, 1, bn, D], gl.bfloat16)
    sig = {"q_desc": f"tensordesc<bf16[1,1,{bm},{D}],{lq!r}>", "k_desc": f"tensordesc<bf16[1,1,{bn},{D}],{lk!r}>",
           "v_desc": f"tensordesc<bf16[1,1,{bn},{D}],{lk!r}>", "o_desc": f"tensordesc<bf16[1,1,{bm},{D}],{lq!r}>",
           "hscale": "fp32", "hbias": "fp32", "T": "i32",
           "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "HEAD_DIM": "constexpr", "STAGES": "constexpr",
           "num_warps": "constexpr"}
    consts = {"BLOCK_M": bm, "BLOCK_N": bn, "HEAD_DIM": D, "STAGES": st, "num_warps": w}
    src = GluonASTSource(_gl_fwd_kernel, sig, consts, {})
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=w, num_stages=1))


if __name__ == "__main__":
    import re
    import subprocess
    import sys
    import tempfile
    from pathlib import Path
    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    D = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    for cfg in [(64, 64, 2, 4), (64, 64, 3, 4), (64, 128, 2, 4)]:
        k = compile_sm90(cfg, D)
        with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
            f.write(k.asm["cubin"])
            f.flush()
            res = subprocess.run([str(cuobjdump), "--dump-resource-usage", f.name], capture_output=True, text=True).stdout
        m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:\d+ LOCAL:(\d+)", res)
        waits = re.findall(r"wgmma.wait_group.sync.aligned\s+(\d+)", k.asm["ptx"])
        print(cfg, "reg/stack/local", m.groups(), "smem", k.metadata.shared, "waits", waits)
