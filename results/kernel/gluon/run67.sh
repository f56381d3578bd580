export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
(mkdir -p $OUT/p1b; OUT=$OUT/p1b timeout 400 python bench.py --mode=train --train_shapes 4,4096 --iters=16 --train_variants paper_1b_softmax paper_1b > $OUT/run67_paper1b.log 2>&1)
tail -n 6 $OUT/run67_paper1b.log
