"""make bench-tok: tokenizer throughput on both shipped models, ours
($PLOT_BUILD/tests/tok-tool bench) and llama.cpp's (llama-cpp-python,
when installed) on the same ~440 KB multilingual text, best of several
passes each. Ends with one line:
tok: smollm_enc_mbps=X peer_smollm_enc_mbps=X smollm_ratio=X gemma_enc_mbps=X ..."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
from tok_texts import TEXTS  # noqa: E402

BUILD = os.environ["PLOT_BUILD"]
MODELS = os.path.join(os.environ.get("XDG_DATA_HOME") or
                      os.path.expanduser("~/.local/share"), "plot", "models")
SHIPPED = {"smollm": "SmolLM2-135M-Instruct.Q4_1.gguf", "gemma": "gemma-3-270m-q4_k_m.gguf"}
TEXT = (TEXTS["all"] * 300).encode()


def ours(path):
    out = subprocess.run([os.path.join(BUILD, "tests", "tok-tool"), "bench", path], input=TEXT,
                         capture_output=True, check=True).stdout.decode().split()
    r = dict(zip(out[::2], out[1::2]))
    return int(r["tokens"]), float(r["encode_s"]), float(r["decode_s"])


def peer(path):
    try:
        import llama_cpp
    except ImportError:
        return None
    p = llama_cpp.Llama(path, vocab_only=True, verbose=False)
    best_e = best_d = 1e30
    for _ in range(3):
        t0 = time.perf_counter()
        ids = p.tokenize(TEXT, add_bos=False, special=False)
        t1 = time.perf_counter()
        p.detokenize(ids, special=True)
        t2 = time.perf_counter()
        best_e, best_d = min(best_e, t1 - t0), min(best_d, t2 - t1)
    return len(ids), best_e, best_d


fields = []
for short, name in SHIPPED.items():
    path = os.path.join(MODELS, name)
    if not os.path.exists(path):
        sys.exit(f"bench-tok: {path} missing (run make models)")
    n, enc, dec = ours(path)
    mbps = len(TEXT) / enc / 1e6
    line = f"{short}: bytes={len(TEXT)} tokens={n} enc_mbps={mbps:.2f} dec_mtok_s={n / dec / 1e6:.2f}"
    fields.append(f"{short}_enc_mbps={mbps:.2f}")
    pr = peer(path)
    if pr:
        pn, pe, pd = pr
        pmbps = len(TEXT) / pe / 1e6
        line += f" peer_tokens={pn} peer_enc_mbps={pmbps:.2f} peer_dec_mtok_s={pn / pd / 1e6:.2f}"
        fields += [f"peer_{short}_enc_mbps={pmbps:.2f}", f"{short}_ratio={mbps / pmbps:.2f}"]
    else:
        fields += [f"peer_{short}_enc_mbps=na", f"{short}_ratio=na"]
    print(line)
print("tok: " + " ".join(fields))
