"""A/B, one process: the backward carrying 4 dS = (1 - a^2) dP from a = tanh (this tree's flashsigmoid)
against dS = p (1 - p) dP (HEAD~ as fs_old). fwd+bwd device time, CUDA-graph replay, causal bf16, the
model's (B, T, H, D) layout; fixed tiles (each table's default) and autotuned; both backward modes;
ALiBi at the 124M model's shapes. Also checks the new kernel against float64 at each shape."""
import math, os, sys
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.path.join(os.getcwd(), "devcarry"))
import torch, triton, triton.testing
import flashsigmoid as new
import fs_old as old
print(torch.__version__, triton.__version__, torch.cuda.get_device_name(), flush=True)
SHAPES = [(16, 12, 1024, 64, False), (16, 12, 1024, 64, True), (8, 16, 2048, 128, False), (4, 32, 4096, 64, False),
          (2, 16, 8192, 128, False), (2, 12, 8192, 64, False), (2, 12, 8192, 64, True)]
def ref64(q, k, v, do, slopes, T):
    q, k, v, do = (t.double() for t in (q, k, v, do))
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) - math.log(T)
    i = torch.arange(T, device=q.device)
    dist = (i[:, None] - i[None, :]).double()
    if slopes is not None:
        s = s - slopes.double()[:, None, None] * dist
    p = torch.sigmoid(s).masked_fill(dist < 0, 0)
    return p
print("| (B, H, T, D) | ALiBi | tiles | mode | old ms | new ms | old / new |")
for B, H, T, D, alibi in SHAPES:
    g = torch.Generator(device="cuda").manual_seed(T + D)
    q, k, v, do = (torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16, generator=g).transpose(1, 2) for _ in range(4))
    q, k, v = (t.requires_grad_(True) for t in (q, k, v))
    slopes = torch.tensor([2 ** (-8 * (h + 1) / H) for h in range(H)], device="cuda") if alibi else None
    bias = -math.log(T)
    for auto in (False, True):
        for det in (False, True):
            if T >= 8192 and det and auto:
                continue
            r = {}
            for name, fs in (("old", old), ("new", new)):
                fs.AUTOTUNE = auto
                def f(fs=fs):
                    o = fs.sigmoid_attention(q, k, v, causal=True, deterministic=det, bias=bias, alibi_slopes=slopes)
                    return torch.autograd.grad(o, (q, k, v), do)
                got = f()
                r[name] = triton.testing.do_bench_cudagraph(f, rep=100)
                if name == "new" and T <= 2048 and B * H <= 192:  # against float64 on one batch
                    b = slice(0, 1)
                    qd, kd, vd = (t[b].detach().double().requires_grad_(True) for t in (q, k, v))
                    s = qd @ kd.transpose(-1, -2) / math.sqrt(D) + bias
                    i = torch.arange(T, device="cuda")
                    dist = (i[:, None] - i[None, :]).double()
                    if slopes is not None:
                        s = s - slopes.double()[:, None, None] * dist
                    o = torch.sigmoid(s).masked_fill(dist < 0, 0) @ vd
                    ref = torch.autograd.grad(o, (qd, kd, vd), do[b].double())
                    errs = [((a[b].double() - e).norm() / e.norm()).item() for a, e in zip(got, ref)]
                    print(f"  new vs float64 rel err dq dk dv: {', '.join(f'{e:.1e}' for e in errs)}", flush=True)
                    assert max(errs) < 1e-2, errs
            print(f"| {B}, {H}, {T}, {D} | {alibi} | {'auto' if auto else 'fixed'} | {'det' if det else 'default'} "
                  f"| {r['old']:.4f} | {r['new']:.4f} | {r['old'] / r['new']:.3f}x |", flush=True)
