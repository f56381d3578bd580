"""qknorm.py: QK-norm's one-pass kernels equal nn.RMSNorm per head, forward and backward.

CPU: through the Triton interpreter against a float64 reference; GPU (skipped without CUDA): bf16
under torch.compile, and the model with and without the fused path.
"""
import os

import pytest
import torch
import torch.nn as nn

if not torch.cuda.is_available():  # must precede the import of qknorm (kernels are defined then)
    os.environ.setdefault("TRITON_INTERPRET", "1")

import qknorm  # noqa: E402

CUDA = torch.cuda.is_available() and not qknorm._INTERPRET
DEV = "cuda" if CUDA else "cpu"


def _reference(x, wq, wk, nh, nkv, eps):
    """nn.RMSNorm(hs) with weight wq on each q head and wk on each k head, in float64."""
    B, T, C = x.shape
    hs = C // (nh + nkv)
    q, k = x.double().split([nh * hs, nkv * hs], dim=-1)
    out = []
    for t, w, n in ((q, wq, nh), (k, wk, nkv)):
        norm = nn.RMSNorm(hs, eps=eps).double().to(x.device)
        norm.weight = nn.Parameter(w.detach().double())
        out.append((norm(t.reshape(B, T, n, hs)), norm.weight))
    return out


@pytest.mark.parametrize("B,T,nh,nkv,hs,dtype", [
    (2, 7, 4, 4, 16, torch.float32),   # odd length; rows not a multiple of the block
    (1, 5, 4, 2, 40, torch.float32),   # GQA, head dim no power of two
    (3, 3, 3, 1, 64, torch.float16),   # MQA, fp16
    (1, 9, 2, 2, 3, torch.float32),    # a tiny head dim, padded to 4
])
def test_matches_rmsnorm_per_head_forward_and_backward(B, T, nh, nkv, hs, dtype):
    g = torch.Generator().manual_seed(hs + T)
    C = (nh + 2 * nkv) * hs
    qkv = (torch.randn(B, T, C, generator=g) * 3).to(DEV, dtype).requires_grad_(True)
    wq = (torch.rand(hs, generator=g) + 0.5).to(DEV).requires_grad_(True)
    wk = (torch.rand(hs, generator=g) + 0.5).to(DEV).requires_grad_(True)
    x = qkv[..., :(nh + nkv) * hs]  # the q and k slice of the projection, as the model passes it
    q, k = qknorm.qk_rmsnorm(x, wq, wk, nh, nkv, 1e-5)
    assert q.shape == (B, T, nh, hs) and k.shape == (B, T, nkv, hs) and q.dtype == k.dtype == dtype
    dq, dk = torch.randn(q.shape, generator=g).to(DEV, dtype), torch.randn(k.shape, generator=g).to(DEV, dtype)
    gx, gwq, gwk = torch.autograd.grad((q, k), (qkv, wq, wk), (dq, dk))

    x64 = qkv.detach().double().requires_grad_(True)
    (q64, wq64), (k64, wk64) = _reference(x64[..., :(nh + nkv) * hs], wq, wk, nh, nkv, 1e-5)
    rx, rwq, rwk = torch.autograd.grad((q64, k64), (x64, wq64, wk64), (dq.double(), dk.double()))
    tol = 1e-5 if dtype == torch.float32 else 2e-3
    for got, ref in ((q, q64), (k, k64), (gx, rx), (gwq, rwq), (gwk, rwk)):
        err = ((got.double() - ref).norm() / ref.norm().clamp_min(1e-30)).item()
        assert err < tol, err
    assert gx[..., (nh + nkv) * hs:].abs().max() == 0  # v's part of the projection gets nothing from here


def test_output_dtype_and_errors():
    x = torch.randn(1, 2, 3 * 8, device=DEV)
    w = torch.ones(8, device=DEV)
    q, k = qknorm.qk_rmsnorm(x, w, w, 2, 1, dtype=torch.float16)
    assert q.dtype == k.dtype == torch.float16
    with pytest.raises(ValueError, match="nh=2, nkv=3"):
        qknorm.qk_rmsnorm(x, w, w, 2, 3)
    with pytest.raises(ValueError, match=r"\(8,\)"):
        qknorm.qk_rmsnorm(x, torch.ones(4, device=DEV), w, 2, 1)


def test_opcheck():
    x = torch.randn(2, 3, 3 * 16, device=DEV, requires_grad=True)
    w = torch.rand(16, device=DEV, requires_grad=True)
    torch.library.opcheck(qknorm._fwd, (x, w, w.detach().clone().requires_grad_(True), 2, 1, 1e-5, torch.float32))


def test_model_with_and_without_the_fused_qk_norm(monkeypatch):
    import model
    torch.manual_seed(0)
    cfg = model.GPTConfig(block_size=16, vocab_size=64, n_layer=2, n_head=4, n_kv_head=2, n_embd=64)
    m = model.GPT(cfg, attn_impl="torch").to(DEV)
    for blk in m.transformer.h:  # gains away from 1, so a mix-up of wq and wk would show
        nn.init.uniform_(blk.attn.q_norm.weight, 0.5, 1.5)
        nn.init.uniform_(blk.attn.k_norm.weight, 0.5, 1.5)
    idx = torch.randint(64, (2, 16), device=DEV)
    out = {}
    for fused in (False, True):
        monkeypatch.setattr(model, "FUSED_QK_NORM", fused)
        m.zero_grad()
        _, loss = m(idx, idx)
        loss.backward()
        out[fused] = (loss.item(), [p.grad.clone() for p in m.parameters()])
    assert abs(out[True][0] - out[False][0]) < 1e-5
    for a, b in zip(out[True][1], out[False][1]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
