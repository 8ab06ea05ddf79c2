#!/bin/sh
# bench-serve.sh — bench-serve's device mode (#13): plotd serving the Llama
# 1B shape (F16 and Q4_K, the gguf-random models bench-gpu.sh made) with
# params.device DEV at 1, 16, 64 and 256 concurrent streams, then the
# daemon's figures against bench-gpu's engine figures for the same models
# from the same run (its output, BENCH.OUT), as ratios against #13's goals:
#   single stream through plotd >= 0.90 x bench-gpu batch 1
#   256 streams                 >= 0.60 x bench-gpu's best aggregate
#   stats p99 during the largest round <= 5 ms
# The serve step of tests/gpu/run after bench-gpu (its bench.out).
#
#   tests/gpu/bench-serve.sh BUILD MODELS BENCH.OUT [DEV]
#
# BUILD is build/<cc>-cuda (bin/plotd, bench/bench-serve); MODELS holds
# llama-1b-F16.gguf and llama-1b-Q4_K.gguf; DEV defaults to cuda.
# BENCH_SERVE_NS (1,16,64,256) and BENCH_SERVE_TOKENS (64) shrink a dry
# run (GPU_RUN_DEVICE=cpu). Lines "bench-serve: model=M ..." per model, one
# "bench-serve: ratio M single_decode=X (goal 0.90) single_e2e=X n256=X (goal 0.60) stats_p99_ms=X
# (goal 5) ..." each: single_decode is the n=1 round's decode rate (1000 /
# ITL p50) over bench-gpu's b1_tok_s, the goal's figure; single_e2e its
# n1_tps (prefill included) over the same. Exit 1 when a bench-serve run fails (the goals are
# reported, not enforced: they are measurements).
set -u
build=$1 models=$2 bench_out=$3 dev=${4:-cuda}
rc=0
for t in F16 Q4_K; do
	m=$models/llama-1b-$t.gguf
	# Llama 3.2 1B: 16 layers x 8 KV heads x 64 x (K, V) x 2 bytes (F16 KV)
	out=$(BENCH_SERVE_MODEL=$m BENCH_SERVE_DEVICE=$dev BENCH_SERVE_KV_BYTES=32768 \
		BENCH_SERVE_PROMPT_TOKENS=800 BENCH_SERVE_NS=${BENCH_SERVE_NS:-1,16,64,256} \
		BENCH_SERVE_TOKENS=${BENCH_SERVE_TOKENS:-64} \
		"$build/bench/bench-serve" "$build/bin/plotd") ||
		{ echo "$out" >&2; echo "bench-serve: model=llama-1b-$t FAILED"; rc=1; continue; }
	echo "$out" >&2
	line=$(echo "$out" | grep '^serve: ')
	# the single stream's decode rate: 1000 / its ITL p50 (n1_tps includes the prefill)
	itl1=$(echo "$out" | sed -n 's/^n=1 .* itl_p50_ms=\([0-9.]*\) .*/\1/p')
	echo "bench-serve: model=llama-1b-$t ${line#serve: }"
	# bench-gpu's line for the same model: b1_tok_s and the best b*_tok_s
	grep "^bench-gpu: model=llama-1b-$t.gguf " "$bench_out" 2>/dev/null | awk -v s="$line" -v t="$t" -v itl1="${itl1:-0}" '
		function get(str, key,   n, i, f, kv) {
			n = split(str, f, " ")
			for (i = 1; i <= n; i++)
				if (split(f[i], kv, "=") == 2 && kv[1] == key)
					return kv[2]
			return ""
		}
		{
			b1 = get($0, "b1_tok_s"); best = 0
			n = split($0, f, " ")
			for (i = 1; i <= n; i++)
				if (split(f[i], kv, "=") == 2 && kv[1] ~ /^b[0-9]+_tok_s$/ && kv[2] + 0 > best)
					best = kv[2] + 0
			n1 = get(s, "n1_tps"); n256 = get(s, "n256_tps"); st = get(s, "stats_p99_ms")
			r1 = b1 > 0 ? n1 / b1 : 0
			d1 = itl1 > 0 ? 1000 / itl1 : 0
			rd = b1 > 0 ? d1 / b1 : 0
			r256 = best > 0 ? n256 / best : 0
			printf "bench-serve: ratio llama-1b-%s single_decode=%.2f (goal 0.90) single_e2e=%.2f n256=%.2f (goal 0.60) stats_p99_ms=%s (goal 5) engine_b1=%s engine_best=%.1f\n", t, rd, r1, r256, st, b1, best
			found = 1
		}
		END { if (!found) printf "bench-serve: ratio llama-1b-%s: no bench-gpu figures\n", t }'
done
exit $rc
