# The fused QK-norm + attention op (qknorm.qk_norm_sigmoid_attention), fwd+bwd time and the memory its forward
# keeps, at the model shapes; run once per code version (PYTHONPATH picks qknorm/flashsigmoid), TAG names it.
import math
import os

import torch

import qknorm
from model import alibi_slopes

tag = os.environ["TAG"]
for B, T, nh, hs in [(16, 1024, 12, 64), (2, 8192, 12, 64), (4, 4096, 32, 64), (8, 2048, 16, 128)]:
    g = torch.Generator(device="cuda").manual_seed(T)
    qkv = torch.randn(B, T, 3 * nh * hs, device="cuda", generator=g).to(torch.bfloat16).requires_grad_(True)
    wq = (torch.rand(hs, device="cuda", generator=g) + 0.5).requires_grad_(True)
    wk = (torch.rand(hs, device="cuda", generator=g) + 0.5).requires_grad_(True)
    slopes = alibi_slopes(nh).cuda()
    dy = torch.randn(B, T, nh, hs, device="cuda", generator=g).to(torch.bfloat16).transpose(1, 2)

    def fwd():
        return qknorm.qk_norm_sigmoid_attention(qkv, wq, wk, nh, nh, bias=-math.log(T), alibi_slopes=slopes)

    def step():
        qkv.grad = wq.grad = wk.grad = None
        fwd().backward(dy)
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    qkv.grad = wq.grad = wk.grad = None
    m0 = torch.cuda.memory_allocated()
    y = fwd()
    kept = torch.cuda.memory_allocated() - m0 - y.untyped_storage().nbytes()
    y.backward(dy)
    if B == 16:
        torch.save({"y": y[:, :, :256].float().cpu(), "dqkv": qkv.grad[:, :256].float().cpu(), "dwq": wq.grad.cpu(),
                    "dwk": wk.grad.cpu()}, f"/tmp/ab_{tag}.pt")
    del y
    ts = []
    for _ in range(7):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        for _ in range(10):
            step()
        e1.record()
        torch.cuda.synchronize()
        ts.append(e0.elapsed_time(e1) / 10)
    ts.sort()
    print(f"RESULT {tag} ({B},{T},{nh},{hs}) fwd+bwd ms min {ts[0]:.3f} median {ts[3]:.3f}  kept by forward "
          f"{kept / 2**20:.1f} MiB (qkv {qkv.numel() * 2 / 2**20:.1f} MiB)", flush=True)
