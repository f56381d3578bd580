"""Specification of train.py, run as a subprocess on a tiny char-level dataset on the CPU:
learning, logging, checkpoints, exact resume, config errors, NaN handling, DDP and FSDP2 (gloo)."""
import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import (INTERPRETED, explain, read_log, run_script, run_torchrun, run_train, train_losses,
                     write_char_dataset, TINY, args_of)
from model import GPT, config_from_dict

TRAINED_ITERS = 80


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_char_dataset(tmp_path_factory.mktemp("data") / "chars")


@pytest.fixture(scope="module")
def vocab_size(dataset):
    with open(dataset / "meta.pkl", "rb") as f:
        return pickle.load(f)["vocab_size"]


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    """One short run, shared: 80 iters, evaluations at 0, 40 and 80, a checkpoint at 80."""
    out = tmp_path_factory.mktemp("trained")
    p = run_train(dataset, out, max_iters=TRAINED_ITERS, eval_interval=40, eval_iters=5)
    assert p.returncode == 0, explain(p)
    return out


def copy_run(src, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


def load_ckpt(out):
    return torch.load(Path(out) / "ckpt.pt", map_location="cpu", weights_only=False)


# ---------------------------------------------------------------------------------------------
# learning and logging


def test_short_run_learns(trained, vocab_size):
    """A short CPU run takes the val loss from ~ln(vocab) clearly below it."""
    evals = [e for e in read_log(trained) if e["event"] == "eval"]
    assert [e["iter"] for e in evals] == [0, 40, 80]
    first, last = evals[0]["val_loss"], evals[-1]["val_loss"]
    assert abs(first - math.log(vocab_size)) < 1.0  # a fresh model is close to uniform
    assert last < math.log(vocab_size) - 1.0, (first, last)
    assert last < first - 1.0


def test_log_events_have_the_documented_keys(trained):
    """log.jsonl: one train event per iter (iter, loss, lr, tokens, elapsed_s) and eval events
    (iter, train_loss, val_loss); tokens count iter * tokens per iteration."""
    events = read_log(trained)
    train = [e for e in events if e["event"] == "train"]
    assert [e["iter"] for e in train] == list(range(1, TRAINED_ITERS + 1))
    tokens_per_iter = TINY["batch_size"] * TINY["block_size"] * TINY["gradient_accumulation_steps"]
    for e in train:
        assert {"iter", "loss", "lr", "tokens", "elapsed_s"} <= e.keys()
        assert math.isfinite(e["loss"]) and e["lr"] == pytest.approx(TINY["learning_rate"])
        assert e["tokens"] == e["iter"] * tokens_per_iter
    assert all(a["elapsed_s"] <= b["elapsed_s"] for a, b in zip(train, train[1:]))
    for e in (e for e in events if e["event"] == "eval"):
        assert {"iter", "train_loss", "val_loss"} <= e.keys()
        assert math.isfinite(e["train_loss"]) and math.isfinite(e["val_loss"])


def test_lagged_log_lines_carry_their_own_iters_loss(dataset, tmp_path):
    """A logged loss is read from the device one step late (or before an evaluation), yet each train
    event carries its own iter's loss, equal to a log_interval=1 run's; the events of an iter come
    before its evaluation, the last one before the final evaluation; the time is per iter."""
    opts = dict(max_iters=9, eval_interval=6, eval_iters=2, gradient_accumulation_steps=2, dropout=0.1)
    every = run_train(dataset, tmp_path / "every", log_interval=1, **opts)
    assert every.returncode == 0, explain(every)
    third = run_train(dataset, tmp_path / "third", log_interval=3, **opts)
    assert third.returncode == 0, explain(third)
    events, losses = read_log(tmp_path / "third"), train_losses(read_log(tmp_path / "every"))
    assert [(e["event"], e["iter"]) for e in events] == [("eval", 0), ("train", 3), ("train", 6), ("eval", 6),
                                                         ("train", 9), ("eval", 9)]
    for e in (e for e in events if e["event"] == "train"):
        assert e["loss"] == losses[e["iter"]], e
        assert 0 < e["ms_per_iter"] <= 1000 * e["elapsed_s"] / 3 + 1e-3  # per iter, not per 3 iters
        assert f"iter {e['iter']}: loss {e['loss']:.4f}" in third.stdout


def test_checkpoint_is_complete_and_written_atomically(trained, dataset, vocab_size):
    """ckpt.pt holds model, optimizer, model_args, iter_num, best_val_loss, config and rng; no
    ckpt.pt.tmp is left behind; model_args rebuild a GPT that loads the weights strictly, and hold
    no attn_impl (how attention runs is chosen anew by each run)."""
    assert not (trained / "ckpt.pt.tmp").exists()
    assert sorted(p.name for p in trained.glob("ckpt*")) == ["ckpt.pt"]
    ck = load_ckpt(trained)
    assert {"model", "optimizer", "model_args", "iter_num", "best_val_loss", "config", "rng"} <= ck.keys()
    assert ck["iter_num"] == TRAINED_ITERS
    val = [e["val_loss"] for e in read_log(trained) if e["event"] == "eval" and e["iter"] > 0]
    assert ck["best_val_loss"] == pytest.approx(min(val))
    assert ck["model_args"]["vocab_size"] == vocab_size and ck["model_args"]["n_embd"] == TINY["n_embd"]
    assert "attn_impl" not in ck["model_args"] and ck["config"]["attn_impl"] == "auto"
    assert ck["config"]["max_iters"] == TRAINED_ITERS and ck["config"]["dataset"] == str(dataset)
    assert len(ck["rng"]) == 1 and "torch" in ck["rng"][0]
    m = GPT(config_from_dict(ck["model_args"]))
    m.load_state_dict(ck["model"])  # strict


# ---------------------------------------------------------------------------------------------
# exact resume


@pytest.mark.parametrize("deterministic", [False, True])
def test_resume_is_exact(dataset, tmp_path, deterministic):
    """Run A to 2N iters; run B to N, then --init_from=resume to 2N: the per-iter losses from N on
    are bitwise equal (dropout and 2 micro-steps, so the RNG state and data order matter, and an lr
    schedule), and B's log.jsonl is appended across the resume. On a CPU with or without
    --deterministic (a GPU needs it for bitwise equality: atomic adds sum in any order)."""
    N = 4
    opts = dict(dropout=0.2, gradient_accumulation_steps=2, eval_interval=N, decay_lr=True, warmup_iters=2,
                lr_decay_iters=2 * N, min_lr=3e-4, deterministic=deterministic)
    a = run_train(dataset, tmp_path / "a", max_iters=2 * N, **opts)
    assert a.returncode == 0, explain(a)
    b1 = run_train(dataset, tmp_path / "b", max_iters=N, **opts)
    assert b1.returncode == 0, explain(b1)
    b2 = run_train(dataset, tmp_path / "b", max_iters=2 * N, init_from="resume", **opts)
    assert b2.returncode == 0, explain(b2)
    assert f"resuming from {tmp_path / 'b' / 'ckpt.pt'} at iter {N}" in b2.stdout
    la, lb = train_losses(read_log(tmp_path / "a")), train_losses(read_log(tmp_path / "b"))
    assert sorted(lb) == list(range(1, 2 * N + 1))  # both halves in one log, each iter once
    assert [lb[i] for i in range(N + 1, 2 * N + 1)] == [la[i] for i in range(N + 1, 2 * N + 1)]
    assert [lb[i] for i in range(1, N + 1)] == [la[i] for i in range(1, N + 1)]
    assert len(set(la.values())) == len(la)  # the losses move: equality is not trivial


def test_resume_from_a_checkpoint_that_holds_attn_impl(trained, dataset, tmp_path):
    """Checkpoints written before attn_impl became a run-time choice hold it in model_args: such a
    run resumes, with no warning about changed options, and its next checkpoint drops the key."""
    out = copy_run(trained, tmp_path)
    ck = load_ckpt(out)
    ck["model_args"]["attn_impl"] = "triton"
    torch.save(ck, out / "ckpt.pt")
    p = run_train(dataset, out, max_iters=TRAINED_ITERS + 2, eval_interval=1000, eval_iters=5, init_from="resume",
                  attn_impl="torch")
    assert p.returncode == 0, explain(p)
    assert "warning" not in p.stdout and "attn_impl=torch" in p.stdout, p.stdout
    ck = load_ckpt(out)
    assert ck["iter_num"] == TRAINED_ITERS + 2 and "attn_impl" not in ck["model_args"]


def test_attn_window_trains_is_checkpointed_and_old_checkpoints_load(dataset, tmp_path):
    """--attn_window=w trains a sliding-window model (a loss other than full attention's), stored in
    the checkpoint's model_args; a checkpoint written before the option (no such key) resumes with
    full attention."""
    full = run_train(dataset, tmp_path / "full", max_iters=3, eval_interval=1000)
    assert full.returncode == 0, explain(full)
    p = run_train(dataset, tmp_path / "w", max_iters=3, eval_interval=3, eval_iters=2, attn_window=4)
    assert p.returncode == 0, explain(p)
    lw, lf = train_losses(read_log(tmp_path / "w")), train_losses(read_log(tmp_path / "full"))
    assert lw[1] == pytest.approx(lf[1], rel=0.05) and lw[3] != lf[3]  # same start, a different model
    ck = load_ckpt(tmp_path / "w")
    assert ck["model_args"]["attn_window"] == 4 and config_from_dict(ck["model_args"]).window == (4, 0)
    del ck["model_args"]["attn_window"]  # as written before the option existed
    torch.save(ck, tmp_path / "w" / "ckpt.pt")
    r = run_train(dataset, tmp_path / "w", max_iters=4, eval_interval=4, eval_iters=2, init_from="resume")
    assert r.returncode == 0, explain(r)
    assert load_ckpt(tmp_path / "w")["model_args"]["attn_window"] is None


def write_doc_dataset(d, eot=29, n_tokens=(20_000, 4_000), seed=0):
    """A tokenised dataset of short documents, each ending with the end-of-text token eot, named in
    meta.pkl: a document counts up from a random start by a random step (mod eot), 3 to 25 tokens."""
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "val"), n_tokens):
        ids = []
        while len(ids) < n:
            start, step, m = rng.integers(0, eot), rng.integers(1, 4), rng.integers(3, 26)
            ids += [(start + step * i) % eot for i in range(m - 1)] + [eot]
        np.array(ids, dtype=np.uint16).tofile(d / f"{split}.bin")
    with open(d / "meta.pkl", "wb") as f:
        pickle.dump(dict(vocab_size=eot + 1, eot=eot), f)
    return d


