# The softmax baseline of gpt2_124m.py: GPT-2 as nanoGPT trains it (softmax via SDPA, learned positions,
# pre-norm, GPT-2 init), on the same data and schedule.
# torchrun --standalone --nproc_per_node=8 train.py configs/gpt2_124m_softmax.py
out_dir = "out-gpt2-124m-softmax"
wandb_run_name = "gpt2-124m-softmax"
dataset = "fineweb"

batch_size = 16
block_size = 1024
gradient_accumulation_steps = 32  # 16 * 1024 * 32 = 524,288 tokens per step, over all GPUs

n_layer = 12
n_head = 12
n_embd = 768
attention = "softmax"
pos_encoding = "learned"
norm = "pre"
qk_norm = False
init = "gpt2"

learning_rate = 6e-4
max_iters = 19073  # ~10B tokens
lr_decay_iters = 19073
warmup_iters = 700
min_lr = 6e-5
weight_decay = 0.1

eval_interval = 1000
eval_iters = 100
log_interval = 10
