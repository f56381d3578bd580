# Run 76: GPU tests of the post-norm kernel and the hybrid launch grid; the kernel's launch configs; the step A/B.
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
python results/kernel/gluon/run76_post_norm_bench.py 2>&1 | grep -E "RESULT|Error|error" | tee $OUT/post_bench.log
timeout 150 python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py > $OUT/tests_qk.log 2>&1; tail -n 3 $OUT/tests_qk.log
timeout 170 python -m pytest -q -x tests/test_flashsigmoid.py -k "gluon or launch_order or bf16_long" > $OUT/tests_fs.log 2>&1; tail -n 3 $OUT/tests_fs.log
(mkdir -p $OUT/ab; OUT=$OUT/ab timeout 200 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants sigmoid_torchpost_cg sigmoid_cg > $OUT/ab.log 2>&1); tail -n 6 $OUT/ab.log
