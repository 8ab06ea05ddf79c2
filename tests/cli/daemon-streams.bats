#!/usr/bin/env bats
# Streams and disconnects: a subscriber that stops reading is dropped while
# its task completes; a run client that vanishes cancels its task; detached
# tasks survive; subscribe replays from the first chunk.

load helpers

setup() { plot_setup; }
teardown() { plot_teardown; }

state_of() { # state_of TASK: the task's state number
	rawclient "$PLOT_SOCKET" call status "{\"task\": $1}" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'
}

@test "a client that never reads its stream is dropped, the task completes" {
	plotd_write_config <<-'EOF'
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 0 }
	EOF
	plotd_start --max-client-output 65536
	# ~800 KB of output: well past the socket buffer plus the 64 KiB cap.
	run -0 rawclient "$PLOT_SOCKET" noread 270000 1
	assert_line --index 0 --regexp '^[0-9]+$'
	assert_line --index 1 dropped
	task=${lines[0]}
	wait_log "client [0-9]+: dropped: .* it stopped reading its stream, the task goes on"
	run -0 rawclient "$PLOT_SOCKET" call result "{\"task\": $task, \"wait\": true}"
	assert_output --partial '"state": 2'
	run -0 state_of "$task"
	assert_output 2
}

@test "a run client that disconnects cancels its task" {
	plotd_write_config <<-'EOF'
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 20 }
	EOF
	plotd_start
	run -0 rawclient "$PLOT_SOCKET" run "$(printf 'w%d ' $(seq 1 200))" 2
	task=$output
	wait_log "task $task cancelled: its run client [0-9]+ disconnected"
	wait_until [ "$(state_of "$task")" = 4 ]
}

@test "a detached task survives its client's disconnect" {
	plotd_write_config <<-'EOF'
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 200 }
	EOF
	plotd_start
	run -0 rawclient "$PLOT_SOCKET" submit "$(printf 'w%d ' $(seq 1 20))" '{"detach": true}'
	task=$output
	run -0 rawclient "$PLOT_SOCKET" call result "{\"task\": $task, \"wait\": true}"
	assert_output --partial '"state": 2'
	assert_output --partial 'w20'
	! plotd_log_has "task $task cancelled"
}

@test "subscribe replays from the first chunk, for several clients at once" {
	plotd_write_config <<-'EOF'
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 50 }
	EOF
	plotd_start
	text="$(printf 'w%d ' $(seq 1 25))"
	run -0 rawclient "$PLOT_SOCKET" submit "$text" '{"detach": true}'
	task=$output
	rawclient "$PLOT_SOCKET" stream "$task" >"$BATS_TEST_TMPDIR/a" 2>/dev/null 3>&- &
	a=$!
	wait_until test -s "$BATS_TEST_TMPDIR/a"
	rawclient "$PLOT_SOCKET" stream "$task" >"$BATS_TEST_TMPDIR/b" 2>/dev/null 3>&- &
	b=$!
	wait "$a"
	wait "$b"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/a")" "$text"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/b")" "$text"
	# And after the end, a late subscriber still gets the whole stream.
	run -0 --separate-stderr rawclient "$PLOT_SOCKET" stream "$task"
	assert_output "$text"
}

@test "a failing task ends its stream FAILED with the executor's error" {
	plotd_start
	run -0 rawclient "$PLOT_SOCKET" submit "!fail after one" '{"detach": true}'
	task=$output
	run -1 rawclient "$PLOT_SOCKET" stream "$task"
	assert_output --partial '"state": "failed"'
}

@test "a large stream arrives whole to several readers, and interleaved on one connection" {
	plotd_write_config <<-'EOF'
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 0 }
	EOF
	plotd_start --max-client-output 67108864 # never dropped here
	printf 'ab %.0s' $(seq 1 150000) >"$BATS_TEST_TMPDIR/prompt"
	task=$(python3 - "$PLOT_TESTS_DIR" "$PLOT_SOCKET" "$BATS_TEST_TMPDIR/prompt" <<-'PY'
	import sys
	sys.path.insert(0, sys.argv[1])
	import rawclient
	c = rawclient.Conn(sys.argv[2])
	c.hello()
	print(c.call("submit", prompt=open(sys.argv[3]).read(), detach=True)["task"])
	PY
	)
	for i in 1 2 3; do
		rawclient "$PLOT_SOCKET" stream "$task" >"$BATS_TEST_TMPDIR/out.$i" 2>/dev/null 3>&- &
		eval "r$i=\$!"
	done
	wait "$r1"
	wait "$r2"
	wait "$r3"
	for i in 1 2 3; do
		cmp "$BATS_TEST_TMPDIR/prompt" "$BATS_TEST_TMPDIR/out.$i"
	done
	# Many streams interleaved on one slowly read connection.
	run -0 rawclient "$PLOT_SOCKET" multi "$task" 30
	assert_output "1 450000"
}
