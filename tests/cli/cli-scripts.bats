#!/usr/bin/env bats
# plot in scripts (issue #14): a final newline on a pipe, a closed stdout
# ends quietly, --json event streams and errors, why a task stopped and how
# many tokens it made, owner and label in queue/status, sampling options
# checked in the client. Synthetic models: one word = one token.

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

# hex of stdin, no spaces
hex() { od -An -tx1 | tr -d ' \n'; }

@test "run, tail and result end their output with a newline on a pipe too" {
    # "a b" is streamed as "a " and "b": no newline of its own
    [ "$("$PLOT" run a b | hex)" = 6120620a ]
    submit a b
    [ "$("$PLOT" result --wait "$ID" | hex)" = 6120620a ]
    [ "$("$PLOT" tail "$ID" | hex)" = 6120620a ]
    # output that ends with one keeps one
    [ "$(printf 'x y\n' | "$PLOT" run | hex)" = 7820790a ]
    # scripts see one line
    [ "$("$PLOT" run one two three | wc -l)" = 1 ]
}

@test "a closed stdout ends run quietly with 141 and cancels the task" {
    local err="$BATS_TEST_TMPDIR/err"
    run bash -c '"$0" run -m slow $1 2>"$2" | head -c 4 >/dev/null; exit "${PIPESTATUS[0]}"' \
        "$PLOT" "$(words 200)" "$err"
    [ "$status" = 141 ]
    assert_equal "$(cat "$err")" ""
    wait_until stat_is slow cancelled 1
    # --json: the id is in the first event, and that task is cancelled
    run bash -c '"$0" --json run -m slow $1 2>"$2" | head -n 1; exit "${PIPESTATUS[0]}"' \
        "$PLOT" "$(words 200)" "$err"
    [ "$status" = 141 ]
    assert_equal "$(cat "$err")" ""
    id=$(jq -r .id <<<"$output")
    wait_until state_is "$id" cancelled
    [ "$(task_field "$id" finish)" = cancel ]
}

@test "a closed stdout ends tail quietly with 141 and leaves the task alone" {
    submit -m slow "$(words 200)"
    run bash -c '"$0" tail "$1" 2>&1 | head -c 4 >/dev/null; exit "${PIPESTATUS[0]}"' "$PLOT" "$ID"
    [ "$status" = 141 ]
    assert_output ""
    state_is "$ID" running
    "$PLOT" -q cancel "$ID" >/dev/null
}

@test "run --json: one event per chunk, then an end event saying why it stopped" {
    # (chunks the daemon had before the subscribe may come coalesced)
    run -0 --separate-stderr "$PLOT" --json run one two three
    [ "${#lines[@]}" -ge 2 ]
    [ "$(jq -rs '[.[:-1][] | .event] | unique | join(",")' <<<"$output")" = chunk ]
    [ "$(jq -rs '[.[:-1][] | .text] | join("")' <<<"$output")" = "one two three" ]
    end=${lines[-1]}
    assert_equal "$(jq -r '[.event, .state, .finish, .tokens, .error] | @tsv' <<<"$end")" \
        "end	done	eos	3	"
    id=$(jq -r .id <<<"$end")
    [ "$(jq -r .id <<<"${lines[0]}")" = "$id" ]
    jq -e '(.wait | type) == "number" and (.run | type) == "number" and .prompt_tokens == 0' <<<"$end"
    # max_tokens, and the same end from tail --json afterwards
    run -0 --separate-stderr "$PLOT" run --json -n 2 one two three
    end=${lines[-1]}
    assert_equal "$(jq -r '[.finish, .tokens] | @tsv' <<<"$end")" "max_tokens	2"
    id=$(jq -r .id <<<"$end")
    # (a replay may coalesce chunks into fewer events)
    run -0 --separate-stderr "$PLOT" tail --json "$id"
    [ "$(jq -rs '[.[:-1][] | .text] | join("")' <<<"$output")" = "one two " ]
    assert_equal "$(jq -r '[.event, .finish, .tokens] | @tsv' <<<"${lines[-1]}")" "end	max_tokens	2"
}

