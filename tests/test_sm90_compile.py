"""Every autotune config of every FlashSigmoid kernel compiles for Hopper (sm_90), checked on a CPU; so do
qknorm.py's kernels. The Gluon kernels' inner loops are read from the SASS too.

Triton compiles ahead of time for a named target with its bundled ptxas: no GPU or driver needed.
This catches what the interpreter tests cannot: code that runs interpreted but does not lower to
PTX, configs whose tiles do not fit, and register spills (local memory or stack); and the Gluon
forward, which the interpreter cannot run at all. Triton must not be in interpreter mode for this,
so the compiles run in a child process (this file as a script).
"""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")
ROOT = Path(__file__).resolve().parents[1]


SHARD = (0, 1)  # (this process, processes): it compiles every n-th kernel, so that every core works
_seen = 0


def _mine():
    """Whether this process compiles the next kernel met."""
    global _seen
    _seen += 1
    return (_seen - 1) % SHARD[1] == SHARD[0]


def _cuobjdump(cubin, flag):
    import tempfile

    import triton
    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        return subprocess.run([str(cuobjdump), flag, f.name], capture_output=True, text=True).stdout


def _usage(cubin, smem):
    import re
    m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:\d+ LOCAL:(\d+)", _cuobjdump(cubin, "--dump-resource-usage"))
    return {**dict(zip(("reg", "stack", "local"), map(int, m.groups()))), "smem": smem}


def _inner_loops(cubin):
    """The SASS of a kernel's inner loops, one instruction per item: the ranges closed by a backward branch that hold
    a warpgroup MMA (HGMMA) and a tanh (MUFU) and no other such range; the shortest first (the steady-state loop).
    results/kernel/gluon/sass_loop_ops.py prints one by opcode."""
    import re
    ins = [(int(a, 16), x.strip()) for a, x in re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);",
                                                         _cuobjdump(cubin, "-sass"))]
    loops = [(int(m.group(1), 16), a) for a, x in ins
             for m in [re.search(r"BRA\s+(?:`\(\.L_x_\d+\)\s*)?0x([0-9a-f]+)", x)] if m and int(m.group(1), 16) < a]
    bodies = {(lo, hi): [x for a, x in ins if lo <= a <= hi] for lo, hi in loops}
    bodies = {r: b for r, b in bodies.items() if any("HGMMA" in x for x in b) and any("MUFU" in x for x in b)}
    inner = [b for (lo, hi), b in bodies.items() if not any(lo <= a and b_ <= hi and (a, b_) != (lo, hi)
                                                            for a, b_ in bodies)]
    return sorted(inner, key=len)


