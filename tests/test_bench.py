"""bench.py's pure parts (its timings need a GPU): the model variants of the training benchmarks,
the kernel classes of the step profile, the table's ratios, and the kernel check against the reference."""
import pytest
import torch

import bench
from helpers import INTERPRETED
from model import flashsigmoid, sigmoid_attention_torch

# where the kernel runs: CPU tensors through Triton's interpreter (no CUDA), else the GPU
KDEV = "cpu" if INTERPRETED else "cuda"


def test_train_variants_differ_only_where_meant():
    recipe, swapped, softmax = (bench.model_config(*bench.TRAIN_VARIANTS[n], 512)
                                for n in ("sigmoid", "sigmoid_gpt2arch", "softmax"))
    assert (recipe.attention, recipe.pos_encoding, recipe.norm, recipe.qk_norm) == ("sigmoid", "alibi", "hybrid", True)
    assert (softmax.attention, softmax.pos_encoding, softmax.norm, softmax.qk_norm) == ("softmax", "learned", "pre", False)
    # the softmax baseline with only the attention swapped: isolates the kernel from the recipe
    assert swapped.attention == "sigmoid"
    assert {**vars(swapped), "attention": "softmax"} == vars(softmax)
    assert recipe.block_size == swapped.block_size == softmax.block_size == 512
    # the 1B twin is built as the GPT-2 baseline is, and otherwise is the paper's 1B model
    big, twin = (bench.model_config(*bench.TRAIN_VARIANTS[n], 4096) for n in ("paper_1b", "paper_1b_softmax"))
    assert (twin.attention, twin.pos_encoding, twin.norm, twin.qk_norm) == ("softmax", "learned", "pre", False)
    assert {**vars(twin), **{k: getattr(big, k) for k in ("attention", "pos_encoding", "norm", "qk_norm")}} == vars(big)
    assert (big.n_layer, big.n_embd, big.mlp) == (24, 2048, "swiglu")
    assert bench.baseline_of("paper_1b") == "paper_1b_softmax" and bench.baseline_of("sigmoid") == "softmax"
    # the fused QK-norm A/B: the same model, only train.py's run-time fused_qk_norm differs
    for name in ("sigmoid_fusedqk", "sigmoid_rmsnorm"):
        assert vars(bench.model_config(*bench.TRAIN_VARIANTS[name], 512)) == vars(recipe)
    # the CUDA-graph A/B: the same models, both arms replayed, each compared with its own kind
    for name, base in (("sigmoid_cg", recipe), ("sigmoid_fusedqk_cg", recipe), ("sigmoid_rmsnorm_cg", recipe),
                       ("softmax_cg", softmax)):
        assert vars(bench.model_config(*bench.TRAIN_VARIANTS[name], 512)) == vars(base)
        assert "--compile_mode=reduce-overhead" in bench.TRAIN_VARIANTS[name][1]
        assert bench.baseline_of(name) == "softmax_cg"


def test_model_config_parses_overrides_as_train_py_does():
    """One parser, train.py's: --qk_norm=False is False (not the truthy string 'False'), --n_layer=6
    the int 6; an unknown key or a value of the wrong type exits naming it."""
    cfg = bench.model_config("configs/gpt2_124m.py", ["--qk_norm=False", "--n_layer=6"], 256)
    assert cfg.qk_norm is False and cfg.n_layer == 6 and cfg.block_size == 256
    assert (cfg.n_embd, cfg.vocab_size) == (768, 50304)  # from the file; GPT-2's padded vocab
    with pytest.raises(SystemExit, match="unknown config key 'n_layers'"):
        bench.model_config("configs/gpt2_124m.py", ["--n_layers=6"], 256)
    with pytest.raises(SystemExit, match="'qk_norm' wants bool"):
        bench.model_config("configs/gpt2_124m.py", ["--qk_norm=maybe"], 256)


def test_kernel_groups():
    g = bench.kernel_group
    assert g("_bwd_dkdv_kernel") == g("_fwd_kernel") == "attention"
    assert g("_gl_fwd_kernel") == g("_gl_dkdv_kernel") == "attention"  # the Gluon kernels (Hopper)
    assert g("pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128>>") == "attention"
    assert g("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NTN") == g("sm90_xmma_gemm_bf16bf16_bf16f32") == "matmul"
    assert g("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamMathFunctor>") == "optimizer"
    assert g("triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_3") == "norm fusions"
    assert g("triton_poi_fused_gelu_5") == "other"
    assert g("_qknorm_fwd_kernel") == g("_qknorm_bwd_kernel") == g("_qknorm_pack_kernel") == "norm fusions"


