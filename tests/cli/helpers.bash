# helpers.bash — shared helpers for the bats tests of plot and plotd.
#
# Use from a .bats file:
#
#   load helpers
#   setup()    { plot_setup; }           # per-test dirs, env, default config
#   teardown() { plot_teardown; }        # stops plotd by pid, checks sanitizers
#
#   @test "..." {
#       plotd_start                      # uses $PLOT_CONFIG, socket under the test dir
#       run -0 "$PLOT" ping
#   }
#
# Every test gets its own directory ($BATS_TEST_TMPDIR), socket
# ($PLOT_SOCKET = $BATS_TEST_TMPDIR/run/plotd.sock) and config
# ($PLOT_CONFIG = $BATS_TEST_TMPDIR/plot.yaml). plotd runs in the foreground
# of a background job; its pid is kept in $PLOTD_PID and teardown kills it by
# that pid, never by name. Its stderr goes to $PLOTD_STDERR, which teardown
# scans for sanitizer reports (any report fails the test).
#
# The binaries under test come from $PLOT_BINDIR (set by `make cli` to the
# absolute bin dir of the build, sanitized builds included); without it, the
# repository's bin/ is used.
#
# PLOT_NO_AUTOSTART=1 is exported so that no test starts a daemon behind our
# back (it would outlive the test); a test of autostart unsets it and must
# stop what it started (see plotd_pid_from_socket / plot_kill_later).
#
# Waiting is always a bounded poll (wait_until), never a fixed sleep.

bats_require_minimum_version 1.5.0

# PLOT_BATS_LIB: where the bats libraries are (default /usr/lib/bats;
# tests/gpu/run points it into .gpu-deps on a machine without them)
load "${PLOT_BATS_LIB:-/usr/lib/bats}/bats-support/load"
load "${PLOT_BATS_LIB:-/usr/lib/bats}/bats-assert/load"
load "${PLOT_BATS_LIB:-/usr/lib/bats}/bats-file/load"

: "${PLOT_BINDIR:=$(cd "$BATS_TEST_DIRNAME/../../bin" && pwd)}"
PLOT="$PLOT_BINDIR/plot"
PLOTD="$PLOT_BINDIR/plotd"
PLOT_TESTS_DIR="$BATS_TEST_DIRNAME"
# Default bound for waits, seconds; sanitized builds are slower.
: "${PLOT_WAIT_SECS:=20}"

SANITIZER_PATTERN='ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer|LeakSanitizer|ERROR: LeakSanitizer'

# plot_setup: per-test environment and the default config.
plot_setup() {
	export PLOT_SOCKET="$BATS_TEST_TMPDIR/run/plotd.sock"
	export PLOT_CONFIG="$BATS_TEST_TMPDIR/plot.yaml"
	export XDG_RUNTIME_DIR="$BATS_TEST_TMPDIR/xdg-run"
	export XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/xdg-config"
	# the built-in config serves the default model when it is installed here
	export XDG_DATA_HOME="$BATS_TEST_TMPDIR/xdg-data"
	# the sqlite store's default database: $XDG_STATE_HOME/plot/plot.db
	export XDG_STATE_HOME="$BATS_TEST_TMPDIR/xdg-state"
	export PLOT_NO_AUTOSTART=1
	export NO_COLOR=1
	PLOTD_STDERR="$BATS_TEST_TMPDIR/plotd.stderr"
	PLOTD_PID=""
	PLOT_KILL_PIDS=()
	plotd_config
}

# plot_teardown: stop plotd (by pid) and anything registered with
# plot_kill_later, then fail on any sanitizer report in plotd's stderr.
plot_teardown() {
	local p ok=0
	plotd_stop || ok=1
	for p in "${PLOT_KILL_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	assert_no_sanitizer "$PLOTD_STDERR" || ok=1
	if [ "${PLOTD_STATUS:-0}" -ge 128 ]; then
		echo "# plotd died with status $PLOTD_STATUS (a crash); its stderr:" >&2
		sed 's/^/# /' "$PLOTD_STDERR" >&2
		ok=1
	fi
	return $ok
}

# plot_kill_later PID: teardown kills PID (e.g. a daemon a test autostarted).
plot_kill_later() {
	PLOT_KILL_PIDS+=("$1")
}

# assert_no_sanitizer FILE...: fail, showing the file, if it holds a report.
assert_no_sanitizer() {
	local f
	for f in "$@"; do
		[ -f "$f" ] || continue
		if grep -Eq "$SANITIZER_PATTERN" "$f"; then
			echo "# sanitizer report in $f:" >&2
			sed 's/^/# /' "$f" >&2
			return 1
		fi
	done
}

# plotd_config [FILE]: write the default config (one synthetic model "echo",
# fast) to FILE ($PLOT_CONFIG). Its store is $PLOT_TEST_BACKEND (default
# sqlite, plotd's own default; `make cli-memory` runs the daemon tests again
# with memory).
: "${PLOT_TEST_BACKEND:=sqlite}"
plotd_config() {
	local f="${1:-$PLOT_CONFIG}"
	cat >"$f" <<-EOF
	parking_lot:
	  pool:    { max_running: 2 }
	  limits:  { max_units: 8, max_queue_depth: 100, timeout_secs: 120 }
	  queue:   { backend: $PLOT_TEST_BACKEND }
	  mailbox: { backend: $PLOT_TEST_BACKEND, retention_secs: 3600 }
	daemon:    { log_level: debug }
	default_model: echo
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 1000 }
	EOF
}

