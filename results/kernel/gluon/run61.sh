export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
python -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())" | tee $OUT/run61_env.log
for t in old new old new; do
  if [ $t = old ]; then P=devcarry/old:.; else P=.; fi
  TAG=$t PYTHONPATH=$P timeout 40 python devcarry/ab2.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/run61_ab.log
done
for t in old new; do
  if [ $t = old ]; then P=devcarry/old:.; else P=.; fi
  TAG=$t PYTHONPATH=$P timeout 40 python devcarry/err.py 2>&1 | grep -E "ERR|Error" | tee -a $OUT/run61_err.log
done
timeout 300 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/run61_train.log 2>&1
tail -n 8 $OUT/run61_train.log
