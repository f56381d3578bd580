export PYTHONPATH=.
timeout 90 python devcarry/diag38.py > $OUT/run40_nan_check.log 2>&1
cat $OUT/run40_nan_check.log
timeout 150 python -m pytest -q -rf tests/test_flashsigmoid.py -k "gluon or per_head" > $OUT/run40_gpu_tests.log 2>&1
tail -5 $OUT/run40_gpu_tests.log
timeout 250 python bench.py --quick > $OUT/run40_bench_quick.log 2>&1
tail -9 $OUT/run40_bench_quick.log
