export PYTHONPATH=. PYTHONUNBUFFERED=1
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 120 python -m pytest -q -rf tests/test_qknorm.py > $OUT/run53_qknorm_tests.log 2>&1; tail -2 $OUT/run53_qknorm_tests.log
timeout 80 python -m pytest -q -rf tests/test_flashsigmoid.py -k gluon > $OUT/run53_gluon_tests.log 2>&1; tail -2 $OUT/run53_gluon_tests.log
timeout 90 python devcarry/who_reduce.py > $OUT/run53_who_reduce.log 2>&1; tail -12 $OUT/run53_who_reduce.log
timeout 240 python devcarry/host_gap.py > $OUT/run53_host_gap.log 2>&1; grep "==" $OUT/run53_host_gap.log