def test_table_graph_ratio_is_speedup_and_tolerates_missing_backends():
    row = {"shape": [1, 2, 64, 16], "check_ok": True}
    for name, ms in (("kernel", 0.5), ("flash", 1.0)):
        row[name] = {"fwd_tflops": 10.0, "fb_tflops": 5.0, "peak_mib": 1.0, "fb_graph_ms": ms}
    row["cudnn"] = None
    line = bench.format_table([row], ["kernel", "flash", "cudnn"]).splitlines()[-1]
    assert "| 2.00 / n/a |" in line  # the kernel takes half of flash's time; no deterministic run, no cuDNN


@pytest.mark.skipif(flashsigmoid is None or not INTERPRETED,
                    reason="the kernel on CPU tensors needs Triton's interpreter (a machine without CUDA)")
def test_kernel_check_compares_with_the_model_reference():
    """check_kernel passes the kernel (here in Triton's interpreter) against model.py's reference and
    fails a kernel that is 5% off."""
    errs, ok = bench.check_kernel(flashsigmoid, 1, 2, 40, 16, "cpu")
    assert ok and len(errs) == 4 and max(errs) < 2e-2, errs

    class Off:
        @staticmethod
        def sigmoid_attention(q, k, v, **kw):
            return 1.05 * sigmoid_attention_torch(q, k, v, **kw)
    errs, ok = bench.check_kernel(Off, 1, 2, 40, 16, "cpu")
    assert not ok and errs[0] == pytest.approx(0.05, rel=0.1), errs


@pytest.mark.skipif(flashsigmoid is None, reason="flashsigmoid (Triton) not importable")
def test_window_check_and_table_column():
    """--window: check_kernel compares the windowed kernel with the windowed reference (and fails a
    kernel that ignores the window); the table gains the full/window device-time ratio."""
    errs, ok = bench.check_kernel(flashsigmoid, 1, 2, 40, 16, KDEV, window=(5, 0))
    assert ok and max(errs) < 2e-2, errs

    class NoWindow:
        @staticmethod
        def sigmoid_attention(q, k, v, window=None, **kw):
            return flashsigmoid.sigmoid_attention(q, k, v, **kw)
    errs, ok = bench.check_kernel(NoWindow, 1, 2, 40, 16, KDEV, window=(5, 0))
    assert not ok, errs
    row = {"shape": [1, 2, 64, 16], "check_ok": True}
    for name, ms in (("kernel", 2.0), ("kernel_window", 0.5)):
        row[name] = {"fwd_tflops": 10.0, "fb_tflops": 5.0, "peak_mib": 1.0, "fb_graph_ms": ms, "fwd_graph_ms": ms / 2}
    table = bench.format_table([row], ["kernel", "kernel_window"]).splitlines()
    assert table[-3].endswith("graph full/window fwd / f+b |") and table[-1].endswith("| 4.00 / 4.00 |"), table


