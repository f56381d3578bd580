#!/usr/bin/env bash
# The Gutenberg comparison: sigmoid recipe, softmax baseline, and the ablations, each with the same data,
# tokens and seed; then a table of best val losses and the val-loss curves. One GPU runs them one after
# another (or several at once with PARALLEL=1, which makes their timings meaningless).
# Needs data/gutenberg (see configs/gutenberg.py). Extra train.py options pass through: bash results/gutenberg.sh --max_iters=500
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A RUNS=(
  [sigmoid]=""
  [softmax]="--attention=softmax --pos_encoding=learned --norm=pre --qk_norm=False --init=gpt2"
  [nobias]="--sigmoid_bias=0.0"
  [prenorm]="--norm=pre"
  [rope]="--pos_encoding=rope"
  [noqknorm]="--qk_norm=False"
)
logs=()
for name in sigmoid softmax nobias prenorm rope noqknorm; do
  out="out-gutenberg-$name"
  mkdir -p "$out"
  rm -f "$out/log.jsonl"
  # shellcheck disable=SC2086
  cmd="python train.py configs/gutenberg.py ${RUNS[$name]} --log_attn_norm=True --out_dir=$out $*"
  echo "+ $cmd"
  if [ "${PARALLEL:-0}" = 1 ]; then
    $cmd > "$out/stdout.txt" 2>&1 &
  else
    $cmd > "$out/stdout.txt" 2>&1 || { tail -20 "$out/stdout.txt"; exit 1; }
  fi
  logs+=("$out/log.jsonl")
done
wait
python plot.py "${logs[@]}" --table --labels sigmoid softmax "sigmoid b=0" "sigmoid pre-norm" "sigmoid RoPE" "sigmoid no QK-norm" \
  --out=results/gutenberg_val_loss.png --title "Gutenberg, 6x384, T=1024: val loss"
