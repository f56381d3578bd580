export PYTHONUNBUFFERED=1
for i in 1 2; do
TAG=main PYTHONPATH=. timeout 60 python results/kernel/gluon/next_ab_bwd.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/run60_ab_bwd.log
TAG=new PYTHONPATH=devcarry/new:. timeout 60 python results/kernel/gluon/next_ab_bwd.py 2>&1 | grep -E "RESULT|Error" | tee -a $OUT/run60_ab_bwd.log
done
PYTHONPATH=. timeout 90 python results/kernel/gluon/run60_kernels.py 2>&1 | grep -E "KERNELS|Error" | tee -a $OUT/run60_kernels.log
