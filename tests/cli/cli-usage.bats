#!/usr/bin/env bats
# Usage errors (exit 2) and an unreachable daemon (exit 69): none of these
# needs a running daemon, and none may start one.

load cli-helpers

setup() {
    export PLOT_SOCKET="$(no_daemon_socket)"
    export PLOT_NO_AUTOSTART=1
    # a daemon started by mistake must not open the user's own store
    export XDG_STATE_HOME="$BATS_TEST_TMPDIR/xdg-state"
}

@test "no command, unknown command, unknown option: usage (2)" {
    run -2 "$PLOT"
    assert_output --partial "usage: plot"
    run -2 "$PLOT" frobnicate
    assert_output --partial "unknown command 'frobnicate'"
    run -2 "$PLOT" --frobnicate models
    assert_output --partial "unknown option '--frobnicate'"
    run -2 "$PLOT" queue --bogus
    assert_output --partial "plot queue: unknown option '--bogus'"
    run -2 "$PLOT" queue -Z
    assert_output --partial "unknown option '-Z'"
}

@test "--help, help CMD and --version exit 0 on stdout" {
    run -0 --separate-stderr "$PLOT" --help
    assert_output --partial "commands:"
    run -0 --separate-stderr "$PLOT" help run
    assert_output --partial "--max-tokens"
    run -0 --separate-stderr "$PLOT" run --help
    assert_output --partial "usage: plot run"
    run -0 "$PLOT" --version
    assert_output --regexp '^plot [0-9]+\.[0-9]+\.[0-9]+$'
    run -2 "$PLOT" help nosuch
}

@test "every command's --help exits 0 without a daemon" {
    run -0 "$PLOT" __complete-table
    for c in $(awk '$1 == "command" { print $2 }' <<<"$output"); do
        run -0 --separate-stderr "$PLOT" "$c" --help
        assert_output --partial "usage: plot $c"
    done
}

@test "run/submit option values are checked before anything is sent (2)" {
    run -2 "$PLOT" submit --temperature hot hello
    assert_output --partial "--temperature: 'hot' is not a number"
    run -2 "$PLOT" submit --temperature 101 hello
    assert_output --partial "out of range"
    run -2 "$PLOT" submit -p urgent hello
    assert_output --partial "--priority: 'urgent'"
    run -2 "$PLOT" submit -n 0 hello
    run -2 "$PLOT" submit -n 12x hello
    run -2 "$PLOT" submit -n -3 hello
    run -2 "$PLOT" submit --top-p 1.5 hello
    run -2 "$PLOT" submit --min-p -0.1 hello
    run -2 "$PLOT" submit --top-k 2000000 hello
    run -2 "$PLOT" submit --seed -1 hello
    run -2 "$PLOT" submit --deadline 0 hello
    run -2 "$PLOT" submit --deadline soon hello
    run -2 "$PLOT" submit --cost 0 hello
    run -2 "$PLOT" submit --stop "" hello
    run -2 "$PLOT" submit -m "" hello
    run -2 "$PLOT" submit --model
    assert_output --partial "option '--model' needs a value"
    run -2 "$PLOT" submit hello --detach
    assert_output --partial "unknown option '--detach'"
}

@test "more than 16 --stop strings is a usage error" {
    args=()
    for i in $(seq 17); do args+=(--stop "s$i"); done
    run -2 "$PLOT" submit "${args[@]}" hello
    assert_output --partial "at most 16"
}

@test "an empty prompt on stdin is a usage error" {
    run -2 "$PLOT" submit - </dev/null
    assert_output --partial "the prompt is empty"
    run -2 "$PLOT" run </dev/null
}

@test "ids, verbs and other operands are checked (2)" {
    run -2 "$PLOT" tail
    run -2 "$PLOT" tail abc
    assert_output --partial "task id: 'abc' is not a whole number"
    run -2 "$PLOT" tail 0
    run -2 "$PLOT" status 1 2
    run -2 "$PLOT" result
    run -2 "$PLOT" cancel
    run -2 "$PLOT" cancel --all 3
    run -2 "$PLOT" cancel -m echo 3
    run -2 "$PLOT" queue --state sleeping
    run -2 "$PLOT" queue --watch 0
    run -2 "$PLOT" queue extra
    run -2 "$PLOT" stats --prometheus --json
    run -2 "$PLOT" limits frob
    run -2 "$PLOT" limits set
    run -2 "$PLOT" limits set max_running
    run -2 "$PLOT" limits set nosuchkey=3
    run -2 "$PLOT" daemon
    run -2 "$PLOT" daemon frobnicate
    run -2 "$PLOT" daemon start --now
    run -2 "$PLOT" daemon stop --timeout 0
    run -2 "$PLOT" --color sometimes models
    assert_output --partial "--color: 'sometimes'"
    run -2 "$PLOT" help run extra
}

@test "no daemon and autostart off: unreachable (69), nothing started" {
    run -69 "$PLOT" models
    assert_output --partial "$PLOT_SOCKET"
    run -69 "$PLOT" submit hello
    run -69 "$PLOT" run hello
    run -69 "$PLOT" status 1
    run -69 "$PLOT" --json stats
    unset PLOT_NO_AUTOSTART
    run -69 "$PLOT" --no-autostart queue
    run -69 "$PLOT" queue --no-autostart
    [[ ! -e "$PLOT_SOCKET" ]]
}

@test "daemon status without a daemon says so and exits 69" {
    run -69 --separate-stderr "$PLOT" daemon status
    assert_output "plotd is not running (socket $PLOT_SOCKET)"
    run -69 --separate-stderr "$PLOT" --json daemon status
    assert_output "{\"running\":false,\"socket\":\"$PLOT_SOCKET\"}"
    run -0 "$PLOT" daemon stop
}

@test "PLOT_NO_AUTOSTART=0 does not turn autostart off" {
    # A plotd that cannot run proves an autostart was attempted.
    export PLOT_NO_AUTOSTART=0
    mkdir -p "$BATS_TEST_TMPDIR/fakebin"
    cp "$PLOT" "$BATS_TEST_TMPDIR/fakebin/plot"
    printf '#!/bin/sh\necho "fake plotd refuses" >&2\nexit 78\n' >"$BATS_TEST_TMPDIR/fakebin/plotd"
    chmod +x "$BATS_TEST_TMPDIR/fakebin/plotd"
    run -78 "$BATS_TEST_TMPDIR/fakebin/plot" models
    assert_output --partial "fake plotd refuses"
}
