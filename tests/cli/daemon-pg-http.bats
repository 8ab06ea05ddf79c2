#!/usr/bin/env bats
# daemon-pg-http.bats — the HTTP front for a model on the shared queue
# (issues #15 and #16, plotd(8) SHARED QUEUE and HTTP): completions whose
# task another daemon runs, streaming and not, through the official `openai`
# package (httpclient.py); a client that leaves mid-stream cancels the task
# where it runs; the mailbox and DELETE of tasks held elsewhere; 429 at the
# shared depth; 503 while the database is away; /v1/queues with the shared
# queue.
#
# d1 serves HTTP. To make another daemon run what d1 submits, d1 has one
# unit and a long "blocker" task holds it before d2 starts: d1 cannot claim
# anything while it runs. The database and the daemons are pg-helpers.bash's.

load helpers
load pg-helpers

setup() {
	plot_setup
	PGDB="plot_t${BATS_SUITE_TEST_NUMBER}_$$"
	createdb "$PGDB"
	PGD_PIDS=()
	CLIENT="$BATS_TEST_DIRNAME/httpclient.py"
	BODY="$BATS_TEST_TMPDIR/body"
}

# http_up N UNITS TPS [DEPTH]: daemon N with the HTTP front; sets URL
http_up() {
	PGD_ARGS=(--http 127.0.0.1:0)
	pgd_start "$@"
	PGD_ARGS=()
	wait_until grep -q 'http: listening on' "$BATS_TEST_TMPDIR/d$1/err"
	URL="http://$(sed -n 's/.*http: listening on \([0-9.:]*\).*/\1/p' \
		"$BATS_TEST_TMPDIR/d$1/err" | head -n 1)"
}

# http_d1 [DEPTH]: d1 with one unit and the HTTP front, and a blocker that
# holds its unit for 20 s (sets BLOCKER)
http_d1() {
	http_up 1 1 20 "${1:-100}"
	BLOCKER=$(p 1 submit "$(seq -s ' ' 1 400)")
	wait_until sql_is "SELECT lease_owner FROM plot_tasks WHERE id = $BLOCKER" d1
}

# code METHOD PATH [CURL ARGS...]: prints the HTTP status; the body goes to $BODY
code() {
	local m="$1" path="$2"
	shift 2
	curl -s -o "$BODY" -w '%{http_code}' -X "$m" "$@" "$URL$path"
}

# runner ID: the daemon that holds (or last held) task ID
runner() {
	sql "SELECT lease_owner FROM plot_tasks WHERE id = $1"
}

# every task but the blocker ran on d2, and there are N of them
others_ran_on_d2() {
	[ "$(sql "SELECT count(*) FROM plot_tasks WHERE id <> $BLOCKER AND lease_owner = 'd2'
		  AND state = 2")" = "$1" ]
	[ "$(sql "SELECT count(*) FROM plot_tasks WHERE id <> $BLOCKER")" = "$1" ]
}

@test "openai: chat and completions, streaming and not, run by another daemon" {
	http_d1
	pgd_start 2 4 1000
	run -0 python3 "$CLIENT" "$URL" chatstream "one two three"
	assert_output "one two three"
	run -0 python3 "$CLIENT" "$URL" chat "four five six"
	assert_output "four five six"
	run -0 python3 "$CLIENT" "$URL" complete "a b c d e" 3
	assert_output "a b c "
	run -0 python3 "$CLIENT" "$URL" completestream "x y z"
	assert_output "x y z"
	others_ran_on_d2 4
}

