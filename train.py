"""
Train a GPT with sigmoid (or softmax) attention. One process on a CPU, MPS or one GPU:
$ python train.py configs/shakespeare_char.py --batch_size=32
Several GPUs with DDP (or FSDP2 with --parallel=fsdp), one node:
$ torchrun --standalone --nproc_per_node=8 train.py configs/gpt2_124m.py
Two nodes (run on each, node_rank 0 and 1; the master's address reachable from both):
$ torchrun --nproc_per_node=8 --nnodes=2 --node_rank=0 --master_addr=10.0.0.1 --master_port=29500 train.py ...
Runs resume exactly with --init_from=resume: same batches, same dropout masks, same losses.
"""

import json
import math
import os
import pickle
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch
import torch.distributed as dist

import model as model_module
from configurator import configure
from model import GPT, config_from_dict

# -----------------------------------------------------------------------------
# default config: GPT-2 124M shape with the sigmoid recipe; configs/ hold ready variants
# I/O
out_dir = "out"
eval_interval = 2000
log_interval = 1
eval_iters = 200
eval_only = False  # evaluate once and exit
eval_block_size = None  # evaluate at this context length instead of block_size (length extrapolation)
eval_splits = "train,val"  # comma-separated splits estimate_loss reports; add test for a final held-out number
always_save_checkpoint = True  # else only when val loss improves
init_from = "scratch"  # 'scratch' or 'resume' (from out_dir/ckpt.pt)
# logging
wandb_log = False
wandb_project = "sigmoid-gpt"
wandb_run_name = "run"
log_attn_norm = False  # log each layer's attention-output RMS (the paper's early-training diagnostic)
# data
dataset = "openwebtext"  # data/<dataset>/, or a path, holding train.bin/val.bin or train_*.bin/val_*.bin shards
gradient_accumulation_steps = 5 * 8  # global: divided among the processes
batch_size = 12  # per process, per micro-step
block_size = 1024
doc_mask = False  # the documents of a row (each ending with the end-of-text token) attend only within themselves
# model (see model.GPTConfig)
n_layer = 12
n_head = 12
n_kv_head = None
n_embd = 768
dropout = 0.0
bias = False
vocab_size = None  # None: from the dataset's meta.pkl, else GPT-2's 50304
attention = "sigmoid"
sigmoid_bias = None  # None: -ln(block_size); a number; "per_head": model.head_biases
pos_encoding = "alibi"
norm = "hybrid"
qk_norm = True
layerscale = None
mlp = "gelu"
init = "paper"
rope_theta = 10000.0
attn_window = None  # sliding-window attention: None = full; w = each token sees itself and the w tokens before
# optimizer: AdamW
learning_rate = 6e-4
max_iters = 600000
weight_decay = 1e-1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0  # 0 disables
matrix_lr_scale = 1.0  # lr multiplier of the linear weights (paper: min(768/n_embd, 1))
decoupled_wd = False  # weight_decay as an absolute per-step decay, independent of the lr
# learning rate schedule: linear warmup, cosine decay to min_lr
decay_lr = True
warmup_iters = 2000
lr_decay_iters = 600000
min_lr = 6e-5
# system
backend = "auto"  # auto: nccl on CUDA, gloo elsewhere
parallel = "ddp"  # 'ddp' or 'fsdp' (FSDP2 fully_shard) when run under torchrun
device = "auto"  # auto, cpu, cuda, cuda:1, mps
dtype = "auto"  # auto (bfloat16 where supported, else float16 on CUDA, float32 elsewhere), float32, bfloat16, float16
compile = None  # None: torch.compile on CUDA only
compile_mode = "default"  # torch.compile's mode; "reduce-overhead" replays the model from CUDA graphs, taking the
# host's per-kernel launch cost out of the step (one process only; BENCHMARKS: bench.py's *_cg variants)
attn_impl = "auto"  # sigmoid attention: auto (the kernel on CUDA where it applies), triton (the kernel), torch
fused_qk_norm = True  # CUDA: QK-norm in qknorm.py's kernels, one op with the attention kernel (faster: BENCHMARKS run 23)
post_norm_from_sum = True  # hybrid-norm's post-norms recover their input from the residual sum in the backward
# instead of keeping it (model.ResidualRMSNorm): 0.56 GiB less at 124M, 16 x 1024, about 1% slower (BENCHMARKS runs 61-63)
fused_post_norm = True  # CUDA: that post-norm's backward (with the next pre-norm's) in one Triton pass (qknorm.py), not inductor's
deterministic = False  # bitwise-reproducible GPU runs and resumes (slower: e.g. the kernel's 7-product backward)
seed = 1337
# -----------------------------------------------------------------------------
optional = dict(n_kv_head=int, vocab_size=int, sigmoid_bias=(float, str), layerscale=float, compile=bool,
                eval_block_size=int, attn_window=int)
