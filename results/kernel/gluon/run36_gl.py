"""Run 36 (issue 11): the Gluon forward (devcarry/gl_fwd.py) against today's forward and cuDNN, causal bf16,
device time from CUDA-graph replay, one process. Checks against float64 first (T not a multiple of the tile)."""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
import triton
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), "devcarry"))
import flashsigmoid as fs  # noqa: E402
import gl_fwd  # noqa: E402
from triton.experimental.gluon import language as gl  # noqa: E402
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor  # noqa: E402

SHAPES = [(16, 12, 1024, 64), (8, 16, 2048, 128), (4, 32, 4096, 64), (2, 16, 8192, 128), (2, 12, 8192, 64)]
CFGS = {64: [(64, 64, 2, 4), (64, 64, 3, 4), (64, 128, 2, 4)], 128: [(64, 64, 2, 4), (64, 64, 3, 4)]}


def gl_forward(q, k, v, o, cfg):
    bm, bn, st, w = cfg
    B, H, T, D = q.shape
    lq = gl.NVMMASharedLayout.get_default_for([1, 1, bm, D], gl.bfloat16)
    lk = gl.NVMMASharedLayout.get_default_for([1, 1, bn, D], gl.bfloat16)
    dq, do = (TensorDescriptor.from_tensor(t, [1, 1, bm, D], lq) for t in (q, o))
    dk, dv = (TensorDescriptor.from_tensor(t, [1, 1, bn, D], lk) for t in (k, v))
    s = 1 / math.sqrt(D)
    grid = (triton.cdiv(T, bm), H, B)
    return lambda: gl_fwd._gl_fwd_kernel[grid](dq, dk, dv, do, 0.5 * s, -0.5 * math.log(T), T, BLOCK_M=bm,
                                              BLOCK_N=bn, HEAD_DIM=D, STAGES=st, num_warps=w)


def inputs(B, H, T, D, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    q, k, v = (torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16, generator=g).transpose(1, 2)
               for _ in range(3))  # the model's layout: (B, T, H, D) memory seen as (B, H, T, D)
    o = torch.empty(B, T, H, D, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
    return q, k, v, o


def ref64(q, k, v):
    T, D = q.shape[2], q.shape[3]
    s = (q.double() @ k.double().transpose(-1, -2)) / math.sqrt(D) - math.log(T)
    s = s.masked_fill(torch.ones(T, T, device=q.device, dtype=torch.bool).triu(1), float("-inf"))
    return torch.sigmoid(s) @ v.double()


def tflops(shape, ms):
    B, H, T, D = shape
    return 4 * B * H * T * T * D / 2 / ms / 1e9


def main():
    print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name(), flush=True)
    ok = True
    for D in (64, 128):
        for T in (1000, 64, 200):
            q, k, v, o = inputs(2, 3, T, D, seed=T)
            r = ref64(q, k, v)
            today = fs.sigmoid_attention(q, k, v, causal=True).double()
            e_today = ((today - r).norm() / r.norm()).item()
            for cfg in CFGS[D]:
                o.fill_(float("nan"))
                gl_forward(q, k, v, o, cfg)()
                torch.cuda.synchronize()
                e = ((o.double() - r).norm() / r.norm()).item()
                good = e < 2 * e_today + 1e-3
                ok &= good
                print(f"check D={D} T={T} {cfg}: rel err {e:.2e} (today's kernel {e_today:.2e}) "
                      f"{'ok' if good else 'BAD'}", flush=True)
    rows = []
    for shape in SHAPES:
        q, k, v, o = inputs(*shape)
        row = {"shape": shape}
        row["kernel"] = triton.testing.do_bench_cudagraph(lambda: fs.sigmoid_attention(q, k, v, causal=True))
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            row["cudnn"] = triton.testing.do_bench_cudagraph(
                lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
        ref = fs.sigmoid_attention(q, k, v, causal=True).float()
        for cfg in CFGS[shape[3]]:
            fn = gl_forward(q, k, v, o, cfg)
            fn()
            err = ((o.float() - ref).norm() / ref.norm()).item()
            ms = triton.testing.do_bench_cudagraph(fn)
            row[str(cfg)] = ms
            print(f"{shape} gluon {cfg}: {ms:.4f} ms {tflops(shape, ms):.0f} TF/s, vs today's kernel rel {err:.1e}",
                  flush=True)
        print(f"{shape} kernel {row['kernel']:.4f} ms {tflops(shape, row['kernel']):.0f} TF/s | cudnn "
              f"{row['cudnn']:.4f} ms {tflops(shape, row['cudnn']):.0f} TF/s", flush=True)
        rows.append(row)
    print("\n| (B, H, T, D) | kernel ms | cuDNN ms | best Gluon ms (cfg) | kernel / cuDNN | Gluon / cuDNN | Gluon / kernel |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cfgs = {k: v for k, v in r.items() if k.startswith("(")}
        best = min(cfgs, key=cfgs.get)
        print(f"| {tuple(r['shape'])} | {r['kernel']:.4f} | {r['cudnn']:.4f} | {cfgs[best]:.4f} {best} | "
              f"{r['cudnn'] / r['kernel']:.3f}x | {r['cudnn'] / cfgs[best]:.3f}x | {r['kernel'] / cfgs[best]:.3f}x |")
    print("all checks ok" if ok else "SOME CHECKS FAILED")
    out = os.environ.get("OUT", ".")
    with open(os.path.join(out, "run36_gl.json"), "w") as f:
        json.dump(rows, f)


if __name__ == "__main__":
    main()
