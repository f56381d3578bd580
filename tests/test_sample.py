"""Specification of sample.py, run as a subprocess on a tiny char-level checkpoint trained here."""
import pickle
import shutil

import pytest
import torch

from helpers import explain, run_script, run_train, write_char_dataset

SEP = "---------------"
BLOCK = 32


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny char-level model trained for a few dozen iters; returns (out_dir, meta)."""
    data = write_char_dataset(tmp_path_factory.mktemp("data") / "chars")
    out = tmp_path_factory.mktemp("out")
    p = run_train(data, out, max_iters=40, eval_interval=40, block_size=BLOCK)
    assert p.returncode == 0, explain(p)
    with open(data / "meta.pkl", "rb") as f:
        return out, pickle.load(f)


def sample(out_dir, *args, **opts):
    opts = {"out_dir": out_dir, "device": "cpu", "max_new_tokens": 20, "num_samples": 3, "seed": 7, **opts}
    return run_script("sample.py", *args, *[f"--{k}={v}" for k, v in opts.items()])


def samples_of(stdout):
    """The samples: what follows the 'Loading meta' line, split at the separator lines."""
    head, sep, body = stdout.partition(".pkl...\n")
    assert sep, stdout
    parts = body.split("\n" + SEP + "\n")
    assert parts[-1] == "", body[-200:]  # every sample is followed by the separator line
    return parts[:-1]


def test_samples_start_with_prompt_and_are_separated(trained):
    """num_samples samples, each the prompt then max_new_tokens characters of the char-level vocab,
    each followed by the separator line; the meta.pkl of the run's dataset decodes them."""
    out, meta = trained
    p = sample(out, start="ROMEO:", num_samples=3, max_new_tokens=20)
    assert p.returncode == 0, explain(p)
    assert "Loading meta from" in p.stdout and "meta.pkl" in p.stdout
    got = samples_of(p.stdout)
    assert len(got) == 3
    for s in got:
        assert s.startswith("ROMEO:") and len(s) == len("ROMEO:") + 20
        assert set(s) <= set(meta["stoi"])
    assert len(set(got)) > 1  # samples differ from one another


def test_prompt_from_file(trained, tmp_path):
    """--start=FILE:path reads the prompt from a file."""
    out, _ = trained
    prompt = "JULIET:\nO Romeo, Romeo"
    (tmp_path / "prompt.txt").write_text(prompt, encoding="utf-8")
    p = sample(out, start=f"FILE:{tmp_path / 'prompt.txt'}", num_samples=2, max_new_tokens=5)
    assert p.returncode == 0, explain(p)
    got = samples_of(p.stdout)
    assert len(got) == 2 and all(s.startswith(prompt) and len(s) == len(prompt) + 5 for s in got)


def test_same_seed_same_text(trained):
    """Sampling is a function of the seed: the same seed gives the same text, another seed other text."""
    out, _ = trained
    a, b, c = (sample(out, start="KING:", seed=s, num_samples=2) for s in (11, 11, 12))
    assert a.returncode == b.returncode == c.returncode == 0, explain(a)
    assert samples_of(a.stdout) == samples_of(b.stdout) != samples_of(c.stdout)


@pytest.mark.parametrize("n_new,extra", [(BLOCK - 8, {}), (BLOCK - 8, dict(temperature=0.01)), (3 * BLOCK, {})],
                         ids=["t0.8", "t0.01", "past-block"])
def test_cache_does_not_change_the_text(trained, n_new, extra):
    """--use_cache=False gives the same text as --use_cache=True with the same seed, within
    block_size and past it."""
    out, _ = trained
    kw = dict(start="ROMEO:", max_new_tokens=n_new, num_samples=2, **extra)
    a, b = sample(out, use_cache=True, **kw), sample(out, use_cache=False, **kw)
    assert a.returncode == 0 and b.returncode == 0, explain(a) + explain(b)
    assert samples_of(a.stdout) == samples_of(b.stdout)


