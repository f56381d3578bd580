# The launch order below T=8192 with the warp-specialised kernels (one 128-row program per SM at head dim 128):
# LPT_MIN_LEN 8192 (landed: one (batch, head) pair after another below it) against 2048 and 1024 (longest blocks
# first in L2 sections), alternated twice in one process; forward and forward+backward from CUDA-graph replay, as
# bench.py's graph columns, with cuDNN alongside. Outputs must be bitwise equal across orders (same tiles, same maths).
# Then the per-kernel device time of one forward+backward (profiler) at the two head-dim-128 shapes.
#   PYTHONPATH=. python results/kernel/gluon/run99_lpt.py
import torch
import torch.nn.functional as F
import triton
import triton.testing
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile

import flashsigmoid as fs
from bench import fwd_bwd

SHAPES = [(16, 12, 1024, 64), (8, 16, 2048, 128), (4, 32, 4096, 64), (2, 16, 8192, 128), (2, 12, 8192, 64)]
ORDERS = [8192, 2048, 1024]
props = torch.cuda.get_device_properties(0)
print(f"gpu {props.name}, torch {torch.__version__}, triton {triton.__version__}", flush=True)


def bench(fn):
    return triton.testing.do_bench_cudagraph(fn, rep=50, return_mode="median")


attn = lambda q, k, v: fs.sigmoid_attention(q, k, v, causal=True)  # noqa: E731
sdpa = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)  # noqa: E731
for B, H, T, D in SHAPES:
    q, k, v, do = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16) for _ in range(4))
    qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))
    flops = 4 * B * H * T * T * D / 2
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        with torch.no_grad():
            cu_f = bench(lambda: sdpa(q, k, v))
        cu_fb = bench(fwd_bwd(sdpa, qg, kg, vg, do))
    res = {n: [] for n in ORDERS}
    ref = None
    for rnd in range(2):
        for n in ORDERS:
            fs.LPT_MIN_LEN = n
            with torch.no_grad():
                o = attn(q, k, v)
                f = bench(lambda: attn(q, k, v))
            g = torch.autograd.grad(attn(qg, kg, vg), (qg, kg, vg), do)
            fb = bench(fwd_bwd(attn, qg, kg, vg, do))
            out = (o, *g)
            if ref is None:
                ref = out
            same = all(torch.equal(a, b) for a, b in zip(out, ref))
            res[n].append((f, fb, same))
    fs.LPT_MIN_LEN = 8192
    print(f"({B},{H},{T},{D}) cuDNN fwd {cu_f:.4f} ms, fwd+bwd {cu_fb:.4f} ms", flush=True)
    for n in ORDERS:
        fw = [r[0] for r in res[n]]
        fb = [r[1] for r in res[n]]
        print(f"  LPT_MIN_LEN {n:5d}: fwd {fw[0]:.4f} {fw[1]:.4f} ms ({cu_f / min(fw):.3f}-{cu_f / max(fw):.3f}x cuDNN)"
              f"  f+b {fb[0]:.4f} {fb[1]:.4f} ms ({cu_fb / min(fb):.3f}-{cu_fb / max(fb):.3f}x cuDNN)"
              f"  bitwise {all(r[2] for r in res[n])}", flush=True)
    if D == 128:
        fbk = fwd_bwd(attn, qg, kg, vg, do)
        fbk()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                fbk()
            torch.cuda.synchronize()
        for e in prof.key_averages():
            dt = getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0)
            if dt > 0:
                print(f"    {e.key[:40]:40s} x{e.count:3d} {dt / e.count / 1000:.4f} ms each", flush=True)
    torch.cuda.empty_cache()
