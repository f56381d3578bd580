#!/usr/bin/env bash
# The Gutenberg comparison (README "Results"): the sigmoid recipe, the softmax baseline and the
# ablations, same data, tokens and seed; then each best checkpoint evaluated once more: val at T, 2T
# and 4T (length extrapolation) and the held-out test split at T; then the tables and curves.
#   bash results/gutenberg.sh                       # one GPU, one run after another
#   PARALLEL=1 bash results/gutenberg.sh            # MAX_PARALLEL (7) at a time on one GPU (~17 GB
#                                                   # each on an H200, 9 ran out of memory; timings then meaningless)
#   SEEDS="1337 1338" EXTRA_SEEDS="1339" bash results/gutenberg.sh   # every run with each of SEEDS,
#                                                   # sigmoid and softmax also with EXTRA_SEEDS
#   ONLY="sigmoid softmax" bash results/gutenberg.sh   # just these rows (names below)
#   OUT_ROOT=/tmp/g bash results/gutenberg.sh --max_iters=100   # extra args go to every train.py
#   ONLY="sigmoid@5e-4 sigmoid@2e-3 softmax_alibi@2e-3" bash results/gutenberg.sh   # NAME@LR: that run at
#                                                   # learning rate LR (issue 12's sweep; out dir -lrLR)
#   FINAL_EVAL=0 ...                                # no final evaluations (a sweep: choose on val only;
#                                                   # python results/lr_sweep.py OUT_ROOT tabulates it)
# Needs data/gutenberg with test.bin (see configs/gutenberg.py).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_ROOT=${OUT_ROOT:-.}
EVAL_ITERS=${EVAL_ITERS:-40}
T=${T:-1024}                  # the block_size trained at (configs/gutenberg.py)
EVAL_TOKENS=${EVAL_TOKENS:-32768}  # tokens per eval batch at every length
declare -A ARGS=(
  [sigmoid]=""                                                   # ALiBi, hybrid-norm, QK-norm, b = -ln T
  [softmax]="--attention=softmax --pos_encoding=learned --norm=pre --qk_norm=False --init=gpt2"  # GPT-2
  [softmax_alibi]="--attention=softmax"                          # the sigmoid recipe with softmax
  [nobias]="--sigmoid_bias=0.0"
  [prenorm]="--norm=pre"
  [rope]="--pos_encoding=rope"
  [noqknorm]="--qk_norm=False"
  # issue 12's controls and candidates (each beside sigmoid / softmax_alibi at the tuned LR)
  [softmax_prenorm]="--attention=softmax --norm=pre"             # softmax, same recipe but pre-norm
  [warmup300]="--warmup_iters=300"
  [ls1e-4]="--layerscale=1e-4"
  [ls0.1]="--layerscale=0.1"
  [long]="--max_iters=3000 --lr_decay_iters=3000"               # 3x the tokens
  [softmax_alibi_long]="--attention=softmax --max_iters=3000 --lr_decay_iters=3000"
  [torchattn]="--attn_impl=torch"                                # the materialised attention, not the kernel
  [perhead]="--sigmoid_bias=per_head"                            # b_h from each ALiBi head's reach
  # the 12 x 768 comparison: same tokens, lr halved with the width (not tuned at this size); ~35 GB each
  [scale_sigmoid]="--n_layer=12 --n_head=12 --n_embd=768 --learning_rate=2e-3"
  [scale_softmax_alibi]="--attention=softmax --n_layer=12 --n_head=12 --n_embd=768 --learning_rate=2e-3"
  # LayerScale 1e-4, the best sigmoid candidate of run 21, and softmax given the same (equal footing)
  [softmax_alibi_ls1e-4]="--attention=softmax --layerscale=1e-4"
  [scale_ls1e-4]="--n_layer=12 --n_head=12 --n_embd=768 --learning_rate=2e-3 --layerscale=1e-4"
  [scale_softmax_alibi_ls1e-4]="--attention=softmax --n_layer=12 --n_head=12 --n_embd=768 --learning_rate=2e-3 --layerscale=1e-4"
)
NAMES=(sigmoid softmax softmax_alibi nobias prenorm rope noqknorm)
if [ -n "${ONLY:-}" ]; then
  for n in $ONLY; do [ -n "${ARGS[${n%%@*}]+x}" ] || { echo "unknown run '$n' in ONLY (one of ${!ARGS[*]}, each optionally @LR)"; exit 1; }; done
  read -r -a NAMES <<< "$ONLY"
