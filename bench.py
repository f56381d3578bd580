"""Benchmarks. `python bench.py --mode=attn|train|lean|profile|decode [--quick]` (attn is the default).

attn: forward and forward+backward of the FlashSigmoid kernel (flashsigmoid.py) against SDPA
flash (FA2) and SDPA cuDNN softmax, and the materialised sigmoid (model.py's reference, run in bf16)
in eager and torch.compile, causal bf16. Checks the kernel against the reference in fp32 at every
shape before timing; then times fwd+bwd replayed from a CUDA graph too (device time without the
host's share; --graph_rounds rounds, each in a rotated order of the implementations, the median kept).
Prints the table last; writes bench_attn.json / bench_attn.md under $OUT when set.
--window W: also the kernel with a causal sliding window of W keys back (kernel_window; its TFLOP/s
count the pairs inside the window only), e.g. --shapes 2,12,8192,64 --window 1024.
--doc_len L: also the kernel over documents of L tokens packed in each row (kernel_docs: the varlen
kernel with cu_seqlens padded to B*T + 1 entries, as train.py's doc_mask; TFLOP/s count the full
causal pairs, so a faster kernel_docs shows as higher TFLOP/s), e.g. --doc_len 1000.
--quick: no torch.compile'd naive sigmoid (its compiles take minutes), shorter timing.

lean: the same models' steps in a bare loop (no data loading, logging or checks; random tokens):
the lean-loop figure that train.py's own step (--mode=train) is held to, e.g. `--mode=lean
--train_shapes 16,1024 --train_variants softmax softmax_cg sigmoid_cg`. Writes bench_lean.json under $OUT.

decode: tokens/s of generation with the KV cache (model.generate, as sample.py runs it) for the
124M shape with random weights, the sigmoid models (FlashSigmoid; its split-K decode kernel for the
one-token steps) against the softmax baseline (SDPA), batch 1 and 32, prompt 64 + 256 new tokens;
then one decoding step's attention alone in device time: decode kernel, prefill kernel, SDPA (not
with --quick). Writes bench_decode.json / bench_decode.md under $OUT. Runs on a CPU too (PyTorch
attention; small --model_overrides) to check the script.
"""
import argparse
import contextlib
import datetime
import io
import json
import math
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F

from configurator import configure
import model as model_module
from model import GPT, config_from_dict, sigmoid_attention_torch

# the four standard shapes, and the 124M model's long-context one
SHAPES = [(16, 12, 1024, 64), (8, 16, 2048, 128), (4, 32, 4096, 64), (2, 16, 8192, 128), (2, 12, 8192, 64)]


def parse_shapes(strings):
    """["16,1024", ...] -> [(16, 1024), ...]"""
    return [tuple(int(x) for x in s.split(",")) for s in strings]


def naive_sigmoid(q, k, v):
    """The materialised reference in the inputs' dtype (bf16 matmuls), as plain PyTorch would run it."""
    return sigmoid_attention_torch(q, k, v, bias=-math.log(k.size(2)), upcast=False)


def sdpa(backend):
    from torch.nn.attention import sdpa_kernel

    def f(q, k, v):
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return f


def check_kernel(fs, B, H, T, D, dev, window=None):
    """Relative error (norm) of o, dq, dk, dv on a slice of the shape (B=1, 2 heads, same T)."""
    g = torch.Generator(device=dev).manual_seed(0)
    mk = lambda: torch.randn(1, 2, T, D, device=dev, dtype=torch.bfloat16, generator=g)  # noqa: E731
    q, k, v, do = mk(), mk(), mk(), mk()
    slopes, bias = torch.tensor([0.5, 0.01], device=dev), -math.log(T)
    out = []
    for fn, dt in ((lambda a, b, c: fs.sigmoid_attention(a, b, c, bias=bias, alibi_slopes=slopes, window=window),
                    torch.bfloat16),
                   (lambda a, b, c: sigmoid_attention_torch(a, b, c, bias=bias, alibi_slopes=slopes, window=window),
                    torch.float32)):
        a, b, c = (t.to(dt).requires_grad_(True) for t in (q, k, v))
        o = fn(a, b, c)
        out.append((o,) + torch.autograd.grad(o, (a, b, c), do.to(dt)))
    errs = [((x.float() - y).norm() / y.norm()).item() for x, y in zip(*out)]
    bad = [e for e in errs if not (e < 2e-2)]
    return errs, not bad


def fwd_bwd(fn, qg, kg, vg, do):
    """A callable doing one forward and backward of attention `fn`, as a training step would."""
    def fb():
        o = fn(qg, kg, vg)
        torch.autograd.grad(o, (qg, kg, vg), do)
    return fb


def graph_pass(impls, names, shapes, rows, rounds, dev, timer):
    """Device time of each implementation's forward and forward+backward per shape (timer: CUDA-graph replay),
    in `rounds` rounds, each round in the order of the one before rotated by one, and the median of the rounds
    kept: rows[i][name] gets fwd_graph_ms / fb_graph_ms and the rounds themselves. One pass in a fixed order timed
    the first implementation about 1% slower than the same kernels timed right after it (runs 95-102: kernel
    against kernel_det), and a ratio moved by ~2% between arms; an arm that fails is reported and skipped."""
    import statistics
    for i, (B, H, T, D) in enumerate(shapes):
        q, k, v, do = (torch.randn(B, H, T, D, device=dev, dtype=torch.bfloat16) for _ in range(4))
        qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))
        got, failed = {name: [] for name in names}, {}
        for rnd in range(rounds):
            for name in names[rnd % len(names):] + names[:rnd % len(names)]:
                if name in failed:
                    continue
                try:
                    def fwd(fn=impls[name]):
                        with torch.no_grad():
                            fn(q, k, v)
                    got[name].append((timer(fwd), timer(fwd_bwd(impls[name], qg, kg, vg, do))))
                except Exception as e:  # noqa: BLE001
                    failed[name] = f"{type(e).__name__}: {str(e)[:120]}"
                if dev == "cuda":
                    torch.cuda.synchronize()
                    torch.cuda.empty_cache()
        out = []
        for name in names:
            if name in failed:
                out.append(f"{name} FAILED {failed[name]}")
                continue
            f, fb = ([x[j] for x in got[name]] for j in (0, 1))
            if rows[i][name] is not None:
                rows[i][name].update(fwd_graph_ms=statistics.median(f), fb_graph_ms=statistics.median(fb),
                                     fwd_graph_rounds=f, fb_graph_rounds=fb)
            out.append(f"{name} {statistics.median(f):.3f} / {statistics.median(fb):.3f} ms")
        print(f"graph fwd / fwd+bwd {B},{H},{T},{D} (median of {rounds}): " + "; ".join(out), flush=True)