@test "a task the HTTP daemon claims itself streams through the same path, and a disconnect cancels it" {
	http_up 1 4 20
	run -0 python3 "$CLIENT" "$URL" chatstream "seven eight"
	assert_output "seven eight"
	run -0 python3 "$CLIENT" "$URL" chat "nine ten"
	assert_output "nine ten"
	[ "$(sql "SELECT string_agg(DISTINCT lease_owner, ',') FROM plot_tasks WHERE state = 2")" = d1 ]
	[ "$(sql "SELECT count(*) FROM plot_tasks")" = 2 ]
	curl -s -N "$URL/v1/completions" -d "{\"prompt\": \"$(seq -s ' ' 1 200)\", \"stream\": true}" \
		>"$BATS_TEST_TMPDIR/sse" 2>/dev/null 3>&- &
	pid=$!
	plot_kill_later "$pid"
	wait_until grep -q '"text":"1 ' "$BATS_TEST_TMPDIR/sse"
	id=$(sql "SELECT max(id) FROM plot_tasks")
	[ "$(runner "$id")" = d1 ]
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	wait_until sql_is "SELECT state FROM plot_tasks WHERE id = $id" 4
	grep -q "pool echo: task $id cancelled: its HTTP client disconnected" \
		"$BATS_TEST_TMPDIR/d1/err"
}

@test "usage, finish_reason and X-Plot-Task (the database id) for a task run elsewhere" {
	http_d1
	pgd_start 2 4 1000
	run -0 curl -s -D "$BATS_TEST_TMPDIR/h" "$URL/v1/completions" \
		-d '{"prompt": "a b c d", "max_tokens": 2}'
	assert_output --partial '"text":"a b "'
	assert_output --partial '"finish_reason":"length"'
	assert_output --partial '"usage":{"prompt_tokens":0,"completion_tokens":2,"total_tokens":2}'
	id=$(sed -n 's/^X-Plot-Task: \([0-9]*\).*/\1/p' "$BATS_TEST_TMPDIR/h")
	[ "$(runner "$id")" = d2 ]
	# streaming, with the usage chunk: three words end by themselves (stop)
	run -0 curl -s -N -D "$BATS_TEST_TMPDIR/h2" "$URL/v1/chat/completions" -d \
		'{"messages": [{"role": "user", "content": "p q r"}], "stream": true,
		  "stream_options": {"include_usage": true}}'
	assert_output --partial '"finish_reason":"stop"'
	assert_output --partial '"usage":{"prompt_tokens":0,"completion_tokens":3,"total_tokens":3}'
	assert_output --partial 'data: [DONE]'
	id2=$(sed -n 's/^X-Plot-Task: \([0-9]*\).*/\1/p' "$BATS_TEST_TMPDIR/h2")
	[ "$(runner "$id2")" = d2 ]
	run -0 p 2 result "$id2"
	assert_output "p q r"
}

@test "a client that disconnects mid-stream cancels its task on the daemon that runs it" {
	http_d1
	pgd_start 2 4 20
	curl -s -N "$URL/v1/completions" -d "{\"prompt\": \"$(seq -s ' ' 1 200)\", \"stream\": true}" \
		>"$BATS_TEST_TMPDIR/sse" 2>/dev/null 3>&- &
	pid=$!
	plot_kill_later "$pid"
	wait_until grep -q '"text":"1 ' "$BATS_TEST_TMPDIR/sse"   # it streams
	id=$(sql "SELECT id FROM plot_tasks WHERE id <> $BLOCKER")
	[ "$(runner "$id")" = d2 ]
	[ "$(sql "SELECT state FROM plot_tasks WHERE id = $id")" = 1 ]
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	wait_until sql_is "SELECT state FROM plot_tasks WHERE id = $id" 4
	wait_until grep -q "task $id: lease lost (cancelled)" "$BATS_TEST_TMPDIR/d2/err"
	grep -q "task $id cancelled in the shared queue: its HTTP client disconnected" \
		"$BATS_TEST_TMPDIR/d1/err"
	run -0 p 1 --json status "$id"
	assert_output --partial '"state":"cancelled"'
}

