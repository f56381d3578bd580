# Prepared for a later session, not run yet: FlashSigmoid's fwd+bwd and bwd alone at the bench shapes, replayed from
# CUDA graphs (device time), for one code version (PYTHONPATH picks flashsigmoid), TAG names it. With
# next_dkdv_loads_first.patch applied to a copy (say devcarry/new/flashsigmoid.py):
#   for i in 1 2; do TAG=main python next_ab_bwd.py; TAG=new PYTHONPATH=devcarry/new:. python next_ab_bwd.py; done
import math
import os

import torch

import flashsigmoid
from model import alibi_slopes

tag = os.environ["TAG"]
for B, H, T, D in [(16, 12, 1024, 64), (8, 16, 2048, 128), (4, 32, 4096, 64), (2, 16, 8192, 128), (2, 12, 8192, 64)]:
    g = torch.Generator(device="cuda").manual_seed(T)
    q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).to(torch.bfloat16).transpose(1, 2).requires_grad_(True)
               for _ in range(3))
    do = torch.randn(B, T, H, D, device="cuda", generator=g).to(torch.bfloat16).transpose(1, 2)
    slopes = alibi_slopes(H).cuda()
    o = flashsigmoid.sigmoid_attention(q, k, v, bias=-math.log(T), alibi_slopes=slopes)

    def both():
        torch.autograd.grad(flashsigmoid.sigmoid_attention(q, k, v, bias=-math.log(T), alibi_slopes=slopes),
                            (q, k, v), do)

    def bwd():
        torch.autograd.grad(o, (q, k, v), do, retain_graph=True)
    res = []
    for name, fn in (("fwd+bwd", both), ("bwd", bwd)):
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
        res.append(f"{name} {sorted(ts)[4]:.4f} ms")
    print(f"RESULT {tag} ({B},{H},{T},{D}) " + "  ".join(res), flush=True)
