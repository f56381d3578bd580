export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
cp devcarry/fs51.py flashsigmoid.py
timeout 330 python devcarry/run51_tmared.py 2>&1 | tee $OUT/run51_tmared.log | grep -v "^  D128cfg" ; grep -c " ok$" $OUT/run51_tmared.log; grep FAIL $OUT/run51_tmared.log | head -5
git checkout flashsigmoid.py
timeout 150 python devcarry/run51_dq.py 2>&1 | tee $OUT/run51_dq.log | grep -v "^dq check"
