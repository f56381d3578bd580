"""
Helpers shared by the data/*/prepare.py scripts: atomic writes, finding and reading the input text,
GPT-2 BPE over several processes, and the shard writer. A script imports this file by putting its
parent folder (data/) on sys.path, so every script also runs as `python data/<name>/prepare.py`.

Token files are raw little-endian uint16 ids, no header (nanoGPT's train.bin / val.bin), or shards
val_000000.bin, train_000001.bin, ... of the same format.
"""
import functools
import gzip
import os
import re
import sys
import urllib.request
import zlib
from collections import deque
from contextlib import contextmanager

import numpy as np

EOT = 50256  # GPT-2's <|endoftext|>, written after each document
READ_ERRORS = (OSError, EOFError, UnicodeDecodeError, zlib.error)


def die(msg):
    """A clear one-line error and exit code 1, no traceback."""
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def reason(e):
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


# -----------------------------------------------------------------------------
# atomic writes: <file>.tmp, then os.replace, so an interrupted run never leaves a half-written file

@contextmanager
def atomic_open(path):
    """Open path + '.tmp' for binary writing; rename it to path on success, remove it on any error."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_tokens(path, ids):
    """Write token ids as raw uint16, atomically; returns how many."""
    ids = np.asarray(ids)
    assert ids.size == 0 or (ids.min() >= 0 and ids.max() < 2**16), "token ids must fit uint16"
    with atomic_open(path) as f:
        ids.astype(np.uint16).tofile(f)
    return len(ids)


def summary(counts, vocab_size, paths):
    """The last line of every script: tokens per split, vocab size, output paths."""
    splits = ", ".join(f"{split} {n:,} tokens" for split, n in counts.items())
    print(f"done: {splits}; vocab_size {vocab_size:,} -> {', '.join(map(str, paths))}")


# -----------------------------------------------------------------------------
# input: a path given, a local mirror ($LOCAL_DATA_DIR), a copy already in out_dir, or a download

def find_input(given, rel, out_dir, url):
    """--input PATH; else $LOCAL_DATA_DIR/rel; else out_dir/input.txt if there; else download url there."""
    if given:
        return given
    if os.environ.get("LOCAL_DATA_DIR"):
        return os.path.join(os.environ["LOCAL_DATA_DIR"], rel)
    path = os.path.join(out_dir, "input.txt")
    if not os.path.exists(path):
        print(f"downloading {url}")
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                data = r.read()
        except Exception as e:  # URLError, timeouts, HTTP errors: all mean "could not download"
            die(f"could not download {url} ({reason(getattr(e, 'reason', e))}). Offline? Give the file with "
                f"--input PATH, or set LOCAL_DATA_DIR to a folder holding {rel}")
        with atomic_open(path) as f:
            f.write(data)
    return path


def open_text(path):
    """A UTF-8 text file, gzip-compressed if its name ends in .gz."""
    path = str(path)
    return gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8")


def read_text(path):
    try:
        with open_text(path) as f:
            return f.read()
    except READ_ERRORS as e:
        die(f"cannot read {path}: {reason(e)}")


def check_readable(paths):
    """Fail early, before any work, on a path that cannot be opened and read."""
    for path in paths:
        try:
            with open_text(path) as f:
                f.read(1)
        except READ_ERRORS as e:
            die(f"cannot read {path}: {reason(e)}")


def read_blocks(path, size=1 << 20):
    """The text of a file in blocks of `size` characters, without holding it all."""
    try:
        with open_text(path) as f:
            while block := f.read(size):
                yield block
    except READ_ERRORS as e:
        die(f"cannot read {path}: {reason(e)}")


# Where a text may be cut with GPT-2 BPE giving the same tokens: after a non-space character followed
# by a space or newline. No pretoken of GPT-2's regex spans such a point and the regex looks behind
# nothing, so the tokens of the two parts are the tokens of the whole.
_CUT = re.compile(r"\S(?=[ \n])")


def cut_point(text, end):
    """The last safe cut point at or before `end` (0 if none)."""
    for start in (max(0, end - 65536), 0):
        last = None
        for last in _CUT.finditer(text, start, end):
            pass
        if last:
            return last.end()
    return 0


def read_docs(paths, sep="\n\n\n", block=1 << 20):
    """
    (text, ends_doc) pieces of the documents of text files, streamed. Documents are separated by `sep`
    (dropped; "" for none) and end with each file; empty ones are skipped. A document longer than
    `block` characters comes in pieces cut where BPE does not care (ends_doc False but on the last).
    """
    for path in paths:
        carry, open_doc = "", False  # open_doc: a piece of the current document was already given
        for text in read_blocks(path, block):
            parts = (carry + text).split(sep) if sep else [carry + text]
            carry = parts.pop()
            for doc in parts:
                if doc or open_doc:
                    yield doc, True
                open_doc = False
            if len(carry) > block:  # cut before any partial separator at its end
                i = cut_point(carry, len(carry) - len(sep) + 1)
                if i:
                    yield carry[:i], False
                    carry, open_doc = carry[i:], True
        if carry or open_doc:
            yield carry, True


def as_pieces(docs):
    """Documents as strings (or already (text, ends_doc) pieces) -> pieces."""
    for d in docs:
        if isinstance(d, str):
            if d:
                yield d, True
        else:
            yield d


# -----------------------------------------------------------------------------
# GPT-2 BPE (tiktoken), in order, over several processes

@functools.lru_cache(maxsize=None)
def gpt2():
    try:
        import tiktoken
        enc = tiktoken.get_encoding("gpt2")
    except ImportError:
        die("GPT-2 BPE needs tiktoken: pip install tiktoken")
    except Exception as e:  # offline, without its files cached
        die(f"could not load tiktoken's GPT-2 encoding ({reason(e)}). Offline? Set TIKTOKEN_CACHE_DIR to a "
            f"folder holding its files")
    assert enc.n_vocab <= 2**16 and enc.eot_token == EOT
    return enc


def encode_gpt2(pieces):
    """A list of (text, ends_doc) -> uint16 ids, with EOT after each document's last piece."""
    enc, ids = gpt2(), []
    for text, ends_doc in pieces:
        ids += enc.encode_ordinary(text)
        if ends_doc:
            ids.append(EOT)
    return np.array(ids, dtype=np.uint16)


