# Session 36's device calls (2026-12-05). Setup here: rm -rf devcarry && mkdir -p devcarry/sh && cp data/shakespeare/*.bin devcarry/sh/
# then carry ["devcarry"], `bash results/kernel/gluon/run83.sh N` per call.
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python -c "import torch, triton; print(torch.__version__, triton.__version__)"
if [ "$1" = 1 ]; then  # where the kernel loses on the model's layout; today's step profile at 16 x 1024
  PYTHONPATH=. timeout 260 python results/kernel/gluon/run83_views.py > $OUT/views.log 2>&1; grep -E "RESULT|Error" $OUT/views.log
  timeout $((580 - SECONDS)) python bench.py --mode=profile --train_shapes 16,1024 --train_variants softmax_cg sigmoid_cg --profile_top 40 > $OUT/profile.log 2>&1; tail -n 4 $OUT/profile.log
fi
if [ "$1" = 2 ]; then  # which layout costs: q, k, v's or dO's
  PART=2 PYTHONPATH=. timeout 200 python results/kernel/gluon/run83_views.py > $OUT/views2.log 2>&1; grep -E "RESULT|Error" $OUT/views2.log
fi
if [ "$1" = 3 ]; then  # profiles of the sigmoid step at 16 x 1024: main (devcarry/base) and the boundary patch (.)
  mkdir -p devcarry/base/data/shakespeare && cp devcarry/sh/*.bin devcarry/base/data/shakespeare/
  (cd devcarry/base && timeout 260 python bench.py --mode=profile --train_shapes 16,1024 --train_variants sigmoid_cg --profile_top 45 > $OUT/profile_base.log 2>&1); tail -n 1 $OUT/profile_base.log
  timeout $((585 - SECONDS)) python bench.py --mode=profile --train_shapes 16,1024 --train_variants sigmoid_cg --profile_top 45 > $OUT/profile_patch.log 2>&1; tail -n 1 $OUT/profile_patch.log
fi
if [ "$1" = 4 ]; then  # the boundary kernel's launch configs, loads hoisted or not
  PYTHONPATH=. timeout 200 python results/kernel/gluon/run83_post_pre_bench.py > $OUT/post_pre.log 2>&1; grep -E "RESULT|Error" $OUT/post_pre.log
fi
if [ "$1" = 5 ]; then  # the boundary kernel's configs (loads hoisted: "new"), the best set in qknorm.py here, then issue 14's table on the patch
  PYTHONPATH=. timeout 150 python results/kernel/gluon/run83_post_pre_bench.py > $OUT/post_pre.log 2>&1; grep -E "RESULT|BEST|Error" $OUT/post_pre.log
  best=$(grep "^BEST new" $OUT/post_pre.log | sed 's/^BEST new: //')
  if [ -n "$best" ]; then sed -i "s/^POST_CONFIG, POST_PRE_CONFIG = .*/$best/" qknorm.py; fi; grep -n "^POST_CONFIG" qknorm.py
  mkdir -p devcarry/base/data/shakespeare && cp devcarry/sh/*.bin devcarry/base/data/shakespeare/
  (cd devcarry/base && timeout 120 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants sigmoid_cg > $OUT/base_step.log 2>&1); grep "^{" $OUT/base_step.log | cut -c1-300
  (mkdir -p $OUT/train && OUT=$OUT/train timeout $((570 - SECONDS)) python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1); tail -n 7 $OUT/train.log
fi
if [ "$1" = 6 ]; then  # part 5 cut to the device time left: the configs, then the 16 x 1024 step: patch, main, softmax
  PYTHONPATH=. timeout 80 python results/kernel/gluon/run83_post_pre_bench.py > $OUT/post_pre.log 2>&1; grep -E "RESULT|BEST|Error" $OUT/post_pre.log
  best=$(grep "^BEST new" $OUT/post_pre.log | sed 's/^BEST new: //')
  if [ -n "$best" ]; then sed -i "s/^POST_CONFIG, POST_PRE_CONFIG = .*/$best/" qknorm.py; fi; grep -n "^POST_CONFIG" qknorm.py
  mkdir -p devcarry/base/data/shakespeare && cp devcarry/sh/*.bin devcarry/base/data/shakespeare/
  (mkdir -p $OUT/patch && OUT=$OUT/patch timeout 110 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants sigmoid_cg > $OUT/patch_step.log 2>&1); grep "^{" $OUT/patch_step.log | cut -c1-200
  (cd devcarry/base && mkdir -p $OUT/base && OUT=$OUT/base timeout 220 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants sigmoid_cg softmax_cg > $OUT/base_step.log 2>&1); grep "^{" $OUT/base_step.log | cut -c1-200
fi
if [ "$1" = 7 ]; then  # the device time left: the 16 x 1024 step, the boundary patch at run 86's fastest PRE config (1, 8, 4), then main
  mkdir -p devcarry/base/data/shakespeare && cp devcarry/sh/*.bin devcarry/base/data/shakespeare/; grep -n "^POST_CONFIG" qknorm.py
  (mkdir -p $OUT/patch && OUT=$OUT/patch timeout 130 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants sigmoid_cg > $OUT/patch_step.log 2>&1); grep "^{" $OUT/patch_step.log | cut -c1-200
  (cd devcarry/base && mkdir -p $OUT/base && OUT=$OUT/base timeout 130 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants sigmoid_cg > $OUT/base_step.log 2>&1); grep "^{" $OUT/base_step.log | cut -c1-200
fi
# Prepared for the next session (main at or after session 36's landing; setup as above plus
#   rm -rf devcarry/base && mkdir -p devcarry/base && git archive HEAD | tar -x -C devcarry/base):
# part 8: the fused post/pre pass's configs on main, one warp per row included (no barrier in the row sums), the
# fastest set here, then issue 14's table; part 9: the paper_1b pair; part 10: the GPU tests of the norm kernels.
if [ "$1" = 8 ]; then
  OLD=devcarry/base/qknorm.py PYTHONPATH=. timeout 130 python results/kernel/gluon/run83_post_pre_bench.py > $OUT/post_pre.log 2>&1; grep -E "RESULT|BEST|Error" $OUT/post_pre.log
  best=$(grep "^BEST new" $OUT/post_pre.log | sed 's/^BEST new: //')
  if [ -n "$best" ]; then sed -i "s/^POST_CONFIG, POST_PRE_CONFIG = .*/$best/" qknorm.py; fi; grep -n "^POST_CONFIG" qknorm.py
  (mkdir -p $OUT/train && OUT=$OUT/train timeout $((${LIMIT:-580} - SECONDS)) python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1); tail -n 7 $OUT/train.log
