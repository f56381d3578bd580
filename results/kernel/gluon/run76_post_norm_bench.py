# Run 76: qknorm.post_norm_bwd (hybrid-norm's post-norm backward in one Triton pass) at the 124M step's
# shape (16 x 1024 rows of 768), per launch config, against the same maths compiled by inductor alone
# (the fair floor of what inductor does with one such norm; in the step it groups several) and a copy
# of the bytes the pass must move. Device time by CUDA-graph replay (triton.testing.do_bench_cudagraph).
import torch
import triton.testing

import qknorm

torch.manual_seed(0)
n, C = 16 * 1024, 768
x = torch.randn(n, C, device="cuda")
a = (torch.randn(n, C, device="cuda") * 3).bfloat16()
w = torch.rand(C, device="cuda") + 0.5
r = torch.rsqrt(a.float().pow(2).mean(-1, keepdim=True) + 1e-5)
out = x + a.float() * r * w
g = torch.randn(n, C, device="cuda")
moved = n * C * (4 + 4 + 4 + 2)  # g, out, x read (fp32), da written (bf16)


def torch_bwd(g, x, out, w, r):
    xh = (out - x) / w
    gw = g * w
    da = r * (gw - xh * (gw * xh).mean(-1, keepdim=True))
    return da.bfloat16(), (g * xh).sum(0)


ref_da, ref_dw = torch_bwd(g, x, out, w, r)
comp = torch.compile(torch_bwd)
rows = []
for br, nw, per_sm in [(4, 4, 4), (2, 4, 4), (1, 4, 8), (4, 8, 2), (8, 8, 2), (2, 8, 4), (4, 4, 8), (1, 2, 16)]:
    qknorm.POST_BLOCK_R, qknorm.POST_WARPS, qknorm.POST_PROGRAMS_PER_SM = br, nw, per_sm
    da, dw = qknorm.post_norm_bwd(g, x, out, w, r, torch.bfloat16)
    err = ((da.float() - ref_da.float()).norm() / ref_da.float().norm()).item(), ((dw - ref_dw).norm() / ref_dw.norm()).item()
    ms = triton.testing.do_bench_cudagraph(lambda: qknorm.post_norm_bwd(g, x, out, w, r, torch.bfloat16))
    rows.append((f"kernel BLOCK_R={br} warps={nw} programs/SM={per_sm}", ms, err))
comp(g, x, out, w, r)
rows.append(("inductor, one norm", triton.testing.do_bench_cudagraph(lambda: comp(g, x, out, w, r)), (0, 0)))
buf = torch.empty(moved // 4, device="cuda")
src = torch.empty(moved // 4, device="cuda")
rows.append(("copy of the same bytes / 2 each way", triton.testing.do_bench_cudagraph(lambda: buf.copy_(src)), (0, 0)))
for name, ms, err in rows:
    print(f"RESULT {name:42s} {ms * 1e3:7.1f} us  {moved / ms / 1e9:7.0f} GB/s  err da {err[0]:.1e} dw {err[1]:.1e}")
