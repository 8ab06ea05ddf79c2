#!/usr/bin/env bats
# run, submit, tail, result, status and cancel against a real plotd with
# synthetic models; exit statuses checked exactly.

load helpers
load cli-helpers

setup() {
    plot_setup
    cli_config 2
    plotd_start
}

teardown() {
    cli_teardown
}

@test "run streams the output and exits 0" {
    run -0 --separate-stderr "$PLOT" run hello brave new world
    assert_output "hello brave new world"
    run -0 --separate-stderr "$PLOT" run -m slow -p high -n 2 --temperature 0 --seed 7 \
        --top-k 40 --top-p 0.9 --min-p 0.05 --stop zz --cost 2 --deadline 30 "one two three"
    assert_output "one two "
}

@test "run reads the prompt from stdin with - or without a prompt" {
    run -0 --separate-stderr "$PLOT" run - <<<"from stdin"
    assert_output "from stdin"
    run -0 --separate-stderr "$PLOT" run <<<"also stdin"
    assert_output "also stdin"
}

@test "a failing task: run, result and status agree (1)" {
    run -1 --separate-stderr "$PLOT" run '!fail now'
    [[ "$stderr" == *failed* ]]
    submit '!fail again'
    run -1 --separate-stderr "$PLOT" result --wait "$ID"
    run -0 "$PLOT" --json status "$ID"
    [ "$(jq -r .state <<<"$output")" = failed ]
}

@test "submit prints the id (JSON too), result and status read the task" {
    run -0 --separate-stderr "$PLOT" submit "a b c"
    assert_output --regexp '^[0-9]+$'
    id=$output
    run -0 --separate-stderr "$PLOT" result --wait "$id"
    assert_output "a b c"
    run -0 --separate-stderr "$PLOT" --json submit "d e"
    id2=$(jq -r .id <<<"$output")
    [ "$id2" -gt "$id" ]
    run -0 --separate-stderr "$PLOT" result --json --wait "$id2"
    [ "$(jq -r .output <<<"$output")" = "d e" ]
    [ "$(jq -r .state <<<"$output")" = done ]
    run -0 --separate-stderr "$PLOT" --json status "$id2"
    assert_equal "$(jq -r '[.id, .model, .priority, .state, .cost] | @tsv' <<<"$output")" \
        "$id2	echo	normal	done	1"
    run -0 --separate-stderr "$PLOT" status "$id2"
    assert_line --regexp '^state +done$'
}

@test "result of a task still running is partial (1), of an unknown task (1)" {
    submit -m slow "$(words 200)"
    wait_until state_is "$ID" running
    run -1 --separate-stderr "$PLOT" result "$ID"
    [[ "$stderr" == *"still running"* ]]
    run -1 --separate-stderr "$PLOT" status 999999
    run -1 --separate-stderr "$PLOT" result 999999
}

@test "run --detach prints the id and the task goes on" {
    run -0 --separate-stderr "$PLOT" --json run --detach -m slow "$(words 6)"
    id=$(jq -r .id <<<"$output")
    run -0 --separate-stderr "$PLOT" result --wait "$id"
    assert_output "$(words 6)"
}

@test "tail from other clients replays from the start and follows (0)" {
    submit -m slow "$(words 30)"
    wait_until state_is "$ID" running
    wait_until chunks_ge "$ID" 3
    "$PLOT" tail "$ID" >"$BATS_TEST_TMPDIR/t1" 2>&1 &
    t1=$!
    run -0 --separate-stderr "$PLOT" tail "$ID"
    assert_output "$(words 30)"
    wait "$t1"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/t1")" "$(words 30)"
    run -0 --separate-stderr "$PLOT" tail --no-follow "$ID"
    assert_output "$(words 30)"
}

@test "tail --no-follow of a running task prints what there is and exits 0" {
    submit -m slow "$(words 200)"
    wait_until chunks_ge "$ID" 2
    run -0 --separate-stderr "$PLOT" tail --no-follow "$ID"
    full=$(words 200)
    [[ "$full" == "$output"* ]]
    [ "${#output}" -lt "${#full}" ]
}

