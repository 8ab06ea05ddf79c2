#!/usr/bin/env bats
# Fair units: an allowed user may hold at most limits.max_units_per_user
# units queued and running (the owner is not capped by default), and with
# max_units null a huge cost holds nothing back. Allowed users run as
# nobody (rawclient --uid), as in daemon-perms.bats.

load helpers

setup() {
	plot_setup
	chmod o+x "$BATS_RUN_TMPDIR"
}
teardown() { plot_teardown; }

@test "an allowed user past max_units_per_user gets QUEUE_FULL; the owner is not capped" {
	plotd_write_config <<-'EOF2'
	parking_lot:
	  pool:    { max_running: 1 }
	  limits:  { max_units_per_user: 3 }
	daemon:    { allow_users: [nobody] }
	models:
	  - { name: echo, executor: synthetic, params: { tokens_per_sec: 2 } }
	EOF2
	plotd_start
	run -0 rawclient --uid 65534 "$PLOT_SOCKET" submit "a b c d e f g h" '{"detach": true, "cost": 2}'
	run -1 rawclient --uid 65534 "$PLOT_SOCKET" call submit '{"prompt": "x", "detach": true, "cost": 2}'
	assert_output --partial '"code": "QUEUE_FULL"'
	assert_output --partial "over max_units_per_user 3 units"
	run -0 rawclient --uid 65534 "$PLOT_SOCKET" submit "x" '{"detach": true, "cost": 1}'
	# the owner's own submits are not counted against anyone's cap
	for i in 1 2 3; do
		run -0 rawclient "$PLOT_SOCKET" submit "mine" '{"detach": true, "cost": 3}'
	done
	run -0 "$PLOT" limits set max_units_owner=2
	run -75 "$PLOT" submit --cost 3 "mine"
	assert_output --partial "over max_units_owner 2 units"
}

@test "with max_units null a cost of 2^64-1 from a user does not hold the owner's work" {
	plotd_write_config <<-'EOF2'
	parking_lot:
	  pool:    { max_running: 4 }
	daemon:    { allow_users: [nobody] }
	models:
	  - { name: echo, executor: synthetic, params: { tokens_per_sec: 2 } }
	EOF2
	plotd_start
	run -0 rawclient --uid 65534 "$PLOT_SOCKET" submit "$(printf 'w%d ' $(seq 1 40))" \
		'{"detach": true, "cost": 18446744073709551615}'
	run -0 rawclient "$PLOT_SOCKET" submit "mine" '{"detach": true}'
	mine=$output
	run -0 timeout 10 python3 "$PLOT_TESTS_DIR/rawclient.py" "$PLOT_SOCKET" call result "{\"task\": $mine, \"wait\": true}"
	assert_output --partial '"data": "mine"'
}
