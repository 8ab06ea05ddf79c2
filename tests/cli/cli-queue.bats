#!/usr/bin/env bats
# The parking lot seen through the CLI: priority order, a full queue and an
# oversized cost (75), deadline expiry (124), limits changed live.

load helpers
load cli-helpers

teardown() {
    cli_teardown
}

# start_blocker: one long slow task occupying the only worker; sets BLOCKER.
start_blocker() {
    submit -m slow "$(words 2000)"
    BLOCKER=$ID
    wait_until state_is "$BLOCKER" running
}

@test "queue --json lists tasks in priority order; they run in that order" {
    plot_setup; cli_config 1; plotd_start
    start_blocker
    submit -m slow -p low "$(words 10 l)"; low=$ID
    submit -m slow -p normal "$(words 10 n)"; normal=$ID
    submit -m slow -p high "$(words 10 h)"; high=$ID
    submit -m slow -p critical "$(words 10 c)"; crit=$ID
    submit -m slow -p high "$(words 10 H)"; high2=$ID
    run -0 --separate-stderr "$PLOT" --json queue -m slow
    assert_equal "$(jq -r '[.[].id] | join(" ")' <<<"$output")" \
        "$BLOCKER $crit $high $high2 $normal $low"
    assert_equal "$(jq -r '[.[].position] | join(" ")' <<<"$output")" "0 1 2 3 4 5"
    assert_equal "$(jq -r '[.[].priority] | join(" ")' <<<"$output")" \
        "normal critical high high normal low"
    # Every key the man page promises is there.
    assert_equal "$(jq -r '.[0] | [has("id","model","priority","state","position","cost","age","deadline")] | all' <<<"$output")" true
    # Start order, from plotd's log: with one worker, each admission waits
    # for the previous task to end, so the log order is the run order.
    run -0 "$PLOT" cancel "$BLOCKER"
    wait_until admitted_ge 6
    assert_equal "$(admitted_order | tail -n 5 | tr '\n' ' ')" "$crit $high $high2 $normal $low "
}

admitted_order() {
    sed -nE 's/.*pool slow: task ([0-9]+) admitted .*/\1/p' "$PLOTD_STDERR"
}
admitted_ge() {
    [ "$(admitted_order | wc -l)" -ge "$1" ]
}

@test "queue: table on a pipe is tab-separated; --state filters" {
    plot_setup; cli_config 1; plotd_start
    start_blocker
    submit -m slow -p high "x y"
    run -0 --separate-stderr "$PLOT" queue
    assert_line --index 0 --regexp "^$BLOCKER	slow	normal	running	-	1	"
    assert_line --index 1 --regexp "^$ID	slow	high	queued	1	1	"
    run -0 --separate-stderr "$PLOT" --json queue --state queued
    assert_equal "$(jq -r '[.[].id] | join(" ")' <<<"$output")" "$ID"
}

@test "QUEUE_FULL exactly at max_queue_depth (75)" {
    plot_setup; cli_config 1 8 3; plotd_start
    start_blocker
    for i in 1 2 3; do
        run -0 --separate-stderr "$PLOT" submit -m slow "$(words 2000 q$i)"
    done
    run -75 --separate-stderr "$PLOT" submit -m slow "one too many"
    [[ "$stderr" == *QUEUE_FULL* || "$stderr" == *"queue"* ]]
    run -75 --separate-stderr "$PLOT" run -m slow "also too many"
    stat_is slow rejected_queue_full 2
    # A slot frees: the next submit fits again.
    run -0 "$PLOT" cancel "$BLOCKER"
    wait_until stat_is slow queued 2
    run -0 --separate-stderr "$PLOT" submit -m slow "fits again"
}

@test "a cost above max_units is refused at once (75); at max_units it runs" {
    plot_setup; cli_config 2 8; plotd_start
    run -75 --separate-stderr "$PLOT" submit --cost 9 "too big"
    run -75 --separate-stderr "$PLOT" run --cost 9 "too big"
    run -0 --separate-stderr "$PLOT" run --cost 8 "just fits"
    assert_output "just fits"
    stat_is echo rejected_capacity 2
}

@test "deadline passed while queued: expired, never ran (124)" {
    plot_setup; cli_config 1; plotd_start
    start_blocker
    run -124 --separate-stderr "$PLOT" run -m slow --deadline 0.3 "never runs"
    assert_output ""
    submit -m slow --deadline 0.3 "never runs either"
    run -124 --separate-stderr "$PLOT" result --wait "$ID"
    state_is "$ID" expired
    stat_is slow expired 2
}

