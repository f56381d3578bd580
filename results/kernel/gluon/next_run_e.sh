# Prepared for the next session, not run: the measurements stop 31 could not make (device budget spent), on main.
# Setup here: mkdir -p devcarry/sh && cp data/shakespeare/*.bin devcarry/sh/ ; then `bash devcarry/next_run_e.sh` with
# carry ["devcarry"] (about 8 minutes): the paper_1b pair after run 74's loss-only step (memory of both arms should
# drop by the logits' share, about 4.5 GiB), and the profile at 16 x 1024 with bench.py's user-annotation fix (the
# totals should read about 1.05 ms lower than run 74's, both arms).
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
(mkdir -p $OUT/p1b; OUT=$OUT/p1b timeout 330 python bench.py --mode=train --train_shapes 4,4096 --iters=16 --train_variants paper_1b_softmax paper_1b > $OUT/paper1b.log 2>&1)
tail -n 5 $OUT/paper1b.log
timeout 120 python bench.py --mode=profile --train_shapes 16,1024 --train_variants softmax_cg sigmoid_cg --profile_top 30 > $OUT/profile.log 2>&1
tail -n 4 $OUT/profile.log
