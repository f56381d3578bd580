"""Test set-up that must happen before any module under test is imported."""
import os
from pathlib import Path

import torch

# Without a GPU, Triton kernels run on CPU tensors through its interpreter; it must be set before
# flashsigmoid defines them.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Offline machines (ours, CI): tiktoken's GPT-2 files from the shared cache, when it is there.
_cache = Path(__file__).resolve().parents[2] / "shared" / "tiktoken_cache"
if _cache.is_dir():
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(_cache))


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped without one)")


def pytest_report_header(config):
    try:
        import triton
        tv = triton.__version__
    except ImportError:
        tv = "not installed"
    return f"torch {torch.__version__} (CUDA: {torch.cuda.is_available()}), triton {tv}"
