#!/usr/bin/env python3
"""make bench-llm: plot's engine vs llama-cpp-python on the shipped models.

For each model: prefill tok/s of a 512-token prompt, single-stream greedy
decode tok/s (128 tokens after a 16-token prompt), 16 sequences decoding
together (ours only: llama-cpp-python's high-level API has no multi-sequence
batch), peak RSS of our process. Both engines get the same model, thread
count (2) and token ids. If llama_cpp is not importable, peer figures are nan.

Ends with one line per model:
  llm: model=NAME decode_tps=X peer_decode_tps=X decode_ratio=X prefill_tps=X
       peer_prefill_tps=X prefill_ratio=X batch16_tps=X batch16_scale=X rss_mb=X
"""

import argparse
import math
import os
import re
import subprocess
import sys
import time

MODELS_DIR = os.path.join(os.environ.get("XDG_DATA_HOME", os.path.expanduser("~/.local/share")),
                          "plot", "models")
MODELS = [("SmolLM2-135M-Q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf"),
          ("gemma3-270M-Q4_K_M", "gemma-3-270m-q4_k_m.gguf")]
N_PREFILL, N_SHORT, N_GEN, BATCH = 512, 16, 128, 16


def prompt_ids(n_vocab, bos):
    """Deterministic ordinary-looking ids (no special tokens past the bos)."""
    return [bos] + [1000 + (i * 7919) % min(n_vocab - 1000, 30000) for i in range(N_PREFILL - 1)]


def ours(binary, path, ids, threads):
    out = subprocess.run([binary, path, ",".join(map(str, ids)), "--threads", str(threads),
                          "--gen", str(N_GEN), "--batch", str(BATCH), "--short", str(N_SHORT)],
                         capture_output=True, text=True, check=True).stdout
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", out)}


def peer(path, ids, threads):
    try:
        import numpy as np
        from llama_cpp import Llama
    except ImportError as e:
        print("peer: llama_cpp not importable (%s): peer figures are nan" % e, file=sys.stderr)
        return math.nan, math.nan
    llm = Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=1024,
                n_batch=512, n_ubatch=512, verbose=False)
    llm.eval(ids[:N_SHORT])  # warm up
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(ids)
    prefill = len(ids) / (time.perf_counter() - t0)
    llm.reset()
    llm.eval(ids[:N_SHORT])
    t0 = time.perf_counter()
    for _ in range(N_GEN):
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        llm.eval([tok])
    decode = N_GEN / (time.perf_counter() - t0)
    return prefill, decode


def ratio(a, b):
    return a / b if b and not math.isnan(b) else math.nan


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    lines = []
    for name, fname in MODELS:
        path = os.path.join(MODELS_DIR, fname)
        if not os.path.exists(path):
            print("bench-llm: %s missing (make models)" % path, file=sys.stderr)
            continue
        import gguf
        r = gguf.GGUFReader(path)
        n_vocab = len(r.fields["tokenizer.ggml.tokens"].data)
        bos = int(r.fields["tokenizer.ggml.bos_token_id"].contents())
        del r
        ids = prompt_ids(n_vocab, bos)
        o = ours(a.bin, path, ids, a.threads)
        p_prefill, p_decode = peer(path, ids, a.threads)
        print("%s: ours %s; peer prefill_tps=%.1f decode_tps=%.1f" % (name, o, p_prefill, p_decode))
        lines.append("llm: model=%s decode_tps=%.1f peer_decode_tps=%.1f decode_ratio=%.2f "
                     "prefill_tps=%.1f peer_prefill_tps=%.1f prefill_ratio=%.2f "
                     "batch16_tps=%.1f batch16_scale=%.2f rss_mb=%.1f" % (
                         name, o["decode_tps"], p_decode, ratio(o["decode_tps"], p_decode),
                         o["prefill_tps"], p_prefill, ratio(o["prefill_tps"], p_prefill),
                         o["batch16_tps"], ratio(o["batch16_tps"], o["decode_tps"]), o["rss_mb"]))
    for l in lines:
        print(l)


if __name__ == "__main__":
    main()
