# Session 36: next_boundary.patch landed (2078900); parts 3, 8, 9 that apply it are history. Its next parts: run83.sh 8-10.
# Runs 79-82 (2026-12-05) ran parts 1, 8, 9, 10 (= 1, 7, 4, 5 and two rounds of part 3's step A/B; results/kernel/LOG.md): still
# to run are part 2 (the kernel A/B against 2f8f2c4's in one call), part 6 and a profile of today's step.
# Prepared for the next session with a device (sessions 33 and 34 had none). Main changed in session 34 without a
# GPU: the Gluon forward and dK/dV run the steps that cannot meet the causal diagonal as a loop without the mask
# (sm_90 SASS per step at D=64: forward 341 -> 255 instructions, dK/dV 508 -> 414), and the D=128 dK/dV recomputes
# K's and V's wgmma descriptors per step (Triton 3.9 spilled them). Same outputs by construction: the GPU tests
# come first. Prediction: where the loops were issue-bound (D=64: about as many issue cycles per step as tensor-core
# cycles, run 66's forward 1.31x / 1.16x cuDNN at T=1024 / 8192) faster, up to the tensor-core and MUFU bounds;
# at D=128 (tensor-core bound) level or slightly faster.
# Also prepared (not on main): next_boundary.patch, every hybrid-norm post-norm fused with the pre-norm after it
# (model.ResidualRMSNormPre, qknorm.post_pre_norm_bwd); predicted ~0.5 ms per step at 16 x 1024 and 2 x 8192.
# Also prepared (session 35): next_fwd_qregs.patch, the Gluon forward with Q in registers at D=128 (S's wgmmas read
# only K from shared memory: predicted up to 1.2x on the D=128 forward, which is at 1.07x cuDNN against the 1.10x
# must); part 7 GPU-tests it and times it against Q from shared memory (next_ab_qregs.py, off / on in one process).
# Setup here (the device has no git):
#   rm -rf devcarry/base devcarry/old devcarry/qregs devcarry/slots && mkdir -p devcarry/base devcarry/old devcarry/qregs devcarry/sh
#   git archive HEAD | tar -x -C devcarry/base; git archive 2f8f2c4 | tar -x -C devcarry/old
#   git archive HEAD | tar -x -C devcarry/qregs && (cd devcarry/qregs && patch -p1 < ../../results/kernel/gluon/next_fwd_qregs.patch)
#   git apply results/kernel/gluon/next_boundary.patch     (the working tree: HEAD + the patch)
#   cp results/kernel/gluon/next_run_i.sh devcarry/ && cp data/shakespeare/*.bin devcarry/sh/
# then, carry ["devcarry"], one call per part, in this order: `bash devcarry/next_run_i.sh 1` (the Gluon GPU tests,
# then issue 11's kernel table on main's kernels), `... 2` (the kernel A/B: 2f8f2c4's kernels against main's),
# `... 3` (the step A/B at 16 x 1024, HEAD against the boundary patch, alternated; the patch's GPU tests), and if the
# patch wins `... 4` (issue 14's table, both shapes and arms; the profile), `... 5` (the paper_1b pair),
# `... 6` (next_dq_probe.py), `... 7` (Q in registers; short: worth running right after 2).
# Each part fits one call (< 600 s) and writes its logs as it goes.
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare devcarry/base/data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/ && cp devcarry/sh/*.bin devcarry/base/data/shakespeare/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python -c "import torch, triton; print(torch.__version__, triton.__version__)"
step() {  # $1: label, $2: directory; one bench of the sigmoid recipe's step at 16 x 1024
  (cd $2 && timeout 150 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants sigmoid_cg > $OUT/ab_$1.log 2>&1)
  grep "^{" $OUT/ab_$1.log | sed "s/^/$1 /" | tee -a $OUT/ab.log
}
quick() {  # $1: label, $2: directory; bench.py --quick (kernel, FA2, cuDNN; eager and CUDA-graph device time)
  (cd $2 && mkdir -p $OUT/$1 && OUT=$OUT/$1 timeout $3 python bench.py --quick > $OUT/quick_$1.log 2>&1)
  grep -E "^check|^graph|^\| *[0-9]" $OUT/quick_$1.log | sed "s/^/$1 /" | tee -a $OUT/quick.log
}
if [ "$1" = 1 ]; then
  (cd devcarry/base && timeout 240 python -m pytest -q -x tests/test_flashsigmoid.py -k gluon > $OUT/tests_gluon.log 2>&1); tail -n 2 $OUT/tests_gluon.log
  quick main devcarry/base $((580 - SECONDS))
elif [ "$1" = 2 ]; then
  quick old devcarry/old 270; quick main2 devcarry/base $((580 - SECONDS))
elif [ "$1" = 3 ]; then
  step base1 devcarry/base; step patch1 .; step base2 devcarry/base; step patch2 .
  timeout $((580 - SECONDS)) python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py tests/test_model.py > $OUT/tests.log 2>&1; tail -n 3 $OUT/tests.log
elif [ "$1" = 4 ]; then
  (mkdir -p $OUT/train; OUT=$OUT/train timeout 380 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1); tail -n 7 $OUT/train.log
  timeout $((580 - SECONDS)) python bench.py --mode=profile --train_shapes 16,1024 --train_variants softmax_cg sigmoid_cg --profile_top 40 > $OUT/profile.log 2>&1; tail -n 4 $OUT/profile.log
elif [ "$1" = 5 ]; then
  (mkdir -p $OUT/p1b; OUT=$OUT/p1b timeout 420 python bench.py --mode=train --train_shapes 4,4096 --iters=16 --train_variants paper_1b_softmax paper_1b > $OUT/paper1b.log 2>&1); tail -n 5 $OUT/paper1b.log
elif [ "$1" = 10 ]; then  # the paper_1b pair on main, then the boundary patch's GPU tests with the time left
  (cd devcarry/base && mkdir -p $OUT/p1b && OUT=$OUT/p1b timeout 400 python bench.py --mode=train --train_shapes 4,4096 --iters=16 --train_variants paper_1b_softmax paper_1b > $OUT/paper1b.log 2>&1); tail -n 5 $OUT/paper1b.log
  timeout $((575 - SECONDS)) python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py tests/test_model.py > $OUT/tests_boundary.log 2>&1; tail -n 3 $OUT/tests_boundary.log
elif [ "$1" = 9 ]; then  # issue 14's table on main (both shapes, both arms), then a second round of the boundary A/B
  (cd devcarry/base && mkdir -p $OUT/train && OUT=$OUT/train timeout 420 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1); tail -n 7 $OUT/train.log
  if [ $SECONDS -lt 420 ]; then step patch2 .; fi
  if [ $SECONDS -lt 440 ]; then step base2 devcarry/base; fi
elif [ "$1" = 8 ]; then  # part 7, then one round of part 3's step A/B (HEAD, then the boundary patch)
  (cd devcarry/qregs && timeout 200 python -m pytest -q -x tests/test_flashsigmoid.py -k gluon_forward > $OUT/tests_qregs.log 2>&1); tail -n 2 $OUT/tests_qregs.log
  (cd devcarry/qregs && PYTHONPATH=. timeout 150 python results/kernel/gluon/next_ab_qregs.py > $OUT/ab_qregs.log 2>&1); grep -E "RESULT|Error" $OUT/ab_qregs.log
  step base1 devcarry/base; step patch1 .
elif [ "$1" = 7 ]; then  # the Gluon forward with Q in registers: its GPU tests (both settings), then the A/B
  (cd devcarry/qregs && timeout 240 python -m pytest -q -x tests/test_flashsigmoid.py -k gluon_forward > $OUT/tests_qregs.log 2>&1); tail -n 2 $OUT/tests_qregs.log
  (cd devcarry/qregs && PYTHONPATH=. timeout $((580 - SECONDS)) python results/kernel/gluon/next_ab_qregs.py > $OUT/ab_qregs.log 2>&1); grep -E "RESULT|Error" $OUT/ab_qregs.log
else  # 6: why the dQ kernel is slower in the model than isolated (next_dq_probe.py's header)
  PYTHONPATH=. timeout 300 python results/kernel/gluon/next_dq_probe.py 2>&1 | grep -E "RESULT|Error" | tee $OUT/dq_probe.log
fi
