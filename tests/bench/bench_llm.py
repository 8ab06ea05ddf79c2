#!/usr/bin/env python3
"""make bench-llm: plot's engine vs llama.cpp on the shipped models.

Both sides are timed at the same level, their own forward calls: ours is
tests/bench/bench-llm.c (llm_forward) in --serve mode, the peer is
llama.cpp's llama_decode called through llama-cpp-python's ctypes binding
of the C API. Per model, same token ids, same thread count (2 by default)
on both sides:

  prefill: one forward of a 512-token prompt, logits of the last token only
           (peer: one llama_decode of a 512-token batch, n_batch = n_ubatch = 512).
  decode:  after a 16-token prompt, 128 steps of one token each; every step
           picks the greedy argmax of the previous logits and feeds it back
           (peer: np.argmax over a no-copy NumPy view of
           llama_get_logits_ith(ctx, -1), then llama_decode of a one-token
           batch). Timed: the 128 forwards plus the 128 picks, on both sides.
           peer_pick_us is the peer's per-step cost outside llama_decode
           (view, argmax, batch fill, a ctypes call), timed apart: 8-32 us
           against 10-20 ms steps.
  batch16: 16 sequences decoding together (ours only; for the scale).

llama.cpp keeps its defaults otherwise: F16 KV cache (ours too), flash
attention "auto". The first line per model prints llama.cpp's
system_info: make deps-peer builds it with GGML_NATIVE=OFF (AVX2, no
AVX-512) while ours uses AVX-512 where the CPU has it, so for this
benchmark install it with CMAKE_ARGS=-DGGML_NATIVE=ON (llama.cpp's own
default), or the peer is handicapped.

The machine is shared: both models stay loaded, and each of --rounds
rounds (default 10) runs ours' prefill and the peer's back to back, then
both decodes, the order flipping every round. The summary gives min-max of
each side, the median of the per-round ratios (decode_ratio), every
per-round ratio, the ratio of each side's best run (decode_ratio_best)
and the 1-minute load average seen. A contended round can still swing one
ratio (one of ten at 11.9 where the rest were 2.7-3.5), so quote the
median and the spread, not a single round.

--llama-bench PATH adds a figure with no Python on the peer's side:
llama.cpp's own llama-bench (built from the same source) with -t 2 -p 512
-n 128 -b 512 -ub 512 -fa auto -ctk f16 -ctv f16 -r 1, alternating with
ours' prefill and decode; its tg128 has no sampling and starts from an
empty cache, a slightly lighter task than ours. One way to get both from
one compile: install the sdist with CMAKE_ARGS="-DGGML_NATIVE=ON
-DLLAVA_BUILD=OFF" and --config-settings=build-dir=DIR, then compile
vendor/llama.cpp/tools/llama-bench/{llama-bench,main}.cpp against DIR/bin's
libllama-common, libllama, libggml, libggml-base. BENCH_LLM_ARGS passes
options through make. If llama_cpp is not importable (make deps-peer),
peer figures are nan.

Ends with one line per model (and one more per model with --llama-bench,
peer=llama-bench, the same ratio keys):
  llm: model=NAME peer=llama_decode threads=T rounds=N load=A-B
       decode_tps=A-B peer_decode_tps=A-B decode_ratio=MEDIAN
       decode_ratio_best=X decode_ratio_rounds=R1,R2,.. prefill_tps=A-B
       peer_prefill_tps=A-B prefill_ratio=MEDIAN prefill_ratio_best=X
       prefill_ratio_rounds=R1,.. peer_pick_us=X batch16_tps=A-B
       batch16_scale=MEDIAN rss_mb=X
"""

import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import time

MODELS_DIR = os.path.join(os.environ.get("XDG_DATA_HOME", os.path.expanduser("~/.local/share")),
                          "plot", "models")
# (name, file, bos id); both vocabularies have ordinary tokens at 1000..31000
MODELS = [("SmolLM2-135M-Q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf", 1),
          ("gemma3-270M-Q4_K_M", "gemma-3-270m-q4_k_m.gguf", 2)]
N_PREFILL, N_SHORT, N_GEN, BATCH = 512, 16, 128, 16


def prompt_ids(bos):
    """Deterministic ordinary-looking ids (no special tokens past the bos)."""
    return [bos] + [1000 + (i * 7919) % 30000 for i in range(N_PREFILL - 1)]


