#!/usr/bin/env python3
"""torch-peer: the PyTorch peer of bench-gpu (tests/gpu/bench-gpu.sh).

The Llama 1B shape (Llama 3.2 1B: 16 layers, 2048 wide, FFN 8192, 32 query
heads and 8 KV heads of 64, 128256 tokens, tied embeddings) with random fp16
weights, written the plain way a PyTorch user would: F.linear per
projection, RMSNorm, RoPE on halves, a static KV cache per layer
(batch, kv_heads, max_ctx, head_dim) and F.scaled_dot_product_attention
with enable_gqa and a position mask, SwiGLU, logits for every sequence. No
custom kernels and no torch.compile.

    python3 tests/gpu/torch-peer.py [--batches 1,16,64,256] [--steps 32]
                                    [--prompt 512] [--device cuda]

Per batch size B it times --steps greedy decode steps of B sequences (each
at position 32 and on, the cache filled with random values), after warm-up,
in two modes (the cache has START + steps + 8 positions, masked by
position, and positions wrap to 32 when it is full, so the attention reads
about what bench-gpu's does): eager, and the same step captured once into a CUDA graph
(torch.cuda.CUDAGraph) and replayed, which removes the launch gaps. Prefill:
one sequence of --prompt tokens, causal attention, eager. Timed with CUDA
events; each figure is the median of 3 repetitions.

Output, one line each:
    torch-peer: torch VERSION device NAME shape llama-1b fp16
    torch-peer: mode=eager prefill_tok_s=X b1_tok_s=X b16_tok_s=X ...
    torch-peer: mode=graph b1_tok_s=X ...
Logits stay on the device here (bench-gpu's engine copies them to the host,
as its API does); the difference is part of what the ratio shows.
"""

import argparse
import math
import statistics
import sys

import torch
import torch.nn.functional as F

SHAPE = dict(layers=16, embd=2048, ff=8192, heads=32, kv_heads=8, head_dim=64,
             vocab=128256, rope_base=500000.0, eps=1e-5)
START = 32  # decode starts at this position, as bench-gpu's


class Peer:
    def __init__(self, dev, max_ctx, rope_ctx, seed=1):
        """max_ctx: the KV cache's positions (decode); rope_ctx: the RoPE table's."""
        s = SHAPE
        self.dev, self.max_ctx = dev, max_ctx
        g = torch.Generator(device=dev).manual_seed(seed)

        def w(rows, cols, std=None):
            std = std if std is not None else 1.0 / math.sqrt(cols)
            t = torch.rand(rows, cols, generator=g, device=dev, dtype=torch.float32)
            return t.mul_(2 * math.sqrt(3) * std).sub_(math.sqrt(3) * std).to(torch.float16)

        def norm(n):
            return (1 + 0.1 * torch.rand(n, generator=g, device=dev)).to(torch.float16)

        e, qd, kd = s["embd"], s["heads"] * s["head_dim"], s["kv_heads"] * s["head_dim"]
        self.emb = w(s["vocab"], e, 3.0 / math.sqrt(e))
        self.out_norm = norm(e)
        self.layers = [dict(an=norm(e), fn=norm(e), q=w(qd, e), k=w(kd, e), v=w(kd, e),
                            o=w(e, qd), gate=w(s["ff"], e), up=w(s["ff"], e),
                            down=w(e, s["ff"])) for _ in range(s["layers"])]
        hd = s["head_dim"]
        inv = s["rope_base"] ** (-torch.arange(0, hd, 2, device=dev, dtype=torch.float64) / hd)
        ang = torch.arange(max(rope_ctx, max_ctx), device=dev, dtype=torch.float64)[:, None] * inv[None, :]
        self.cos, self.sin = ang.cos().to(torch.float16), ang.sin().to(torch.float16)

    def rmsnorm(self, x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + SHAPE["eps"])).half() * w

    def rope(self, x, cos, sin):  # x (..., heads, hd); cos/sin broadcast (..., 1, hd/2)
        h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)

    def new_cache(self, batch, gen):
        s = SHAPE
        shp = (batch, s["kv_heads"], self.max_ctx, s["head_dim"])
        return [(torch.randn(shp, generator=gen, device=self.dev, dtype=torch.float16),
                 torch.randn(shp, generator=gen, device=self.dev, dtype=torch.float16))
                for _ in self.layers]

    def decode(self, tok, pos, cache):
        """tok (B,) int64, pos () int64 tensor: one step, returns logits (B, vocab)."""
        s, B = SHAPE, tok.shape[0]
        H, KV, hd = s["heads"], s["kv_heads"], s["head_dim"]
        x = self.emb[tok]
        cos, sin = self.cos[pos].view(1, 1, -1), self.sin[pos].view(1, 1, -1)
        mask = (torch.arange(self.max_ctx, device=self.dev) <= pos).view(1, 1, 1, -1)
        for L, (kc, vc) in zip(self.layers, cache):
            h = self.rmsnorm(x, L["an"])
            q = self.rope(F.linear(h, L["q"]).view(B, H, hd), cos, sin)
            k = self.rope(F.linear(h, L["k"]).view(B, KV, hd), cos, sin)
            v = F.linear(h, L["v"]).view(B, KV, hd)
            kc.index_copy_(2, pos.view(1), k.unsqueeze(2))
            vc.index_copy_(2, pos.view(1), v.unsqueeze(2))
            o = F.scaled_dot_product_attention(q.unsqueeze(2), kc, vc, attn_mask=mask,
                                               enable_gqa=True)
            x = x + F.linear(o.reshape(B, H * hd), L["o"])
            h = self.rmsnorm(x, L["fn"])
            x = x + F.linear(F.silu(F.linear(h, L["gate"])) * F.linear(h, L["up"]), L["down"])
        return F.linear(self.rmsnorm(x, self.out_norm), self.emb)

    def prefill(self, tok):
        """One sequence of T tokens, causal attention; logits of the last."""
        s, T = SHAPE, tok.shape[0]
        H, KV, hd = s["heads"], s["kv_heads"], s["head_dim"]
        x = self.emb[tok]
        cos, sin = self.cos[:T].view(T, 1, -1), self.sin[:T].view(T, 1, -1)
        for L in self.layers:
            h = self.rmsnorm(x, L["an"])
            q = self.rope(F.linear(h, L["q"]).view(T, H, hd), cos, sin).transpose(0, 1)
            k = self.rope(F.linear(h, L["k"]).view(T, KV, hd), cos, sin).transpose(0, 1)
            v = F.linear(h, L["v"]).view(T, KV, hd).transpose(0, 1)
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            x = x + F.linear(o.transpose(0, 1).reshape(T, H * hd), L["o"])
            h = self.rmsnorm(x, L["fn"])
            x = x + F.linear(F.silu(F.linear(h, L["gate"])) * F.linear(h, L["up"]), L["down"])
        return F.linear(self.rmsnorm(x[-1:], self.out_norm), self.emb)