def docs_kernel(fs, L):
    """The varlen kernel over rows of documents of L tokens each, for timing: the (B, H, T, D) inputs are
    read as (B*T, H, D), the same memory and work (the values mix heads and tokens; only the time counts)."""
    cache = {}

    def f(q, k, v):
        B, H, T, D = q.shape
        if (B, T) not in cache:
            starts = [b * T + t for b in range(B) for t in range(0, T, L)]
            cache[B, T] = torch.tensor(starts + [B * T] * (B * T + 1 - len(starts)), dtype=torch.int32, device=q.device)
        cu = cache[B, T]
        o = fs.sigmoid_attention_varlen(q.reshape(B * T, H, D), k.reshape(B * T, H, D), v.reshape(B * T, H, D), cu, cu,
                                        T, T, causal=True, bias=-math.log(T), check=False)
        return o.view(B, H, T, D)
    return f


def time_impl(name, fn, B, H, T, D, q, k, v, do, qg, kg, vg, warmup, rep, window=None):
    """fwd and fwd+bwd times (median of do_bench), TFLOP/s and peak extra memory of one fwd+bwd;
    None when the implementation fails (a missing backend must not stop the table). window: a causal
    window of that many keys back, whose flops count the pairs inside it."""
    import triton.testing
    pairs = 0.5 * T * T if window is None else min(0.5 * T * T, T * (window + 1) - window * (window + 1) / 2)
    fwd_flops = 4 * B * H * pairs * D
    try:
        fb = fwd_bwd(fn, qg, kg, vg, do)
        with torch.no_grad():
            fn(q, k, v)
        fb()  # warm-up: autotuning and compilation stay out of the timings
        torch.cuda.synchronize()
        with torch.no_grad():
            t_f = triton.testing.do_bench(lambda: fn(q, k, v), warmup=warmup, rep=rep, return_mode="median")
        t_fb = triton.testing.do_bench(fb, warmup=warmup, rep=rep, return_mode="median")
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fb()
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
        r = {"fwd_ms": t_f, "fb_ms": t_fb, "fwd_tflops": fwd_flops / t_f * 1e-9,
             "fb_tflops": 3.5 * fwd_flops / t_fb * 1e-9, "peak_mib": peak}
        print(f"  {name:14s} fwd {t_f:8.3f} ms {r['fwd_tflops']:6.1f} TF/s | fwd+bwd "
              f"{t_fb:8.3f} ms {r['fb_tflops']:6.1f} TF/s | peak {peak:8.0f} MiB", flush=True)
        return r
    except Exception as e:  # noqa: BLE001
        print(f"  {name:14s} FAILED: {type(e).__name__}: {str(e)[:200]}", flush=True)
        return None


