"""make check-peer: 64 greedy tokens of plot's engine vs llama-cpp-python.

Same model file, same prompt token ids, greedy on both sides. Both engines
quantize activations the same way (Q8_0 / Q8_1 / Q8_K) but sum in different
orders, so a near-tie can tip either way; after that the continuations differ
and cannot be compared. The test passes if the tokens are identical up to the
first divergence (if any) and at that point the two choices are a near-tie in
our own logits (less than TIE_TOL apart). It prints how many of the 64 tokens
matched per prompt. Not part of `make check` (needs llama-cpp-python).
"""

import os

import numpy as np
import pytest

from test_forward import GEMMA, GEMMA_PROMPTS, SMOL_PROMPTS, SMOLLM, TIE_TOL, engine

N = 64
llama_cpp = pytest.importorskip("llama_cpp")


def last_logits(llm):
    """The last evaluated token's logits (llama-cpp-python keeps no copy in
    .scores unless logits_all)."""
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))


def peer_greedy(path, prompt, n):
    llm = llama_cpp.Llama(model_path=path, n_threads=2, n_ctx=256, n_batch=256, verbose=False)
    llm.eval(prompt)
    out = []
    for _ in range(n):
        t = int(np.argmax(last_logits(llm)))
        out.append(t)
        llm.eval([t])
    return out


@pytest.mark.parametrize("path,prompts", [(SMOLLM, SMOL_PROMPTS), (GEMMA, GEMMA_PROMPTS)],
                         ids=["smollm2", "gemma3"])
def test_greedy_matches_llama_cpp(path, prompts):
    if not os.path.exists(path):
        pytest.skip("%s not installed (make models)" % path)
    for p in prompts:
        ours = [int(t) for t in engine(path, p, "--gen", N, "--threads", 2).split()]
        peer = peer_greedy(path, p, N)
        k = next((i for i in range(N) if ours[i] != peer[i]), N)
        print("%s prompt %s...: %d/%d greedy tokens identical" % (os.path.basename(path), p[:3], k, N))
        if k == N:
            continue
        seq = p + ours[:k]
        logits = np.frombuffer(engine(path, seq, "--threads", 2), np.float32).reshape(len(seq), -1)[-1]
        margin = logits[ours[k]] - logits[peer[k]]
        print("  diverged at %d: ours %d, llama.cpp %d, %.3f apart in our logits" % (
            k, ours[k], peer[k], margin))
        assert margin < TIE_TOL, "diverged at token %d: ours %d, llama.cpp %d, our margin %.3f" % (
            k, ours[k], peer[k], margin)
