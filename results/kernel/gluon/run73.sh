# session 31, call 4: the step at 2 x 8192 with the QK-norm op's changes (softmax in the same run), and the
# profile at 16 x 1024 (reduce kernels after the gain sums went into one)
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
(mkdir -p $OUT/train; OUT=$OUT/train timeout 230 python bench.py --mode=train --train_shapes 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1)
tail -n 5 $OUT/train.log
timeout 200 python bench.py --mode=profile --train_shapes 16,1024 --train_variants softmax_cg sigmoid_cg --profile_top 30 > $OUT/profile.log 2>&1
tail -n 5 $OUT/profile.log; grep -n "reduce_kernel" $OUT/profile.log | cut -c1-120