def bench_attn(args):
    import triton
    import triton.testing
    from torch.nn.attention import SDPBackend

    import flashsigmoid as fs

    dev = "cuda"
    props = torch.cuda.get_device_properties(0)
    print(f"date {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
    print(f"gpu {props.name} ({props.multi_processor_count} SMs), torch {torch.__version__}, "
          f"triton {triton.__version__}, python {platform.python_version()}, autotune {fs.AUTOTUNE}, "
          f"exact_sigmoid {fs.EXACT_SIGMOID}")
    impls = {"kernel": lambda q, k, v: fs.sigmoid_attention(q, k, v, causal=True),
             "kernel_det": lambda q, k, v: fs.sigmoid_attention(q, k, v, causal=True, deterministic=True),
             "flash": sdpa(SDPBackend.FLASH_ATTENTION), "cudnn": sdpa(SDPBackend.CUDNN_ATTENTION)}
    if args.window is not None:
        impls["kernel_window"] = lambda q, k, v: fs.sigmoid_attention(q, k, v, causal=True, window=(args.window, 0))
    if args.doc_len is not None:
        impls["kernel_docs"] = docs_kernel(fs, args.doc_len)
    impls["naive"] = naive_sigmoid
    if not args.quick:
        impls["naive_compile"] = None  # made for the second pass below
    warmup, rep = (25, 50) if args.quick else (50, 200)
    shapes = parse_shapes(args.shapes) if args.shapes else SHAPES
    rows = []
    # The compiled naive sigmoid runs in a second pass over the shapes: torch.compile's compile
    # workers and their CPU load then cannot touch the host-bound timings of the first pass.
    passes = [[n for n in impls if n != "naive_compile"]] + ([["naive_compile"]] if "naive_compile" in impls else [])
    for names in passes:
        if names == ["naive_compile"]:
            # one static graph per shape and grad mode (8 in all): raise dynamo's recompile limit (8 by
            # default), past which it would silently run the later shapes eagerly
            import torch._dynamo.config as dcfg
            for name in ("recompile_limit", "cache_size_limit"):
                if hasattr(dcfg, name):
                    setattr(dcfg, name, max(64, getattr(dcfg, name)))
            impls["naive_compile"] = torch.compile(naive_sigmoid, dynamic=False)
        for i, (B, H, T, D) in enumerate(shapes):
            if names[0] == "kernel":
                errs, ok = check_kernel(fs, B, H, T, D, dev)
                print(f"check {B},{H},{T},{D}: rel err o/dq/dk/dv " + " ".join(f"{e:.2e}" for e in errs)
                      + ("  ok" if ok else "  FAILED"), flush=True)
                if args.window is not None:
                    errs_w, ok_w = check_kernel(fs, B, H, T, D, dev, window=(args.window, 0))
                    print(f"check window {args.window}: rel err o/dq/dk/dv " + " ".join(f"{e:.2e}" for e in errs_w)
                          + ("  ok" if ok_w else "  FAILED"), flush=True)
                    errs, ok = errs + errs_w, ok and ok_w
                rows.append({"shape": [B, H, T, D], "check": errs, "check_ok": ok})
            else:
                print(f"shape {B},{H},{T},{D}", flush=True)
            row = rows[i]
            q, k, v, do = (torch.randn(B, H, T, D, device=dev, dtype=torch.bfloat16) for _ in range(4))
            qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))
            for name in names:
                row[name] = time_impl(name, impls[name], B, H, T, D, q, k, v, do, qg, kg, vg, warmup, rep,
                                      window=args.window if name == "kernel_window" else None)
                torch.cuda.empty_cache()
            if names[0] != "kernel":
                continue
            if args.breakdown:
                breakdown(fs, impls, qg, kg, vg, do)
            if not fs._INTERPRET and fs.AUTOTUNE:
                cfgs = {n: str(getattr(t, "best_config", None)) for n, t in fs._TUNED.items()}
                row["configs"] = cfgs
                print("  configs " + " | ".join(f"{n}: {c}" for n, c in cfgs.items()), flush=True)
    # Third pass: fwd and fwd+bwd replayed from a CUDA graph (triton's do_bench_cudagraph), which takes
    # the host out: the device time. At small shapes the eager timings above are bound by the host's
    # Python/autograd/launch time, which varies between machines and runs.
    graph_pass(impls, ("kernel", "kernel_det", "flash", "cudnn") + tuple(n for n in ("kernel_window", "kernel_docs")
                                                                         if n in impls),
               shapes, rows, args.graph_rounds, dev, lambda fn: triton.testing.do_bench_cudagraph(
                   fn, rep=50, return_mode="median"))
    table = format_table(rows, list(impls))
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "gpu": props.name, "torch": torch.__version__, "triton": triton.__version__,
            "argv": sys.argv, "rows": rows}
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, "bench_attn.json"), "w") as f:
            json.dump(meta, f, indent=1)
        with open(os.path.join(out, "bench_attn.md"), "w") as f:
            f.write(table + "\n")
    print()
    print(table)


def host_ms(fn, n=200):
    """Host time per call: n calls without waiting for the GPU (the launch queue holds them)."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    return (t1 - t0) / n * 1e3


def breakdown(fs, impls, qg, kg, vg, do):
    """Where the kernel's fwd+bwd time goes: eager time (do_bench) and host time per call of the
    default and deterministic backward and of the SDPA backends; device time per kernel
    (profiler); the host's top Python functions (cProfile)."""
    import cProfile
    import pstats

    import triton.testing
    from torch.profiler import ProfilerActivity, profile

    t = {}
    for name in ("kernel", "kernel_det", "flash", "cudnn"):
        fb = fwd_bwd(impls[name], qg, kg, vg, do)
        fb()
        t[f"fb {name}"] = triton.testing.do_bench(fb, return_mode="median")
        t[f"host fb {name}"] = host_ms(fb)
    fb = fwd_bwd(impls["kernel"], qg, kg, vg, do)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(10):
            fb()
        torch.cuda.synchronize()
    parts = []
    for e in prof.key_averages():
        dt = getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0)
        if dt > 0 and e.count >= 10:
            parts.append(f"{e.key[:28]} x{e.count // 10} {dt / 10 / 1000:.3f}ms")
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(200):
        fb()
    pr.disable()
    torch.cuda.synchronize()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(12)
    print("  breakdown (ms): " + "; ".join(f"{n} {ms:.3f}" for n, ms in t.items()), flush=True)
    print("  device per fwd+bwd: " + "; ".join(parts), flush=True)
    print("  host, cProfile of 200 fwd+bwd (tottime):\n" + "\n".join(
        "    " + line for line in s.getvalue().splitlines()[6:24] if line.strip()), flush=True)


