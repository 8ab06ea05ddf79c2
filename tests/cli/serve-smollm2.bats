#!/usr/bin/env bats
# Serving a real model: SmolLM2-135M under plotd (executor: llm), driven by
# the plot CLI. The oracle is the engine's own greedy output from
# tests/tools/llm-generate (lib/llm directly: no pool, executor, daemon or
# CLI), never text pasted from an earlier run. Like `plot run`, it renders a
# prompt as one user turn through the model's chat template (--raw: as is).
#
# The model is installed by `make models` (CI runs it before `make check`).
# A missing model FAILS every test with "run make models": a skip would hide
# a missing install step. PLOT_SKIP_MODEL_TESTS=1 turns that into a skip,
# for a machine that cannot download it (say so when you use it).
#
# Sizes: 8 MiB of KV cache at 23040 bytes per token (F16 K+V) is 22 blocks of 16
# tokens (max_units null = all of them); prompts are a few dozen tokens and
# max_tokens 8..32 except where a task must outlive a check (those are
# cancelled, never waited out), so the file stays fast under ASan too.

load helpers
load serve-helpers

: "${PLOT_SMOLLM2:=${XDG_DATA_HOME:-$HOME/.local/share}/plot/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
: "${PLOT_TESTBIN:=$BATS_TEST_DIRNAME/../../build/cc/tests}"
GEN="$PLOT_TESTBIN/llm-generate"
TOKTOOL="$PLOT_TESTBIN/tok-tool"

P1="The capital of France is"
P2="Once upon a time, there was a little"
P3="def fibonacci(n):"
P4="The three primary colors are"
# a chat turn written out: greedy decoding ends it with <|im_end|> early
P5=$'<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n'

setup() {
	if [ ! -f "$PLOT_SMOLLM2" ]; then
		[ "${PLOT_SKIP_MODEL_TESTS:-0}" = 1 ] && skip "PLOT_SKIP_MODEL_TESTS=1 and no $PLOT_SMOLLM2"
		echo "# SmolLM2 is not installed at $PLOT_SMOLLM2: run make models" >&2
		return 1
	fi
	if [ ! -x "$GEN" ] || [ ! -x "$TOKTOOL" ]; then
		echo "# $GEN or $TOKTOOL missing: run the tests through make cli" >&2
		return 1
	fi
	plot_setup
	smollm2_config 8 100
}
teardown() { plot_teardown; }

# smollm2_config MAX_NUM_SEQS MAX_QUEUE_DEPTH [KV_MB]
smollm2_config() {
	plotd_write_config <<-EOF
	daemon: { log_level: debug }
	default_model: smollm2
	models:
	  - name: smollm2
	    executor: llm
	    path: $PLOT_SMOLLM2
	    params: { kvcache_mem_mb: ${3:-8}, block_size: 16, max_num_seqs: $1, max_batch_tokens: 256 }
	    parking_lot:
	      pool: { threads: 2 }
	      limits: { max_units: null, max_queue_depth: $2, timeout_secs: 300 }
	EOF
}

# ---- helpers (the rest: serve-helpers.bash) --------------------------------

SERVE_MODEL=smollm2

oracle() { # oracle PROMPT N: the engine's greedy text
	"$GEN" "$PLOT_SMOLLM2" "$2" "$1"
}

prompt_tokens() { # prompt tokens of PROMPT as one user turn through the template
	"$GEN" --count "$PLOT_SMOLLM2" 1 "$1"
}

assert_stderr_has() { # bats-assert here has no assert_stderr
	[[ "$stderr" == *"$1"* ]] || { echo "# stderr lacks '$1': $stderr" >&2; return 1; }
}

# ---- tests --------------------------------------------------------------------

@test "plot run's greedy output is the engine's own greedy output" {
	start_ready
	serve_greedy_is_oracle 24
}

@test "the cost is ceil((prompt tokens + max_tokens) / block_size)" {
	start_ready
	n=$(prompt_tokens "$P2")
	[ "$n" -gt 3 ]
	id=$(submit -n 29 "$P2")
	run -0 task_field "$id" cost
	assert_output "$(((n + 29 + 15) / 16))"
	wait_until task_state_is "$id" done
}

@test "8 concurrent plot runs each give exactly their solo output" {
	start_ready
	serve_concurrent_solo 0
}

