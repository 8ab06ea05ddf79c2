#!/usr/bin/env bats
# Random-weight models (tests/tools/gguf-random.c) on the CPU engine, checked
# by tests/tools/llm-compare.c: every architecture and every weight type the
# engine reads loads, gives finite logits, and gives bitwise the same logits
# and greedy tokens with 1 and 2 compute threads, alone or among 23 other
# sequences. The same two programs check the CUDA backend in tests/gpu/run.

load helpers

: "${PLOT_TESTBIN:=$BATS_TEST_DIRNAME/../../build/cc/tests}"
GEN="$PLOT_TESTBIN/gguf-random"
CMP="$PLOT_TESTBIN/llm-compare"
LLMGEN="$PLOT_TESTBIN/llm-generate"

setup() {
	plot_setup
}

teardown() {
	plot_teardown
}

# check ARCH TYPE: a tiny model, compared with itself on 1 and 2 threads
check() {
	local m="$BATS_TEST_TMPDIR/$1-$2.gguf"
	run -0 "$GEN" --arch "$1" --type "$2" --seed 7 "$m"
	run -0 "$CMP" --exact --threads-a 1 --threads-b 2 --positions 64 --steps 24 --batch 24 "$m"
	assert_line --partial "llm-compare: ok"
	assert_line --regexp '^logits: 64 positions finite=yes .* ok$'
	assert_line --regexp '^greedy: 24/24 steps identical'
	assert_line --regexp '^batch:  cpu: seq 0 alone vs among 23 others, prompts prefilled one by one: tokens identical, logits max_abs 0.000e\+00 ok$'
	assert_line --regexp '^batch:  cpu: seq 0 alone vs among 23 others, one joint prefill: tokens identical, logits max_abs 0.000e\+00 ok$'
}

@test "llama: F32, Q4_0, Q5_1, Q4_K and Q6_K weights are deterministic and batch invariant" {
	for t in F32 Q4_0 Q5_1 Q4_K Q6_K; do check llama "$t"; done
}

@test "qwen2: F16, Q4_1, Q8_0 and Q5_K weights are deterministic and batch invariant" {
	for t in F16 Q4_1 Q8_0 Q5_K; do check qwen2 "$t"; done
}

@test "gemma3: BF16, Q5_0, Q4_K and Q6_K weights are deterministic and batch invariant" {
	for t in BF16 Q5_0 Q4_K Q6_K; do check gemma3 "$t"; done
}

@test "the comparison fails when the two sides differ" {
	run -0 "$GEN" --seed 1 "$BATS_TEST_TMPDIR/a.gguf"
	run -0 "$GEN" --seed 2 "$BATS_TEST_TMPDIR/b.gguf"
	run -1 "$CMP" --positions 16 --steps 8 --batch 4 --model-b "$BATS_TEST_TMPDIR/b.gguf" \
		"$BATS_TEST_TMPDIR/a.gguf"
	assert_line --regexp '^logits: 16 positions .* FAIL$'
	assert_line --partial "llm-compare: FAIL"
}

@test "a device that cannot run the model is an engine error (exit 3) naming it" {
	run -0 "$GEN" "$BATS_TEST_TMPDIR/a.gguf"
	run -3 --separate-stderr "$CMP" --b cuda:7 "$BATS_TEST_TMPDIR/a.gguf"
	[[ "$stderr" == *"llm-compare: cuda:7: "*"cuda"* ]]
}

@test "the file depends on the seed only, not on the thread count" {
	run -0 "$GEN" --type Q4_K --seed 3 --threads 1 "$BATS_TEST_TMPDIR/a.gguf"
	run -0 "$GEN" --type Q4_K --seed 3 --threads 3 "$BATS_TEST_TMPDIR/b.gguf"
	run -0 "$GEN" --type Q4_K --seed 4 "$BATS_TEST_TMPDIR/c.gguf"
	cmp "$BATS_TEST_TMPDIR/a.gguf" "$BATS_TEST_TMPDIR/b.gguf"
	! cmp -s "$BATS_TEST_TMPDIR/a.gguf" "$BATS_TEST_TMPDIR/c.gguf"
}

@test "the byte-level tokenizer and ChatML template load: plot's prompt path works" {
	run -0 "$GEN" "$BATS_TEST_TMPDIR/a.gguf"
	# bos + one token per character
	run -0 "$LLMGEN" --raw --count "$BATS_TEST_TMPDIR/a.gguf" 1 "hello"
	assert_output 6
	# "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n", bos first
	run -0 "$LLMGEN" --count "$BATS_TEST_TMPDIR/a.gguf" 1 "hello"
	assert_output 25
	run -0 "$LLMGEN" "$BATS_TEST_TMPDIR/a.gguf" 8 "hello" --ignore-eos
}

@test "a shape's K-quant matrices whose rows do not fit 256 fall back as llama.cpp does" {
	run -0 --separate-stderr "$GEN" --shape smollm2-135m --layers 1 --vocab 1024 --type Q4_K \
		"$BATS_TEST_TMPDIR/s.gguf"
	[[ "$stderr" == *"blk.0.attn_q.weight: 576 columns are not a multiple of 256: Q5_0, not Q4_K"* ]]
	run -0 "$CMP" --exact --positions 16 --steps 8 --batch 4 "$BATS_TEST_TMPDIR/s.gguf"
}

@test "bad arguments are usage errors naming what is wrong" {
	run -2 --separate-stderr "$GEN" --type Q2_K "$BATS_TEST_TMPDIR/x.gguf"
	[[ "$stderr" == *"'Q2_K': unknown weight type"* ]]
	run -2 --separate-stderr "$GEN" --shape huge "$BATS_TEST_TMPDIR/x.gguf"
	[[ "$stderr" == *"'huge': unknown shape"* ]]
	run -2 --separate-stderr "$GEN" --heads 5 --kv-heads 2 "$BATS_TEST_TMPDIR/x.gguf"
	[[ "$stderr" == *"multiple of kv-heads"* ]]
	run -2 --separate-stderr "$GEN" --embd 100 --type Q8_0 "$BATS_TEST_TMPDIR/x.gguf"
	[[ "$stderr" == *"100 columns do not fit Q8_0 blocks of 32"* ]]
	run -2 --separate-stderr "$GEN"
	[[ "$stderr" == *"usage: gguf-random"* ]]
}