def format_table(rows, names):
    def tf(r, n, key):
        return f"{r[n][key]:.0f}" if r.get(n) else "n/a"

    def ratio(r, a, b, key):
        return f"{r[a][key] / r[b][key]:.2f}" if r.get(a) and r.get(b) else "n/a"

    def graph(r, a, b, key="fb_graph_ms"):  # speed-up of a over b in device time
        ok = all(r.get(n) and key in r[n] for n in (a, b))
        return f"{r[b][key] / r[a][key]:.2f}" if ok else "n/a"
    head = ("| shape (B,H,T,D) | " + " | ".join(f"{n} fwd / f+b" for n in names)
            + " | kernel/flash fwd / f+b | kernel/cudnn fwd / f+b | graph kernel/cudnn fwd / f+b"
            " | graph f+b kernel/flash / det/cudnn | peak MiB f+b kernel / flash / cudnn | check |")
    extra = [n for n in ("kernel_window", "kernel_docs") if n in names]
    for n in extra:  # the saving in device time: full causal kernel time over windowed / documents
        head += f" graph full/{n[7:]} fwd / f+b |"
    lines = [head, "|" + "---|" * (len(names) + 7 + len(extra))]
    for r in rows:
        cells = [",".join(map(str, r["shape"]))]
        cells += [f"{tf(r, n, 'fwd_tflops')} / {tf(r, n, 'fb_tflops')}" for n in names]
        cells.append(f"{ratio(r, 'kernel', 'flash', 'fwd_tflops')} / {ratio(r, 'kernel', 'flash', 'fb_tflops')}")
        cells.append(f"{ratio(r, 'kernel', 'cudnn', 'fwd_tflops')} / {ratio(r, 'kernel', 'cudnn', 'fb_tflops')}")
        cells.append(f"{graph(r, 'kernel', 'cudnn', 'fwd_graph_ms')} / {graph(r, 'kernel', 'cudnn')}")
        cells.append(f"{graph(r, 'kernel', 'flash')} / {graph(r, 'kernel_det', 'cudnn')}")
        cells.append(" / ".join(f"{r[n]['peak_mib']:.0f}" if r.get(n) else "n/a" for n in ("kernel", "flash", "cudnn")))
        cells.append("ok" if r["check_ok"] else "FAILED")
        for n in extra:
            cells.append(f"{graph(r, n, 'kernel', 'fwd_graph_ms')} / {graph(r, n, 'kernel')}")
        lines.append("| " + " | ".join(cells) + " |")
    return ("TFLOP/s (causal; fwd+bwd = 3.5x fwd flops), median of triton.testing.do_bench (eager: host time "
            "shows where it exceeds device time); graph = speed ratio replayed from a CUDA graph (device time "
            "only); kernel = FlashSigmoid's default backward (on Hopper the dQ kernel; with pointer loads atomic "
            "dQ from 2048 keys), det = its deterministic one (the dQ kernel)\n"
            + "\n".join(lines))


# name -> (config, overrides). sigmoid_gpt2arch is the softmax baseline with only the attention swapped
# (FlashSigmoid, no ALiBi, pre-norm, no QK-norm): against softmax it isolates the kernel; against
# sigmoid, the cost of the rest of the recipe. paper_1b_softmax is the 1B model built as the GPT-2
# baseline is (softmax on SDPA, learned positions, pre-norm, no QK-norm).
GPT2_BASELINE = ["--attention=softmax", "--pos_encoding=learned", "--norm=pre", "--qk_norm=False"]
TRAIN_VARIANTS = {"sigmoid": ("configs/gpt2_124m.py", []),
                  "sigmoid_gpt2arch": ("configs/gpt2_124m_softmax.py", ["--attention=sigmoid"]),
                  "softmax": ("configs/gpt2_124m_softmax.py", []),
                  # QK-norm on (train.py's default: one op with the attention) or off (nn.RMSNorm), explicitly
                  "sigmoid_fusedqk": ("configs/gpt2_124m.py", ["--fused_qk_norm=True"]),
                  "sigmoid_rmsnorm": ("configs/gpt2_124m.py", ["--fused_qk_norm=False"]),
                  # the step replayed from CUDA graphs (train.py --compile_mode=reduce-overhead), both arms
                  "sigmoid_cg": ("configs/gpt2_124m.py", ["--compile_mode=reduce-overhead"]),
                  "sigmoid_fusedqk_cg": ("configs/gpt2_124m.py", ["--fused_qk_norm=True", "--compile_mode=reduce-overhead"]),
                  "sigmoid_rmsnorm_cg": ("configs/gpt2_124m.py", ["--fused_qk_norm=False", "--compile_mode=reduce-overhead"]),
                  # hybrid-norm's post-norms keeping their inputs (train.py --post_norm_from_sum=False)
                  "sigmoid_keeppost_cg": ("configs/gpt2_124m.py", ["--post_norm_from_sum=False",
                                                                   "--compile_mode=reduce-overhead"]),
                  # that post-norm's backward in PyTorch ops (inductor), not qknorm.post_norm_bwd's kernel
                  "sigmoid_torchpost_cg": ("configs/gpt2_124m.py", ["--fused_post_norm=False",
                                                                    "--compile_mode=reduce-overhead"]),
                  "softmax_cg": ("configs/gpt2_124m_softmax.py", ["--compile_mode=reduce-overhead"]),
                  "paper_1b": ("configs/paper_1b.py", []),
                  "paper_1b_softmax": ("configs/paper_1b.py", GPT2_BASELINE)}


def baseline_of(name):
    """The softmax row a variant's tokens/s is compared with (CUDA-graph variants: softmax's, likewise)."""
    return "paper_1b_softmax" if name.startswith("paper_1b") else "softmax_cg" if name.endswith("_cg") else "softmax"


