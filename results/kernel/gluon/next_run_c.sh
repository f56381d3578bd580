# Prepared for the next session, not run. The device has no git, so first, here:
#   rm -rf devcarry/old && mkdir -p devcarry/old && git show HEAD:flashsigmoid.py > devcarry/old/flashsigmoid.py
#   git apply results/kernel/gluon/next_lpt_axes.patch      # flashsigmoid.py and its tests (CPU-checked)
#   cp results/kernel/gluon/next_run_c.sh devcarry/
# then `bash devcarry/next_run_c.sh` with carry ["devcarry"]. It times main's launch order (1-D grid, L2 sections,
# devcarry/old) against the patch's (the program ids' axes swapped: a batch row's heads form a section, no index
# arithmetic, no dQ spill), alternated twice, and runs the patched kernels' GPU tests.
export PYTHONUNBUFFERED=1
for i in 1 2; do
TAG=main PYTHONPATH=devcarry/old:. timeout 100 python results/kernel/gluon/run64_ab_order.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/ab.log
TAG=axes PYTHONPATH=. timeout 100 python results/kernel/gluon/run64_ab_order.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/ab.log
done
timeout 200 python -m pytest -q -x tests/test_flashsigmoid.py -k "gluon or launch_order or bf16_long" > $OUT/tests.log 2>&1; tail -n 3 $OUT/tests.log
timeout 170 python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py > $OUT/tests2.log 2>&1; tail -n 3 $OUT/tests2.log
