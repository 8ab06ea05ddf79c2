"""check-peer: our tokenizer (via $PLOT_BUILD/tests/tok-tool) against
llama.cpp (llama-cpp-python, vocab_only) on both shipped models: token ids
for every text in tok_texts.py with parse_special on and off and add_special
on and off, every token's piece (special on and off), and the special ids.
Not part of `make check`: it needs `make deps-peer` (builds llama.cpp)."""
import os
import subprocess

import pytest

from tok_texts import TEXTS

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python missing: run make deps-peer")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PLOT_BUILD", os.path.join(ROOT, "build", "cc"))
TOOL = os.path.join(BUILD, "tests", "tok-tool")
MODELS = os.path.join(os.environ.get("XDG_DATA_HOME") or
                      os.path.expanduser("~/.local/share"), "plot", "models")
SHIPPED = ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]

_peers = {}


def model_path(name):
    path = os.path.join(MODELS, name)
    if not os.path.exists(path):
        pytest.fail(f"{path} missing: run make models")
    return path


def peer(name):
    if name not in _peers:
        _peers[name] = llama_cpp.Llama(model_path(name), vocab_only=True, verbose=False)
    return _peers[name]


def ours(cmd, name, text=b"", *flags):
    out = subprocess.run([TOOL, cmd, model_path(name), *flags], input=text,
                         capture_output=True, check=True).stdout
    return out


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("special", [False, True])
@pytest.mark.parametrize("add", [False, True])
@pytest.mark.parametrize("key", sorted(TEXTS))
def test_encode_matches_llama_cpp(name, key, special, add):
    text = TEXTS[key].encode()
    want = peer(name).tokenize(text, add_bos=add, special=special)
    flags = (["special"] if special else []) + (["add"] if add else [])
    got = [int(x) for x in ours("encode", name, text, *flags).split()]
    assert got == want


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("special", [False, True])
def test_every_piece_matches_llama_cpp(name, special):
    p = peer(name)
    lines = ours("pieces", name, b"", *(["special"] if special else [])).decode().split("\n")
    n = p.n_vocab()
    assert len(lines) - 1 == n
    buf = (llama_cpp.ctypes.c_char * 4096)()
    vocab = llama_cpp.llama_model_get_vocab(p.model)
    bad = []
    for i in range(n):
        k = llama_cpp.llama_token_to_piece(vocab, i, buf, len(buf), 0, special)
        want = bytes(buf[:k]).hex() or "-"
        if lines[i] != want:
            bad.append((i, lines[i], want))
    assert not bad, f"{len(bad)} pieces differ, first: {bad[:5]}"


@pytest.mark.parametrize("name", SHIPPED)
def test_special_ids_match_llama_cpp(name):
    """bos/eos/add_* and the whole end-of-generation set match. eot itself
    is compared through that set: when the metadata lacks it, llama.cpp
    takes the first eot-looking text in unordered_map order (SmolLM2:
    <|endoftext|> or <|im_end|>, by hash order); we take the first in its
    list's order (<|im_end|>). Either one stops generation the same way."""
    p = peer(name)
    vocab = llama_cpp.llama_model_get_vocab(p.model)
    info = ours("info", name).decode().split()
    got = dict(zip(info[::2], info[1::2]))
    want = {
        "n_vocab": p.n_vocab(),
        "bos": llama_cpp.llama_vocab_bos(vocab),
        "eos": llama_cpp.llama_vocab_eos(vocab),
        "add_bos": int(llama_cpp.llama_vocab_get_add_bos(vocab)),
        "add_eos": int(llama_cpp.llama_vocab_get_add_eos(vocab)),
    }
    assert {k: int(got[k]) for k in want} == want
    eog = [i for i in range(p.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)]
    assert [int(x) for x in got["eog"].split(",")] == eog
    assert int(got["eot"]) in eog and llama_cpp.llama_vocab_eot(vocab) in eog


