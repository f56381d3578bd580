# Session 41, one call: the persistent dQ kernel A/B, the GPU tests of both persistent kernels, then bench.py --quick
# twice: on the defaults (both persistent), and with the dQ kernel one program per tile (the fallback if it loses).
#   bash results/kernel/gluon/run102.sh   (repo root)
export PYTHONUNBUFFERED=1 PYTHONPATH=.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 150 python results/kernel/gluon/ws_ab.py dq_persist > $OUT/ws_dq_persist.log 2>&1; grep -v -i warn $OUT/ws_dq_persist.log
timeout 200 python -m pytest -q -x -p no:cacheprovider tests/test_flashsigmoid.py -k "gluon_ws_persistent or gluon_ws_dq" \
  > $OUT/persist_tests.log 2>&1; tail -n 4 $OUT/persist_tests.log
timeout 110 python bench.py --quick > $OUT/bench_quick.log 2>&1; grep "graph fwd" $OUT/bench_quick.log; tail -n 6 $OUT/bench_quick.log
cp $OUT/bench_attn.json $OUT/bench_attn_default.json 2>/dev/null
timeout $((590 - SECONDS)) python -c "import sys, runpy, flashsigmoid as fs; fs.GLUON_DQ_WS = {128: (128, 64, 3, False, 232)}; \
sys.argv = ['bench.py', '--quick']; runpy.run_path('bench.py', run_name='__main__')" > $OUT/bench_quick_dq_tiles.log 2>&1
grep "graph fwd" $OUT/bench_quick_dq_tiles.log; tail -n 6 $OUT/bench_quick_dq_tiles.log
