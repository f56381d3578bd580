"""Instructions per step of a kernel's inner loop in its sm_90 SASS, by opcode: the loop-count tables of
results/kernel/LOG.md, session 34. No GPU needed: tests/test_sm90_compile.py compiles each kernel variant with
Triton's own ptxas and finds the loop (`_inner_loops`, its first: the shortest backward-branch range holding an HGMMA and a
MUFU).

    env -u TRITON_INTERPRET PYTHONPATH=. python results/kernel/gluon/sass_loop_ops.py REGEX [KINDS]

REGEX picks variants by their name in that test (e.g. "gl_fwd D=64 bf16 causal=True alibi=True"); KINDS (e.g.
"dq-qkn,fwd") compiles those Triton kernels instead of the Gluon ones.
"""
import collections
import os
import re
import sys

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
for cubin, (name, usage) in zip(cubins, out.items()):
    if re.search(sys.argv[1], name):
        ops = collections.Counter(x.split()[x.startswith("@")].split(".")[0] for x in t._inner_loops(cubin)[0])
        print(f"{name}: {usage['reg']} registers, {usage['stack']} B stack; inner loop {sum(ops.values())} "
              f"instructions:", ", ".join(f"{k} {v}" for k, v in ops.most_common()))
