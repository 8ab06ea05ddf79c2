"""NumPy reference forward pass for the GGUF models plot runs (llama, gemma3).

Reads the GGUF with the `gguf` package and dequantizes with gguf's own code
(gguf.quants.dequantize), then runs a plain full-sequence forward pass with a
causal (and, for gemma3's local layers, sliding-window) mask. It shares no code
with the C engine: it is the independent oracle for tests/ref/test_forward.py.

Activation quantization. Like llama.cpp, the engine multiplies quantized
weights with activations that were first quantized to the weight's "dot type"
(Q8_0 for the 32-element formats, Q8_K for the K-quants). With act_quant=True
(the default) the oracle applies the same rounding to its float activations
before each such matmul, using gguf's Q8_0 quantizer and a NumPy Q8_K
quantizer written from ggml's reference; the remaining difference to the engine
is float summation order (~1e-5). With act_quant=False it is the pure float
model. The engine has two quantized paths: by default its weights are
repacked for the GEMM kernels (lib/llm/quant/pack.h), whose 32-element types take
PACK_A8 activations (llama.cpp's x86 Q8_0 / Q8_1: scale 127 / amax, ties to
even, fp16 d and s);
act_quant="row" emulates the row kernels (--packed 0), which take ggml's
Q8_0 (scalar rule: 1 / d, ties away) and llama.cpp's x86 Q8_1 (as PACK_A8). A matrix packs only when its row count is a multiple of 8.

Architecture facts (checked against llama.cpp's graph builders):
  llama  - RMSNorm, RoPE on adjacent pairs, SwiGLU, GQA, optional output.weight,
           optional rope_freqs.weight (divides the RoPE angles, Llama 3.1).
  qwen2  - llama plus q/k/v biases, RoPE on halves (NEOX).
  gemma3 - embeddings * sqrt(n_embd); RMSNorm of each q/k head before RoPE;
           RoPE on halves (NEOX); post-attention and post-FFN RMSNorm before
           the residual adds; GeGLU (tanh); layer il slides iff il % 6 < 5, with
           window attention.sliding_window and rope base 10000, other layers
           use rope.freq_base; q.k scaled by 1/sqrt(key_length); norm weights
           are used as stored (the converter already added gemma's +1).

KV cache type. kv="f16" (the engine's default) emulates llama.cpp's default
F16 KV cache without flash attention: K and V are stored as IEEE half; the
KQ product converts Q to half first (for gemma3 Q times the attention
scale, which llama.cpp applies to Qcur; llama and qwen2 scale the scores);
the probabilities are converted to half before they weight V. Each rounding
is float32 -> float16 -> float32 (round to nearest even), on float32 values
as the engine rounds them. kv="f32" keeps all of it in float.
"""

import math

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import quants

Q8_0_FROM = {QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0}
Q8_1_FOR = {QT.Q4_1, QT.Q5_1}
Q8_K_FROM = {QT.Q2_K, QT.Q3_K, QT.Q4_K, QT.Q5_K, QT.Q6_K}


def quantize_q8_k(x):
    """ggml's quantize_row_q8_K_ref, dequantized back: blocks of 256, the
    signed value of largest magnitude maps to -127, round half to even."""
    shape = x.shape
    b = x.astype(np.float32).reshape(-1, 256)
    idx = np.argmax(np.abs(b), axis=1)
    mx = b[np.arange(b.shape[0]), idx]
    out = np.zeros_like(b)
    nz = mx != 0
    iscale = np.float32(-127.0) / mx[nz]
    q = np.minimum(127, np.rint(iscale[:, None] * b[nz]))
    d = (np.float32(1.0) / iscale).astype(np.float32)
    out[nz] = d[:, None] * q.astype(np.float32)
    return out.reshape(shape)