@test "mailbox and DELETE of tasks held by another daemon, running or finished" {
	http_d1
	pgd_start 2 4 20
	id=$(p 2 submit "$(seq -s ' ' 1 200)")
	wait_until sql_is "SELECT count(*) > 2 FROM plot_output WHERE task_id = $id" t
	[ "$(runner "$id")" = d2 ]
	run -0 code GET "/v1/mailbox/$id"
	assert_output 200
	run -0 cat "$BODY"
	assert_output --regexp "^\{\"id\":$id,\"model\":\"echo\",\"state\":\"running\",\"output\":\"1 2 3 "
	run -0 code DELETE "/v1/tasks/$id"
	assert_output 200
	run -0 cat "$BODY"
	assert_output "{\"id\":$id,\"cancelled\":true}"
	[ "$(sql "SELECT state FROM plot_tasks WHERE id = $id")" = 4 ]
	wait_until grep -q "task $id: lease lost (cancelled)" "$BATS_TEST_TMPDIR/d2/err"
	run -0 code DELETE "/v1/tasks/$id"
	assert_output 409
	run -0 cat "$BODY"
	assert_output --partial "task $id already ended (cancelled)"
	# one that finished on d2
	done_id=$(p 2 submit "x y z")
	wait_until sql_is "SELECT state FROM plot_tasks WHERE id = $done_id" 2
	run -0 code GET "/v1/mailbox/$done_id"
	assert_output 200
	run -0 cat "$BODY"
	assert_output "{\"id\":$done_id,\"model\":\"echo\",\"state\":\"done\",\"output\":\"x y z\",\"output_bytes\":5,\"chunks\":3}"
	run -0 code GET /v1/mailbox/999999
	assert_output 404
	run -0 code DELETE /v1/tasks/999999
	assert_output 404
}

@test "429 with Retry-After at the shared depth, counted in the database across daemons" {
	http_d1 2
	pgd_start 2 1 20 2
	other=$(p 2 submit "$(seq -s ' ' 1 400)")
	wait_until sql_is "SELECT lease_owner FROM plot_tasks WHERE id = $other" d2
	p 1 submit q1 >/dev/null
	p 2 submit q2 >/dev/null
	run -0 python3 "$CLIENT" "$URL" error ratelimit
	assert_output "429 1 shared queue of model echo is full (max_queue_depth 2, counted in the database)"
	[ "$(sql "SELECT count(*) FROM plot_tasks WHERE state = 0")" = 2 ]
}

@test "the database away: 503 in OpenAI's shape, and served again once it is back" {
	http_d1
	psql -X -q -d postgres -c "ALTER DATABASE $PGDB ALLOW_CONNECTIONS false" \
		-c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		    WHERE datname = '$PGDB'" >/dev/null
	run -0 code POST /v1/completions -d '{"prompt": "a b"}'
	assert_output 503
	run -0 cat "$BODY"
	assert_output --partial '"message":"task not accepted: '
	assert_output --partial '"type":"server_error"'
	assert_output --partial '"code":"store"'
	psql -X -q -d postgres -c "ALTER DATABASE $PGDB ALLOW_CONNECTIONS true"
	pgd_start 2 4 1000
	run -0 python3 "$CLIENT" "$URL" complete "back again"
	assert_output "back again"
}

@test "/v1/queues shows the shared queue and each daemon's share, as plot stats does" {
	http_d1
	pgd_start 2 1 20
	p 2 submit "$(seq -s ' ' 1 400)" >/dev/null
	p 2 submit "queued one" >/dev/null
	wait_until sql_is "SELECT count(*) FROM plot_tasks WHERE state = 1" 2
	wait_until sql_is "SELECT count(*) FROM plot_daemons WHERE running > 0" 2
	run -0 code GET /v1/queues
	assert_output 200
	run -0 p 1 --json stats
	python3 - "$BODY" "$output" <<-'PY'
	import json, sys
	http, stats = json.load(open(sys.argv[1])), json.loads(sys.argv[2])
	want = [{"model": "echo", "queued": 1, "running": 2, "queued_units": 1, "running_units": 2}]
	assert http["shared"] == stats["shared"] == want, (http["shared"], stats["shared"])
	assert [(d["name"], d["units"], d["holding"]) for d in http["daemons"]] == \
	       [("d1", 1, 1), ("d2", 1, 1)], http["daemons"]
	assert [q["model"] for q in http["queues"]] == ["echo"], http["queues"]
	PY
}
