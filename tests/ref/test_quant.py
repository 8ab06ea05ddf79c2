"""Our dequantizers (lib/llm/quant/quant*.c via $PLOT_BUILD/tests/quant-dump)
against gguf.quants.dequantize, the oracle, on random blocks of every type we
support; and our quantizers checked by the oracle: quantize with our code,
dequantize with gguf's, and bound the error per type.

Random blocks are random bytes with the fp16 scale fields replaced by finite
halves, so every bit pattern of the quants is exercised without NaN/inf.
Both sides compute the same float32 products, so dequant must match to
float rounding (rtol 1e-6); the dispatched SIMD path is checked the same way."""
import os
import subprocess

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PLOT_BUILD", os.path.join(ROOT, "build", "cc"))
TOOL = os.path.join(BUILD, "tests", "quant-dump")

# byte ranges of the fp16 fields in each block
HALVES = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
BLOCK_TYPES = list(HALVES)
N_BLOCKS = 64

# quantize -> oracle dequantize: max |err| / (max |x| of the 256 elements)
# per type. Derived bounds, measured values in brackets (N(0,1) data):
#   F16 2^-11 [4.0e-4]; BF16 2^-8 [3.4e-3]; Q8_0 half step 1/254 + fp16 d [4.0e-3]
#   Q4_0/Q5_0: symmetric, the far end clamps one step: 1/8, 1/16 [0.120, 0.060]
#   Q4_1/Q5_1: half step (hi-lo)/30, /62 <= 1/15, 1/31 [0.065, 0.031]
#   Q4_K/Q5_K: half step + 6-bit scale and min rounding ~0.09, 0.056 [0.066, 0.031]
#   Q6_K: far end clamps one step 1/32 + int8 scale rounding [0.025]
ROUNDTRIP = {
    T.F32: 0.0, T.F16: 5e-4, T.BF16: 4e-3, T.Q8_0: 4.5e-3,
    T.Q4_0: 0.126, T.Q4_1: 0.07, T.Q5_0: 0.0635, T.Q5_1: 0.034,
    T.Q4_K: 0.1, T.Q5_K: 0.06, T.Q6_K: 0.04,
}


def run(args, data):
    res = subprocess.run([TOOL] + args, input=data, capture_output=True, check=True)
    return res.stdout


def random_blocks(qtype, rng):
    blck, nbytes = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(N_BLOCKS, nbytes), dtype=np.uint8)
    halves = (rng.standard_normal((N_BLOCKS, len(HALVES[qtype]))) * 0.05).astype(np.float16)
    for k, off in enumerate(HALVES[qtype]):
        raw[:, off:off + 2] = halves[:, k:k + 1].view(np.uint8)
    return raw


