# serve-helpers.bash — what the serving tests share: serve-smollm2.bats
# (SmolLM2 on the CPU) and serve-cuda.bats (a tiny model on the emulated or
# real CUDA device) run the same serving checks, one copy each here, on their
# own model, prompts and oracle. daemon-llm.bats uses two_models.
#
#   load helpers
#   load serve-helpers
#   SERVE_MODEL=NAME                  # the served model's name in the config
#   oracle() { ...; }                 # oracle PROMPT N: the engine's greedy text
#   prompt_tokens() { ...; }          # prompt tokens of PROMPT as plot run sends it
#
# A check (serve_*) runs inside a @test after start_ready; it uses the test's
# P1..P4 where the prompts are not passed, and leaves the ids it made in
# upper-case globals for the test's own further checks.

# ---- helpers ------------------------------------------------------------------

is_ready() {
	"$PLOT" models 2>/dev/null | grep -Eq "^$SERVE_MODEL[[:space:]]+llm[[:space:]]+ready"
}

start_ready() {
	plotd_start
	wait_until is_ready
}

jq_py() { # jq_py EXPR: evaluate EXPR with j = the JSON on stdin
	python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

task_field() { # task_field ID KEY
	"$PLOT" status --json "$1" | jq_py "j['$2']"
}

stat_field() { # stat_field KEY: of model $SERVE_MODEL
	"$PLOT" stats --json | jq_py "[m for m in j['models'] if m['name']=='$SERVE_MODEL'][0]['$1']"
}

task_state_is() { [ "$(task_field "$1" state)" = "$2" ]; }
# the id of the task plotd logged last as submitted (plot run prints none)
last_task_id() {
	sed -n 's/.*task \([0-9][0-9]*\) submitted.*/\1/p' "$PLOTD_STDERR" | tail -n 1
}
has_output() { [ "$(task_field "$1" output_bytes)" -gt "${2:-0}" ]; }
units_are() { [ "$(stat_field used_units)" = "$1" ]; }
file_longer() { [ "$(wc -c <"$1")" -gt "$2" ]; }

submit() { # submit ARGS...: a detached greedy task; prints its id
	"$PLOT" submit --temperature 0 "$@"
}

long_task() { # long_task PROMPT [N]: a detached greedy task of N (400) tokens
	# that ignores EOS, so it runs until cancelled; prints its id
	rawclient "$PLOT_SOCKET" submit "$1" \
		"{\"temp\": 0, \"max_tokens\": ${2:-400}, \"ignore_eos\": true, \"detach\": true}"
}

# two_models PATH PARAMS: a model gpu (executor llm on PATH with PARAMS)
# beside a synthetic echo that keeps serving whatever gpu does
two_models() {
	plotd_write_config <<-EOF
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 0 }
	  - name: gpu
	    executor: llm
	    path: $1
	    params: { $2 }
	EOF
}

# ---- the shared checks --------------------------------------------------------

# serve_greedy_is_oracle N: plot run's greedy output of N tokens of P1 and of
# P3 is the oracle's
serve_greedy_is_oracle() {
	local p want
	for p in "$P1" "$P3"; do
		want=$(oracle "$p" "$1")
		[ -n "$want" ]
		run -0 "$PLOT" run --temperature 0 -n "$1" "$p"
		assert_output "$want"
	done
}

# serve_concurrent_solo K: 8 concurrent plot runs of P1..P4 (each twice) each
# give exactly their solo output, and the solo output of prompt K (0..3) is
# the oracle's
serve_concurrent_solo() {
	ps=("$P1" "$P2" "$P3" "$P4")
	# (not $i: bats' run uses that name)
	for k in 0 1 2 3; do
		run -0 "$PLOT" run --temperature 0 -n 16 "${ps[$k]}"
		[ -n "$output" ]
		printf '%s' "$output" >"$BATS_TEST_TMPDIR/solo.$k"
	done
	assert_equal "$(cat "$BATS_TEST_TMPDIR/solo.$1")" "$(oracle "${ps[$1]}" 16)"
	pids=()
	for k in 0 1 2 3 4 5 6 7; do
		"$PLOT" run --temperature 0 -n 16 "${ps[$((k % 4))]}" \
			>"$BATS_TEST_TMPDIR/out.$k" 2>"$BATS_TEST_TMPDIR/err.$k" &
		pids+=($!)
	done
	for k in 0 1 2 3 4 5 6 7; do
		rc=0
		wait "${pids[$k]}" || rc=$?
		assert_equal "$rc" 0
		assert_equal "$(cat "$BATS_TEST_TMPDIR/out.$k")" "$(cat "$BATS_TEST_TMPDIR/solo.$((k % 4))")"
	done
	assert_equal "$(stat_field used_units)" 0
}