def _a8_blocks(x):
    """PACK_A8 (lib/llm/quant/pack.h; llama.cpp's x86 quantize_row_q8_0/q8_1) of
    x's blocks of 32: q (float64), dx = fp16(amax / 127) and
    sx = fp16((amax / 127) * sum(q)) (float64), rounding half to even."""
    b = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    amax = np.abs(b).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    inv = np.zeros_like(amax)
    np.divide(np.float32(127), amax, out=inv, where=amax != 0)
    q = np.rint((b * inv[:, None]).astype(np.float32)).astype(np.float64)
    dx = d.astype(np.float16).astype(np.float64)
    sq = q.sum(axis=1)
    sx = (d * sq.astype(np.float32)).astype(np.float32).astype(np.float16).astype(np.float64)
    return q, dx, sx


def quantize_a8(x):
    """PACK_A8, dequantized back: q * dx (see _a8_blocks)."""
    q, dx, _ = _a8_blocks(x)
    return (q * dx[:, None]).astype(np.float32).reshape(x.shape)


def a8_s_error(x):
    """(n, cols/32) per block sx - dx * sum(q) of x's PACK_A8 rows: the
    kernels multiply a Q4_1/Q5_1 block minimum by the stored sx, not by the
    dequantized values' sum."""
    q, dx, sx = _a8_blocks(x)
    return (sx - dx * q.sum(axis=1)).reshape(x.shape[0], -1)


def act_round(x, wtype):
    """Activations as the engine sees them for a weight of type wtype."""
    if wtype in Q8_0_FROM:
        q = quants.quantize(np.ascontiguousarray(x, dtype=np.float32), QT.Q8_0)
        return quants.dequantize(q, QT.Q8_0).reshape(x.shape)
    if wtype in Q8_K_FROM:
        return quantize_q8_k(x)
    return x


