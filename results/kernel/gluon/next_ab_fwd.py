# Prepared for a later session, not run yet: the Gluon forward with 2 or 3 K/V ring slots (next_fwd_slots.patch
# applied: flashsigmoid.GLUON_FWD_SLOTS), against SDPA's default (cuDNN) causal forward, device time from CUDA-graph
# replay (triton.testing.do_bench_cudagraph, as bench.py times it) at the bench shapes; the outputs of the two slot
# counts must be bitwise equal (same maths, same order). From the repo root, the patch applied:
#   PYTHONPATH=. python results/kernel/gluon/next_ab_fwd.py
import math

import torch
import torch.nn.functional as F
import triton.testing

import flashsigmoid
from model import alibi_slopes

with torch.no_grad():
    for B, H, T, D in [(16, 12, 1024, 64), (8, 16, 2048, 128), (4, 32, 4096, 64), (2, 16, 8192, 128), (2, 12, 8192, 64)]:
        g = torch.Generator(device="cuda").manual_seed(T)
        q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).to(torch.bfloat16).transpose(1, 2) for _ in range(3))
        slopes = alibi_slopes(H).cuda()
        flops = 4 * B * H * T * T * D / 2  # causal

        def attn():
            return flashsigmoid.sigmoid_attention(q, k, v, bias=-math.log(T), alibi_slopes=slopes)
        res, outs = [], {}
        for slots in (2, 3):
            flashsigmoid.GLUON_FWD_SLOTS[D] = slots
            outs[slots] = attn()
            res.append((slots, triton.testing.do_bench_cudagraph(attn, rep=50, return_mode="median")))
        cudnn = triton.testing.do_bench_cudagraph(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                                                  rep=50, return_mode="median")
        print(f"RESULT ({B},{H},{T},{D}) cuDNN {cudnn:.4f} ms " + "  ".join(
            f"slots={s} {ms:.4f} ms {flops / ms / 1e9:.0f} TFLOP/s {cudnn / ms:.3f}x" for s, ms in res)
            + f"  bitwise equal: {torch.equal(outs[2], outs[3])}", flush=True)
