"""Instructions per step of a kernel's inner loop in its sm_90 SASS, by opcode: the loop-count tables of
results/kernel/LOG.md, session 34. No GPU needed: tests/test_sm90_compile.py compiles each kernel variant with
Triton's own ptxas, and cuobjdump disassembles it.

    env -u TRITON_INTERPRET PYTHONPATH=. python results/kernel/gluon/sass_loop_ops.py REGEX [KINDS]

REGEX picks variants by their name in that test (e.g. "gl_fwd D=64 bf16 causal=True alibi=True"); KINDS (e.g.
"dq-qkn,fwd") compiles those Triton kernels instead of the Gluon ones. The inner loop is the smallest range closed
by a backward branch that holds both a warpgroup MMA (HGMMA) and a tanh (MUFU).
"""
import collections
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests"))
import triton  # noqa: E402

import test_sm90_compile as t  # noqa: E402

cubins = []
_compile = triton.compile


def _keep(*a, **k):
    kernel = _compile(*a, **k)
    cubins.append(kernel.asm["cubin"])
    return kernel


triton.compile = _keep
out = t.compile_all(sys.argv[2].split(",")) if len(sys.argv) > 2 else t.compile_gluon()
cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
for cubin, (name, usage) in zip(cubins, out.items()):
    if not re.search(sys.argv[1], name):
        continue
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        sass = subprocess.run([cuobjdump, "-sass", f.name], capture_output=True, text=True).stdout
    ins = [(int(a, 16), x.strip()) for a, x in re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", sass)]
    loops = [(int(m.group(1), 16), a) for a, x in ins
             for m in [re.search(r"BRA\s+(?:`\(\.L_x_\d+\)\s*)?0x([0-9a-f]+)", x)] if m and int(m.group(1), 16) < a]
    body = lambda lo, hi: [x for a, x in ins if lo <= a <= hi]  # noqa: E731
    inner = [lh for lh in loops if any("HGMMA" in x for x in body(*lh)) and any("MUFU" in x for x in body(*lh))]
    if not inner:
        print(f"{name}: no loop with HGMMA and MUFU found")
        continue
    ops = collections.Counter(re.sub(r"^@!?U?P[T0-9]\s+", "", x).split()[0].split(".")[0]
                              for x in body(*min(inner, key=lambda lh: lh[1] - lh[0])))
    print(f"{name}: {usage['reg']} registers, {usage['stack']} B stack; inner loop {sum(ops.values())} instructions:",
          ", ".join(f"{k} {v}" for k, v in ops.most_common()))
