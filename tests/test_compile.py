"""model.py with the FlashSigmoid kernel under torch.compile: one graph, no breaks, same numbers.
On CPU the kernel runs through Triton's interpreter (conftest.py); on a GPU, for real."""
import pytest
import torch

import model as M

pytestmark = pytest.mark.skipif(M.flashsigmoid is None, reason="flashsigmoid (Triton) not importable")
DEV = "cuda" if torch.cuda.is_available() else "cpu"


def tiny(attn_impl, pos_encoding="alibi", **kw):
    torch.manual_seed(0)
    cfg = M.GPTConfig(block_size=32, vocab_size=64, n_layer=2, n_head=2, n_kv_head=1, n_embd=32,
                      pos_encoding=pos_encoding, **kw)
    return M.GPT(cfg, attn_impl=attn_impl).to(DEV)


def assert_compiled_step_matches(m, ref, x, **kw):
    """A fullgraph-compiled forward+backward of m gives the loss and gradients of the eager ref model."""
    _, loss = torch.compile(m, backend="aot_eager", fullgraph=True)(x, x, **kw)
    loss.backward()
    _, loss_ref = ref(x, x, **kw)
    loss_ref.backward()
    tol = dict(rtol=1e-4, atol=1e-5) if DEV == "cpu" else dict(rtol=2e-2, atol=2e-3)  # GPU: tanh.approx, tf32
    torch.testing.assert_close(loss, loss_ref, **tol)
    for (name, p), p_ref in zip(m.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, p_ref.grad, **tol, msg=lambda s: f"{name}: {s}")


@pytest.mark.parametrize("pos_encoding", ["alibi", "rope"])
def test_model_with_kernel_traces_to_one_graph(pos_encoding):
    """torch._dynamo.explain finds a single graph and no graph break in the kernel-backed model."""
    m = tiny("triton", pos_encoding)
    x = torch.randint(0, 64, (2, 32), device=DEV)
    ex = torch._dynamo.explain(m)(x, x)
    assert ex.graph_break_count == 0, ex.break_reasons
    assert ex.graph_count == 1


def test_model_with_kernel_dropout_traces_to_one_graph():
    """Training with attention dropout on the kernel: its seed, drawn from torch's generator as a
    device tensor, keeps the model one graph (no .item(), no break)."""
    torch.manual_seed(0)
    cfg = M.GPTConfig(block_size=32, vocab_size=64, n_layer=2, n_head=2, n_kv_head=1, n_embd=32, dropout=0.1)
    m = M.GPT(cfg, attn_impl="triton").to(DEV).train()
    x = torch.randint(0, 64, (2, 32), device=DEV)
    ex = torch._dynamo.explain(m)(x, x)
    assert ex.graph_break_count == 0, ex.break_reasons
    assert ex.graph_count == 1


def test_compiled_kernel_step_matches_reference_attention():
    """A fullgraph-compiled forward+backward through the kernel's custom op gives the loss and
    gradients of the eager model on the PyTorch reference attention."""
    m, ref = tiny("triton"), tiny("torch")
    ref.load_state_dict(m.state_dict())
    x = torch.randint(0, 64, (2, 32), device=DEV)
    assert_compiled_step_matches(m, ref, x)


@pytest.mark.parametrize("kw,eot", [(dict(attn_window=5), None), (dict(pos_encoding="rope"), 7),
                                    (dict(pos_encoding="learned", attn_window=5), 7)], ids=str)
def test_window_and_documents_trace_to_one_graph_and_match_the_reference(kw, eot):
    """A sliding window and document masking (the varlen kernel, cu_seqlens built in the graph) keep
    the model one graph, and the compiled step gives the PyTorch path's loss and gradients."""
    m, ref = tiny("triton", **kw), tiny("torch", **kw)
    ref.load_state_dict(m.state_dict())
    x = torch.randint(0, 64, (2, 32), device=DEV, generator=torch.Generator(DEV).manual_seed(1))
    x[:, ::6] = 7  # documents of 6 tokens, each ending with 7
    ex = torch._dynamo.explain(m)(x, x, eot=eot)
    assert ex.graph_break_count == 0 and ex.graph_count == 1, ex.break_reasons
    assert_compiled_step_matches(m, ref, x, eot=eot)


def test_fused_qk_norm_attention_traces_to_one_graph_and_matches_the_reference(monkeypatch):
    """With FUSED_QK_NORM, QK-norm and the kernel run as one custom op pair (qknorm.py): still one graph,
    and the compiled step gives the PyTorch path's loss and gradients (gains included)."""
    monkeypatch.setattr(M, "FUSED_QK_NORM", True)
    m, ref = tiny("triton"), tiny("torch")
    for blk in m.transformer.h:  # gains away from 1, so that their gradients and a mix-up would show
        torch.nn.init.uniform_(blk.attn.q_norm.weight, 0.5, 1.5)
        torch.nn.init.uniform_(blk.attn.k_norm.weight, 0.5, 1.5)
    ref.load_state_dict(m.state_dict())
    x = torch.randint(0, 64, (2, 32), device=DEV)
    ex = torch._dynamo.explain(m)(x, x)
    assert ex.graph_break_count == 0 and ex.graph_count == 1, ex.break_reasons
    assert ex.graphs[0].code.count("torch.ops.qknorm.attn_fwd") == 2  # one per layer
    assert_compiled_step_matches(m, ref, x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CUDA graphs)")
def test_cuda_graph_replays_accumulate_gradients_like_eager():
    """train.py's step under --compile_mode=reduce-overhead: a step begins at every micro-step, and each
    backward replay's gradients, which the next replay overwrites, are added into .grad buffers allocated
    beforehand. Three optimizer steps of two micro-steps each give eager's gradients every time."""
    m, ref = tiny("triton"), tiny("triton")
    for p in m.parameters():
        p.grad = torch.zeros_like(p)
    cm = torch.compile(m, mode="reduce-overhead")
    g = torch.Generator(device="cuda").manual_seed(1)
    for step in range(3):  # graphs are recorded at the 2nd call, replayed from the 3rd
        for p in m.parameters():
            p.grad.zero_()
        ref.zero_grad(set_to_none=True)
        for micro in range(2):
            x = torch.randint(0, 64, (4, 32), device="cuda", generator=g)
            torch.compiler.cudagraph_mark_step_begin()
            _, loss = cm(x, x)
            (loss / 2).backward()
            _, loss_ref = ref(x, x)
            (loss_ref / 2).backward()
        for (name, p), p_ref in zip(m.named_parameters(), ref.parameters()):
            torch.testing.assert_close(p.grad, p_ref.grad, rtol=2e-2, atol=2e-3, msg=lambda s: f"step {step} {name}: {s}")