@test "Ctrl-C on run cancels the task on the daemon and exits 130" {
    "$PLOT" run -m slow "$(words 400)" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
    pid=$!
    wait_until [ -s "$BATS_TEST_TMPDIR/out" ]
    id=$("$PLOT" --json queue --state running | jq -r '.[0].id')
    kill -INT "$pid"
    st=0; wait "$pid" || st=$?
    assert_equal "$st" 130
    grep -q "cancelling task $id" "$BATS_TEST_TMPDIR/err"
    wait_until state_is "$id" cancelled
    run -130 --separate-stderr "$PLOT" result "$id"
}

@test "a client that goes away cancels its run, not a detached one" {
    "$PLOT" run -m slow "$(words 400)" >"$BATS_TEST_TMPDIR/out" 2>&1 &
    pid=$!
    wait_until [ -s "$BATS_TEST_TMPDIR/out" ]
    id=$("$PLOT" --json queue --state running | jq -r '.[0].id')
    kill -KILL "$pid"
    wait "$pid" || true
    wait_until state_is "$id" cancelled
}

@test "cancel: queued and running tasks; the runner exits 130; twice is 1" {
    "$PLOT" run -m slow "$(words 400)" >"$BATS_TEST_TMPDIR/out" 2>&1 &
    pid=$!
    wait_until [ -s "$BATS_TEST_TMPDIR/out" ]
    run_id=$("$PLOT" --json queue --state running | jq -r '.[0].id')
    run -0 --separate-stderr "$PLOT" cancel "$run_id"
    assert_output "$run_id"
    st=0; wait "$pid" || st=$?
    assert_equal "$st" 130
    wait_until state_is "$run_id" cancelled
    run -1 --separate-stderr "$PLOT" cancel "$run_id"
    [[ "$stderr" == *"$run_id"* ]]
    run -1 --separate-stderr "$PLOT" cancel 999999
}

@test "cancel --all [-m M] cancels only what it should (JSON lists them)" {
    submit -m slow "$(words 400)"; a=$ID
    submit -m slow "$(words 400)"; b=$ID
    submit "$(words 3)"; c=$ID
    run -0 --separate-stderr "$PLOT" result --wait "$c"
    run -0 --separate-stderr "$PLOT" --json cancel --all -m slow
    assert_equal "$(jq -c '.cancelled | sort' <<<"$output")" "[$a,$b]"
    wait_until state_is "$a" cancelled
    wait_until state_is "$b" cancelled
    state_is "$c" done
    run -130 --separate-stderr "$PLOT" tail "$a"
}

@test "deadline passed while running: run exits 124 with the partial output" {
    run -124 --separate-stderr "$PLOT" run -m slow --deadline 0.5 "$(words 400)"
    [[ "$(words 400)" == "$output"* ]]
    [[ "$stderr" == *timeout* ]]
}

@test "tail of an unknown task is an error (1)" {
    run -1 --separate-stderr "$PLOT" tail 999999
    [[ "$stderr" == *999999* ]]
}

@test "colour: never off a tty unless --color always; NO_COLOR honoured" {
    submit "x"
    run -0 --separate-stderr "$PLOT" result --wait "$ID"
    esc=$'\033['
    run -0 --separate-stderr "$PLOT" status "$ID"
    [[ "$output" != *"$esc"* ]]
    run -0 --separate-stderr "$PLOT" --color always status "$ID"
    [[ "$output" == *"$esc"* ]]
    run -0 --separate-stderr env -u NO_COLOR "$PLOT" --color never status "$ID"
    [[ "$output" != *"$esc"* ]]
    # auto on a tty: NO_COLOR wins (script gives the command a terminal).
    run -0 script -qec "NO_COLOR=1 $PLOT status $ID" /dev/null
    [[ "$output" != *"$esc"* ]]
    run -0 script -qec "env -u NO_COLOR TERM=xterm $PLOT status $ID" /dev/null
    [[ "$output" == *"$esc"* ]]
}

@test "the log shows each admission and each end, with the task's id" {
    run -0 --separate-stderr "$PLOT" submit -p high --cost 2 "x y"
    id=$output
    run -0 --separate-stderr "$PLOT" result --wait "$id"
    wait_log "pool [a-z]+: task $id admitted \\(high, cost 2, waited [0-9.]+ ms\\)"
    wait_log "pool [a-z]+: task $id done after [0-9.]+ ms"
    run -1 --separate-stderr "$PLOT" run '!fail here'
    wait_log "pool [a-z]+: task [0-9]+ failed after"
}
