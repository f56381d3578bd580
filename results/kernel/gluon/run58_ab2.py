# The fused QK-norm + attention op, fwd+bwd and fwd alone, replayed from CUDA graphs (device time, no host
# overhead); one process per code version (PYTHONPATH picks qknorm/flashsigmoid), TAG names it.
import math
import os

import torch

import qknorm
from model import alibi_slopes

tag = os.environ["TAG"]
for B, T, nh, hs in [(16, 1024, 12, 64), (2, 8192, 12, 64), (8, 2048, 16, 128)]:
    g = torch.Generator(device="cuda").manual_seed(T)
    x = torch.randn(B, T, 3 * nh * hs, device="cuda", generator=g).to(torch.bfloat16)
    wq = (torch.rand(hs, device="cuda", generator=g) + 0.5).requires_grad_(True)
    wk = (torch.rand(hs, device="cuda", generator=g) + 0.5).requires_grad_(True)
    slopes = alibi_slopes(nh).cuda()
    dy = torch.randn(B, T, nh, hs, device="cuda", generator=g).to(torch.bfloat16).transpose(1, 2)

    def fwd():
        qkv = x.clone().requires_grad_(True)  # an intermediate, as in the model
        return qkv, qknorm.qk_norm_sigmoid_attention(qkv, wq, wk, nh, nh, bias=-math.log(T), alibi_slopes=slopes)

    def both():
        qkv, y = fwd()
        y.backward(dy)

    def only_fwd():
        with torch.no_grad():
            fwd()
    out = []
    for name, fn in (("fwd+bwd", both), ("fwd", only_fwd)):
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
        out.append(f"{name} {sorted(ts)[4]:.4f} ms")
        del graph
    print(f"RESULT {tag} ({B},{T},{nh},{hs}) " + "  ".join(out) + " (medians of 9 x 20 graph replays)", flush=True)
