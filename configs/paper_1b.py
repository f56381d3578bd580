# The paper's 1B sigmoid LM (Apple's "gala-sigmoid" 1B recipe): 24 x 2048, 32 heads of 64, SwiGLU 5632,
# 4096 context, b = -ln(4096), ALiBi, QK-norm, hybrid-norm, no biases, tied embeddings.
# Optimizer as the paper: AdamW(0.9, 0.95, eps 1e-8), clip 1.0, peak lr 1e-2 with the matrices' lr scaled
# by 768/2048, decoupled weight decay 1e-4, 5k warmup, cosine to 10%. ~1M tokens per step.
# Differences: GPT-2 BPE (50304) instead of their 32k sentencepiece; FSDP2 shards it over the GPUs.
# torchrun --standalone --nproc_per_node=8 train.py configs/paper_1b.py
out_dir = "out-paper-1b"
wandb_run_name = "paper-1b-sigmoid"
dataset = "fineweb"
parallel = "fsdp"

batch_size = 4
block_size = 4096
gradient_accumulation_steps = 64  # 4 * 4096 * 64 = 1,048,576 tokens per step, over all GPUs

n_layer = 24
n_head = 32
n_embd = 2048
mlp = "swiglu"
attention = "sigmoid"
pos_encoding = "alibi"
norm = "hybrid"
qk_norm = True
init = "paper"

learning_rate = 1e-2
matrix_lr_scale = 768 / 2048
weight_decay = 1e-4
decoupled_wd = True
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0
warmup_iters = 5000
max_iters = 300000
lr_decay_iters = 300000
min_lr = 1e-3

eval_interval = 2000
eval_iters = 50
log_interval = 10
