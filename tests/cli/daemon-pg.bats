#!/usr/bin/env bats
# daemon-pg.bats — three plotd on one PostgreSQL database (issue #15): one
# shared queue in global priority order, QUEUE_FULL at the shared depth, no
# task run twice, each daemon admitting what fits its own units, tasks of a
# daemon killed with -9 finishing on another once its lease expires, a
# database restart under load, and reads (result, tail, status) from a daemon
# other than the one that ran the task.
#
# Needs a server: make cli runs the bats files under tests/tools/pg-cluster.sh
# run (CI's cluster, or one started for the run), which exports PGHOST,
# PGPORT, PGUSER and PLOT_PG_DIR. Without them these tests FAIL, never skip.
# Each test gets its own database (createdb), each daemon its own socket,
# config and XDG_STATE_HOME. Leases are short (lease_ms 600: a heartbeat
# every 200 ms), so a dead daemon's tasks move within about a second.

load helpers
load pg-helpers

# every task of the database is done (state 2, enum pool_state)
all_done() {
	[ "$(sql "SELECT count(*) FROM plot_tasks WHERE state <> 2")" = 0 ]
}

# record_units: from now on the database itself records, after every
# statement that inserts or updates tasks, the running units it counts
# against each daemon (a statement trigger: every state, not samples)
record_units() {
	sql "CREATE TABLE units_seen (owner text, units bigint);
	     CREATE FUNCTION note_units() RETURNS trigger LANGUAGE plpgsql AS \$\$
	     BEGIN
	         INSERT INTO units_seen SELECT lease_owner, sum(cost) FROM plot_tasks
	             WHERE state = 1 GROUP BY lease_owner;
	         RETURN NULL;
	     END \$\$;
	     CREATE TRIGGER note_units AFTER INSERT OR UPDATE ON plot_tasks
	         FOR EACH STATEMENT EXECUTE FUNCTION note_units();"
}

# admissions of task ID across every daemon's log
admissions() {
	cat "$BATS_TEST_TMPDIR"/d*/err | grep -Ec "pool echo: task $1 admitted" || true
}

@test "a task submitted to one daemon runs on any and is read from any (result, tail, status, wait)" {
	pgd_start 1 4
	pgd_start 2 4
	run -0 p 1 submit "alpha beta gamma"
	id=$output
	[ "$(sql "SELECT count(*) FROM plot_tasks WHERE id = $id")" = 1 ]
	run -0 p 2 wait "$id"
	run -0 p 2 result "$id"
	[ "$output" = "alpha beta gamma" ]
	run -0 p 1 result "$id"
	[ "$output" = "alpha beta gamma" ]
	run -0 p 2 tail "$id"
	[ "$output" = "alpha beta gamma" ]
	run -0 p 2 --json status "$id"
	[[ "$output" == *'"state":"done"'* ]]
	run -0 p 1 run "one two three"
	[ "$output" = "one two three" ]
	run -1 p 2 result 999999
	[[ "$output" == *"task 999999 not found"* ]]
}

@test "tail from another daemon follows output appended while the task runs" {
	pgd_start 1 1 40   # the runner: 40 tokens/s
	pgd_start 2 1 40
	words=$(seq -s ' ' 1 40)
	run -0 p 1 submit "$words"
	id=$output
	wait_until sql_is "SELECT state FROM plot_tasks WHERE id = $id" 1
	runner=$(sql "SELECT lease_owner FROM plot_tasks WHERE id = $id")
	other=1
	[ "$runner" = d1 ] && other=2
	# the reader is not the runner; it starts before the end and sees it all
	run -0 p "$other" tail "$id"
	[ "$output" = "$words" ]
	[ "$(sql "SELECT state FROM plot_tasks WHERE id = $id")" = 2 ]
}

@test "global priority order: queued high tasks start before low ones on any daemon" {
	for n in 1 2 3; do pgd_start "$n" 1 100; done
	# a task holds each daemon's only unit, ending 1, 2 and 3 s from now: the
	# daemons claim one after the other (two claiming in the same instant
	# may pass rows the other has locked: a limit of SKIP LOCKED's window,
	# see plotd.8)
	for n in 1 2 3; do p "$n" submit "$(seq -s ' ' 1 $((n * 100)))" >/dev/null; done
	wait_until sql_is "SELECT count(*) FROM plot_tasks WHERE state = 1" 3
	for n in 1 2 3; do p "$n" submit --priority low "low $n" >/dev/null; done
	for n in 3 2 1; do p "$n" submit --priority high "high $n" >/dev/null; done
	[ "$(sql "SELECT count(*) FROM plot_tasks WHERE state = 0")" = 6 ]
	wait_until -t 30 all_done
	run -0 sql "SELECT (SELECT max(started_at) FROM plot_tasks WHERE priority = 2) <=
			   (SELECT min(started_at) FROM plot_tasks WHERE priority = 0)"
	[ "$output" = t ]
}