fi
runs=()
for s in ${SEEDS:-1337}; do for name in "${NAMES[@]}"; do runs+=("$name:$s"); done; done
for s in ${EXTRA_SEEDS:-}; do for n in sigmoid softmax; do [[ " ${NAMES[*]} " == *" $n "* ]] && runs+=("$n:$s"); done; done

outdir() { local n=${1%%:*} s=${1##*:}; local b=${n%%@*}; echo "$OUT_ROOT/out-gutenberg-$b$([[ $n == *@* ]] && echo "-lr${n#*@}")$([ "$s" = 1337 ] || echo "-s$s")"; }
# every row starts from the paper's recipe (configs/gutenberg.py adds LayerScale 1e-4; the ls rows set it again)
args() { local n=${1%%:*}; echo "--layerscale=None ${ARGS[${n%%@*}]}$([[ $n == *@* ]] && echo " --learning_rate=${n#*@}")"; }

run_all() {  # run_all CMD-BUILDER: one command per run, in turn or in parallel; stops on a failure
  local failed; failed=$(mktemp)
  for r in "${runs[@]}"; do
    local cmd; cmd=$("$1" "$r") || continue
    echo "+ $cmd"
    if [ "${PARALLEL:-0}" = 1 ]; then
      while [ "$(jobs -rp | wc -l)" -ge "${MAX_PARALLEL:-7}" ]; do wait -n || true; done
      { bash -c "$cmd" || echo "$cmd" >> "$failed"; } &
    else
      bash -c "$cmd" || echo "$cmd" >> "$failed"
      [ -s "$failed" ] && break
    fi
  done
  wait
  if [ -s "$failed" ]; then echo "failed:"; cat "$failed"; rm -f "$failed"; exit 1; fi
  rm -f "$failed"
}

train_cmd() {
  local n=${1%%:*} s=${1##*:} out; out=$(outdir "$1")
  mkdir -p "$out"; rm -f "$out/log.jsonl"  # a fresh log; train.py replaces ckpt.pt atomically at its first evaluation
  echo "python train.py configs/gutenberg.py $(args "$1") --seed=$s --log_attn_norm=True --out_dir=$out ${EXTRA[*]} >> $out/stdout.txt 2>&1"
}
eval_cmd() {  # the best checkpoint, once: val and test at T; val at 2T and 4T where positions extrapolate
  local n=${1%%:*} out; out=$(outdir "$1")
  local e="python train.py configs/gutenberg.py $(args "$1") --out_dir=$out --init_from=resume --eval_only=True --compile=False --eval_iters=$EVAL_ITERS"
  local c="$e --eval_block_size=$T --batch_size=$((EVAL_TOKENS / T)) --eval_splits=val,test"
  if [ "${n%%@*}" != softmax ]; then  # learned positions stop at block_size
    for L in $((2 * T)) $((4 * T)); do c="$c && $e --eval_block_size=$L --batch_size=$((EVAL_TOKENS / L)) --eval_splits=val"; done
  fi
  echo "( $c ) >> $out/stdout.txt 2>&1"
}
EXTRA=("$@")
run_all train_cmd
[ "${FINAL_EVAL:-1}" = 0 ] || run_all eval_cmd  # sweeps skip it: test is read once, for the final rows

logs=(); labels=()
for r in "${runs[@]}"; do logs+=("$(outdir "$r")/log.jsonl"); labels+=("${r/:1337/}"); done
python results/gutenberg_table.py "${logs[@]}" --labels "${labels[@]}" | tee "$OUT_ROOT/gutenberg_table.md"
python plot.py "${logs[@]:0:7}" --labels "${labels[@]:0:7}" --out="$OUT_ROOT/gutenberg_val_loss.png" \
  --title "Gutenberg, 6x384, T=1024: val loss" || echo "(no plot: matplotlib missing?)"
if [ -f "$(outdir nobias:1337)/log.jsonl" ]; then
  python plot.py "$(outdir sigmoid:1337)/log.jsonl" "$(outdir nobias:1337)/log.jsonl" --metric=attn_out_rms --logy \
    --labels "sigmoid b=-ln T" "sigmoid b=0" --out="$OUT_ROOT/gutenberg_attn_norm.png" \
    --title "attention-output RMS (mean over layers)" || echo "(no plot: matplotlib missing?)"
fi