def test_doc_mask_trains_on_documents_with_the_kernel_and_pytorch_alike(tmp_path):
    """--doc_mask=True on data of short documents (several per row): documents attend only within
    themselves, so the first loss differs from that of the same weights and batch without it; the
    kernel path (sigmoid_attention_varlen, the interpreter on a CPU) gives the PyTorch path's losses."""
    data = write_doc_dataset(tmp_path / "docs")
    opts = dict(max_iters=3, eval_interval=3, eval_iters=2)
    runs = {}
    arms = [("plain", {}), ("docs", dict(doc_mask=True)), ("kernel", dict(doc_mask=True, attn_impl="triton"))]
    if not INTERPRETED:  # a GPU machine: the kernel does not take CPU tensors there
        arms.pop()
    for name, extra in arms:
        p = run_train(data, tmp_path / name, **opts, **extra)
        assert p.returncode == 0, explain(p)
        runs[name] = train_losses(read_log(tmp_path / name))
    assert runs["docs"][1] != pytest.approx(runs["plain"][1], rel=1e-4)
    for i in (1, 2, 3) if "kernel" in runs else ():
        assert runs["kernel"][i] == pytest.approx(runs["docs"][i], rel=1e-4), (i, runs)
    assert load_ckpt(tmp_path / "docs")["config"]["doc_mask"] is True