@test "QUEUE_FULL at the shared depth, counted in the database across daemons" {
	for n in 1 2 3; do pgd_start "$n" 1 100 3; done
	for n in 1 2 3; do p "$n" submit "$(seq -s ' ' 1 200)" >/dev/null; done
	wait_until sql_is "SELECT count(*) FROM plot_tasks WHERE state = 1" 3
	run -0 p 1 submit q1
	run -0 p 2 submit q2
	run -0 p 3 submit q3
	run -75 p 2 submit q4
	[[ "$output" == *"QUEUE_FULL"* || "$output" == *"full"* ]]
	[[ "$output" == *"max_queue_depth 3"* ]]
	[ "$(sql "SELECT count(*) FROM plot_tasks WHERE state = 0")" = 3 ]
}

@test "no task runs twice, and each daemon admits only what fits its own units" {
	pgd_start 1 2 300
	pgd_start 2 3 300
	pgd_start 3 4 300
	ids=()
	record_units
	for i in $(seq 1 24); do
		n=$(( i % 3 + 1 ))
		cost=$(( i % 2 + 1 ))
		ids+=("$(p "$n" submit --cost "$cost" "task $i a b c d e f g h i j")")
	done
	wait_until -t 40 all_done
	for id in "${ids[@]}"; do
		[ "$(admissions "$id")" = 1 ] || { echo "# task $id admitted $(admissions "$id") times"; false; }
		run -0 p 1 result "$id"
		[[ "$output" == "task "*" a b c d e f g h i j" ]]
	done
	# the database never counted more running units against a daemon than
	# its max_units (recorded after every statement by record_units)
	sql "SELECT owner, units FROM units_seen" | tr '|' ' ' >"$BATS_TEST_TMPDIR/seen"
	while read -r owner units; do
		max=$(( ${owner#d} + 1 ))
		[ "$units" -le "$max" ] || { echo "# $owner held $units units (max $max)"; false; }
	done <"$BATS_TEST_TMPDIR/seen"
	[ -s "$BATS_TEST_TMPDIR/seen" ]
}

@test "kill -9 a daemon while it runs tasks: they finish on another, each exactly once" {
	pgd_start 1 4 20      # 20 tokens/s: 40 words take 2 s
	words=$(seq -s ' ' 1 40)
	a=$(p 1 submit "$words")
	b=$(p 1 submit "$words")
	wait_until sql_is "SELECT count(*) FROM plot_tasks WHERE state = 1 AND lease_owner = 'd1'" 2
	pgd_start 2 4 1000
	kill -KILL "${PGD_PIDS[1]}"
	wait "${PGD_PIDS[1]}" 2>/dev/null || true
	PGD_PIDS[1]=""
	run -0 p 2 wait "$a" "$b"
	for id in "$a" "$b"; do
		run -0 p 2 result "$id"
		[ "$output" = "$words" ]   # the rerun's output alone, not spliced
		[ "$(sql "SELECT attempts || ' ' || lease_owner FROM plot_tasks WHERE id = $id")" = "1 d2" ]
		grep -Eq "pool echo: task $id admitted" "$BATS_TEST_TMPDIR/d2/err"
		[ "$(grep -Ec "pool echo: task $id admitted" "$BATS_TEST_TMPDIR/d2/err")" = 1 ]
	done
}

@test "a tail whose task's runner dies mid-output ends with an error: the lost run is never spliced into the new one" {
	pgd_start 1 1 20      # the runner: 40 words take 2 s
	words=$(seq -s ' ' 1 40)
	id=$(p 1 submit "$words")
	wait_until sql_is "SELECT count(*) > 0 FROM plot_output WHERE task_id = $id" t
	pgd_start 2 1 1000    # the follower; it takes the task once d1's lease expires
	p 2 tail "$id" >"$BATS_TEST_TMPDIR/tail.out" 2>"$BATS_TEST_TMPDIR/tail.err" &
	tailpid=$!
	wait_until test -s "$BATS_TEST_TMPDIR/tail.out"
	kill -KILL "${PGD_PIDS[1]}"
	wait "${PGD_PIDS[1]}" 2>/dev/null || true
	PGD_PIDS[1]=""
	rc=0
	wait "$tailpid" || rc=$?
	[ "$rc" = 1 ]
	grep -q "task $id lost its runner and runs again from the start (run 2)" "$BATS_TEST_TMPDIR/tail.err"
	run -0 p 2 wait "$id"
	run -0 p 2 tail "$id"
	[ "$output" = "$words" ]
	# what the broken tail printed is a prefix of the lost run, nothing of the new one after it
	out=$(cat "$BATS_TEST_TMPDIR/tail.out")
	[[ "$words" == "$out"* ]]
}

@test "a database restart under load loses no acknowledged task" {
	pgd_start 1 4 2000
	pgd_start 2 4 2000
	acked="$BATS_TEST_TMPDIR/acked"
	: >"$acked"
	for i in $(seq 1 40); do
		n=$(( i % 2 + 1 ))
		id=$(p "$n" submit "load $i a b c d e f g h" 2>/dev/null) && echo "$id" >>"$acked"
		# the server's own fds: not bats' (its output would never close)
		[ "$i" = 15 ] && "$PLOT_TESTS_DIR/../tools/pg-cluster.sh" restart \
			</dev/null >/dev/null 2>&1 3>&-
	done
	# refused while the server was down is fine (STORE, exit 74), but both
	# daemons take submits again after it
	wait_until p 1 submit "load after 1" >>"$acked"
	wait_until p 2 submit "load after 2" >>"$acked"
	[ "$(wc -l <"$acked")" -ge 17 ]
	while read -r id; do
		wait_until -t 30 sql_is "SELECT state FROM plot_tasks WHERE id = $id" 2
	done <"$acked"
	while read -r id; do
		run -0 p 1 result "$id"
		[[ "$output" == "load "* ]]
	done <"$acked"
}

@test "a database that cannot be used stops plotd at start: exit 78, the URL without its password" {
	d="$BATS_TEST_TMPDIR/bad"
	mkdir -p -m 700 "$d"
	cat >"$d/plot.yaml" <<-EOF
	parking_lot:
	  queue:   { backend: postgres }
	  mailbox: { backend: postgres }
	postgres:  { url: "postgresql://nobody:s3cret@/no_such_db?host=$PGHOST&port=$PGPORT" }
	models:
	  - { name: echo, executor: synthetic }
	EOF
	run -78 plotd_bounded --config "$d/plot.yaml" --socket "$d/s"
	[[ "$output" == *"postgresql://nobody:***@/no_such_db"* ]]
	[[ "$output" != *s3cret* ]]
}

@test "cancel from another daemon stops a task running elsewhere, and its runner drops it" {
	pgd_start 1 1 20
	pgd_start 2 1 20
	words=$(seq -s ' ' 1 200)
	id=$(p 1 submit "$words")
	wait_until sql_is "SELECT state FROM plot_tasks WHERE id = $id" 1
	runner=$(sql "SELECT lease_owner FROM plot_tasks WHERE id = $id")
	other=1
	[ "$runner" = d1 ] && other=2
	run -0 p "$other" cancel "$id"
	[ "$(sql "SELECT state FROM plot_tasks WHERE id = $id")" = 4 ]
	run -130 p "$other" wait "$id"
	wait_until grep -q "task $id: lease lost (cancelled)" "$BATS_TEST_TMPDIR/${runner}/err"
	run -1 p "$other" cancel "$id"
	[[ "$output" == *"already ended"* ]]
	[ "$(sql "SELECT count(*) FROM plot_tasks WHERE state = 1")" = 0 ]
}

@test "cancel --all on one daemon cancels every task of the shared queue: queued, running here and elsewhere" {
	pgd_start 1 1 20
	pgd_start 2 1 20
	words=$(seq -s ' ' 1 200)
	for i in 1 2 3 4 5; do p 1 submit "$words" >/dev/null; done
	wait_until sql_is "SELECT count(DISTINCT lease_owner) FROM plot_tasks WHERE state = 1" 2
	run -0 p 1 cancel --all
	# each task listed once, though the one running on d1 ended both here and in the database
	[ "$(printf '%s\n' "$output" | sort -un | wc -l)" = 5 ]
	[ "${#lines[@]}" = 5 ]
	[ "$(sql "SELECT count(*) FROM plot_tasks WHERE state = 4")" = 5 ]
	wait_until grep -q "lease lost (cancelled)" "$BATS_TEST_TMPDIR/d2/err"
	run -0 p 2 cancel --all
	[ -z "$output" ]
	[ "$(sql "SELECT count(*) FROM plot_tasks WHERE state <= 1")" = 0 ]
}

@test "plot stats on any daemon shows the shared queue and each daemon's share" {
	pgd_start 1 1 50
	pgd_start 2 2 50
	for i in 1 2 3 4 5; do p 1 submit "$(seq -s ' ' 1 100)" >/dev/null; done
	wait_until sql_is "SELECT count(*) FROM plot_tasks WHERE state = 1" 3
	wait_until sql_is "SELECT count(*) FROM plot_daemons WHERE running > 0" 2
	run -0 p 1 --json stats
	[[ "$output" == *'"shared":[{"model":"echo","queued":2,"running":3,"queued_units":2,"running_units":3}]'* ]]
	[[ "$output" == *'{"name":"d1","units":1,'* ]]
	[[ "$output" == *'{"name":"d2","units":2,'* ]]
	# without a terminal: tab-separated rows, no header
	run -0 p 2 stats
	assert_line --regexp $'^echo\t2\t3\t2\t3$'
	assert_line --regexp $'^d2\t2\t2\t2\t[0-9]+$'
}

@test "tasks running through a database restart finish once, their output written when it returns" {
	PGD_LEASE_MS=6000 pgd_start 1 4 20   # a 2 s heartbeat: the leases outlive the restart
	words=$(seq -s ' ' 1 40)             # 2 s of output
	a=$(p 1 submit "$words")
	b=$(p 1 submit "$words")
	wait_until sql_is "SELECT count(*) FROM plot_tasks WHERE state = 1" 2
	"$PLOT_TESTS_DIR/../tools/pg-cluster.sh" restart </dev/null >/dev/null 2>&1 3>&-
	wait_until -t 30 sql_is "SELECT count(*) FROM plot_tasks WHERE state = 2" 2
	for id in "$a" "$b"; do
		[ "$(sql "SELECT attempts FROM plot_tasks WHERE id = $id")" = 0 ]  # ran once
		[ "$(sql "SELECT convert_from(string_agg(data, ''::bytea ORDER BY seq), 'UTF8')
			  FROM plot_output WHERE task_id = $id")" = "$words" ]
	done
	# some writes failed with the server and were kept, then committed
	wait_until grep -Eq "write\(s\) kept while the database was away are committed" \
		"$BATS_TEST_TMPDIR/d1/err"
}

@test "plot queue and plot list on any daemon show every task of the database" {
	pgd_start 1 1 50
	pgd_start 2 1 50
	for i in 1 2; do p "$i" submit "$(seq -s ' ' 1 200)" >/dev/null; done
	wait_until sql_is "SELECT count(*) FROM plot_tasks WHERE state = 1" 2
	low=$(p 1 submit --priority low "low one")
	high=$(p 2 submit --priority high "high one")
	# queue: running first, then queued by priority; the same from either daemon
	run -0 p 2 --json queue
	q2=$(echo "$output" | grep -o '"id":[0-9]*' | cut -d: -f2 | tr '\n' ' ')
	run -0 p 1 --json queue
	ids=" $(echo "$output" | grep -o '"id":[0-9]*' | cut -d: -f2 | tr '\n' ' ')"
	[ "$ids" = " $q2" ]
	[ "$(echo "$output" | grep -o '"state":"running"' | wc -l)" = 2 ]
	[[ "$ids" == *" $high $low " ]]   # after the two running ones
	[[ "$output" == *"{\"id\":$high,"*'"state":"queued","position":1,'* ]]
	p 1 cancel "$low"
	run -0 p 2 --json list
	[[ "$output" == *"\"id\":$low,"*'"state":"cancelled"'* ]]
}

@test "a plot run whose client dies is cancelled, wherever its task runs" {
	pgd_start 1 1 20
	pgd_start 2 1 20
	words=$(seq -s ' ' 1 200)
	for n in 1 2; do
		"$PLOT" --socket "$BATS_TEST_TMPDIR/d$n/s" run "$words" >/dev/null 2>&1 3>&- &
		pid=$!
		wait_until sql_is "SELECT count(*) FROM plot_tasks WHERE state = 1" 1
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null || true
		wait_until sql_is "SELECT count(*) FROM plot_tasks WHERE state = 4" "$n"
	done
	[ "$(sql "SELECT count(*) FROM plot_tasks WHERE state = 1")" = 0 ]
}
