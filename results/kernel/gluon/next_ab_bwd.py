# FlashSigmoid's fwd+bwd and bwd alone at the bench shapes, replayed from
# CUDA graphs (device time, triton.testing.do_bench_cudagraph as bench.py times it), for one code version
# (PYTHONPATH picks flashsigmoid), TAG names it. With next_dkdv_loads_first.patch applied to a copy (say
# devcarry/new/flashsigmoid.py), from the repo root:
#   for i in 1 2; do TAG=main PYTHONPATH=. python results/kernel/gluon/next_ab_bwd.py
#                    TAG=new PYTHONPATH=devcarry/new:. python results/kernel/gluon/next_ab_bwd.py; done
import math
import os

import torch
import triton.testing

import flashsigmoid
from bench import fwd_bwd
from model import alibi_slopes

tag = os.environ["TAG"]
for B, H, T, D in [(16, 12, 1024, 64), (8, 16, 2048, 128), (4, 32, 4096, 64), (2, 16, 8192, 128), (2, 12, 8192, 64)]:
    g = torch.Generator(device="cuda").manual_seed(T)
    q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).to(torch.bfloat16).transpose(1, 2).requires_grad_(True)
               for _ in range(3))
    do = torch.randn(B, T, H, D, device="cuda", generator=g).to(torch.bfloat16).transpose(1, 2)
    slopes = alibi_slopes(H).cuda()

    def attn(a, b, c):
        return flashsigmoid.sigmoid_attention(a, b, c, bias=-math.log(T), alibi_slopes=slopes)
    # the backward alone as fwd+bwd less the forward: an output made outside do_bench_cudagraph's capture stream
    # would run its backward on the legacy stream, which a capture refuses
    fb = triton.testing.do_bench_cudagraph(fwd_bwd(attn, q, k, v, do), rep=50, return_mode="median")
    f = triton.testing.do_bench_cudagraph(lambda: attn(q, k, v), rep=50, return_mode="median")
    bwd = fb - f
    print(f"RESULT {tag} ({B},{H},{T},{D}) fwd+bwd {fb:.4f} ms  bwd {bwd:.4f} ms (fwd+bwd less fwd with autograd)", flush=True)
