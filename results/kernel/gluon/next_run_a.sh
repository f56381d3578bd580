# (Run in stop 30: its paper_1b pair as run 67, its bench --quick as part of run 66.)
# Prepared for the next session, not run (copy to devcarry/ with the Shakespeare .bin files in devcarry/sh/,
# then `bash devcarry/next_run_a.sh` with carry ["devcarry"]): issue 14's paper_1b row with the memory changes of
# runs 61-63 (its last pair, run 46: 0.99x, 55.8 against 50.0 GiB), and the README's kernel table with the
# loads-first dK/dV (run 60) by bench.py --quick.
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
python -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())" | tee $OUT/env.log
timeout 330 python bench.py --mode=train --train_shapes 4,4096 --iters=16 --train_variants paper_1b_softmax paper_1b > $OUT/paper1b.log 2>&1
tail -n 6 $OUT/paper1b.log
(mkdir -p $OUT/quick; OUT=$OUT/quick timeout 240 python bench.py --quick > $OUT/bench_quick.log 2>&1)
tail -n 12 $OUT/bench_quick.log