class Ours:
    """bench-llm --serve: our engine, loaded once, one measurement per request."""

    def __init__(self, binary, path, ids, threads):
        self.p = subprocess.Popen([binary, path, ",".join(map(str, ids)), "--threads", str(threads),
                                   "--gen", str(N_GEN), "--batch", str(BATCH),
                                   "--short", str(N_SHORT), "--serve", "1"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, what):
        self.p.stdin.write(what + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("bench-llm --serve ended early")
        return float(line.split("=")[1])

    def close(self):
        """Ends it; returns its peak RSS in MB."""
        out, _ = self.p.communicate("")
        return float(re.search(r"rss_mb=([\d.]+)", out).group(1))


class Peer:
    """llama.cpp through its C API (llama-cpp-python's ctypes binding)."""

    def __init__(self, path, threads):
        import numpy as np
        import llama_cpp as L
        import llama_cpp._logger
        llama_cpp._logger.set_verbose(False)
        self.np, self.L = np, L
        L.llama_backend_init()
        self.model = L.llama_model_load_from_file(path.encode(), L.llama_model_default_params())
        if not self.model:
            raise RuntimeError("llama.cpp cannot load " + path)
        cp = L.llama_context_default_params()  # F16 K and V, flash attention auto
        cp.n_ctx, cp.n_batch, cp.n_ubatch = 1024, N_PREFILL, N_PREFILL
        cp.n_threads = cp.n_threads_batch = threads
        self.ctx = L.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise RuntimeError("llama.cpp cannot make a context")
        print("peer: llama.cpp %s" % L.llama_print_system_info().decode().strip(), flush=True)
        self.n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.mem = L.llama_get_memory(self.ctx)
        self.batch = L.llama_batch_init(N_PREFILL, 0, 1)
        b = self.batch
        for i in range(N_PREFILL):
            b.n_seq_id[i], b.seq_id[i][0], b.logits[i] = 1, 0, 0
        self.decode_run([1] * N_SHORT)  # warm up: page in the weights

    def fill(self, toks, pos0):
        """Batch of toks at pos0.., logits of the last one only."""
        b = self.batch
        b.n_tokens = len(toks)
        for i, t in enumerate(toks):
            b.token[i], b.pos[i], b.logits[i] = t, pos0 + i, 0
        b.logits[len(toks) - 1] = 1

    def decode_call(self):
        if self.L.llama_decode(self.ctx, self.batch) != 0:
            raise RuntimeError("llama_decode failed")

    def pick(self):
        """Greedy argmax over the last logits, through a view (no copy)."""
        lg = self.np.ctypeslib.as_array(self.L.llama_get_logits_ith(self.ctx, -1),
                                        shape=(self.n_vocab,))
        return int(lg.argmax())

    def prefill(self, ids):
        self.L.llama_memory_clear(self.mem, True)
        self.fill(ids, 0)
        t0 = time.perf_counter()
        self.decode_call()
        self.L.llama_synchronize(self.ctx)
        return len(ids) / (time.perf_counter() - t0)

    def decode_run(self, short):
        self.L.llama_memory_clear(self.mem, True)
        self.fill(short, 0)
        self.decode_call()
        b, pos = self.batch, len(short)
        b.n_tokens, b.logits[0] = 1, 1
        t0 = time.perf_counter()
        for step in range(N_GEN):
            b.token[0], b.pos[0] = self.pick(), pos + step
            self.decode_call()
        self.L.llama_synchronize(self.ctx)
        return N_GEN / (time.perf_counter() - t0)

    def pick_us(self):
        """Per-step cost outside llama_decode: view + argmax + batch fill + a
        ctypes call of the same shape (llama_synchronize, which returns at once)."""
        b = self.batch
        t0 = time.perf_counter()
        for step in range(N_GEN):
            b.token[0], b.pos[0] = self.pick(), step
            self.L.llama_synchronize(self.ctx)
        return (time.perf_counter() - t0) / N_GEN * 1e6


def rng(xs):
    return "%.1f-%.1f" % (min(xs), max(xs)) if xs else "nan"


def med(xs):
    return statistics.median(xs) if xs else math.nan


def ratios(xs):
    return ",".join("%.2f" % x for x in xs) or "nan"


def vs_llama_bench(a, name, path, ours):
    """Rounds of llama-bench (pp512 and tg128, one repetition, llama.cpp's
    defaults spelt out) alternating with ours' prefill and decode."""
    import json
    lb = {"pp": [], "tg": []}
    o = {"pp": [], "tg": []}
    for r in range(max(3, a.rounds // 2)):
        for side in ("ours", "peer") if r % 2 == 0 else ("peer", "ours"):
            if side == "ours":
                o["pp"].append(ours.run("prefill"))
                o["tg"].append(ours.run("decode"))
                continue
            out = subprocess.run([a.llama_bench, "-m", path, "-t", str(a.threads),
                                  "-p", str(N_PREFILL), "-n", str(N_GEN), "-b", str(N_PREFILL),
                                  "-ub", str(N_PREFILL), "-fa", "auto", "-ctk", "f16",
                                  "-ctv", "f16", "-r", "1", "-o", "json"],
                                 capture_output=True, text=True, check=True).stdout
            for t in json.loads(out):
                lb["pp" if t["n_gen"] == 0 else "tg"].append(t["avg_ts"])
        print("%s llama-bench round %d: ours prefill_tps=%.1f decode_tps=%.1f; llama-bench "
              "pp%d=%.1f tg%d=%.1f; load %.1f" % (name, r + 1, o["pp"][-1], o["tg"][-1], N_PREFILL,
                                                  lb["pp"][-1], N_GEN, lb["tg"][-1],
                                                  os.getloadavg()[0]), flush=True)
    rd = [x / y for x, y in zip(o["tg"], lb["tg"])]
    rp = [x / y for x, y in zip(o["pp"], lb["pp"])]
    return ("llm: model=%s peer=llama-bench threads=%d rounds=%d decode_tps=%s peer_decode_tps=%s "
            "decode_ratio=%.2f decode_ratio_rounds=%s prefill_tps=%s peer_prefill_tps=%s "
            "prefill_ratio=%.2f prefill_ratio_rounds=%s" % (
                name, a.threads, len(rd), rng(o["tg"]), rng(lb["tg"]), med(rd), ratios(rd),
                rng(o["pp"]), rng(lb["pp"]), med(rp), ratios(rp)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--batch-rounds", type=int, default=3, help="rounds that also run batch16")
    ap.add_argument("--llama-bench", help="also alternate ours with this llama-bench binary")
    a = ap.parse_args()
    lines = []
    for name, fname, bos in MODELS:
        path = os.path.join(MODELS_DIR, fname)
        if not os.path.exists(path):
            print("bench-llm: %s missing (make models)" % path, file=sys.stderr)
            continue
        ids = prompt_ids(bos)
        try:
            peer = Peer(path, a.threads)
        except ImportError as e:
            print("peer: llama_cpp not importable (%s): peer figures are nan" % e, file=sys.stderr)
            peer = None
        ours = Ours(a.bin, path, ids, a.threads)
        f = {k: [] for k in ("pf", "dec", "ppf", "pdec", "rpf", "rdec", "b", "scale", "load")}
        for r in range(a.rounds):
            f["load"].append(os.getloadavg()[0])
            sides = ("ours", "peer") if r % 2 == 0 else ("peer", "ours")
            got = {}
            for what in ("prefill", "decode"):  # each step: both sides back to back
                for side in sides:
                    if side == "ours":
                        got["ours", what] = ours.run(what)
                    elif peer:
                        got["peer", what] = (peer.prefill(ids) if what == "prefill"
                                             else peer.decode_run(ids[:N_SHORT]))
            f["pf"].append(got["ours", "prefill"])
            f["dec"].append(got["ours", "decode"])
            line = "%s round %d: ours prefill_tps=%.1f decode_tps=%.1f" % (
                name, r + 1, got["ours", "prefill"], got["ours", "decode"])
            if peer:
                f["ppf"].append(got["peer", "prefill"])
                f["pdec"].append(got["peer", "decode"])
                f["rpf"].append(f["pf"][-1] / f["ppf"][-1])
                f["rdec"].append(f["dec"][-1] / f["pdec"][-1])
                line += "; peer prefill_tps=%.1f decode_tps=%.1f; ratio prefill=%.2f decode=%.2f" % (
                    f["ppf"][-1], f["pdec"][-1], f["rpf"][-1], f["rdec"][-1])
            if r < a.batch_rounds:
                f["b"].append(ours.run("batch"))
                f["scale"].append(f["b"][-1] / f["dec"][-1])
                line += "; ours batch%d_tps=%.1f" % (BATCH, f["b"][-1])
            f["load"].append(os.getloadavg()[0])
            print(line + "; load %.1f" % f["load"][-1], flush=True)
        if a.llama_bench:
            lines.append(vs_llama_bench(a, name, path, ours))
        rss = ours.close()
        pick = peer.pick_us() if peer else math.nan
        best = lambda a, b: max(a) / max(b) if a and b else math.nan
        lines.append("llm: model=%s peer=llama_decode threads=%d rounds=%d load=%s "
                     "decode_tps=%s peer_decode_tps=%s decode_ratio=%.2f decode_ratio_best=%.2f "
                     "decode_ratio_rounds=%s prefill_tps=%s peer_prefill_tps=%s prefill_ratio=%.2f "
                     "prefill_ratio_best=%.2f prefill_ratio_rounds=%s peer_pick_us=%.1f "
                     "batch16_tps=%s batch16_scale=%.2f rss_mb=%.1f" % (
                         name, a.threads, a.rounds, rng(f["load"]),
                         rng(f["dec"]), rng(f["pdec"]), med(f["rdec"]), best(f["dec"], f["pdec"]),
                         ratios(f["rdec"]),
                         rng(f["pf"]), rng(f["ppf"]), med(f["rpf"]), best(f["pf"], f["ppf"]),
                         ratios(f["rpf"]), pick, rng(f["b"]), med(f["scale"]), rss))
    for l in lines:
        print(l)


if __name__ == "__main__":
    main()
