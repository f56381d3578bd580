# Prepared for the next session, not run. The device has no git: first, here,
#   mkdir -p devcarry/new && git show HEAD:flashsigmoid.py > devcarry/new/flashsigmoid.py
#   (cd devcarry/new && patch -p1 flashsigmoid.py < ../../results/kernel/gluon/next_lpt_axes.patch)   # its flashsigmoid.py hunks
# or apply the whole patch to the work tree (it also changes tests/test_flashsigmoid.py and tests/test_sm90_compile.py,
# CPU-checked) and keep a copy of main's flashsigmoid.py in devcarry/old/. Then `bash devcarry/next_run_c.sh`,
# carry ["devcarry"]. It times main's launch order (1-D grid, L2 sections) against the patch's (the program ids' axes
# swapped: sections of one batch row's heads, no index arithmetic, no dQ spill), alternated twice, and runs the GPU
# tests of the patched kernels (with the patch in the work tree).
export PYTHONUNBUFFERED=1
for i in 1 2; do
TAG=main PYTHONPATH=devcarry/old:. timeout 100 python results/kernel/gluon/run64_ab_order.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/ab.log
TAG=axes PYTHONPATH=. timeout 100 python results/kernel/gluon/run64_ab_order.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/ab.log
done
timeout 200 python -m pytest -q -x tests/test_flashsigmoid.py -k "gluon or launch_order or bf16_long" > $OUT/tests.log 2>&1; tail -n 3 $OUT/tests.log
timeout 170 python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py > $OUT/tests2.log 2>&1; tail -n 3 $OUT/tests2.log