# plotd_write_config [FILE]: write the YAML on stdin to FILE ($PLOT_CONFIG).
#   plotd_write_config <<'EOF' ... EOF
plotd_write_config() {
	cat >"${1:-$PLOT_CONFIG}"
}

# wait_until [-t SECS] CMD...: poll CMD every 20 ms until it succeeds; fail
# after SECS (default $PLOT_WAIT_SECS).
wait_until() {
	local secs="$PLOT_WAIT_SECS"
	if [ "$1" = -t ]; then secs="$2"; shift 2; fi
	local tries=$((secs * 50))
	while ((tries-- > 0)); do
		"$@" && return 0
		sleep 0.02
	done
	echo "# wait_until: gave up after ${secs}s: $*" >&2
	return 1
}

# plotd_alive: the daemon we started is still running.
plotd_alive() {
	[ -n "$PLOTD_PID" ] && kill -0 "$PLOTD_PID" 2>/dev/null
}

# plotd writes its pid file last in its startup, after the socket listens,
# so a pid file holding our pid means "ready" (a stale socket file left at
# the path would not).
_plotd_ready() {
	if ! plotd_alive; then
		echo "# plotd exited early; its stderr:" >&2
		sed 's/^/# /' "$PLOTD_STDERR" >&2
		return 2
	fi
	[ -S "$PLOTD_SOCKET_USED" ] && [ "$(cat "$PLOTD_PID_FILE" 2>/dev/null)" = "$PLOTD_PID" ]
}

# plotd_start [ARGS...]: start plotd on $PLOT_SOCKET with $PLOT_CONFIG (ARGS
# are added, and may override both), wait until it listens. Sets PLOTD_PID.
plotd_start() {
	PLOTD_SOCKET_USED="$PLOT_SOCKET"
	PLOTD_PID_FILE="$BATS_TEST_TMPDIR/plotd.pid"
	local a prev="" pidarg=(--pid-file "$PLOTD_PID_FILE")
	for a in "$@"; do
		[ "$prev" = --socket ] && PLOTD_SOCKET_USED="$a"
		[ "$prev" = --pid-file ] && { PLOTD_PID_FILE="$a"; pidarg=(); }
		prev="$a"
	done
	"$PLOTD" --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET" "${pidarg[@]}" "$@" \
		</dev/null >>"$BATS_TEST_TMPDIR/plotd.stdout" 2>>"$PLOTD_STDERR" 3>&- &
	PLOTD_PID=$!
	local tries=$((PLOT_WAIT_SECS * 50)) rc
	while ((tries-- > 0)); do
		rc=0
		_plotd_ready || rc=$?
		[ $rc = 0 ] && return 0
		[ $rc = 2 ] && { PLOTD_PID=""; return 1; }
		sleep 0.02
	done
	echo "# plotd did not listen on $PLOTD_SOCKET_USED in ${PLOT_WAIT_SECS}s" >&2
	return 1
}

# plotd_stop [SIGNAL...]: send the signals (default TERM then INT: the second
# one cancels whatever the drain would wait for, so a teardown never waits
# out long tasks) to plotd, wait (bounded) for it to exit, SIGKILL if it
# does not. Sets PLOTD_STATUS to its exit status.
plotd_stop() {
	local sig sigs=("$@")
	[ -n "$PLOTD_PID" ] || return 0
	[ ${#sigs[@]} -gt 0 ] || sigs=(TERM INT)
	for sig in "${sigs[@]}"; do
		kill -"$sig" "$PLOTD_PID" 2>/dev/null || true
	done
	local hung=0
	if ! wait_until plotd_gone; then
		echo "# plotd (pid $PLOTD_PID) did not exit on ${sigs[*]}: SIGKILL" >&2
		kill -KILL "$PLOTD_PID" 2>/dev/null || true
		hung=1
	fi
	PLOTD_STATUS=0
	wait "$PLOTD_PID" 2>/dev/null || PLOTD_STATUS=$?
	PLOTD_PID=""
	return $hung
}

plotd_gone() {
	! kill -0 "$PLOTD_PID" 2>/dev/null
}

# plotd_wait_exit: wait (bounded) for plotd to exit on its own; sets
# PLOTD_STATUS. Fails if it is still running.
plotd_wait_exit() {
	wait_until plotd_gone || return 1
	PLOTD_STATUS=0
	wait "$PLOTD_PID" 2>/dev/null || PLOTD_STATUS=$?
	PLOTD_PID=""
}

# plotd_log_has REGEX: plotd's log (stderr) has a line matching REGEX.
plotd_log_has() {
	grep -Eq -- "$1" "$PLOTD_STDERR"
}

# wait_log REGEX: wait (bounded) until plotd logs a line matching REGEX.
wait_log() {
	wait_until plotd_log_has "$1"
}

# plotd_bounded ARGS...: run plotd in the foreground, for tests that expect
# it to refuse to start; should it start anyway, it is stopped after
# $PLOT_WAIT_SECS and the status is 124, never a hang.
plotd_bounded() {
	timeout "$PLOT_WAIT_SECS" "$PLOTD" "$@" 3>&-
}

# rawclient ARGS...: the raw protocol test client (tests/cli/rawclient.py).
rawclient() {
	python3 "$PLOT_TESTS_DIR/rawclient.py" "$@"
}
