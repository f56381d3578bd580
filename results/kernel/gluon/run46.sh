export PYTHONPATH=. PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 100 python -m pytest -q -rf tests/test_flashsigmoid.py -k "gluon" > $OUT/run46_gpu_tests.log 2>&1
tail -3 $OUT/run46_gpu_tests.log
timeout 120 python -m pytest -q -rf tests/test_qknorm.py > $OUT/run46_qknorm_tests.log 2>&1
tail -3 $OUT/run46_qknorm_tests.log
timeout 340 python bench.py --mode=train --train_shapes 4,4096 --iters=16 --train_variants paper_1b_softmax paper_1b > $OUT/run46_paper1b.log 2>&1
tail -12 $OUT/run46_paper1b.log
ls $OUT
