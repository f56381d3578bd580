# session 31, call 2: GPU tests of the QK-norm op's two changes; inductor's output code of the 124M step
# (16 x 1024, no CUDA graphs); the step at 16 x 1024 with the changes, softmax in the same run
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
timeout 220 python -m pytest -q -x -rs --durations=5 tests/test_qknorm.py tests/test_compile.py > $OUT/tests_qk.log 2>&1; tail -n 12 $OUT/tests_qk.log
TORCH_LOGS=output_code timeout 110 python train.py configs/gpt2_124m.py --dataset=shakespeare --batch_size=16 --block_size=1024 \
  --gradient_accumulation_steps=1 --max_iters=2 --eval_interval=1000000 --eval_iters=1 --log_interval=1 \
  --always_save_checkpoint=False --out_dir=/tmp/oc > $OUT/oc_stdout.log 2> $OUT/oc.log; echo rc=$?
gzip -9 $OUT/oc.log
(mkdir -p $OUT/train; OUT=$OUT/train timeout 220 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1)
tail -n 5 $OUT/train.log
