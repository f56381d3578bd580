# Prepared for the next session with a device (session 33 had none: its one call died, then loans paused).
# The change: next_boundary.patch, every hybrid-norm post-norm fused with the pre-norm that follows it (the MLP's,
# the next block's attention's, ln_f) into one autograd function, model.ResidualRMSNormPre, whose backward is one
# Triton pass (qknorm.post_pre_norm_bwd). Prediction from run 77's profile at 16 x 1024: the 23 inductor pre-norm
# backward kernels (1.06 ms) go, the 24 post-norm kernels read/write 20 instead of 14 bytes per element
# (1.17 -> ~1.67 ms): ~0.5 ms per step at 16 x 1024, the same at 2 x 8192 (same tokens).
# Setup here (the device has no git):
#   rm -rf devcarry/base && mkdir -p devcarry/base && git archive HEAD | tar -x -C devcarry/base
#   git apply results/kernel/gluon/next_boundary.patch
#   cp results/kernel/gluon/next_run_h.sh devcarry/ && mkdir -p devcarry/sh && cp data/shakespeare/*.bin devcarry/sh/
#   rm -rf devcarry/old && mkdir -p devcarry/old && git archive 2f8f2c4 | tar -x -C devcarry/old   (part 6 only)
# then, carry ["devcarry"]: `bash devcarry/next_run_h.sh 1` (A/B of the step at 16 x 1024, HEAD vs the patch,
# alternated; then the GPU tests of the changed files), and if the patch wins, `... 2` (the issue's table: both
# shapes, both arms; the profile), `... 3` (the paper_1b pair) and `... 4` (issue 11's kernel table, bench.py
# --quick; it needs no patch) and `... 5` (next_dq_probe.py, ~1 min). Each part fits one call (< 600 s), and writes
# its logs as it goes, so a cut call still brings back what ran.
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare devcarry/base/data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/ && cp devcarry/sh/*.bin devcarry/base/data/shakespeare/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python -c "import torch, triton; print(torch.__version__, triton.__version__)"
step() {  # $1: label, $2: directory; one bench of the sigmoid recipe's step at 16 x 1024
  (cd $2 && timeout 150 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants sigmoid_cg > $OUT/ab_$1.log 2>&1)
  grep "^{" $OUT/ab_$1.log | sed "s/^/$1 /" | tee -a $OUT/ab.log
}
if [ "$1" = 1 ]; then
  step base1 devcarry/base; step patch1 .; step base2 devcarry/base; step patch2 .
  # the Gluon kernels first (main's TMA copies changed name in session 33, same PTX on 3.6 and 3.8; session 34
  # recomputes the D=128 dK/dV's K, V descriptors per step: new PTX there), then the patch's files
  timeout 150 python -m pytest -q -x tests/test_flashsigmoid.py -k gluon > $OUT/tests_gluon.log 2>&1; tail -n 2 $OUT/tests_gluon.log
  timeout $((580 - SECONDS)) python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py tests/test_model.py > $OUT/tests.log 2>&1; tail -n 3 $OUT/tests.log
elif [ "$1" = 2 ]; then
  (mkdir -p $OUT/train; OUT=$OUT/train timeout 380 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1); tail -n 7 $OUT/train.log
  timeout $((580 - SECONDS)) python bench.py --mode=profile --train_shapes 16,1024 --train_variants softmax_cg sigmoid_cg --profile_top 40 > $OUT/profile.log 2>&1; tail -n 4 $OUT/profile.log
elif [ "$1" = 3 ]; then
  (mkdir -p $OUT/p1b; OUT=$OUT/p1b timeout 420 python bench.py --mode=train --train_shapes 4,4096 --iters=16 --train_variants paper_1b_softmax paper_1b > $OUT/paper1b.log 2>&1); tail -n 5 $OUT/paper1b.log
elif [ "$1" = 4 ]; then  # issue 11's kernel table (kernel, FA2, cuDNN; eager and CUDA-graph device time), code as it is
  (mkdir -p $OUT/attn; OUT=$OUT/attn timeout 580 python bench.py --quick > $OUT/bench_attn.log 2>&1); tail -n 9 $OUT/bench_attn.log
elif [ "$1" = 6 ]; then  # session 34's D=128 Gluon dK/dV change (K, V descriptors per step) against 2f8f2c4, alternated
  for r in old1 new1 old2 new2; do
    d=.; [ "${r%?}" = old ] && d=devcarry/old
    (cd $d && timeout 130 python bench.py --shapes 8,16,2048,128 2,16,8192,128 > $OUT/d128_$r.log 2>&1)
    grep -E "^graph|^check" $OUT/d128_$r.log | sed "s/^/$r /" | tee -a $OUT/d128.log
  done
else  # 5: why the dQ kernel is slower in the model than isolated (next_dq_probe.py's header)
  PYTHONPATH=. timeout 300 python results/kernel/gluon/next_dq_probe.py 2>&1 | grep -E "RESULT|Error" | tee $OUT/dq_probe.log
fi
