export PYTHONPATH=.
timeout 110 python devcarry/diag38.py > $OUT/run39_nan_check.log 2>&1
timeout 200 python -m pytest -q tests/test_flashsigmoid.py -k "gluon or tma_kernels or fp16_fp32 or per_head or bf16_long or odd_lengths" > $OUT/run39_gpu_tests.log 2>&1
tail -3 $OUT/run39_gpu_tests.log
timeout 250 python bench.py --quick > $OUT/run39_bench_quick.log 2>&1
cat $OUT/run39_nan_check.log
tail -12 $OUT/run39_bench_quick.log
