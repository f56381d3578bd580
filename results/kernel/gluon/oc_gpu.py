"""Inductor's output code for one layer of the 124M sigmoid recipe and of the softmax baseline (B=4, T=1024):
which kernels a compiled training step launches per layer, aten fallbacks included."""
import os, sys, torch
sys.path.insert(0, os.getcwd())
import model
from model import GPT, GPTConfig
model.FUSED_QK_NORM = "auto"
for name, kw in [("sigmoid", dict()), ("softmax", dict(attention="softmax", pos_encoding="learned", norm="pre", qk_norm=False, init="gpt2"))]:
    torch._dynamo.reset()
    cfg = GPTConfig(block_size=1024, n_layer=1, **kw)
    m = GPT(cfg).cuda()
    f = torch.compile(m)
    x = torch.randint(0, 50257, (4, 1024), device="cuda")
    print("=====", name, flush=True)
    for _ in range(2):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            _, loss = f(x, x)
        loss.backward()
    torch.cuda.synchronize()
