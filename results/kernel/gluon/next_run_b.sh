# (Run in stop 30: its profile as run 68 with softmax_cg added; the step at both shapes as run 66, without sigmoid_keeppost_cg.)
# Prepared for the next session, not run: where the post-norm read-back's 0.4 ms (run 63) goes on the GPU, by
# device time per kernel group of the compiled step with and without it (BENCHMARKS "The recipe's extra memory
# removed"; on the CPU inductor fuses each post-norm's backward with the neighbouring pre-norm's), and the step
# again in one run at both shapes.
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
timeout 200 python bench.py --mode=profile --train_shapes 16,1024 --train_variants sigmoid_cg sigmoid_keeppost_cg --profile_top 30 > $OUT/profile.log 2>&1
tail -n 40 $OUT/profile.log
timeout 360 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg sigmoid_keeppost_cg > $OUT/train.log 2>&1
tail -n 9 $OUT/train.log
