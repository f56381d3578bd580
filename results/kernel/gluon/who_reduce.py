"""Which CPU-side op launches the aten reduce_kernel calls of a compiled training step (one per RMSNorm gain)."""
import os, sys, torch
from collections import Counter
sys.path.insert(0, os.getcwd())
import model
from model import GPT, GPTConfig
from torch.profiler import profile, ProfilerActivity
model.FUSED_QK_NORM = "auto"
torch.manual_seed(0)
cfg = GPTConfig(block_size=1024, n_layer=2)
m = GPT(cfg).cuda()
opt = m.configure_optimizers(0.1, 6e-4, (0.9, 0.95), "cuda")
f = torch.compile(m)
x = torch.randint(0, 50257, (4, 1024), device="cuda")
def step():
    with torch.autocast("cuda", dtype=torch.bfloat16):
        _, loss = f(x, x)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
for _ in range(3):
    step()
torch.cuda.synchronize()
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], with_stack=True) as prof:
    step()
    torch.cuda.synchronize()
c = Counter()
for e in prof.events():
    ks = [k.name for k in e.kernels if "reduce_kernel" in k.name]
    if ks:
        chain, p = [e.name], e.cpu_parent
        while p is not None:
            chain.append(p.name)
            p = p.cpu_parent
        c[" <- ".join(chain[:6])] += len(ks)
        if c[" <- ".join(chain[:6])] == len(ks):
            print("stack:", " | ".join(s for s in e.stack[:8]), flush=True)
for k, n in c.most_common():
    print(n, k)
