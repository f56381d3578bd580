"""The Gutenberg results table from train.py logs (results/gutenberg.sh writes them):
$ python results/gutenberg_table.py out-a/log.jsonl out-b/log.jsonl [--labels a b]
Per run (a missing or failed run gets a row saying so): the best val loss of training's evaluations (the checkpoint kept), then the final
evaluations of that checkpoint (eval_only events, which carry eval_block_size): val at each length
and the held-out test split."""
import argparse
import json


def summarize(path):
    train_evals, final = [], {}
    try:
        lines = open(path).readlines()
    except OSError:
        return None, {}
    for i, line in enumerate(lines, 1):
        try:
            e = json.loads(line)
        except json.JSONDecodeError as err:
            raise SystemExit(f"error: {path}:{i} is not a JSON line ({err.msg}): {line[:80]!r}")
        if e.get("event") != "eval":
            continue
        if "eval_block_size" in e:  # a final evaluation of the best checkpoint
            for split in ("val", "test"):
                if f"{split}_loss" in e:
                    final[(split, e["eval_block_size"])] = e[f"{split}_loss"]
        elif e.get("iter", 0) > 0:
            train_evals.append(e)
    if not train_evals:
        return None, final
    best = min(train_evals, key=lambda e: e["val_loss"])
    return best, final


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--labels", nargs="+")
    args = ap.parse_args(argv)
    labels = args.labels or args.logs
    if len(labels) != len(args.logs):
        raise SystemExit(f"error: {len(labels)} labels for {len(args.logs)} logs")
    rows = [(label, *summarize(p)) for label, p in zip(labels, args.logs)]
    lengths = sorted({t for _, _, f in rows for (s, t) in f if s == "val"})
    head = ["run", "best val in training (iter)"] + [f"val @{t}" for t in lengths] + ["test @T"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for label, best, final in rows:
        if best is None:  # a run that failed or was cut short: say so rather than drop the row
            print(f"| {label} | no evaluation from training (see its stdout.txt) |" + " |" * (len(head) - 2))
            continue
        tests = [v for (s, t), v in final.items() if s == "test"]
        cells = [label, f"{best['val_loss']:.4f} ({best['iter']})"]
        cells += [f"{final[('val', t)]:.4f}" if ("val", t) in final else "-" for t in lengths]
        cells.append(f"{tests[0]:.4f}" if tests else "-")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
