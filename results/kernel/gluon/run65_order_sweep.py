# Launch order sweep (run 65), one process: the section width is a run-time kernel argument, so each order
# is the same compiled kernels. Orders: "head" (one (batch, head) pair after another, longest block first:
# main before run 64), and L2 sections of 32, 8 and 2 MB of streamed tiles and one section of all pairs,
# each block of every pair in a section at once, longest first. Device time by CUDA-graph replay, orders
# interleaved, two rounds; cuDNN's once per shape. From the repo root:
#   PYTHONPATH=. python results/kernel/gluon/run65_order_sweep.py
import math

import torch
import torch.nn.functional as F
import triton.testing
from torch.nn.attention import SDPBackend, sdpa_kernel

import flashsigmoid
from bench import fwd_bwd
from model import alibi_slopes

ORDERS = {"head": (math.inf, 32 << 20), "32MB": (0, 32 << 20), "8MB": (0, 8 << 20), "2MB": (0, 2 << 20),
          "all": (0, 1 << 50)}
for B, H, T, D in [(16, 12, 1024, 64), (8, 16, 2048, 128), (4, 32, 4096, 64), (2, 16, 8192, 128), (2, 12, 8192, 64)]:
    g = torch.Generator(device="cuda").manual_seed(T)
    q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).to(torch.bfloat16).transpose(1, 2).requires_grad_(True)
               for _ in range(3))
    do = torch.randn(B, T, H, D, device="cuda", generator=g).to(torch.bfloat16).transpose(1, 2)
    slopes = alibi_slopes(H).cuda()

    def attn(a, b, c):
        return flashsigmoid.sigmoid_attention(a, b, c, bias=-math.log(T), alibi_slopes=slopes)

    def sd(a, b, c):
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            return F.scaled_dot_product_attention(a, b, c, is_causal=True)
    cfb = triton.testing.do_bench_cudagraph(fwd_bwd(sd, q, k, v, do), rep=100, return_mode="median")
    cf = triton.testing.do_bench_cudagraph(lambda: sd(q, k, v), rep=100, return_mode="median")
    res = {o: [] for o in ORDERS}
    for rnd in range(2):
        for name, (min_len, l2) in ORDERS.items():
            flashsigmoid.LPT_MIN_LEN, flashsigmoid.L2_SECTION_BYTES = min_len, l2
            fb = triton.testing.do_bench_cudagraph(fwd_bwd(attn, q, k, v, do), rep=100, return_mode="median")
            f = triton.testing.do_bench_cudagraph(lambda: attn(q, k, v), rep=100, return_mode="median")
            res[name].append((f, fb))
    print(f"SWEEP ({B},{H},{T},{D}) cuDNN fwd {cf:.4f} fwd+bwd {cfb:.4f} ms", flush=True)
    for name, r in res.items():
        f = min(x[0] for x in r)
        fb = min(x[1] for x in r)
        print(f"SWEEP ({B},{H},{T},{D}) {name:5s} fwd {r[0][0]:.4f} {r[1][0]:.4f} fwd+bwd {r[0][1]:.4f} {r[1][1]:.4f} ms"
              f"  best vs cuDNN: fwd {cf / f:.3f} fwd+bwd {cfb / fb:.3f}", flush=True)