def test_doc_mask_without_an_end_of_text_token_exits(dataset, tmp_path):
    """Character-level data has no end-of-text token: --doc_mask=True is an error naming it, not a no-op."""
    p = run_train(dataset, tmp_path / "out", max_iters=1, doc_mask=True)
    assert p.returncode != 0 and "doc_mask" in p.stderr and "'eot'" in p.stderr, explain(p)
    assert "Traceback" not in p.stderr


# ---------------------------------------------------------------------------------------------
# configuration errors


@pytest.mark.parametrize("args,needle", [
    (["--foo=1"], "foo"),
    (["--batch_size=abc"], "batch_size"),
    (["--batch_size=1.5"], "batch_size"),
    (["--attention=bogus"], "bogus"),
    (["--attn_impl=fast"], "attn_impl='fast'"),
    (["--init_from=maybe"], "maybe"),
    (["--dtype=float8"], "float8"),
    (["--log_interval=0"], "log_interval=0"),
    (["--batch_size=-2"], "batch_size=-2"),
    (["--max_iters=-1"], "max_iters=-1"),
    (["--eval_block_size=0"], "eval_block_size=0"),
    (["--n_head=3"], "n_head=3"),  # 32 wide: not divisible
    (["--batch_size"], "--batch_size"),
    (["--eval_splits=val,bogus"], "bogus"),
    (["--eval_splits=val,val"], "twice"),
    (["--eval_splits=train,test"], "lacks 'val'"),  # training picks its best checkpoint by val loss
    (["--attn_window=-3"], "attn_window=-3"),
    (["--compile_mode=fast"], "compile_mode='fast'"),
], ids=["unknown-key", "type-str", "type-float", "attention", "attn_impl", "init_from", "dtype", "log_interval-0",
        "batch_size-neg", "max_iters-neg", "eval_block_size-0", "n_head", "no-value", "eval_splits-bogus",
        "eval_splits-twice", "eval_splits-no-val", "attn_window-neg", "compile_mode"])
