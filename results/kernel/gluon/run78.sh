# Run 78: the tail sums and the post-norm kernel's config; GPU tests of qknorm.py and the compiled model; the step at both shapes; the profile.
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
PYTHONPATH=. python results/kernel/gluon/run78_sums_bench.py 2>&1 | grep -E "RESULT|Error|error" | tee $OUT/sums_bench.log
timeout 200 python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py > $OUT/tests_qk.log 2>&1; tail -n 3 $OUT/tests_qk.log
(mkdir -p $OUT/train; OUT=$OUT/train timeout 330 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1); tail -n 7 $OUT/train.log
timeout 100 python bench.py --mode=profile --train_shapes 16,1024 --train_variants softmax_cg sigmoid_cg --profile_top 40 > $OUT/profile.log 2>&1; tail -n 4 $OUT/profile.log
