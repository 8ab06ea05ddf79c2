#!/usr/bin/env bats
# kill -9 of plotd under load, 22 times: submitters with idempotency keys
# (retrying with the same key) and followers; afterwards every acknowledged
# task ended exactly once, done, with its output intact, and none is there
# twice (tests/cli/store-kill.py). Bounded: about 10 s, at most 150 s.

load helpers

setup() { plot_setup; }
teardown() { plot_teardown; }

@test "kill -9 under load, 22 times: every acknowledged task ends exactly once, intact" {
	run -0 python3 "$PLOT_TESTS_DIR/store-kill.py" "$PLOT" "$PLOTD" "$BATS_TEST_TMPDIR/kill" 22
	echo "$output"
	assert_output --partial "kill: all checks passed"
	assert_output --partial "kill: 22 kills"
}
