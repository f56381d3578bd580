# nanoGPT's "baby GPT" on character-level tiny Shakespeare, with the sigmoid-attention recipe
# (sigmoid + b = -ln(256), QK-norm, hybrid-norm) and RoPE. Its softmax twin: shakespeare_char_softmax.py.
# Why RoPE here, not the paper's ALiBi: on this char-level task ALiBi reached a worse best val loss
# (H200, BENCHMARKS.md: ALiBi 1.476 and 1.485 over two seeds, RoPE 1.4445, the softmax twin 1.4659
# in the same run; one seed each, chosen on val). --pos_encoding=alibi gives the paper's recipe.
# Against softmax with this same recipe (--attention=softmax), three seeds each: best val 1.4579 vs
# 1.4548 (H200, 2026-12-02, BENCHMARKS.md), a tie within the seed spread of 0.008.
# First: python data/shakespeare_char/prepare.py
out_dir = "out-shakespeare-char"
eval_interval = 250  # small data: evaluate often, keep the best checkpoint only
eval_iters = 200
log_interval = 10
always_save_checkpoint = False

dataset = "shakespeare_char"
gradient_accumulation_steps = 1
batch_size = 64
block_size = 256  # context of up to 256 previous characters

n_layer = 6
n_head = 6
n_embd = 384
dropout = 0.2

attention = "sigmoid"
pos_encoding = "rope"
norm = "hybrid"
qk_norm = True

learning_rate = 1e-3  # baby networks can afford a higher learning rate
max_iters = 5000
lr_decay_iters = 5000
min_lr = 1e-4
beta2 = 0.99  # a bit bigger because the number of tokens per iter is small
warmup_iters = 100
