#!/usr/bin/env bats
# The daemon's lifecycle from a terminal (#14): daemon restart and reload,
# and a client given --config that finds a daemon with another config.

load helpers
load cli-helpers

setup() {
	plot_setup
	cli_config 2
}

teardown() {
	cli_teardown
}

daemon_pid() {
	"$PLOT" --json daemon status | jq -r .pid
}

limit_is() { # limit_is KEY VALUE: the echo model's limit, for wait_until
	[ "$("$PLOT" --json limits -m echo | jq -r ".models[0].$1")" = "$2" ]
}

@test "daemon restart: a new plotd, with this command's config" {
	run -0 "$PLOT" daemon start --config "$PLOT_CONFIG"
	local old
	old=$(daemon_pid)
	plot_kill_later "$old"
	cp "$PLOT_CONFIG" "$BATS_TEST_TMPDIR/other.yaml"
	sed -i 's/max_queue_depth: 100/max_queue_depth: 5/' "$BATS_TEST_TMPDIR/other.yaml"
	run -0 --separate-stderr "$PLOT" daemon restart --config "$BATS_TEST_TMPDIR/other.yaml"
	[[ "$stderr" == *"stopped plotd (pid $old)"*"started plotd"* ]]
	local new
	new=$(daemon_pid)
	plot_kill_later "$new"
	[ "$new" != "$old" ]
	pid_gone "$old"
	run -0 --separate-stderr "$PLOT" -v config
	[[ "$stderr" == *"$BATS_TEST_TMPDIR/other.yaml"* ]]
	run -0 limit_is max_queue_depth 5
	# not running: restart starts it
	run -0 "$PLOT" daemon stop
	run -0 --separate-stderr "$PLOT" daemon restart --config "$PLOT_CONFIG"
	plot_kill_later "$(daemon_pid)"
	run -0 limit_is max_queue_depth 100
	run -2 "$PLOT" daemon status --now
	assert_line --index 0 "plot daemon: --now goes with stop or restart"
}

@test "daemon reload: plotd re-reads its config (SIGHUP); not running is 69" {
	plotd_start
	run -0 limit_is max_queue_depth 100
	sed -i 's/max_queue_depth: 100/max_queue_depth: 7/' "$PLOT_CONFIG"
	run -0 --separate-stderr "$PLOT" daemon reload
	assert_equal "$stderr" "plot daemon: plotd (pid $PLOTD_PID) re-reads $PLOT_CONFIG; its log says what changed"
	wait_until limit_is max_queue_depth 7
	plotd_alive
	run -69 --separate-stderr "$PLOT" --socket "$(no_daemon_socket)" daemon reload
	[[ "$stderr" == *"plotd is not running"* ]]
}

@test "a --config other than the running daemon's is noted on stderr; the same one is not" {
	plotd_start
	cp "$PLOT_CONFIG" "$BATS_TEST_TMPDIR/other.yaml"
	run -0 --separate-stderr "$PLOT" --config "$BATS_TEST_TMPDIR/other.yaml" run hello
	assert_output hello
	assert_equal "$stderr" "plot run: note: plotd (pid $PLOTD_PID) already runs with the config $PLOT_CONFIG, not $BATS_TEST_TMPDIR/other.yaml; plot daemon restart --config $BATS_TEST_TMPDIR/other.yaml uses it"
	run -0 --separate-stderr "$PLOT" --config "$PLOT_CONFIG" run hello
	assert_equal "$stderr" ""
	cd "$BATS_TEST_TMPDIR"
	run -0 --separate-stderr "$PLOT" --config plot.yaml run hello
	assert_equal "$stderr" ""
	run -0 --separate-stderr "$PLOT" -q --config other.yaml run hello
	assert_equal "$stderr" ""
}
