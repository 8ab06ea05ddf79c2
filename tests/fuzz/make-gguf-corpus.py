#!/usr/bin/env python3
"""Write the GGUF fuzz seed corpus (tests/fuzz/corpus/gguf/) with the gguf
package's GGUFWriter: a few tiny valid files covering every value type,
string/numeric/nested arrays, custom alignment, v2, and tensors of the
quantized types we support. Deterministic; rerun after changing it and
commit the outputs (each is a few KB)."""
import os
import sys

import numpy as np
from gguf import GGUFWriter, GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "gguf")


def raw_tensor(w, rng, name, qtype, rows, cols):
    blck, nbytes = GGML_QUANT_SIZES[qtype]
    data = rng.integers(0, 256, size=(rows, cols // blck * nbytes), dtype=np.uint8)
    if qtype in (T.F32,):
        data = rng.standard_normal((rows, cols)).astype(np.float32)
        w.add_tensor(name, data)
        return
    w.add_tensor(name, data, raw_dtype=qtype)


def write(path, fill, alignment=None, version=3):
    w = GGUFWriter(path, "llama")
    if alignment:
        w.add_custom_alignment(alignment)
    fill(w, np.random.default_rng(len(path)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if version != 3:
        with open(path, "r+b") as f:
            f.seek(4)
            f.write(version.to_bytes(4, "little"))


def llama_like(w, rng):
    w.add_uint32("llama.block_count", 1)
    w.add_uint32("llama.embedding_length", 32)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "a", "b", "ab", " ", "\u00e9"])
    w.add_array("tokenizer.ggml.scores", [0.0, -1.0, -2.5, -3.0, -4.0, -5.0, -6.0])
    w.add_array("tokenizer.ggml.token_type", [3, 3, 1, 1, 1, 1, 1])
    w.add_array("tokenizer.ggml.merges", ["a b"])
    raw_tensor(w, rng, "token_embd.weight", T.Q8_0, 7, 32)
    raw_tensor(w, rng, "blk.0.attn_norm.weight", T.F32, 1, 32)
    raw_tensor(w, rng, "blk.0.attn_q.weight", T.Q4_1, 4, 32)


def all_types(w, rng):
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -5)
    w.add_uint16("t.u16", 65000)
    w.add_int16("t.i16", -1234)
    w.add_int32("t.i32", -70000)
    w.add_uint64("t.u64", 1 << 63)
    w.add_int64("t.i64", -(1 << 40))
    w.add_float64("t.f64", 0.25)
    w.add_bool("t.bool", True)
    w.add_array("t.nested", [[1, 2], [3]])
    w.add_array("t.empty", [])
    raw_tensor(w, rng, "k.q4_k", T.Q4_K, 2, 256)
    raw_tensor(w, rng, "k.q5_k", T.Q5_K, 1, 256)
    raw_tensor(w, rng, "k.q6_k", T.Q6_K, 1, 256)


def legacy(w, rng):
    for q in (T.Q4_0, T.Q5_0, T.Q5_1, T.F16, T.BF16):
        raw_tensor(w, rng, "l." + q.name.lower(), q, 2, 64)


def empty(w, rng):
    pass


def main():
    os.makedirs(OUT, exist_ok=True)
    write(os.path.join(OUT, "llama-like.gguf"), llama_like)
    write(os.path.join(OUT, "all-types-align64.gguf"), all_types, alignment=64)
    write(os.path.join(OUT, "legacy-v2.gguf"), legacy, version=2)
    write(os.path.join(OUT, "empty.gguf"), empty)
    return 0


if __name__ == "__main__":
    sys.exit(main())
