# Session 42, call 3 (repo root): `bash results/kernel/gluon/run106.sh`. The whole test suite on the GPU (pytest-xdist,
# 14 workers; the sm_90 compile test is CI's), with tiktoken's files carried in devcarry/tiktoken, then the kernel
# table once more (bench.py --quick) on the same, final kernels.
export PYTHONUNBUFFERED=1 TIKTOKEN_CACHE_DIR=$PWD/devcarry/tiktoken
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 400 python -m pytest -q -n 14 -rfE -p no:cacheprovider tests --ignore=tests/test_sm90_compile.py \
  > $OUT/gpu_suite.log 2>&1; echo "pytest rc=$? t=$SECONDS"; tail -n 4 $OUT/gpu_suite.log
PYTHONPATH=. timeout $((580 - SECONDS)) python bench.py --quick > $OUT/bench_quick.log 2>&1; grep "graph fwd" $OUT/bench_quick.log
rm -f $OUT/bench_attn.md; echo "t=$SECONDS"
