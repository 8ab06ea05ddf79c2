#!/bin/sh
# check.sh B — `make CUDA=host check-khost`: lib/cuda's kernels on the CPU
# (tests/gpu/khost), in build tree B. khost's self-test; test-backend
# --small, every op against the CPU backend; llm-compare, CUDA against CPU
# end to end (logits, greedy, batch invariance, fused vs unfused ops, graph
# replays vs launches), on small random models of the three architectures
# and three weight types. Small shapes: khost runs each CUDA thread as a
# fiber, so this takes minutes, not seconds. Exit status: the first failure.
set -eu
B=$1
T0=$(date +%s)
dir=$(mktemp -d "${TMPDIR:-/tmp}/khost.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM

echo "== test-khost"
"$B/tests/test-khost"
echo "== test-backend --small (every op, the kernels on khost)"
"$B/gpu/test-backend" --small --quiet
for m in smollm2-135m:Q4_1:256 gemma3-270m:Q4_K:256 qwen2-0.5b:Q8_0:256; do
	shape=${m%%:*} rest=${m#*:}
	type=${rest%%:*} embd=${rest#*:}
	echo "== llm-compare $shape $type (random weights, 2 layers, $embd wide)"
	"$B/gpu/gguf-random" --shape "$shape" --type "$type" --seed 1 --threads 2 --layers 2 \
		--vocab 512 --embd "$embd" --ff 512 --heads 4 --kv-heads 2 --head-dim 64 \
		"$dir/$shape.gguf" >/dev/null
	"$B/gpu/llm-compare" --a cpu --b cuda --float-acts --tol 2e-2 --positions 16 --steps 8 \
		--batch 4 "$dir/$shape.gguf"
	rm -f "$dir/$shape.gguf"
done
echo "check-khost: ok in $(($(date +%s) - T0)) s"
