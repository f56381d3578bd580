export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 400 python devcarry/run48_atomic.py 2>&1 | tee $OUT/run48_atomic.log | grep -v "^  D128cfg" ; grep -c " ok$" $OUT/run48_atomic.log
