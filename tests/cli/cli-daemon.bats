#!/usr/bin/env bats
# The daemon from the CLI's side: daemon start/stop/status, autostart (and
# two clients racing to do it), config errors (78), permission (77),
# models, config, and stats in all three renderings.

load helpers
load cli-helpers

setup() {
    plot_setup
    cli_config 2
}

teardown() {
    cli_teardown
}

# Forget a daemon this test started through plot, after stopping it.
daemon_pid() {
    "$PLOT" --json daemon status | jq -r .pid
}

@test "daemon start, status, stop; start returns once the socket answers" {
    run -69 --separate-stderr "$PLOT" daemon status
    run -0 --separate-stderr "$PLOT" daemon start --config "$PLOT_CONFIG"
    pid=$(daemon_pid)
    plot_kill_later "$pid"
    [ -S "$PLOT_SOCKET" ]
    run -0 --separate-stderr "$PLOT" daemon status
    assert_output --regexp "^plotd is running: pid $pid"
    run -0 --separate-stderr "$PLOT" --json daemon status
    assert_equal "$(jq -r '[.running, .pid, .socket] | @tsv' <<<"$output")" "true	$pid	$PLOT_SOCKET"
    run -0 --separate-stderr "$PLOT" daemon start
    [[ "$stderr" == *"already running"* ]]
    assert_equal "$(daemon_pid)" "$pid"
    run -0 --separate-stderr "$PLOT" models
    run -0 --separate-stderr "$PLOT" daemon stop
    pid_gone "$pid"
    run -69 --separate-stderr "$PLOT" daemon status
    run -0 --separate-stderr "$PLOT" daemon stop
}

@test "daemon stop --now cancels running work" {
    run -0 "$PLOT" daemon start --config "$PLOT_CONFIG"
    pid=$(daemon_pid)
    plot_kill_later "$pid"
    submit -m slow "$(words 4000)"
    wait_until state_is "$ID" running
    run -0 --separate-stderr "$PLOT" daemon stop --now --timeout 20
    pid_gone "$pid"
}

@test "autostart: a command that needs the daemon starts it" {
    unset PLOT_NO_AUTOSTART
    run -0 --separate-stderr "$PLOT" --config "$PLOT_CONFIG" run "auto started"
    assert_output "auto started"
    pid=$(daemon_pid)
    plot_kill_later "$pid"
    run -0 "$PLOT" daemon stop
    assert_no_sanitizer "$PLOT_SOCKET.log"
}

@test "autostart racing with itself starts one daemon" {
    unset PLOT_NO_AUTOSTART
    for i in 1 2 3 4; do
        "$PLOT" --config "$PLOT_CONFIG" run "client $i" >"$BATS_TEST_TMPDIR/c$i" 2>&1 &
        pids+=($!)
    done
    for i in 1 2 3 4; do
        st=0; wait "${pids[$((i - 1))]}" || st=$?
        assert_equal "$st" 0
        assert_equal "$(cat "$BATS_TEST_TMPDIR/c$i")" "client $i"
    done
    pid=$(daemon_pid)
    plot_kill_later "$pid"
    # Exactly one plotd serves this socket (processes counted by their
    # command line, which names our own socket).
    n=$(grep -lsF -- "$PLOT_SOCKET" /proc/[0-9]*/cmdline | while read -r f; do
            tr '\0' ' ' <"$f" | grep -q '^[^ ]*plotd ' && echo x; done | wc -l)
    assert_equal "$n" 1
    run -0 "$PLOT" daemon stop
    assert_no_sanitizer "$PLOT_SOCKET.log"
}

@test "config errors name file:line:col and exit 78" {
    plotd_write_config "$BATS_TEST_TMPDIR/bad.yaml" <<'EOF'
parking_lot:
  limits: { max_queue_depth: lots }
models:
  - name: echo
    executor: synthetic
EOF
    run -78 --separate-stderr "$PLOT" --config "$BATS_TEST_TMPDIR/bad.yaml" daemon start
    [[ "$stderr" == *"bad.yaml:2:"*"max_queue_depth"* ]]
    unset PLOT_NO_AUTOSTART
    run -78 --separate-stderr "$PLOT" --config "$BATS_TEST_TMPDIR/bad.yaml" models
    [[ "$stderr" =~ bad\.yaml:[0-9]+:[0-9]+: ]]
    plotd_write_config "$BATS_TEST_TMPDIR/typo.yaml" <<'EOF'
models:
  - name: echo
    executer: synthetic
EOF
    run -78 --separate-stderr "$PLOT" --config "$BATS_TEST_TMPDIR/typo.yaml" daemon start
    [[ "$stderr" =~ typo\.yaml:3:[0-9]+: ]]
    run -69 --separate-stderr "$PLOT" daemon status
}

