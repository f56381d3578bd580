"""
Loss curves from train.py's logs (matplotlib, an optional dependency):
$ python plot.py out-a/log.jsonl out-b/log.jsonl --out=curves.png [--labels sigmoid softmax] [--metric=val_loss]
metric: val_loss or train_loss (eval events), loss (train events), or attn_out_rms (mean over layers,
from --log_attn_norm=True runs). The x axis is tokens seen. --table also prints a markdown table of
each log's best and last value of the metric.
"""

import argparse
import json
import sys


def read_series(path, metric):
    xs, ys = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                raise SystemExit(f"error: {path}:{n} is not JSON")
            v = e.get(metric)
            if v is None:
                continue
            xs.append(e["tokens"])
            ys.append(sum(v) / len(v) if isinstance(v, list) else v)
    if not xs:
        raise SystemExit(f"error: {path} has no {metric!r} values")
    return xs, ys


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logs", nargs="+", help="log.jsonl files")
    ap.add_argument("--out", default="curves.png")
    ap.add_argument("--labels", nargs="+", default=None, help="one per log")
    ap.add_argument("--metric", default="val_loss", choices=("val_loss", "train_loss", "loss", "attn_out_rms"))
    ap.add_argument("--title", default=None)
    ap.add_argument("--table", action="store_true", help="print each log's best and last value")
    ap.add_argument("--logy", action="store_true")
    ap.add_argument("--ylim", nargs=2, type=float, default=None, metavar=("LO", "HI"))
    args = ap.parse_args(argv)
    labels = args.labels if args.labels else [p.rsplit("/", 2)[-2] if "/" in p else p for p in args.logs]
    if len(labels) != len(args.logs):
        raise SystemExit(f"error: {len(labels)} labels for {len(args.logs)} logs")
    series = [read_series(path, args.metric) for path in args.logs]
    if args.table:
        print(f"| run | best {args.metric} (tokens) | last {args.metric} (tokens) |\n|---|---|---|")
        for label, (xs, ys) in zip(labels, series):
            i = min(range(len(ys)), key=ys.__getitem__)
            print(f"| {label} | {ys[i]:.4f} ({xs[i]:,}) | {ys[-1]:.4f} ({xs[-1]:,}) |")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("error: plot.py needs matplotlib: pip install matplotlib")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (xs, ys), label in zip(series, labels):
        ax.plot(xs, ys, label=label, marker="." if len(xs) < 50 else None)
    ax.set_xlabel("tokens")
    ax.set_ylabel(args.metric)
    if args.logy:
        ax.set_yscale("log")
    if args.ylim:
        ax.set_ylim(*args.ylim)
    ax.set_title(args.title or args.metric)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