def bench_train(args):
    """Training throughput through train.py's real step (data loading included): the sigmoid recipe
    (configs/gpt2_124m.py: ALiBi, QK-norm, hybrid-norm, FlashSigmoid) against its softmax baseline
    (configs/gpt2_124m_softmax.py: learned positions, pre-norm, SDPA), and the baseline with sigmoid
    attention alone (TRAIN_VARIANTS); compiled, bf16, same tokens/step."""
    import subprocess
    import tempfile
    here = os.path.dirname(os.path.abspath(__file__))
    shapes = parse_shapes(args.train_shapes)  # (batch, T)
    rows = []
    for B, T in shapes:
        for name in args.train_variants:
            cfg, extra = TRAIN_VARIANTS[name]
            out = tempfile.mkdtemp(prefix=f"bench_{name}_{T}_")
            cmd = [sys.executable, os.path.join(here, "train.py"), cfg, *extra, f"--dataset={args.dataset}", f"--out_dir={out}",
                   f"--batch_size={B}", f"--block_size={T}", "--gradient_accumulation_steps=1",
                   f"--max_iters={args.iters}", "--eval_interval=1000000", "--eval_iters=1", "--log_interval=1",
                   "--warmup_iters=10", "--always_save_checkpoint=False"]
            print("+", " ".join(cmd), flush=True)
            r = subprocess.run(cmd, cwd=here, capture_output=True, text=True)
            if r.returncode:
                print(r.stdout[-2000:], r.stderr[-4000:])
                rows.append(dict(name=name, B=B, T=T, error=f"exit {r.returncode}"))
                continue
            ev = [json.loads(line) for line in open(os.path.join(out, "log.jsonl"))]
            steps = [e for e in ev if e["event"] == "train"][args.iters // 2:]  # past compile and warm-up
            ms = sorted(e["ms_per_iter"] for e in steps)[len(steps) // 2]
            with torch.device("meta"):  # the flop count without the memory
                flops = GPT(model_config(cfg, extra, T)).flops_per_token(T)
            peak = GPT.peak_flops(torch.device("cuda")) if torch.cuda.is_available() else None
            rows.append(dict(name=name, B=B, T=T, ms=ms, tok_s=B * T / ms * 1000,
                             mfu=None if peak is None else flops * B * T / ms * 1000 / peak,  # at the median step
                             mem_gb=steps[-1].get("max_mem_gb"), loss=steps[-1]["loss"]))
            print(rows[-1], flush=True)
    lines = ["| B x T | attention | ms/step | tokens/s | MFU | peak mem GiB | sigmoid/softmax tokens/s |",
             "|---|---|---|---|---|---|---|"]
    by = {(r["name"], r["B"], r["T"]): r for r in rows}
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['B']} x {r['T']} | {r['name']} | {r['error']} | | | | |")
            continue
        other = by.get((baseline_of(r["name"]), r["B"], r["T"]), {})
        ratio = f"{r['tok_s'] / other['tok_s']:.2f}" if r is not other and "tok_s" in other else ""
        mfu = "n/a" if r["mfu"] is None else f"{r['mfu'] * 100:.1f}%"
        mem = "n/a" if r["mem_gb"] is None else f"{r['mem_gb']:.1f}"
        lines.append(f"| {r['B']} x {r['T']} | {r['name']} | {r['ms']:.1f} | {r['tok_s']:,.0f} | {mfu} | {mem} | {ratio} |")
    table = "\n".join(lines)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "bench_train.json"), "w") as f:
            json.dump(rows, f, indent=1)
    print(f"\n{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}, torch {torch.__version__}")
    print(table)


def model_config(path, extra, T):
    """GPTConfig as train.py builds it from config file `path` and --key=value overrides `extra`, at
    block size T: train.py's options with their defaults (its source up to its configure() call), then
    the one parser, configurator.configure, then model.config_from_dict."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "train.py")) as f:
        head, found, _ = f.read().partition("\nconfigure(globals()")
    assert found, "train.py no longer calls configure(globals(), ...): update bench.model_config"
    opts = {}
    exec(compile(head, "train.py", "exec"), opts)  # imports and option defaults only
    with contextlib.redirect_stdout(io.StringIO()):  # configure echoes the config file
        configure(opts, [os.path.join(here, path), *extra, f"--block_size={T}"], opts["optional"])
    return config_from_dict({**opts, "vocab_size": opts["vocab_size"] or 50304})  # GPT-2 BPE, as train.py


def kernel_group(name):
    """Coarse class of a CUDA kernel name from a profile of a compiled training step."""
    n = name.lower()
    if "qknorm" in n:  # qknorm.py's kernels (their names end like FlashSigmoid's)
        return "norm fusions"
    if any(s in n for s in ("_fwd_kernel", "_bwd_dkdv", "_bwd_dq", "_gl_dkdv", "flash", "fmha", "attention", "cudnn")):
        return "attention"
    if any(s in n for s in ("gemm", "nvjet", "xmma", "cutlass", "matmul", "aten::mm", "aten::addmm", "aten::bmm")):
        return "matmul"
    if "adam" in n or "multi_tensor" in n:
        return "optimizer"
    if "rsqrt" in n or "rms_norm" in n:
        return "norm fusions"
    return "other"


def per_kernel_ms(events, steps, cuda):
    """{name: (ms per step, calls per step)} from a profile's key_averages: device kernels (and copies and
    fills) on CUDA, CPU ops otherwise. GPU user annotations (AdamW's `Optimizer.step#AdamW.step` range) are
    left out: their time is their kernels', which are counted already (runs 52-74 counted it, about
    1.05 ms per step in the optimizer group of both arms)."""
    kernels = {}
    for e in events:
        if cuda:
            if str(getattr(e, "device_type", "")).split(".")[-1] != "CUDA" or getattr(e, "is_user_annotation", False):
                continue
            us = getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)
        else:
            us = e.self_cpu_time_total
        if us > 0:
            kernels[e.key] = (kernels.get(e.key, (0, 0))[0] + us / steps / 1000, e.count / steps)
    return kernels


def lean_step(name, B, T, dev, mode="default", overrides=()):
    """One TRAIN_VARIANTS model's training step as a bare loop runs it (the same model, loss, clipping and
    fused AdamW as train.py, without its data loading, logging or checks): (model, step). Random tokens;
    bf16 autocast and torch.compile (`mode`) on CUDA, eager fp32 elsewhere (for checking the script)."""
    cuda = dev == "cuda"
    torch.manual_seed(0)
    # train.py's run-time choices, which the model config does not hold
    extra = TRAIN_VARIANTS[name][1]
    model_module.FUSED_QK_NORM = False if "--fused_qk_norm=False" in extra else "auto"
    model_module.POST_NORM_FROM_SUM = "--post_norm_from_sum=False" not in extra
    model_module.FUSED_POST_NORM = False if "--fused_post_norm=False" in extra else "auto"
    model = GPT(model_config(TRAIN_VARIANTS[name][0], [*extra, *overrides], T)).to(dev)
    opt = model.configure_optimizers(0.1, 6e-4, (0.9, 0.95), dev)
    fwd = torch.compile(model, mode=mode) if cuda else model
    x, y = (torch.randint(model.config.vocab_size, (B, T), device=dev) for _ in range(2))

    def step():
        if cuda and mode in ("reduce-overhead", "max-autotune"):
            torch.compiler.cudagraph_mark_step_begin()  # the last replay's outputs are no longer needed
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=cuda):
            _, loss = fwd(x, y, return_logits=False)  # as train.py
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return model, step


def lean_train(args):
    """The lean-loop bound of issue 14: tokens/s and MFU of each variant's step in a bare loop (lean_step),
    timed over --iters steps after --profile_warmup steps with one device sync at the end; `_cg` variants
    replay from CUDA graphs as train.py's --compile_mode=reduce-overhead does, the rest compile in default
    mode. Beside bench --mode=train in one call it says how much of a step train.py itself costs. Peak
    memory: what a variant adds at its peak over what the process held before it (earlier variants' graphs)."""
    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    rows = []
    for B, T in parse_shapes(args.train_shapes):
        for name in args.train_variants:
            mode = "reduce-overhead" if name.endswith("_cg") else "default"
            if cuda:  # peak from here: CUDA graphs take their memory while they are recorded, in the warm-up
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            model, step = lean_step(name, B, T, dev, mode, [f"--{o}" for o in args.model_overrides])
            for _ in range(args.profile_warmup):  # compiles, autotunes, records the graphs
                step()
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(args.iters):
                step()
            if cuda:
                torch.cuda.synchronize()
            ms = (time.perf_counter() - t0) * 1000 / args.iters
            rows.append(dict(name=name, B=B, T=T, ms=ms, tok_s=B * T / ms * 1000,
                             mfu=model.estimate_mfu(B * T, ms / 1000, torch.device(dev)),  # as train.py logs it
                             mem_gb=(torch.cuda.max_memory_allocated() - base) / 2**30 if cuda else None))
            print(rows[-1], flush=True)
            del model, step
            if cuda:
                torch.cuda.empty_cache()
    print(f"\n{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{torch.cuda.get_device_name() if cuda else 'cpu'}, torch {torch.__version__}, lean loop")
    print("| B x T | model | ms/step | tokens/s | MFU | peak mem GiB |\n|---|---|---|---|---|---|")
    for r in rows:
        mfu = "n/a" if r["mfu"] is None else f"{r['mfu'] * 100:.1f}%"
        mem = "n/a" if r["mem_gb"] is None else f"{r['mem_gb']:.1f}"
        print(f"| {r['B']} x {r['T']} | {r['name']} | {r['ms']:.1f} | {r['tok_s']:,.0f} | {mfu} | {mem} |")
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "bench_lean.json"), "w") as f:
            json.dump(rows, f, indent=1)
    return rows