def test_bad_config_exits_naming_it(dataset, tmp_path, args, needle):
    """Bad keys, types and choices exit non-zero with an error naming them, and no traceback."""
    p = run_train(dataset, tmp_path / "out", max_iters=1, extra=args)
    assert p.returncode != 0
    assert needle in p.stderr and "error" in p.stderr, explain(p)
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "out" / "ckpt.pt").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda_exits(dataset, tmp_path):
    """--device=cuda where CUDA is missing: a clean exit naming the device."""
    p = run_train(dataset, tmp_path / "out", max_iters=1, extra=["--device=cuda"])
    assert p.returncode != 0 and "device='cuda'" in p.stderr and "Traceback" not in p.stderr, explain(p)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_step_trains_like_the_default_step_and_resumes(dataset, tmp_path):
    """--compile_mode=reduce-overhead replays the compiled step from CUDA graphs, whose outputs the next
    replay overwrites: with 2 micro-steps and the loss read one step late, the logged losses must still
    be this step's (close to the default mode's, same seed: only autotune picks may differ), and a
    resume under graphs continues the same run."""
    opts = dict(device="cuda", compile=True, gradient_accumulation_steps=2, eval_interval=4, eval_iters=2)
    a = run_train(dataset, tmp_path / "a", max_iters=8, timeout=600, **opts)
    assert a.returncode == 0, explain(a)
    b1 = run_train(dataset, tmp_path / "b", max_iters=4, timeout=600, compile_mode="reduce-overhead", **opts)
    assert b1.returncode == 0, explain(b1)
    b2 = run_train(dataset, tmp_path / "b", max_iters=8, timeout=600, compile_mode="reduce-overhead",
                   init_from="resume", **opts)
    assert b2.returncode == 0, explain(b2)
    la, lb = train_losses(read_log(tmp_path / "a")), train_losses(read_log(tmp_path / "b"))
    assert sorted(lb) == list(range(1, 9)) and len(set(lb.values())) == 8  # every iter once, each its own loss
    assert all(abs(la[i] - lb[i]) < 0.02 for i in la), (la, lb)
    evals = [e["val_loss"] for e in read_log(tmp_path / "b") if e["event"] == "eval"]
    assert evals[-1] < evals[0], evals


