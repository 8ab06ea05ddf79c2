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
    p = peer(name)
    vocab = llama_cpp.llama_model_get_vocab(p.model)
    info = ours("info", name).decode().split()
    got = dict(zip(info[::2], (int(x) for x in info[1::2])))
    want = {
        "n_vocab": p.n_vocab(),
        "bos": llama_cpp.llama_vocab_bos(vocab),
        "eos": llama_cpp.llama_vocab_eos(vocab),
        "eot": llama_cpp.llama_vocab_eot(vocab),
        "add_bos": int(llama_cpp.llama_vocab_get_add_bos(vocab)),
        "add_eos": int(llama_cpp.llama_vocab_get_add_eos(vocab)),
    }
    assert {k: got[k] for k in want} == want
