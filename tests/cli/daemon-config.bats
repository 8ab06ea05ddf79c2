#!/usr/bin/env bats
# plotd options and --check-config: the effective config on stdout and exit
# 0, or file:line:col on stderr and exit 78.

load helpers

setup() { plot_setup; }
teardown() { plot_teardown; }

@test "plotd --check-config prints the effective config and exits 0" {
	run -0 "$PLOTD" --check-config --config "$PLOT_CONFIG"
	assert_output --partial "models:"
	assert_output --partial 'name: "echo"'
	assert_output --partial "tokens_per_sec: 1000"
}

@test "plotd --check-config output loads again to the same config" {
	run -0 "$PLOTD" --check-config --config "$PLOT_CONFIG"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/again.yaml"
	first=$(grep -v '^#' <<<"$output")
	run -0 "$PLOTD" --check-config --config "$BATS_TEST_TMPDIR/again.yaml"
	assert_equal "$(grep -v '^#' <<<"$output")" "$first"
}

@test "plotd --check-config without a file uses the built-in default" {
	unset PLOT_CONFIG
	run -0 "$PLOTD" --check-config
	assert_output --partial "echo"
}

@test "plotd --check-config: a wrong type exits 78 with line:col" {
	plotd_write_config <<-'EOF'
	parking_lot:
	  limits: { max_queue_depth: lots }
	EOF
	run -78 --separate-stderr "$PLOTD" --check-config --config "$PLOT_CONFIG"
	assert_output ""
	[[ "$stderr" == *"plot.yaml:2:"*"max_queue_depth"* ]] || { echo "$stderr"; false; }
}

@test "plotd --check-config: an unknown key exits 78 with line:col" {
	plotd_write_config <<-'EOF'
	daemon: { log_level: info }
	models:
	  - name: echo
	    executor: synthetic
	    tokens_per_sec: 5
	EOF
	run -78 --separate-stderr "$PLOTD" --check-config --config "$PLOT_CONFIG"
	[[ "$stderr" =~ plot\.yaml:5:[0-9]+: ]] || { echo "$stderr"; false; }
	[[ "$stderr" == *tokens_per_sec* ]]
}

@test "plotd refuses to start on a bad config: exit 78, no socket" {
	printf 'models: [\n' >"$PLOT_CONFIG"
	run -78 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET"
	assert_output --partial "plot.yaml:"
	assert_not_exists "$PLOT_SOCKET"
}

@test "plotd: usage errors exit 2" {
	run -2 plotd_bounded --no-such-option
	run -2 plotd_bounded --log-level loud
	assert_output --partial "loud"
	run -2 plotd_bounded --drain-timeout -1
	run -2 plotd_bounded extra-argument
	run -0 "$PLOTD" --help
	assert_output --partial "usage: plotd"
	run -0 "$PLOTD" --version
	assert_output --regexp '^plotd [0-9]+\.[0-9]+\.[0-9]+'
}

@test "plotd logs to --log-file and writes --pid-file, removed on exit" {
	plotd_start --log-file "$BATS_TEST_TMPDIR/plotd.log" --pid-file "$BATS_TEST_TMPDIR/plotd.pid"
	run -0 cat "$BATS_TEST_TMPDIR/plotd.pid"
	assert_output "$PLOTD_PID"
	wait_until grep -q "listening on $PLOT_SOCKET" "$BATS_TEST_TMPDIR/plotd.log"
	grep -Eq '^[0-9T:.-]+Z info  pool echo: started' "$BATS_TEST_TMPDIR/plotd.log"
	plotd_stop
	assert_equal "$PLOTD_STATUS" 0
	assert_not_exists "$BATS_TEST_TMPDIR/plotd.pid"
	assert_not_exists "$PLOT_SOCKET"
	grep -q "plotd exited" "$BATS_TEST_TMPDIR/plotd.log"
}

@test "man/plotd.8 documents every option of plotd --help" {
	run -0 "$PLOTD" --help
	opts=$(grep -oE -- '--[a-z][a-z-]+' <<<"$output" | sort -u)
	[ -n "$opts" ]
	for o in $opts; do
		grep -qF -- "$(sed 's/-/\\-/g' <<<"$o")" "$PLOT_TESTS_DIR/../../man/plotd.8" ||
			{ echo "man/plotd.8 lacks $o"; false; }
	done
}
