export PYTHONPATH=. PYTHONUNBUFFERED=1
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 100 python -m pytest -q -rf tests/test_flashsigmoid.py -k "gluon" > $OUT/run50_gpu_tests.log 2>&1
tail -3 $OUT/run50_gpu_tests.log
timeout 100 python -m pytest -q -rf tests/test_qknorm.py tests/test_compile.py > $OUT/run50_qknorm_compile_tests.log 2>&1
tail -3 $OUT/run50_qknorm_compile_tests.log
timeout 290 python bench.py --quick > $OUT/run50_bench_quick.log 2>&1
tail -14 $OUT/run50_bench_quick.log
