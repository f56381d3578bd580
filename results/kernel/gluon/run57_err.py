# bf16 output and gradients of the fused op against float64 (RMSNorm per head, then the materialised attention)
import math
import os

import torch

import qknorm
from model import alibi_slopes, sigmoid_attention_torch

tag = os.environ["TAG"]
for B, T, nh, hs in [(2, 1024, 12, 64), (2, 1024, 8, 128)]:
    g = torch.Generator(device="cuda").manual_seed(1)
    qkv = (torch.randn(B, T, 3 * nh * hs, device="cuda", generator=g) * 2).to(torch.bfloat16).requires_grad_(True)
    wq = (torch.rand(hs, device="cuda", generator=g) + 0.5).requires_grad_(True)
    wk = (torch.rand(hs, device="cuda", generator=g) + 0.5).requires_grad_(True)
    slopes = alibi_slopes(nh).cuda()
    dy = torch.randn(B, nh, T, hs, device="cuda", generator=g).to(torch.bfloat16)
    y = qknorm.qk_norm_sigmoid_attention(qkv, wq, wk, nh, nh, bias=-math.log(T), alibi_slopes=slopes)
    got = (y, *torch.autograd.grad(y, (qkv, wq, wk), dy))
    x64, wq64, wk64 = (t.detach().double().requires_grad_(True) for t in (qkv, wq, wk))
    q, k, v = (t.view(B, T, nh, hs) for t in x64.split(nh * hs, -1))

    def rms(t, w):
        return t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-5) * w
    y64 = sigmoid_attention_torch(rms(q, wq64).transpose(1, 2), rms(k, wk64).transpose(1, 2), v.transpose(1, 2),
                                  bias=-math.log(T), alibi_slopes=slopes.double())
    ref = (y64, *torch.autograd.grad(y64, (x64, wq64, wk64), dy.double()))
    errs = " ".join(f"{n} {((a.double() - r).norm() / r.norm()).item():.3e}" for n, a, r in zip(("y", "dqkv", "dwq", "dwk"), got, ref))
    print(f"ERR {tag} ({B},{T},{nh},{hs}) vs float64: {errs}", flush=True)