def compile_gluon():
    """The Gluon kernels (Hopper's path at the head dims of GLUON_FWD and GLUON_DKDV), each feature
    combination that dispatch gives them."""
    import torch
    import triton
    from triton.backends.compiler import GPUTarget

    import flashsigmoid as fs
    if fs.GluonDescriptor is None:  # a Triton without Gluon: that path is off, nothing to compile
        return {}
    from triton.experimental.gluon._runtime import GluonASTSource

    def descs(dtype, D, rows):
        """dtype's short name, and the signature of a (B, H, T, D) descriptor whose box is r rows, per r."""
        name = {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
        gdt = fs.gl.bfloat16 if dtype == torch.bfloat16 else fs.gl.float16
        layout = fs.gl.NVMMASharedLayout.get_default_for
        return name, {r: f"tensordesc<{name}[1,1,{r},{D}],{layout([1, 1, r, D], gdt)!r}>" for r in rows}

    def usage(kernel, sig, consts):
        sig = {**sig, **{n: "constexpr" for n in consts}}
        k = triton.compile(GluonASTSource(kernel, sig, consts, {}), target=GPUTarget("cuda", 90, 32),
                           options=dict(num_warps=consts["num_warps"]))
        loops = _inner_loops(k.asm["cubin"]) or [[]]
        # the steady-state loop's length, selects (FSEL: a mask, where there should be none) and local memory
        # accesses (a spill there would cost at every step); those of the other inner loops (diagonal blocks)
        ops = [[x.split()[x.startswith("@")] for x in loop] for loop in loops]
        local = [sum(op.startswith(("LDL", "STL")) for op in loop) for loop in ops]
        return {**_usage(k.asm["cubin"], k.metadata.shared), "loop": len(loops[0]),
                "loop_fsel": sum(op.startswith("FSEL") for op in ops[0]), "loop_local": local[0],
                "other_loops_local": sum(local[1:])}

    out = {}
    for D, (bm, bn) in fs.GLUON_FWD.items():
        # (the launch order's 1-D sectioned grid, LPT, in the combination the 124M model's long context takes)
        for dtype, causal, alibi, head_bias, group, lpt in [(torch.bfloat16, True, False, False, 1, False),
                                                             (torch.bfloat16, True, True, False, 1, False),
                                                             (torch.bfloat16, True, True, False, 1, True),
                                                             (torch.bfloat16, False, True, True, 2, False),
                                                             (torch.float16, True, True, True, 4, False)]:
            if not _mine():
                continue
            name, desc = descs(dtype, D, (bm, bn))
            consts = dict(GROUP=group, BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D, CAUSAL=causal, HAS_ALIBI=alibi,
                          HEAD_BIAS=head_bias, LPT=lpt, num_warps=4)
            sig = {"q_desc": desc[bm], "k_desc": desc[bn], "v_desc": desc[bn], "o_desc": desc[bm], "Slopes": "*fp32",
                   "hscale": "fp32", "hbias": "fp32", "Tq": "i32", "Tk": "i32", "off_q": "i32", "n_heads": "i32",
                   "section": "i32"}
            key = (f"gl_fwd D={D} {name} causal={causal} alibi={alibi} head_bias={head_bias} group={group} lpt={lpt} "
                   f"{(bm, bn)}")
            out[key] = usage(fs._gl_fwd_kernel, sig, consts)
    # the warp-specialised forward and dQ kernel: their tables' tiles, else (while one is off) the candidate the A/B
    # times; a (B, H, T, D) descriptor per tensor, its box BLOCK_M / 2 query rows or BLOCK_N keys
    # (PERSIST, a program per SM, as the table's entry says, and in the second combination)
    ws_kernels = [("gl_ws_fwd", fs._gl_ws_fwd_kernel, fs.GLUON_FWD_WS or {128: (128, 128, 2, True, 232)},
                   {"q_desc": "q", "k_desc": "k", "v_desc": "k", "o_desc": "q"}, {}),
                  ("gl_wsdq", fs._gl_wsdq_kernel, fs.GLUON_DQ_WS or {128: (128, 64, 3, True, 232)},
                   {"q_desc": "q", "k_desc": "k", "v_desc": "k", "do_desc": "q", "dq_desc": "q"}, {"scale": "fp32"})]
    for kname, kernel, table, tensors, scalars in ws_kernels if hasattr(fs.gl, "warp_specialize") else ():
        for D, (bm, bn, stages, pingpong, regs, *entry) in table.items():
            for dtype, causal, alibi, head_bias, group, lpt in [(torch.bfloat16, True, False, False, 1, False),
                                                                 (torch.bfloat16, True, True, False, 1, True),
                                                                 (torch.float16, False, True, True, 4, False)]:
                if not _mine():
                    continue
                name, desc = descs(dtype, D, (bm // 2, bn))
                persist = lpt or bool(entry and entry[0])
                consts = dict(GROUP=group, BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D, STAGES=stages, CAUSAL=causal,
                              HAS_ALIBI=alibi, HEAD_BIAS=head_bias, PINGPONG=pingpong, REGS=regs, PERSIST=persist,
                              num_warps=4)
                sig = {**{n: desc[bm // 2 if side == "q" else bn] for n, side in tensors.items()}, "Slopes": "*fp32",
                       **scalars, "hscale": "fp32", "hbias": "fp32", "Tq": "i32", "Tk": "i32", "off_q": "i32",
                       "n_heads": "i32", "section": "i32", "Tiles": "*i32", "n_tiles": "i32"}
                key = (f"{kname} D={D} {name} causal={causal} alibi={alibi} head_bias={head_bias} group={group} "
                       f"persist={persist} {(bm, bn, stages, pingpong, regs)}")
                out[key] = usage(kernel, sig, consts)
    for D, (bm, bn, slots, w) in fs.GLUON_DKDV.items():
        # (QK-norm's backward in the epilogue: at D <= 64, as qknorm.py uses it; grouped heads at D <= 64 only,
        # where _bwd_into takes it: at 128 the group loop spills)
        g2, g4 = (2, 4) if D <= 64 else (1, 1)
        for dtype, causal, alibi, head_bias, group, qkn, lpt in [(torch.bfloat16, True, False, False, 1, False, False),
                                                                 (torch.bfloat16, True, True, False, 1, D <= 64, False),
                                                                 (torch.bfloat16, True, True, False, 1, D <= 64, True),
                                                                 (torch.bfloat16, False, True, True, g2, False, False),
                                                                 (torch.float16, True, True, True, g4, D <= 64, False)]:
            if not _mine():
                continue
            name, desc = descs(dtype, D, (bm, bn))
            consts = dict(GROUP=group, BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D, SLOTS=slots, CAUSAL=causal,
                          HAS_ALIBI=alibi, HEAD_BIAS=head_bias, QKNORM=qkn, LPT=lpt, num_warps=w)
            sig = {"q_desc": desc[bm], "k_desc": desc[bn], "v_desc": desc[bn], "do_desc": desc[bm],
                   "DK": f"*{name}", "DV": f"*{name}", "Slopes": "*fp32", "scale": "fp32", "hscale": "fp32",
                   "hbias": "fp32", "Tq": "i32", "Tk": "i32", "off_q": "i32", "n_heads": "i32", "section": "i32",
                   **{n: "i32" for n in ("stride_dkb", "stride_dkh", "stride_dkn", "stride_dvb", "stride_dvh",
                                         "stride_dvn")},
                   "XK": f"*{name}", "RK": "*fp32", "GK": "*fp32", "DG": "*fp32",
                   **{n: "i32" for n in ("stride_xb", "stride_xh", "stride_xm", "stride_rb", "stride_rm")}}
            key = (f"gl_dkdv D={D} {name} causal={causal} alibi={alibi} head_bias={head_bias} group={group} "
                   f"qknorm={qkn} lpt={lpt} {(bm, bn, slots, w)}")
            out[key] = usage(fs._gl_dkdv_kernel, sig, consts)
    return out


def compile_qknorm():
    """qknorm.py's kernels at the 124M model's sizes (12 heads of 64, width 768), bf16 activations."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    import qknorm as qn
    heads = dict(NH=12, NKV=12, HS=64, HS_PAD=64, BLOCK_R=qn.BLOCK_R)

    def post(config, pre):  # the post-norm kernel (with the next pre-norm's backward: pre) at its launch config
        return dict(C=768, C_PAD=1024, BLOCK_R=config[0], PRE=pre, STAGES=config[3])
    # (name, kernel, constants, warps, its bf16 pointers: the others are fp32)
    cases = [("qknorm_fwd", qn._qknorm_fwd_kernel, heads, 4, "X Q K"),
             ("qknorm_pack", qn._qknorm_pack_kernel, heads, 4, "X P"),
             ("qknorm_bwd", qn._qknorm_bwd_kernel, {**heads, "FROM_Y": True}, 4, "X DQ DK DX"),
             ("sum_rows", qn._sum_rows_kernel, dict(CHUNK=128, BLOCK_R=64, BLOCK_N=64), 4, ""),
             ("post_norm_bwd", qn._post_norm_bwd_kernel, post(qn.POST_CONFIG, False), qn.POST_CONFIG[1], "DA"),
             ("post_pre_norm_bwd", qn._post_norm_bwd_kernel, post(qn.POST_PRE_CONFIG, True), qn.POST_PRE_CONFIG[1],
              "DA GH")]
    out = {}
    for name, fn, consts, warps, bf16 in cases:
        if not _mine():
            continue
        sig = {}
        for n in fn.arg_names:
            if n in consts:
                sig[n] = "constexpr"
            elif n == "eps":
                sig[n] = "fp32"
            elif n[0].isupper() and n != "N":  # a tensor
                sig[n] = "*bf16" if n in bf16.split() else "*fp32"
            else:  # lengths and strides
                sig[n] = "i32"
        k = triton.compile(ASTSource(fn, sig, consts), target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps))
        out[f"qknorm.{name}"] = _usage(k.asm["cubin"], k.metadata.shared)
    return out


def compile_all(kinds=None):
    """{'kind D dtype config': resource usage} for each table config of each kernel."""
    import torch

    import flashsigmoid as fs
    # one representative of each table: (head dim, dtype)
    # (and a head dim that is no power of two, padded inside the kernel: its first config only)
    reps = {"small": [(64, torch.bfloat16), (128, torch.bfloat16), (96, torch.bfloat16)],
            "large": [(256, torch.float16)], "xl": [(64, torch.float32)]}
    base = KERNELS
    variants = list(base)
    # Every variant takes tensor descriptors where Hopper does (16-bit, power-of-two head dims, not varlen);
    # the pointer loads of other GPUs (and USE_TMA=False) are checked at each table's first config
    variants += [(f"{name}-ptr", kind, {**extra, "TMA": False}) for name, kind, extra in base]
    # with attention dropout (the Philox mask in every kernel): the 16-bit tables at D = 64 and 128
    variants += [(f"{name}-drop", kind, {**extra, "HAS_DROPOUT": True}) for name, kind, extra in base]
    # with a sliding window, and over packed sequences (the first config of each table: these change
    # loop bounds and masks, not tiles)
    variants += [(f"{name}-{v}", kind, {**extra, flag: True}) for name, kind, extra in base
                 for v, flag in (("window", "HAS_WINDOW"), ("varlen", "VARLEN"))]
    # the launch order's 1-D sectioned grid (from LPT_MIN_LEN on): the 16-bit tables at D = 64 and 128
    variants += [(f"{name}-lpt", kind, {**extra, "LPT": True}) for name, kind, extra in base]
    # ending in QK-norm's backward (qknorm.py's fused op; the dQ kernel's backward only)
    variants += [(f"{name}-qkn", kind, {**extra, "QKNORM": True}) for name, kind, extra in base
                 if kind != "fwd" and not extra.get("ATOMIC_DQ")]
    out = compile_gluon() if not kinds or "gl" in kinds else {}
    out.update(compile_qknorm() if not kinds or "qknorm" in kinds else {})
    for name, kind, extra in variants:
        if kinds and name not in kinds:
            continue
        for size, cfgs in fs._TABLES[kind].items():
            for D, dtype in reps[size]:
                if (extra.get("HAS_DROPOUT") or extra.get("LPT")) and (size != "small" or D not in (64, 128)):
                    continue
                if extra.get("QKNORM") and (size != "small" or D != 64):  # qknorm.py uses it at D <= 64 only
                    continue
                tma = dtype != torch.float32 and not D & (D - 1) and not extra.get("VARLEN")  # fs._tma_ok's rule
                if extra.get("TMA") is False and not tma:
                    continue  # (the plain variant is the pointer path already)
                first_only = D & (D - 1) or extra.get("HAS_WINDOW") or extra.get("VARLEN") or extra.get("TMA") is False
                for c in (cfgs[:1] if first_only else cfgs):
                    if not _mine():
                        continue
                    k = _compile(kind, D, dtype, c, {"TMA": tma, **extra})
                    out[f"{name} D={D} {str(dtype)[6:]} {c}"] = _usage(k.asm["cubin"], k.metadata.shared)
    return out


# The Triton kernels as the tests name them: (name, kind, flags); the dK/dV kernel in both backward modes, dQ by
# atomic adds or by the dQ kernel
KERNELS = [("fwd", "fwd", {}), ("dkdv", "dkdv", {"ATOMIC_DQ": True}), ("dkdv-det", "dkdv", {"ATOMIC_DQ": False}),
           ("dq", "dq", {})]


def _compile(kind, D, dtype, c, extra, target=None):
    """Triton kernel `kind` (fwd, dkdv, dq) at head dim D, causal with ALiBi, compiled with config c and the
    constexprs in `extra` (over pointer loads, no QK-norm, no LPT) for `target` (sm_90)."""
    import torch
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    import flashsigmoid as fs
    fn, names = fs._KERNELS[kind], fs._NAMES[kind]
    consts = {**fs._meta(4, 4, D, dtype, True, True, dtype == torch.float32), "QKNORM": False, "TMA": False,
              "LPT": False, **extra, **dict(zip(names, c[:-2]))}
    ptr = {torch.bfloat16: "*bf16", torch.float16: "*fp16", torch.float32: "*fp32"}[dtype]
    sig, attrs = {}, {}
    for i, n in enumerate(fn.arg_names):
        if n in consts:
            sig[n] = "constexpr"
        elif consts["TMA"] and n in {"fwd": "QKVO", "dkdv": ("Q", "DO"), "dq": "KV"}[kind]:
            # (B, H, T, D) descriptors whose box is a query (Q, O, DO) or key (K, V) tile
            rows = consts[names[1 if n in "KV" else 0]]
            sig[n] = f"tensordesc<{ptr[1:]}[1,1,{rows},{consts['HEAD_DIM']}]>"
        elif n in ("Q", "K", "V", "O", "DO", "DQ", "DK", "DV", "Slopes"):
            fp32 = n == "Slopes" or (n == "DQ" and extra.get("ATOMIC_DQ"))  # the dQ sum
            sig[n] = "*fp32" if fp32 else ptr
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif n in ("XQ", "XK"):  # QK-norm's raw heads
            sig[n] = ptr
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif n in ("RQ", "RK", "GQ", "GK", "DG"):  # QK-norm's r, gains, gain partials
            sig[n] = "*fp32"
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif n in ("CuQ", "CuK"):
            sig[n] = "*i32"
        elif n in ("scale", "hscale", "hbias", "drop_p", "drop_scale"):
            sig[n] = "fp32"
        elif n == "Seed":  # dropout's seed, an int64 tensor of one element
            sig[n] = "*i64"
        else:  # lengths and strides of a T=2048 problem: multiples of 16, as Triton specialises
            sig[n] = "i32"
            if n not in ("off_q", "WL", "WR", "n_seq", "SEARCH", "stride_rm", "n_heads", "section"):  # (not specialised)
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = ASTSource(fn, sig, {n: consts[n] for n in sig if n in consts}, attrs)
    return triton.compile(src, target=target or GPUTarget("cuda", 90, 32),
                          options=dict(num_warps=c[-1], num_stages=c[-2]))


# Shared memory per block against Hopper's 227 KB: consumer NVIDIA GPUs (sm_86 Ampere, sm_89 Ada, sm_120 Blackwell)
# 99 KB, AMD's MI300X (gfx942) 64 KB. Tiles that do not fit fail at launch; the autotuner skips them, so each table
# needs one that fits.
SMALL_GPUS = {"sm_89": (("cuda", 89, 32), 99 * 1024), "gfx942": (("hip", "gfx942", 64), 64 * 1024)}


def compile_small_gpu(gpu):
    """{'kind D dtype': [(config, shared bytes), ...]}: each kernel table's tiles compiled for SMALL_GPUS[gpu] as
    dispatch takes them there (pointer loads: tensor descriptors are Hopper's and Blackwell's; on AMD the exact
    sigmoid, flashsigmoid._HIP), smallest first (BLOCK_M x BLOCK_N x stages), up to the first that fits. (sm_120,
    where 16-bit tiles come by tensor descriptor, needed no more shared memory than sm_89 in a survey of every
    config, 2026-12-05.)"""
    import torch
    from triton.backends.compiler import GPUTarget

    import flashsigmoid as fs
    (backend, arch, warp), limit = SMALL_GPUS[gpu]
    fs._HIP = backend == "hip"  # (what torch.version.hip sets on a ROCm build)
    reps = {"small": [(64, torch.bfloat16), (128, torch.bfloat16)], "large": [(256, torch.float16)],
            "xl": [(64, torch.float32), (256, torch.float32)]}
    out = {}
    for name, kind, extra in KERNELS:
        for size, cfgs in fs._TABLES[kind].items():
            for D, dtype in reps[size]:
                if not _mine():
                    continue
                tried = out[f"{name} D={D} {str(dtype)[6:]}"] = []
                for c in sorted(cfgs, key=lambda c: c[0] * c[1] * c[2]):
                    k = _compile(kind, D, dtype, c, extra, GPUTarget(backend, arch, warp))
                    tried.append((c, k.metadata.shared))
                    if k.metadata.shared <= limit:
                        break
    return out


# What the autotuner picked on an H200 (Triton 3.6, BENCHMARKS.md, run 28) at the benchmark shapes, with
# the tensor descriptors Hopper takes: (kind, D, config, most bytes of stack). Spilling here would cost
# real speed. Register allocation differs between Triton versions; these bounds hold with Triton 3.6, 3.8
# and 3.9 (2026-12-03 and 12-04; the deterministic dK/dV at D=128 spills 8 bytes with 3.6, none with 3.8,
# 24 with 3.9; the atomic dK/dV at D=64 none with 3.6 and 3.8, 8 with 3.9: on Hopper both run only where
# the Gluon dK/dV does not, with dropout, windows, packed sequences or grouped heads at D=128). The
# atomic dK/dV at D=128, (64, 128, 3, 8), is at the 255-register cap and spills with or without
# descriptors (not listed). The dQ kernel's (128, 64, 4, 4) at D=64, picked in run 50, is at the cap: with
# the 1-D launch order's index arithmetic (LPT, from T=8192) it spills 24 bytes with 3.8, 8 with 3.6, and
# run 66's autotuner picked (128, 64, 3, 8) there instead (no spill): that bound is the spill as measured.
PICKED = [("fwd", 64, (64, 64, 3, 4), 0), ("fwd", 64, (128, 64, 3, 4), 0), ("fwd", 64, (64, 64, 4, 4), 0),
          ("fwd", 128, (64, 64, 3, 4), 0), ("fwd", 128, (128, 128, 3, 8), 0),
          ("dkdv-det", 64, (32, 64, 4, 4), 0), ("dkdv-det", 128, (64, 128, 3, 8), 24),
          ("dkdv", 64, (64, 64, 3, 4), 8),
          ("dq", 64, (64, 32, 4, 4), 0), ("dq", 64, (128, 64, 4, 4), 0), ("dq", 64, (128, 64, 3, 8), 0),
          ("dq", 64, (64, 64, 3, 4), 0), ("dq", 128, (128, 64, 3, 8), 0),
          ("fwd-lpt", 64, (128, 64, 3, 4), 0), ("fwd-lpt", 128, (128, 128, 3, 8), 0),
          ("dkdv-det-lpt", 128, (64, 128, 3, 8), 8),
          ("dq-lpt", 64, (128, 64, 4, 4), 24), ("dq-lpt", 64, (128, 64, 3, 8), 0), ("dq-lpt", 128, (128, 64, 3, 8), 0)]


def _compiled(*args):
    """This file as a script in one child process per core (each compiling its share: ptxas is single-threaded),
    their JSON merged."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    n = min(os.cpu_count() or 1, 4)
    procs = [subprocess.Popen([sys.executable, __file__, f"--shard={i}/{n}", *args], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(n)]
    merged = {}
    try:
        for p in procs:
            out, err = p.communicate(timeout=1200)
            if p.returncode == 3:
                pytest.skip(out.strip().splitlines()[-1])
            assert p.returncode == 0, err[-3000:]  # a config that does not compile fails here
            merged.update(json.loads(out.strip().splitlines()[-1]))
    finally:  # (a skip or failure above leaves the other shards compiling: stop them)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return merged


def test_every_config_compiles_for_sm90_and_the_picked_ones_do_not_spill():
    usage = _compiled()
    assert len(usage) >= 70, usage
    too_big = {k: u for k, u in usage.items() if u["smem"] > 227 * 1024}  # H100/H200 per-block limit
    assert not too_big, too_big
    gluon = {k: u for k, u in usage.items() if k.startswith("gl_")}  # the Gluon kernels, where Triton has Gluon
    assert gluon or importlib.util.find_spec("triton.experimental.gluon") is None
    # no spills, and none in any steady-state loop; but the persistent warp-specialised kernels (a loop over tiles
    # around the key loops) keep per-program values on the stack where registers run short: causal with ALiBi, 8-16
    # bytes with Triton 3.6 and 3.8; with 3.9 32 bytes without ALiBi, 280 (forward) and 48 (dQ) with it, spilled in
    # the diagonal blocks' steps and at tile boundaries (SASS, session 41; measured on the GPU with 3.6 only)
    assert all(u["local"] == 0 and u["loop_local"] == 0 for u in gluon.values()), gluon
    assert all(u["stack"] <= (320 if k.startswith("gl_ws") and "persist=True" in k else 0)
               for k, u in gluon.items()), gluon
    # and their steady-state loops mask nothing: the causal mask's selects belong to the diagonal blocks only
    # (issued at every step they were a quarter of the forward's loop at D=64, run-time check or not)
    assert all(u["loop"] > 0 and u["loop_fsel"] == 0 for u in gluon.values()), gluon
    norms = {k: u for k, u in usage.items() if k.startswith("qknorm.")}  # qknorm.py's kernels
    assert len(norms) >= 5 and all(u["local"] == 0 and u["stack"] == 0 for u in norms.values()), norms
    for kind, D, c, stack in PICKED:
        u = usage[f"{kind} D={D} bfloat16 {c}"]
        assert u["local"] == 0 and u["stack"] <= stack, (kind, D, c, u)
    # dropout's Philox raises register pressure, and some configs spill: the autotuner must still
    # have a spill-free one for each kernel and head dim
    for kind in ("fwd", "dkdv", "dkdv-det", "dq"):
        for D in (64, 128):
            drop = {k: u for k, u in usage.items() if k.startswith(f"{kind}-drop D={D} ")}
            assert drop and any(u["stack"] == 0 and u["local"] == 0 for u in drop.values()), (kind, D, drop)
    # likewise ending in QK-norm's backward (qknorm.py uses it at D <= 64: at 128 these kernels are at
    # the register cap already)
    for kind in ("dkdv-det", "dq"):
        for D in (64,):
            qkn = {k: u for k, u in usage.items() if k.startswith(f"{kind}-qkn D={D} ")}
            assert qkn and any(u["stack"] == 0 and u["local"] == 0 for u in qkn.values()), (kind, D, qkn)
    print("\n".join(f"{k}: {u}" for k, u in usage.items()))  # the spill table, with pytest -s


@pytest.mark.parametrize("gpu", list(SMALL_GPUS))
def test_every_kernel_table_has_a_tile_that_compiles_and_fits_smaller_gpus(gpu):
    # An RTX 3090 / 4090 / 5090 has 99 KB of shared memory per block, an MI300X 64 KB; with no tile of its table
    # that fits, a kernel cannot run there at all (the forward at head dims 129-256 could not on the former, before
    # its (64, 32, 2, 4)). For the MI300X every kernel must also compile for AMD's backend: no PTX in its path.
    tried = _compiled(f"--small-gpu={gpu}")
    assert len(tried) == 4 * 5, tried  # (4 kernels x 5 head dim / dtype representatives)
    assert all(t[-1][1] <= SMALL_GPUS[gpu][1] for t in tried.values()), tried
    print("\n".join(f"{k}: {t}" for k, t in tried.items()))


if __name__ == "__main__":
    try:
        from triton.backends.compiler import GPUTarget  # noqa: F401
        from triton.compiler import ASTSource  # noqa: F401
    except ImportError as e:  # another Triton layout: say so instead of failing
        print(f"this Triton has no ahead-of-time compile API as used here: {e}")
        sys.exit(3)
    args = sys.argv[1:]
    for a in [a for a in args if a.startswith("--shard=")]:  # --shard=i/n: the i-th of n processes
        SHARD = tuple(int(x) for x in a[len("--shard="):].split("/"))
        args.remove(a)
    small = [a[len("--small-gpu="):] for a in args if a.startswith("--small-gpu=")]
    print(json.dumps(compile_small_gpu(small[0]) if small else compile_all(args or None)))
