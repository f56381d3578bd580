"""Host-side cost of train.py's step under CUDA graphs (compile_mode='reduce-overhead'), sigmoid recipe vs softmax
baseline at 16 x 1024: wall ms per step, device ms per step, and the CPU ops that take the host's time."""
import os, sys, time, torch
sys.path.insert(0, os.getcwd())
import model
from model import GPT, GPTConfig
from torch.profiler import profile, ProfilerActivity
model.FUSED_QK_NORM = "auto"
arms = {"sigmoid": dict(), "softmax": dict(attention="softmax", pos_encoding="learned", norm="pre", qk_norm=False, init="gpt2")}
for name, kw in arms.items():
    torch._dynamo.reset()
    torch.manual_seed(0)
    m = GPT(GPTConfig(block_size=1024, **kw)).cuda()
    opt = m.configure_optimizers(0.1, 6e-4, (0.9, 0.95), "cuda")
    for p in m.parameters():  # train.py under CUDA graphs: .grad buffers exist, zeroed not freed
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
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(20):
        step()
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t) / 20 * 1e3
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
    ka = prof.key_averages()
    dev = sum(e.self_device_time_total for e in ka) / 3 / 1e3
    print(f"== {name}: wall {wall:.2f} ms/step, device {dev:.2f} ms/step, params {sum(1 for _ in m.parameters())}", flush=True)
    print(ka.table(sort_by="self_cpu_time_total", row_limit=22, max_name_column_width=70), flush=True)
    print(ka.table(sort_by="self_device_time_total", row_limit=14, max_name_column_width=70), flush=True)