config_keys = [k for k, v in globals().items() if not k.startswith("_") and isinstance(v, (int, float, bool, str, type(None)))]
configure(globals(), sys.argv[1:], optional)
config = {k: globals()[k] for k in config_keys}  # for logging and checkpoints
for key in ("eval_interval", "log_interval", "eval_iters", "gradient_accumulation_steps", "batch_size", "block_size"):
    if config[key] < 1:
        raise SystemExit(f"error: {key}={config[key]} must be at least 1")
for key in ("max_iters", "warmup_iters", "lr_decay_iters", "learning_rate", "min_lr", "weight_decay", "grad_clip"):
    if config[key] < 0:
        raise SystemExit(f"error: {key}={config[key]} must not be negative")
if eval_block_size is not None and eval_block_size < 1:
    raise SystemExit(f"error: eval_block_size={eval_block_size} must be at least 1")
for key, ok in dict(init_from=("scratch", "resume"), parallel=("ddp", "fsdp"),
                    dtype=("auto", "float32", "bfloat16", "float16"),
                    compile_mode=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")).items():
    if config[key] not in ok:
        raise SystemExit(f"error: {key}={config[key]!r} is not one of {ok}")
split_names = eval_splits.split(",")
for name in split_names:
    if name not in ("train", "val", "test"):
        raise SystemExit(f"error: eval_splits={eval_splits!r}: {name!r} is not one of train, val, test")
    if split_names.count(name) > 1:
        raise SystemExit(f"error: eval_splits={eval_splits!r} names {name!r} twice")
if not eval_only and "val" not in split_names:  # the best checkpoint is chosen by val loss
    raise SystemExit(f"error: eval_splits={eval_splits!r} lacks 'val', which training needs (eval_only does not)")
# -----------------------------------------------------------------------------
# processes and devices
if deterministic:  # torch's switch, which FlashSigmoid's backward follows too; cuBLAS needs its env first
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
ddp = int(os.environ.get("RANK", -1)) != -1
if device == "auto":
    device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
elif device.startswith("cuda") and not torch.cuda.is_available():
    raise SystemExit(f"error: device={device!r} but CUDA is not available here")
if ddp:
    rank, local_rank, world_size = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    dist.init_process_group(backend=("nccl" if device.startswith("cuda") else "gloo") if backend == "auto" else backend)
    if gradient_accumulation_steps % world_size:
        raise SystemExit(f"error: gradient_accumulation_steps={gradient_accumulation_steps} is not divisible "
                         f"by the {world_size} processes")
    gradient_accumulation_steps //= world_size
else:
    rank, local_rank, world_size = 0, 0, 1
master = rank == 0
device_type = "cuda" if device.startswith("cuda") else device
if dtype == "auto":
    dtype = ("bfloat16" if torch.cuda.is_bf16_supported() else "float16") if device_type == "cuda" else "float32"
if compile is None:
    compile = device_type == "cuda"
cuda_graphs = compile and device_type == "cuda" and compile_mode in ("reduce-overhead", "max-autotune")
if cuda_graphs and ddp:
    raise SystemExit(f"error: compile_mode={compile_mode!r} (CUDA graphs) runs in one process only, not under torchrun")
tokens_per_iter = gradient_accumulation_steps * world_size * batch_size * block_size
if master:
    print(f"tokens per iteration: {tokens_per_iter:,} ({world_size} process(es) x {gradient_accumulation_steps} "
          f"micro-steps x {batch_size} x {block_size}); device {device}, dtype {dtype}, compile {compile}")
    os.makedirs(out_dir, exist_ok=True)
torch.manual_seed(seed)  # the same initial weights on every process (FSDP2 shards them, does not broadcast)
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
ptdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
ctx = nullcontext() if dtype == "float32" else torch.autocast(device_type, dtype=ptdtype)

# -----------------------------------------------------------------------------
# data: random windows of uint16 token files, memmapped anew each time so RAM does not grow.
# A batch is a function of (seed, rank, split, iter, micro-step), so resumed runs see the same data.
data_dir = dataset if os.path.isdir(dataset) else os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", dataset)


def shard_paths(split):
    one = os.path.join(data_dir, f"{split}.bin")
    paths = [one] if os.path.exists(one) else sorted(
        os.path.join(data_dir, f) for f in os.listdir(data_dir) if f.startswith(f"{split}_") and f.endswith(".bin")
    ) if os.path.isdir(data_dir) else []
    if not paths:
        hint = f": prepare it first, e.g. python data/{dataset}/prepare.py" if not os.path.isabs(dataset) else ""
        raise SystemExit(f"error: no {split} data in {data_dir} ({split}.bin or {split}_*.bin){hint}")
    sizes = [os.path.getsize(p) // 2 for p in paths]
    T = max(block_size, eval_block_size or 0)
    if max(sizes) <= T + 1:
        raise SystemExit(f"error: {split} data in {data_dir} has no file longer than {T + 1} tokens")
    return paths, sizes


shards = {split: shard_paths(split) for split in dict.fromkeys(("train", "val", *split_names))}
# doc_mask: the end-of-text token that ends each document. GPT-2 BPE data (no meta.pkl) has tiktoken's
# 50256 after each document (data/common.py); other tokenizers name theirs in meta.pkl as 'eot'.
# Character-level data has none: no documents to mask, an error rather than a silent no-op.
eot = None
if doc_mask:
    meta_path = os.path.join(data_dir, "meta.pkl")
    meta = pickle.load(open(meta_path, "rb")) if os.path.exists(meta_path) else {"eot": 50256}
    if meta.get("eot") is None:
        raise SystemExit(f"error: doc_mask=True needs documents that end with an end-of-text token, but the "
                         f"dataset {dataset!r} has none (its meta.pkl has no 'eot': character-level data?)")
    eot = int(meta["eot"])
SPLIT_IDS = dict(train=0, val=1, test=4)  # in get_batch's seed; train and val keep the ids of older runs


def get_batch(split, it, micro, for_eval=False, T=None):
    rng = np.random.default_rng([seed, rank, SPLIT_IDS[split] + 2 * for_eval, it, micro])
    paths, sizes = shards[split]
    T = T or block_size
    w = np.array([max(n - T - 1, 0) for n in sizes], dtype=np.float64)
    which = rng.choice(len(paths), size=batch_size, p=w / w.sum())
    # Written straight into page-locked memory on CUDA, so the copies below are asynchronous. Such a
    # buffer comes from torch's caching host allocator, which reuses it only once its copy is done.
    pin = device_type == "cuda"
    x, y = (torch.empty((batch_size, T), dtype=torch.int64, pin_memory=pin) for _ in range(2))
    xs, ys, j = x.numpy(), y.numpy(), 0
    for s in range(len(paths)):
        n = int((which == s).sum())
        if n:
            data = np.memmap(paths[s], dtype=np.uint16, mode="r")
            for i in rng.integers(0, len(data) - T - 1, size=n):
                xs[j], ys[j] = data[i:i + T], data[i + 1:i + T + 1]
                j += 1
    return x.to(device, non_blocking=pin), y.to(device, non_blocking=pin)


# -----------------------------------------------------------------------------
# model, optimizer, checkpoint
ckpt_path = os.path.join(out_dir, "ckpt.pt")
iter_num, best_val_loss, elapsed_prev, checkpoint = 0, 1e9, 0.0, None
if init_from == "resume":
    if not os.path.exists(ckpt_path):
        raise SystemExit(f"error: init_from='resume' but there is no checkpoint at {ckpt_path}")
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model_args = checkpoint["model_args"]
    except Exception as e:  # noqa: BLE001 - any unreadable file is a corrupt checkpoint to the user
        raise SystemExit(f"error: checkpoint {ckpt_path} is corrupt or unreadable: {e}")
    iter_num, best_val_loss = checkpoint["iter_num"], checkpoint["best_val_loss"]
    elapsed_prev = checkpoint.get("elapsed_s", 0.0)
    # older checkpoints hold attn_impl too, a run-time choice now: this run's applies
    changed = [k for k, v in model_args.items() if k in config and config[k] not in (None, v) and k != "attn_impl"]
    if master:
        print(f"resuming from {ckpt_path} at iter {iter_num}")
        if changed:
            print(f"warning: the checkpoint's model options win over this run's {changed}")
else:
    if vocab_size is None:
        meta_path = os.path.join(data_dir, "meta.pkl")
        vocab_size = pickle.load(open(meta_path, "rb"))["vocab_size"] if os.path.exists(meta_path) else 50304
    model_args = {**config, "vocab_size": vocab_size}
try:
    gptconf = config_from_dict(model_args)  # drops the keys that are not GPTConfig's
    model_module.FUSED_QK_NORM = "auto" if fused_qk_norm else False  # a run-time choice, like attn_impl
    model_module.POST_NORM_FROM_SUM = post_norm_from_sum
    model_module.FUSED_POST_NORM = "auto" if fused_post_norm else False
    model = GPT(gptconf, attn_impl)
except ValueError as e:
    raise SystemExit(f"error: {e}")
model_args = dict(gptconf.__dict__)
if eot is not None and not 0 <= eot < gptconf.vocab_size:
    raise SystemExit(f"error: doc_mask: the end-of-text token {eot} is not in the model's vocabulary of {gptconf.vocab_size}")
if eval_block_size and eval_block_size > gptconf.block_size and gptconf.pos_encoding == "learned":
    raise SystemExit(f"error: eval_block_size={eval_block_size} exceeds block_size={gptconf.block_size}, "
                     "which learned positions cannot do (alibi, rope and none can)")
torch.manual_seed(seed + rank)  # each process its own dropout masks
if checkpoint is not None:
    model.load_state_dict(checkpoint["model"])
model.to(device)
if master:
    print(f"model: {model.get_num_params() / 1e6:.2f}M parameters, attention={gptconf.attention}, "
          f"pos={gptconf.pos_encoding}, norm={gptconf.norm}, attn_impl={attn_impl}")
scaler = torch.amp.GradScaler(device_type, enabled=(dtype == "float16"))
raw_model = model
if ddp and parallel == "fsdp":
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard, MixedPrecisionPolicy
    # the mesh on the run's device: fully_shard's default mesh is CUDA's wherever CUDA exists, even for device=cpu
    mesh = init_device_mesh(device_type, (world_size,))
    mp = MixedPrecisionPolicy(param_dtype=ptdtype, reduce_dtype=torch.float32)
    for block in model.transformer.h:
        fully_shard(block, mesh=mesh, mp_policy=mp)
    fully_shard(model, mesh=mesh, mp_policy=mp)
optimizer = model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2), device_type,
                                       matrix_lr_scale, decoupled_wd)


