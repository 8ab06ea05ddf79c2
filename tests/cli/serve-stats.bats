#!/usr/bin/env bats
# plot stats / plot models for llm models, on the tiny tokenized fixture
# (tests/fixtures/llm-exec-tiny.gguf): the engine's figures (tok/s, batch,
# KV blocks, TTFT/ITL) in the table, --json and --prometheus, and the
# loading -> ready / failed states with progress, context and KV blocks.

load helpers

setup() {
	plot_setup
	TINY="$BATS_TEST_DIRNAME/../fixtures/llm-exec-tiny.gguf"
	plotd_write_config <<-EOF
	default_model: tiny
	models:
	  - name: tiny
	    executor: llm
	    path: $TINY
	    params: { kvcache_mem_mb: 1, block_size: 16, max_num_seqs: 8, max_batch_tokens: 32 }
	    parking_lot: { pool: { threads: 1 } }
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 1000 }
	  - name: broken
	    executor: llm
	    path: $BATS_TEST_TMPDIR/missing.gguf
	    params: { kvcache_mem_mb: 1, block_size: 16 }
	EOF
}
teardown() { plot_teardown; }

jq_py() { # jq_py EXPR: evaluate EXPR on the JSON on stdin as `d`
	python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

model_key() { # model_key NAME KEY: one key of `plot models --json`
	"$PLOT" --json models | jq_py "[m for m in d['models'] if m['name'] == '$1'][0]['$2']"
}

is_ready() { [ "$(model_key tiny state)" = ready ]; }

stat_key() { # stat_key NAME KEY: one key of `plot stats --json`
	"$PLOT" --json stats | jq_py "[m for m in d['models'] if m['name'] == '$1'][0]['$2']"
}

kv_free() { [ "$(stat_key tiny kv_blocks_used)" = 0 ]; }

@test "plot models: loading with progress, then ready with context and KV blocks" {
	plotd_start
	run -0 model_key tiny state
	[[ "$output" = loading || "$output" = ready ]]
	run -0 model_key tiny progress
	python3 -c 'import sys; assert 0 <= float(sys.argv[1]) <= 1' "$output"
	wait_until is_ready
	run -0 model_key tiny progress
	assert_output 1
	run -0 model_key tiny context_length
	assert_output 2048
	# 1 MiB / (128 bytes per token (F16 K+V) * 16 tokens per block) = 512 blocks
	run -0 model_key tiny kv_blocks
	assert_output 512
	run -0 model_key tiny error
	assert_output None
	run -0 model_key echo kv_blocks
	assert_output None
	run -0 model_key tiny path
	assert_output "$TINY"
	run -0 --separate-stderr "$PLOT" models
	assert_line --regexp '^tiny[[:space:]]+llm[[:space:]]+ready[[:space:]]+yes[[:space:]]+2048[[:space:]]+512[[:space:]]'
}

@test "plot models: a model that cannot load is failed with its reason" {
	plotd_start
	wait_until is_ready
	run -0 model_key broken state
	assert_output failed
	run -0 model_key broken error
	assert_output --partial missing.gguf
	run -0 --separate-stderr "$PLOT" models
	assert_line --regexp '^broken[[:space:]]+llm[[:space:]]+failed: [^	]*missing\.gguf'
}

@test "plot stats: engine figures after a few tasks, KV blocks back to 0" {
	plotd_start
	wait_until is_ready
	for p in "hello there" "the cat sat" "hello again"; do
		run -0 --separate-stderr "$PLOT" run -m tiny --temperature 0 -n 16 "$p"
	done
	wait_until kv_free
	run -0 --separate-stderr "$PLOT" --json stats -m tiny
	local s="$output"
	run -0 jq_py "d['models'][0]['kv_blocks_total']" <<<"$s"
	assert_output 512
	run -0 jq_py "d['models'][0]['kv_blocks_used']" <<<"$s"
	assert_output 0
	run -0 jq_py "d['models'][0]['decode_tps'] > 0 and d['models'][0]['prefill_tps'] > 0" <<<"$s"
	assert_output True
	run -0 jq_py "d['models'][0]['batch_size'] >= 1" <<<"$s"
	assert_output True
	run -0 jq_py "0 < d['models'][0]['ttft_p50_ms'] <= d['models'][0]['ttft_p99_ms']" <<<"$s"
	assert_output True
	run -0 jq_py "0 < d['models'][0]['itl_p50_ms'] <= d['models'][0]['itl_p99_ms']" <<<"$s"
	assert_output True
	run -0 jq_py "d['models'][0]['queue_wait_p50_ms'] <= d['models'][0]['queue_wait_p99_ms']" <<<"$s"
	assert_output True
	# a synthetic model has the same keys, null
	run -0 stat_key echo decode_tps
	assert_output None
	run -0 stat_key echo kv_blocks_total
	assert_output None
}

@test "plot stats: the llm figures in the table and in Prometheus" {
	plotd_start
	wait_until is_ready
	run -0 --separate-stderr "$PLOT" run -m tiny --temperature 0 -n 8 "hello there"
	wait_until kv_free
	run -0 --separate-stderr "$PLOT" stats --wide
	assert_line --regexp '^tiny[[:space:]]+cpu[[:space:]]+[0-9.]+ [KM]iB[[:space:]]+[0-9.]+[[:space:]]+[0-9.]+[[:space:]]+[0-9]+[[:space:]]+0/512[[:space:]]+[0-9.]+/[0-9.]+[[:space:]]+[0-9.]+/[0-9.]+[[:space:]]+[0-9.]+/[0-9.]+$'
	assert_line --regexp '^echo[[:space:]]+-[[:space:]]+-[[:space:]]+-[[:space:]]+-[[:space:]]+-[[:space:]]+-[[:space:]]+-[[:space:]]+-[[:space:]]+[0-9.]+/[0-9.]+$'
	run -0 --separate-stderr "$PLOT" stats --prometheus
	assert_line 'plot_kv_blocks_total{model="tiny"} 512'
	assert_line 'plot_kv_blocks_used{model="tiny"} 0'
	assert_line --regexp '^plot_decode_tokens_per_second\{model="tiny"\} [0-9.e+]+$'
	assert_line --regexp '^plot_ttft_seconds\{model="tiny",quantile="0.99"\} [0-9.e+-]+$'
	assert_line '# TYPE plot_itl_seconds summary'
	refute_line --partial 'plot_kv_blocks_total{model="echo"}'
	# the summaries' _count: one request's TTFT, an ITL between each two of its tokens
	local tokens
	tokens=$("$PLOT" --json stats -m tiny | jq -r '.models[0].generated_tokens')
	[ "$tokens" -ge 2 ]
	run -0 python3 "$BATS_TEST_DIRNAME/promcheck.py" 'plot_ttft_seconds_count{model="tiny"}' \
		'plot_itl_seconds_count{model="tiny"}' 'plot_ttft_seconds_sum{model="tiny"}' <<<"$output"
	assert_line --index 0 1
	assert_line --index 1 "$((tokens - 1))"
	python3 -c 'import sys; assert float(sys.argv[1]) > 0' "${lines[2]}"
}

@test "built-in config: smollm2 is the default when its file is installed, else echo" {
	unset PLOT_CONFIG
	run -0 --separate-stderr "$PLOTD" --check-config
	assert_line 'default_model: "echo"'
	refute_output --partial smollm2
	mkdir -p "$XDG_DATA_HOME/plot/models"
	printf GGUF >"$XDG_DATA_HOME/plot/models/SmolLM2-135M-Instruct.Q4_1.gguf" # the magic --check-config looks for
	run -0 --separate-stderr "$PLOTD" --check-config
	assert_line 'default_model: "smollm2"'
	assert_line "    path: \"$XDG_DATA_HOME/plot/models/SmolLM2-135M-Instruct.Q4_1.gguf\""
	assert_line '      kvcache_mem_mb: 256'
	assert_line '      max_num_seqs: 64'
	assert_line '  - name: "echo"'
}

@test "limits set max_units=null on an llm model means every KV block, not unlimited" {
	plotd_start
	wait_until is_ready
	run -0 --separate-stderr "$PLOT" limits set -m tiny max_units=4
	run -0 stat_key tiny max_units
	assert_output 4
	run -0 --separate-stderr "$PLOT" limits set -m tiny max_units=null
	run -0 stat_key tiny max_units
	assert_output 512
	# the limit itself reads back as null
	run -0 --separate-stderr "$PLOT" --json limits -m tiny
	assert_output --partial '"max_units":null'
	# a synthetic model's null is unlimited
	run -0 --separate-stderr "$PLOT" limits set -m echo max_units=null
	run -0 stat_key echo max_units
	assert_output None
}

@test "SIGHUP: changed llm params warn that they need a restart; limits apply" {
	plotd_start
	wait_until is_ready
	sed -i 's/params: { kvcache_mem_mb: 1, block_size: 16, max_num_seqs: 8/params: { kvcache_mem_mb: 2, block_size: 16, max_num_seqs: 8/; s/parking_lot: { pool: { threads: 1 } }/parking_lot: { pool: { threads: 1 }, limits: { max_queue_depth: 7 } }/' "$PLOT_CONFIG"
	kill -HUP "$PLOTD_PID"
	wait_log "config reloaded"
	plotd_log_has "model tiny changed; they apply only on restart"
	! plotd_log_has "model echo changed"
	! plotd_log_has "model broken changed"
	plotd_log_has "pool tiny: limit max_queue_depth 1000 -> 7 \(config reload\)"
	run -0 stat_key tiny kv_blocks_total
	assert_output 512
}
