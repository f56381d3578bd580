"""Device time (CUDA-graph replay) of the kernel: causal, sliding windows, packed documents; cuDNN beside.
Run from the repo root: PYTHONPATH=. python3 results/kernel/probe_window_docs.py (one H200: ~3 min with autotuning)."""
import math, sys, time
import torch, triton, triton.testing
from torch.nn.attention import SDPBackend
import flashsigmoid as fs
from bench import sdpa, docs_kernel, fwd_bwd
print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name(), flush=True)
T0 = time.time()
for B, H, T, D in [(2, 12, 8192, 64), (2, 16, 8192, 128), (4, 16, 4096, 96), (16, 12, 1024, 96)]:
    impls = {"kernel": lambda q, k, v: fs.sigmoid_attention(q, k, v, causal=True),
             "cudnn": sdpa(SDPBackend.CUDNN_ATTENTION)}
    if T == 8192:
        for w in (256, 1024, 4096):
            impls[f"window{w}"] = lambda q, k, v, w=w: fs.sigmoid_attention(q, k, v, causal=True, window=(w, 0))
        impls["docs1024"] = docs_kernel(fs, 1024)
    q, k, v, do = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16) for _ in range(4))
    qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))
    res = {}
    for name, fn in impls.items():
        if time.time() - T0 > 175:
            print("time's up", flush=True); sys.exit(0)
        fb = fwd_bwd(fn, qg, kg, vg, do)
        with torch.no_grad():
            fn(q, k, v)
        fb(); torch.cuda.synchronize()
        def f(fn=fn):
            with torch.no_grad():
                fn(q, k, v)
        tf = triton.testing.do_bench_cudagraph(f, rep=30, return_mode="median")
        tb = triton.testing.do_bench_cudagraph(fb, rep=30, return_mode="median")
        res[name] = (tf, tb)
        c = res.get("cudnn")
        print(f"{B},{H},{T},{D} {name:10s} fwd {tf:7.3f} ms  fwd+bwd {tb:7.3f} ms"
              + (f"   vs kernel causal {res['kernel'][0] / tf:5.2f}x / {res['kernel'][1] / tb:5.2f}x" if name != "kernel" else ""),
              flush=True)
        torch.cuda.empty_cache()
