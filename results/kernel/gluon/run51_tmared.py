"""Run 51 (from run 48): the Gluon dK/dV with dQ summed by TMA reduce-add (cp.reduce.async.bulk; 5 products) against today's backward (Gluon dK/dV + Triton dQ).
1. Correctness against float64 (random inputs): causal / not, ALiBi, per-head bias, GQA, odd T, Tq != Tk.
2. Backward op alone, CUDA-graph device time, per shape: deterministic (today) vs atomic variants."""
import json, math, os, sys
import torch
from triton.testing import do_bench_cudagraph
import flashsigmoid as fs

out = os.environ.get("OUT", ".")
torch.backends.cuda.matmul.allow_tf32 = False

def ref(q, k, v, do, causal, bias, scale, slopes):
    q, k, v, do = (t.double().requires_grad_(t is not do) for t in (q, k, v, do))
    H, Hkv = q.shape[1], k.shape[1]
    kk, vv = (t.repeat_interleave(H // Hkv, 1) for t in (k, v))
    Tq, Tk = q.shape[2], k.shape[2]
    s = scale * q @ kk.transpose(-1, -2)
    b = bias if not torch.is_tensor(bias) else bias.double()[None, :, None, None]
    s = s + b
    i = torch.arange(Tq, device=q.device)[:, None] + (Tk - Tq)
    j = torch.arange(Tk, device=q.device)[None, :]
    if slopes is not None:
        dist = (i - j).double() if causal else (i - j).abs().double()
        s = s - slopes.double()[None, :, None, None] * dist
    p = torch.sigmoid(s)
    if causal:
        p = p.masked_fill(j > i, 0.0)
    o = p @ vv
    o.backward(do.double())
    return o.detach(), q.grad, k.grad, v.grad

fails = 0
print("== correctness vs float64 (atomic Gluon path, default deterministic=False)", flush=True)
cases = [(2, 4, 4, 1000, 64, True, False, False), (1, 4, 2, 777, 64, True, True, False), (2, 4, 4, 512, 64, False, True, True),
         (1, 8, 2, 1024, 64, True, True, True), (2, 4, 4, 1000, 128, True, False, False), (1, 4, 4, 640, 128, False, True, False),
         (1, 4, 4, 1024, 128, True, True, True)]
for cfg128 in [(64, 64, 2, 4, False, True), (64, 64, 1, 4, False, True)]:
    fs.GLUON_DKDV_ATOMIC = {64: (64, 64, 2, 4, True, True) if cfg128[2] == 2 else (64, 64, 2, 4, False, True), 128: cfg128}
    for B, H, Hkv, T, D, causal, alibi, headbias in cases:
        for Tq in (T, T // 3):
            g = torch.Generator(device="cuda").manual_seed(T + D + H)
            q = torch.randn(B, H, Tq, D, device="cuda", dtype=torch.bfloat16, generator=g)
            k, v = (torch.randn(B, Hkv, T, D, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(2))
            do = torch.randn(B, H, Tq, D, device="cuda", dtype=torch.bfloat16, generator=g)
            slopes = torch.rand(H, device="cuda", generator=g) * 0.1 if alibi else None
            bias = -torch.rand(H, device="cuda", generator=g) * 3 if headbias else -math.log(T)
            scale = 1 / math.sqrt(D)
            qg, kg, vg = (t.clone().requires_grad_() for t in (q, k, v))
            o = fs.sigmoid_attention(qg, kg, vg, causal=causal, bias=bias, alibi_slopes=slopes, deterministic=False)
            o.backward(do)
            r = ref(q, k, v, do, causal, bias, scale, slopes)
            errs = [((a.double() - b).norm() / b.norm()).item() for a, b in zip((o, qg.grad, kg.grad, vg.grad), r)]
            ok = all(math.isfinite(e) and e < 1e-2 for e in errs)
            fails += not ok
            print(f"  D128cfg={cfg128} {(B, H, Hkv, Tq, T, D)} causal={causal} alibi={alibi} headbias={headbias}: "
                  f"rel o {errs[0]:.1e} dq {errs[1]:.1e} dk {errs[2]:.1e} dv {errs[3]:.1e} {'ok' if ok else 'FAIL'}", flush=True)
print("correctness failures:", fails, flush=True)

print("== backward op alone, graph ms", flush=True)
SHAPES = [(16, 12, 1024, 64), (4, 32, 4096, 64), (2, 12, 8192, 64), (8, 16, 2048, 128), (2, 16, 8192, 128)]
VARIANTS = {64: [(64, 64, 2, 4, True, True), (64, 64, 3, 4, True, True), (64, 64, 2, 4, False, True)],
            128: [(64, 64, 2, 4, False, True), (64, 64, 1, 4, False, True)]}
rows = []
for B, H, T, D in SHAPES:
    g = torch.Generator(device="cuda").manual_seed(T + D)
    q, k, v, do = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(4))
    bias, scale = -math.log(T), 1 / math.sqrt(D)
    call = lambda det: fs._bwd(do, q, k, v, None, True, bias, scale, False, det)  # noqa
    base = call(True)
    t_det = do_bench_cudagraph(lambda: call(True), rep=300)
    t_fwd = do_bench_cudagraph(lambda: fs.sigmoid_attention(q, k, v, causal=True, bias=bias), rep=300)
    qs, ks, vs = (t.clone().requires_grad_() for t in (q, k, v))
    def sdpa():
        o = torch.nn.functional.scaled_dot_product_attention(qs, ks, vs, is_causal=True)
        return torch.autograd.grad(o, (qs, ks, vs), do)
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.CUDNN_ATTENTION):
        sdpa()
        t_cudnn = do_bench_cudagraph(sdpa, rep=300)
    row = dict(shape=(B, H, T, D), det_ms=t_det, fwd_ms=t_fwd, cudnn_fb_ms=t_cudnn, atomic={})
    print(f"{(B, H, T, D)}: today's (deterministic) bwd {t_det:.4f} ms; fwd {t_fwd:.4f}; cuDNN f+b {t_cudnn:.4f}; "
          f"today's f+b / cuDNN {t_cudnn / (t_fwd + t_det):.3f}x", flush=True)
    for cfg in VARIANTS[D]:
        fs.GLUON_DKDV_ATOMIC = {D: cfg}
        try:
            got = call(False)
            torch.cuda.synchronize()
            t = do_bench_cudagraph(lambda: call(False), rep=300)
        except Exception as e:
            print(f"  {cfg}: FAILED {type(e).__name__}: {str(e)[-300:]}", flush=True)
            continue
        rel = [((a.double() - b.double()).norm() / b.double().norm()).item() for a, b in zip(got, base)]
        row["atomic"][str(cfg)] = dict(ms=t, rel_vs_det=rel)
        print(f"  tma-red {cfg}: {t:.4f} ms  x{t_det / t:.3f}  f+b vs cuDNN {t_cudnn / (t_fwd + t):.3f}x  rel vs det dq {rel[0]:.1e} dk {rel[1]:.1e} dv {rel[2]:.1e}",
              flush=True)
    rows.append(row)
    del q, k, v, do
    torch.cuda.empty_cache()
json.dump(rows, open(os.path.join(out, "run51_tmared.json"), "w"), indent=1)
