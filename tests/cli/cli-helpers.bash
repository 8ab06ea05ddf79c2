# cli-helpers.bash — helpers for the CLI's own bats tests (the daemon's
# start/stop/poll helpers live in helpers.bash, owned by the daemon side).
#
# PLOT is the plot binary under test: $PLOT_BINDIR/plot (set by `make cli`,
# which also points it at sanitized builds), else bin/plot of this tree.

ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
PLOT_BINDIR="${PLOT_BINDIR:-$ROOT/bin}"
PLOT="$PLOT_BINDIR/plot"

bats_require_minimum_version 1.5.0

bats_load_library bats-support
bats_load_library bats-assert

# A socket path of this test's own where nothing listens.
no_daemon_socket() {
    mkdir -p -m 0700 "$BATS_TEST_TMPDIR/nodaemon"
    echo "$BATS_TEST_TMPDIR/nodaemon/plotd.sock"
}
