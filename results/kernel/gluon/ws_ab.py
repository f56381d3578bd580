# The warp-specialised Gluon forward (_gl_ws_fwd_kernel, flashsigmoid.GLUON_FWD_WS) against the landed Gluon
# forward (_gl_fwd_kernel) and SDPA's cuDNN forward, causal bf16 at bench.py's shapes, device time from CUDA-graph
# replay (triton.testing.do_bench_cudagraph, as bench.py's graph columns); each tile's output checked against the
# landed forward's at every shape. From the repo root: python results/kernel/gluon/ws_ab.py [D=tile ...]
import sys

import torch
import torch.nn.functional as F
import triton.testing
from torch.nn.attention import SDPBackend, sdpa_kernel

import flashsigmoid as fs

TILES = [(128, 128, 2, True, 232), (128, 128, 2, False, 232), (128, 64, 2, True, 232), (128, 64, 3, True, 232),
         (128, 128, 2, True, 240)]
SHAPES = [(16, 12, 1024, 64), (8, 16, 2048, 128), (4, 32, 4096, 64), (2, 16, 8192, 128), (2, 12, 8192, 64)]
if len(sys.argv) > 1:
    TILES = [tuple(int(x) if x.isdigit() else x == "True" for x in a.split(",")) for a in sys.argv[1:]]
props = torch.cuda.get_device_properties(0)
print(f"gpu {props.name}, torch {torch.__version__}, triton {triton.__version__}", flush=True)
with torch.no_grad():
    for B, H, T, D in SHAPES:
        q, k, v = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        flops = 4 * B * H * T * T * D / 2

        def attn():
            return fs.sigmoid_attention(q, k, v, causal=True)

        def bench(fn):
            return triton.testing.do_bench_cudagraph(fn, rep=50, return_mode="median")
        fs.GLUON_FWD_WS = {}
        base = attn()
        res = [("landed", bench(attn), 0.0)]
        for tile in TILES:
            fs.GLUON_FWD_WS = {D: tile}
            try:
                o = attn()
                torch.cuda.synchronize()
                err = ((o.float() - base.float()).abs().max() / base.float().abs().max()).item()
                res.append((str(tile), bench(attn), err))
            except Exception as e:  # noqa: BLE001
                res.append((str(tile), float("nan"), float("nan")))
                print(f"  {tile} FAILED {type(e).__name__}: {str(e)[:200]}", flush=True)
        fs.GLUON_FWD_WS = {}
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            cudnn = bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
        print(f"({B},{H},{T},{D}) cuDNN {cudnn:.4f} ms {flops / cudnn / 1e9:.0f} TF/s", flush=True)
        for name, ms, err in res:
            print(f"  {name:28s} {ms:.4f} ms {flops / ms / 1e9:4.0f} TF/s  {cudnn / ms:.3f}x cuDNN  "
                  f"{res[0][1] / ms:.3f}x landed  rel diff {err:.1e}", flush=True)
