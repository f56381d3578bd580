# What the fused QK-norm op costs beyond the bare kernel (run 69): at the 124M step's shapes, by CUDA-graph
# replay (medians of 9 x 20 replays), fwd+bwd and fwd of (1) qknorm.qk_norm_sigmoid_attention on the packed
# projection, (2) flashsigmoid.sigmoid_attention on its q, k, v views (no QK-norm), (3) cuDNN (SDPA) on the
# same views; then device time per kernel of (1) (torch.profiler, eager). From the repo root:
#   PYTHONPATH=. python results/kernel/gluon/run69_fused_vs_bare.py
import math

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile

import flashsigmoid
import qknorm
from model import alibi_slopes


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


for B, T, nh, hs in [(16, 1024, 12, 64), (2, 8192, 12, 64)]:
    g = torch.Generator(device="cuda").manual_seed(T)
    x = torch.randn(B, T, 3 * nh * hs, device="cuda", generator=g).to(torch.bfloat16)
    wq = (torch.rand(hs, device="cuda", generator=g) + 0.5).requires_grad_(True)
    wk = (torch.rand(hs, device="cuda", generator=g) + 0.5).requires_grad_(True)
    slopes = alibi_slopes(nh).cuda()
    dy = torch.randn(B, T, nh, hs, device="cuda", generator=g).to(torch.bfloat16).transpose(1, 2)

    def views(qkv):
        return [t.view(B, T, nh, hs).transpose(1, 2) for t in qkv.split(nh * hs, dim=-1)]

    def sdpa(a, b, c):
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            return F.scaled_dot_product_attention(a, b, c, is_causal=True)
    arms = {"fused": lambda qkv: qknorm.qk_norm_sigmoid_attention(qkv, wq, wk, nh, nh, bias=-math.log(T),
                                                                  alibi_slopes=slopes),
            "bare": lambda qkv: flashsigmoid.sigmoid_attention(*views(qkv), bias=-math.log(T), alibi_slopes=slopes),
            "cudnn": lambda qkv: sdpa(*views(qkv))}
    line = []
    for name, arm in arms.items():
        def both():
            qkv = x.clone().requires_grad_(True)  # an intermediate, as in the model
            arm(qkv).backward(dy)

        def only_fwd():
            with torch.no_grad():
                arm(x.clone())
        line.append(f"{name} fwd+bwd {graph_ms(both):.4f} fwd {graph_ms(only_fwd):.4f}")
    print(f"RESULT ({B},{T},{nh},{hs}) " + " | ".join(line), flush=True)

    def step():
        qkv = x.clone().requires_grad_(True)
        arms["fused"](qkv).backward(dy)
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(10):
            step()
        torch.cuda.synchronize()
    rows = sorted(((e.key, e.device_time_total / e.count / 1e3, e.count) for e in prof.key_averages()
                   if e.device_time_total > 0), key=lambda r: -r[1] * r[2])
    print(f"KERNELS fused ({B},{T},{nh},{hs}): " + " | ".join(f"{n[:28]} {ms:.4f} ms x{c / 10:g}" for n, ms, c in rows[:9]),
          flush=True)
