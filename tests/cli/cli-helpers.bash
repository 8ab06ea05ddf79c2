# cli-helpers.bash — helpers for the CLI's own bats tests. The daemon side
# owns helpers.bash (per-test plotd, bounded waits, sanitizer scan); the
# tests that need a daemon load both:
#
#   load helpers
#   load cli-helpers
#   setup()    { plot_setup; cli_config 1; plotd_start; }
#   teardown() { cli_teardown; }
#
# PLOT is the plot binary under test: $PLOT_BINDIR/plot (set by `make cli`,
# also for sanitized builds), else bin/plot of this tree.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
: "${PLOT_BINDIR:=$ROOT/bin}"
PLOT="$PLOT_BINDIR/plot"

# A socket path of this test's own where nothing listens.
no_daemon_socket() {
    mkdir -p -m 0700 "$BATS_TEST_TMPDIR/nodaemon"
    echo "$BATS_TEST_TMPDIR/nodaemon/plotd.sock"
}

# cli_config [MAX_RUNNING] [MAX_UNITS] [MAX_QUEUE_DEPTH]: two synthetic models,
# "echo" (1000 tokens/s, the default) and "slow" (20 tokens/s, so a task of
# N words runs N/20 s: long enough to be seen queued or running). The store
# is $PLOT_TEST_BACKEND (helpers.bash: sqlite unless make cli-memory).
cli_config() {
    cat >"$PLOT_CONFIG" <<EOF
parking_lot:
  pool:    { max_running: ${1:-2} }
  limits:  { max_units: ${2:-8}, max_queue_depth: ${3:-100}, timeout_secs: 120 }
  queue:   { backend: $PLOT_TEST_BACKEND }
  mailbox: { backend: $PLOT_TEST_BACKEND }
daemon:    { log_level: debug }
default_model: echo
models:
  - name: echo
    executor: synthetic
    params: { tokens_per_sec: 1000 }
  - name: slow
    executor: synthetic
    params: { tokens_per_sec: 20 }
EOF
}

# words N [PREFIX]: "w1 w2 ... wN" — a synthetic prompt of N tokens.
words() {
    local i out=""
    for ((i = 1; i <= $1; i++)); do out+="${2:-w}$i "; done
    echo "${out% }"
}

# Cancel whatever is left (so the daemon's drain is quick), or stop a
# daemon the test had plot start, then the shared teardown: stop plotd by pid, scan its stderr for sanitizer reports.
cli_teardown() {
    if [ -n "${PLOTD_PID:-}" ]; then
        "$PLOT" -q cancel --all >/dev/null 2>&1 || true
    else
        # A daemon the test had plot start (autostart, daemon start).
        "$PLOT" -q --no-autostart daemon stop --now --timeout 10 >/dev/null 2>&1 || true
    fi
    plot_teardown
}

# task_field ID KEY: one key of `plot status --json ID`.
task_field() {
    "$PLOT" --json status "$1" | jq -r ".$2"
}

# state_is ID STATE: for wait_until.
state_is() {
    [ "$(task_field "$1" state)" = "$2" ]
}

# stat_is MODEL KEY VALUE: one counter of `plot stats --json`, for wait_until.
stat_is() {
    [ "$("$PLOT" --json stats -m "$1" | jq -r ".models[0].$2")" = "$3" ]
}

# Conditions for wait_until (which re-runs its command, so a $(...) in its
# arguments would be evaluated only once).
chunks_ge() {
    [ "$(task_field "$1" chunks)" -ge "$2" ]
}
clients_ge() {
    [ "$("$PLOT" --json stats | jq -r .clients)" -ge "$1" ]
}
lines_ge() {
    [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]
}

# pid_gone PID: no such process, or only a zombie (a daemon plot started is
# not our child; whoever inherits it may reap it late).
pid_gone() {
    local st
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
    [ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]
}

# submit ARGS...: submit and set $ID (fails the test on a nonzero exit).
submit() {
    ID=$("$PLOT" submit "$@") || return 1
    [[ "$ID" =~ ^[0-9]+$ ]]
}
