#!/bin/sh
# bench-gpu.sh — bench-gpu on the Llama 1B shape in F16 and Q4_K (random
# weights from gguf-random), then the PyTorch peer (torch-peer.py, fp16) at
# the same batch sizes, and the ratio of the two: make CUDA=1 bench-gpu, and
# the bench step of tests/gpu/run.
#
#   tests/gpu/bench-gpu.sh GPUBIN [bench-gpu options]
#
# GPUBIN holds gguf-random and bench-gpu (build/<cc>-cuda/gpu). Models go to
# $BENCH_GPU_DIR (default $TMPDIR/plot-bench-gpu) and are kept for the next
# run; BENCH_GPU_PEER=0 skips the peer; PYTHON (python3) runs it. The last
# line is "bench-gpu: ratio_vs_torch F16 ..." (ours / theirs, decode tok/s
# per batch, against torch eager and torch with CUDA graphs).
set -eu

bin=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
dir=${BENCH_GPU_DIR:-${TMPDIR:-/tmp}/plot-bench-gpu}
py=${PYTHON:-python3}
mkdir -p "$dir"
threads=$(nproc 2>/dev/null || echo 4)
[ "$threads" -gt 64 ] && threads=64
for t in F16 Q4_K; do
	f=$dir/llama-1b-$t.gguf
	if [ ! -s "$f" ]; then
		"$bin/gguf-random" --shape llama-1b --type "$t" --seed 1 --threads "$threads" "$f.tmp"
		mv "$f.tmp" "$f"
	fi
done
"$bin/bench-gpu" "$@" "$dir/llama-1b-F16.gguf" "$dir/llama-1b-Q4_K.gguf" | tee "$dir/bench.out"
[ "${BENCH_GPU_PEER:-1}" = 0 ] && exit 0
PYTHONUNBUFFERED=1 "$py" "$here/torch-peer.py" | tee "$dir/peer.out"
# ours / theirs per batch: the bench's F16 line against each peer mode
awk '
	function figs(line, into,   n, i, kv, f) {
		n = split(line, f, " ")
		for (i = 1; i <= n; i++)
			if (split(f[i], kv, "=") == 2 && kv[1] ~ /^b[0-9]+_tok_s$/)
				into[kv[1]] = kv[2]
	}
	/^bench-gpu: model=llama-1b-F16/ { figs($0, ours) }
	/^torch-peer: mode=eager/ { figs($0, eager) }
	/^torch-peer: mode=graph/ { figs($0, graph) }
	END {
		line = "bench-gpu: ratio_vs_torch F16"
		for (k in ours) {
			b = substr(k, 2, index(k, "_") - 2)
			e = (k in eager) && eager[k] > 0 ? sprintf("%.2f", ours[k] / eager[k]) : "-"
			g = (k in graph) && graph[k] > 0 ? sprintf("%.2f", ours[k] / graph[k]) : "-"
			part[b + 0] = sprintf(" b%s: eager=%s graph=%s", b, e, g)
		}
		for (b = 1; b <= 4096; b++)
			if (b in part)
				line = line part[b]
		print line
	}' "$dir/bench.out" "$dir/peer.out"