@test "status and the end event say why a task stopped: error, cancel, deadline" {
    run -1 --separate-stderr "$PLOT" --json run '!fail now'
    assert_equal "$(jq -r '[.state, .finish] | @tsv' <<<"${lines[-1]}")" "failed	error"
    submit -m slow "$(words 200)"
    wait_until state_is "$ID" running
    "$PLOT" -q cancel "$ID" >/dev/null
    wait_until state_is "$ID" cancelled
    [ "$(task_field "$ID" finish)" = cancel ]
    run -124 --separate-stderr "$PLOT" --json run -m slow --deadline 0.2 "$(words 200)"
    assert_equal "$(jq -r '[.state, .finish] | @tsv' <<<"${lines[-1]}")" "timeout	deadline"
    submit -n 1 a b c
    "$PLOT" result --wait "$ID" >/dev/null
    run -0 "$PLOT" status "$ID"
    assert_line --regexp '^stopped +max_tokens$'
    assert_line --regexp '^output +2 bytes, 1 chunks, 1 tokens$'
    # a task still running has no finish yet
    submit -m slow "$(words 200)"
    [ "$(task_field "$ID" finish)" = null ]
    "$PLOT" -q cancel "$ID" >/dev/null
}

@test "queue and status show the owner and the label (the prompt's start)" {
    me=$(id -un)
    submit -m slow "$(printf 'first\tline\nsecond line %s' "$(words 200)")"
    run -0 "$PLOT" status "$ID"
    assert_line --regexp "^owner +$me\$"
    assert_line --regexp '^label +first line second line w1 w2'
    run -0 "$PLOT" queue
    # tab-separated on a pipe: owner and label are the last two columns
    row=$(grep "^$ID	" <<<"$output")
    [ "$(cut -f9 <<<"$row")" = "$me" ]
    label=$(cut -f10 <<<"$row")
    [[ "$label" == "first line second line w"*... ]] || { echo "# label: [$label]" >&2; false; }
    [ "$(awk -F'\t' '{ print NF }' <<<"$row")" = 10 ]
    "$PLOT" -q cancel "$ID" >/dev/null
}

@test "sampling options out of range are usage errors naming the option" {
    run -2 --separate-stderr "$PLOT" run --top-p 0 x
    assert_equal "${stderr_lines[0]}" "plot run: --top-p: 0 is out of range (must be in (0, 1])"
    run -2 --separate-stderr "$PLOT" submit --repetition-penalty 0 x
    assert_equal "${stderr_lines[0]}" "plot submit: --repetition-penalty: 0 is out of range (must be in (0, 10])"
    run -2 --separate-stderr "$PLOT" run --frequency-penalty 2.5 x
    assert_equal "${stderr_lines[0]}" "plot run: --frequency-penalty: 2.5 is out of range (-2..2)"
    run -2 --separate-stderr "$PLOT" run --presence-penalty -3 x
    assert_equal "${stderr_lines[0]}" "plot run: --presence-penalty: -3 is out of range (-2..2)"
    run -2 --separate-stderr "$PLOT" run --penalty-last-n 70000 x
    assert_equal "${stderr_lines[0]}" "plot run: --penalty-last-n: 70000 is out of range (0..65536)"
    run -2 --separate-stderr "$PLOT" run --temperature 101 x
    assert_equal "${stderr_lines[0]}" "plot run: --temperature: 101 is out of range (0..100)"
    # nothing was sent
    run -0 stat_is echo submitted 0
    # in range: accepted and sent
    run -0 --separate-stderr "$PLOT" run --repetition-penalty 1.1 --frequency-penalty -0.5 \
        --presence-penalty 0.5 --penalty-last-n 32 --top-p 1 ok
    assert_output ok
}

@test "an unknown model: the same message and status from every command" {
    for cmd in "run -m nope x" "submit -m nope x" "queue -m nope" "stats -m nope" \
               "limits get -m nope" "cancel --all -m nope" "chat -m nope" "list -m nope" \
               "wait --all -m nope" "limits set -m nope max_queue_depth=3" "models unload nope" \
               "models load nope"; do
        run -1 --separate-stderr "$PLOT" $cmd
        verb=${cmd%% *}
        assert_equal "$stderr" "plot $verb: error: no model named 'nope' (models: echo, slow)"
    done
}

@test "wait: returns once the tasks have ended, with the first failure's status" {
    submit -m slow "$(words 6)"; a=$ID
    submit -m slow "$(words 3)"; b=$ID
    run -0 --separate-stderr "$PLOT" wait "$a" "$b"
    assert_line "$a	done"
    assert_line "$b	done"
    # the tasks really ended: the output is whole
    run -0 "$PLOT" result "$a"
    assert_output "$(words 6)"
    # the first one not done gives the status; --json prints task objects
    submit '!fail x'; f=$ID
    submit -m slow "$(words 200)"; c=$ID
    "$PLOT" -q cancel "$c" >/dev/null
    run -1 --separate-stderr "$PLOT" --json wait "$a" "$f" "$c"
    [ "$(jq -rs 'map(.state) | sort | join(",")' <<<"$output")" = "cancelled,done,failed" ]
    run -130 --separate-stderr "$PLOT" wait "$c" "$f"
    run -1 --separate-stderr "$PLOT" wait 999
    [[ "$stderr" == *"task 999 not found"* ]]
}

