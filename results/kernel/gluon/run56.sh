export PYTHONUNBUFFERED=1
python -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())" | tee $OUT/run56_tests.log
timeout 200 python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py 2>&1 | tail -5 | tee -a $OUT/run56_tests.log
timeout 150 python -m pytest -q tests/test_flashsigmoid.py -k "gluon or tma_kernels or fullgraph" 2>&1 | tail -5 | tee -a $OUT/run56_tests.log
for i in 1 2; do
TAG=old PYTHONPATH=devcarry/old:. timeout 60 python devcarry/ab.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/run56_ab.log
TAG=new PYTHONPATH=. timeout 60 python devcarry/ab.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/run56_ab.log
done
python devcarry/abcmp.py 2>&1 | tee -a $OUT/run56_ab.log
