"""
Sample from a trained model:
$ python sample.py --out_dir=out-shakespeare-char --start="ROMEO:" --num_samples=3
--start takes text, or FILE:path to read the prompt from a file. Character-level models decode with
their dataset's meta.pkl; others with tiktoken's GPT-2 BPE.
"""

import os
import pickle
import sys
from contextlib import nullcontext

import torch

from configurator import configure
from model import GPT, config_from_dict

# -----------------------------------------------------------------------------
out_dir = "out"
start = "\n"  # or "FILE:prompt.txt"
num_samples = 3
max_new_tokens = 500
temperature = 0.8  # < 1 sharper, > 1 more random
top_k = 200
top_p = 1.0  # nucleus sampling; 1.0 disables
seed = 1337
device = "auto"
dtype = "auto"
use_cache = True  # KV cache: each new token costs one position's forward pass
attn_impl = "auto"  # sigmoid attention: auto (the kernel on CUDA where it applies), triton (the kernel), torch
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:], dict(top_k=int))
for bad, msg in ((num_samples < 1, f"num_samples={num_samples} must be at least 1"),
                 (max_new_tokens < 0, f"max_new_tokens={max_new_tokens} must not be negative"),
                 (temperature < 0, f"temperature={temperature} must not be negative"),
                 (top_k is not None and top_k < 1, f"top_k={top_k} must be at least 1 (or None)"),
                 (not 0 < top_p <= 1, f"top_p={top_p} must be in (0, 1]")):
    if bad:
        raise SystemExit(f"error: {msg}")

if device == "auto":
    device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
elif device.startswith("cuda") and not torch.cuda.is_available():
    raise SystemExit(f"error: device={device!r} but CUDA is not available here")
device_type = "cuda" if device.startswith("cuda") else device
if dtype == "auto":
    dtype = ("bfloat16" if torch.cuda.is_bf16_supported() else "float16") if device_type == "cuda" else "float32"
torch.manual_seed(seed)
ptdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
ctx = nullcontext() if dtype == "float32" else torch.autocast(device_type, dtype=ptdtype)

ckpt_path = os.path.join(out_dir, "ckpt.pt")
if not os.path.exists(ckpt_path):
    raise SystemExit(f"error: no checkpoint at {ckpt_path}: train first, or pass --out_dir")
corrupt = f"error: checkpoint {ckpt_path} is corrupt or unreadable: "
try:
    checkpoint = torch.load(ckpt_path, map_location=device, weights_only=False)
    gptconf = config_from_dict(checkpoint["model_args"])  # (older checkpoints' attn_impl is dropped)
except Exception as e:  # noqa: BLE001 - an unreadable checkpoint, whatever the cause
    raise SystemExit(corrupt + str(e))
try:
    model = GPT(gptconf, attn_impl)
except ValueError as e:  # attn_impl does not apply to this model or machine
    raise SystemExit(f"error: {e}")
try:
    model.load_state_dict(checkpoint["model"])
except Exception as e:  # noqa: BLE001 - weights missing or not of this model's shapes
    raise SystemExit(corrupt + str(e))
model.eval().to(device)

# the dataset's tokenizer: char-level meta.pkl if the run had one, else GPT-2 BPE
cfg = checkpoint.get("config", {})
data_dir = cfg.get("dataset", "")
data_dir = data_dir if os.path.isdir(data_dir) else os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", data_dir)
meta_path = os.path.join(data_dir, "meta.pkl")
if os.path.exists(meta_path):
    print(f"Loading meta from {meta_path}...")
    meta = pickle.load(open(meta_path, "rb"))
    stoi, itos = meta["stoi"], meta["itos"]
    unknown = sorted(set(c for c in start if c not in stoi))
    if unknown and not start.startswith("FILE:"):
        raise SystemExit(f"error: --start has characters this model never saw: {unknown}")
    encode = lambda s: [stoi[c] for c in s if c in stoi]  # noqa: E731
    decode = lambda ids: "".join(itos[i] for i in ids)  # noqa: E731
else:
    import tiktoken
    enc = tiktoken.get_encoding("gpt2")
    encode = lambda s: enc.encode(s, allowed_special={"<|endoftext|>"})  # noqa: E731
    decode = lambda ids: enc.decode(ids)  # noqa: E731

if start.startswith("FILE:"):
    try:
        with open(start[5:], encoding="utf-8") as f:
            start = f.read()
    except OSError as e:
        raise SystemExit(f"error: cannot read prompt file {start[5:]!r}: {e.strerror}")
start_ids = encode(start)
if not start_ids:
    raise SystemExit("error: the prompt encodes to no tokens")
x = torch.tensor(start_ids, dtype=torch.long, device=device)[None, ...]

with torch.no_grad(), ctx:
    for k in range(num_samples):
        y = model.generate(x, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, use_cache=use_cache)
        print(decode(y[0].tolist()))
        print("---------------")