@pytest.mark.skipif(flashsigmoid is None, reason="flashsigmoid (Triton) not importable")
def test_docs_kernel_is_the_varlen_kernel_over_documents_of_each_row():
    """--doc_len L times sigmoid_attention_varlen over the (B, H, T, D) buffers read as (B*T, H, D):
    documents of L tokens (here checked against the dense reference per document)."""
    import math
    B, H, T, D, L = 2, 2, 24, 16, 10
    q, k, v = (torch.randn(B, H, T, D, generator=torch.Generator().manual_seed(s)) for s in range(3))
    got = bench.docs_kernel(flashsigmoid, L)(*(t.to(KDEV) for t in (q, k, v))).cpu().reshape(B * T, H, D)
    packed = [t.reshape(B * T, H, D) for t in (q, k, v)]
    for start in [b * T + t for b in range(B) for t in range(0, T, L)]:
        end = min(start + L, (start // T + 1) * T)
        qs, ks, vs = (t[start:end].transpose(0, 1)[None] for t in packed)
        want = sigmoid_attention_torch(qs, ks, vs, bias=-math.log(T))[0].transpose(0, 1)
        torch.testing.assert_close(got[start:end], want, rtol=1e-5, atol=1e-6)


def test_decode_mode_runs_on_cpu_and_writes_its_table(tmp_path, monkeypatch):
    """--mode=decode end to end on a tiny model (the CPU's PyTorch attention): a row per model and batch
    with positive tokens/s, the softmax baseline's ratio, the path each took; JSON and table under $OUT."""
    import json
    import sys
    monkeypatch.setenv("OUT", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["bench.py", "--mode=decode", "--decode_batches", "1", "3", "--prompt_len=5",
                                      "--new_tokens=4", "--decode_reps=1", "--model_overrides", "n_layer=1",
                                      "n_embd=32", "n_head=2", "vocab_size=64"])
    bench.main()
    cuda = torch.cuda.is_available()  # the benchmark takes the GPU where there is one
    rows = json.load(open(tmp_path / "bench_decode.json"))["rows"]
    assert [(r["name"], r["B"]) for r in rows] == [(n, b) for n in bench.DECODE_VARIANTS for b in (1, 3)]
    for r in rows:
        assert r["decode_tok_s"] > 0 and r["total_tok_s"] > 0 and r["prefill_ms"] > 0
        assert r["path"] == ("SDPA" if r["attention"] == "softmax" else "decode kernel" if cuda else "PyTorch")
    table = (tmp_path / "bench_decode.md").read_text()
    assert "prompt 5 + 4 new tokens" in table
    lines = [line for line in table.splitlines() if line.startswith("| sigmoid")]
    base = {r["B"]: r["decode_tok_s"] for r in rows if r["name"] == "softmax"}
    assert len(lines) == 4
    for line, r in zip(lines, rows):  # each sigmoid row carries its ratio to the softmax row of its batch size
        assert line.startswith(f"| {r['name']} |")
        assert line.endswith(f"| {r['decode_tok_s'] / base[r['B']]:.2f} |"), line


def test_profile_counts_kernels_not_the_annotations_around_them():
    """A GPU user annotation (the optimizer's step range) spans kernels the profile lists already: counting it too
    would add its length to the step's device time."""
    from types import SimpleNamespace as E
    events = [E(key="kernel_a", device_type="DeviceType.CUDA", is_user_annotation=False, self_device_time_total=3000.0,
                count=6),
              E(key="Optimizer.step#AdamW.step", device_type="DeviceType.CUDA", is_user_annotation=True,
                self_device_time_total=2000.0, count=3),
              E(key="aten::mm", device_type="DeviceType.CPU", is_user_annotation=False, self_device_time_total=0.0,
                self_cpu_time_total=900.0, count=3)]
    assert bench.per_kernel_ms(events, 3, cuda=True) == {"kernel_a": (1.0, 2.0)}
    assert bench.per_kernel_ms(events[2:], 3, cuda=False) == {"aten::mm": (0.3, 1.0)}


def test_lean_mode_times_each_variant_on_cpu(tmp_path, monkeypatch):
    """--mode=lean end to end on a tiny model: a row per variant and shape with its step time and tokens/s
    (tokens per step over it), written as JSON under $OUT; the `_cg` variant's CUDA-graph mode is CUDA's only."""
    import json
    import sys
    monkeypatch.setenv("OUT", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["bench.py", "--mode=lean", "--train_shapes", "2,16", "--train_variants",
                                      "softmax", "sigmoid_cg", "--iters=2", "--profile_warmup=1",
                                      "--model_overrides", "n_layer=1", "n_embd=32", "n_head=2"])
    bench.main()
    rows = json.load(open(tmp_path / "bench_lean.json"))
    assert [(r["name"], r["B"], r["T"]) for r in rows] == [("softmax", 2, 16), ("sigmoid_cg", 2, 16)]
    for r in rows:
        assert r["ms"] > 0 and r["tok_s"] == pytest.approx(2 * 16 / r["ms"] * 1000)
        if torch.cuda.is_available():  # the benchmark takes the GPU where there is one
            assert 0 < r["mfu"] < 1 and r["mem_gb"] > 0
        else:
            assert r["mfu"] is None and r["mem_gb"] is None  # no device peak on a CPU


def test_graph_pass_rotates_the_order_and_keeps_each_arms_median(capsys):
    """The CUDA-graph timings come in rounds, each in the order of the one before rotated by one (so no
    implementation is always timed first), and each arm keeps the median of its rounds; an arm that fails is
    reported and left without graph times, the others unaffected."""
    calls = []

    def impl(name):
        def f(q, k, v):
            if name == "bad":
                raise RuntimeError("no such backend")
            calls.append(name)
            return (q + k + v) * 1.0
        return f
    names = ("a", "b", "c", "bad")
    impls = {n: impl(n) for n in names}
    times = iter(range(1, 1000))

    def timer(fn):  # a fake CUDA-graph timer: runs fn once, returns a growing time
        fn()
        return float(next(times))
    rows = [{n: {} for n in names}]
    bench.graph_pass(impls, names, [(1, 2, 8, 4)], rows, 3, "cpu", timer)
    firsts = []  # the arms in the order they were timed (forward, then forward+backward, per arm and round)
    for name in calls:
        if not firsts or firsts[-1] != name:
            firsts.append(name)
    assert firsts == ["a", "b", "c", "b", "c", "a", "c", "a", "b"], firsts
    # (times: round 0 a 1, 2; b 3, 4; c 5, 6; round 1 b 7, 8; c 9, 10; a 11, 12; round 2 c 13, 14; a 15, 16; b 17, 18)
    assert rows[0]["a"]["fwd_graph_rounds"] == [1.0, 11.0, 15.0] and rows[0]["a"]["fwd_graph_ms"] == 11.0, rows[0]
    assert rows[0]["a"]["fb_graph_ms"] == 12.0 and rows[0]["b"]["fb_graph_ms"] == 8.0, rows[0]
    assert "fwd_graph_ms" not in rows[0]["bad"], rows[0]
    assert "bad FAILED RuntimeError: no such backend" in capsys.readouterr().out
