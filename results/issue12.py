"""Issue 12 (does sigmoid match softmax on equal footing?): its tables and plots from the train.py logs in
results/gutenberg/lr_sweep/ (the sweep and the tuned LR's seeds) and results/gutenberg/issue12/ (the
controls, the 12 x 768 rows, the seed-1337 reruns whose checkpoints were evaluated on test).
$ python results/issue12.py [--plots]     # markdown tables; --plots writes results/gutenberg/issue12_*.png
Numbers: best val of training's evaluations (half of val, as everywhere in the Gutenberg study), then the
final evaluation of that checkpoint on all of val and on test at T (only the final rows have one)."""
import argparse
import json
import os
import statistics

from gutenberg_table import summarize

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gutenberg")
SWEEP, RUNS = os.path.join(HERE, "lr_sweep"), os.path.join(HERE, "issue12")


def tuned(arm):  # lr 4e-3, the best of both arms' sweeps: the seed-1337 rerun (evaluated on test), 1338, 1339
    return [os.path.join(RUNS, f"{arm}-s1337.jsonl")] + [os.path.join(SWEEP, f"{arm}_lr4e-3-s{s}.jsonl") for s in (1338, 1339)]


SEEDS3 = (1337, 1338, 1339)


def runs(name, seeds=(1337, 1338)):
    return [os.path.join(RUNS, f"{name}-s{s}.jsonl") for s in seeds]


ROWS = {  # label: (logs, the row it is compared with on the same seeds)
    "sigmoid recipe": (tuned("sigmoid"), None),
    "softmax, same recipe": (tuned("softmax_alibi"), "sigmoid recipe"),
    "softmax, same recipe, pre-norm": (runs("softmax_prenorm"), "softmax, same recipe"),
    "sigmoid, warmup 300": (runs("warmup300"), "sigmoid recipe"),
    "sigmoid, LayerScale 1e-4 (run 21)": (runs("ls1e-4"), "sigmoid recipe"),
    "sigmoid, LayerScale 0.1": (runs("ls0.1"), "sigmoid recipe"),
    "sigmoid, attn_impl=torch": (runs("torchattn"), "sigmoid recipe"),
    "sigmoid, bias per head": (runs("perhead"), "sigmoid recipe"),
    "12x768 sigmoid recipe": (runs("scale_sigmoid"), None),
    "12x768 softmax, same recipe": (runs("scale_softmax_alibi"), "12x768 sigmoid recipe"),
    # run 22: 3x the steps (3000; 6.4 epochs of train, so val turns up after ~2200), and LayerScale 1e-4 at 3 seeds
    # on both arms, evaluated on test ("ls1e-4b": new runs of the same command; run 21's pair had no test)
    "sigmoid recipe, 3000 steps": (runs("long"), None),
    "softmax, same recipe, 3000 steps": (runs("softmax_alibi_long"), "sigmoid recipe, 3000 steps"),
    "sigmoid, LayerScale 1e-4": (runs("ls1e-4b", SEEDS3), "sigmoid recipe"),
    "softmax, same recipe, LayerScale 1e-4": (runs("softmax_alibi_ls1e-4", SEEDS3), "sigmoid, LayerScale 1e-4"),
}


def stats(path):
    """best val, final val and test at T, and the largest attention-row mass / output RMS of any layer."""
    best, final = summarize(path)
    if best is None:
        raise SystemExit(f"error: {path} has no evaluation from training")
    mass = rms = 0.0
    for line in open(path):
        e = json.loads(line)
        mass = max([mass] + [m for m in e.get("attn_row_mass_max") or [] if m is not None])
        rms = max([rms] + list(e.get("attn_out_rms") or []))
    return dict(best=best["val_loss"], val=final.get(("val", 1024)), test=final.get(("test", 1024)), mass=mass, rms=rms)


def mean(xs):
    return statistics.mean(xs) if xs and None not in xs else None


def peak(r, key, spec):  # softmax logs no row mass (its rows sum to 1)
    m = max(s[key] for s in r)
    return format(m, spec) if m else "-"


