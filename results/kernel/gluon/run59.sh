export PYTHONUNBUFFERED=1
python -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())" | tee $OUT/run59_env.log
for i in 1 2; do
TAG=main PYTHONPATH=. timeout 60 python results/kernel/gluon/next_ab_bwd.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/run59_ab_bwd.log
TAG=new PYTHONPATH=devcarry/new:. timeout 60 python results/kernel/gluon/next_ab_bwd.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/run59_ab_bwd.log
done
PYTHONPATH=devcarry/slots:. timeout 90 python results/kernel/gluon/next_ab_fwd.py 2>&1 | grep -E "RESULT|Error|error" | tee -a $OUT/run59_ab_fwd.log
for t in new slots; do
  rm -rf /tmp/t_$t && mkdir /tmp/t_$t && cp -r *.py tests configs pytest.ini /tmp/t_$t/ && cp devcarry/$t/flashsigmoid.py /tmp/t_$t/
  (cd /tmp/t_$t && timeout 100 python -m pytest -q -x tests/test_flashsigmoid.py -k gluon 2>&1 | tail -n 3) | sed "s/^/$t: /" | tee -a $OUT/run59_tests.log
done
