"""
Tiny Shakespeare, character level (nanoGPT's shakespeare_char): train.bin, val.bin (first 90% / last
10% of the text) and meta.pkl with the vocabulary. Expect 1,003,854 train and 111,540 val tokens,
vocab_size 65.

    python data/shakespeare_char/prepare.py [--input PATH] [--out_dir DIR]

The text comes from --input, else $LOCAL_DATA_DIR/tinyshakespeare/input.txt, else input.txt in
out_dir, else it is downloaded there.
"""
import argparse
import os
import pickle
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402

URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", help="the text file (default: see above)")
    p.add_argument("--out_dir", default=os.path.dirname(os.path.abspath(__file__)),
                   help="default: this script's folder")
    args = p.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    data = common.read_text(common.find_input(args.input, "tinyshakespeare/input.txt", args.out_dir, URL))
    if not data:
        common.die(f"{args.input or 'the input'} is empty")

    chars = sorted(set(data))
    assert len(chars) < 2**16, f"{len(chars)} distinct characters do not fit uint16"
    stoi = {ch: i for i, ch in enumerate(chars)}
    itos = {i: ch for i, ch in enumerate(chars)}
    n = int(len(data) * 0.9)
    out = {split: os.path.join(args.out_dir, f"{split}.bin") for split in ("train", "val")}
    counts = {split: common.write_tokens(out[split], np.array([stoi[c] for c in text], dtype=np.uint16))
              for split, text in (("train", data[:n]), ("val", data[n:]))}
    meta = os.path.join(args.out_dir, "meta.pkl")
    with common.atomic_open(meta) as f:
        pickle.dump({"vocab_size": len(chars), "itos": itos, "stoi": stoi}, f)
    common.summary(counts, len(chars), [out["train"], out["val"], meta])


if __name__ == "__main__":
    main()
