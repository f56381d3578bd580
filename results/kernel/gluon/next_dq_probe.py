# Prepared in session 33, not run (no device). Why does the Triton dQ kernel take 0.144 ms per call in the 124M step's
# profile (run 77) and 0.093 ms in run 52's isolated timing at the same (16, 12, 1024, 64)? Run 52 had q, k, v as
# separate (B, T, H, D) tensors, no ALiBi and no QK-norm epilogue; the model has all three differences. Device time
# per kernel (torch.profiler, eager fwd+bwd, 10 steps) for each step from run 52's setting to the model's:
#   sep      separate (B, T, H, D) tensors, no ALiBi          (run 52)
#   alibi    + ALiBi
#   packed   + q, k, v as views of one (B, T, 3C) projection  (row stride 3C)
#   fused    + QK-norm's fused op (qknorm.qk_norm_sigmoid_attention: pack kernel, the epilogues)  (the model)
# From the repo root: PYTHONPATH=. python results/kernel/gluon/next_dq_probe.py
import math

import torch
from torch.profiler import ProfilerActivity, profile

import flashsigmoid
import qknorm
from model import alibi_slopes

B, H, T, D = (16, 12, 1024, 64) if torch.cuda.is_available() else (1, 2, 64, 16)  # (a CPU only checks the script)
dev = "cuda" if torch.cuda.is_available() else "cpu"
dt = torch.bfloat16 if dev == "cuda" else torch.float32
g = torch.Generator(device=dev).manual_seed(0)
C = H * D
qkv = torch.randn(B, T, 3 * C, device=dev, generator=g).to(dt).requires_grad_(True)
sep = [torch.randn(B, T, H, D, device=dev, generator=g).to(dt).transpose(1, 2).requires_grad_(True) for _ in range(3)]
do = torch.randn(B, T, H, D, device=dev, generator=g).to(dt).transpose(1, 2)
slopes = alibi_slopes(H).to(dev)
wq, wk = (torch.rand(D, device=dev, generator=g) + 0.5 for _ in range(2))
bias = -math.log(T)


def views(x):  # q, k, v (B, H, T, D) views of the packed projection
    return [t.view(B, T, H, D).transpose(1, 2) for t in x.split(C, dim=-1)]


def step(name):
    if name in ("sep", "alibi"):
        o = flashsigmoid.sigmoid_attention(*sep, bias=bias, alibi_slopes=slopes if name == "alibi" else None)
        torch.autograd.grad(o, sep, do)
    elif name == "packed":
        o = flashsigmoid.sigmoid_attention(*views(qkv), bias=bias, alibi_slopes=slopes)
        torch.autograd.grad(o, qkv, do)
    else:
        o = qknorm.qk_norm_sigmoid_attention(qkv, wq, wk, H, H, bias=bias, alibi_slopes=slopes)
        torch.autograd.grad(o, qkv, do)


for name in ("sep", "alibi", "packed", "fused"):
    for _ in range(3):
        step(name)
    if dev != "cuda":
        print(f"{name}: ran (CPU)")
        continue
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(10):
            step(name)
        torch.cuda.synchronize()
    rows = sorted(((e.key, e.device_time_total / e.count / 1e3, e.count // 10) for e in prof.key_averages()
                   if e.device_time_total > 0), key=lambda r: -r[1] * r[2])
    print(f"RESULT {name}: " + " | ".join(f"{n[:28]} {ms:.4f} ms x{c}" for n, ms, c in rows[:6]), flush=True)
if dev == "cuda":  # the configs the autotuner picked for each Triton kernel (key: its tuning key's values)
    for kind, tuner in flashsigmoid._TUNED.items():
        print(f"RESULT picked {kind}: " + " | ".join(f"{str(k)[:60]} -> {c}" for k, c in getattr(tuner, "cache", {}).items()),
              flush=True)