def batches(pieces, chars=1 << 20):
    """Group pieces into lists of about `chars` characters: one task for a worker."""
    batch, n = [], 0
    for p in pieces:
        batch.append(p)
        n += len(p[0])
        if n >= chars:
            yield batch
            batch, n = [], 0
    if batch:
        yield batch


def tokenize(pieces, num_proc=1, encode=encode_gpt2):
    """Token arrays of the pieces, in order, encoded on num_proc processes, holding few batches at once."""
    if num_proc <= 1:
        yield from map(encode, batches(pieces))
        return
    gpt2()  # load (or fail) here, before the workers start
    import multiprocessing as mp
    with mp.Pool(num_proc) as pool:
        pending = deque()  # apply_async with a bounded queue: pool.imap would read the whole input ahead
        for batch in batches(pieces):
            pending.append(pool.apply_async(encode, (batch,)))
            if len(pending) >= 2 * num_proc:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


# -----------------------------------------------------------------------------
# shards, as llm.c / modded-nanogpt: shard 0 is val_000000.bin, then train_000001.bin, train_000002.bin, ...

def write_shards(docs, out_dir, shard_size, num_proc=1):
    """
    Tokenize documents (strings, or (text, ends_doc) pieces as read_docs gives) with GPT-2 BPE and EOT
    after each, into shards of exactly shard_size tokens but the last; the first shard is validation.
    A document may straddle two shards. Removes stale shards of an earlier run. Returns [(path, n)].
    """
    try:
        from tqdm import tqdm
        bar = tqdm(unit="tok", unit_scale=True, desc="tokenizing")
        log = bar.write
    except ImportError:
        bar, log = None, print
    buf, fill, written = np.empty(shard_size, dtype=np.uint16), 0, []

    def flush():
        index = len(written)
        path = os.path.join(out_dir, f"{'val' if index == 0 else 'train'}_{index:06d}.bin")
        written.append((path, write_tokens(path, buf[:fill])))
        log(f"wrote {path} ({fill:,} tokens)")

    for ids in tokenize(as_pieces(docs), num_proc):
        if bar is not None:
            bar.update(len(ids))
        while len(ids):
            take = min(shard_size - fill, len(ids))
            buf[fill:fill + take] = ids[:take]
            fill, ids = fill + take, ids[take:]
            if fill == shard_size:
                flush()
                fill = 0
    if fill:
        flush()
    if bar is not None:
        bar.close()
    keep = {os.path.basename(p) for p, _ in written}
    for f in os.listdir(out_dir):
        if re.fullmatch(r"(train|val)_\d{6}\.bin", f) and f not in keep:
            os.remove(os.path.join(out_dir, f))
    return written