def test_missing_config_file_exits(dataset, tmp_path):
    """A config file that does not exist: clean non-zero exit naming the file."""
    p = run_train(dataset, tmp_path / "out", max_iters=1, extra=[str(tmp_path / "nope.py")])
    assert p.returncode != 0 and "nope.py" in p.stderr and "Traceback" not in p.stderr, explain(p)


def test_missing_dataset_exits_pointing_to_prepare(tmp_path):
    """A dataset with no .bin files: clean exit that says to prepare it."""
    p = run_train("no_such_dataset_xyz", tmp_path / "out", max_iters=1)
    assert p.returncode != 0 and "prepare" in p.stderr and "no_such_dataset_xyz" in p.stderr, explain(p)
    assert "Traceback" not in p.stderr


def test_resume_without_checkpoint_exits(dataset, tmp_path):
    """--init_from=resume with no ckpt.pt in out_dir: clean exit naming the missing checkpoint."""
    (tmp_path / "out").mkdir()
    p = run_train(dataset, tmp_path / "out", max_iters=1, init_from="resume")
    assert p.returncode != 0 and "ckpt.pt" in p.stderr and "Traceback" not in p.stderr, explain(p)


def test_corrupt_checkpoint_exits_and_is_left_alone(dataset, tmp_path):
    """Garbage in ckpt.pt: clean error (no traceback), and the file is not overwritten."""
    out = tmp_path / "out"
    out.mkdir()
    garbage = bytes(range(256)) * 40
    (out / "ckpt.pt").write_bytes(garbage)
    p = run_train(dataset, out, max_iters=2, init_from="resume")
    assert p.returncode != 0 and "corrupt" in p.stderr and "Traceback" not in p.stderr, explain(p)
    assert (out / "ckpt.pt").read_bytes() == garbage


# ---------------------------------------------------------------------------------------------
# NaN, eval_only, config files


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(trained, dataset, tmp_path):
    """A diverging run (lr 1e30) stops with a clear message and a non-zero exit; the previous
    checkpoint stays byte-identical and the log records the error."""
    out = copy_run(trained, tmp_path)
    before, mtime = (out / "ckpt.pt").read_bytes(), (out / "ckpt.pt").stat().st_mtime_ns
    p = run_train(dataset, out, max_iters=TRAINED_ITERS + 30, init_from="resume", learning_rate=1e30)
    assert p.returncode != 0, explain(p)
    assert "loss is nan" in p.stderr or "loss is inf" in p.stderr, explain(p)
    assert "Traceback" not in p.stderr
    assert (out / "ckpt.pt").read_bytes() == before and (out / "ckpt.pt").stat().st_mtime_ns == mtime
    assert not (out / "ckpt.pt.tmp").exists()
    last = read_log(out)[-1]
    assert last["event"] == "error" and last["iter"] > TRAINED_ITERS