def fmt(x, sign=False):
    return "-" if x is None else (f"{x:+.4f}" if sign else f"{x:.4f}")


def table():
    res = {label: [stats(p) for p in logs] for label, (logs, _) in ROWS.items() if all(map(os.path.exists, logs))}
    print("| run | seeds | best val per seed | mean | minus the reference, same seeds | val @T | test @T | row mass, attn RMS (max) |")
    print("|---|---|---|---|---|---|---|---|")
    for label, (logs, ref) in ROWS.items():
        if label not in res:
            print(f"| {label} | not run |" + " |" * 6)
            continue
        r = res[label]
        vs = ""
        if ref in res:
            k = min(len(r), len(res[ref]))  # both lists start at seed 1337: their first k seeds are the same
            vs = f"{fmt(mean([s['best'] for s in r[:k]]) - mean([s['best'] for s in res[ref][:k]]), True)} vs {ref}"
        print(f"| {label} | {len(r)} | {' / '.join(fmt(s['best']) for s in r)} | {fmt(mean([s['best'] for s in r]))} | "
              f"{vs} | {fmt(mean([s['val'] for s in r]))} | {fmt(mean([s['test'] for s in r]))} | "
              f"{peak(r, 'mass', '.0f')}, {peak(r, 'rms', '.1f')} |")
    return res


def curve(path):
    xs, ys = [], []
    for line in open(path):
        e = json.loads(line)
        if e.get("event") == "eval" and "eval_block_size" not in e and e.get("iter", 0) > 0:
            xs.append(e["iter"])
            ys.append(e["val_loss"])
    return xs, ys


def plots(res):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    def curves(labels, title, xlabel, name):  # val curves, the mean over each row's seeds
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label in labels:
            cs = [curve(p) for p in ROWS[label][0]]
            xs = cs[0][0]
            ax.plot(xs, [statistics.mean(c[1][i] for c in cs) for i in range(len(xs))], marker=".",
                    label=f"{label} ({len(cs)} seeds)", ls="-" if "sigmoid" in label else "--")
        ax.set_ylim(4.15, 4.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("val loss (mean over seeds)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(HERE, name), dpi=120)

    curves(("sigmoid recipe", "softmax, same recipe", "sigmoid, LayerScale 1e-4", "softmax, same recipe, LayerScale 1e-4",
            "sigmoid, warmup 300", "sigmoid, bias per head"),
           "Gutenberg 6x384, T=1024, lr 4e-3", "iteration (32k tokens each)", "issue12_curves.png")
    # 3x the steps: the gap closes, then softmax overfits sooner
    curves(("sigmoid recipe, 3000 steps", "softmax, same recipe, 3000 steps"), "Gutenberg 6x384, T=1024, lr 4e-3, 3000 steps",
           "iteration (32k tokens each; train is 15.3M tokens, so 3000 steps = 6.4 epochs)", "issue12_long_curves.png")

    fig, ax = plt.subplots(figsize=(5.5, 4))
    sizes = [(29.9, "sigmoid recipe", "softmax, same recipe"), (123.6, "12x768 sigmoid recipe", "12x768 softmax, same recipe")]
    for key, name in (("val", "val (all of it)"), ("test", "test")):
        ax.plot([n for n, _, _ in sizes], [mean([s[key] for s in res[a]]) - mean([s[key] for s in res[b]]) for _, a, b in sizes],
                marker="o", label=name)
    ax.axhline(0, color="k", lw=0.8)
    ax.axhline(0.01, color="gray", lw=0.8, ls=":", label="+0.01 (the issue's goal)")
    ax.set_xscale("log")
    ax.set_xticks([30, 124], ["6x384\n30M", "12x768\n124M"])
    ax.minorticks_off()
    ax.set_xlabel("parameters (M, with the tied embedding)")
    ax.set_ylabel("sigmoid - softmax, same recipe (nats)")
    ax.set_title("gap against size (lr 4e-3 tuned; 2e-3 at 12x768, not tuned)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "issue12_gap_vs_size.png"), dpi=120)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plots", action="store_true")
    res = table()
    if ap.parse_args().plots:
        plots(res)
