# Run 78: the gains' partial sums of a 124M step at 16 x 1024, qknorm.sum_rows against aten's sum: the post-norm
# kernel's (1056 programs, 768 of 1024 columns) and the QK-norm epilogue's (2, 12288 rows, 64); and
# qknorm.post_norm_bwd whole (kernel + sums). Device time by CUDA-graph replay.
import torch
import triton.testing

import qknorm

torch.manual_seed(0)
for name, x, n in [("post-norm partials (1, 1056, 1024) -> 768", torch.randn(1, 1056, 1024, device="cuda"), 768),
                   ("QK-norm partials (2, 12288, 64) -> 64", torch.randn(2, 12288, 64, device="cuda"), 64)]:
    ref = x[..., :n].double().sum(1)
    err = ((qknorm.sum_rows(x, n).double() - ref).norm() / ref.norm()).item()
    ours = triton.testing.do_bench_cudagraph(lambda: qknorm.sum_rows(x, n))
    aten = triton.testing.do_bench_cudagraph(lambda: x[..., :n].sum(1))
    print(f"RESULT {name:44s} sum_rows {ours * 1e3:6.1f} us  aten {aten * 1e3:6.1f} us  err {err:.1e}")
n, C = 16 * 1024, 768
x, g = torch.randn(n, C, device="cuda"), torch.randn(n, C, device="cuda")
a = (torch.randn(n, C, device="cuda") * 3).bfloat16()
w = torch.rand(C, device="cuda") + 0.5
r = torch.rsqrt(a.float().pow(2).mean(-1, keepdim=True) + 1e-5)
out = x + a.float() * r * w
ms = triton.testing.do_bench_cudagraph(lambda: qknorm.post_norm_bwd(g, x, out, w, r, torch.bfloat16))
print(f"RESULT post_norm_bwd (16384, 768), BLOCK_R={qknorm.POST_BLOCK_R} warps={qknorm.POST_WARPS} "
      f"programs/SM={qknorm.POST_PROGRAMS_PER_SM}: {ms * 1e3:.1f} us, {n * C * 14 / ms / 1e6:.0f} GB/s")
