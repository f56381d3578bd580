export PYTHONPATH=. PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
for i in 1; do
TAG=main timeout 60 python devcarry/ab_epi.py 2>&1 | grep RESULT | tee -a $OUT/run54_ab.log
cp devcarry/fs_prefetch.py flashsigmoid.py
TAG=prefetch timeout 60 python devcarry/ab_epi.py 2>&1 | grep RESULT | tee -a $OUT/run54_ab.log
git checkout -q flashsigmoid.py
done
timeout 170 python devcarry/host_gap2.py > $OUT/run54_host_gap2.log 2>&1; grep -A12 "==" $OUT/run54_host_gap2.log | head -40
timeout 300 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/run54_train.log 2>&1
tail -14 $OUT/run54_train.log