@test "wait --timeout gives up with 124 naming what still runs; --all waits for the queue" {
    submit -m slow "$(words 200)"; long=$ID
    run -124 --separate-stderr "$PLOT" wait --timeout 0.2 "$long"
    [[ "$stderr" == *"task $long has not ended after"* ]]
    state_is "$long" running
    "$PLOT" -q cancel "$long" >/dev/null
    # 2 s each at 20 tokens/s: both still queued or running when wait starts, even under a sanitizer
    submit -m slow "$(words 40)"; a=$ID
    submit -m slow "$(words 40)"; b=$ID
    submit "$(words 2)"
    run -0 --separate-stderr "$PLOT" wait --all -m slow --timeout 20
    assert_line "$a	done"
    assert_line "$b	done"
    run -2 --separate-stderr "$PLOT" wait
    run -2 --separate-stderr "$PLOT" wait --all 3
    run -2 --separate-stderr "$PLOT" wait -m slow 3
}

@test "cancel --wait returns once a running task has ended" {
    submit -m slow "$(words 200)"
    wait_until state_is "$ID" running
    run -0 --separate-stderr "$PLOT" cancel --wait "$ID"
    assert_output "$ID"
    # no window: it has ended by the time cancel returns
    [ "$(task_field "$ID" state)" = cancelled ]
    [ "$(task_field "$ID" finish)" = cancel ]
    run -0 stat_is slow running 0
}

@test "--json errors are one JSON object on stderr; daemon stop --json says what it did" {
    run -2 --separate-stderr "$PLOT" --json run --top-p 0 x
    assert_equal "$(jq -r '[.command, .error] | @tsv' <<<"$stderr")" \
        "run	--top-p: 0 is out of range (must be in (0, 1])"
    assert_output ""
    run -1 --separate-stderr "$PLOT" status --json 424242
    assert_equal "$(jq -r '[.command, .error] | @tsv' <<<"$stderr")" "status	task 424242 not found"
    run -1 --separate-stderr "$PLOT" --json run -m nope x
    jq -e '.error | startswith("no model named")' <<<"$stderr"
    # a failed task is an error too
    run -1 --separate-stderr "$PLOT" --json run '!fail x'
    jq -e '.command == "run" and (.error | contains("failed"))' <<<"$stderr"
    pid=$PLOTD_PID
    run -0 --separate-stderr "$PLOT" --json daemon stop --now
    assert_equal "$(jq -r '[.stopped, .was_running, .pid, .mode] | @tsv' <<<"$output")" \
        "true	true	$pid	now"
    plotd_wait_exit
    run -0 --separate-stderr "$PLOT" --json daemon stop
    jq -e '.stopped == true and .was_running == false and .pid == null' <<<"$output"
}

@test "the log says submitted (uid, priority) before admitted, for every task" {
    submit -p high "$(words 2)"; a=$ID
    "$PLOT" result --wait "$a" >/dev/null
    wait_log "pool echo: task $a (done|completed)"
    uid=$(id -u)
    grep -nE "pool echo: task $a (submitted|admitted)" "$PLOTD_STDERR" >"$BATS_TEST_TMPDIR/lines"
    run -0 cut -d: -f2- "$BATS_TEST_TMPDIR/lines"
    [ "${#lines[@]}" = 2 ]
    [[ "${lines[0]}" == *"task $a submitted (0 prompt tokens, uid $uid, high, cost 1)" ]]
    [[ "${lines[1]}" == *"task $a admitted (high, cost 1, waited "* ]]
}

@test "stats fits 80 columns on a terminal, labels p50/p99, shows memory; --wide has the rest" {
    "$PLOT" run one two three >/dev/null
    submit -m slow "$(words 100)"
    on_tty() { script -qec "$*" /dev/null | tr -d '\r'; }
    run -0 on_tty "'$PLOT' stats"
    assert_line --regexp '^MODEL +QUEUE +RUN +UNITS +DONE +FAIL +CANC +TOK/S +BATCH +WAIT_P50/P99$'
    assert_line --regexp '^echo +0 +0/2 +0/8 +1 +0 +0 +- +- +[0-9.]+/[0-9.]+$'
    assert_line --regexp '^memory: [0-9.]+ (KiB|MiB|GiB) resident, models hold 0 B \(0 B of KV cache\)$'
    [ "$(awk '{ if (length($0) > m) m = length($0) } END { print m }' <<<"$output")" -le 80 ]
    run -0 on_tty "'$PLOT' stats --wide"
    assert_output --regexp 'TTFT_MS_P50/P99 +ITL_MS_P50/P99 +QUEUE_WAIT_MS_P50/P99'
    assert_output --regexp 'SUBMITTED +COMPLETED +FAILED +CANCELLED +EXPIRED +TIMED_OUT +REJECTED'
    "$PLOT" -q cancel "$ID" >/dev/null
}

