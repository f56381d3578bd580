export PYTHONPATH=. PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 110 python devcarry/run49_fwd_tiles.py 2>&1 | tee $OUT/run49_fwd_tiles.log
timeout 100 python devcarry/run49_dq.py 2>&1 | tee $OUT/run49_dq.log | grep -v "^dq check"
timeout 340 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/run49_train.log 2>&1
tail -14 $OUT/run49_train.log