def test_missing_checkpoint_exits(tmp_path):
    """No ckpt.pt in out_dir: a clean non-zero exit that says so."""
    p = sample(tmp_path / "empty")
    assert p.returncode != 0 and "no checkpoint" in p.stderr and "Traceback" not in p.stderr, explain(p)


def test_unknown_config_key_exits(trained):
    """An unknown --key: a clean non-zero exit naming it."""
    out, _ = trained
    p = sample(out, foo=1)
    assert p.returncode != 0 and "foo" in p.stderr and "Traceback" not in p.stderr, explain(p)


@pytest.mark.parametrize("opt,needle", [(dict(num_samples=0), "num_samples=0"), (dict(top_k=0), "top_k=0"),
                                        (dict(top_p=0.0), "top_p=0.0"), (dict(temperature=-1.0), "temperature=-1.0")])
def test_bad_sampling_values_exit_naming_them(trained, opt, needle):
    """Sampling settings out of range: a clean non-zero exit naming the value."""
    out, _ = trained
    p = sample(out, **opt)
    assert p.returncode != 0 and needle in p.stderr and "Traceback" not in p.stderr, explain(p)


def test_prompt_with_unknown_characters_exits(trained):
    """A prompt with characters outside the char-level vocab: a clean error naming them."""
    out, _ = trained
    p = sample(out, start="héllo\u20ac")
    assert p.returncode != 0 and "\u20ac" in p.stderr and "Traceback" not in p.stderr, explain(p)


def test_attn_impl_is_chosen_at_sampling_time(trained, tmp_path):
    """--attn_impl=torch and auto give the same text; a checkpoint from before attn_impl became a
    run-time choice (model_args holding it) still loads; a bad value exits naming it."""
    out, _ = trained
    old = tmp_path / "old"
    shutil.copytree(out, old)
    ck = torch.load(old / "ckpt.pt", map_location="cpu", weights_only=False)
    ck["model_args"]["attn_impl"] = "triton"
    torch.save(ck, old / "ckpt.pt")
    a, b = sample(out, attn_impl="torch"), sample(old, attn_impl="auto")
    assert a.returncode == 0 and b.returncode == 0, explain(a) + explain(b)
    assert samples_of(a.stdout) == samples_of(b.stdout)
    p = sample(out, attn_impl="fast")
    assert p.returncode != 0 and "attn_impl='fast'" in p.stderr and "Traceback" not in p.stderr, explain(p)
    assert "corrupt" not in p.stderr


def test_checkpoint_whose_weights_do_not_fit_its_model_exits(trained, tmp_path):
    """model_args and weights that disagree (a weight missing): a clean exit calling it corrupt."""
    out, _ = trained
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    ck = torch.load(bad / "ckpt.pt", map_location="cpu", weights_only=False)
    ck["model"].pop(next(iter(ck["model"])))
    torch.save(ck, bad / "ckpt.pt")
    p = sample(bad)
    assert p.returncode != 0 and "corrupt" in p.stderr and "Traceback" not in p.stderr, explain(p)


def test_corrupt_checkpoint_exits(tmp_path):
    """Garbage in ckpt.pt: a clean non-zero exit that says the checkpoint is unreadable."""
    (tmp_path / "ckpt.pt").write_bytes(bytes(range(256)) * 8)
    p = sample(tmp_path)
    assert p.returncode != 0 and "corrupt" in p.stderr and "Traceback" not in p.stderr, explain(p)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda_exits_naming_the_device(trained):
    """--device=cuda without CUDA: a clean exit that names the device, not one blaming the checkpoint."""
    out, _ = trained
    p = sample(out, device="cuda")
    assert p.returncode != 0 and "Traceback" not in p.stderr, explain(p)
    assert "corrupt" not in p.stderr and "cuda" in p.stderr.lower(), explain(p)
