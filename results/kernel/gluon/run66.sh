export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
python -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())" | tee $OUT/env.log
(mkdir -p $OUT/train; OUT=$OUT/train timeout 330 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/run66_train.log 2>&1)
tail -n 8 $OUT/run66_train.log
(mkdir -p $OUT/quick; OUT=$OUT/quick timeout 240 python bench.py --quick > $OUT/run66_bench_quick.log 2>&1)
tail -n 14 $OUT/run66_bench_quick.log
