"""Tests of the data preparation scripts (data/*/prepare.py and data/common.py), run as a user runs them."""
import gzip
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import common  # data/common.py

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
SHAKESPEARE = SHARED / "data" / "tinyshakespeare" / "input.txt"
GUTENBERG = SHARED / "data" / "gutenberg"
if (SHARED / "tiktoken_cache").is_dir():  # offline machines: tiktoken's GPT-2 files, set before it loads
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(SHARED / "tiktoken_cache"))

EOT = 50256
needs_shakespeare = pytest.mark.skipif(not SHAKESPEARE.is_file(), reason=f"no {SHAKESPEARE}")
needs_gutenberg = pytest.mark.skipif(not (GUTENBERG / "val.txt.gz").is_file(), reason=f"no {GUTENBERG}")


def run(script, *args, env=None, ok=True):
    """python data/<script>/prepare.py ARGS from the repo root; LOCAL_DATA_DIR only when given in env."""
    env = {**{k: v for k, v in os.environ.items() if k != "LOCAL_DATA_DIR"}, **(env or {})}
    r = subprocess.run([sys.executable, f"data/{script}/prepare.py", *map(str, args)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    if ok:
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().splitlines()[-1].startswith("done: "), r.stdout
    return r


def tokens(path):
    return np.fromfile(path, dtype=np.uint16).tolist()


@pytest.fixture(scope="module")
def enc():
    import tiktoken
    return tiktoken.get_encoding("gpt2")


def bpe_docs(enc, text, sep="\n\n\n"):
    """The reference: each non-empty document's GPT-2 tokens, then EOT, encoded in this one process."""
    return [t for doc in text.split(sep) if doc for t in enc.encode_ordinary(doc) + [EOT]]


def random_text(seed, n):
    """Text with every kind of whitespace run GPT-2's pretokenizer cares about, and document separators."""
    rng = random.Random(seed)
    parts = ["the", "Quick", " fox", "'s", "don't", "1984", "!!", "?", "Été", "naïve", "日本語", "—", "\t",
             " ", "  ", "\n", "\n\n", " \n", "\n ", "\n\n\n", "\n\n\n\n"]
    return "".join(rng.choice(parts) + rng.choice(["", " "]) for _ in range(n))


def write(path, text):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        f.write(text)
    return path


@needs_shakespeare
def test_shakespeare_char(tmp_path):
    run("shakespeare_char", "--input", SHAKESPEARE, "--out_dir", tmp_path)
    text = SHAKESPEARE.read_text(encoding="utf-8")
    train, val = tokens(tmp_path / "train.bin"), tokens(tmp_path / "val.bin")
    assert (len(train), len(val)) == (1_003_854, 111_540)
    meta = pickle.loads((tmp_path / "meta.pkl").read_bytes())
    assert meta["vocab_size"] == 65 == len(meta["itos"]) == len(meta["stoi"])
    assert "".join(meta["itos"][i] for i in train + val) == text
    assert [meta["stoi"][c] for c in text[:1000]] == train[:1000]


@needs_shakespeare
def test_shakespeare_input_lookup(tmp_path):
    # $LOCAL_DATA_DIR/tinyshakespeare/input.txt
    run("shakespeare_char", "--out_dir", tmp_path / "a", env={"LOCAL_DATA_DIR": str(SHARED / "data")})
    assert len(tokens(tmp_path / "a" / "train.bin")) == 1_003_854
    # LOCAL_DATA_DIR set but without the file: a clear error naming the path
    r = run("shakespeare_char", "--out_dir", tmp_path / "c", env={"LOCAL_DATA_DIR": str(tmp_path / "none")}, ok=False)
    assert r.returncode == 1 and str(tmp_path / "none" / "tinyshakespeare" / "input.txt") in r.stderr
    # else input.txt already in out_dir (no download)
    (tmp_path / "b").mkdir()
    write(tmp_path / "b" / "input.txt", "To be, or not to be.\n" * 10)
    r = run("shakespeare_char", "--out_dir", tmp_path / "b")
    assert "downloading" not in r.stdout and len(tokens(tmp_path / "b" / "train.bin")) == 189


@needs_shakespeare
def test_shakespeare_bpe(tmp_path, enc):
    run("shakespeare", "--input", SHAKESPEARE, "--out_dir", tmp_path)
    text = SHAKESPEARE.read_text(encoding="utf-8")
    n = int(len(text) * 0.9)
    train, val = tokens(tmp_path / "train.bin"), tokens(tmp_path / "val.bin")
    assert train == enc.encode_ordinary(text[:n]) and val == enc.encode_ordinary(text[n:])
    assert (len(train), len(val)) == (301_966, 36_059)


def test_text_gz_and_plain(tmp_path, enc):
    a, b = random_text(0, 3000), random_text(1, 1000)
    fa, fb = write(tmp_path / "a.txt.gz", a), write(tmp_path / "b.txt", b)
    # explicit pair, characters
    run("text", "--train", fa, "--val", fb, "--tokenizer", "char", "--out_dir", tmp_path / "char")
    meta = pickle.loads((tmp_path / "char" / "meta.pkl").read_bytes())
    assert meta["vocab_size"] == len(set(a + b)) and sorted(meta["stoi"]) == list(meta["stoi"])
    decode = lambda path: "".join(meta["itos"][i] for i in tokens(path))  # noqa: E731
    assert decode(tmp_path / "char" / "train.bin") == a and decode(tmp_path / "char" / "val.bin") == b
    # explicit pair, GPT-2 BPE with EOT after each document
    run("text", "--train", fa, "--val", fb, "--out_dir", tmp_path / "bpe", "--num_proc", 2)
    assert tokens(tmp_path / "bpe" / "train.bin") == bpe_docs(enc, a)
    assert tokens(tmp_path / "bpe" / "val.bin") == bpe_docs(enc, b)
    assert not (tmp_path / "bpe" / "meta.pkl").exists()
    # one stream, val its tail
    for tok, expect in (("gpt2", bpe_docs(enc, a) + bpe_docs(enc, b)), ("char", None)):
        out = tmp_path / f"tail_{tok}"
        run("text", "--input", fa, fb, "--val_fraction", 0.25, "--tokenizer", tok, "--out_dir", out)
        train, val = tokens(out / "train.bin"), tokens(out / "val.bin")
        if expect is None:
            expect = [meta["stoi"][c] for c in a + b]
        assert train + val == expect and len(train) == int(len(expect) * 0.75)


def test_text_gutenberg_preset_layout(tmp_path):
    """--preset gutenberg reads $LOCAL_DATA_DIR/gutenberg; its held-out test split only with --with_test."""
    root = tmp_path / "corpora" / "gutenberg"
    root.mkdir(parents=True)
    for split in ("train", "val", "test"):
        write(root / f"{split}.txt.gz", f"{split} book one.\n\n\n\n{split} book two.\n")
    env = {"LOCAL_DATA_DIR": str(tmp_path / "corpora")}
    run("text", "--preset", "gutenberg", "--out_dir", tmp_path / "a", env=env)
    assert tokens(tmp_path / "a" / "val.bin").count(EOT) == 2 and not (tmp_path / "a" / "test.bin").exists()
    run("text", "--preset", "gutenberg", "--with_test", "--out_dir", tmp_path / "b", env=env)
    assert tokens(tmp_path / "b" / "test.bin").count(EOT) == 2
    r = run("text", "--preset", "gutenberg", "--out_dir", tmp_path / "c", ok=False)  # no LOCAL_DATA_DIR
    assert r.returncode == 1 and "LOCAL_DATA_DIR" in r.stderr and "Traceback" not in r.stderr


def test_shards(tmp_path, enc):
    text = random_text(2, 4000)
    path = write(tmp_path / "docs.txt", text)
    out = tmp_path / "out"
    out.mkdir()
    (out / "train_000099.bin").write_bytes(b"\0\0" * 10)  # a stale shard of an earlier run
    run("fineweb", "--input", path, "--shard_size", 700, "--num_proc", 2, "--out_dir", out)
    files = sorted(p.name for p in out.iterdir())
    n = len(files)
    assert files == ["train_%06d.bin" % i for i in range(1, n)] + ["val_000000.bin"] and n > 3
    shards = [tokens(out / f) for f in files[-1:] + files[:-1]]  # val first
    assert sum(shards, []) == bpe_docs(enc, text)
    assert all(len(s) == 700 for s in shards[:-1]) and 0 < len(shards[-1]) <= 700


def test_write_shards_of_strings(tmp_path, enc):
    """The core FineWeb uses: any iterable of document strings."""
    docs = [f"document {i}: " + "word " * i for i in range(30)]
    written = common.write_shards(iter(docs), str(tmp_path), shard_size=50, num_proc=1)
    assert [os.path.basename(p) for p, _ in written][:2] == ["val_000000.bin", "train_000001.bin"]
    assert sum((tokens(p) for p, _ in written), []) == [t for d in docs for t in enc.encode_ordinary(d) + [EOT]]
    assert max(n for _, n in written) == 50


@pytest.mark.parametrize("block", [7, 64, 1000])
def test_streamed_pieces_keep_bpe(tmp_path, enc, block):
    """Reading in blocks, and cutting long documents, gives the tokens of the whole documents."""
    text = random_text(3, 3000)
    path = write(tmp_path / "t.txt", text)
    pieces = list(common.read_docs([path], "\n\n\n", block=block))
    assert "".join(t for t, _ in pieces) == "".join(text.split("\n\n\n"))
    got = np.concatenate(list(common.tokenize(pieces, num_proc=1))).tolist()
    assert got == bpe_docs(enc, text)
    # one document, no separator: cut at many places, same tokens as the whole
    pieces = list(common.read_docs([path], "", block=block))
    assert len(pieces) > len(text) // (4 * block)
    assert np.concatenate(list(common.tokenize(pieces))).tolist() == enc.encode_ordinary(text) + [EOT]


@pytest.mark.parametrize("script,args", [
    ("shakespeare_char", ["--input"]), ("shakespeare", ["--input"]), ("text", ["--input"]),
    ("text", ["--tokenizer", "char", "--input"]), ("text", ["--train", "GOOD", "--val"]), ("fineweb", ["--input"]),
])
def test_missing_input(tmp_path, script, args):
    good = write(tmp_path / "good.txt", "some text\n")
    missing = tmp_path / "no such dir" / "input.txt"
    r = run(script, *[good if a == "GOOD" else a for a in args], missing, "--out_dir", tmp_path / "out", ok=False)
    assert r.returncode == 1, r.stderr
    assert str(missing) in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1
    assert not any((tmp_path / "out").glob("*.bin"))


def test_unreadable_input(tmp_path):
    bad_gz = tmp_path / "bad.txt.gz"
    bad_gz.write_bytes(b"this is not gzip data")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    for path in (bad_gz, latin1, tmp_path):  # not gzip, not UTF-8, a directory
        r = run("text", "--input", path, "--out_dir", tmp_path / "out", ok=False)
        assert r.returncode == 1 and str(path) in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run("text", "--input", latin1, "--no_such_option", ok=False)
    assert r.returncode == 2 and "unrecognized arguments: --no_such_option" in r.stderr


def test_atomic_write(tmp_path):
    path = tmp_path / "train.bin"
    assert common.write_tokens(path, [1, 2, 50256]) == 3 and tokens(path) == [1, 2, 50256]
    for interrupt in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(interrupt):  # an interrupted rewrite keeps the old file, leaves no .tmp
            with common.atomic_open(path) as f:
                f.write(b"\x07\x00" * 1000)
                raise interrupt()
        assert tokens(path) == [1, 2, 50256] and not (tmp_path / "train.bin.tmp").exists()
    new = tmp_path / "val.bin"
    with pytest.raises(RuntimeError):  # an interrupted first write leaves nothing
        with common.atomic_open(new) as f:
            f.write(b"\x07\x00" * 1000)
            raise RuntimeError()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.bin"]
    with pytest.raises(AssertionError):  # ids must fit uint16
        common.write_tokens(new, [70000])


@needs_gutenberg
def test_gutenberg_val_multiprocess(tmp_path, enc):
    """The real Gutenberg val file (17 Poe books) through the preset on 2 processes, against one process."""
    root = tmp_path / "corpora" / "gutenberg"
    root.mkdir(parents=True)
    (root / "train.txt.gz").symlink_to(GUTENBERG / "val.txt.gz")  # the real file, as the train split
    write(root / "val.txt.gz", "a tiny val book\n")
    run("text", "--preset", "gutenberg", "--num_proc", 2, "--out_dir", tmp_path / "out",
        env={"LOCAL_DATA_DIR": str(tmp_path / "corpora")})
    got = tokens(tmp_path / "out" / "train.bin")
    assert 1_250_000 < len(got) < 1_350_000  # the README says ~1.29M
    with gzip.open(GUTENBERG / "val.txt.gz", "rt", encoding="utf-8") as f:
        text = f.read()
    assert got == bpe_docs(enc, text, sep="\n\n\n\n")
    assert got.count(EOT) == 17  # one per book (gutenberg/manifest.tsv)


def test_fineweb_through_datasets(tmp_path, enc):
    """The Hugging Face path, with a stand-in `datasets` module (no internet here)."""
    fake = tmp_path / "fake" / "datasets"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "def load_dataset(path, name=None, split=None, streaming=False, num_proc=None):\n"
        "    assert (path, name, split, streaming) == ('HuggingFaceFW/fineweb-edu', 'sample-10BT', 'train', True)\n"
        "    return ({'text': f'web page {i}. ' * (i % 7 + 1), 'id': i} for i in range(200))\n")
    run("fineweb", "--streaming", "--shard_size", 1000, "--num_proc", 2, "--out_dir", tmp_path / "out",
        env={"PYTHONPATH": str(tmp_path / "fake")})
    docs = [f"web page {i}. " * (i % 7 + 1) for i in range(200)]
    files = sorted((tmp_path / "out").glob("train_*.bin"))
    assert len(files) > 1 and files[0].name == "train_000001.bin"
    expect = [t for d in docs for t in enc.encode_ordinary(d) + [EOT]]
    assert sum(map(tokens, [tmp_path / "out" / "val_000000.bin", *files]), []) == expect
    import importlib.util
    if importlib.util.find_spec("datasets") is None:  # without datasets: say how to get it
        r = run("fineweb", "--out_dir", tmp_path / "out2", ok=False)
        assert r.returncode == 1 and "pip install datasets" in r.stderr and "Traceback" not in r.stderr
