# Run 75 (stop 32; prepared in stop 31 as next_run_d.sh with next_lpt_hybrid.patch, now run75_lpt_hybrid.patch; part 1 ran, part 2 ran as run76.sh). The device has no git, so first, here:
#   rm -rf devcarry/old && mkdir -p devcarry/old && git show HEAD:flashsigmoid.py > devcarry/old/flashsigmoid.py
#   git apply results/kernel/gluon/next_lpt_hybrid.patch      # flashsigmoid.py and the sm_90 compile test (CPU-checked)
#   cp results/kernel/gluon/next_run_d.sh devcarry/ && mkdir -p devcarry/sh && cp data/shakespeare/*.bin devcarry/sh/
# then `bash devcarry/next_run_d.sh 1` and `bash devcarry/next_run_d.sh 2` with carry ["devcarry"] (two calls, about
# 5 minutes each). It times main's launch order (1-D
# grid everywhere, sections from T=8192) against the patch's (the same sections from T=8192, the (blocks, heads,
# batch) grid below, as run 70's swapped-axes form had there: 3% faster fwd+bwd at (16, 12, 1024, 64)), alternated
# twice; runs the patched kernels' GPU tests; and the kernel table by bench.py (issue 11's musts).
# Predicted: +3% fwd+bwd at T <= 4096 (run 70), level at T=8192 (the same kernels there).
export PYTHONUNBUFFERED=1
if [ "$1" = 1 ]; then
for i in 1 2; do
TAG=main PYTHONPATH=devcarry/old:. timeout 90 python results/kernel/gluon/run64_ab_order.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/ab.log
TAG=hybrid PYTHONPATH=. timeout 90 python results/kernel/gluon/run64_ab_order.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/ab.log
done
else
timeout 200 python -m pytest -q -x tests/test_flashsigmoid.py -k "gluon or launch_order or bf16_long" > $OUT/tests.log 2>&1; tail -n 3 $OUT/tests.log
timeout 60 python -m pytest -q -x tests/test_qknorm.py -k gpu > $OUT/tests_qk.log 2>&1; tail -n 3 $OUT/tests_qk.log
(mkdir -p $OUT/quick; OUT=$OUT/quick timeout 150 python bench.py --quick > $OUT/bench_quick.log 2>&1); tail -n 12 $OUT/bench_quick.log
fi