def profile_train(args):
    """Where a compiled training step's device time goes (torch.profiler), per TRAIN_VARIANTS model:
    device ms per step by kernel class (attention, matmul, fusions holding an RMSNorm, optimizer,
    other) and the top kernels. Random tokens (no data loading); bf16 autocast, torch.compile and fused
    AdamW on CUDA (on a CPU: eager fp32, CPU op times, for checking the script only)."""
    from torch.profiler import ProfilerActivity, profile
    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    summary = []
    for B, T in parse_shapes(args.train_shapes):
        for name in args.train_variants:
            model, step = lean_step(name, B, T, dev)
            for _ in range(args.profile_warmup):  # compiles and autotunes
                step()
            if cuda:
                torch.cuda.synchronize()
            n = args.profile_steps
            with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
                for _ in range(n):
                    step()
                if cuda:
                    torch.cuda.synchronize()
            kernels = per_kernel_ms(prof.key_averages(), n, cuda)
            groups = {}
            for k, (ms, _) in kernels.items():
                groups[kernel_group(k)] = groups.get(kernel_group(k), 0.0) + ms
            total = sum(groups.values())
            summary.append((name, B, T, total, groups))
            print(f"\n{name} {B}x{T}: {total:.2f} ms per step ({'device' if cuda else 'CPU op'} time): "
                  + ", ".join(f"{g} {ms:.2f}" for g, ms in sorted(groups.items(), key=lambda i: -i[1])))
            for k, (ms, calls) in sorted(kernels.items(), key=lambda i: -i[1][0])[:args.profile_top]:
                print(f"  {ms:8.3f} ms  x{calls:5.1f}  [{kernel_group(k)}] {k[:110]}")
            del model, step
            if cuda:
                torch.cuda.empty_cache()
    cols = ["attention", "matmul", "norm fusions", "optimizer", "other"]
    print("\n| model | B x T | ms/step | " + " | ".join(cols) + " |\n|---|---|---|" + "---|" * len(cols))
    for name, B, T, total, groups in summary:
        print(f"| {name} | {B} x {T} | {total:.2f} | " + " | ".join(f"{groups.get(c, 0):.2f}" for c in cols) + " |")


# (B, H, Hkv, Tk, D) of one decoding step's attention: the 124M model at batch 1 and 32 (a 320-token
# cache: prompt 64 + 256 new, and a full 1024 block), long caches, GQA
DECODE_ATTN_SHAPES = [(1, 12, 12, 320, 64), (32, 12, 12, 320, 64), (1, 12, 12, 1024, 64), (32, 12, 12, 1024, 64),
                      (1, 12, 12, 8192, 64), (1, 32, 8, 8192, 128), (16, 32, 8, 8192, 128)]


