#!/usr/bin/env bats
# The client trusts nothing: a socket directory or a daemon another user
# planted gets nothing from plot (exit 77, no autostart), and nothing plot
# or plotd writes (autostart's log and lock, --pid-file, --log-file) follows
# a planted symlink. A shared daemon (another uid that allows us) is
# trusted only on a socket path the user names. The victim is a uid no one
# uses (4243; it also runs the shared daemon), the attacker
# is nobody (65534); both are set with setpriv, so these tests need root
# and fail (never skip) without it.

load helpers

VICTIM=4243
ATTACKER=65534

setup() {
	plot_setup
	[ "$(id -u)" = 0 ] || fail "cli-trust.bats needs root to run as two other uids (setpriv)"
	command -v setpriv >/dev/null || fail "cli-trust.bats needs setpriv (util-linux)"
	chmod o+x "$BATS_RUN_TMPDIR" "$BATS_TEST_TMPDIR"
	# a /tmp of our own: sticky and world-writable
	PUB="$BATS_TEST_TMPDIR/pub"
	mkdir -m 1777 "$PUB"
}
teardown() {
	[ "$TMP_PLANT" ] && rm -rf "$TMP_PLANT"
	plot_teardown
}

as() { # as UID CMD...: run CMD as UID with no groups and the victim's env
	local uid=$1
	shift
	setpriv --reuid "$uid" --regid "$uid" --clear-groups env HOME="$PUB" "$@"
}

# plant DIR: the attacker listens on DIR/plotd.sock; bytes received per
# connection go to $BATS_TEST_TMPDIR/got.
plant() {
	touch "$BATS_TEST_TMPDIR/got"
	chmod 666 "$BATS_TEST_TMPDIR/got"
	# started from a subshell: not a job of ours, so its kill in teardown
	# is not reported
	(as $ATTACKER python3 "$PLOT_TESTS_DIR/plantsock.py" "$1/plotd.sock" \
		"$BATS_TEST_TMPDIR/got" "$PUB/ready" 3>&- >/dev/null 2>&1 &
	 echo $! >"$BATS_TEST_TMPDIR/plant.pid")
	plot_kill_later "$(cat "$BATS_TEST_TMPDIR/plant.pid")"
	wait_until test -e "$PUB/ready"
}

got_lines() { [ "$(wc -l <"$BATS_TEST_TMPDIR/got")" -ge 1 ]; }
# nothing_sent: no connection to the planted socket carried a byte
nothing_sent() { ! grep -qv '^0$' "$BATS_TEST_TMPDIR/got"; }

@test "a socket directory planted by another user: nothing sent, exit 77, no autostart" {
	plant "$PUB/plot"
	# the default path: $XDG_RUNTIME_DIR/plot/plotd.sock; autostart allowed
	run -77 as $VICTIM env -u PLOT_SOCKET -u PLOT_NO_AUTOSTART XDG_RUNTIME_DIR="$PUB" \
		"$PLOT" stats
	assert_output --partial "owned by uid $ATTACKER"
	nothing_sent
	assert_file_not_exists "$PUB/plot/plotd.sock.log"
	assert_file_not_exists "$PUB/plot/plotd.sock.start.lock"
}

@test "a daemon run by another user in a trusted directory: nothing sent, exit 77" {
	mkdir -m 0755 "$PUB/root-owned"
	chown $ATTACKER "$PUB/root-owned"
	plant "$PUB/root-owned"
	chown 0 "$PUB/root-owned" # the directory passes; the peer does not
	chmod 0755 "$PUB/root-owned"
	run -77 as $VICTIM env -u PLOT_SOCKET -u PLOT_NO_AUTOSTART \
		XDG_RUNTIME_DIR="$PUB/root-owned/.." "$PLOT" --socket "$PUB/root-owned/plotd.sock" stats
	assert_output --partial "runs as uid $ATTACKER"
	wait_until got_lines
	assert_equal "$(cat "$BATS_TEST_TMPDIR/got")" 0
}

@test "/tmp/plot-UID made first by another user is refused" {
	local dir=/tmp/plot-$VICTIM
	[ ! -e "$dir" ] || fail "$dir exists already; remove it and run again"
	TMP_PLANT=$dir
	plant "$dir"
	run -77 as $VICTIM env -u PLOT_SOCKET -u XDG_RUNTIME_DIR -u PLOT_NO_AUTOSTART "$PLOT" stats
	assert_output --partial "$dir"
	assert_output --partial "owned by uid $ATTACKER"
	nothing_sent
}