def test_eval_only_evaluates_and_writes_no_checkpoint(trained, dataset, tmp_path):
    """eval_only: one evaluation at the checkpoint's iter, no training, checkpoint untouched."""
    out = copy_run(trained, tmp_path)
    before, mtime = (out / "ckpt.pt").read_bytes(), (out / "ckpt.pt").stat().st_mtime_ns
    n_before = len(read_log(out))
    p = run_train(dataset, out, max_iters=TRAINED_ITERS + 20, init_from="resume", eval_only=True)
    assert p.returncode == 0, explain(p)
    new = read_log(out)[n_before:]
    assert [(e["event"], e["iter"]) for e in new] == [("eval", TRAINED_ITERS)]
    assert (out / "ckpt.pt").read_bytes() == before and (out / "ckpt.pt").stat().st_mtime_ns == mtime


def test_eval_only_from_scratch_writes_no_checkpoint(dataset, tmp_path):
    """eval_only on a fresh model: evaluates once at iter 0 and exits, no ckpt.pt."""
    p = run_train(dataset, tmp_path / "out", max_iters=50, eval_only=True)
    assert p.returncode == 0, explain(p)
    assert [e["event"] for e in read_log(tmp_path / "out")] == ["eval"]
    assert not (tmp_path / "out" / "ckpt.pt").exists()


def test_eval_block_size_evaluates_a_checkpoint_at_a_longer_context(trained, dataset, tmp_path):
    """Length extrapolation: eval_only with eval_block_size = 4 x block_size evaluates the ALiBi model
    on 4x longer windows (a finite loss, logged with its length) and leaves the checkpoint alone."""
    out = copy_run(trained, tmp_path)
    before = (out / "ckpt.pt").read_bytes()
    n_before = len(read_log(out))
    p = run_train(dataset, out, init_from="resume", eval_only=True, eval_block_size=4 * TINY["block_size"])
    assert p.returncode == 0, explain(p)
    (e,) = read_log(out)[n_before:]
    assert e["event"] == "eval" and e["eval_block_size"] == 4 * TINY["block_size"]
    assert 0 < e["val_loss"] < 10
    assert (out / "ckpt.pt").read_bytes() == before


