"""The GGUF reader (lib/llm/gguf/gguf.c, via $PLOT_BUILD/tests/gguf-dump) against
the gguf Python package's GGUFReader, the oracle: every key with its type and
value (arrays: type, count, first and last element) and every tensor's type,
shape, file offset and size. Runs on the fuzz seed corpus and on the shipped
models when `make models` has installed them."""
import glob
import os
import struct
import subprocess

import numpy as np
import pytest
from gguf import GGUFReader, GGUFValueType as V

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PLOT_BUILD", os.path.join(ROOT, "build", "cc"))
DUMP = os.path.join(BUILD, "tests", "gguf-dump")
MODELS = os.path.join(os.environ.get("XDG_DATA_HOME") or
                      os.path.expanduser("~/.local/share"), "plot", "models")
SHIPPED = ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]
CORPUS = sorted(glob.glob(os.path.join(ROOT, "tests", "fuzz", "corpus", "gguf", "*.gguf")))


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def oracle_value(field, part_index, vtype):
    part = field.parts[part_index]
    if vtype == V.STRING:
        return bytes(part).hex() or "-"
    v = part.tolist()[0]
    if vtype in (V.FLOAT32, V.FLOAT64):
        return f32(v)
    return int(v)


def ours_value(text, vtype):
    if vtype == V.STRING:
        return text
    if vtype in (V.FLOAT32, V.FLOAT64):
        return f32(float(text))
    return int(text)


def dump(path):
    out = subprocess.run([DUMP, path], capture_output=True, text=True, check=True).stdout
    kv, arr, tensors = {}, {}, {}
    head = {}
    for line in out.splitlines():
        w = line.split(" ")
        if w[0] == "kv":
            kv[w[1]] = (int(w[2]), w[3])
        elif w[0] == "arr":
            arr[w[1]] = (int(w[2]), int(w[3]), w[4], w[5])
        elif w[0] == "tensor":
            tensors[w[1]] = [int(x) for x in w[2:]]
        else:
            head[w[0]] = int(w[1])
    return head, kv, arr, tensors


def check_kv(r, kv, arr):
    keys = [k for k in r.fields if not k.startswith("GGUF.")]
    assert sorted(keys) == sorted(list(kv) + list(arr))
    for k in keys:
        f = r.fields[k]
        t = f.types[0]
        if t != V.ARRAY:
            ty, val = kv[k]
            assert ty == int(t), k
            assert ours_value(val, t) == oracle_value(f, f.data[0], t), k
            continue
        ety, n, first, last = arr[k]
        assert ety == int(f.types[1]), k
        if f.types[1] == V.ARRAY:
            continue  # the oracle flattens nested arrays; only the type compares
        assert n == len(f.data), k
        if n and f.types[1] != V.ARRAY:
            et = f.types[1]
            assert ours_value(first, et) == oracle_value(f, f.data[0], et), k
            assert ours_value(last, et) == oracle_value(f, f.data[-1], et), k


def check_tensors(r, tensors):
    assert len(tensors) == len(r.tensors)
    for t in r.tensors:
        ty, nd, ne0, ne1, ne2, ne3, _off, nbytes, file_off = tensors[t.name]
        assert ty == int(t.tensor_type), t.name
        assert nd == len(t.shape), t.name
        want = list(int(x) for x in t.shape) + [1] * (4 - len(t.shape))
        assert [ne0, ne1, ne2, ne3] == want, t.name
        assert nbytes == t.n_bytes, t.name
        assert file_off == t.data_offset, t.name


def compare(path):
    head, kv, arr, tensors = dump(path)
    r = GGUFReader(path)
    assert head["version"] == int(r.fields["GGUF.version"].parts[-1][0])
    assert head["alignment"] == r.alignment
    check_kv(r, kv, arr)
    check_tensors(r, tensors)


@pytest.mark.parametrize("path", CORPUS, ids=os.path.basename)
def test_corpus_file_matches_oracle(path):
    compare(path)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_matches_oracle(name):
    path = os.path.join(MODELS, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} not installed (run `make models`)")
    compare(path)


def test_corrupt_file_is_rejected_with_field_and_offset(tmp_path):
    src = open(CORPUS[0], "rb").read()
    bad = bytearray(src)
    bad[8:16] = (1 << 40).to_bytes(8, "little")  # n_tensors
    p = tmp_path / "bad.gguf"
    p.write_bytes(bytes(bad))
    res = subprocess.run([DUMP, str(p)], capture_output=True, text=True)
    assert res.returncode == 1
    assert "header.n_tensors" in res.stderr and "at offset 8" in res.stderr
