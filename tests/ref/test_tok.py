"""The tokenizer on the shipped models, without llama.cpp (that is
check-peer's job, peer_tok.py):

- round trip: decode(encode(text)) == text for every text in tok_texts.py,
  with special-token parsing off and on (decoding specials when on);
- an independent Python tokenizer, written here from the algorithms
  (byte-level BPE by merge rank after the smollm pre-tokenizer; SentencePiece
  merging by score with <0xXX> byte fallback), reading the vocabulary with
  its own few-line GGUF metadata reader, must give the same ids as ours.

Skipped, with the reason, only when `make models` has not installed the
model files."""
import heapq
import os
import subprocess

import pytest

from tok_texts import TEXTS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PLOT_BUILD", os.path.join(ROOT, "build", "cc"))
TOOL = os.path.join(BUILD, "tests", "tok-tool")
MODELS = os.path.join(os.environ.get("XDG_DATA_HOME") or
                      os.path.expanduser("~/.local/share"), "plot", "models")
SMOL = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA = "gemma-3-270m-q4_k_m.gguf"


def model(name):
    path = os.path.join(MODELS, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} not installed (run make models)")
    return path


def run(*args, data=b""):
    return subprocess.run([TOOL, *args], input=data, capture_output=True, check=True).stdout


def encode(name, text, *flags):
    return [int(x) for x in run("encode", model(name), *flags, data=text.encode()).split()]


@pytest.mark.parametrize("name", [SMOL, GEMMA])
@pytest.mark.parametrize("special", [False, True])
@pytest.mark.parametrize("key", sorted(TEXTS))
def test_round_trip(name, key, special):
    text = TEXTS[key]
    flags = ["special"] if special else []
    ids = encode(name, text, *flags)
    back = run("decode", model(name), *flags, data=" ".join(map(str, ids)).encode())
    assert back.decode() == text


# ---- an independent Python tokenizer ---------------------------------------

_vocab = {}


def read_kv(path):
    """The GGUF metadata, read with struct/numpy (GGUFReader parses every
    tensor and string as numpy objects: 20 s for Gemma's vocabulary)."""
    import struct
    import numpy as np
    data = memoryview(open(path, "rb").read())
    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
              12: "d"}
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        pos += n
        return bytes(data[pos - n:pos])

    def value(t):
        nonlocal pos
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            if et == 8:
                return [string() for _ in range(n)]
            a = np.frombuffer(data, dtype="<" + scalar[et], count=n, offset=pos)
            pos += a.nbytes
            return a.tolist()
        return take(scalar[t])

    assert bytes(data[:4]) == b"GGUF"
    pos = 8
    _, n_kv = take("Q"), take("Q")
    kv = {}
    for _ in range(n_kv):
        key = string().decode()
        kv[key] = value(take("I"))
    return kv


def vocab(name):
    if name not in _vocab:
        f = read_kv(model(name))
        toks = f["tokenizer.ggml.tokens"]
        v = {"toks": toks, "types": f["tokenizer.ggml.token_type"],
             "ids": {t: i for i, t in enumerate(toks)}}
        if "tokenizer.ggml.scores" in f:
            v["scores"] = f["tokenizer.ggml.scores"]
        if "tokenizer.ggml.merges" in f:
            v["ranks"] = {}
            for i, m in enumerate(f["tokenizer.ggml.merges"]):
                a, _, b = m.partition(b" ")
                v["ranks"].setdefault((a, b), i)
        _vocab[name] = v
    return _vocab[name]


def partition(v, text, parse_special):
    """Cut special tokens out of text, longest first (user-defined always)."""
    kinds = (3, 4) if parse_special else (4,)
    specials = sorted((i for i, t in enumerate(v["types"]) if t in kinds),
                      key=lambda i: (-len(v["toks"][i]), i))
    frags = [text.encode()]
    for i in specials:
        s = v["toks"][i]
        out = []
        for fr in frags:
            if isinstance(fr, int):
                out.append(fr)
                continue
            parts = fr.split(s)
            for k, p in enumerate(parts):
                if k:
                    out.append(i)
                if p:
                    out.append(p)
        frags = out
    return frags


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c).encode() for b, c in zip(bs, cs)}


def smollm_words(text):
    import regex
    ws = r"\t\n\x0b\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    gpt2 = regex.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^" + ws +
                         r"\p{L}\p{N}]+|[" + ws + r"]+(?![^" + ws + r"])")
    words = []
    for piece in regex.split(r"(\p{N})", text):
        pos = 0
        for m in gpt2.finditer(piece):
            if m.start() > pos:
                words.append(piece[pos:m.start()])
            words.append(m.group())
            pos = m.end()
        if pos < len(piece):
            words.append(piece[pos:])
    return [w for w in words if w]


def bpe_ids(v, text):
    b2u = bytes_to_unicode()
    out = []
    for word in smollm_words(text):
        syms = [b2u[b] for b in word.encode()]
        while len(syms) > 1:
            best = min(range(len(syms) - 1),
                       key=lambda i: (v["ranks"].get((syms[i], syms[i + 1]), 1 << 40), i))
            if (syms[best], syms[best + 1]) not in v["ranks"]:
                break
            syms[best:best + 2] = [syms[best] + syms[best + 1]]
        out += [v["ids"][s] for s in syms]
    return out


def spm_ids(v, text):
    text = text.replace(b" ", "\u2581".encode())
    syms, i = [], 0
    while i < len(text):
        n = min([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4][text[i] >> 4], len(text) - i)
        syms.append(text[i:i + n])
        i += n
    while True:
        cands = [(-v["scores"][v["ids"][syms[k] + syms[k + 1]]], k) for k in range(len(syms) - 1)
                 if syms[k] + syms[k + 1] in v["ids"]]
        if not cands:
            break
        _, k = min(cands)
        syms[k:k + 2] = [syms[k] + syms[k + 1]]
    out = []
    for s in syms:
        if s in v["ids"]:
            out.append(v["ids"][s])
        else:
            out += [v["ids"][b"<0x%02X>" % b] for b in s]
    return out


def python_ids(name, text, parse_special):
    v = vocab(name)
    out = []
    for fr in partition(v, text, parse_special):
        if isinstance(fr, int):
            out.append(fr)
        elif name == SMOL:
            out += bpe_ids(v, fr.decode())
        else:
            out += spm_ids(v, fr)
    return out


@pytest.mark.parametrize("name", [SMOL, GEMMA])
@pytest.mark.parametrize("special", [False, True])
@pytest.mark.parametrize("key", ["english", "contractions", "cjk", "cyrillic", "arabic", "digits", "whitespace",
                                 "emoji", "code", "accents", "specials", "mixed"])
def test_matches_python_tokenizer(name, key, special):
    text = TEXTS[key]
    want = python_ids(name, text, special)
    assert encode(name, text, *(["special"] if special else [])) == want