def test_eval_splits_reports_the_test_split(trained, dataset, tmp_path):
    """eval_only with --eval_splits=val,test on a dataset with test.bin: one eval event with a finite
    test_loss (the trained model's, so well below uniform), printed too; val's batches are those of
    the training run's last evaluation, and train is not evaluated."""
    data = tmp_path / "with_test"
    shutil.copytree(dataset, data)
    val = (data / "val.bin").read_bytes()
    (data / "test.bin").write_bytes(val[len(val) // 2 // 2 * 2:])  # the second half of val (uint16)
    out = copy_run(trained, tmp_path)
    n_before = len(read_log(out))
    p = run_train(data, out, init_from="resume", eval_only=True, eval_splits="val,test", eval_iters=5)
    assert p.returncode == 0, explain(p)
    (e,) = read_log(out)[n_before:]
    assert e["event"] == "eval" and "train_loss" not in e
    last = [x for x in read_log(out)[:n_before] if x["event"] == "eval"][-1]
    assert e["val_loss"] == pytest.approx(last["val_loss"], rel=1e-5)
    assert math.isfinite(e["test_loss"]) and e["test_loss"] < last["val_loss"] + 0.5
    assert e["test_loss"] != e["val_loss"]  # its own batches
    assert f"test loss {e['test_loss']:.4f}" in p.stdout, explain(p)


def test_eval_splits_test_without_test_data_exits(dataset, tmp_path):
    """Asking for test where there is no test.bin: a clean error naming the test split."""
    p = run_train(dataset, tmp_path / "out", eval_only=True, eval_splits="val,test")
    assert p.returncode != 0 and "no test data" in p.stderr and "Traceback" not in p.stderr, explain(p)


def test_eval_block_size_past_block_size_is_refused_for_learned_positions(dataset, tmp_path):
    """Learned positions have no embedding past block_size: a clear error, not a crash."""
    p = run_train(dataset, tmp_path / "out", max_iters=1, pos_encoding="learned",
                  eval_block_size=2 * TINY["block_size"])
    assert p.returncode != 0 and "eval_block_size=64" in p.stderr and "Traceback" not in p.stderr, explain(p)


def test_config_file_then_overrides(dataset, tmp_path):
    """A config file sets values; a later --key=value overrides the file; the checkpoint records
    the result."""
    cfg = tmp_path / "my_config.py"
    cfg.write_text("n_embd = 48\nn_head = 3\nmax_iters = 7\nlearning_rate = 2e-3\n")
    base = {k: v for k, v in TINY.items() if k not in ("n_embd", "n_head", "learning_rate")}
    p = run_script("train.py", str(cfg), *args_of({**base, "dataset": dataset, "out_dir": tmp_path / "out",
                                                   "max_iters": 2, "eval_interval": 2}))
    assert p.returncode == 0, explain(p)
    assert f"Overriding config with {cfg}" in p.stdout and "Overriding: max_iters = 2" in p.stdout
    ck = load_ckpt(tmp_path / "out")
    assert ck["iter_num"] == 2 and ck["config"]["max_iters"] == 2  # the command line wins
    assert ck["model_args"]["n_embd"] == 48 and ck["model_args"]["n_head"] == 3  # from the file
    assert ck["config"]["learning_rate"] == 2e-3


# ---------------------------------------------------------------------------------------------
# DDP and FSDP2 on the CPU (gloo)

DIST_ITERS = 20


@pytest.fixture(scope="module")
def ddp_runs(dataset, tmp_path_factory):
    """The same global batch (2 micro-batches of 8 per iter) in 1 process and in 2 DDP processes,
    plus a 1-iter, 1-micro-step single-process run (rank 0's first batch alone)."""
    root = tmp_path_factory.mktemp("ddp")
    one = run_train(dataset, root / "one", max_iters=DIST_ITERS, eval_interval=DIST_ITERS, eval_iters=4,
                    gradient_accumulation_steps=2)
    assert one.returncode == 0, explain(one)
    two = run_torchrun(2, dataset, root / "two", max_iters=DIST_ITERS, eval_interval=DIST_ITERS, eval_iters=4,
                       gradient_accumulation_steps=2)
    assert two.returncode == 0, explain(two)
    rank0 = run_train(dataset, root / "rank0", max_iters=1, eval_interval=1000, gradient_accumulation_steps=1)
    assert rank0.returncode == 0, explain(rank0)
    return root


def test_ddp_loss_matches_single_process_scale(ddp_runs):
    """2 DDP processes and 1 process with the same global batch reach a similar loss (within 10%)."""
    v1 = [e for e in read_log(ddp_runs / "one") if e["event"] == "eval"][-1]
    v2 = [e for e in read_log(ddp_runs / "two") if e["event"] == "eval"][-1]
    assert v1["iter"] == v2["iter"] == DIST_ITERS
    assert v2["val_loss"] == pytest.approx(v1["val_loss"], rel=0.10)
    l1, l2 = train_losses(read_log(ddp_runs / "one")), train_losses(read_log(ddp_runs / "two"))
    assert l2[DIST_ITERS] == pytest.approx(l1[DIST_ITERS], rel=0.10)
    assert l2[DIST_ITERS] < l2[1] - 0.5  # and it learns


def test_ddp_only_rank0_writes_the_log(ddp_runs):
    """One log.jsonl, one train event per iter (rank 0 writes; the loss is the mean of the ranks)."""
    events = read_log(ddp_runs / "two")
    assert [e["iter"] for e in events if e["event"] == "train"] == list(range(1, DIST_ITERS + 1))
    assert [e["iter"] for e in events if e["event"] == "eval"] == [0, DIST_ITERS]
    assert all(e["tokens"] == e["iter"] * 2 * TINY["batch_size"] * TINY["block_size"]
               for e in events if e["event"] == "train")


def test_ddp_ranks_draw_different_data(ddp_runs):
    """Rank 1 does not train on rank 0's batches: the first-iter loss of 2 processes x 1 micro-step
    (before any update, same initial weights) differs from rank 0's batch alone; each rank also
    keeps its own dropout RNG in the checkpoint."""
    l_two = train_losses(read_log(ddp_runs / "two"))[1]
    l_rank0 = train_losses(read_log(ddp_runs / "rank0"))[1]
    assert l_two != pytest.approx(l_rank0, rel=1e-4)
    rng = load_ckpt(ddp_runs / "two")["rng"]
    assert len(rng) == 2 and not torch.equal(rng[0]["torch"], rng[1]["torch"])


def test_ddp_checkpoint_loads_into_plain_gpt(ddp_runs):
    """The DDP checkpoint holds plain (unwrapped) GPT state dict keys."""
    ck = load_ckpt(ddp_runs / "two")
    assert not any(k.startswith("module.") for k in ck["model"])
    GPT(config_from_dict(ck["model_args"])).load_state_dict(ck["model"])


def test_ddp_rejects_indivisible_accumulation(dataset, tmp_path):
    """gradient_accumulation_steps is global: 3 micro-steps over 2 processes is a clean error."""
    p = run_torchrun(2, dataset, tmp_path / "out", max_iters=1, gradient_accumulation_steps=3)
    assert p.returncode != 0 and "gradient_accumulation_steps=3" in p.stdout + p.stderr, explain(p)


FSDP_ITERS = 6


@pytest.fixture(scope="module")
def fsdp_run(dataset, ddp_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("fsdp")
    p = run_torchrun(2, dataset, out, max_iters=FSDP_ITERS, eval_interval=FSDP_ITERS, eval_iters=4,
                     gradient_accumulation_steps=2, parallel="fsdp")
    assert p.returncode == 0, explain(p)
    return out


def test_fsdp_trains_like_ddp(fsdp_run, ddp_runs):
    """FSDP2 with 2 gloo processes gives the same per-iter losses as DDP (same init, data, lr)."""
    lf, ld = train_losses(read_log(fsdp_run)), train_losses(read_log(ddp_runs / "two"))
    assert sorted(lf) == list(range(1, FSDP_ITERS + 1))
    for i in lf:
        assert lf[i] == pytest.approx(ld[i], rel=1e-4, abs=1e-5), (i, lf, ld)


def test_fsdp_checkpoint_loads_into_a_plain_model_and_optimizer(fsdp_run):
    """The FSDP2 checkpoint is a full (unsharded) state: it loads strictly into a single-process GPT,
    and its optimizer state into that model's AdamW, with moments for every parameter."""
    ck = load_ckpt(fsdp_run)
    assert ck["iter_num"] == FSDP_ITERS and len(ck["rng"]) == 2
    m = GPT(config_from_dict(ck["model_args"]))
    m.load_state_dict(ck["model"])
    for k, v in ck["model"].items():
        assert type(v) is torch.Tensor, k  # not a DTensor shard
    opt = m.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    opt.load_state_dict(ck["optimizer"])
    params = list(m.parameters())
    assert len(opt.state) == len(params)
    for p in params:
        assert opt.state[p]["exp_avg"].shape == p.shape and opt.state[p]["exp_avg"].abs().sum() > 0


def test_fsdp_checkpoint_resumes_in_one_process(fsdp_run, dataset, tmp_path):
    """--init_from=resume --parallel=ddp in one process continues an FSDP2 run's checkpoint."""
    out = copy_run(fsdp_run, tmp_path)
    p = run_train(dataset, out, max_iters=FSDP_ITERS + 3, eval_interval=1000, eval_iters=4,
                  gradient_accumulation_steps=2, init_from="resume", parallel="ddp")
    assert p.returncode == 0, explain(p)
    losses = train_losses(read_log(out))
    assert sorted(losses) == list(range(1, FSDP_ITERS + 4))
    assert losses[FSDP_ITERS + 3] < losses[1]  # continues from the trained weights, not from scratch
    assert load_ckpt(out)["iter_num"] == FSDP_ITERS + 3
