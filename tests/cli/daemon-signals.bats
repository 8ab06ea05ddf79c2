#!/usr/bin/env bats
# Signals: SIGHUP reloads the runtime limits (and survives a bad config);
# SIGTERM drains: accepted work completes, new work is refused, exit 0.

load helpers

setup() { plot_setup; }
teardown() { plot_teardown; }

config_units() {
	plotd_write_config <<-EOF
	parking_lot:
	  pool:    { max_running: 2 }
	  limits:  { max_units: $1, max_queue_depth: $2, timeout_secs: 120 }
	daemon:    { log_level: ${3:-debug} }
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 1000 }
	EOF
}

limit_of() { # limit_of KEY: the echo model's value from limits_get
	rawclient "$PLOT_SOCKET" call limits_get | python3 -c '
import json, sys
m = json.load(sys.stdin)["models"][0]
print({kv["k"]: kv["v"] for kv in m["kv"]}[sys.argv[1]])' "$1"
}

@test "SIGHUP applies changed limits and logs each change" {
	config_units 8 100
	plotd_start
	run -0 limit_of max_units
	assert_output 8
	config_units 16 50
	kill -HUP "$PLOTD_PID"
	wait_log "config reloaded"
	plotd_log_has "pool echo: limit max_units 8 -> 16 \(config reload\)"
	plotd_log_has "pool echo: limit max_queue_depth 100 -> 50 \(config reload\)"
	run -0 limit_of max_units
	assert_output 16
	run -0 limit_of max_queue_depth
	assert_output 50
}

@test "SIGHUP changes the log level" {
	config_units 8 100 info
	plotd_start
	config_units 8 100 debug
	kill -HUP "$PLOTD_PID"
	wait_log "log_level info -> debug"
	run -0 rawclient "$PLOT_SOCKET" call ping
	wait_log "client [0-9]+: connected"
}

@test "SIGHUP with a bad config logs an error and keeps the running config" {
	config_units 8 100
	plotd_start
	printf 'parking_lot:\n  limits: { max_units: -3 }\n' >"$PLOT_CONFIG"
	kill -HUP "$PLOTD_PID"
	wait_log "config reload failed, keeping the running config: .*plot.yaml:2:"
	plotd_alive
	run -0 limit_of max_units
	assert_output 8
	run -0 rawclient "$PLOT_SOCKET" submit "still works"
}

@test "SIGTERM drains: queued work completes, new submits are refused, exit 0" {
	plotd_write_config <<-'EOF'
	parking_lot:
	  pool:    { max_running: 1 }
	  limits:  { max_units: 1, max_queue_depth: 10 }
	daemon:    { log_level: debug }
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 25 }
	EOF
	plotd_start
	words=$(printf 'w%d ' $(seq 1 80))
	run -0 rawclient "$PLOT_SOCKET" submit "$words" '{"detach": true}'
	first=$output
	run -0 rawclient "$PLOT_SOCKET" submit "alpha beta gamma" '{"detach": true}'
	queued=$output
	rawclient "$PLOT_SOCKET" stream "$queued" >"$BATS_TEST_TMPDIR/out" \
		2>"$BATS_TEST_TMPDIR/end" 3>&- &
	streamer=$!
	wait_log "pool echo: task $queued submitted"
	kill -TERM "$PLOTD_PID"
	wait_log "SIGTERM: draining"
	run -1 rawclient "$PLOT_SOCKET" submit "too late"
	assert_output --partial '"code": "SHUTDOWN"'
	plotd_wait_exit
	assert_equal "$PLOTD_STATUS" 0
	wait "$streamer"
	run -0 cat "$BATS_TEST_TMPDIR/out"
	assert_output "alpha beta gamma"
	run -0 cat "$BATS_TEST_TMPDIR/end"
	assert_output --partial '"state": "done"'
	plotd_log_has "every pool is stopped"
	[ -n "$first" ]
}

@test "SIGTERM with a short drain timeout cancels what is left, visibly" {
	plotd_write_config <<-'EOF'
	parking_lot:
	  pool:    { max_running: 1 }
	  limits:  { max_units: 1 }
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 2 }
	EOF
	plotd_start --drain-timeout 0.3
	run -0 rawclient "$PLOT_SOCKET" submit "$(printf 'w%d ' $(seq 1 100))" '{"detach": true}'
	task=$output
	rawclient "$PLOT_SOCKET" stream "$task" >"$BATS_TEST_TMPDIR/out" \
		2>"$BATS_TEST_TMPDIR/end" 3>&- &
	streamer=$!
	wait_until test -s "$BATS_TEST_TMPDIR/out"
	kill -TERM "$PLOTD_PID"
	plotd_wait_exit
	assert_equal "$PLOTD_STATUS" 0
	rc=0
	wait "$streamer" || rc=$?
	assert_equal "$rc" 1
	run -0 cat "$BATS_TEST_TMPDIR/end"
	assert_output --partial '"state": "cancelled"'
}

@test "the drain request answers ok, finishes the work, and plotd exits 0" {
	plotd_write_config <<-'EOF'
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 20 }
	EOF
	plotd_start
	text=$(printf 'w%d ' $(seq 1 40))
	run -0 rawclient "$PLOT_SOCKET" submit "$text" '{"detach": true}'
	task=$output
	rawclient "$PLOT_SOCKET" stream "$task" >"$BATS_TEST_TMPDIR/out" 2>/dev/null 3>&- &
	streamer=$!
	wait_until test -s "$BATS_TEST_TMPDIR/out"
	run -0 rawclient "$PLOT_SOCKET" call drain
	assert_output --partial '"op": "drain"'
	plotd_wait_exit
	assert_equal "$PLOTD_STATUS" 0
	wait "$streamer"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/out")" "$text"
	plotd_log_has "drain requested by uid 0"
}

@test "the shutdown request cancels running work at once and plotd exits 0" {
	plotd_write_config <<-'EOF'
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 2 }
	EOF
	plotd_start
	run -0 rawclient "$PLOT_SOCKET" submit "$(printf 'w%d ' $(seq 1 100))" '{"detach": true}'
	task=$output
	rawclient "$PLOT_SOCKET" stream "$task" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/end" 3>&- &
	streamer=$!
	wait_until test -s "$BATS_TEST_TMPDIR/out"
	run -0 rawclient "$PLOT_SOCKET" call shutdown
	plotd_wait_exit
	assert_equal "$PLOTD_STATUS" 0
	rc=0
	wait "$streamer" || rc=$?
	assert_equal "$rc" 1
	run -0 cat "$BATS_TEST_TMPDIR/end"
	assert_output --partial '"state": "cancelled"'
}
