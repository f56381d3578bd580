# Prepared for the next session, not run (stop 32's device time ran out). The change: next_boundary.patch, hybrid-norm's
# intra-block boundary (the attention branch's post-norm, its residual add and the MLP's pre-norm) as one autograd
# function, model.ResidualRMSNormPre, whose backward is one Triton pass (qknorm.post_pre_norm_bwd): the pre-norm's
# gradient of the residual is added and used in registers instead of written by inductor's norm-backward kernel and
# read back by the post-norm kernel. Predicted: 8 of 28 bytes per element at each of the 12 boundaries, ~30 us each,
# ~0.36 ms per step at 16 x 1024 (the step was 0.53 ms behind softmax's in run 78), less at 2 x 8192 (same bytes, a
# longer step). CPU: tests/test_qknorm.py, test_model.py, test_compile.py pass (217); compiles under aot_eager with
# fullgraph, with and without autocast, gradients equal to eager.
# Setup here (the device has no git):
#   rm -rf devcarry/base && mkdir -p devcarry/base && git archive HEAD | tar -x -C devcarry/base
#   git apply results/kernel/gluon/next_boundary.patch
#   cp results/kernel/gluon/next_run_g.sh devcarry/ && mkdir -p devcarry/sh && cp data/shakespeare/*.bin devcarry/sh/
#   (and the .bin files into devcarry/base/data/shakespeare/ too, below)
# then `bash devcarry/next_run_g.sh 1` (GPU tests, A/B of the step at 16 x 1024: HEAD against the patch, alternated)
# and, if it wins, `bash devcarry/next_run_g.sh 2` (the issue's table: both shapes, both arms; the profile) and
# `bash devcarry/next_run_g.sh 3` (the paper_1b pair), carry ["devcarry"].
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare devcarry/base/data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/ && cp devcarry/sh/*.bin devcarry/base/data/shakespeare/
if [ "$1" = 1 ]; then
  timeout 300 python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py > $OUT/tests_qk.log 2>&1; tail -n 3 $OUT/tests_qk.log
  for i in 1 2; do
    (cd devcarry/base && OUT=$OUT timeout 120 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants sigmoid_cg 2>&1 | grep "^{" | sed 's/^/base /' | tee -a $OUT/ab.log)
    timeout 120 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants sigmoid_cg 2>&1 | grep "^{" | sed 's/^/patch /' | tee -a $OUT/ab.log
  done
elif [ "$1" = 2 ]; then
  (mkdir -p $OUT/train; OUT=$OUT/train timeout 360 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1); tail -n 7 $OUT/train.log
  timeout 150 python bench.py --mode=profile --train_shapes 16,1024 --train_variants softmax_cg sigmoid_cg --profile_top 40 > $OUT/profile.log 2>&1; tail -n 4 $OUT/profile.log
else
  (mkdir -p $OUT/p1b; OUT=$OUT/p1b timeout 400 python bench.py --mode=train --train_shapes 4,4096 --iters=16 --train_variants paper_1b_softmax paper_1b > $OUT/paper1b.log 2>&1); tail -n 5 $OUT/paper1b.log
fi
