"""AOT sm_90 compile of the Gluon dK/dV with dQ by TMA reduce: registers, spills, smem."""
import sys, torch, triton
from triton.backends.compiler import GPUTarget
sys.path.insert(0, '.')
import flashsigmoid as fs
from tests.test_sm90_compile import _usage
from triton.experimental.gluon._runtime import GluonASTSource

def compile_dkdv(D, bm, bn, slots, w, atomic, causal=True, alibi=False, group=1, pipe=True, red=True):
    name, gdt = "bf16", fs.gl.bfloat16
    lay = fs.gl.NVMMASharedLayout.get_default_for
    desc = {r: f"tensordesc<{name}[1,1,{r},{D}],{lay([1, 1, r, D], gdt)!r}>" for r in (bm, bn)}
    dqd = f"tensordesc<fp32[1,1,{bm},{D}],{lay([1, 1, bm, D], fs.gl.float32)!r}>" if red else desc[bm]
    consts = dict(GROUP=group, BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D, SLOTS=slots, CAUSAL=causal, HAS_ALIBI=alibi,
                  HEAD_BIAS=False, QKNORM=False, ATOMIC_DQ=atomic, PIPE=pipe, TMA_RED=red, num_warps=w)
    sig = {"q_desc": desc[bm], "k_desc": desc[bn], "v_desc": desc[bn], "do_desc": desc[bm],
           "DK": f"*{name}", "DV": f"*{name}", "DQ": "*fp32", "dq_desc": dqd, "Slopes": "*fp32", "scale": "fp32", "hscale": "fp32",
           "hbias": "fp32", "Tq": "i32", "Tk": "i32", "off_q": "i32",
           **{n: "i32" for n in ("stride_dkb", "stride_dkh", "stride_dkn", "stride_dvb", "stride_dvh", "stride_dvn",
                                 "stride_dqb", "stride_dqh")},
           "XK": f"*{name}", "RK": "*fp32", "GK": "*fp32", "DG": "*fp32",
           **{n: "i32" for n in ("stride_xb", "stride_xh", "stride_xm", "stride_rb", "stride_rm")}}
    sig = {**sig, **{n: "constexpr" for n in consts}}
    k = triton.compile(GluonASTSource(fs._gl_dkdv_kernel, sig, consts, {}), target=GPUTarget("cuda", 90, 32),
                       options=dict(num_warps=w))
    if len(sys.argv) > 1:
        open(f"/tmp/p51/k_{D}_{pipe}.ptx", "w").write(k.asm["ptx"])
    return _usage(k.asm["cubin"], k.metadata.shared)

if __name__ == "__main__":
    print(triton.__version__)
    for D, c, pipe in [(64, (64, 64, 2, 4), True), (64, (64, 64, 3, 4), True), (64, (64, 64, 2, 4), False),
                       (128, (64, 64, 2, 4), False), (128, (64, 64, 1, 4), False), (128, (64, 64, 2, 4), True)]:
        for alibi in (False,):
            try:
                print(D, c, "pipe" if pipe else "flat", compile_dkdv(D, *c, True, alibi=alibi, pipe=pipe), flush=True)
            except Exception as e:
                print(D, c, pipe, "FAILED", str(e)[-2500:], flush=True)
