# The warp-specialised Gluon kernels against the ones they replace (rows 'landed': every WS table emptied) and
# SDPA's cuDNN attention, causal bf16 at bench.py's shapes, device time from CUDA-graph replay
# (triton.testing.do_bench_cudagraph, as bench.py's graph columns): the forward (_gl_ws_fwd_kernel, GLUON_FWD_WS)
# against _gl_fwd_kernel, and forward + backward with the dQ kernel warp-specialised (_gl_wsdq_kernel, GLUON_DQ_WS)
# against the Triton dQ kernel. Every tile's outputs (O, dQ, dK, dV) are checked against the replaced kernels'.
# From the repo root:
#   PYTHONPATH=. python results/kernel/gluon/ws_ab.py [fwd|dq|dkdv|dkdv_next|fwd_persist|dq_persist|all ...]
# (dkdv: _gl_wsbwd_kernel, GLUON_DKDV_WS, against _gl_dkdv_kernel: slower in run 94, not landed; it needs
# run94_wsdkdv.patch applied. Run 94 ran this at b820435, where GLUON_FWD_WS and GLUON_DQ_WS were still empty.)
import sys

import torch
import torch.nn.functional as F
import triton.testing
from torch.nn.attention import SDPBackend, sdpa_kernel

import flashsigmoid as fs
from bench import fwd_bwd

FWD_TILES = [(128, 128, 2, True, 232), (128, 128, 2, False, 232), (128, 64, 2, True, 232), (128, 64, 3, True, 232)]
# session 41: the persistent forward (a program per SM, tiles from a counter; the 6th entry) against the landed tile
FWD_PERSIST = [(128, 128, 2, False, 232, False), (128, 128, 2, False, 232, True), (128, 128, 2, True, 232, True),
               (128, 128, 2, False, 232, False), (128, 128, 2, False, 232, True)]
if "fwd_persist" in sys.argv[1:]:
    FWD_TILES = FWD_PERSIST
DQ_TILES = [(128, 64, 3, True, 232), (128, 64, 3, False, 232), (128, 64, 2, True, 232)]
# session 41: the persistent dQ kernel
DQ_PERSIST = [(128, 64, 3, False, 232, False), (128, 64, 3, False, 232, True), (128, 64, 3, False, 232, False),
              (128, 64, 3, False, 232, True)]
if "dq_persist" in sys.argv[1:]:
    DQ_TILES = DQ_PERSIST
DKDV_TILES = [(64, 128, 2, True, 240), (64, 128, 3, True, 240), (64, 128, 2, False, 240)]
# next (not run): P^T, dS^T through shared memory (the 7th entry, SMEM_P), which ends ptxas's serialisation of the
# wgmmas at D=128 (sm_90 SASS: 6 warpgroup fences for 24 HGMMA instead of 48; 32 bytes of stack), 2 and 3 slots,
# no ping-pong (it measured slower); then the register-operand form with 3 slots, as a control
DKDV_NEXT = [(64, 128, 2, False, 240, True, True), (64, 128, 3, False, 240, True, True), (64, 128, 3, False, 240)]
if "dkdv_next" in sys.argv[1:]:
    DKDV_TILES = DKDV_NEXT
SHAPES = [(16, 12, 1024, 64), (8, 16, 2048, 128), (4, 32, 4096, 64), (2, 16, 8192, 128), (2, 12, 8192, 64)]
parts = [p.replace("dkdv_next", "dkdv").replace("fwd_persist", "fwd").replace("dq_persist", "dq")
         for p in sys.argv[1:]] or ["fwd", "dq", "dkdv", "all"]
props = torch.cuda.get_device_properties(0)
print(f"gpu {props.name}, torch {torch.__version__}, triton {triton.__version__}", flush=True)


def bench(fn):
    return triton.testing.do_bench_cudagraph(fn, rep=50, return_mode="median")


def rel(a, b):
    return ((a.float() - b.float()).abs().max() / b.float().abs().max()).item()


