export PYTHONPATH=. PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 140 python devcarry/run52_dq.py 2>&1 | tee $OUT/run52_dq.log | grep -v "^dq check"
TORCH_LOGS=output_code timeout 100 python devcarry/oc_gpu.py > $OUT/run52_output_code.log 2>&1
grep -c "" $OUT/run52_output_code.log
timeout 200 python bench.py --mode=profile --train_shapes 16,1024 --train_variants sigmoid softmax --profile_top 45 > $OUT/run52_profile.log 2>&1
grep "per step" $OUT/run52_profile.log