class Weight:
    """A (rows, cols) matrix, dequantized lazily in row chunks."""

    def __init__(self, t):
        self.t = t
        self.type = QT(t.tensor_type)
        self.cols = int(t.shape[0])
        self.rows = int(t.shape[1]) if len(t.shape) > 1 else 1
        self._full = None

    def rows_f32(self, lo, hi):
        d = self.t.data[lo:hi]
        return quants.dequantize(np.asarray(d), self.type).reshape(hi - lo, self.cols).astype(np.float32)

    def full(self):
        if self._full is None:
            self._full = self.rows_f32(0, self.rows)
        return self._full

    def block_mins(self):
        """(rows, cols/32) per-block minimum m of a Q4_1/Q5_1 matrix (f16 at
        byte 2 of each block)."""
        bs = gguf.GGML_QUANT_SIZES[self.type][1]
        raw = np.asarray(self.t.data).reshape(self.rows, -1, bs)
        return raw[:, :, 2:4].copy().view(np.float16)[..., 0].astype(np.float32)

    def packs(self):
        """Does the engine repack this matrix for its GEMM kernels?"""
        return self.rows % 8 == 0 and (self.type in Q8_0_FROM or self.type in Q8_K_FROM)

    def matmul(self, x, act_quant):
        """x (n, cols) -> (n, rows). act_quant: False (float), "row" (the
        row kernels' activations) or True (the engine's default path)."""
        packed = act_quant is True and self.packs() and self.type in Q8_0_FROM
        if act_quant and (packed or self.type in Q8_1_FOR):
            # PACK_A8 and the row kernels' Q8_1 round alike (pack.h); a
            # Q4_1/Q5_1 block minimum multiplies the stored fp16 s, not the
            # dequantized values' sum.
            y = self._mm(quantize_a8(x))
            if self.type in Q8_1_FOR:
                y += (a8_s_error(x) @ self.block_mins().T).astype(np.float32)
            return y
        if act_quant:
            x = act_round(x, self.type)
        return self._mm(x.astype(np.float32))

    def _mm(self, x):
        if self.rows * self.cols <= (1 << 24):
            return x @ self.full().T
        out = np.empty((x.shape[0], self.rows), np.float32)
        step = max(1, (1 << 22) // self.cols)
        for lo in range(0, self.rows, step):
            hi = min(self.rows, lo + step)
            out[:, lo:hi] = x @ self.rows_f32(lo, hi).T
        return out


def _field(r, key, default=None):
    f = r.fields.get(key)
    if f is None:
        return default
    v = f.contents()
    return v


class Model:
    def __init__(self, path):
        r = gguf.GGUFReader(path)
        self.r = r
        a = _field(r, "general.architecture")
        if a not in ("llama", "qwen2", "gemma3"):
            raise ValueError("unsupported architecture %r" % a)
        self.arch = a
        self.t = {t.name: t for t in r.tensors}
        self._vc, self._wc = {}, {}
        g = lambda k, d=None: _field(r, "%s.%s" % (a, k), d)
        self.n_layer = int(g("block_count"))
        self.n_embd = int(g("embedding_length"))
        self.n_head = int(g("attention.head_count"))
        self.n_kv = int(g("attention.head_count_kv", self.n_head))
        self.hdk = int(g("attention.key_length", self.n_embd // self.n_head))
        self.hdv = int(g("attention.value_length", self.hdk))
        self.n_rot = int(g("rope.dimension_count", self.hdk))
        self.base = float(g("rope.freq_base", 10000.0))
        self.eps = float(g("attention.layer_norm_rms_epsilon"))
        self.gemma = a == "gemma3"
        self.neox = a in ("gemma3", "qwen2")
        self.rope_freqs = self.vec("rope_freqs.weight").astype(np.float64) if "rope_freqs.weight" in self.t else None
        self.window = int(g("attention.sliding_window", 0)) if self.gemma else 0
        self.embd = Weight(self.t["token_embd.weight"])
        self.n_vocab = self.embd.rows
        self.out = Weight(self.t["output.weight"]) if "output.weight" in self.t else self.embd

    def vec(self, name):
        if name not in self._vc:
            t = self.t[name]
            self._vc[name] = quants.dequantize(np.asarray(t.data), QT(t.tensor_type)).reshape(-1).astype(np.float32)
        return self._vc[name]

    def w(self, name):
        if name not in self._wc:
            self._wc[name] = Weight(self.t[name])
        return self._wc[name]

    def rmsnorm(self, x, w):
        x64 = x.astype(np.float64)
        r = 1.0 / np.sqrt((x64 * x64).mean(axis=-1, keepdims=True) + self.eps)
        return (x64 * r * w).astype(np.float32)

    def rope(self, x, pos, base, freqs=None):
        """x (T, H, hd); rotate the first n_rot dims of each head. freqs
        (rope_freqs.weight, Llama 3.1) divides the angles."""
        half = self.n_rot // 2
        i = np.arange(half, dtype=np.float64)
        th = pos[:, None].astype(np.float64) * base ** (-2.0 * i / self.n_rot)
        if freqs is not None:
            th = th / freqs[None, :]
        c = np.cos(th)[:, None, :].astype(np.float32)
        s = np.sin(th)[:, None, :].astype(np.float32)
        x = x.copy()
        if self.neox:
            a, b = x[..., :half].copy(), x[..., half:self.n_rot].copy()
            x[..., :half], x[..., half:self.n_rot] = a * c - b * s, a * s + b * c
        else:
            a, b = x[..., 0:self.n_rot:2].copy(), x[..., 1:self.n_rot:2].copy()
            x[..., 0:self.n_rot:2], x[..., 1:self.n_rot:2] = a * c - b * s, a * s + b * c
        return x

    def sliding(self, il):
        return self.gemma and il % 6 < 5

    @staticmethod
    def half(x):
        """x rounded to IEEE half (nearest even) through float32, back as float32."""
        return np.asarray(x).astype(np.float32).astype(np.float16).astype(np.float32)

    def attention(self, x, il, pos, aq, kv="f32"):
        p = "blk.%d." % il
        T = x.shape[0]
        q, k, v = (self.w(p + "attn_%s.weight" % n).matmul(x, aq) for n in "qkv")
        if p + "attn_q.bias" in self.t:
            q, k, v = (y + self.vec(p + "attn_%s.bias" % n) for y, n in zip((q, k, v), "qkv"))
        q = q.reshape(T, self.n_head, self.hdk)
        k = k.reshape(T, self.n_kv, self.hdk)
        v = v.reshape(T, self.n_kv, self.hdv)
        if self.gemma:
            q = self.rmsnorm(q, self.vec(p + "attn_q_norm.weight"))
            k = self.rmsnorm(k, self.vec(p + "attn_k_norm.weight"))
        base = 10000.0 if self.sliding(il) else self.base
        ff = None if self.sliding(il) else self.rope_freqs
        q, k = self.rope(q, pos, base, ff), self.rope(k, pos, base, ff)
        grp = self.n_head // self.n_kv
        k = np.repeat(k, grp, axis=1)
        v = np.repeat(v, grp, axis=1)
        scale = 1.0 / math.sqrt(self.hdk)
        if kv == "f16":
            k, v = self.half(k), self.half(v)
            q = self.half(q * np.float32(scale)) if self.gemma else self.half(q)
            scale = 1.0 if self.gemma else float(np.float32(scale))
        sc = np.einsum("thd,shd->hts", q.astype(np.float64), k.astype(np.float64))
        sc *= scale
        ii, jj = pos[:, None], pos[None, :]
        allowed = jj <= ii
        if self.sliding(il):
            allowed &= (ii - jj) < self.window
        sc = np.where(allowed[None], sc, -np.inf)
        sc -= sc.max(axis=-1, keepdims=True)
        pr = np.exp(sc)
        pr /= pr.sum(axis=-1, keepdims=True)
        if kv == "f16":
            pr = self.half(pr).astype(np.float64)
        o = np.einsum("hts,shd->thd", pr, v.astype(np.float64)).astype(np.float32)
        return self.w(p + "attn_output.weight").matmul(o.reshape(T, -1), aq)

    def ffn(self, x, il, aq):
        p = "blk.%d." % il
        g = self.w(p + "ffn_gate.weight").matmul(x, aq)
        u = self.w(p + "ffn_up.weight").matmul(x, aq)
        if self.gemma:
            g64 = g.astype(np.float64)
            a = 0.5 * g64 * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (g64 + 0.044715 * g64 ** 3)))
        else:
            g64 = g.astype(np.float64)
            a = g64 / (1.0 + np.exp(-g64))
        return self.w(p + "ffn_down.weight").matmul((a * u).astype(np.float32), aq)

    def forward(self, tokens, act_quant=True, kv="f16"):
        """Logits (len(tokens), n_vocab) of one sequence starting at position 0,
        with the engine's KV cache type kv ("f16" or "f32")."""
        tokens = np.asarray(tokens, dtype=np.int64)
        pos = np.arange(len(tokens))
        x = np.stack([self.embd.rows_f32(int(t), int(t) + 1)[0] for t in tokens])
        if self.gemma:
            x = x * np.float32(math.sqrt(self.n_embd))
        for il in range(self.n_layer):
            p = "blk.%d." % il
            a = self.attention(self.rmsnorm(x, self.vec(p + "attn_norm.weight")), il, pos, act_quant, kv)
            if self.gemma:
                a = self.rmsnorm(a, self.vec(p + "post_attention_norm.weight"))
            x = x + a
            f = self.ffn(self.rmsnorm(x, self.vec(p + "ffn_norm.weight")), il, act_quant)
            if self.gemma:
                f = self.rmsnorm(f, self.vec(p + "post_ffw_norm.weight"))
            x = x + f
        x = self.rmsnorm(x, self.vec("output_norm.weight"))
        return self.out.matmul(x, act_quant)

    def greedy(self, prompt, n, act_quant=True, kv="f16"):
        toks = list(prompt)
        out = []
        for _ in range(n):
            t = int(np.argmax(self.forward(toks, act_quant, kv)[-1]))
            out.append(t)
            toks.append(t)
        return out