def decode_attn(args):
    """One decoding step's attention (Tq = 1) in device time (replayed from a CUDA graph): the kernel's
    split-K decode path, the same on one split, its prefill kernel at Tq = 1 (what decoding ran
    before), SDPA (softmax; flash or cuDNN as it picks); bf16, causal, ALiBi for the sigmoid kernels.
    GB/s = bytes of K and V read; host us = time per call of 200 calls queued without waiting."""
    import triton.testing

    import flashsigmoid as fs
    impls = {"decode": {}, "decode_1split": {"DECODE_MIN_SPLIT_KEYS": 1 << 30}, "prefill": {"DECODE_MAX_TQ": 0},
             "sdpa": None}
    rows = []
    for B, H, Hkv, Tk, D in parse_shapes(args.decode_attn_shapes) if args.decode_attn_shapes else DECODE_ATTN_SHAPES:
        q = torch.randn(B, H, 1, D, device="cuda", dtype=torch.bfloat16)
        k, v = (torch.randn(B, Hkv, Tk, D, device="cuda", dtype=torch.bfloat16) for _ in range(2))
        slopes = torch.rand(H, device="cuda")
        ref = sigmoid_attention_torch(q.float(), k.float(), v.float(), bias=-math.log(Tk), alibi_slopes=slopes)
        row = {"shape": [B, H, Hkv, Tk, D]}
        for name, settings in impls.items():
            if settings is None:
                fn = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=H != Hkv)  # noqa: E731
            else:
                fn = lambda: fs.sigmoid_attention(q, k, v, alibi_slopes=slopes)  # noqa: E731
            keep = {n: getattr(fs, n) for n in ("DECODE_MAX_TQ", "DECODE_MIN_SPLIT_KEYS")}
            try:
                for n, val in (settings or {}).items():
                    setattr(fs, n, val)
                if settings is not None:
                    err = ((fn().float() - ref).norm() / ref.norm()).item()
                    assert err < 2e-2, f"relative error {err:.3g} against the fp32 reference"
                fn()  # compile (and autotune) outside the graph
                ms = triton.testing.do_bench_cudagraph(fn, rep=50, return_mode="median")
                row[name] = {"us": ms * 1e3, "gbs": 2 * k.numel() * k.element_size() / ms * 1e-6,
                             "host_us": host_ms(fn) * 1e3}
            except Exception as e:  # noqa: BLE001 - a failing implementation must not stop the table
                row[name] = {"error": f"{type(e).__name__}: {str(e)[:160]}"}
            finally:
                for n, val in keep.items():
                    setattr(fs, n, val)
        rows.append(row)
        print(row, flush=True)

    def cell(r, n):
        return f"{r[n]['us']:.1f} ({r[n]['gbs']:.0f} GB/s)" if "us" in r[n] else "failed"

    def ratio(r, n):
        return f"{r[n]['us'] / r['decode']['us']:.2f}" if "us" in r[n] and "us" in r["decode"] else "n/a"

    def host(r, n):
        return f"{r[n]['host_us']:.0f}" if "us" in r[n] else "n/a"
    lines = ["| B, H, Hkv, Tk, D | decode kernel us | decode, one split | prefill kernel | SDPA softmax "
             "| prefill / decode | SDPA / decode | host us per call decode / SDPA |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {','.join(map(str, r['shape']))} | {cell(r, 'decode')} | {cell(r, 'decode_1split')} | "
                     f"{cell(r, 'prefill')} | {cell(r, 'sdpa')} | {ratio(r, 'prefill')} | {ratio(r, 'sdpa')} | "
                     f"{host(r, 'decode')} / {host(r, 'sdpa')} |")
    return rows, ("One decoding step's attention (Tq = 1, bf16): device time in us from CUDA-graph replay, "
                  "GB/s = K and V bytes / time; host us = Python and launch time per eager call\n" + "\n".join(lines))


# models timed by --mode=decode: the recipe, the softmax baseline with only the attention swapped, the baseline
DECODE_VARIANTS = ["sigmoid", "sigmoid_gpt2arch", "softmax"]