def full_state():
    """Model and optimizer state dicts, gathered in full (on rank 0, for FSDP)."""
    if ddp and parallel == "fsdp":
        from torch.distributed.checkpoint.state_dict import get_state_dict, StateDictOptions
        return get_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return raw_model.state_dict(), optimizer.state_dict()


if checkpoint is not None:
    if ddp and parallel == "fsdp":
        from torch.distributed.checkpoint.state_dict import set_state_dict, StateDictOptions
        set_state_dict(model, optimizer, model_state_dict=checkpoint["model"], optim_state_dict=checkpoint["optimizer"],
                       options=StateDictOptions(full_state_dict=True))
    else:
        optimizer.load_state_dict(checkpoint["optimizer"])
    scaler.load_state_dict(checkpoint["scaler"])
if compile:
    if master:
        print("compiling the model... (takes a minute)")
    model = torch.compile(model, mode=compile_mode)
if cuda_graphs:  # a backward replay's gradients live in the graphs' memory, which the next micro-step's replay
    # overwrites: .grad buffers of our own, zeroed not freed, make autograd add each replay's into them
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
if ddp and parallel == "ddp":
    from torch.nn.parallel import DistributedDataParallel as DDP
    model = DDP(model, device_ids=[local_rank] if device_type == "cuda" else None)


