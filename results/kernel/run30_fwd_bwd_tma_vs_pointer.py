"""A/B at fixed tiles (AUTOTUNE off: entry _DEFAULT of each table): fwd+bwd device time (CUDA-graph replay)
with tensor descriptors in all three kernels (USE_TMA) against pointer loads; default backward (atomic dQ
from 2048 keys) and the deterministic one; causal bf16, the model's (B, T, H, D) layout."""
import os, sys
sys.path.insert(0, os.getcwd())
import torch, triton, triton.testing
import flashsigmoid as fs
fs.AUTOTUNE = False
SHAPES = [(16, 12, 1024, 64), (8, 16, 2048, 128), (4, 32, 4096, 64), (2, 16, 8192, 128), (2, 12, 8192, 64)]
print(torch.__version__, triton.__version__, torch.cuda.get_device_name(), "fixed tiles:",
      {k: t["small"][fs._DEFAULT] for k, t in fs._TABLES.items()})
print("| (B, H, T, D) | mode | TMA fwd+bwd ms | pointer fwd+bwd ms | pointer / TMA |")
for B, H, T, D in SHAPES:
    q, k, v, do = (torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16).transpose(1, 2) for _ in range(4))
    q, k, v = (t.requires_grad_(True) for t in (q, k, v))
    for det in (False, True):
        r = {}
        for tma in (True, False):
            fs.USE_TMA = tma
            def f():
                o = fs.sigmoid_attention(q, k, v, causal=True, deterministic=det)
                torch.autograd.grad(o, (q, k, v), do)
            f()
            r[tma] = triton.testing.do_bench_cudagraph(f, rep=100)
        print(f"| {B}, {H}, {T}, {D} | {'det' if det else 'default'} | {r[True]:.4f} | {r[False]:.4f} | {r[False] / r[True]:.3f}x |", flush=True)
