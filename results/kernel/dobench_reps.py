# Run from the repo root on a GPU: python3 results/kernel/dobench_reps.py
# Does do_bench's repetition length move the host-bound small-shape fwd+bwd? Same process, alternating.
import os, sys, torch, triton.testing
sys.path.insert(0, os.getcwd())
import bench, flashsigmoid as fs
B, H, T, D = 16, 12, 1024, 64
q, k, v, do = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16) for _ in range(4))
qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))
from torch.nn.attention import SDPBackend
for name, fn in (("kernel", lambda a, b, c: fs.sigmoid_attention(a, b, c)), ("cudnn", bench.sdpa(SDPBackend.CUDNN_ATTENTION))):
    def fb(fn=fn):
        o = fn(qg, kg, vg)
        torch.autograd.grad(o, (qg, kg, vg), do)
    fb(); torch.cuda.synchronize()
    res = []
    for rnd in range(3):
        for wu, rep in ((25, 50), (50, 200), (25, 100)):
            res.append(f"({wu},{rep}) {triton.testing.do_bench(fb, warmup=wu, rep=rep, return_mode='median'):.3f}")
        res.append(f"host {bench.host_ms(fb):.3f}")
    print(name, "; ".join(res), flush=True)
