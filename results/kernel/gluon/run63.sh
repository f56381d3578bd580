export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
timeout 280 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants softmax_cg sigmoid_cg sigmoid_keeppost_cg > $OUT/run63_train.log 2>&1
tail -n 7 $OUT/run63_train.log
