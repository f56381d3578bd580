# Where the kernel loses on the model's layout (run 83): FlashSigmoid fwd and fwd+bwd by CUDA-graph replay
# (medians of 9 x 20 replays) at the 124M step's shapes and the D=128 bench shapes, on (a) contiguous
# (B, H, T, D) inputs, (b) (B, H, T, D) views of one packed (B, T, 3 H D) projection (the model's layout),
# each without and with ALiBi; cuDNN on (a) and (b); then device time per kernel (torch.profiler) of
# contiguous without ALiBi against the views with ALiBi. From the repo root:
#   PYTHONPATH=. python results/kernel/gluon/run83_views.py     (PART=2: the second table)
import math
import os

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile

import flashsigmoid
from bench import fwd_bwd
from model import alibi_slopes

PART = int(os.environ.get("PART", "1"))  # 2: with ALiBi, q, k, v and dO each contiguous or views


def graph_ms(fn):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    ts = []
    for _ in range(9):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        for _ in range(20):
            graph.replay()
        e1.record()
        torch.cuda.synchronize()
        ts.append(e0.elapsed_time(e1) / 20)
    return sorted(ts)[4]


def kernels(fn, n=10):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            fn()
        torch.cuda.synchronize()
    rows = sorted(((e.key, e.device_time_total / e.count / 1e3, e.count) for e in prof.key_averages()
                   if e.device_time_total > 0), key=lambda r: -r[1] * r[2])
    return " | ".join(f"{k[:22]} {ms:.4f} x{c // n}" for k, ms, c in rows[:5])


def sdpa(a, b, c):
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        return F.scaled_dot_product_attention(a, b, c, is_causal=True)


for B, H, T, D in [(16, 12, 1024, 64), (2, 12, 8192, 64), (8, 16, 2048, 128), (2, 16, 8192, 128)]:
    g = torch.Generator(device="cuda").manual_seed(T)
    packed = torch.randn(B, T, 3 * H * D, device="cuda", generator=g).to(torch.bfloat16)
    views = [t.view(B, T, H, D).transpose(1, 2).detach().requires_grad_(True) for t in packed.split(H * D, dim=-1)]
    contig = [t.detach().contiguous().requires_grad_(True) for t in views]
    do = torch.randn(B, H, T, D, device="cuda", generator=g).to(torch.bfloat16)
    slopes = alibi_slopes(H).cuda()
    res = {}
    do_views = do.transpose(1, 2).contiguous().transpose(1, 2)
    if PART == 2:  # with ALiBi: which of the layouts (q, k, v's or dO's) costs
        for name, qkv, dol in (("contig", contig, do), ("contig_do_views", contig, do_views),
                               ("views_do_contig", views, do), ("views", views, do_views)):
            def attn(a, b, c):
                return flashsigmoid.sigmoid_attention(a, b, c, bias=-math.log(T), alibi_slopes=slopes)
            res[name] = (graph_ms(lambda: attn(*qkv)), graph_ms(fwd_bwd(attn, *qkv, dol)))
            print(f"KERNELS {name} ({B},{H},{T},{D}): {kernels(fwd_bwd(attn, *qkv, dol))}", flush=True)
        c = res["contig"]
        print(f"RESULT2 ({B},{H},{T},{D}) " + "  ".join(
            f"{n} {f:.4f}/{fb:.4f} ({c[0] / f:.3f}/{c[1] / fb:.3f})" for n, (f, fb) in res.items()), flush=True)
        continue
    for lay, qkv in (("contig", contig), ("views", views)):
        dol = do if lay == "contig" else do_views
        for al in (None, slopes):
            def attn(a, b, c, al=al):
                return flashsigmoid.sigmoid_attention(a, b, c, bias=-math.log(T), alibi_slopes=al)
            name = f"{lay}{'_alibi' if al is not None else ''}"
            res[name] = (graph_ms(lambda: attn(*qkv)), graph_ms(fwd_bwd(attn, *qkv, dol)))
            if (lay, al) in (("contig", None), ("views", slopes)):
                print(f"KERNELS {name} ({B},{H},{T},{D}): {kernels(fwd_bwd(attn, *qkv, dol))}", flush=True)
        res[f"cudnn_{lay}"] = (graph_ms(lambda: sdpa(*qkv)), graph_ms(fwd_bwd(sdpa, *qkv, dol)))
    c = res["cudnn_contig"]
    print(f"RESULT ({B},{H},{T},{D}) " + "  ".join(
        f"{n} {f:.4f}/{fb:.4f} ({c[0] / f:.3f}/{c[1] / fb:.3f})" for n, (f, fb) in res.items()), flush=True)
