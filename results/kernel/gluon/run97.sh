# Prepared in session 40 for the next device calls on issue 11 (no setup, no carry: the repo tree is enough).
# `bash results/kernel/gluon/run97.sh N` per call, from the repo root; each part ends inside 590 s.
export PYTHONUNBUFFERED=1 PYTHONPATH=.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python -c "import torch, triton; print(torch.__version__, triton.__version__)"
if [ "$1" = 3 ]; then  # the next warp-specialised dK/dV tiles (P^T, dS^T through shared memory) in a patched copy,
  # then the table (see LOG session 40: with register operands ptxas serialised its wgmmas at D=128)
  rm -rf /tmp/wsd && mkdir -p /tmp/wsd && git ls-files -z | xargs -0 cp --parents -t /tmp/wsd
  (cd /tmp/wsd && patch -p1 -s < results/kernel/gluon/run94_wsdkdv.patch \
     && timeout 200 python results/kernel/gluon/ws_ab.py dkdv_next > $OUT/ws_dkdv_next.log 2>&1); cat $OUT/ws_dkdv_next.log
  timeout $((580 - SECONDS)) python bench.py --quick > $OUT/bench_quick.log 2>&1; tail -n 8 $OUT/bench_quick.log
fi
if [ "$1" = 1 ]; then  # the kernel table twice in one call (the arm-to-arm and call-to-call spread of the ratios)
  timeout 280 python bench.py --quick > $OUT/bench_quick_a.log 2>&1; tail -n 7 $OUT/bench_quick_a.log
  timeout $((585 - SECONDS)) python bench.py --quick > $OUT/bench_quick_b.log 2>&1; tail -n 7 $OUT/bench_quick_b.log
fi
if [ "$1" = 2 ]; then  # the GPU tests that run 96 did not reach on the warp-specialised defaults
  timeout 580 python -m pytest -q -p no:cacheprovider tests/test_flashsigmoid.py -k "gpu and (per_head_bias or \
    gluon_forward or gluon_dkdv or odd_lengths or torch_compile or tma_kernels or fp16_fp32 or decode)" \
    > $OUT/gpu_tests.log 2>&1; tail -n 15 $OUT/gpu_tests.log
fi