elif [ "$1" = 9 ]; then
  (mkdir -p $OUT/p1b && OUT=$OUT/p1b timeout 420 python bench.py --mode=train --train_shapes 4,4096 --iters=16 --train_variants paper_1b_softmax paper_1b > $OUT/paper1b.log 2>&1); tail -n 5 $OUT/paper1b.log
elif [ "$1" = 10 ]; then
  timeout 400 python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py tests/test_model.py > $OUT/tests.log 2>&1; tail -n 3 $OUT/tests.log
fi
# Session 37: part 12, right after part 8 on the same warm machine, with part 8's best config written into qknorm.py
# here first: the norm kernels' GPU tests, then the 1B pair
if [ "$1" = 12 ]; then
  grep -n "^POST_CONFIG" qknorm.py
  timeout 150 python -m pytest -q -x tests/test_qknorm.py > $OUT/tests.log 2>&1; tail -n 3 $OUT/tests.log
  (mkdir -p $OUT/p1b && OUT=$OUT/p1b timeout $((585 - SECONDS)) python bench.py --mode=train --train_shapes 4,4096 --iters=16 --train_variants paper_1b_softmax paper_1b > $OUT/paper1b.log 2>&1); tail -n 5 $OUT/paper1b.log
fi
# part 13: issue 14's table alone (for an H200: its MFU must), then the profile at 2 x 8192 with the time left
if [ "$1" = 13 ]; then
  (mkdir -p $OUT/train && OUT=$OUT/train timeout 400 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1); tail -n 7 $OUT/train.log
  timeout $((585 - SECONDS)) python bench.py --mode=profile --train_shapes 2,8192 --train_variants softmax_cg sigmoid_cg --profile_top 40 > $OUT/profile8k.log 2>&1; tail -n 4 $OUT/profile8k.log
