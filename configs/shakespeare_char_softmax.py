# The softmax twin of shakespeare_char.py: nanoGPT's baby GPT as nanoGPT trains it (softmax via SDPA,
# learned positions, pre-norm, GPT-2 init), so its val loss can be set beside nanoGPT's 1.4697.
# First: python data/shakespeare_char/prepare.py
out_dir = "out-shakespeare-char-softmax"
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

attention = "softmax"
pos_encoding = "learned"
norm = "pre"
qk_norm = False
init = "gpt2"

learning_rate = 1e-3  # baby networks can afford a higher learning rate
max_iters = 5000
lr_decay_iters = 5000
min_lr = 1e-4
beta2 = 0.99  # a bit bigger because the number of tokens per iter is small
warmup_iters = 100
