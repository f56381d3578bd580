# GPT-2 124M shape (12 layers, 768 wide, 12 heads, T=1024) with the sigmoid recipe, on FineWeb-Edu
# (python data/fineweb/prepare.py), ~0.5M tokens per step as nanoGPT. Softmax twin: gpt2_124m_softmax.py.
# torchrun --standalone --nproc_per_node=8 train.py configs/gpt2_124m.py
out_dir = "out-gpt2-124m"
wandb_run_name = "gpt2-124m-sigmoid"
dataset = "fineweb"

batch_size = 16
block_size = 1024
gradient_accumulation_steps = 32  # 16 * 1024 * 32 = 524,288 tokens per step, over all GPUs

n_layer = 12
n_head = 12
n_embd = 768
attention = "sigmoid"
pos_encoding = "alibi"
norm = "hybrid"
qk_norm = True

learning_rate = 6e-4
max_iters = 19073  # ~10B tokens
lr_decay_iters = 19073
warmup_iters = 700
min_lr = 6e-5
weight_decay = 0.1

eval_interval = 1000
eval_iters = 100
log_interval = 10