@test "a shared daemon: its owner is trusted on a socket path the user names, and only then" {
	local own="$BATS_TEST_TMPDIR/owner"
	mkdir -m 0711 "$own"
	cat >"$own/plot.yaml" <<-'EOF2'
	daemon: { allow_users: [nobody] }
	models:
	  - { name: echo, executor: synthetic }
	EOF2
	chown -R $VICTIM "$own"
	(as $VICTIM env XDG_STATE_HOME="$own/state" "$PLOTD" --config "$own/plot.yaml" \
		--socket "$own/plot/plotd.sock" --pid-file "$own/plotd.pid" \
		</dev/null >/dev/null 2>"$BATS_TEST_TMPDIR/owner.err" 3>&- &
	 echo $! >"$BATS_TEST_TMPDIR/owner.pid")
	plot_kill_later "$(cat "$BATS_TEST_TMPDIR/owner.pid")"
	wait_until test -s "$own/plotd.pid"
	# the directory and the daemon are uid 4243's, who allows nobody
	run -0 as $ATTACKER env -u PLOT_NO_AUTOSTART "$PLOT" --socket "$own/plot/plotd.sock" run "shared hi"
	assert_output "shared hi"
	run -0 as $ATTACKER env -u PLOT_NO_AUTOSTART PLOT_SOCKET="$own/plot/plotd.sock" "$PLOT" run "via env"
	assert_output "via env"
	# the same socket as the default path ($XDG_RUNTIME_DIR/plot) is not trusted
	run -77 as $ATTACKER env -u PLOT_SOCKET -u PLOT_NO_AUTOSTART XDG_RUNTIME_DIR="$own" "$PLOT" stats
	assert_output --partial "owned by uid $VICTIM"
	assert_no_sanitizer "$BATS_TEST_TMPDIR/owner.err"
}

@test "a uid plotd refuses gets 77, and --no-autostart starts nothing" {
	plotd_write_config <<-'EOF2'
	daemon: { allow_users: [daemon] }
	models:
	  - { name: echo, executor: synthetic }
	EOF2
	plotd_start
	chmod o+x "$BATS_TEST_TMPDIR/run" 2>/dev/null || true
	run -77 as $ATTACKER env -u PLOT_NO_AUTOSTART "$PLOT" --no-autostart stats
	assert_output --partial "uid $ATTACKER may not use this plotd"
	run -77 as $ATTACKER env -u PLOT_NO_AUTOSTART "$PLOT" stats
	plotd_alive
}

@test "plotd --pid-file and --log-file do not follow a planted symlink" {
	echo precious >"$BATS_TEST_TMPDIR/victim"
	ln -s "$BATS_TEST_TMPDIR/victim" "$BATS_TEST_TMPDIR/pid-link"
	run -1 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET" \
		--pid-file "$BATS_TEST_TMPDIR/pid-link"
	assert_output --partial "symbolic link"
	ln -s "$BATS_TEST_TMPDIR/victim" "$BATS_TEST_TMPDIR/log-link"
	run -1 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET" \
		--log-file "$BATS_TEST_TMPDIR/log-link"
	assert_output --partial "symbolic link"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/victim")" precious
}

@test "plotd --pid-file refuses a file another user owns" {
	touch "$BATS_TEST_TMPDIR/theirs.pid"
	chown $ATTACKER "$BATS_TEST_TMPDIR/theirs.pid"
	run -1 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET" \
		--pid-file "$BATS_TEST_TMPDIR/theirs.pid"
	assert_output --partial "owned by uid $ATTACKER"
}

@test "autostart does not follow a planted log or lock symlink" {
	echo precious >"$BATS_TEST_TMPDIR/victim"
	mkdir -m 0700 "$BATS_TEST_TMPDIR/auto"
	ln -s "$BATS_TEST_TMPDIR/victim" "$BATS_TEST_TMPDIR/auto/plotd.sock.start.lock"
	run -77 env -u PLOT_NO_AUTOSTART "$PLOT" --socket "$BATS_TEST_TMPDIR/auto/plotd.sock" stats
	assert_output --partial "symbolic link"
	rm "$BATS_TEST_TMPDIR/auto/plotd.sock.start.lock"
	ln -s "$BATS_TEST_TMPDIR/victim" "$BATS_TEST_TMPDIR/auto/plotd.sock.log"
	run -77 env -u PLOT_NO_AUTOSTART "$PLOT" --socket "$BATS_TEST_TMPDIR/auto/plotd.sock" stats
	assert_output --partial "symbolic link"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/victim")" precious
	assert_file_not_exists "$BATS_TEST_TMPDIR/auto/plotd.sock"
}
