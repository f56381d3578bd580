# session 31, call 5: the step with train.py's forward returning no logits (no zero-filled logits gradient), both
# arms, both shapes, one run; then the profile at 16 x 1024
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
(mkdir -p $OUT/train; OUT=$OUT/train timeout 300 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1)
tail -n 7 $OUT/train.log
timeout 110 python bench.py --mode=profile --train_shapes 16,1024 --train_variants softmax_cg sigmoid_cg --profile_top 30 > $OUT/profile.log 2>&1
tail -n 4 $OUT/profile.log; grep -n "FillFunctor\|log_softmax_backward" $OUT/profile.log | cut -c1-140