def rng_state():
    return dict(torch=torch.get_rng_state(), cuda=torch.cuda.get_rng_state() if device_type == "cuda" else None)


if checkpoint is not None:  # the dropout RNG of this rank, where it left off
    states = checkpoint["rng"]
    if len(states) == world_size:
        torch.set_rng_state(states[rank]["torch"])
        if device_type == "cuda" and states[rank]["cuda"] is not None:
            torch.cuda.set_rng_state(states[rank]["cuda"])
    elif master:
        print(f"warning: checkpoint has RNG states of {len(states)} processes, not {world_size}: dropout masks differ")
    checkpoint = None  # free memory


def all_mean(t):
    """Mean of a tensor over the processes (every process gets it; t is summed in place), on the device."""
    if not ddp:
        return t
    dist.all_reduce(t)
    return t / world_size


def to_host(t):
    """Start copying t to the host; returns it there and, on CUDA, an event marking the copy done.
    Waiting on that event waits for the copy alone, where t.item() would wait for all the work queued
    so far, leaving the GPU idle until the host has queued more."""
    if device_type != "cuda":
        return t, None
    t = t.to("cpu", non_blocking=True)  # into page-locked memory
    done = torch.cuda.Event()
    done.record()
    return t, done


def save_checkpoint():
    """Atomic: write a temp file, then rename, so a crash never leaves a half-written ckpt.pt."""
    model_sd, optim_sd = full_state()
    rngs = [None] * world_size
    if ddp:
        dist.all_gather_object(rngs, rng_state())
    else:
        rngs = [rng_state()]
    if master:
        ckpt = dict(model=model_sd, optimizer=optim_sd, scaler=scaler.state_dict(), model_args=model_args,
                    iter_num=iter_num, best_val_loss=best_val_loss, config=config, rng=rngs,
                    elapsed_s=elapsed_prev + time.time() - t_start)
        tmp = ckpt_path + ".tmp"
        torch.save(ckpt, tmp)
        os.replace(tmp, ckpt_path)
        print(f"saved checkpoint to {ckpt_path}")


