#!/usr/bin/env bats
# plotd's HTTP front serving a real model: SmolLM2-135M (executor llm)
# through the official `openai` package (httpclient.py). Greedy output over
# HTTP must be exactly `plot run`'s for the same request (the socket front),
# streamed or not, so must sampled output with the same seed, top_p,
# penalties and stop, and usage must count the prompt's tokens as the engine's
# tokenizer does. Like serve-smollm2.bats, a missing model FAILS (run make
# models) unless PLOT_SKIP_MODEL_TESTS=1.

load helpers

: "${PLOT_SMOLLM2:=${XDG_DATA_HOME:-$HOME/.local/share}/plot/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
: "${PLOT_TESTBIN:=$BATS_TEST_DIRNAME/../../build/cc/tests}"
GEN="$PLOT_TESTBIN/llm-generate"

P1="The capital of France is"
P3="def fibonacci(n):"

setup() {
	if [ ! -f "$PLOT_SMOLLM2" ]; then
		[ "${PLOT_SKIP_MODEL_TESTS:-0}" = 1 ] && skip "PLOT_SKIP_MODEL_TESTS=1 and no $PLOT_SMOLLM2"
		echo "# SmolLM2 is not installed at $PLOT_SMOLLM2: run make models" >&2
		return 1
	fi
	plot_setup
	CLIENT="$BATS_TEST_DIRNAME/httpclient.py"
	export PLOT_HTTP_MODEL=smollm2
	plotd_write_config <<-EOF
	daemon: { log_level: debug }
	default_model: smollm2
	models:
	  - name: smollm2
	    executor: llm
	    path: $PLOT_SMOLLM2
	    params: { kvcache_mem_mb: 8, block_size: 16, max_num_seqs: 8, max_batch_tokens: 256 }
	    parking_lot:
	      pool: { threads: 2 }
	      limits: { max_units: null, max_queue_depth: 100, timeout_secs: 300 }
	EOF
}
teardown() { plot_teardown; }

http_start() {
	plotd_start --http 127.0.0.1:0
	wait_until grep -q 'http: listening on' "$PLOTD_STDERR"
	URL="http://$(sed -n 's/.*http: listening on \([0-9.:]*\).*/\1/p' "$PLOTD_STDERR" | head -n 1)"
}

health_is() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" = "$1" ]; }

@test "/health is 503 while the model loads and 200 once it is ready" {
	http_start
	run -0 curl -s -w ' %{http_code}' "$URL/health"
	# loading (503) or already ready (200): never a mismatch of the two
	[[ "$output" == *'"status":"loading"'*' 503' || "$output" == *'"status":"ready"'*' 200' ]]
	wait_until health_is 200
}

@test "greedy chat over HTTP is plot run's output, streamed or not, with the prompt's token count" {
	http_start
	wait_until health_is 200
	for p in "$P1" "$P3"; do
		run -0 "$PLOT" run --temperature 0 -n 16 "$p"
		want="$output"
		[ -n "$want" ]
		run -0 python3 "$CLIENT" "$URL" chat "$p" 16
		assert_output "$want"
		run -0 python3 "$CLIENT" "$URL" chatstream "$p" 16
		assert_output "$want"
	done
	n=$("$GEN" --count "$PLOT_SMOLLM2" 1 "$P1")
	run -0 curl -s "$URL/v1/chat/completions" -d "{\"messages\": [{\"role\": \"user\", \"content\": \"$P1\"}], \"max_tokens\": 4, \"temperature\": 0}"
	assert_output --partial "\"prompt_tokens\":$n,\"completion_tokens\":4"
	assert_output --partial '"finish_reason":"length"'
}

@test "greedy /v1/completions is plot run --raw's output" {
	http_start
	wait_until health_is 200
	run -0 "$PLOT" run --raw --temperature 0 -n 12 "$P1"
	want="$output"
	run -0 python3 "$CLIENT" "$URL" complete "$P1" 12
	assert_output "$want"
	run -0 python3 "$CLIENT" "$URL" completestream "$P1" 12
	assert_output "$want"
}

@test "a prompt plus max_tokens beyond the context is 400 context_length_exceeded" {
	http_start
	run -0 curl -s -w ' %{http_code}' "$URL/v1/completions" -d '{"prompt": "hi", "max_tokens": 10000000}'
	assert_output --partial '"code":"context_length_exceeded"'
	assert_output --partial ' 400'
}

@test "without max_tokens a task runs to the end of the context: finish_reason length" {
	sed -i 's/max_batch_tokens: 256 }/max_batch_tokens: 256, context_length: 48 }/' "$PLOT_CONFIG"
	grep -q 'context_length: 48' "$PLOT_CONFIG"
	http_start
	wait_until health_is 200
	n=$("$GEN" --count "$PLOT_SMOLLM2" 1 "$P1")
	run -0 curl -s "$URL/v1/chat/completions" -d "{\"messages\": [{\"role\": \"user\", \"content\": \"$P1\"}], \"temperature\": 0, \"ignore_eos\": true}"
	assert_output --partial '"finish_reason":"length"'
	assert_output --partial "\"prompt_tokens\":$n,\"completion_tokens\":$((48 - n)),"
}

P4="Once upon a time, in a small village,"

# sampled_http SEED [STOP]: /v1/completions of P4 with the sampling below
# (and the stop string); prints the text
sampled_http() {
	jq -nc --arg p "$P4" --argjson seed "$1" --arg stop "${2:-}" \
		'{prompt: $p, seed: $seed, max_tokens: 16, temperature: 0.9, top_p: 0.9, top_k: 40,
		  min_p: 0.05, frequency_penalty: 0.5, presence_penalty: 0.3}
		 + (if $stop == "" then {} else {stop: $stop} end)' >"$BATS_TEST_TMPDIR/req.json"
	curl -s "$URL/v1/completions" -d @"$BATS_TEST_TMPDIR/req.json" | jq -er '.choices[0].text'
}
sampled_run() { # sampled_run [PLOT RUN OPTIONS]
	"$PLOT" run --raw -n 16 --temperature 0.9 --top-p 0.9 --top-k 40 --min-p 0.05 --seed 7 \
		--frequency-penalty 0.5 --presence-penalty 0.3 "$@" "$P4"
}

@test "sampled: seed, top_p, penalties and stop over HTTP give plot run's output for the same options" {
	http_start
	wait_until health_is 200
	local full word
	full=$(sampled_run)
	run -0 sampled_http 7
	assert_output "$full"
	# another seed samples something else: the seed reached the sampler
	run -0 sampled_http 8
	[ "$output" != "$full" ]
	# stop at the fourth word of that output: both fronts end before it
	word=$(awk '{ print $4 }' <<<"$full")
	[ -n "$word" ]
	run -0 sampled_run --stop "$word"
	local cut=$output
	[ "$cut" != "$full" ] && [[ "$full" == "$cut"* ]]
	run -0 sampled_http 7 "$word"
	assert_output "$cut"
}
