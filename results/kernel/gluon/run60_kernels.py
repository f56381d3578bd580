# Device time per kernel of FlashSigmoid's fwd+bwd (torch.profiler, 20 eager steps after warm-up) at the D=128
# bench shapes and (2, 12, 8192, 64): which of forward, dK/dV and dQ the backward's time is in.
# From the repo root: PYTHONPATH=. python results/kernel/gluon/run60_kernels.py
import math

import torch
from torch.profiler import ProfilerActivity, profile

import flashsigmoid
from bench import fwd_bwd
from model import alibi_slopes

for B, H, T, D in [(8, 16, 2048, 128), (2, 16, 8192, 128), (2, 12, 8192, 64)]:
    q, k, v = (torch.randn(B, T, H, D, device="cuda").to(torch.bfloat16).transpose(1, 2).requires_grad_(True)
               for _ in range(3))
    do = torch.randn(B, T, H, D, device="cuda").to(torch.bfloat16).transpose(1, 2)
    slopes = alibi_slopes(H).cuda()
    fb = fwd_bwd(lambda a, b, c: flashsigmoid.sigmoid_attention(a, b, c, bias=-math.log(T), alibi_slopes=slopes),
                 q, k, v, do)
    for _ in range(5):
        fb()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(20):
            fb()
        torch.cuda.synchronize()
    rows = sorted(((e.key, e.device_time_total / e.count / 1e3, e.count) for e in prof.key_averages()
                   if e.device_time_total > 0), key=lambda r: -r[1] * r[2])
    print(f"KERNELS ({B},{H},{T},{D}): " + " | ".join(f"{n[:40]} {ms:.4f} ms x{c // 20}" for n, ms, c in rows[:6]),
          flush=True)