@torch.no_grad()
def estimate_loss():
    out = {}
    model.eval()
    for split in split_names:
        losses = torch.zeros(eval_iters, device=device)  # kept on the device: no host sync per batch
        for k in range(eval_iters):
            X, Y = get_batch(split, k, 0, for_eval=True, T=eval_block_size)  # the same batches every time
            if cuda_graphs:  # a new replay may reuse the last one's outputs: loss is copied out below
                torch.compiler.cudagraph_mark_step_begin()
            with ctx:
                _, loss = model(X, Y, eot=eot, return_logits=False)
            losses[k] = loss
        out[split] = all_mean(losses.mean()).item()
    model.train()
    return out


def get_lr(it):
    """Linear warmup from 0, then cosine decay to min_lr at lr_decay_iters."""
    if not decay_lr:
        return learning_rate
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    ratio = (it - warmup_iters) / max(lr_decay_iters - warmup_iters, 1)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)


def log(event):
    """One JSON object per line in out_dir/log.jsonl, appended across resumes."""
    if master:
        with open(os.path.join(out_dir, "log.jsonl"), "a") as f:
            f.write(json.dumps(event) + "\n")
        if wandb_log:
            wandb.log({k: v for k, v in event.items() if k != "event"}, step=event["iter"])


def die_if_not_finite(value, what, it):
    if not math.isfinite(value):
        log(dict(event="error", iter=it, message=f"{what} is {value}"))
        raise SystemExit(f"error: {what} is {value} at iter {it}: stopping; the last good checkpoint "
                         f"(if any) is kept at {ckpt_path}")


if wandb_log and master:
    import wandb
    wandb.init(project=wandb_project, name=wandb_run_name, config=config, resume="allow")

