"""bench.py's pure parts (its timings need a GPU): the model variants of the training benchmarks,
the kernel classes of the step profile, and the table's ratios."""
import bench


def test_train_variants_differ_only_where_meant():
    recipe, swapped, softmax = (bench.model_config(*bench.TRAIN_VARIANTS[n], 512)
                                for n in ("sigmoid", "sigmoid_gpt2arch", "softmax"))
    assert (recipe.attention, recipe.pos_encoding, recipe.norm, recipe.qk_norm) == ("sigmoid", "alibi", "hybrid", True)
    assert (softmax.attention, softmax.pos_encoding, softmax.norm, softmax.qk_norm) == ("softmax", "learned", "pre", False)
    # the softmax baseline with only the attention swapped: isolates the kernel from the recipe
    assert swapped.attention == "sigmoid"
    assert {**vars(swapped), "attention": "softmax"} == vars(softmax)
    assert recipe.block_size == swapped.block_size == softmax.block_size == 512


def test_kernel_groups():
    g = bench.kernel_group
    assert g("_bwd_dkdv_kernel") == g("_fwd_kernel") == "attention"
    assert g("pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128>>") == "attention"
    assert g("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NTN") == g("sm90_xmma_gemm_bf16bf16_bf16f32") == "matmul"
    assert g("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamMathFunctor>") == "optimizer"
    assert g("triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_3") == "norm fusions"
    assert g("triton_poi_fused_gelu_5") == "other"


def test_table_graph_ratio_is_speedup_and_tolerates_missing_backends():
    row = {"shape": [1, 2, 64, 16], "check_ok": True}
    for name, ms in (("kernel", 0.5), ("flash", 1.0)):
        row[name] = {"fwd_tflops": 10.0, "fb_tflops": 5.0, "peak_mib": 1.0, "fb_graph_ms": ms}
    row["cudnn"] = None
    line = bench.format_table([row], ["kernel", "flash", "cudnn"]).splitlines()[-1]
    assert "| 2.00 / n/a |" in line  # the kernel takes half of flash's time; cuDNN absent
