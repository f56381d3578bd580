"""Forward device time (CUDA-graph replay): the kernel with tensor descriptors (TMA_FWD) and with pointer
loads, each autotuned over the same table, against cuDNN; causal bf16, the model's (B, T, H, D) layout."""
import sys, os
sys.path.insert(0, os.getcwd())
import torch, triton, triton.testing
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
import flashsigmoid as fs
SHAPES = [(16, 12, 1024, 64), (8, 16, 2048, 128), (4, 32, 4096, 64), (2, 16, 8192, 128), (2, 12, 8192, 64)]
print(torch.__version__, triton.__version__, torch.cuda.get_device_name())
print("| (B, H, T, D) | TMA ms | pointer ms | cuDNN ms | TMA / pointer | cuDNN / TMA | TMA TF/s |")
for B, H, T, D in SHAPES:
    q, k, v = (torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16).transpose(1, 2) for _ in range(3))
    r = {}
    for tma in (True, False):
        fs.TMA_FWD = tma
        f = lambda: fs.sigmoid_attention(q, k, v, causal=True)
        f()
        r[tma] = triton.testing.do_bench_cudagraph(f, rep=200)
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        c = triton.testing.do_bench_cudagraph(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), rep=200)
    tf = 4 * B * H * T * T * D / 2 / r[True] / 1e9
    print(f"| {B}, {H}, {T}, {D} | {r[True]:.4f} | {r[False]:.4f} | {c:.4f} | {r[False] / r[True]:.3f}x | {c / r[True]:.3f}x | {tf:.0f} |", flush=True)
fs.TMA_FWD = True
