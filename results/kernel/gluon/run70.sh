# session 31, call 1: launch order by swapped program-id axes (patch) against main's (devcarry/old), alternated
# twice; GPU tests of the QK-norm op (gain sums in one buffer, no zero-filled grads); inductor's output code
# of the 124M step at 16 x 1024 (the norm kernels)
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
python -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())" | tee $OUT/env.log
for i in 1 2; do
TAG=main PYTHONPATH=devcarry/old:. timeout 90 python results/kernel/gluon/run64_ab_order.py 2>&1 | grep -E "RESULT|Error|error" | tee -a $OUT/ab.log
TAG=axes PYTHONPATH=. timeout 90 python results/kernel/gluon/run64_ab_order.py 2>&1 | grep -E "RESULT|Error|error" | tee -a $OUT/ab.log
done
timeout 130 python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py > $OUT/tests_qk.log 2>&1; tail -n 3 $OUT/tests_qk.log
TORCH_LOGS=output_code timeout 110 python train.py configs/gpt2_124m.py --batch_size=16 --block_size=1024 \
  --gradient_accumulation_steps=1 --max_iters=2 --eval_interval=1000000 --eval_iters=1 --log_interval=1 \
  --always_save_checkpoint=False --out_dir=/tmp/oc > $OUT/oc_stdout.log 2> $OUT/oc.log; echo rc=$?
gzip -9 $OUT/oc.log; ls -la $OUT
