# Prepared for the next session, not run. Why: run 71's output code shows the recipe's hybrid-norm gain gradients
# grouped by inductor into 5-6 mix-order kernels per step (`..._fused_rms_norm_backward_..._sum_view_5`, 173 us each,
# each re-reading ~14 full (16384, 768) activations for 8 gains of several layers: about 1.0 ms per step, the largest
# recipe-only cost left at T=1024), where softmax's step folds each gain into its own norm's row kernel. This sweeps
# inductor knobs that change that grouping, sigmoid recipe at 16 x 1024 with CUDA graphs, softmax once for scale.
# Setup here: mkdir -p devcarry/sh && cp data/shakespeare/*.bin devcarry/sh/ && cp results/kernel/gluon/next_inductor_run.py
# results/kernel/gluon/next_run_f.sh devcarry/ ; then `bash devcarry/next_run_f.sh` with carry ["devcarry"] (~8 min).
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
run() {  # tag config knobs [train.py options]
  d=/tmp/ind_$1; rm -rf $d
  timeout 100 python devcarry/next_inductor_run.py $3 $2 --dataset=shakespeare --batch_size=16 --block_size=1024 \
    --gradient_accumulation_steps=1 --max_iters=30 --eval_interval=1000000 --eval_iters=1 --log_interval=1 --warmup_iters=10 \
    --always_save_checkpoint=False --compile_mode=reduce-overhead --out_dir=$d "${@:4}" > $OUT/ind_$1.log 2>&1
  python - $d $1 $3 <<'PY' | tee -a $OUT/sweep.log
import json, sys
try:
    ev = [json.loads(l) for l in open(sys.argv[1] + "/log.jsonl")]
except OSError:
    print(f"RESULT {sys.argv[2]} {sys.argv[3]} failed"); sys.exit()
st = [e for e in ev if e["event"] == "train"][15:]
ms = sorted(e["ms_per_iter"] for e in st)[len(st) // 2]
print(f"RESULT {sys.argv[2]} {sys.argv[3]} ms={ms:.2f} mem={st[-1].get('max_mem_gb'):.3f}")
PY
}
run sig_default configs/gpt2_124m.py none
run sig_maxreads10 configs/gpt2_124m.py triton.mix_order_reduction_max_reads=10
run sig_fusion8 configs/gpt2_124m.py max_fusion_size=8
run sig_aggressive configs/gpt2_124m.py aggressive_fusion=True
run sig_keeppost configs/gpt2_124m.py none --post_norm_from_sum=False
run soft_default configs/gpt2_124m_softmax.py none
run sig_default2 configs/gpt2_124m.py none
