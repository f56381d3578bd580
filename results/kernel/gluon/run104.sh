# Session 42, call 1 (repo root): `bash results/kernel/gluon/run104.sh`. The kernel table (bench.py --quick, its CUDA-graph
# columns now the median of 3 rotated rounds) on the landed kernels; then, in a patched copy, the persistent Gluon dK/dV
# (next_dkdv_persist.patch): its GPU test, its A/B against one program per key block, and the same table with it.
export PYTHONUNBUFFERED=1 PYTHONPATH=.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 220 python bench.py --quick > $OUT/bench_quick.log 2>&1; grep "graph fwd" $OUT/bench_quick.log; echo "t=$SECONDS"
mv $OUT/bench_attn.json $OUT/bench_attn_landed.json; rm -f $OUT/bench_attn.md
rm -rf /tmp/dkp && mkdir -p /tmp/dkp && git ls-files -z | xargs -0 cp --parents -t /tmp/dkp
cd /tmp/dkp && patch -p1 -s < results/kernel/gluon/next_dkdv_persist.patch || exit 1
timeout 120 python -m pytest -q -p no:cacheprovider tests/test_flashsigmoid.py -k "gluon_dkdv_persistent" \
  > $OUT/dkdv_persist_tests.log 2>&1; tail -n 3 $OUT/dkdv_persist_tests.log; echo "t=$SECONDS"
timeout 130 python results/kernel/gluon/next_dkdv_persist.py > $OUT/dkdv_persist_ab.log 2>&1
grep -v -i warn $OUT/dkdv_persist_ab.log; echo "t=$SECONDS"
timeout $((590 - SECONDS)) python bench.py --quick > $OUT/bench_quick_dkp.log 2>&1; grep "graph fwd" $OUT/bench_quick_dkp.log
mv $OUT/bench_attn.json $OUT/bench_attn_dkp.json; rm -f $OUT/bench_attn.md; echo "t=$SECONDS"