@test "stats --json and --prometheus: tokens, model ready, memory; summaries typed as such" {
    "$PLOT" run one two three >/dev/null
    "$PLOT" run -n 2 four five six >/dev/null
    run -0 --separate-stderr "$PLOT" --json stats -m echo
    assert_equal "$(jq -r '.models[0] | [.model_ready, .generated_tokens, .prompt_tokens, .kv_bytes] | @tsv' <<<"$output")" \
        "1	5	0	0"
    jq -e '.rss_bytes > 1000000' <<<"$output"
    run -0 --separate-stderr "$PLOT" stats --prometheus
    assert_line 'plot_generated_tokens_total{model="echo"} 5'
    assert_line '# TYPE plot_generated_tokens_total counter'
    assert_line '# TYPE plot_prompt_tokens_total counter'
    assert_line 'plot_model_ready{model="echo"} 1'
    assert_line '# TYPE plot_model_ready gauge'
    assert_line '# TYPE plot_kv_bytes gauge'
    assert_line '# TYPE plot_queue_wait_seconds summary'
    assert_line '# TYPE plot_process_resident_memory_bytes gauge'
    assert_line --regexp '^plot_process_resident_memory_bytes [1-9][0-9]{6,}$'
    refute_line '# TYPE plot_queue_wait_seconds gauge'
    # a summary has its _sum and _count beside the quantiles: the two runs' waits
    # (0 on the memory store, where both start at once)
    run -0 python3 "$BATS_TEST_DIRNAME/promcheck.py" 'plot_queue_wait_seconds_count{model="echo"}' \
        'plot_queue_wait_seconds_sum{model="echo"}' <<<"$output"
    assert_line --index 0 2
    local sum=${lines[1]}
    run -0 --separate-stderr "$PLOT" --json stats -m echo
    assert_equal "$(jq -r '.models[0].queue_wait_count' <<<"$output")" 2
    jq -e --argjson s "$sum" '.models[0].queue_wait_sum_secs | . >= 0 and (. - $s | fabs) < 1e-5' <<<"$output"
}

@test "generate.* defaults: shown by plot config and help, daemon-wide and per model, a request wins" {
    plotd_stop
    plotd_write_config <<-'EOF2'
	parking_lot:
	  limits: { max_units: 8 }
	  generate: { max_tokens: 3, temperature: 0.5 }
	default_model: echo
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 1000 }
	  - name: two
	    executor: synthetic
	    params: { tokens_per_sec: 1000 }
	    parking_lot: { generate: { max_tokens: 2 } }
	  - name: all
	    executor: synthetic
	    params: { tokens_per_sec: 1000 }
	    parking_lot: { generate: { max_tokens: null } }
	EOF2
    plotd_start
    run -0 "$PLOT" run a b c d e
    assert_output "a b c "
    run -0 "$PLOT" run -m two a b c d e
    assert_output "a b "
    run -0 "$PLOT" run -m all a b c d e
    assert_output "a b c d e"
    run -0 "$PLOT" run -n 4 a b c d e
    assert_output "a b c d "
    run -0 --separate-stderr "$PLOT" --json run a b c d e
    assert_equal "$(jq -r '[.finish, .tokens] | @tsv' <<<"${lines[-1]}")" "max_tokens	3"
    # plot config: the effective values, defaults included; no 120 s timeout
    run -0 "$PLOT" config
    assert_output --regexp 'generate:.*max_tokens: 3'
    assert_output --partial 'temperature: 0.5'
    assert_output --partial 'top_p: 0.95'
    assert_output --partial 'top_k: 40'
    assert_output --regexp 'timeout_secs: 0'
    submit a b
    [ "$(task_field "$ID" deadline)" = null ]
    run -0 "$PLOT" help run
    assert_line --regexp '^  generate.max_tokens +null$'
    assert_line --regexp '^  generate.temperature +0.8$'
    assert_line --regexp '^  limits.timeout_secs +0$'
}

@test "a label is cut at a character boundary" {
    # 23 bytes of ASCII, then é (2 bytes) across the 24-byte cut
    submit -m slow "abcdefghij klmnopqrstuvé $(words 200)"
    run -0 "$PLOT" queue
    row=$(grep "^$ID	" <<<"$output")
    assert_equal "$(cut -f10 <<<"$row")" "abcdefghij klmnopqrstuv..."
    "$PLOT" -q cancel "$ID" >/dev/null
}