@test "a foreign uid is refused (77)" {
    [ "$(id -u)" = 0 ] || fail "needs root to switch to another uid"
    plotd_start
    run -77 --separate-stderr setpriv --reuid=65534 --regid=65534 --clear-groups \
        env PLOT_SOCKET="$PLOT_SOCKET" PLOT_NO_AUTOSTART=1 "$PLOT" models
}

@test "models and config" {
    plotd_start
    run -0 --separate-stderr "$PLOT" models
    assert_line --regexp "^echo	synthetic	[a-z]+	yes	-	-	-	-	-$"
    assert_line --regexp "^slow	synthetic	[a-z]+	no	-	-	-	-	-$"
    run -0 --separate-stderr "$PLOT" --json models
    assert_equal "$(jq -r '[.models[] | select(.default) | .name] | join(",")' <<<"$output")" echo
    run -0 --separate-stderr "$PLOT" config
    assert_output --partial "tokens_per_sec"
    # The effective config loads again.
    echo "$output" >"$BATS_TEST_TMPDIR/again.yaml"
    run -0 "$PLOTD" --check-config --config "$BATS_TEST_TMPDIR/again.yaml"
    run -0 --separate-stderr "$PLOT" --json config
    assert_equal "$(jq -r .source <<<"$output")" "$PLOT_CONFIG"
}

@test "stats --json has the documented keys; --prometheus is the text format" {
    plotd_start
    run -0 --separate-stderr "$PLOT" --json stats
    for k in name queued running used_units max_units max_queue_depth threads max_running running_limit submitted \
             completed failed cancelled expired timed_out rejected; do
        assert_equal "$(jq -r ".models[0] | has(\"$k\")" <<<"$output")" true
    done
    assert_equal "$(jq -r '[.models[].name] | join(",")' <<<"$output")" "echo,slow"
    run -0 --separate-stderr "$PLOT" --json stats -m slow
    assert_equal "$(jq -r '[.models[].name] | join(",")' <<<"$output")" "slow"
    run -0 --separate-stderr "$PLOT" stats --prometheus
    assert_line '# TYPE plot_submitted_total counter'
    assert_line 'plot_max_units{model="echo"} 8'
    assert_line 'plot_queued{model="slow"} 0'
    assert_line 'plot_max_running{model="echo"} 2'
    assert_line 'plot_running_limit{model="echo"} 2'
    assert_line 'plot_threads{model="echo"} 0'
    # Every sample line is NAME{labels} VALUE.
    run -0 bash -c "grep -v '^#' <<<\"\$0\" | grep -Evc '^plot_[a-z_]+(\\{[^}]*\\})? [-+0-9.eInf]+\$' || true" "$output"
    assert_output 0
    run -0 --separate-stderr "$PLOT" stats --wide
    # RUNNING is running/running_limit; then UNITS, THREADS (0: the default).
    assert_line --regexp '^echo	0/100	0/2	0/8	0	0	'
}

@test "stats --watch repeats until interrupted" {
    plotd_start
    "$PLOT" --json stats --watch 0.1 >"$BATS_TEST_TMPDIR/w" 2>&1 &
    pid=$!
    wait_until lines_ge "$BATS_TEST_TMPDIR/w" 3
    # SIGTERM: a background job of a script inherits SIGINT ignored.
    kill -TERM "$pid"
    st=0; wait "$pid" || st=$?
    assert_equal "$st" 143
    jq -e '.models' <"$BATS_TEST_TMPDIR/w" >/dev/null
}

@test "the stats counters add up after a mixed run" {
    cli_config 1 8 2
    plotd_start
    run -0 "$PLOT" run -m slow "a b"                       # completed
    run -1 "$PLOT" run -m slow '!fail x'                   # failed
    submit -m slow "$(words 2000)"; blocker=$ID            # cancelled (running)
    wait_until state_is "$blocker" running
    submit -m slow "$(words 3)"; queued=$ID                # cancelled (queued)
    submit -m slow --deadline 0.2 "late"; late=$ID         # expired (queued)
    wait_until state_is "$late" expired
    submit -m slow "$(words 3)"                            # queue: 2 = full
    run -75 "$PLOT" submit -m slow "rejected"              # rejected (queue full)
    run -75 "$PLOT" submit -m slow --cost 9 "too big"      # rejected (capacity)
    run -0 "$PLOT" cancel "$queued" "$blocker"
    wait_until stat_is slow running 0
    wait_until stat_is slow queued 0
    run -124 "$PLOT" run -m slow --deadline 0.3 "$(words 400)"  # timed_out
    run -0 --separate-stderr "$PLOT" --json stats -m slow
    m=$(jq -c '.models[0]' <<<"$output")
    assert_equal "$(jq -r '[.submitted, .completed, .failed, .cancelled, .expired, .timed_out, .rejected, .rejected_queue_full, .rejected_capacity] | @tsv' <<<"$m")" \
        "7	2	1	2	1	1	2	1	1"
    assert_equal "$(jq -r '.completed + .failed + .cancelled + .expired + .timed_out + .queued + .running == .submitted' <<<"$m")" true
}
