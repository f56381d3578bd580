# Prepared in session 41 for the next device calls on issue 11 (no setup, no carry: the repo tree is enough).
# `bash results/kernel/gluon/run103.sh N` per call, from the repo root; each part ends inside 590 s.
export PYTHONUNBUFFERED=1 PYTHONPATH=.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python -c "import torch, triton; print(torch.__version__, triton.__version__)"
if [ "$1" = 1 ]; then  # the kernel table twice in one call on the landed (persistent) kernels: the arm-to-arm spread
  timeout 280 python bench.py --quick > $OUT/bench_quick_a.log 2>&1; grep "graph fwd" $OUT/bench_quick_a.log
  cp $OUT/bench_attn.json $OUT/bench_attn_a.json
  timeout $((585 - SECONDS)) python bench.py --quick > $OUT/bench_quick_b.log 2>&1; grep "graph fwd" $OUT/bench_quick_b.log
fi
if [ "$1" = 2 ]; then  # the persistent and warp-specialised dQ tests on the landed defaults (run 102 reached 13)
  timeout 580 python -m pytest -q -p no:cacheprovider tests/test_flashsigmoid.py -k "gluon_ws_persistent or gluon_ws_dq \
    or torch_compile" > $OUT/gpu_tests_ws_dq.log 2>&1; tail -n 6 $OUT/gpu_tests_ws_dq.log
fi
if [ "$1" = 3 ]; then  # the warp-specialised forward's tests (36 cases; run 100 passed 34 of them on the same kernel)
  timeout 580 python -m pytest -q -p no:cacheprovider tests/test_flashsigmoid.py -k "gluon_ws_forward" \
    > $OUT/gpu_tests_ws_fwd.log 2>&1; tail -n 6 $OUT/gpu_tests_ws_fwd.log
fi
if [ "$1" = 4 ]; then  # the rest of the kernel's GPU suite, then the QK-norm and compile tests
  timeout 400 python -m pytest -q -p no:cacheprovider tests/test_flashsigmoid.py -k "gpu and not gluon_ws" \
    > $OUT/gpu_tests_rest.log 2>&1; tail -n 6 $OUT/gpu_tests_rest.log
  timeout $((585 - SECONDS)) python -m pytest -q -p no:cacheprovider tests/test_qknorm.py tests/test_compile.py \
    > $OUT/gpu_tests_qknorm.log 2>&1; tail -n 6 $OUT/gpu_tests_qknorm.log
fi
if [ "$1" = 5 ]; then  # the persistent Gluon dK/dV candidate (next_dkdv_persist.patch, session 41) in a patched copy:
  # its GPU test (bitwise the per-block kernel), then its A/B against one program per key block
  rm -rf /tmp/dkp && mkdir -p /tmp/dkp && git ls-files -z | xargs -0 cp --parents -t /tmp/dkp
  (cd /tmp/dkp && patch -p1 -s < results/kernel/gluon/next_dkdv_persist.patch \
     && timeout 200 python -m pytest -q -p no:cacheprovider tests/test_flashsigmoid.py -k "gluon_dkdv_persistent" \
        > $OUT/dkdv_persist_tests.log 2>&1; tail -n 3 $OUT/dkdv_persist_tests.log; \
     timeout $((580 - SECONDS)) python results/kernel/gluon/next_dkdv_persist.py > $OUT/dkdv_persist_ab.log 2>&1); \
  grep -v -i warn $OUT/dkdv_persist_ab.log
fi
