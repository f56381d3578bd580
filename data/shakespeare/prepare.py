"""
Tiny Shakespeare, GPT-2 BPE (nanoGPT's shakespeare): the text is split 90/10, then each part is
encoded with tiktoken's "gpt2" (one document: no EOT). Expect 301,966 train and 36,059 val tokens.

    python data/shakespeare/prepare.py [--input PATH] [--out_dir DIR]

The text comes from --input, else $LOCAL_DATA_DIR/tinyshakespeare/input.txt, else input.txt in
out_dir, else it is downloaded there.
"""
import argparse
import os
import sys

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
    enc = common.gpt2()

    n = int(len(data) * 0.9)
    out = {split: os.path.join(args.out_dir, f"{split}.bin") for split in ("train", "val")}
    counts = {split: common.write_tokens(out[split], enc.encode_ordinary(text))
              for split, text in (("train", data[:n]), ("val", data[n:]))}
    common.summary(counts, enc.n_vocab, out.values())


if __name__ == "__main__":
    main()
