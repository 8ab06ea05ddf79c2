"""Tiny random GGUF models for the oracle tests (llama, qwen2, gemma3 shapes).

make_model(path, arch, wtype, ...) writes a model with GGUFWriter. Weight
matrices are stored in `wtype`: F32, F16 and the 32-element formats (Q8_0,
Q4_0, Q4_1, Q5_0, Q5_1) are quantized from random floats with gguf's own
quantizer; gguf cannot quantize K-quants, so for Q4_K, Q5_K and Q6_K we write
random valid blocks directly (random bytes, with the f16 super-block scales
set so rows have the variance of the float weights). Norm weights are F32.

Dimensions default to multiples of 256 so every type's blocks fit.

    python3 tinymodels.py OUT.gguf llama Q8_0 [--untied] [--seed N]
"""

import argparse
import math

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import quants

# byte offsets of the f16 scale fields inside one K-quant block
KQ_SCALE_OFFS = {QT.Q4_K: (0, 2), QT.Q5_K: (0, 2), QT.Q6_K: (208,)}


def _kquant_random(rng, rows, cols, qtype, std):
    blk, nbytes = gguf.GGML_QUANT_SIZES[qtype]
    nb = rows * cols // blk
    raw = rng.integers(0, 256, size=(nb, nbytes), dtype=np.uint8)
    offs = KQ_SCALE_OFFS[qtype]

    def set_scales(scale):
        for i, o in enumerate(offs):
            # dmin (second field) smaller than d keeps rows roughly centred
            v = np.full(nb, scale * (1.0 if i == 0 else 0.5), dtype=np.float16)
            raw[:, o:o + 2] = v.view(np.uint8).reshape(nb, 2)

    set_scales(1.0)
    measured = quants.dequantize(raw.reshape(rows, -1), qtype).std()
    set_scales(std / measured)
    return raw.reshape(rows, -1)


def _weight(rng, rows, cols, qtype, std=None):
    """(rows, cols) weight as (data, raw_dtype) for GGUFWriter.add_tensor."""
    std = std if std is not None else 1.0 / math.sqrt(cols)
    if qtype in KQ_SCALE_OFFS:
        return _kquant_random(rng, rows, cols, qtype, std)
    w = (rng.standard_normal((rows, cols)) * std).astype(np.float32)
    if qtype == QT.F32:
        return w
    return quants.quantize(w, qtype)


def make_model(path, arch="llama", wtype="F32", n_layer=2, n_embd=256, n_ff=512,
               n_head=4, n_kv=2, head_dim=64, n_vocab=384, tied=True, seed=0,
               window=4, rope_base=10000.0, embd_type=None, skip=(), rows_override=None,
               rope_freqs=False):
    """Write a tiny model; returns path. gemma3 layers il % 6 < 5 slide with
    `window` so a short prompt already crosses the window. skip names tensors
    to leave out and rows_override {name: rows} gives tensors a wrong shape
    (fixtures for the loader's error paths)."""
    rows_override = rows_override or {}
    rng = np.random.default_rng(seed)
    qt = QT[wtype]
    et = QT[embd_type] if embd_type else qt
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(n_layer)
    w.add_context_length(2048)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(rope_base)
    w.add_layer_norm_rms_eps(1e-5 if arch == "llama" else 1e-6)
    if arch == "gemma3":
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
        w.add_sliding_window(window)
    else:
        w.add_rope_dimension_count(head_dim)
    w.add_file_type(int(qt))

    def add(name, rows, cols, t=qt, std=None):
        d = _weight(rng, rows_override.get(name, rows), cols, t, std)
        if name not in skip:
            w.add_tensor(name, d, raw_dtype=t)

    def addvec(name, n, mean=1.0):
        w.add_tensor(name, (mean + 0.1 * rng.standard_normal(n)).astype(np.float32))

    add("token_embd.weight", n_vocab, n_embd, et, std=1.0)
    if rope_freqs:
        w.add_tensor("rope_freqs.weight", rng.uniform(1.0, 8.0, head_dim // 2).astype(np.float32))
    addvec("output_norm.weight", n_embd)
    if not tied:
        add("output.weight", n_vocab, n_embd)
    for il in range(n_layer):
        p = "blk.%d." % il
        addvec(p + "attn_norm.weight", n_embd)
        addvec(p + "ffn_norm.weight", n_embd)
        add(p + "attn_q.weight", n_head * head_dim, n_embd)
        add(p + "attn_k.weight", n_kv * head_dim, n_embd)
        add(p + "attn_v.weight", n_kv * head_dim, n_embd)
        add(p + "attn_output.weight", n_embd, n_head * head_dim)
        add(p + "ffn_gate.weight", n_ff, n_embd)
        add(p + "ffn_up.weight", n_ff, n_embd)
        add(p + "ffn_down.weight", n_embd, n_ff)
        if arch == "qwen2":
            addvec(p + "attn_q.bias", n_head * head_dim, 0.0)
            addvec(p + "attn_k.bias", n_kv * head_dim, 0.0)
            addvec(p + "attn_v.bias", n_kv * head_dim, 0.0)
        if arch == "gemma3":
            addvec(p + "attn_q_norm.weight", head_dim)
            addvec(p + "attn_k_norm.weight", head_dim)
            addvec(p + "post_attention_norm.weight", n_embd)
            addvec(p + "post_ffw_norm.weight", n_embd)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("arch", choices=["llama", "qwen2", "gemma3"])
    ap.add_argument("wtype")
    ap.add_argument("--untied", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=2)
    a = ap.parse_args()
    make_model(a.out, a.arch, a.wtype, n_layer=a.layers, tied=not a.untied, seed=a.seed)


if __name__ == "__main__":
    main()
