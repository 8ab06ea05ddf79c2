#!/usr/bin/env bats
# The sqlite store: what survives a restart (kill -9 or a clean stop), ids,
# restart order (and the requeued task's attempt count), deadlines that
# pass while plotd is down, the restart policy, plot list (its filters,
# --since too) and --key across restarts, and the faults at start
# (corrupted, locked) and while running (full disk, read-only file system:
# tests/cli/store-faults.sh, which needs to mount a small file system).

load helpers

setup() { plot_setup; }
teardown() { plot_teardown; }

DB() { echo "$XDG_STATE_HOME/plot/plot.db"; }

# store_config TOKENS_PER_SEC [POLICY] [MAX_RUNNING]: models echo and other.
store_config() {
	plotd_write_config <<-EOF
	parking_lot:
	  pool:    { max_running: ${3:-1} }
	  limits:  { max_units: 8, max_queue_depth: 100, timeout_secs: 120 }
	  queue:   { backend: sqlite }
	  mailbox: { backend: sqlite, retention_secs: 3600 }
	store: { restart_policy: ${2:-requeue} }
	daemon:    { log_level: info }
	default_model: echo
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: $1 }
	  - name: other
	    executor: synthetic
	    params: { tokens_per_sec: $1 }
	EOF
}

state_of() { "$PLOT" --json status "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
is_state() { [ "$(state_of "$1")" = "$2" ]; }

# attempts: "ID:ATTEMPTS ..." of every record (plotd holds the database
# exclusively: only once it is gone)
attempts() {
	python3 -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(" ".join("%d:%d" % r for r in c.execute("select id, attempts from tasks order by id")))' "$(DB)"
}

kill9() {
	kill -KILL "$PLOTD_PID"
	wait "$PLOTD_PID" 2>/dev/null || true
	PLOTD_PID=""
}

# builtin_start: plotd with no config file at all (the built-in config)
builtin_start() {
	PLOTD_SOCKET_USED=$PLOT_SOCKET PLOTD_PID_FILE=$BATS_TEST_TMPDIR/plotd.pid
	env -u PLOT_CONFIG "$PLOTD" --socket "$PLOT_SOCKET" --pid-file "$PLOTD_PID_FILE" \
		</dev/null >>"$BATS_TEST_TMPDIR/plotd.stdout" 2>>"$PLOTD_STDERR" 3>&- &
	PLOTD_PID=$!
	wait_until _plotd_ready
}

@test "the built-in config keeps tasks in \$XDG_STATE_HOME/plot/plot.db across kill -9" {
	[ ! -e "$XDG_CONFIG_HOME/plot/plot.yaml" ]
	builtin_start
	run -0 "$PLOT" run "kept by default"
	[ -f "$(DB)" ]
	kill9
	builtin_start
	plotd_log_has "store $(DB): 1 tasks read back, next id 2 \(synchronous normal\)"
	run -0 "$PLOT" result 1
	assert_output "kept by default"
}

@test "ids are short, unique across models and restarts, and never reused" {
	store_config 1000
	plotd_start
	run -0 "$PLOT" submit one
	assert_output 1
	run -0 "$PLOT" submit -m other two
	assert_output 2
	run -0 "$PLOT" run three
	kill9
	plotd_start
	run -0 "$PLOT" submit -m other four
	assert_output 4
	plotd_stop
	plotd_start
	run -0 "$PLOT" submit five
	assert_output 5
	# the first tasks are still there, with their output
	run -0 "$PLOT" result 2
	assert_output "two"
	run -0 "$PLOT" result 3
	assert_output "three"
}

@test "after kill -9, queued tasks come back by priority then FIFO, the running one requeued" {
	store_config 2
	plotd_start
	"$PLOT" submit "a b c d e f g h i j" >/dev/null      # 1: runs
	wait_until is_state 1 running
	"$PLOT" submit -p low "low one" >/dev/null           # 2
	"$PLOT" submit "normal one" >/dev/null               # 3
	"$PLOT" submit -p high "high one" >/dev/null         # 4
	"$PLOT" submit "normal two" >/dev/null               # 5
	kill9
	store_config 1000
	plotd_start
	wait_until is_state 2 done
	# admission order after the restart: high, then the requeued 1 (oldest
	# normal), then the other normals in order, then low
	run -0 bash -c "grep -o 'task [0-9]* admitted' '$PLOTD_STDERR' | awk '{print \$2}' | tail -5 | xargs"
	assert_output "4 1 3 5 2"
	plotd_log_has "task 1 resumed"
	run -0 "$PLOT" result 1
	assert_output "a b c d e f g h i j" # partial output discarded: whole, once
	run -0 "$PLOT" result 4
	assert_output "high one"
	# the requeued task's attempt count went up in its record, no other's
	plotd_stop
	run -0 attempts
	assert_output "1:1 2:0 3:0 4:0 5:0"
}

@test "a task submitted over HTTP is resumed after kill -9 like a socket one" {
	store_config 2
	plotd_start --http 127.0.0.1:0
	wait_until grep -q 'http: listening on' "$PLOTD_STDERR"
	url="http://$(sed -n 's/.*http: listening on \([0-9.:]*\).*/\1/p' "$PLOTD_STDERR" | head -n 1)"
	"$PLOT" submit "a b c d e f g h i j" >/dev/null      # 1: runs
	wait_until is_state 1 running
	curl -s -X POST "$url/v1/completions" -H 'Content-Type: application/json' \
		-d '{"model": "echo", "prompt": "from http", "priority": "high", "detach": true}' \
		>/dev/null 2>&1 &
	local curl_pid=$!
	wait_until is_state 2 queued
	kill9
	kill "$curl_pid" 2>/dev/null || true
	wait "$curl_pid" 2>/dev/null || true
	store_config 1000
	plotd_start
	wait_until is_state 2 done
	plotd_log_has "task 2 resumed"
	run -0 "$PLOT" result 2
	assert_output "from http"
	run -0 --separate-stderr "$PLOT" --json status 2
	[ "$(jq -r '.model + " " + .priority' <<<"$output")" = "echo high" ]
}

@test "a clean stop keeps queued tasks; they run after the next start" {
	store_config 2
	plotd_start
	"$PLOT" submit "a b c d e f" >/dev/null
	wait_until is_state 1 running
	"$PLOT" submit "queued one" >/dev/null
	run -0 "$PLOT" daemon stop --now
	PLOTD_PID=""
	store_config 1000
	plotd_start
	wait_until is_state 2 done
	run -0 "$PLOT" result 2
	assert_output "queued one"
	wait_until is_state 1 done
	run -0 "$PLOT" result 1
	assert_output "a b c d e f"
}

@test "a deadline that passed while plotd was down expires at the restart" {
	store_config 1
	plotd_start
	"$PLOT" submit "a b c d e f g h" >/dev/null
	wait_until is_state 1 running
	"$PLOT" submit --deadline 0.5 "never runs" >/dev/null
	"$PLOT" submit "runs later" >/dev/null
	local due
	due=$(awk -v t="$EPOCHREALTIME" 'BEGIN { printf "%.6f", t + 0.6 }')
	kill9
	past() { awk -v now="$EPOCHREALTIME" -v due="$due" 'BEGIN { exit !(now > due) }'; }
	wait_until past # plotd stays down until the deadline has passed
	store_config 1000
	plotd_start
	wait_until is_state 2 expired
	wait_until is_state 3 done
	run -124 "$PLOT" result 2
}

@test "restart_policy fail: the task that was running fails with the reason" {
	store_config 2 fail
	plotd_start
	"$PLOT" submit "a b c d e f g h" >/dev/null
	wait_until is_state 1 running
	"$PLOT" submit "next" >/dev/null
	kill9
	store_config 1000 fail
	plotd_start
	run -0 state_of 1
	assert_output failed
	run -1 --separate-stderr "$PLOT" result 1
	[[ "$stderr" == *"plotd stopped while it ran (store.restart_policy: fail)"* ]]
	wait_until is_state 2 done
}

@test "plot list shows finished tasks from before a restart; tail replays them" {
	store_config 1000
	plotd_start
	"$PLOT" run "first task" >/dev/null
	"$PLOT" run -m other "second task" >/dev/null
	kill9
	plotd_start
	"$PLOT" run "third" >/dev/null
	run -0 "$PLOT" list
	assert_line --index 0 --regexp '^3[[:space:]]+echo[[:space:]]+done'
	assert_line --index 1 --regexp '^2[[:space:]]+other[[:space:]]+done.*second task$'
	assert_line --index 2 --regexp '^1[[:space:]]+echo[[:space:]]+done.*first task$'
	run -0 "$PLOT" list -m other
	assert_line --index 0 --regexp '^2[[:space:]]+other'
	assert_equal "${#lines[@]}" 1
	run -0 "$PLOT" list --limit 1
	assert_equal "${#lines[@]}" 1
	run -0 "$PLOT" --json list --state done --owner "$(id -u)"
	assert_output --partial '"id":1'
	run -0 "$PLOT" queue --state done
	assert_equal "${#lines[@]}" 3
	# --since SECS: only tasks submitted in the last SECS seconds
	none_recent() { [ -z "$("$PLOT" list --since 2)" ]; }
	wait_until none_recent
	"$PLOT" run "fourth" >/dev/null
	run -0 "$PLOT" list --since 2
	assert_line --index 0 --regexp '^4[[:space:]]+echo[[:space:]]+done'
	assert_equal "${#lines[@]}" 1
	run -0 "$PLOT" list --since 3600
	assert_equal "${#lines[@]}" 4
	run -0 "$PLOT" tail 2
	assert_output "second task"
}

@test "output is stored as it grows: a running task's words are in the database before it ends" {
	store_config 5
	plotd_start
	"$PLOT" submit "one two three four five six seven eight nine ten" >/dev/null
	has_words() {
		python3 -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(b"".join(r[0] for r in c.execute("select data from chunks where task=1 order by seq")).decode())' "$(DB)" 2>/dev/null
	}
	# plotd holds the database exclusively: look once it is gone (kill -9)
	wait_until is_state 1 running
	run_two() { [ "$("$PLOT" --json status 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["output_bytes"])')" -ge 8 ]; }
	wait_until run_two
	kill9
	run -0 has_words
	[[ "$output" == "one two "* ]]
	[[ "$output" != *ten ]]
	# at the restart the task is requeued: its partial output is gone, and it
	# ends whole, once
	store_config 1000
	plotd_start
	wait_until is_state 1 done
	run -0 "$PLOT" result 1
	assert_output "one two three four five six seven eight nine ten"
}

@test "--key: a repeated submit gets the first task's id, also after a restart" {
	store_config 1000
	plotd_start
	run -0 "$PLOT" submit --key job-42 "keyed task"
	assert_output 1
	run -0 "$PLOT" submit --key job-42 "keyed task again"
	assert_output 1
	run -0 "$PLOT" submit --key other "another"
	assert_output 2
	kill9
	plotd_start
	run -0 "$PLOT" submit --key job-42 "keyed task"
	assert_output 1
	run -0 "$PLOT" run --key job-42 "keyed task"
	assert_output "keyed task"
	run -2 "$PLOT" submit --key "" x
}

@test "a corrupted database: plotd refuses to start, naming the file (74)" {
	mkdir -p -m 700 "$XDG_STATE_HOME/plot"
	head -c 8192 /dev/urandom >"$(DB)"
	run -74 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET"
	assert_output --partial "$(DB)"
	assert_output --partial "corrupted"
}

@test "a database locked by another process: plotd refuses to start (74)" {
	mkdir -p -m 700 "$XDG_STATE_HOME/plot"
	coproc LOCKER { python3 -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("create table if not exists t(x)")
c.execute("begin exclusive")
print("locked", flush=True)
sys.stdin.read()' "$(DB)"; }
	read -r -u "${LOCKER[0]}" line
	[ "$line" = locked ]
	run -74 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET"
	assert_output --partial "$(DB)"
	assert_output --partial "locked by another process"
	exec {LOCKER[1]}>&-
	wait "$LOCKER_PID"
	plotd_start # free again
}

@test "a second plotd on the same database is refused (74)" {
	plotd_start
	run -74 plotd_bounded --config "$PLOT_CONFIG" --socket "$BATS_TEST_TMPDIR/run/other.sock"
	assert_output --partial "locked by another process"
}

@test "the database directory must be private; a symlinked file is refused" {
	mkdir -p "$XDG_STATE_HOME/plot"
	chmod 777 "$XDG_STATE_HOME/plot"
	run -74 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET"
	assert_output --partial "not writable by group or others"
	chmod 700 "$XDG_STATE_HOME/plot"
	ln -s "$BATS_TEST_TMPDIR/elsewhere.db" "$(DB)"
	run -74 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET"
	assert_output --partial "symlink"
}

@test "store.path and yaque: a path elsewhere; the seeds' backends name sqlite" {
	store_config 1000
	sed -i "s|store: {|store: { path: $BATS_TEST_TMPDIR/db/x.db,|" "$PLOT_CONFIG"
	plotd_start
	run -0 "$PLOT" run hi
	[ -f "$BATS_TEST_TMPDIR/db/x.db" ]
	[ ! -e "$(DB)" ]
	plotd_stop
	sed -i "s|backend: sqlite }|backend: yaque }|" "$PLOT_CONFIG"
	run -78 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET"
	assert_output --partial "use sqlite"
}

@test "full disk while running: STORE (74), the task never runs, reads work; read-only at start: 74" {
	local script="$PLOT_TESTS_DIR/store-faults.sh"
	run bash "$script" "$PLOT" "$PLOTD" "$BATS_TEST_TMPDIR/faults"
	if [ "$status" = 3 ]; then # no right to mount: a user and mount namespace has it
		rm -rf "$BATS_TEST_TMPDIR/faults"
		run unshare -rm bash "$script" "$PLOT" "$PLOTD" "$BATS_TEST_TMPDIR/faults"
	fi
	echo "$output"
	[ "$status" = 0 ]
	assert_output --partial "faults: all checks passed"
}
