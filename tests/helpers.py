"""Shared helpers for the tests: a tiny char-level dataset, subprocess runners, a kernel launch counter."""
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
# Whether the Triton kernels run on CPU tensors, through Triton's interpreter: conftest.py turns it on where there is
# no CUDA. On a GPU machine it is off and the kernels refuse CPU tensors (the GPU tests cover them on CUDA there).
INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")

# a tiny model that trains in seconds on 2 CPU cores
TINY = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=8, gradient_accumulation_steps=1,
            eval_iters=2, eval_interval=1000, log_interval=1, warmup_iters=0, decay_lr=False,
            learning_rate=3e-3, dropout=0.0, device="cpu", compile=False)


def corpus_text(n_chars=200_000):
    """Tiny Shakespeare from the shared folder, or, where it is absent (a GPU machine, say), generated pseudo-English
    in its form: speakers' names in capitals and a colon, then lines, so that the tests' prompts are in its vocab."""
    for p in (SHARED / "data" / "tinyshakespeare" / "input.txt", SHARED / "data" / "input.txt"):
        if p.is_file():
            return p.read_text(encoding="utf-8")[:n_chars]
    rng = np.random.default_rng(0)
    words = ["the", "king", "queen", "shall", "thou", "art", "my", "lord", "love", "and", "of", "to", "be",
             "not", "what", "say", "hath", "good", "sir", "come", "o", "romeo,"]
    lines = []
    while sum(len(line) + 1 for line in lines) < n_chars:
        lines.append(str(rng.choice(["ROMEO:", "JULIET:", "KING:"])))
        lines += [" ".join(rng.choice(words, size=rng.integers(3, 10))).capitalize() + "."
                  for _ in range(rng.integers(1, 4))]
    return "\n".join(lines)[:n_chars]


def write_char_dataset(d, n_chars=200_000):
    """train.bin/val.bin (uint16) + meta.pkl {'vocab_size','itos','stoi'} in directory d (90/10 split)."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    text = corpus_text(n_chars)
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    itos = {i: c for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.uint16)
    n = int(0.9 * len(ids))
    ids[:n].tofile(d / "train.bin")
    ids[n:].tofile(d / "val.bin")
    with open(d / "meta.pkl", "wb") as f:
        pickle.dump(dict(vocab_size=len(chars), itos=itos, stoi=stoi), f)
    return d


def _env(threads=1):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    env.pop("LOCAL_RANK", None)
    return env


def args_of(opts):
    return [f"--{k}={v}" for k, v in opts.items()]


def run_script(script, *args, timeout=240, threads=1):
    """python <script> args, in the repo root; returns the CompletedProcess (text, both streams captured)."""
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)], cwd=REPO, env=_env(threads),
                          capture_output=True, text=True, timeout=timeout)


def run_train(dataset, out_dir, timeout=240, extra=(), **opts):
    """train.py on `dataset` into `out_dir` with the TINY settings, overridden by opts; `extra`
    arguments come last, so they override everything before them."""
    o = {**TINY, "dataset": dataset, "out_dir": out_dir, **opts}
    return run_script("train.py", *args_of(o), *extra, timeout=timeout)


# A rank of a finished gloo run can still abort while the interpreter shuts down, after train.py's barrier and
# destroy_process_group (C++ "terminate called without an active exception"; seen twice in CI, 2026-11-29 and
# 2026-12-06, once in about ten runs; PyTorch's gloo threads at finalisation, pytorch/pytorch#179291): such a run
# is retried once, from scratch. Any other failure, or the same one twice, fails the test.
TEARDOWN_ABORT = "terminate called without an active exception"


def run_torchrun(nproc, dataset, out_dir, timeout=300, **opts):
    """train.py under torch.distributed.run with nproc gloo processes on the CPU."""
    o = {**TINY, "dataset": dataset, "out_dir": out_dir, **opts}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(REPO / "train.py"), *args_of(o)]
    p = subprocess.run(cmd, cwd=REPO, env=_env(1), capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0 and TEARDOWN_ABORT in p.stderr and "saved checkpoint" in p.stdout:
        shutil.rmtree(out_dir, ignore_errors=True)
        p = subprocess.run(cmd, cwd=REPO, env=_env(1), capture_output=True, text=True, timeout=timeout)
    return p


def read_log(out_dir):
    with open(Path(out_dir) / "log.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def train_losses(events):
    """{iter: loss} of the train events."""
    return {e["iter"]: e["loss"] for e in events if e["event"] == "train"}


def explain(proc):
    """A failure message with the tail of both streams."""
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"


class Launches:
    """Stands in for a Triton/Gluon kernel (monkeypatched over it) and counts its launches."""

    def __init__(self, kernel):
        self.kernel, self.n, self.grid = kernel, 0, None

    def __getitem__(self, grid):
        self.n += 1
        self.grid = grid
        return self.kernel[grid]
