# train.py with inductor's mix-order reduction split size set (first argument: none, auto or an int): the rows per
# program of the norms' backward kernels, which write one partial gain-gradient row per program to a workspace
# that an aten sum then reduces (one per gain: 49 in the sigmoid recipe's 124M step, 25 in softmax's)
import runpy
import sys

import torch._inductor.config as c

n = sys.argv.pop(1)
if n == "auto":
    c.triton.mix_order_reduction_autotune_split_size = True
elif n == "off":
    c.triton.mix_order_reduction = False
elif n != "none":
    c.triton.mix_order_reduction_split_size = int(n)
sys.argv[0] = "train.py"
sys.path.insert(0, ".")
runpy.run_path("train.py", run_name="__main__")
