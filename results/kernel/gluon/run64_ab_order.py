# Launch order A/B (run 64): FlashSigmoid's forward and fwd+bwd at the bench shapes by CUDA-graph replay
# (device time, as bench.py times), cuDNN's (SDPA, causal) beside them in the same process, then device time
# per kernel (torch.profiler, eager) for one code version: PYTHONPATH picks flashsigmoid, TAG names it.
# From the repo root, main (old order: per head) against the 1-D, L2-sectioned, longest-first order:
#   for i in 1 2; do TAG=old PYTHONPATH=devcarry/old:. python results/kernel/gluon/run64_ab_order.py
#                    TAG=new PYTHONPATH=. python results/kernel/gluon/run64_ab_order.py; done
import math
import os

import torch
import torch.nn.functional as F
import triton.testing
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile

import flashsigmoid
from bench import fwd_bwd
from model import alibi_slopes

tag = os.environ["TAG"]
cudnn = os.environ.get("CUDNN", "1") == "1"
for B, H, T, D in [(16, 12, 1024, 64), (8, 16, 2048, 128), (4, 32, 4096, 64), (2, 16, 8192, 128), (2, 12, 8192, 64)]:
    g = torch.Generator(device="cuda").manual_seed(T)
    q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).to(torch.bfloat16).transpose(1, 2).requires_grad_(True)
               for _ in range(3))
    do = torch.randn(B, T, H, D, device="cuda", generator=g).to(torch.bfloat16).transpose(1, 2)
    slopes = alibi_slopes(H).cuda()
    flops = 4 * B * H * T * T * D / 2  # causal forward

    def attn(a, b, c):
        return flashsigmoid.sigmoid_attention(a, b, c, bias=-math.log(T), alibi_slopes=slopes)
    fb = triton.testing.do_bench_cudagraph(fwd_bwd(attn, q, k, v, do), rep=100, return_mode="median")
    f = triton.testing.do_bench_cudagraph(lambda: attn(q, k, v), rep=100, return_mode="median")
    line = (f"RESULT {tag} ({B},{H},{T},{D}) fwd {f:.4f} ms {flops / f * 1e-9:.0f} TFLOP/s  fwd+bwd {fb:.4f} ms "
            f"{3.5 * flops / fb * 1e-9:.0f} TFLOP/s")
    if cudnn:
        def sd(a, b, c):
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                return F.scaled_dot_product_attention(a, b, c, is_causal=True)
        cfb = triton.testing.do_bench_cudagraph(fwd_bwd(sd, q, k, v, do), rep=100, return_mode="median")
        cf = triton.testing.do_bench_cudagraph(lambda: sd(q, k, v), rep=100, return_mode="median")
        line += f"  | cuDNN fwd {cf:.4f} fwd+bwd {cfb:.4f}  ratio fwd {cf / f:.3f} fwd+bwd {cfb / fb:.3f}"
    print(line, flush=True)
    step = fwd_bwd(attn, q, k, v, do)
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(10):
            step()
        torch.cuda.synchronize()
    rows = sorted(((e.key, e.device_time_total / e.count / 1e3, e.count) for e in prof.key_averages()
                   if e.device_time_total > 0), key=lambda r: -r[1] * r[2])
    print(f"KERNELS {tag} ({B},{H},{T},{D}): " + " | ".join(f"{n[:24]} {ms:.4f} ms x{c // 10}" for n, ms, c in rows[:4]),
          flush=True)