def random_texts(seed, n):
    """Seeded random strings mixing scripts, digits, punctuation, whitespace
    runs, emoji, combining marks, invalid-looking pieces of special tokens."""
    import random
    rng = random.Random(seed)
    pools = ["abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789",
             " \t\n\r\x0b\x0c\u00a0\u3000\u2009\u0085", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
             "\u00e9\u00fc\u00df\u0301\u0308\u0410\u0436\u044f\u05d0\u0627\u0628\u0915\u0e01",
             "\u4e00\u4e8c\u4e09\u65e5\u672c\u3042\u30a2\ud55c\u0661\u0662\u2460\u00bd",
             "\U0001F600\U0001F44D\U0001F3FD\u200d\u2764\ufe0f\U0001F1E9",
             "'s 'T 'll 'RE 'd", "<|im_end|><end_of_turn><bos>[multimodal]"]
    out = []
    for _ in range(n):
        s = "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 60)))
        out.append(s)
    return out


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("special", [False, True])
def test_random_texts_match_llama_cpp(name, special):
    p = peer(name)
    bad = []
    for text in random_texts(1234, 150):
        want = p.tokenize(text.encode(), add_bos=False, special=special)
        got = [int(x) for x in ours("encode", name, text.encode(),
                                    *(["special"] if special else [])).split()]
        if got != want:
            bad.append((text, got, want))
    assert not bad, f"{len(bad)} of 150 differ, first: {bad[0]}"


def gguf_variant(src, dst, overrides):
    """Copy src's metadata (no tensors) to dst with some keys' values
    replaced: overrides maps key -> (type, encoded value). Byte-level, so
    every other key keeps its exact type and bytes."""
    import struct
    data = open(src, "rb").read()
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    pos = 24
    n_kv = struct.unpack_from("<Q", data, 16)[0]

    def skip_value(t, p):
        if t == 8:
            return p + 8 + struct.unpack_from("<Q", data, p)[0]
        if t == 9:
            et, n = struct.unpack_from("<IQ", data, p)
            p += 12
            if et == 8:
                for _ in range(n):
                    p += 8 + struct.unpack_from("<Q", data, p)[0]
                return p
            return p + n * sizes[et]
        return p + sizes[t]

    out = []
    for _ in range(n_kv):
        klen = struct.unpack_from("<Q", data, pos)[0]
        key = data[pos + 8:pos + 8 + klen].decode()
        t = struct.unpack_from("<I", data, pos + 8 + klen)[0]
        end = skip_value(t, pos + 12 + klen)
        if key in overrides:
            nt, val = overrides[key]
            out.append(data[pos:pos + 8 + klen] + struct.pack("<I", nt) + val)
        else:
            out.append(data[pos:end])
        pos = end
    blob = data[:8] + struct.pack("<QQ", 0, n_kv) + b"".join(out)
    blob += b"\0" * (-len(blob) % 32)
    open(dst, "wb").write(blob)


def gguf_string(s):
    import struct
    return struct.pack("<Q", len(s)) + s.encode()


VARIANTS = {
    # the pre-tokenizers the shipped models do not use, on SmolLM2's vocabulary
    "pre-llama-bpe": (SHIPPED[0], {"tokenizer.ggml.pre": (8, gguf_string("llama-bpe"))}),
    "pre-qwen2": (SHIPPED[0], {"tokenizer.ggml.pre": (8, gguf_string("qwen2"))}),
    "pre-gpt-2": (SHIPPED[0], {"tokenizer.ggml.pre": (8, gguf_string("gpt-2"))}),
    "pre-default": (SHIPPED[0], {"tokenizer.ggml.pre": (8, gguf_string("default"))}),
    # SentencePiece with the space prefix (Llama 2 style) on Gemma's vocabulary
    "spm-space-prefix": (SHIPPED[1], {"tokenizer.ggml.add_space_prefix": (7, b"\1")}),
}


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    d = tmp_path_factory.mktemp("variants")
    out = {}
    for name, (src, over) in VARIANTS.items():
        out[name] = str(d / (name + ".gguf"))
        gguf_variant(model_path(src), out[name], over)
    return out


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("special", [False, True])
def test_variant_vocabularies_match_llama_cpp(variants, variant, special):
    path = variants[variant]
    p = llama_cpp.Llama(path, vocab_only=True, verbose=False)
    bad = []
    texts = [TEXTS[k] for k in sorted(TEXTS)] + random_texts(99, 40)
    for text in texts:
        for add in (False, True):
            want = p.tokenize(text.encode(), add_bos=add, special=special)
            flags = (["special"] if special else []) + (["add"] if add else [])
            got = [int(x) for x in subprocess.run([TOOL, "encode", path, *flags],
                                                  input=text.encode(), capture_output=True,
                                                  check=True).stdout.split()]
            if got != want:
                bad.append((text, add, got, want))
    assert not bad, f"{len(bad)} differ, first: {bad[0]}"