# serve_cancel_frees ID: cancelling running task ID frees its blocks (the
# others' already freed): used_units returns to 0, none runs, and the
# partial output of the cancelled task is kept
serve_cancel_frees() {
	run -0 "$PLOT" cancel "$1"
	wait_until task_state_is "$1" cancelled
	wait_until units_are 0
	run -0 stat_field running
	assert_output 0
	run -0 has_output "$1"
}

# serve_queue_full N REFUSED QUEUED...: a running task (BIG) of P1 holds all
# blocks but one, tasks of N tokens of the QUEUED prompts queue (QUEUED_IDS)
# up to max_queue_depth (their number), and plot run of REFUSED is refused:
# QUEUE_FULL, exit 75
serve_queue_full() {
	local n_tok=$1 refused=$2 max n p id
	shift 2
	max=$(stat_field max_units)
	n=$(prompt_tokens "$P1")
	# it ignores EOS, so it holds the blocks until cancelled whatever greedy says
	BIG=$(long_task "$P1" $(((max - 1) * 16 - n)))
	wait_until task_state_is "$BIG" running
	QUEUED_IDS=()
	for p in "$@"; do
		id=$(submit -n "$n_tok" "$p")
		QUEUED_IDS+=("$id")
	done
	run -0 task_field "${QUEUED_IDS[0]}" state
	assert_output queued
	run -75 --separate-stderr "$PLOT" run --temperature 0 -n "$n_tok" "$refused"
	assert_equal "$stderr" "plot run: error: queue of model $SERVE_MODEL is full (max_queue_depth $#)"
}

# serve_deadline N SECS: plot run --raw of N tokens of P2 with a deadline of
# SECS that expires mid-generation exits 124 with its partial output
# (PARTIAL), its task (ID) ends in state timeout
serve_deadline() {
	run -124 --separate-stderr "$PLOT" run --raw --temperature 0 -n "$1" --deadline "$2" "$P2"
	PARTIAL="$output"
	[ -n "$PARTIAL" ]
	ID=$(last_task_id)
	run -0 task_field "$ID" state
	assert_output timeout
}

# serve_tail_follows ID: plot tail of running task ID (of P2) from a second
# client replays it from the start, then follows it live until it is cancelled
serve_tail_follows() {
	local id=$1 tpid rc at head
	wait_until has_output "$id" 20
	"$PLOT" tail "$id" >"$BATS_TEST_TMPDIR/tail.out" 2>"$BATS_TEST_TMPDIR/tail.err" &
	tpid=$!
	# once the replay has begun, bytes the task produces after that point
	# can only arrive by following it live
	wait_until file_longer "$BATS_TEST_TMPDIR/tail.out" 0
	at=$(task_field "$id" output_bytes)
	wait_until file_longer "$BATS_TEST_TMPDIR/tail.out" "$at"
	run -0 task_state_is "$id" running
	run -0 "$PLOT" cancel "$id"
	rc=0
	wait "$tpid" || rc=$?
	assert_equal "$rc" 130
	run -130 --separate-stderr "$PLOT" result "$id"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/tail.out")" "$output"
	head=$(oracle "$P2" 8)
	assert_equal "${output:0:${#head}}" "$head"
}

# serve_priority FIRST N: with max_num_seqs 1 and task FIRST running until
# cancelled, tasks of N tokens of P2, P3 (normal) and P4 (critical, submitted
# last) queue critical first, and are admitted in that order
serve_priority() {
	local first=$1 n1 n2 crit
	wait_until task_state_is "$first" running
	n1=$(submit -n "$2" "$P2")
	n2=$(submit -n "$2" "$P3")
	crit=$(submit -n "$2" -p critical "$P4")
	run -0 "$PLOT" queue --json --state queued
	run -0 jq_py "[(t['id'], t['position']) for t in j]" <<<"$output"
	assert_output "[($crit, 1), ($n1, 2), ($n2, 3)]"
	run -0 "$PLOT" cancel "$first"
	wait_until task_state_is "$n2" done
	# the order plotd admitted them in (its log; one admission at a time
	# with max_num_seqs 1): the starts are only one short task apart,
	# milliseconds on a fast engine, too close to compare through status
	run -0 grep -oE "pool $SERVE_MODEL: task ($crit|$n1|$n2) admitted" "$PLOTD_STDERR"
	run -0 awk '{ print $4 }' <<<"$output"
	assert_output "$(printf '%s\n' "$crit" "$n1" "$n2")"
}