@test "cancelling mid-stream frees its blocks: used_units returns to 0" {
	# 64 MiB of KV: room for two long tasks. Greedy SmolLM2 runs 120 tokens
	# in well under a second, so each asks for 1000 (seconds of work; the
	# second ignores EOS, P2's story does not end sooner): both still run
	# when the blocks are counted. Their costs are computed first, for the same reason.
	smollm2_config 8 100 64
	c2=$((($(prompt_tokens "$P2") + 1000 + 15) / 16))
	c4=$((($(prompt_tokens "$P4") + 1000 + 15) / 16))
	start_ready
	# a plot run stopped by a signal cancels its task (exit 130)
	"$PLOT" run --temperature 0 -n 1000 "$P2" >"$BATS_TEST_TMPDIR/run.out" 2>&1 &
	rpid=$!
	id2=$(long_task "$P4" 1000)
	wait_until file_longer "$BATS_TEST_TMPDIR/run.out" 0
	wait_until has_output "$id2"
	# both tasks hold their ceil((prompt + max_tokens) / 16) blocks while they run
	run -0 stat_field used_units
	assert_output $((c2 + c4))
	kill -TERM "$rpid"
	rc=0
	wait "$rpid" || rc=$?
	assert_equal "$rc" 130
	serve_cancel_frees "$id2"
}

@test "CAPACITY with real token costs: a task bigger than max_units exits 75" {
	start_ready
	run -0 stat_field max_units
	assert_output 22
	n=$(prompt_tokens "$P1")
	# the largest max_tokens that fits in 22 blocks, then one more block
	fits=$((22 * 16 - n))
	run -75 --separate-stderr "$PLOT" run --temperature 0 -n $((fits + 1)) "$P1"
	assert_equal "$stderr" "plot run: error: cost 23 exceeds max_units 22 of model smollm2"
	# it ignores EOS, so it is still running when cancelled (greedy P1 ends
	# at end-of-text after a few dozen tokens, and cancel of an ended task
	# is an error)
	id=$(rawclient "$PLOT_SOCKET" submit "$P1" \
		"{\"temp\": 0, \"max_tokens\": $fits, \"ignore_eos\": true, \"detach\": true}")
	run -0 task_field "$id" cost
	assert_output 22
	run -0 "$PLOT" cancel "$id"
	wait_until units_are 0
}

@test "QUEUE_FULL with real token costs: units held, queue at max_queue_depth, exit 75" {
	smollm2_config 8 2
	start_ready
	# a running task holding 21 of 22 blocks; the others must queue
	run -0 stat_field max_units
	assert_output 22
	serve_queue_full 16 "$P1" "$P2" "$P3"
	q1=${QUEUED_IDS[0]} q2=${QUEUED_IDS[1]}
	run -0 task_field "$q2" cost
	assert_output "$((($(prompt_tokens "$P3") + 16 + 15) / 16))"
	run -0 stat_field rejected_queue_full
	assert_output 1
	run -0 "$PLOT" cancel "$BIG"
	wait_until task_state_is "$q2" done
	run -0 "$PLOT" result "$q1"
	assert_output "$(oracle "$P2" 16)"
}

@test "a deadline expires mid-generation: exit 124, partial output kept" {
	smollm2_config 8 100 64
	start_ready
	# --raw: a plain completion of P2 runs on (no end of text in 600 greedy
	# tokens, with either KV cache type); as a chat turn SmolLM2 stops early
	serve_deadline 2000 1.5
	partial=$PARTIAL id=$ID
	run -124 --separate-stderr "$PLOT" result "$id"
	assert_equal "$output" "$partial"
	chunks=$(task_field "$id" chunks)
	full=$("$GEN" --raw "$PLOT_SMOLLM2" $((chunks + 4)) "$P2")
	[ "${#full}" -gt "${#partial}" ]
	assert_equal "${full:0:${#partial}}" "$partial"
	wait_until units_are 0
}

@test "plot tail from a second client replays from the start, then follows" {
	start_ready
	id=$(submit -n 300 "$P2")
	serve_tail_follows "$id"
}

