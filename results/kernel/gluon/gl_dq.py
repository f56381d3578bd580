"""Experiment (issue 11): a Gluon dQ kernel for Hopper, the forward's scheme (run 36) applied to the backward's
dQ pass: per query block (64 rows, one warpgroup), for each key block j
    S = Q K^T, dP = dO V^T (both issued one step ahead, asynchronous wgmma),
    4 dS = (1 - a^2) dP with a = tanh(S/2) (elementwise, overlapping the queued wgmmas),
    dQ += 4 dS K (asynchronous; waited for one step later).
K ring of 3 slots (K_j is read by S_j one step before and by dQ_j), V ring of 2. Causal, no ALiBi.
"""
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (fence_async_shared, mbarrier, tma, warpgroup_mma,
                                                              warpgroup_mma_init, warpgroup_mma_wait)


@gluon.jit
def _tanh(x):
    return gl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [x], dtype=gl.float32, is_pure=True,
                                     pack=1)


@gluon.jit
def _load(desc, smem, bar, b, h, j, n, BLOCK_N: gl.constexpr, SLOTS: gl.constexpr):
    s = j % SLOTS
    mbarrier.expect(bar.index(s), desc.block_type.nbytes, pred=j < n)
    tma.async_copy_global_to_shared(desc, [b, h, j * BLOCK_N, 0], bar.index(s), smem.index(s), pred=j < n)


@gluon.jit
def _dq_step(s, dp, dq, q, do, k_smem, v_smem, kbar, vbar, k_desc, v_desc, b, hk, j, n, n_full, rows, cols0,
             hscale, hbias, s_zero, ds_layout: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr,
             KS: gl.constexpr, HAS_NEXT: gl.constexpr):
    if HAS_NEXT:
        mbarrier.wait(kbar.index((j + 1) % KS), ((j + 1) // KS) & 1)
        s_next = warpgroup_mma(q, k_smem.index((j + 1) % KS).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero,
                               use_acc=False, is_async=True)
        mbarrier.wait(vbar.index((j + 1) % 2), ((j + 1) // 2) & 1)
        dp_next = warpgroup_mma(do, v_smem.index((j + 1) % 2).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero,
                                use_acc=False, is_async=True)
    a = _tanh(s * hscale + hbias)
    ds = (1.0 - a * a) * dp
    if j >= n_full:
        cols = j * BLOCK_N + cols0
        ds = gl.where(cols[None, :] <= rows[:, None], ds, 0.0)
    ds = gl.convert_layout(ds.to(k_smem.dtype), ds_layout)
    # dQ_{j-1} done: K's slot of block j - 1 takes block j - 1 + KS
    dq = warpgroup_mma_wait(num_outstanding=2 if HAS_NEXT else 0, deps=(dq, ))
    if j > 0:
        _load(k_desc, k_smem, kbar, b, hk, j - 1 + KS, n, BLOCK_N, KS)
    dq = warpgroup_mma(ds, k_smem.index(j % KS).reshape([BLOCK_N, HEAD_DIM]), dq, is_async=True)
    if HAS_NEXT:  # S_{j+1}, dP_{j+1} done: V's slot of block j + 1 takes block j + 3
        s, dp = warpgroup_mma_wait(num_outstanding=1, deps=(s_next, dp_next))
        _load(v_desc, v_smem, vbar, b, hk, j + 3, n, BLOCK_N, 2)
    return s, dp, dq


@gluon.jit
def _gl_dq_kernel(q_desc, k_desc, v_desc, do_desc, dq_desc, scale, hscale, hbias, Tq, Tk, off_q,
                  GROUP: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr,
                  KS: gl.constexpr, num_warps: gl.constexpr):
    pid_m = gl.num_programs(0) - 1 - gl.program_id(0)
    h = gl.program_id(1)
    b = gl.program_id(2)
    hk = h // GROUP
    start_m = pid_m * BLOCK_M
    dtype: gl.constexpr = q_desc.dtype
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                       instr_shape=[16, BLOCK_N, 16])
    dq_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                        instr_shape=[16, HEAD_DIM, 16])
    ds_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=dq_layout, k_width=2)
    q_smem = gl.allocate_shared_memory(dtype, q_desc.block_type.shape, q_desc.layout)
    do_smem = gl.allocate_shared_memory(dtype, do_desc.block_type.shape, do_desc.layout)
    k_smem = gl.allocate_shared_memory(dtype, [KS] + k_desc.block_type.shape, k_desc.layout)
    v_smem = gl.allocate_shared_memory(dtype, [2] + v_desc.block_type.shape, v_desc.layout)
    qbar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    kbar = gl.allocate_shared_memory(gl.int64, [KS, 1], mbarrier.MBarrierLayout())
    vbar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    mbarrier.init(qbar, count=1)
    for i in gl.static_range(KS):
        mbarrier.init(kbar.index(i), count=1)
    for i in gl.static_range(2):
        mbarrier.init(vbar.index(i), count=1)
    full_tk = (Tk // BLOCK_N) * BLOCK_N
    full_end = gl.minimum((gl.maximum(start_m + off_q + 1, 0) // BLOCK_N) * BLOCK_N, full_tk)
    diag_end = gl.maximum(gl.minimum(gl.maximum(start_m + BLOCK_M + off_q, 0), Tk), full_end)
    n = gl.cdiv(diag_end, BLOCK_N)
    n_full = full_end // BLOCK_N

    out = gl.zeros([BLOCK_M, HEAD_DIM], dtype=gl.float32, layout=dq_layout)
    q = q_smem.reshape([BLOCK_M, HEAD_DIM])
    do = do_smem.reshape([BLOCK_M, HEAD_DIM])
    if n > 0:
        mbarrier.expect(qbar, q_desc.block_type.nbytes + do_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(q_desc, [b, h, start_m, 0], qbar, q_smem)
        tma.async_copy_global_to_shared(do_desc, [b, h, start_m, 0], qbar, do_smem)
        for j in gl.static_range(KS):
            _load(k_desc, k_smem, kbar, b, hk, j, n, BLOCK_N, KS)
        for j in gl.static_range(2):
            _load(v_desc, v_smem, vbar, b, hk, j, n, BLOCK_N, 2)
        rows = start_m + off_q + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, s_layout))
        cols0 = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, s_layout))
        s_zero = gl.zeros([BLOCK_M, BLOCK_N], dtype=gl.float32, layout=s_layout)
        mbarrier.wait(qbar, 0)
        mbarrier.wait(kbar.index(0), 0)
        s = warpgroup_mma(q, k_smem.index(0).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero, use_acc=False,
                          is_async=True)
        mbarrier.wait(vbar.index(0), 0)
        dp = warpgroup_mma(do, v_smem.index(0).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), s_zero, use_acc=False,
                           is_async=True)
        s, dp = warpgroup_mma_wait(num_outstanding=0, deps=(s, dp))
        _load(v_desc, v_smem, vbar, b, hk, 2, n, BLOCK_N, 2)
        dq = warpgroup_mma_init(out)
        for j in range(n - 1):
            s, dp, dq = _dq_step(s, dp, dq, q, do, k_smem, v_smem, kbar, vbar, k_desc, v_desc, b, hk, j, n, n_full,
                                 rows, cols0, hscale, hbias, s_zero, ds_layout, BLOCK_N, HEAD_DIM, KS, True)
        s, dp, dq = _dq_step(s, dp, dq, q, do, k_smem, v_smem, kbar, vbar, k_desc, v_desc, b, hk, n - 1, n, n_full,
                             rows, cols0, hscale, hbias, s_zero, ds_layout, BLOCK_N, HEAD_DIM, KS, False)
        out = warpgroup_mma_wait(num_outstanding=0, deps=(dq, ))
    mbarrier.invalidate(qbar)
    for i in gl.static_range(KS):
        mbarrier.invalidate(kbar.index(i))
    for i in gl.static_range(2):
        mbarrier.invalidate(vbar.index(i))
    q.store((out * (0.25 * scale)).to(dtype))  # the loop carries 4 dS
    fence_async_shared()
    tma.async_copy_shared_to_global(dq_desc, [b, h, start_m, 0], q_smem)
    tma.store_wait(0)