@test "limits set raises and lowers max_running live" {
    plot_setup; cli_config 1; plotd_start
    for i in 1 2 3 4; do submit -m slow "$(words 2000)"; done
    wait_until stat_is slow running 1
    stat_is slow queued 3
    run -0 --separate-stderr "$PLOT" limits set -m slow max_running=3
    wait_until stat_is slow running 3
    stat_is slow queued 1
    # Lowering never stops running work.
    run -0 --separate-stderr "$PLOT" --json limits set -m slow max_running=1
    [ "$(jq -r '.models[0].max_running' <<<"$output")" = 1 ]
    stat_is slow running 3
    stat_is slow running_limit 1
    # As the three end, only one at a time runs again.
    run -0 "$PLOT" cancel --all -m slow
    wait_until stat_is slow running 0
    for i in 1 2; do submit -m slow "$(words 2000)"; done
    wait_until stat_is slow running 1
    stat_is slow queued 1
}

# The admin's case from issue #9: max_running=1 means one task at a time
# (threads is a different knob), and a raise admits before the reply.
@test "max_running=1 runs one synthetic task at a time; a raise admits at once" {
    plot_setup; cli_config 1; plotd_start
    run -0 --separate-stderr "$PLOT" limits set -m slow threads=4
    for i in 1 2 3; do submit -m slow "$(words 2000)"; done
    wait_until stat_is slow running 1
    for i in 1 2 3 4 5; do
        run -0 --separate-stderr "$PLOT" --json stats -m slow
        assert_equal "$(jq -r '.models[0] | "\(.running) \(.queued) \(.running_limit) \(.threads)"' <<<"$output")" "1 2 1 4"
    done
    run -0 --separate-stderr "$PLOT" --json queue -m slow
    assert_equal "$(jq -r '[.[].state] | join(" ")' <<<"$output")" "running queued queued"
    run -0 --separate-stderr "$PLOT" limits set -m slow max_running=3
    # No wait_until: the pool admits while it applies the limit.
    run -0 --separate-stderr "$PLOT" --json stats -m slow
    assert_equal "$(jq -r '.models[0] | "\(.running) \(.queued) \(.running_limit)"' <<<"$output")" "3 0 3"
    run -0 --separate-stderr "$PLOT" limits set -m slow max_running=null
    stat_is slow running_limit null
    stat_is slow max_running null
}

@test "every runtime limit: get, set, get again" {
    plot_setup; cli_config 2; plotd_start
    run -0 --separate-stderr "$PLOT" --json limits -m echo
    [ "$(jq -r '.models[0].name' <<<"$output")" = echo ]
    kvs="max_units=5 max_queue_depth=7 max_running=3 threads=2 timeout_secs=9 retention_secs=11 retention_tasks=13 retention_bytes=17 max_units_per_user=19 max_units_owner=23 priority_aging_secs=29"
    for kv in $kvs; do
        k=${kv%=*} v=${kv#*=}
        [ "$(jq -r ".models[0].$k" <<<"$output")" != "$v" ]
    done
    # The walk covers every key plot limits knows.
    assert_equal "$(jq -r '.models[0] | del(.name) | keys | sort | join(" ")' <<<"$output")" \
        "$(for kv in $kvs; do echo "${kv%=*}"; done | sort | paste -sd' ')"
    run -0 --separate-stderr "$PLOT" limits set -m echo $kvs
    run -0 --separate-stderr "$PLOT" --json limits get -m echo
    for kv in $kvs; do
        k=${kv%=*} v=${kv#*=}
        assert_equal "$(jq -r ".models[0].$k" <<<"$output")" "$v"
    done
    run -0 --separate-stderr "$PLOT" limits set -m echo max_units=null
    run -0 --separate-stderr "$PLOT" --json limits -m echo
    assert_equal "$(jq -r '.models[0].max_units' <<<"$output")" null
    # The other model was left alone; without -m a set applies to all.
    run -0 --separate-stderr "$PLOT" --json limits -m slow
    assert_equal "$(jq -r '.models[0].max_running' <<<"$output")" 2
    assert_equal "$(jq -r '.models[0].threads' <<<"$output")" 0
    run -0 --separate-stderr "$PLOT" limits set max_running=4 threads=1
    run -0 --separate-stderr "$PLOT" --json limits
    assert_equal "$(jq -r '[.models[].max_running] | join(" ")' <<<"$output")" "4 4"
    assert_equal "$(jq -r '[.models[].threads] | join(" ")' <<<"$output")" "1 1"
    run -2 --separate-stderr "$PLOT" limits set max_running=0
    run -2 --separate-stderr "$PLOT" limits set threads=lots
    run -2 --separate-stderr "$PLOT" limits set workers=2
    run -1 --separate-stderr "$PLOT" limits set -m nosuch max_running=2
}
