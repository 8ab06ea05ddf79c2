#!/usr/bin/env bats
# The socket: 0700 directory, 0600 socket, refusing unsafe directories,
# replacing a stale socket, never hijacking a live daemon.

load helpers

setup() { plot_setup; }
teardown() { plot_teardown; }

mode_of() { stat -c %a "$1"; }

@test "socket directory is created 0700 and the socket is 0600" {
	plotd_start
	assert_equal "$(mode_of "$(dirname "$PLOT_SOCKET")")" 700
	assert_equal "$(mode_of "$PLOT_SOCKET")" 600
	run -0 rawclient "$PLOT_SOCKET" call ping
	assert_output --partial '"t": "ok"'
}

@test "a group-writable socket directory is refused" {
	mkdir -m 0770 "$BATS_TEST_TMPDIR/run"
	chmod 0770 "$BATS_TEST_TMPDIR/run"
	run -1 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET"
	assert_output --partial "group/other permission bits"
	assert_not_exists "$PLOT_SOCKET"
}

@test "a world-readable socket directory is refused" {
	mkdir -m 0755 "$BATS_TEST_TMPDIR/run"
	chmod 0755 "$BATS_TEST_TMPDIR/run"
	run -1 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET"
	assert_output --partial "mode 755"
}

@test "a socket directory owned by another user is refused" {
	mkdir -m 0700 "$BATS_TEST_TMPDIR/run"
	chown 65534 "$BATS_TEST_TMPDIR/run"
	run -1 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET"
	assert_output --partial "owned by uid 65534"
}

@test "a symlink in place of the socket directory is refused" {
	mkdir -m 0700 "$BATS_TEST_TMPDIR/real"
	ln -s "$BATS_TEST_TMPDIR/real" "$BATS_TEST_TMPDIR/run"
	run -1 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET"
	assert_output --partial "not a directory"
}

@test "a stale socket is replaced" {
	mkdir -m 0700 "$BATS_TEST_TMPDIR/run"
	# A socket file nobody listens on, as a crashed daemon leaves it.
	python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$PLOT_SOCKET"
	assert_exists "$PLOT_SOCKET"
	plotd_start
	plotd_log_has "replacing stale socket"
	run -0 rawclient "$PLOT_SOCKET" call ping
}

@test "a second daemon on a live socket is refused and the first keeps serving" {
	plotd_start
	first=$PLOTD_PID
	run -1 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET"
	assert_output --partial "another plotd"
	run -0 rawclient "$PLOT_SOCKET" call ping
	kill -0 "$first"
}

@test "a live daemon is not hijacked even without its lock file" {
	plotd_start
	rm -f "$PLOT_SOCKET.lock"
	run -1 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET"
	assert_output --partial "another plotd is listening"
	run -0 rawclient "$PLOT_SOCKET" call ping
}

@test "a regular file at the socket path is not removed" {
	mkdir -m 0700 "$BATS_TEST_TMPDIR/run"
	echo precious >"$PLOT_SOCKET"
	run -1 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET"
	assert_output --partial "not a socket"
	run -0 cat "$PLOT_SOCKET"
	assert_output precious
}

@test "the socket path comes from PLOT_SOCKET, then XDG_RUNTIME_DIR" {
	"$PLOTD" --config "$PLOT_CONFIG" 2>>"$PLOTD_STDERR" 3>&- &
	PLOTD_PID=$!
	wait_until test -S "$PLOT_SOCKET"
	plotd_stop
	unset PLOT_SOCKET
	mkdir -m 0700 "$XDG_RUNTIME_DIR"
	"$PLOTD" --config "$PLOT_CONFIG" 2>>"$PLOTD_STDERR" 3>&- &
	PLOTD_PID=$!
	wait_until test -S "$XDG_RUNTIME_DIR/plot/plotd.sock"
	assert_equal "$(mode_of "$XDG_RUNTIME_DIR/plot")" 700
}