@test "priority: a critical task submitted last starts before the queued normal ones" {
	smollm2_config 1 100 64
	start_ready
	# it ignores EOS (greedy ends P1 after ~40 tokens, a fraction of a
	# second), so it runs until cancelled while the others queue
	first=$(long_task "$P1" 2000)
	serve_priority "$first" 8
}

@test "request parameters are validated with clear errors" {
	start_ready
	# the CLI refuses out-of-range values itself: exit 2, naming the option
	run -2 --separate-stderr "$PLOT" run --top-p 2 "$P1"
	assert_stderr_has "plot run: --top-p: 2 is out of range (0..1)"
	run -2 --separate-stderr "$PLOT" run --max-tokens 0 "$P1"
	assert_stderr_has "plot run: --max-tokens: 0 is out of range"
	run -2 --separate-stderr "$PLOT" run --temperature -1 "$P1"
	assert_stderr_has "plot run: --temperature: -1 is out of range (0..100)"
	run -2 --separate-stderr "$PLOT" run --top-k -1 "$P1"
	assert_stderr_has "plot run: --top-k: '-1' is not a whole number"
	run -2 --separate-stderr "$PLOT" run --min-p 1.5 "$P1"
	assert_stderr_has "plot run: --min-p: 1.5 is out of range (0..1)"
	run -2 --separate-stderr "$PLOT" run --top-p 0 "$P1"
	assert_stderr_has "plot run: --top-p: 0 is out of range (must be in (0, 1])"
	# what passes the CLI but not the model: the daemon says why, exit 1
	run -1 --separate-stderr "$PLOT" run -m nosuch "$P1"
	[[ "$stderr" == "plot run: error: no model named 'nosuch' (models: "* ]]
	n=$(prompt_tokens "$P1")
	run -1 --separate-stderr "$PLOT" run -n 9000 "$P1"
	assert_equal "$stderr" "plot run: error: prompt of $n tokens + max_tokens 9000 exceeds the context of 8192"
	run -0 stat_field submitted
	assert_output 0
}

@test "ignore_eos (protocol field) generates past the end-of-generation token" {
	start_ready
	short=$(oracle "$P5" 40)
	long=$("$GEN" "$PLOT_SMOLLM2" 40 "$P5" --ignore-eos)
	[ "${#long}" -gt "${#short}" ]
	run -0 "$PLOT" run --temperature 0 -n 40 "$P5"
	assert_output "$short"
	id=$(rawclient "$PLOT_SOCKET" submit "$P5" '{"temp": 0, "max_tokens": 40, "ignore_eos": true, "detach": true}')
	run -0 rawclient "$PLOT_SOCKET" call result "{\"task\": $id, \"wait\": true}"
	run -0 python3 -c 'import json,sys; print(json.load(sys.stdin)["data"], end="")' <<<"$output"
	assert_output "$long"
}

@test "a stop string ends the task with finish stop, before the string, as the engine's text says" {
	start_ready
	local want stop prefix
	want=$(oracle "$P1" 32)
	# the stop string is a word of the engine's own answer (not its first
	# characters), so the answer must end right before its first occurrence
	stop=$(python3 -c 'import sys
t = sys.argv[1]
print(next(w for w in t.split()[2:] if len(w) > 2 and t.index(w) > 0))' "$want")
	[ -n "$stop" ]
	prefix=${want%%"$stop"*}
	[ "${#prefix}" -lt "${#want}" ]
	run -0 --separate-stderr "$PLOT" run --temperature 0 -n 32 --stop "$stop" "$P1"
	assert_output "$prefix"
	run -0 --separate-stderr "$PLOT" --json run --temperature 0 -n 32 --stop "$stop" "$P1"
	local end=${lines[-1]}
	assert_equal "$(jq -r '[.event, .state, .finish] | @tsv' <<<"$end")" "end	done	stop"
	[ "$(jq -rs '[.[:-1][] | .text] | join("")' <<<"$output")" = "$prefix" ]
	local id
	id=$(jq -r .id <<<"$end")
	run -0 "$PLOT" status "$id"
	assert_line --regexp '^stopped +stop$'
	[ "$(task_field "$id" finish)" = stop ]
	# without the stop string the same prompt does not end with finish stop
	run -0 --separate-stderr "$PLOT" --json run --temperature 0 -n 32 "$P1"
	[ "$(jq -r .finish <<<"${lines[-1]}")" != stop ]
}
