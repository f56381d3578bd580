export PYTHONUNBUFFERED=1
python -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())" | tee $OUT/env.log
for i in 1 2; do
TAG=old PYTHONPATH=devcarry/old:. timeout 100 python results/kernel/gluon/run64_ab_order.py 2>&1 | grep -E "RESULT|KERNELS|Error" | tee -a $OUT/run64_ab.log
TAG=new PYTHONPATH=. timeout 100 python results/kernel/gluon/run64_ab_order.py 2>&1 | grep -E "RESULT|KERNELS|Error" | tee -a $OUT/run64_ab.log
done
timeout 200 python -m pytest -q -x tests/test_flashsigmoid.py -k "gluon or launch_order or l2_sections or bf16_long or tma_kernels" > $OUT/run64_tests.log 2>&1; tail -n 3 $OUT/run64_tests.log
timeout 170 python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py > $OUT/run64_tests2.log 2>&1; tail -n 3 $OUT/run64_tests2.log