# -----------------------------------------------------------------------------
# the training loop
t_start = time.time()
t0, it0, iter_start = time.time(), iter_num, iter_num
running_mfu, logged = -1.0, []  # logged: train events whose loss is on its way to the host
X, Y = get_batch("train", iter_num, 0)
while True:
    lr = get_lr(iter_num)
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)
    if iter_num % eval_interval == 0 or iter_num == max_iters or eval_only:
        losses = estimate_loss()
        if master:
            print(f"step {iter_num}: " + ", ".join(f"{split} loss {v:.4f}" for split, v in losses.items()))
        log(dict(event="eval", iter=iter_num, **{f"{split}_loss": v for split, v in losses.items()},
                 tokens=iter_num * tokens_per_iter, elapsed_s=elapsed_prev + time.time() - t_start,
                 **({"eval_block_size": eval_block_size} if eval_block_size else {})))
        for split, v in losses.items():
            die_if_not_finite(v, f"{split} loss", iter_num)
        if not eval_only and iter_num > 0 and (losses["val"] < best_val_loss or always_save_checkpoint):
            best_val_loss = min(best_val_loss, losses["val"])
            save_checkpoint()
    if iter_num >= max_iters or eval_only:
        break
    # forward/backward with gradient accumulation; gradients are synced on the last micro-step only
    for micro in range(gradient_accumulation_steps):
        last = micro == gradient_accumulation_steps - 1
        if ddp and parallel == "ddp":
            model.require_backward_grad_sync = last
        elif ddp:
            model.set_requires_gradient_sync(last)
        if cuda_graphs:  # the last step's outputs may be reused: its loss was copied out (loss_sum)
            torch.compiler.cudagraph_mark_step_begin()
        with ctx:
            _, loss = model(X, Y, eot=eot, return_logits=False)
            loss = loss / gradient_accumulation_steps
        # the next micro-step's batch is assembled while the GPU runs this forward pass
        X, Y = get_batch("train", iter_num + last, 0 if last else micro + 1)
        loss_sum = loss.detach() if micro == 0 else loss_sum + loss.detach()
        scaler.scale(loss).backward()
    if grad_clip != 0.0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=not cuda_graphs)
    iter_num += 1
    if iter_num % log_interval == 0:
        event = dict(event="train", iter=iter_num, loss=to_host(all_mean(loss_sum)), lr=lr,
                     tokens=iter_num * tokens_per_iter)
        if log_attn_norm:  # an extra eager forward pass on a fixed batch, cut to its first 8 sequences:
            # it materialises a T x T attention map per layer, too costly at batch 32 x T=1024
            stats = raw_model.attention_stats(get_batch("val", 0, 0, for_eval=True)[0][:8])
            event["attn_out_rms"] = [st["out_rms"] for st in stats]
            event["attn_row_mass_max"] = [st.get("row_mass_max") for st in stats]
        logged.append(event)
    # A logged loss is read once the next step is queued (one step late), so that waiting for it leaves
    # the GPU that step's work; and before an evaluation, so no checkpoint follows an unchecked loss.
    while logged and (logged[0]["iter"] < iter_num or iter_num % eval_interval == 0 or iter_num == max_iters):
        event = logged.pop(0)
        loss_host, done = event["loss"]
        if done is not None:
            done.synchronize()
        event["loss"] = lossf = loss_host.item()
        t1 = time.time()  # the step is done by now: time since the previous log line, per iter
        dt = (t1 - t0) / (event["iter"] - it0)
        t0, it0 = t1, event["iter"]
        die_if_not_finite(lossf, "training loss", event["iter"])
        mfu = raw_model.estimate_mfu(tokens_per_iter / world_size, dt, torch.device(device))
        if mfu is not None and event["iter"] - iter_start >= 5 * log_interval:  # past compilation and warmup
            running_mfu = mfu if running_mfu == -1.0 else 0.9 * running_mfu + 0.1 * mfu
        event.update(elapsed_s=elapsed_prev + t1 - t_start, ms_per_iter=dt * 1000,
                     tokens_per_s=tokens_per_iter / dt, mfu=None if mfu is None else running_mfu)
        if device_type == "cuda":
            event["max_mem_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
        log(event)
        if master:
            mfu_s = "n/a" if mfu is None else f"{running_mfu * 100:.1f}%"
            print(f"iter {event['iter']}: loss {lossf:.4f}, lr {event['lr']:.2e}, time {dt * 1000:.1f}ms, "
                  f"tok/s {tokens_per_iter / dt:,.0f}, mfu {mfu_s}")

if ddp:
    dist.barrier()  # no process tears down while another is still writing or communicating
    dist.destroy_process_group()
