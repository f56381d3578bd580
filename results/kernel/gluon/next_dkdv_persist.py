# The persistent Gluon dK/dV (next_dkdv_persist.patch, session 41, not yet run on a GPU) against one program per key
# block: forward + backward from CUDA-graph replay at bench.py's shapes, the landed forward and dQ kernels in both
# arms, alternated twice; dK, dV bitwise equal between arms. From the repo root, the patch applied:
#   PYTHONPATH=. python results/kernel/gluon/next_dkdv_persist.py
import torch
import torch.nn.functional as F
import triton
import triton.testing
from torch.nn.attention import SDPBackend, sdpa_kernel

import flashsigmoid as fs
from bench import fwd_bwd

SHAPES = [(16, 12, 1024, 64), (8, 16, 2048, 128), (4, 32, 4096, 64), (2, 16, 8192, 128), (2, 12, 8192, 64)]
ARMS = {"per block": 0, "persistent, 2 per SM": 2}
print(f"gpu {torch.cuda.get_device_properties(0).name}, torch {torch.__version__}, triton {triton.__version__}")
attn = lambda q, k, v: fs.sigmoid_attention(q, k, v, causal=True)  # noqa: E731
base = dict(fs.GLUON_DKDV)
for B, H, T, D in SHAPES:
    q, k, v, do = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16) for _ in range(4))
    qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        sdpa = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)  # noqa: E731
        cu = triton.testing.do_bench_cudagraph(fwd_bwd(sdpa, qg, kg, vg, do), rep=50, return_mode="median")
    res, ref = {a: [] for a in ARMS}, None
    for rnd in range(2):
        for arm, per_sm in ARMS.items():
            fs.GLUON_DKDV = {**base, D: base[D][:4] + (per_sm,)}
            got = torch.autograd.grad(attn(qg, kg, vg), (qg, kg, vg), do)
            ref = got if ref is None else ref
            same = all(torch.equal(a, b) for a, b in zip(got, ref))
            ms = triton.testing.do_bench_cudagraph(fwd_bwd(attn, qg, kg, vg, do), rep=50, return_mode="median")
            res[arm].append((ms, same))
    fs.GLUON_DKDV = base
    print(f"({B},{H},{T},{D}) cuDNN f+b {cu:.4f} ms", flush=True)
    for arm, r in res.items():
        print(f"  {arm:22s} f+b {r[0][0]:.4f} {r[1][0]:.4f} ms ({cu / r[0][0]:.3f}, {cu / r[1][0]:.3f}x cuDNN)"
              f"  bitwise {all(x[1] for x in r)}", flush=True)
    torch.cuda.empty_cache()
