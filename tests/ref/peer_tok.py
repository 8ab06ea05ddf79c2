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
