export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
python -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())" | tee $OUT/run58_tests.log
timeout 110 python -m pytest -q tests/test_qknorm.py tests/test_compile.py 2>&1 | tail -3 | tee -a $OUT/run58_tests.log
for i in 1 2; do
TAG=old PYTHONPATH=devcarry/old:. timeout 35 python devcarry/ab2.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/run58_ab2.log
TAG=new PYTHONPATH=. timeout 35 python devcarry/ab2.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/run58_ab2.log
done
timeout 230 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/run58_train.log 2>&1
tail -7 $OUT/run58_train.log
timeout 90 python -m pytest -q tests/test_flashsigmoid.py -k gluon 2>&1 | tail -3 | tee -a $OUT/run58_tests.log