@pytest.mark.parametrize("impl", ["ref", "fast"])
@pytest.mark.parametrize("qtype", BLOCK_TYPES, ids=lambda t: t.name)
def test_dequant_matches_oracle(qtype, impl):
    rng = np.random.default_rng(int(qtype))
    raw = random_blocks(qtype, rng)
    ours = np.frombuffer(run(["dequant", qtype.name] + (["ref"] if impl == "ref" else []),
                             raw.tobytes()), dtype=np.float32)
    want = dequantize(raw, qtype).reshape(-1)
    assert ours.shape == want.shape
    np.testing.assert_allclose(ours, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("qtype", [T.F16, T.BF16], ids=lambda t: t.name)
def test_float_dequant_matches_oracle(qtype):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(4096) * 10).astype(np.float32)
    x[:4] = [0.0, -0.0, np.inf, 6e-8]  # zero, sign, inf, a subnormal half
    if qtype == T.F16:
        raw = x.astype(np.float16).view(np.uint8)
        want = raw.view(np.float16).astype(np.float32)
    else:
        raw = (x.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
        want = dequantize(raw, qtype).reshape(-1)
    ours = np.frombuffer(run(["dequant", qtype.name], raw.tobytes()), dtype=np.float32)
    np.testing.assert_array_equal(ours, want)


@pytest.mark.parametrize("qtype", list(ROUNDTRIP), ids=lambda t: t.name)
def test_quantize_roundtrip_error_bounded(qtype):
    rng = np.random.default_rng(100 + int(qtype))
    blck = 256
    x = rng.standard_normal(blck * 32).astype(np.float32)
    x[:blck] *= 1e-3      # a quiet block
    x[blck:2 * blck] = 0  # an all-zero block must come back zero
    x[2 * blck] = 40.0    # an outlier
    q = np.frombuffer(run(["quantize", qtype.name], x.tobytes()), dtype=np.uint8)
    if qtype == T.F32:
        back = q.view(np.float32)
    else:
        back = dequantize(q.copy(), qtype).reshape(-1)
    assert back.shape == x.shape
    assert np.all(back[blck:2 * blck] == 0)
    err = np.abs(back - x).reshape(-1, 256).max(axis=1)
    scale = np.maximum(np.abs(x).reshape(-1, 256).max(axis=1), 1e-30)
    assert np.all(err <= ROUNDTRIP[qtype] * scale + 1e-12), (err / scale).max()


@pytest.mark.parametrize("impl", ["ref", "fast"])
@pytest.mark.parametrize("qtype", [T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1], ids=lambda t: t.name)
def test_quantize_bitexact_with_oracle_quantizer(qtype, impl):
    """gguf's quantizers are bit-exact ports of ggml's reference ones; ours
    follow the same rules, so the bytes must agree (Q8_0 is how activations
    are quantized, and the forward-pass oracle relies on this)."""
    from gguf.quants import quantize
    rng = np.random.default_rng(200 + int(qtype))
    x = rng.standard_normal((16, 256)).astype(np.float32)
    x[0, :32] = 0
    x[1, :32] = np.arange(32) - 15.5  # exact .5 ties after scaling
    theirs = quantize(x, qtype).reshape(-1)
    ours = np.frombuffer(run(["quantize", qtype.name] + (["ref"] if impl == "ref" else []),
                             x.tobytes()), dtype=np.uint8)
    np.testing.assert_array_equal(ours, theirs)


def ggml_q8_k(x):
    """ggml's quantize_row_q8_K_ref in NumPy: (d, qs, bsums) per 256 block."""
    b = x.astype(np.float32).reshape(-1, 256)
    out = []
    for row in b:
        i = int(np.argmax(np.abs(row)))
        mx = row[i]
        if mx == 0:
            out.append((np.float32(0), np.zeros(256, np.int8)))
            continue
        iscale = np.float32(-127.0) / mx
        q = np.minimum(127, np.rint(iscale * row)).astype(np.int8)
        out.append((np.float32(1.0) / iscale, q))
    return out


@pytest.mark.parametrize("impl", ["ref", "fast"])
def test_q8_k_quantize_bitexact_with_ggml_rule(impl):
    rng = np.random.default_rng(300)
    x = rng.standard_normal(256 * 8).astype(np.float32)
    x[256:512] = 0
    x[512:768] *= -1e-3
    raw = run(["quantize", "Q8_K"] + (["ref"] if impl == "ref" else []), x.tobytes())
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 292)
    for blk, (d, q) in zip(blocks, ggml_q8_k(x)):
        assert blk[:4].view(np.float32)[0] == d
        np.testing.assert_array_equal(blk[4:260].view(np.int8), q)
        sums = q.astype(np.int32).reshape(16, 16).sum(axis=1)
        np.testing.assert_array_equal(blk[260:].view(np.int16), sums)


@pytest.mark.parametrize("impl", ["ref", "fast"])
def test_q8_1_quantize_bitexact_with_llama_x86_rule(impl):
    """Q8_1 (activations for Q4_1/Q5_1) as llama.cpp's x86
    quantize_row_q8_1: d = fp16(amax / 127), q = rint(x * (127 / amax))
    (half to even), s = fp16(d32 * sum(q)) with d32 the unrounded d."""
    rng = np.random.default_rng(400)
    x = rng.standard_normal((8, 64)).astype(np.float32)
    x[0, :32] = 0
    x[1, :32] = np.arange(32, dtype=np.float32) - 15.5  # halves ...
    x[1, 31] = 127.0                                    # ... and id = 1: .5 ties
    raw = run(["quantize", "Q8_1"] + (["ref"] if impl == "ref" else []), x.tobytes())
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 36)
    xb = x.reshape(-1, 32)
    amax = np.abs(xb).max(axis=1)
    d = amax / np.float32(127)                                  # float32, unrounded
    inv = np.where(amax != 0, np.float32(127) / np.where(amax != 0, amax, 1), 0).astype(np.float32)
    q = np.rint(xb * inv[:, None]).astype(np.int8)
    assert np.any(np.abs((xb * inv[:, None]) % 1) == 0.5)        # ties were rounded
    np.testing.assert_array_equal(blocks[:, :2].copy().view(np.float16).reshape(-1), d.astype(np.float16))
    np.testing.assert_array_equal(blocks[:, 4:].view(np.int8), q)
    s = (q.astype(np.int32).sum(axis=1).astype(np.float32) * d).astype(np.float16)
    np.testing.assert_array_equal(blocks[:, 2:4].copy().view(np.float16).reshape(-1), s)
