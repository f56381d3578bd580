"""
FineWeb-Edu (Hugging Face HuggingFaceFW/fineweb-edu), GPT-2 BPE with EOT after each document, in
shards of --shard_size tokens as llm.c / modded-nanogpt write them: the first shard is
val_000000.bin, then train_000001.bin, train_000002.bin, ... (raw uint16, no header).

    python data/fineweb/prepare.py [--name sample-10BT] [--streaming] [--shard_size 100000000] [--num_proc N]
    python data/fineweb/prepare.py --input FILE [FILE ...] [--doc_sep SEP]   # local text instead

sample-10BT is ~10B tokens, 100 shards, ~20 GB on disk (and the download in the Hugging Face cache,
unless --streaming). Needs `pip install datasets` (and tqdm for a progress bar). Local text (plain or
.gz) has its documents separated by --doc_sep (default three newlines; each file ends one).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402


def fineweb_docs(name, streaming, num_proc):
    """The documents of FineWeb-Edu's `name` subset, as strings."""
    try:
        from datasets import load_dataset
    except ImportError:
        common.die("FineWeb-Edu needs Hugging Face datasets: pip install datasets "
                   "(or give local text with --input FILE...)")
    if streaming:
        ds = load_dataset("HuggingFaceFW/fineweb-edu", name=name, split="train", streaming=True)
    else:
        ds = load_dataset("HuggingFaceFW/fineweb-edu", name=name, split="train", num_proc=num_proc)
    return (row["text"] for row in ds)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="sample-10BT", help="FineWeb-Edu subset: sample-10BT, sample-100BT, ...")
    p.add_argument("--streaming", action="store_true", help="stream the dataset instead of downloading it first")
    p.add_argument("--input", nargs="+", metavar="FILE", help="local text files instead of FineWeb-Edu")
    p.add_argument("--doc_sep", default="\\n\\n\\n", help=r"--input: document separator (default \n\n\n)")
    p.add_argument("--shard_size", type=int, default=10**8, help="tokens per shard (default 100M)")
    p.add_argument("--num_proc", type=int, default=os.cpu_count() or 1, help="tokenizer processes (default: all cores)")
    p.add_argument("--out_dir", default=os.path.dirname(os.path.abspath(__file__)),
                   help="default: this script's folder")
    args = p.parse_args()
    if args.shard_size < 1:
        p.error("--shard_size must be positive")

    if args.input:
        common.check_readable(args.input)
        sep = args.doc_sep.encode("latin-1", "backslashreplace").decode("unicode_escape")
        docs = common.read_docs(args.input, sep)
    else:
        docs = fineweb_docs(args.name, args.streaming, args.num_proc)
    os.makedirs(args.out_dir, exist_ok=True)
    written = common.write_shards(docs, args.out_dir, args.shard_size, args.num_proc)
    if not written:
        common.die("no text to tokenize")
    counts = {"val": written[0][1], "train": sum(n for _, n in written[1:])}
    if len(written) == 1:
        print(f"warning: all {counts['val']:,} tokens went to val_000000.bin and none to train: "
              f"use a smaller --shard_size", file=sys.stderr)
    paths = [path for path, _ in written]
    common.summary(counts, common.gpt2().n_vocab, paths if len(paths) <= 3 else [paths[0], "...", paths[-1]])


if __name__ == "__main__":
    main()
