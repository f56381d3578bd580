# A few-minute CPU demo: a small sigmoid-attention GPT on character-level tiny Shakespeare.
# python data/shakespeare_char/prepare.py && python train.py configs/shakespeare_char_cpu.py
out_dir = "out-shakespeare-char-cpu"
eval_interval = 500
eval_iters = 20
log_interval = 25
always_save_checkpoint = False

dataset = "shakespeare_char"
gradient_accumulation_steps = 1
batch_size = 12
block_size = 64

n_layer = 4
n_head = 4
n_embd = 128
dropout = 0.0

learning_rate = 1e-3
max_iters = 2000
lr_decay_iters = 2000
min_lr = 1e-4
beta2 = 0.99
warmup_iters = 50

device = "cpu"
compile = False
