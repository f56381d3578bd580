"""Run 49: Gluon forward tiles (one or two warpgroups per program) against the landed forward and cuDNN,
forward alone, CUDA-graph device time, the bench shapes; each tile's output against the landed one's."""
import json, math, os
import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend
from triton.testing import do_bench_cudagraph
import triton
import flashsigmoid as fs

out = os.environ.get("OUT", ".")
SHAPES = [(16, 12, 1024, 64), (4, 32, 4096, 64), (2, 12, 8192, 64), (8, 16, 2048, 128), (2, 16, 8192, 128)]
TILES = {64: [(64, 64, 4), (128, 64, 8), (64, 128, 4), (128, 128, 8)],
         128: [(64, 64, 4), (64, 128, 4), (128, 64, 8), (128, 128, 8)]}
rows = []
for B, H, T, D in SHAPES:
    g = torch.Generator(device="cuda").manual_seed(T + D)
    q, k, v = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(3))
    bias, scale = -math.log(T), 1 / math.sqrt(D)
    landed = lambda: fs._fwd(q, k, v, None, True, bias, scale, False, False)  # noqa
    ref = landed()
    t_landed = do_bench_cudagraph(landed, rep=300)
    def cudnn():
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    t_cudnn = do_bench_cudagraph(cudnn, rep=300)
    fl = 2 * 2 * B * H * T * T * D / 2
    row = dict(shape=(B, H, T, D), landed_ms=t_landed, cudnn_ms=t_cudnn, tiles={})
    print(f"{(B, H, T, D)}: landed {t_landed:.4f} ms ({fl / t_landed / 1e9:.0f} TFLOP/s, x{t_cudnn / t_landed:.3f} cuDNN), "
          f"cuDNN {t_cudnn:.4f} ms", flush=True)
    o = torch.empty_like(q)
    for bm, bn, w in TILES[D]:
        descs = [fs._gl_desc(t, bm if t is q or t is o else bn) for t in (q, k, v, o)]
        call = lambda: fs._gl_fwd_kernel[(triton.cdiv(T, bm), H, B)](  # noqa
            *descs, q, 0.5 * scale, 0.5 * bias, T, T, 0, GROUP=1, BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D, CAUSAL=True,
            HAS_ALIBI=False, HEAD_BIAS=False, num_warps=w)
        try:
            call()
            torch.cuda.synchronize()
            diff = (o.float() - ref.float()).abs().max().item()
            finite = bool(torch.isfinite(o).all())
            t = do_bench_cudagraph(call, rep=300)
        except Exception as e:
            print(f"  {(bm, bn, w)}: FAILED {str(e)[-300:]}", flush=True)
            continue
        row["tiles"][str((bm, bn, w))] = dict(ms=t, maxdiff=diff, finite=finite)
        print(f"  gluon {(bm, bn, w)}: {t:.4f} ms  {fl / t / 1e9:.0f} TFLOP/s  x{t_landed / t:.3f} landed  "
              f"x{t_cudnn / t:.3f} cuDNN  maxdiff {diff:.1e} finite={finite}", flush=True)
    rows.append(row)
    del q, k, v, o
    torch.cuda.empty_cache()
json.dump(rows, open(os.path.join(out, "run49_fwd_tiles.json"), "w"), indent=1)