def timed(fn, reps):
    """Seconds per call of fn over reps calls, CUDA events (host clock on cpu)."""
    if torch.cuda.is_available():
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            fn()
        b.record()
        b.synchronize()
        return a.elapsed_time(b) / 1e3 / reps
    import time
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def decode_speed(peer, batch, steps, graph):
    gen = torch.Generator(device=peer.dev).manual_seed(batch)
    cache = peer.new_cache(batch, gen)
    tok = torch.randint(0, SHAPE["vocab"], (batch,), device=peer.dev, generator=gen)
    pos = torch.tensor(START, device=peer.dev, dtype=torch.int64)
    state = {"p": START}

    def advance(logits):  # greedy, as the engine's bench feeds tokens back
        tok.copy_(logits.argmax(-1))
        state["p"] = START + (state["p"] - START + 1) % (peer.max_ctx - START)
        pos.fill_(state["p"])

    if graph:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                peer.decode(tok, pos, cache)
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            out = peer.decode(tok, pos, cache)

        def step():
            g.replay()
            advance(out)
    else:
        def step():
            advance(peer.decode(tok, pos, cache))
    for _ in range(3):
        step()
    per = statistics.median(timed(step, steps) for _ in range(3))
    return batch / per


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", default="1,16,64,256")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("torch-peer: no CUDA device", file=sys.stderr)
        return 77
    batches = [int(b) for b in a.batches.split(",")]
    dev = torch.device(a.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"torch-peer: torch {torch.__version__} device {name} shape llama-1b fp16", flush=True)
    with torch.inference_mode():
        # the cache holds the decode positions of bench-gpu's timed steps
        peer = Peer(dev, START + a.steps + 8, a.prompt)
        tok = torch.randint(0, SHAPE["vocab"], (a.prompt,), device=dev)
        peer.prefill(tok)
        pre = a.prompt / statistics.median(timed(lambda: peer.prefill(tok), 1) for _ in range(3))
        for mode in ("eager", "graph") if dev.type == "cuda" else ("eager",):
            figs = " ".join(f"b{b}_tok_s={decode_speed(peer, b, a.steps, mode == 'graph'):.1f}"
                            for b in batches)
            lead = f" prefill_tok_s={pre:.0f}" if mode == "eager" else ""
            print(f"torch-peer: mode={mode}{lead} {figs}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
