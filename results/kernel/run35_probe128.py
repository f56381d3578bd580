"""D=128 backward tiles that the descriptors' freed registers may allow: backward alone (the dQ-kernel
path, the Hopper default), fixed tiles, device time from CUDA-graph replay; each candidate against the
table's current best pair, and its gradients against that pair's (relative error)."""
import math, os, sys
sys.path.insert(0, os.getcwd())
import torch, triton, triton.testing
import flashsigmoid as fs
fs.AUTOTUNE = False
print(torch.__version__, triton.__version__, torch.cuda.get_device_name(), flush=True)
BASE_DK, BASE_DQ = (64, 128, 3, 8), (128, 64, 3, 8)
DK = [(64, 128, 4, 8), (128, 128, 2, 8), (128, 64, 3, 8), (32, 128, 4, 8), (128, 64, 2, 8), (64, 128, 2, 8), (32, 128, 3, 8)]
DQ = [(128, 128, 2, 8), (64, 128, 3, 8), (128, 64, 4, 8), (64, 128, 2, 8), (64, 64, 3, 4)]
for B, H, T, D in [(8, 16, 2048, 128), (2, 16, 8192, 128)]:
    g = torch.Generator(device="cuda").manual_seed(T)
    q, k, v, do = (torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16, generator=g).transpose(1, 2) for _ in range(4))
    def bwd():
        return fs._bwd(do, q, k, v, None, True, -math.log(T), 1 / math.sqrt(D), False, True)
    def run(dk, dq):
        fs._DKDV_CONFIGS["small"] = [dk, dk]
        fs._DQ_CONFIGS["small"] = [dq, dq]
        out = bwd()
        return out, triton.testing.do_bench_cudagraph(bwd, rep=60)
    ref, t0 = run(BASE_DK, BASE_DQ)
    print(f"({B},{H},{T},{D}) base dkdv {BASE_DK} dq {BASE_DQ}: {t0:.4f} ms", flush=True)
    for kind, cands in (("dkdv", DK), ("dq", DQ)):
        for c in cands:
            try:
                out, t = run(c, BASE_DQ) if kind == "dkdv" else run(BASE_DK, c)
                err = max(((a.float() - b.float()).norm() / b.float().norm()).item() for a, b in zip(out, ref))
                print(f"  {kind} {c}: {t:.4f} ms, base/this {t0 / t:.3f}x, rel diff {err:.1e}", flush=True)
            except Exception as e:
                print(f"  {kind} {c}: failed {type(e).__name__}: {str(e)[:150]}", flush=True)
