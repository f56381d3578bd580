# session 31, call 3: the 124M step at 16 x 1024 under CUDA graphs with inductor's mix-order split size swept
export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
run() {  # name config split
  d=/tmp/sw_$1_$3; rm -rf $d
  timeout 110 python devcarry/split_run.py $3 $2 --dataset=shakespeare --batch_size=16 --block_size=1024 \
    --gradient_accumulation_steps=1 --max_iters=30 --eval_interval=1000000 --eval_iters=1 --log_interval=1 --warmup_iters=10 \
    --always_save_checkpoint=False --compile_mode=reduce-overhead --out_dir=$d > $OUT/sw_$1_$3.log 2>&1
  python - $d $1 $3 <<'PY' | tee -a $OUT/sweep.log
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1] + "/log.jsonl")]
st = [e for e in ev if e["event"] == "train"][15:]
ms = sorted(e["ms_per_iter"] for e in st)[len(st) // 2]
print(f"RESULT {sys.argv[2]} split={sys.argv[3]} ms={ms:.2f} mem={st[-1].get('max_mem_gb'):.3f} loss={st[-1]['loss']:.4f}")
PY
}
run sigmoid configs/gpt2_124m.py none
run sigmoid configs/gpt2_124m.py 64
run softmax configs/gpt2_124m_softmax.py none
run softmax configs/gpt2_124m_softmax.py 64
run sigmoid configs/gpt2_124m.py 32
run sigmoid configs/gpt2_124m.py 128
run sigmoid configs/gpt2_124m.py off
run sigmoid configs/gpt2_124m.py none
