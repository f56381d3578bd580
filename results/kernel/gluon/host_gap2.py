"""GPU busy vs idle time of train.py's step under CUDA graphs (compile_mode='reduce-overhead'), sigmoid recipe vs
softmax baseline at 16 x 1024: per step the wall time, the union of the kernels' intervals (busy), the idle gaps
and what runs around the largest ones, and device ms per kernel class."""
import os, sys, time, torch
from collections import Counter
sys.path.insert(0, os.getcwd())
import model
from model import GPT, GPTConfig
from torch.profiler import profile, ProfilerActivity
model.FUSED_QK_NORM = "auto"
arms = {"sigmoid": dict(), "softmax": dict(attention="softmax", pos_encoding="learned", norm="pre", qk_norm=False, init="gpt2")}
N = 4
for name, kw in arms.items():
    torch._dynamo.reset()
    torch.manual_seed(0)
    m = GPT(GPTConfig(block_size=1024, **kw)).cuda()
    opt = m.configure_optimizers(0.1, 6e-4, (0.9, 0.95), "cuda")
    for p in m.parameters():
        p.grad = torch.zeros_like(p)
    f = torch.compile(m, mode="reduce-overhead")
    x = torch.randint(0, 50257, (16, 1024), device="cuda")
    def step():
        torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            _, loss = f(x, x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=False)
    for _ in range(6):
        step()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(20):
        step()
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t) / 20 * 1e3
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t = time.perf_counter()
        for _ in range(N):
            step()
        torch.cuda.synchronize()
        pwall = (time.perf_counter() - t) / N * 1e3
    ks = sorted([(e.time_range.start, e.time_range.end, e.name) for e in prof.events()
                 if e.device_type == torch.autograd.DeviceType.CUDA and e.time_range.end > e.time_range.start],
                key=lambda k: k[0])
    busy, gaps, cur_s, cur_e, prev = 0.0, [], None, None, None
    for s, e, n in ks:
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                busy += cur_e - cur_s
                gaps.append((s - cur_e, prev, n))
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
        prev = n
    busy += cur_e - cur_s
    span = ks[-1][1] - ks[0][0]
    tot = Counter()
    for s, e, n in ks:
        tot[n[:60]] += (e - s) / N / 1e3
    print(f"== {name}: wall {wall:.2f} ms/step (profiled {pwall:.2f}); kernels span {span / N / 1e3:.2f}, busy {busy / N / 1e3:.2f}, "
          f"idle {(span - busy) / N / 1e3:.2f} ms/step in {len(gaps) / N:.0f} gaps; kernel time {sum(tot.values()):.2f} ms/step, "
          f"{len(ks) / N:.0f} kernels/step, params {sum(1 for _ in m.parameters())}", flush=True)
    for g, a, b in sorted(gaps, reverse=True)[:8]:
        print(f"   gap {g / 1e3:.3f} ms after {a[:50]} before {b[:50]}")
    small = sum(g for g, _, _ in gaps if g < 20) / N / 1e3
    print(f"   gaps under 20 us: {small:.3f} ms/step")
    for n, ms in tot.most_common(12):
        print(f"   {ms:7.3f} ms  {n}")