fi
# part 14: next_inplace_pack.patch (QK-norm's pack writes q, k normed over the projection itself; v not copied; CPU
# tests pass with it, session 37) against main (devcarry/base = HEAD): its GPU tests, then the sigmoid step at
# 16 x 1024 in alternating rounds (patch, main, patch, main)
if [ "$1" = 14 ]; then
  git apply results/kernel/gluon/next_inplace_pack.patch 2>/dev/null || patch -p1 < results/kernel/gluon/next_inplace_pack.patch || exit 1
  mkdir -p devcarry/base/data/shakespeare && cp devcarry/sh/*.bin devcarry/base/data/shakespeare/
  timeout 150 python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py > $OUT/tests.log 2>&1; tail -n 3 $OUT/tests.log
  for round in 1 2; do
    (mkdir -p $OUT/patch$round && OUT=$OUT/patch$round timeout 110 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants sigmoid_cg > $OUT/patch_step$round.log 2>&1); grep "^{" $OUT/patch_step$round.log | cut -c1-200
    (cd devcarry/base && mkdir -p $OUT/base$round && OUT=$OUT/base$round timeout 110 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants sigmoid_cg > $OUT/base_step$round.log 2>&1); grep "^{" $OUT/base_step$round.log | cut -c1-200
  done
fi
# Session 38, part 15 (one call): the in-place pack patch's GPU tests, the sigmoid step at 16 x 1024 in alternating
# rounds (patch, main, patch, main), then issue 14's table on the patch (softmax and sigmoid, one process)
if [ "$1" = 15 ]; then
  git apply results/kernel/gluon/next_inplace_pack.patch || exit 1
  mkdir -p devcarry/base/data/shakespeare && cp devcarry/sh/*.bin devcarry/base/data/shakespeare/
  timeout 150 python -m pytest -q -x tests/test_qknorm.py tests/test_compile.py > $OUT/tests.log 2>&1; tail -n 3 $OUT/tests.log; echo "t=$SECONDS"
  for round in 1 2; do
    (mkdir -p $OUT/patch$round && OUT=$OUT/patch$round timeout 100 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants sigmoid_cg > $OUT/patch_step$round.log 2>&1); grep "^{" $OUT/patch_step$round.log | cut -c1-200
    (cd devcarry/base && mkdir -p $OUT/base$round && OUT=$OUT/base$round timeout 100 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants sigmoid_cg > $OUT/base_step$round.log 2>&1); grep "^{" $OUT/base_step$round.log | cut -c1-200; echo "t=$SECONDS"
  done
  (mkdir -p $OUT/train && OUT=$OUT/train timeout $((${LIMIT:-590} - SECONDS)) python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1); tail -n 7 $OUT/train.log; echo "t=$SECONDS"
fi
# part 16 (name kind nvidia-h200 for a chance at an H200: issue 14's MFU must is an H200 figure): issue 14's table on
# main, then the sigmoid step's device time at 16 x 1024 under the profiler, main and the in-place pack patch in
# alternating rounds (main's wall-clock A/B of part 15 was within noise)
if [ "$1" = 16 ]; then
  (mkdir -p $OUT/train && OUT=$OUT/train timeout 300 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1); tail -n 7 $OUT/train.log; echo "t=$SECONDS"
  git apply results/kernel/gluon/next_inplace_pack.patch || exit 1
  mkdir -p devcarry/base/data/shakespeare && cp devcarry/sh/*.bin devcarry/base/data/shakespeare/
  for round in 1 2; do
    (cd devcarry/base && timeout 90 python bench.py --mode=profile --train_shapes 16,1024 --train_variants sigmoid_cg --profile_top 45 > $OUT/profile_main$round.log 2>&1); tail -n 1 $OUT/profile_main$round.log
    timeout 90 python bench.py --mode=profile --train_shapes 16,1024 --train_variants sigmoid_cg --profile_top 45 > $OUT/profile_patch$round.log 2>&1; tail -n 1 $OUT/profile_patch$round.log; echo "t=$SECONDS"
  done
fi
# part 17 (prepared in session 38, for one call; name kind nvidia-h200): what both issues' musts need, in one call:
# issue 14's table (its MFU must is an H200 figure), the 1B pair, then issue 11's kernel table (bench.py --quick)
if [ "$1" = 17 ]; then
  (mkdir -p $OUT/train && OUT=$OUT/train timeout 220 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1); tail -n 7 $OUT/train.log; echo "t=$SECONDS"
  (mkdir -p $OUT/p1b && OUT=$OUT/p1b timeout 240 python bench.py --mode=train --train_shapes 4,4096 --iters=16 --train_variants paper_1b_softmax paper_1b > $OUT/paper1b.log 2>&1); tail -n 5 $OUT/paper1b.log; echo "t=$SECONDS"
  timeout $((${LIMIT:-590} - SECONDS)) python bench.py --quick > $OUT/bench_quick.log 2>&1; tail -n 12 $OUT/bench_quick.log
fi
# part 18 (session 39, 2026-12-06): part 17 without the kernel table, for a call with ~14 device minutes left
# (name kind nvidia-h200; issue 14's MFU must is an H200 figure): issue 14's table, then the 1B pair
if [ "$1" = 18 ] && ! nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then echo "not an H200: part 18 skipped"; fi
if [ "$1" = 18 ] && nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then
  (mkdir -p $OUT/train && OUT=$OUT/train timeout 220 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1); tail -n 7 $OUT/train.log; echo "t=$SECONDS"
  (mkdir -p $OUT/p1b && OUT=$OUT/p1b timeout $((${LIMIT:-470} - SECONDS)) python bench.py --mode=train --train_shapes 4,4096 --iters=16 --train_variants paper_1b_softmax paper_1b > $OUT/paper1b.log 2>&1); tail -n 5 $OUT/paper1b.log; echo "t=$SECONDS"
fi
# part 19 (session 39): issue 14's MFU must on the card at hand: train.py's step (bench --mode=train) and the lean
# loop's (bench --mode=lean: the same models' steps without train.py's host side) in one call, 16 x 1024
if [ "$1" = 19 ]; then
  (mkdir -p $OUT/train && OUT=$OUT/train timeout 150 python bench.py --mode=train --train_shapes 16,1024 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/train.log 2>&1); tail -n 4 $OUT/train.log; echo "t=$SECONDS"
  (mkdir -p $OUT/lean && OUT=$OUT/lean timeout $((${LIMIT:-420} - SECONDS)) python bench.py --mode=lean --train_shapes 16,1024 --iters=30 --train_variants softmax_cg sigmoid_cg softmax > $OUT/lean.log 2>&1); tail -n 5 $OUT/lean.log; echo "t=$SECONDS"
fi
