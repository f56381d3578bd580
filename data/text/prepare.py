"""
Any local text (UTF-8, plain or .gz) -> train.bin / val.bin [/ test.bin], GPT-2 BPE or characters.

    python data/text/prepare.py --input FILE [FILE ...] [--val_fraction 0.1]    # val: the tail
    python data/text/prepare.py --train FILE... --val FILE... [--test FILE...]  # explicit splits
    python data/text/prepare.py --preset gutenberg [--with_test]   # $LOCAL_DATA_DIR/gutenberg/*.txt.gz
      common options: [--tokenizer gpt2|char] [--out_dir DIR] [--num_proc N] [--doc_sep SEP]

gpt2: documents are separated by --doc_sep in the files (default three newlines; each file ends one)
and get an EOT token after each; files are streamed and encoded on --num_proc processes. The
Gutenberg preset uses four newlines: its books end with a newline, are joined by three, and have runs
of three newlines inside. char: the files' text concatenated as is, vocabulary of all of them,
meta.pkl written (nanoGPT's). With --input, val is the last --val_fraction of the tokens.
"""
import argparse
import os
import pickle
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402


def char_vocab(paths):
    chars = set()
    for path in paths:
        for block in common.read_blocks(path):
            chars.update(block)
    chars = sorted(chars)
    assert len(chars) < 2**16, f"{len(chars)} distinct characters do not fit uint16"
    return chars


def token_stream(paths, args, chars):
    """Token arrays of the files, in order."""
    if args.tokenizer == "gpt2":
        yield from common.tokenize(common.read_docs(paths, args.doc_sep), args.num_proc)
        return
    codes = np.array([ord(c) for c in chars])  # sorted, so a code's id is its index
    for path in paths:
        for block in common.read_blocks(path):
            yield np.searchsorted(codes, np.frombuffer(block.encode("utf-32-le"), dtype=np.uint32)).astype(np.uint16)


def write_stream(f, stream):
    n = 0
    for ids in stream:
        ids.tofile(f)
        n += len(ids)
    return n


def write_split(path, stream):
    with common.atomic_open(path) as f:
        return write_stream(f, stream)


def write_tail_split(train_path, val_path, stream, val_fraction):
    """All tokens to train_path; then its last val_fraction moves to val_path (copied, then truncated)."""
    with common.atomic_open(train_path) as f:
        n = write_stream(f, stream)
        if n == 0:
            common.die("the input has no text")
        f.flush()
        k = int(n * (1 - val_fraction))
        tokens = np.memmap(f.name, dtype=np.uint16, mode="r", shape=(n,))
        with common.atomic_open(val_path) as g:
            for i in range(k, n, 1 << 24):
                tokens[i:min(i + (1 << 24), n)].tofile(g)
        del tokens
        f.truncate(2 * k)
    return k, n - k


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", nargs="+", metavar="FILE", help="text files; val is their tail")
    p.add_argument("--val_fraction", type=float, default=0.1, help="with --input (default 0.1)")
    p.add_argument("--train", nargs="+", metavar="FILE", help="train files (with --val)")
    p.add_argument("--val", nargs="+", metavar="FILE", help="val files (with --train)")
    p.add_argument("--test", nargs="+", metavar="FILE", help="optional test files -> test.bin")
    p.add_argument("--preset", choices=["gutenberg"], help="train/val from $LOCAL_DATA_DIR/gutenberg")
    p.add_argument("--with_test", action="store_true", help="--preset: also write the held-out test.bin")
    p.add_argument("--tokenizer", choices=["gpt2", "char"], default="gpt2")
    p.add_argument("--out_dir", default=os.path.dirname(os.path.abspath(__file__)),
                   help="default: this script's folder")
    p.add_argument("--num_proc", type=int, default=os.cpu_count() or 1, help="processes for gpt2 (default: all cores)")
    p.add_argument("--doc_sep", help=r"document separator, backslash escapes allowed (default \n\n\n; "
                                     r"gutenberg: \n\n\n\n; '' for none)")
    args = p.parse_args()

    if sum(x is not None for x in (args.input, args.train, args.preset)) != 1:
        p.error("give one of --input FILE..., --train FILE... --val FILE..., --preset gutenberg")
    if (args.train is None) != (args.val is None):
        p.error("--train and --val go together")
    if args.with_test and not args.preset:
        p.error("--with_test goes with --preset (otherwise give --test FILE...)")
    if args.preset and args.test:
        p.error("--preset takes its test split with --with_test, not --test")
    if not 0 < args.val_fraction < 1:
        p.error("--val_fraction must be between 0 and 1")
    if args.preset:
        root = os.environ.get("LOCAL_DATA_DIR")
        if not root:
            common.die("--preset gutenberg reads $LOCAL_DATA_DIR/gutenberg/{train,val,test}.txt.gz: set LOCAL_DATA_DIR")
        path = lambda split: os.path.join(root, "gutenberg", f"{split}.txt.gz")  # noqa: E731
        args.train, args.val = [path("train")], [path("val")]
        args.test = [path("test")] if args.with_test else None
    if args.doc_sep is None:
        args.doc_sep = "\n\n\n\n" if args.preset else "\n\n\n"
    else:  # "\n" typed in a shell arrives as backslash + n
        args.doc_sep = args.doc_sep.encode("latin-1", "backslashreplace").decode("unicode_escape")

    splits = {"train": args.train, "val": args.val} if args.train else {"all": args.input}
    if args.test:
        splits["test"] = args.test
    all_paths = [f for files in splits.values() for f in files]
    common.check_readable(all_paths)
    os.makedirs(args.out_dir, exist_ok=True)
    out = {s: os.path.join(args.out_dir, f"{s}.bin") for s in ("train", "val", "test")}

    if args.tokenizer == "char":
        chars = char_vocab(all_paths)
        vocab_size = len(chars)
    else:
        chars, vocab_size = None, common.gpt2().n_vocab
    counts = {}
    for split, files in splits.items():
        print(f"tokenizing {split}: {', '.join(files)}")
        if split == "all":
            stream = token_stream(files, args, chars)
            counts["train"], counts["val"] = write_tail_split(out["train"], out["val"], stream, args.val_fraction)
        else:
            counts[split] = write_split(out[split], token_stream(files, args, chars))
    paths = [out[s] for s in counts]
    if chars:
        paths.append(os.path.join(args.out_dir, "meta.pkl"))
        with common.atomic_open(paths[-1]) as f:
            pickle.dump({"vocab_size": vocab_size, "itos": dict(enumerate(chars)),
                         "stoi": {c: i for i, c in enumerate(chars)}}, f)
    common.summary(counts, vocab_size, paths)


if __name__ == "__main__":
    main()
