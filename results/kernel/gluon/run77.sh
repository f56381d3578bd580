# Run 77: the post-norm kernel's launch configs; GPU tests of qknorm.py and the compiled model; the profile of both arms.
export PYTHONUNBUFFERED=1
PYTHONPATH=. python results/kernel/gluon/run76_post_norm_bench.py 2>&1 | grep -E "RESULT|Error|error" | tee $OUT/post_bench.log
timeout 300 python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py > $OUT/tests_qk.log 2>&1; tail -n 3 $OUT/tests_qk.log
timeout 150 python bench.py --mode=profile --train_shapes 16,1024 --train_variants softmax_cg sigmoid_cg --profile_top 40 > $OUT/profile.log 2>&1
tail -n 6 $OUT/profile.log
