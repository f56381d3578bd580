export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv | tee $OUT/smi0.log
PYTHONPATH=. timeout 300 python results/kernel/gluon/run65_order_sweep.py 2>&1 | grep -E "SWEEP|Error" | tee $OUT/run65_sweep.log
nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv | tee $OUT/smi1.log
