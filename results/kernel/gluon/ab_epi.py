"""A/B of the fused QK-norm + attention op (qknorm.qk_norm_sigmoid_attention), forward + backward, CUDA-graph
device time, at the 124M model's two training shapes: whichever flashsigmoid.py is in the tree."""
import math, os, sys, torch
from triton.testing import do_bench_cudagraph
sys.path.insert(0, os.getcwd())
import qknorm, model
for B, T in [(16, 1024), (2, 8192)]:
    nh, hs = 12, 64
    g = torch.Generator(device="cuda").manual_seed(T)
    qkv = torch.randn(B, T, 3 * nh * hs, device="cuda", dtype=torch.bfloat16, generator=g).requires_grad_()
    wq, wk = (1 + 0.1 * torch.randn(hs, device="cuda", generator=g)).requires_grad_(), (1 + 0.1 * torch.randn(hs, device="cuda", generator=g)).requires_grad_()
    slopes = model.alibi_slopes(nh).cuda()
    do = torch.randn(B, nh, T, hs, device="cuda", dtype=torch.bfloat16, generator=g)
    def fb():
        y = qknorm.qk_norm_sigmoid_attention(qkv, wq, wk, nh, nh, bias=-math.log(T), alibi_slopes=slopes)
        return torch.autograd.grad(y, (qkv, wq, wk), do)
    fb()
    ms = do_bench_cudagraph(fb, rep=500)
    print(f"RESULT {os.environ.get('TAG')} ({B}, {T}): fused op fwd+bwd {ms:.4f} ms", flush=True)