def bench_decode(args):
    """Generation with the KV cache as sample.py runs it (model.generate: prefill the prompt, then one
    token per step; autocast bf16 on CUDA; temperature 0.8, top_k 200): tokens/s of the sigmoid models
    (the FlashSigmoid kernel, its split-K decode path for the one-token steps) against the softmax
    baseline (SDPA), for the 124M shape (random weights), per batch size. Per run: the prefill alone
    (generate one token) and the whole generation, CUDA-synchronised, median of --decode_reps; decode
    tokens/s = B * (new - 1) / (whole - prefill). On a CPU (for checking the script: pass small
    --model_overrides) fp32 and the PyTorch attention path. Writes bench_decode.json / .md under $OUT."""
    from model import flashsigmoid as fs  # None where Triton is missing
    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    P, N = args.prompt_len, args.new_tokens
    overrides = [f"--{o}" for o in args.model_overrides]
    rows = []
    for name in args.decode_variants:
        cfg_path, extra = TRAIN_VARIANTS[name]
        torch.manual_seed(0)
        cfg = model_config(cfg_path, extra + overrides, max(1024, P + N))  # the 124M block, or longer
        model = GPT(cfg).to(dev).eval()
        for B in args.decode_batches:
            idx = torch.randint(cfg.vocab_size, (B, P), device=dev)
            calls = []  # which path the sigmoid kernel took for the one-token steps

            def run(n):
                sync()
                t0 = time.perf_counter()
                with torch.no_grad(), ctx:
                    out = model.generate(idx, n, temperature=0.8, top_k=200)
                sync()
                assert out.shape == (B, P + n)
                return time.perf_counter() - t0
            run(min(N, 4))  # warm-up: compiles, autotunes, the allocator's first blocks
            run(1)  # and the prefill alone (on a GPU its first call took 50 ms, longer than the whole generation)
            if fs is not None:  # one prefill and one step, recording the kernel's decode calls
                real = fs._decode_fwd
                fs._decode_fwd = lambda *a: calls.append(a[0].shape[2]) or real(*a)
                try:
                    run(2)
                finally:
                    fs._decode_fwd = real
            pre = sorted(run(1) for _ in range(args.decode_reps))[args.decode_reps // 2]
            whole = sorted(run(N) for _ in range(args.decode_reps))[args.decode_reps // 2]
            dec = max(whole - pre, 1e-9)
            path = ("decode kernel" if 1 in calls else "prefill kernel" if cuda and cfg.attention == "sigmoid"
                    else "SDPA" if cfg.attention == "softmax" else "PyTorch")
            rows.append(dict(name=name, attention=cfg.attention, B=B, prompt=P, new=N, prefill_ms=pre * 1e3,
                             decode_ms_per_step=dec / (N - 1) * 1e3 if N > 1 else None,
                             decode_tok_s=B * (N - 1) / dec if N > 1 else None, total_tok_s=B * N / whole,
                             path=path))
            print(rows[-1], flush=True)
        del model
        if cuda:
            torch.cuda.empty_cache()
    lines = ["| model | attention (path) | B | prefill ms | decode ms/step | decode tokens/s | tokens/s (all) "
             "| / softmax |", "|---|---|---|---|---|---|---|---|"]
    base = {r["B"]: r for r in rows if r["name"] == "softmax"}
    for r in rows:
        ratio = (f"{r['decode_tok_s'] / base[r['B']]['decode_tok_s']:.2f}"
                 if r["B"] in base and r is not base[r["B"]] and r["decode_tok_s"] else "")
        step = "n/a" if r["decode_ms_per_step"] is None else f"{r['decode_ms_per_step']:.2f}"
        tok = "n/a" if r["decode_tok_s"] is None else f"{r['decode_tok_s']:,.0f}"
        lines.append(f"| {r['name']} | {r['attention']} ({r['path']}) | {r['B']} | {r['prefill_ms']:.1f} | {step} "
                     f"| {tok} | {r['total_tok_s']:,.0f} | {ratio} |")
    head = (f"Generation with the KV cache, prompt {P} + {N} new tokens, "
            f"{torch.cuda.get_device_name() if cuda else 'cpu'}, torch {torch.__version__}; decode tokens/s "
            "from the one-token steps alone; / softmax = decode tokens/s against the softmax baseline")
    table = head + "\n" + "\n".join(lines)
    attn_rows = attn_table = None
    if cuda and not args.quick:
        attn_rows, attn_table = decode_attn(args)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "bench_decode.json"), "w") as f:
            json.dump({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                       "argv": sys.argv, "rows": rows, "attn_rows": attn_rows}, f, indent=1)
        with open(os.path.join(os.environ["OUT"], "bench_decode.md"), "w") as f:
            f.write(table + "\n" + ("\n" + attn_table + "\n" if attn_table else ""))
    print()
    print(table)
    if attn_table:
        print()
        print(attn_table)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", default="attn", choices=["attn", "train", "lean", "profile", "decode"])
    ap.add_argument("--dataset", default="shakespeare", help="train mode: a GPT-2 BPE dataset (name or path)")
    ap.add_argument("--train_shapes", nargs="*", default=["16,1024", "4,4096", "2,8192"],
                    help="train mode: batch,T pairs (same tokens per step)")
    ap.add_argument("--train_variants", nargs="*", default=["sigmoid", "sigmoid_gpt2arch", "softmax"],
                    choices=list(TRAIN_VARIANTS),
                    help="train mode: which models to time")
    ap.add_argument("--iters", type=int, default=40, help="train mode: steps per run (the second half is timed); lean mode: steps timed")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--graph_rounds", type=int, default=3, help="attn mode: rounds of the CUDA-graph timings, "
                    "each in a rotated order of the implementations (the median is kept)")
    ap.add_argument("--breakdown", action="store_true", help="per-kernel device times of the kernel")
    ap.add_argument("--shapes", nargs="*", help="B,H,T,D ... (default: the four standard shapes)")
    ap.add_argument("--window", type=int, help="attn mode: also time the kernel with a causal sliding window "
                    "of this many keys back (kernel_window)")
    ap.add_argument("--doc_len", type=int, help="attn mode: also time the varlen kernel over documents of this "
                    "many tokens packed in each row (kernel_docs)")
    ap.add_argument("--profile_steps", type=int, default=3, help="profile mode: steps profiled")
    ap.add_argument("--profile_warmup", type=int, default=5, help="profile mode: steps before profiling")
    ap.add_argument("--profile_top", type=int, default=15, help="profile mode: kernels listed per model")
    ap.add_argument("--decode_batches", nargs="*", type=int, default=[1, 32], help="decode mode: batch sizes")
    ap.add_argument("--prompt_len", type=int, default=64, help="decode mode: prompt tokens")
    ap.add_argument("--new_tokens", type=int, default=256, help="decode mode: tokens generated")
    ap.add_argument("--decode_reps", type=int, default=3, help="decode mode: runs per timing (median)")
    ap.add_argument("--decode_variants", nargs="*", default=DECODE_VARIANTS, choices=list(TRAIN_VARIANTS),
                    help="decode mode: which models to time")
    ap.add_argument("--model_overrides", nargs="*", default=[],
                    help="decode and lean modes: key=value model options over the variant's config (n_layer=2 ...)")
    ap.add_argument("--decode_attn_shapes", nargs="*",
                    help="decode mode: B,H,Hkv,Tk,D shapes of the one-step attention table (--quick: none)")
    args = ap.parse_args()
    if args.graph_rounds < 1:
        ap.error(f"--graph_rounds must be >= 1, got {args.graph_rounds}")
    if args.mode == "decode":
        bench_decode(args)
    elif args.mode == "attn":
        bench_attn(args)
    elif args.mode == "train":
        bench_train(args)
    elif args.mode == "lean":
        lean_train(args)
    else:
        profile_train(args)


if __name__ == "__main__":
    main()
