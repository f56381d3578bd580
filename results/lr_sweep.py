"""Issue 12's learning-rate sweep: best val loss per arm and learning rate, mean over the seeds
present; a markdown table and, with matplotlib, a plot of best val loss against the learning rate.
Reads train.py logs named ARM_lrLR[-sSEED].jsonl in a folder (results/gutenberg/lr_sweep/), or the
out dirs that results/gutenberg.sh's NAME@LR runs write (out-gutenberg-ARM-lrLR[-sSEED]/log.jsonl):
$ python results/lr_sweep.py results/gutenberg/lr_sweep [--out results/gutenberg/lr_sweep.png]
$ python results/lr_sweep.py OUT_ROOT   # after ONLY="sigmoid@2e-3 ..." OUT_ROOT=... bash results/gutenberg.sh"""
import argparse
import collections
import glob
import os
import re

from gutenberg_table import summarize  # the best of training's evaluations, as the results table reads it


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--out", default=None, help="plot file (png); none: the table only")
    args = ap.parse_args()
    runs = collections.defaultdict(list)  # (arm, lr) -> [best val per seed]
    logs = [(p, os.path.basename(p)[:-len(".jsonl")]) for p in glob.glob(os.path.join(args.dir, "*_lr*.jsonl"))]
    logs += [(p, os.path.basename(os.path.dirname(p))[len("out-gutenberg-"):].replace("-lr", "_lr", 1))
             for p in glob.glob(os.path.join(args.dir, "out-gutenberg-*-lr*", "log.jsonl"))]
    for path, name in sorted(logs):
        m = re.fullmatch(r"(.+)_lr([0-9.e-]+?)(?:-s(\d+))?", name)
        if m and (best := summarize(path)[0]) is not None:
            runs[m[1], float(m[2])].append(best["val_loss"])
    arms = sorted({a for a, _ in runs})
    lrs = sorted({lr for _, lr in runs})
    mean = {key: sum(v) / len(v) for key, v in runs.items()}
    pair = len(arms) == 2  # two arms: a column of their difference
    head = ["lr", *arms] + (["difference"] if pair else [])
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for lr in lrs:
        cells = [f"{lr:g}"] + [f"{mean[a, lr]:.4f}" + (f" ({len(runs[a, lr])} seeds)" if len(runs[a, lr]) > 1 else "")
                               if (a, lr) in mean else "" for a in arms]
        if pair:
            both = all((a, lr) in mean for a in arms)
            cells.append(f"{mean[arms[0], lr] - mean[arms[1], lr]:+.4f}" if both else "")
        print("| " + " | ".join(cells) + " |")
    for a in arms:
        lr = min((lr for b, lr in mean if b == a), key=lambda lr: mean[a, lr])
        print(f"best {a}: lr {lr:g}, val {mean[a, lr]:.4f}")
    if args.out:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        for a in arms:
            xs = [lr for lr in lrs if (a, lr) in mean]
            ax.plot(xs, [mean[a, lr] for lr in xs], marker="o", label=a)
        ax.set_xscale("log")
        ax.set_xlabel("peak learning rate")
        ax.set_ylabel("best val loss")
        ax.set_title(f"learning-rate sweep ({os.path.basename(os.path.normpath(args.dir))})")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out, dpi=120)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
