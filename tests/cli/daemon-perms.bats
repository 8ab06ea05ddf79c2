#!/usr/bin/env bats
# Who may connect: the daemon's uid and root; allow_users/allow_groups may
# submit and read their own tasks; limits, others' tasks, drain and shutdown
# stay with the owner. A refused peer gets a PERMISSION error, not a silent
# close. Peers run as nobody (uid 65534) through rawclient --uid, which
# drops privileges after loading its modules.

load helpers

setup() {
	plot_setup
	# nobody must be able to reach the socket at all; bats' run directory
	# is 0700. Search permission only: nothing becomes listable.
	chmod o+x "$BATS_RUN_TMPDIR"
}
teardown() { plot_teardown; }

config_allow() {
	plotd_write_config <<-EOF
	parking_lot:
	  limits:  { max_units: 8 }
	daemon:    { log_level: debug, allow_users: [$1] }
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 1000 }
	EOF
}

@test "with allow lists the directory is 0711 and the socket 0666" {
	config_allow daemon
	plotd_start
	assert_equal "$(stat -c %a "$(dirname "$PLOT_SOCKET")")" 711
	assert_equal "$(stat -c %a "$PLOT_SOCKET")" 666
}

@test "a foreign uid is refused with a PERMISSION error" {
	config_allow daemon
	plotd_start
	run -0 rawclient --uid 65534 "$PLOT_SOCKET" hello
	assert_line --index 0 --partial '"code": "PERMISSION"'
	assert_line --index 0 --partial 'uid 65534 may not use this plotd'
	assert_line --index 1 closed
	wait_log "refused uid 65534"
	run -0 rawclient "$PLOT_SOCKET" call ping
}

@test "without allow lists a foreign uid cannot reach the socket" {
	plotd_start
	run -1 rawclient --uid 65534 "$PLOT_SOCKET" hello
	assert_output --partial "Permission denied"
}

@test "an allowed user submits and reads its own tasks only" {
	config_allow nobody
	plotd_start
	run -0 rawclient --uid 65534 "$PLOT_SOCKET" submit "mine all mine"
	mine=$output
	run -0 rawclient --uid 65534 "$PLOT_SOCKET" call result "{\"task\": $mine, \"wait\": true}"
	assert_output --partial '"data": "mine all mine"'
	assert_output --partial '"state": 2'
	run -0 rawclient "$PLOT_SOCKET" submit "the owner's secret"
	theirs=$output
	run -1 rawclient --uid 65534 "$PLOT_SOCKET" call status "{\"task\": $theirs}"
	assert_output --partial '"code": "PERMISSION"'
	run -1 rawclient --uid 65534 "$PLOT_SOCKET" call cancel "{\"tasks\": [$theirs]}"
	assert_output --partial '"code": "PERMISSION"'
	# The owner reads everyone's.
	run -0 rawclient "$PLOT_SOCKET" call status "{\"task\": $mine}"
	assert_output --partial '"uid": 65534'
}

@test "an allowed user may not set limits, drain or shut down" {
	config_allow nobody
	plotd_start
	run -1 rawclient --uid 65534 "$PLOT_SOCKET" call limits_set '{"kv": [{"k": "max_units", "v": "1"}]}'
	assert_output --partial '"code": "PERMISSION"'
	run -1 rawclient --uid 65534 "$PLOT_SOCKET" call drain
	assert_output --partial '"code": "PERMISSION"'
	run -1 rawclient --uid 65534 "$PLOT_SOCKET" call shutdown
	assert_output --partial '"code": "PERMISSION"'
	run -0 rawclient --uid 65534 "$PLOT_SOCKET" call limits_get
	assert_output --partial '"v": "8"'
	plotd_alive
}

@test "allow_groups admits members of the group" {
	plotd_write_config <<-'EOF'
	daemon: { allow_groups: [nogroup] }
	models:
	  - { name: echo, executor: synthetic }
	EOF
	plotd_start
	run -0 rawclient --uid 65534 "$PLOT_SOCKET" call ping
}

@test "an unknown user in allow_users is a config error at its line:col" {
	config_allow no-such-user-here
	run -78 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET"
	assert_output --partial "$PLOT_CONFIG:3:46: daemon.allow_users: no user 'no-such-user-here'"
	# --check-config finds it too, before any daemon starts
	run -78 "$PLOTD" --check-config --config "$PLOT_CONFIG"
	assert_output --partial "$PLOT_CONFIG:3:46: daemon.allow_users: no user 'no-such-user-here'"
	plotd_write_config <<-'EOF'
	daemon: { allow_groups: [nogroup, no-such-group-here] }
	models: [ { name: echo } ]
	EOF
	run -78 "$PLOTD" --check-config --config "$PLOT_CONFIG"
	assert_output --partial "$PLOT_CONFIG:1:35: daemon.allow_groups: no group 'no-such-group-here'"
}