for B, H, T, D in SHAPES:
    q, k, v, do = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16) for _ in range(4))
    qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))
    flops = 4 * B * H * T * T * D / 2
    attn = lambda q, k, v: fs.sigmoid_attention(q, k, v, causal=True)  # noqa: E731
    fs.GLUON_FWD_WS, fs.GLUON_DQ_WS, fs.GLUON_DKDV_WS = {}, {}, {}
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        sdpa = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)  # noqa: E731
        with torch.no_grad():
            cu_f = bench(lambda: sdpa(q, k, v))
        cu_fb = bench(fwd_bwd(sdpa, qg, kg, vg, do))
    print(f"({B},{H},{T},{D}) cuDNN fwd {cu_f:.4f} ms {flops / cu_f / 1e9:.0f} TF/s, fwd+bwd {cu_fb:.4f} ms "
          f"{3.5 * flops / cu_fb / 1e9:.0f} TF/s", flush=True)
    if "fwd" in parts:
        with torch.no_grad():
            base = attn(q, k, v)
            res = [("landed", bench(lambda: attn(q, k, v)), 0.0)]
            for tile in FWD_TILES:
                fs.GLUON_FWD_WS = {D: tile}
                try:
                    err = rel(attn(q, k, v), base)
                    res.append((f"ws {tile}", bench(lambda: attn(q, k, v)), err))
                except Exception as e:  # noqa: BLE001
                    print(f"  {tile} FAILED {type(e).__name__}: {str(e)[:200]}", flush=True)
            fs.GLUON_FWD_WS = {}
        for name, ms, err in res:
            print(f"  fwd {name:30s} {ms:.4f} ms {flops / ms / 1e9:4.0f} TF/s  {cu_f / ms:.3f}x cuDNN  "
                  f"{res[0][1] / ms:.3f}x landed  rel diff {err:.1e}", flush=True)
    for part, table, tiles in (("dq", "GLUON_DQ_WS", DQ_TILES), ("dkdv", "GLUON_DKDV_WS", DKDV_TILES)):
        if part not in parts:
            continue
        base = torch.autograd.grad(attn(qg, kg, vg), (qg, kg, vg), do)
        res = [("landed", bench(fwd_bwd(attn, qg, kg, vg, do)), 0.0)]
        for tile in tiles:
            setattr(fs, table, {D: tile})
            try:
                got = torch.autograd.grad(attn(qg, kg, vg), (qg, kg, vg), do)
                err = max(rel(got[0], base[0]), rel(got[1], base[1]), rel(got[2], base[2]))
                res.append((f"ws {part} {tile}", bench(fwd_bwd(attn, qg, kg, vg, do)), err))
            except Exception as e:  # noqa: BLE001
                print(f"  {tile} FAILED {type(e).__name__}: {str(e)[:200]}", flush=True)
        setattr(fs, table, {})
        for name, ms, err in res:
            print(f"  f+b {name:30s} {ms:.4f} ms {3.5 * flops / ms / 1e9:4.0f} TF/s  {cu_fb / ms:.3f}x cuDNN  "
                  f"{res[0][1] / ms:.3f}x landed  rel diff {err:.1e}", flush=True)
    if "all" in parts:  # the three together, first tile of each list
        fs.GLUON_FWD_WS, fs.GLUON_DQ_WS, fs.GLUON_DKDV_WS = {D: FWD_TILES[0]}, {D: DQ_TILES[0]}, {D: DKDV_TILES[0]}
        ms = bench(fwd_bwd(attn, qg, kg, vg, do))
        fs.GLUON_FWD_WS, fs.GLUON_DQ_WS, fs.GLUON_DKDV_WS = {}, {}, {}
        print(f"  f+b all three warp-specialised   {ms:.4f} ms {3.5 * flops / ms / 1e9:4.0f} TF/s  "
              f"{cu_fb / ms:.3f}x cuDNN", flush=True)
    torch.cuda.empty_cache()
