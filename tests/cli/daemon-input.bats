#!/usr/bin/env bats
# Limits on input: malformed and oversized frames get an error and the
# connection is closed; a bad field gets an error and the connection goes
# on; nothing a client sends affects other clients.

load helpers

setup() { plot_setup; }
teardown() { plot_teardown; }

@test "a malformed frame gets MALFORMED, then the connection is closed" {
	plotd_start
	run -0 rawclient "$PLOT_SOCKET" garbage
	assert_line --index 0 --partial '"code": "MALFORMED"'
	assert_line --index 1 closed
	wait_log "bad frame, closing: MALFORMED"
	run -0 rawclient "$PLOT_SOCKET" call ping
}

@test "an oversized frame gets TOO_LARGE before its body is read, then close" {
	plotd_start
	run -0 rawclient "$PLOT_SOCKET" oversize 1048577
	assert_line --index 0 --partial '"code": "TOO_LARGE"'
	assert_line --index 0 --partial 'max_frame 1048576'
	assert_line --index 1 closed
	run -0 rawclient "$PLOT_SOCKET" oversize 4294967295
	assert_line --index 0 --partial '"code": "TOO_LARGE"'
}

@test "bad frames do not disturb a stream of another client" {
	plotd_write_config <<-'EOF'
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 100 }
	EOF
	plotd_start
	run -0 rawclient "$PLOT_SOCKET" submit "$(printf 'x%d ' $(seq 1 30))" '{"detach": true}'
	task=$output
	rawclient "$PLOT_SOCKET" stream "$task" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/end" 3>&- &
	streamer=$!
	for i in 1 2 3; do
		run -0 rawclient "$PLOT_SOCKET" garbage
		run -0 rawclient "$PLOT_SOCKET" oversize 99999999
	done
	wait "$streamer"
	run -0 cat "$BATS_TEST_TMPDIR/out"
	assert_output "$(printf 'x%d ' $(seq 1 30))"
	plotd_alive
}

@test "a request before hello is refused and the connection closed" {
	plotd_start
	run -0 rawclient "$PLOT_SOCKET" nohello
	assert_line --index 0 --partial '"code": "INVALID"'
	assert_line --index 0 --partial 'first message must be hello'
	assert_line --index 1 closed
}

@test "a protocol version mismatch names both versions" {
	plotd_start
	run -0 rawclient "$PLOT_SOCKET" badversion
	assert_line --index 0 --partial '"code": "VERSION"'
	assert_line --index 0 --partial '999'
	assert_line --index 0 --partial '1'
	assert_line --index 1 closed
}

@test "a well-formed request with a bad field gets INVALID and the connection goes on" {
	plotd_start
	run -1 rawclient "$PLOT_SOCKET" call submit '{"prompt": "x", "prio": 9}'
	assert_output --partial '"code": "INVALID"'
	assert_output --partial 'prio'
	run -1 rawclient "$PLOT_SOCKET" call submit '{"prompt": "x", "msgs": [{"role": "user", "content": "y"}]}'
	assert_output --partial 'exactly one of prompt and msgs'
	run -1 rawclient "$PLOT_SOCKET" call submit '{"prompt": "x", "model": "nope"}'
	assert_output --partial '"code": "NOT_FOUND"'
	run -1 rawclient "$PLOT_SOCKET" call status '{"task": 424242}'
	assert_output --partial '"code": "NOT_FOUND"'
}

@test "QUEUE_FULL and CAPACITY are reported with their limits" {
	plotd_write_config <<-'EOF'
	parking_lot:
	  pool:    { max_running: 1 }
	  limits:  { max_units: 2, max_queue_depth: 1 }
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 1 }
	EOF
	plotd_start
	run -1 rawclient "$PLOT_SOCKET" submit "big" '{"cost": 3}'
	assert_output --partial '"code": "CAPACITY"'
	assert_output --partial 'cost 3 exceeds max_units 2'
	run -0 rawclient "$PLOT_SOCKET" submit "$(printf 'w%d ' $(seq 1 100))" '{"detach": true}'
	wait_until sh -c "python3 '$PLOT_TESTS_DIR/rawclient.py' '$PLOT_SOCKET' call stats | grep -q '\"running\": 1'"
	run -0 rawclient "$PLOT_SOCKET" submit "queued" '{"detach": true}'
	run -1 rawclient "$PLOT_SOCKET" submit "one too many"
	assert_output --partial '"code": "QUEUE_FULL"'
	assert_output --partial 'max_queue_depth 1'
	plotd_log_has "submit from uid 0 rejected: QUEUE_FULL"
}