def compile_sm90(cfg, D=128):
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource
    bm, bn, ks, w = cfg
    lq = gl.NVMMASharedLayout.get_default_for([1, 1, bm, D], gl.bfloat16)
    lk = gl.NVMMASharedLayout.get_default_for([1, 1, bn, D], gl.bfloat16)
    dq_, dk_ = f"tensordesc<bf16[1,1,{bm},{D}],{lq!r}>", f"tensordesc<bf16[1,1,{bn},{D}],{lk!r}>"
    consts = {"GROUP": 1, "BLOCK_M": bm, "BLOCK_N": bn, "HEAD_DIM": D, "KS": ks, "num_warps": w}
    sig = {"q_desc": dq_, "k_desc": dk_, "v_desc": dk_, "do_desc": dq_, "dq_desc": dq_, "scale": "fp32",
           "hscale": "fp32", "hbias": "fp32", "Tq": "i32", "Tk": "i32", "off_q": "i32",
           **{k: "constexpr" for k in consts}}
    return triton.compile(GluonASTSource(_gl_dq_kernel, sig, consts, {}), target=GPUTarget("cuda", 90, 32),
                          options=dict(num_warps=w))


if __name__ == "__main__":
    import re
    import subprocess
    import sys
    import tempfile
    from pathlib import Path
    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    for D in (64, 128):
        for cfg in [(64, 64, 3, 4), (64, 32, 3, 4), (64, 64, 4, 4)]:
            k = compile_sm90(cfg, D)
            with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
                f.write(k.asm["cubin"])
                f.flush()
                res = subprocess.run([str(cuobjdump), "--dump-resource-usage", f.name], capture_output=True,
                                     text=True).stdout
            m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:\d+ LOCAL:(\d+)", res)
            print(D, cfg, "reg/stack/local", m.groups(), "smem", k.metadata.shared,
                  "waits", re.findall(r"wgmma.wait_group.sync.aligned\s+(\d+)", k.asm["ptx"]))
