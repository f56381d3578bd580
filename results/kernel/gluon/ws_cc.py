"""Ahead-of-time sm_90 compile of the warp-specialised Gluon forward (_gl_ws_fwd_kernel) on a CPU: registers,
stack, shared memory per tile. python results/kernel/gluon/ws_cc.py [BLOCK_N,STAGES,PINGPONG,REGS ...]"""
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.experimental.gluon._runtime import GluonASTSource  # noqa: E402

import flashsigmoid as fs  # noqa: E402


def usage(k):
    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(k.asm["cubin"])
        f.flush()
        out = subprocess.run([str(cuobjdump), "--dump-resource-usage", f.name], capture_output=True, text=True).stdout
    return re.search(r"REG:(\d+) STACK:(\d+) SHARED:\d+ LOCAL:(\d+)", out).group(0), k.metadata.shared


def _descs(dtype, D, rows):
    """dtype's short name, and a (B, H, T, D) descriptor's signature per box height in rows."""
    name = {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    gdt = fs.gl.bfloat16 if dtype == torch.bfloat16 else fs.gl.float16
    lay = fs.gl.NVMMASharedLayout.get_default_for
    return name, {r: f"tensordesc<{name}[1,1,{r},{D}],{lay([1, 1, r, D], gdt)!r}>" for r in rows}


def _compile(kernel, sig, consts):
    sig = {**sig, "Slopes": "*fp32", "hscale": "fp32", "hbias": "fp32", "Tq": "i32", "Tk": "i32", "off_q": "i32",
           "n_heads": "i32", "section": "i32", **{n: "constexpr" for n in consts}}
    return triton.compile(GluonASTSource(kernel, sig, consts, {}), target=GPUTarget("cuda", 90, 32),
                          options=dict(num_warps=4))


def compile_ws(D, bn, stages, pingpong, regs, causal=True, alibi=False, head_bias=False, group=1, persist=False,
               dtype=torch.bfloat16, bm=128):
    _, desc = _descs(dtype, D, (bm // 2, bn))
    consts = dict(GROUP=group, BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D, STAGES=stages, CAUSAL=causal, HAS_ALIBI=alibi,
                  HEAD_BIAS=head_bias, PINGPONG=pingpong, REGS=regs, PERSIST=persist, num_warps=4)
    return _compile(fs._gl_ws_fwd_kernel, {"q_desc": desc[bm // 2], "k_desc": desc[bn], "v_desc": desc[bn],
                                           "o_desc": desc[bm // 2], "Tiles": "*i32", "n_tiles": "i32"}, consts)


def compile_wsdq(D, bn, stages, pingpong, regs, causal=True, alibi=False, head_bias=False, group=1, persist=False,
                 dtype=torch.bfloat16, bm=128):
    _, desc = _descs(dtype, D, (bm // 2, bn))
    consts = dict(GROUP=group, BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D, STAGES=stages, CAUSAL=causal, HAS_ALIBI=alibi,
                  HEAD_BIAS=head_bias, PINGPONG=pingpong, REGS=regs, PERSIST=persist, num_warps=4)
    return _compile(fs._gl_wsdq_kernel, {"q_desc": desc[bm // 2], "k_desc": desc[bn], "v_desc": desc[bn],
                                         "do_desc": desc[bm // 2], "dq_desc": desc[bm // 2], "scale": "fp32",
                                         "Tiles": "*i32", "n_tiles": "i32"}, consts)


def compile_wsbwd(D, bm, bn, stages, pingpong, regs, causal=True, alibi=False, head_bias=False, lpt=False,
                  dtype=torch.bfloat16, overlap=True, smem_p=False):
    """(needs run94_wsdkdv.patch applied: _gl_wsbwd_kernel is not on main)"""
    name, desc = _descs(dtype, D, (bm, bn // 2))
    consts = dict(BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D, STAGES=stages, CAUSAL=causal, HAS_ALIBI=alibi,
                  HEAD_BIAS=head_bias, LPT=lpt, PINGPONG=pingpong, REGS=regs, OVERLAP=overlap, SMEM_P=smem_p,
                  num_warps=4)
    sig = {"q_desc": desc[bm], "k_desc": desc[bn // 2], "v_desc": desc[bn // 2], "do_desc": desc[bm],
           "DK": f"*{name}", "DV": f"*{name}", "scale": "fp32",
           **{n: "i32" for n in ("stride_dkb", "stride_dkh", "stride_dkn", "stride_dvb", "stride_dvh", "stride_dvn")}}
    return _compile(fs._gl_wsbwd_kernel, sig, consts)


if __name__ == "__main__":
    cfgs = [tuple(int(x) for x in a.split(",")) for a in sys.argv[1:]] or [(128, 2, 0, 232, 1), (128, 2, 0, 232, 0),
                                                                          (128, 2, 1, 232, 1), (64, 2, 1, 232, 0)]
    print("triton", triton.__version__)
    for D in (128, 64):
        for bn, st, pp, regs, persist in cfgs:
            for extra in [dict(), dict(alibi=True), dict(causal=False, alibi=True, head_bias=True, group=2)]:
                try:
                    k = compile_ws(D, bn, st, pp, regs, persist=bool(persist), **extra)
                    u, smem = usage(k)
                    nreg = sorted(set(re.findall(r"setmaxnreg[.a-z0-9]*\s+(\d+)", k.asm["ptx"])))
                    print(f"D={D} bn={bn} stages={st} pingpong={pp} regs={regs} persist={persist} {extra}: {u} smem={smem} "
                          f"setmaxnreg={nreg}")
                except Exception as e:
                    print(f"D={D} bn={bn} stages={st} pingpong={pp} {extra}: FAILED {type(e).__name__}: "
                          f"{str(e).strip().splitlines()[-1][:300] if str(e).strip() else ''}")
