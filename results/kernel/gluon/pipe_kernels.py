"""Experiment kernels (issue 11, D=128 forward): FA3's intra-warpgroup overlap written in Triton.

base: today's TMA forward (two loops: unmasked blocks, then the diagonal), as run 27's stand-alone copy.
pipe: the same loops software-pipelined by hand: each step issues the NEXT key block's S = Q K^T before
      this block's sigmoid and P V, so the tensor cores work on S_{j+1} while the ALUs/MUFU do sigmoid(S_j)
      (if Triton leaves that wgmma in flight: check the PTX's wgmma.wait_group counts).
No torch import here, so it compiles ahead of time for sm_90 on any Triton.
"""
import triton
import triton.language as tl


@triton.jit
def _tanh(x):
    return tl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [x], dtype=tl.float32, is_pure=True, pack=1)


@triton.jit
def _p(qk, start_n, offs_m, hscale, hbias, BLOCK_N: tl.constexpr, MASK: tl.constexpr):
    p = 0.5 * _tanh(qk * hscale + hbias) + 0.5
    if MASK:  # keys past T are zero-filled by TMA, so v = 0 there: only the causal mask is needed
        offs_n = start_n + tl.arange(0, BLOCK_N)
        p = tl.where(offs_n[None, :] <= offs_m[:, None], p, 0.0)
    return p


@triton.jit
def _inner(acc, q, desc_k, desc_v, b, h, lo, hi, offs_m, hscale, hbias,
           BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, MASK: tl.constexpr):
    for start_n in range(lo, hi, BLOCK_N):
        k = desc_k.load([b, h, start_n, 0]).reshape(BLOCK_N, HEAD_DIM)
        qk = tl.dot(q, tl.trans(k))
        p = _p(qk, start_n, offs_m, hscale, hbias, BLOCK_N, MASK)
        v = desc_v.load([b, h, start_n, 0]).reshape(BLOCK_N, HEAD_DIM)
        acc = tl.dot(p.to(v.dtype), v, acc)
    return acc


@triton.jit
def _inner_pipe(acc, q, desc_k, desc_v, b, h, lo, hi, offs_m, hscale, hbias,
                BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, MASK: tl.constexpr):
    if lo < hi:
        k = desc_k.load([b, h, lo, 0]).reshape(BLOCK_N, HEAD_DIM)
        qk = tl.dot(q, tl.trans(k))
        for start_n in range(lo, hi - BLOCK_N, BLOCK_N):
            k = desc_k.load([b, h, start_n + BLOCK_N, 0]).reshape(BLOCK_N, HEAD_DIM)
            qk_next = tl.dot(q, tl.trans(k))
            p = _p(qk, start_n, offs_m, hscale, hbias, BLOCK_N, MASK)
            v = desc_v.load([b, h, start_n, 0]).reshape(BLOCK_N, HEAD_DIM)
            acc = tl.dot(p.to(v.dtype), v, acc)
            qk = qk_next
        last = hi - BLOCK_N
        p = _p(qk, last, offs_m, hscale, hbias, BLOCK_N, MASK)
        v = desc_v.load([b, h, last, 0]).reshape(BLOCK_N, HEAD_DIM)
        acc = tl.dot(p.to(v.dtype), v, acc)
    return acc


@triton.jit
def _fwd(desc_q, desc_k, desc_v, desc_o, hscale, hbias, T,
         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, PIPE: tl.constexpr):
    pid_m = tl.num_programs(0) - 1 - tl.program_id(0)
    h = tl.program_id(1)
    b = tl.program_id(2)
    start_m = pid_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    q = desc_q.load([b, h, start_m, 0]).reshape(BLOCK_M, HEAD_DIM)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    # (the loops' ends are multiples of BLOCK_N: BLOCK_N divides BLOCK_M, keys past T arrive as zeros)
    diag_end = start_m + BLOCK_M
    full_end = (start_m // BLOCK_N) * BLOCK_N
    if PIPE:
        acc = _inner_pipe(acc, q, desc_k, desc_v, b, h, 0, full_end, offs_m, hscale, hbias, BLOCK_N, HEAD_DIM, False)
        acc = _inner_pipe(acc, q, desc_k, desc_v, b, h, full_end, diag_end, offs_m, hscale, hbias, BLOCK_N, HEAD_DIM,
                          True)
    else:
        acc = _inner(acc, q, desc_k, desc_v, b, h, 0, full_end, offs_m, hscale, hbias, BLOCK_N, HEAD_DIM, False)
        acc = _inner(acc, q, desc_k, desc_v, b, h, full_end, diag_end, offs_m, hscale, hbias, BLOCK_N, HEAD_DIM, True)
    desc_o.store([b, h, start_m, 0], acc.to(desc_o.dtype).reshape(1, 1, BLOCK_M, HEAD_DIM))


def compile_sm90(pipe, cfg, D=128):
    """Ahead-of-time compile for sm_90 (no GPU): the CompiledKernel (asm['ptx'], metadata)."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    bm, bn, st, w = cfg
    sig = {"desc_q": f"tensordesc<bf16[1,1,{bm},{D}]>", "desc_k": f"tensordesc<bf16[1,1,{bn},{D}]>",
           "desc_v": f"tensordesc<bf16[1,1,{bn},{D}]>", "desc_o": f"tensordesc<bf16[1,1,{bm},{D}]>",
           "hscale": "fp32", "hbias": "fp32", "T": "i32",
           "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "HEAD_DIM": "constexpr", "PIPE": "constexpr"}
    consts = {"BLOCK_M": bm, "BLOCK_N": bn, "HEAD_DIM": D, "PIPE": pipe}
    src = ASTSource(_fwd, sig, consts, {(6,): [["tt.divisibility", 16]]})
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=w, num_stages=st))


if __name__ == "__main__":
    import re
    import sys
    D = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    for cfg in [(128, 64, 3, 8), (128, 128, 2, 8), (64, 64, 3, 4), (128, 64, 2, 8)]:
        for pipe in (False, True):
            k = compile_sm90(pipe, cfg, D)
            ptx = k.asm["ptx"]
            waits = re.findall(r"wgmma.wait_group.sync.aligned\s+(\d+)", ptx)
            print(cfg, "pipe" if pipe else "base", "regs", k.n_regs if hasattr(k, "n_regs") else "?",
                  "spills", getattr(k, "n_spills", "?"), "smem", k.metadata.shared, "waits", waits)
