# train.py under inductor config overrides: `python next_inductor_run.py KEY=VALUE[,KEY=VALUE...]|none CONFIG --k=v ...`
# (KEY a dotted torch._inductor.config name, VALUE a Python literal). For A/Bs of inductor's fusion choices on the
# recipe's step; a KEY this torch does not have stops the run with its name.
import ast
import runpy
import sys

import torch._inductor.config as c

spec = sys.argv.pop(1)
for kv in ([] if spec == "none" else spec.split(",")):
    key, val = kv.split("=", 1)
    *path, name = key.split(".")
    obj = c
    for p in path:
        obj = getattr(obj, p)
    if not hasattr(obj, name):
        raise SystemExit(f"error: this torch's inductor config has no {key!r}")
    setattr(obj, name, ast.literal_eval(val))
    print(f"inductor config: {key} = {getattr(obj, name)!r}", flush=True)
sys.argv[0] = "train.py"
sys.path.insert(0, ".")
runpy.run_path("train.py", run_name="__main__")
