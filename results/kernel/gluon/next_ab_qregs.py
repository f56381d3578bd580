# Prepared in session 35 (no device), not run yet: the Gluon forward with Q in registers (next_fwd_qregs.patch applied:
# flashsigmoid.GLUON_FWD_Q_REGS) against Q from shared memory, and SDPA's default (cuDNN) causal forward, device time
# from CUDA-graph replay (do_bench_cudagraph, as bench.py times it), at the bench shapes, off / on alternated twice in
# one process. Prediction (a shared-memory model, 128 B/clock per SM): at D=128 a step of the 64 x 64 tile moves 80 KB
# through shared memory (Q and K read by S's wgmmas, V by P V's, K and V written by the copy engine) in 512 tensor-core
# cycles' work: 640 cycles, so up to 1.2x faster with Q in registers (512); at D=64 the same ratio, but 127 -> 141
# registers takes the forward from 4 programs per SM to 3, so D=64 also runs capped at 128 registers (ptxas's
# maxnreg; 4 programs; Triton 3.6 puts 8 bytes of stack outside the loop). The outputs of every arm must be bitwise
# equal (the same products in the same order). From the repo root, the patch applied:
#   PYTHONPATH=. python results/kernel/gluon/next_ab_qregs.py
import math

import torch
import torch.nn.functional as F
import triton.testing

import flashsigmoid
from model import alibi_slopes

with torch.no_grad():
    for B, H, T, D in [(8, 16, 2048, 128), (2, 16, 8192, 128), (16, 12, 1024, 64), (4, 32, 4096, 64), (2, 12, 8192, 64)]:
        g = torch.Generator(device="cuda").manual_seed(T)
        q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).to(torch.bfloat16).transpose(1, 2) for _ in range(3))
        slopes = alibi_slopes(H).cuda()
        flops = 4 * B * H * T * T * D / 2  # causal

        def attn():
            return flashsigmoid.sigmoid_attention(q, k, v, bias=-math.log(T), alibi_slopes=slopes)
        arms = {"off": {}, "on": {D: None}, **({"on_cap128": {D: 128}} if D == 64 else {})}
        ms, outs = {a: [] for a in arms}, {}
        for _ in range(2):
            for a, setting in arms.items():
                flashsigmoid.GLUON_FWD_Q_REGS = setting
                outs[a] = attn()
                ms[a].append(triton.testing.do_bench_cudagraph(attn, rep=50, return_mode="median"))
        cudnn = triton.testing.do_bench_cudagraph(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                                                  rep=50, return_mode="median")
        print(f"RESULT ({B},{H},{T},{D}) cuDNN {cudnn:.4f} ms " + "  ".join(
            f"{a} {min(t):.4f} ms ({'/'.join(f'{x:.4f}' for x in t)}) {flops / min(t) / 1e9:.0f} TFLOP/s "
            f"{cudnn / min(t):.3f}x cuDNN, {min(ms['off']) / min(t):.3f}x off" for a, t in ms.items())
            + f"  bitwise equal: {all(torch.equal(outs['off'], o) for o in outs.values())}", flush=True)
