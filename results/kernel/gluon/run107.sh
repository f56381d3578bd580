# Session 42, call 4 (repo root): `bash results/kernel/gluon/run107.sh`. The backward with dQ's kernel first and the
# persistent dQ's tile counter in dK's buffer (no memory beyond the outputs): the kernel table (bench.py --quick: its
# peak column, its times against runs 104 and 106), then the kernel-side GPU tests (pytest-xdist).
export PYTHONUNBUFFERED=1 TIKTOKEN_CACHE_DIR=$PWD/devcarry/tiktoken
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python -c "import torch, triton; print(torch.__version__, triton.__version__)"
PYTHONPATH=. timeout 200 python bench.py --quick > $OUT/bench_quick.log 2>&1; grep "graph fwd" $OUT/bench_quick.log
grep "^  kernel " $OUT/bench_quick.log; rm -f $OUT/bench_attn.md; echo "t=$SECONDS"
timeout $((555 - SECONDS)) python -m pytest -q -n 14 -rfE -p no:cacheprovider tests/test_flashsigmoid.py \
  tests/test_qknorm.py tests/test_compile.py tests/test_model.py > $OUT/gpu_tests.log 2>&1
echo "pytest rc=$? t=$SECONDS"; tail -n 4 $OUT/gpu_tests.log
