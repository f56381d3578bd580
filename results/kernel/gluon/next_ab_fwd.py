# Prepared for a later session, not run yet: the Gluon forward with 2 or 3 K/V ring slots (next_fwd_slots.patch
# applied: flashsigmoid.GLUON_FWD_SLOTS), against SDPA's default (cuDNN) causal forward, CUDA-graph device time
# at the bench shapes; the outputs of the two slot counts must be bitwise equal (same maths, same order).
import math

import torch
import torch.nn.functional as F

import flashsigmoid
from model import alibi_slopes


def graph_ms(fn, reps=20):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    ts = []
    for _ in range(9):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        for _ in range(reps):
            g.replay()
        e1.record()
        torch.cuda.synchronize()
        ts.append(e0.elapsed_time(e1) / reps)
    return sorted(ts)[4]


with torch.no_grad():
    for B, H, T, D in [(16, 12, 1024, 64), (8, 16, 2048, 128), (4, 32, 4096, 64), (2, 16, 8192, 128), (2, 12, 8192, 64)]:
        g = torch.Generator(device="cuda").manual_seed(T)
        q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).to(torch.bfloat16).transpose(1, 2) for _ in range(3))
        slopes = alibi_slopes(H).cuda()
        flops = 4 * B * H * T * T * D / 2  # causal
        res, outs = [], {}
        for slots in (2, 3):
            flashsigmoid.GLUON_FWD_SLOTS[D] = slots
            outs[slots] = flashsigmoid.sigmoid_attention(q, k, v, bias=-math.log(T), alibi_slopes=slopes)
            ms = graph_ms(lambda: flashsigmoid.sigmoid_attention(q, k, v, bias=-math.log(T), alibi_slopes=slopes))
            res.append((slots, ms))
        cudnn = graph_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
        same = torch.equal(outs[2], outs[3])
        print(f"RESULT ({B},{H},{T},{D}) cuDNN {cudnn:.4f} ms " + "  ".join(
            f"slots={s} {ms:.4f} ms {flops / ms / 1e9:.0f} TFLOP/s {cudnn / ms:.3f}x" for s, ms in res)
            + f"  bitwise equal: {same}", flush=True)
