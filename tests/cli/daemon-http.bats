#!/usr/bin/env bats
# plotd's HTTP front (plotd(8), HTTP): the OpenAI-compatible API through the
# official `openai` package (httpclient.py), the rest through curl, against
# the synthetic model (and an llm model whose file is a FIFO, to hold it in
# loading). Each test starts plotd with --http 127.0.0.1:0 and reads the
# port it chose from its log.

load helpers

setup() {
	plot_setup
	CLIENT="$BATS_TEST_DIRNAME/httpclient.py"
	BODY="$BATS_TEST_TMPDIR/body"
}
teardown() { plot_teardown; }

# http_start [PLOTD ARGS...]: plotd with the HTTP front; sets URL.
http_start() {
	plotd_start --http 127.0.0.1:0 "$@"
	wait_until grep -q 'http: listening on' "$PLOTD_STDERR"
	URL="http://$(sed -n 's/.*http: listening on \([0-9.:]*\).*/\1/p' "$PLOTD_STDERR" | head -n 1)"
}

# slow_config TOKENS_PER_SEC [DEPTH] [EXTRA DAEMON YAML]
slow_config() {
	plotd_write_config <<-EOF
	daemon: { log_level: debug ${3:+, $3} }
	parking_lot:
	  limits: { max_queue_depth: ${2:-100} }
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: $1 }
	EOF
}

# stalled_stream: POST a 400,000-word streaming completion from a client with
# a tiny receive buffer that never reads (killed at teardown)
stalled_stream() {
	python3 -c 'import json; print(json.dumps({"prompt": "w " * 400000, "stream": True}))' \
		>"$BATS_TEST_TMPDIR/big.json"
	python3 - "${URL##*:}" "$BATS_TEST_TMPDIR/big.json" <<-'PY' &
	import socket, sys, time
	body = open(sys.argv[2], "rb").read()
	s = socket.socket()
	s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
	s.connect(("127.0.0.1", int(sys.argv[1])))
	s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
	time.sleep(60)
	PY
	plot_kill_later $!
}

# code METHOD PATH [CURL ARGS...]: prints the HTTP status; the body goes to $BODY
code() {
	local m="$1" p="$2"
	shift 2
	curl -s -o "$BODY" -w '%{http_code}' -X "$m" "$@" "$URL$p"
}

task_state_is() { # task_state_is ID STATE
	"$PLOT" status --json "$1" | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["state"] != sys.argv[1])' "$2"
}

@test "openai: chat and completions, streaming and not, and the model list" {
	http_start
	run -0 python3 "$CLIENT" "$URL" chat "one two three"
	assert_output "one two three"
	run -0 python3 "$CLIENT" "$URL" chatstream "four five six seven"
	assert_output "four five six seven"
	run -0 python3 "$CLIENT" "$URL" complete "a b c d e" 3
	assert_output "a b c "
	run -0 python3 "$CLIENT" "$URL" completestream "x y z"
	assert_output "x y z"
	run -0 python3 "$CLIENT" "$URL" models
	assert_output "echo"
}

@test "openai errors: unknown model 404, n=2 400, full queue 429 with Retry-After" {
	slow_config 1000 0
	http_start
	run -0 python3 "$CLIENT" "$URL" error notfound nosuch
	assert_output "404 - no model named 'nosuch'"
	run -0 python3 "$CLIENT" "$URL" error badrequest
	assert_output --partial "400 - n: only n=1 is supported"
	run -0 python3 "$CLIENT" "$URL" error ratelimit
	assert_output "429 1 queue of model echo is full (max_queue_depth 0)"
}

@test "the response carries usage, finish_reason and the task id in X-Plot-Task" {
	http_start
	run -0 curl -s -D "$BATS_TEST_TMPDIR/h" "$URL/v1/completions" \
		-d '{"prompt": "a b c d", "max_tokens": 2}'
	assert_output --partial '"finish_reason":"length"'
	assert_output --partial '"usage":{"prompt_tokens":0,"completion_tokens":2,"total_tokens":2}'
	id=$(sed -n 's/^X-Plot-Task: \([0-9]*\).*/\1/p' "$BATS_TEST_TMPDIR/h")
	[ -n "$id" ]
	run -0 "$PLOT" result "$id"
	assert_output "a b "
}

@test "bad requests: malformed JSON, a bad field, a wrong method and path, each 4xx in OpenAI's shape" {
	http_start
	run -0 code POST /v1/chat/completions -d '{"messages": [}'
	assert_output 400
	run -0 cat "$BODY"
	assert_output --partial '"message":"malformed JSON at line 1'
	assert_output --partial '"type":"invalid_request_error"'
	run -0 code POST /v1/chat/completions -d '{"messages": [{"role": "user", "content": "x"}], "max_tokens": -3}'
	assert_output 400
	run -0 cat "$BODY"
	assert_output --partial 'max_tokens: expected an integer in [1, 4294967295], got -3'
	run -0 code POST /v1/completions -d '{"prompt": "x", "temperature": 500}'
	assert_output 400
	run -0 cat "$BODY"
	assert_output --partial 'temperature: expected a number in [0, 100], got 500'
	run -0 code GET /v1/chat/completions
	assert_output 405
	run -0 code GET /v2/nothing
	assert_output 404
}

@test "a body over daemon.http_max_body is refused with 413" {
	slow_config 1000 100 "http_max_body: 1024"
	http_start
	big=$(python3 -c 'print("{\"prompt\": \"" + "w " * 2000 + "\"}")')
	run -0 code POST /v1/completions -d "$big"
	assert_output 413
	run -0 cat "$BODY"
	assert_output --partial 'exceeds daemon.http_max_body 1024'
	run -0 code POST /v1/completions -d '{"prompt": "small"}'
	assert_output 200
}

@test "bearer token: required everywhere but /health; from http_token_file too" {
	printf 'sekrit\n' >"$BATS_TEST_TMPDIR/token"
	slow_config 1000 100 "http_token_file: $BATS_TEST_TMPDIR/token"
	http_start
	run -0 code GET /v1/models
	assert_output 401
	run -0 cat "$BODY"
	assert_output --partial '"type":"authentication_error"'
	run -0 code GET /v1/models -H 'Authorization: Bearer wrong'
	assert_output 401
	run -0 code GET /v1/models -H 'Authorization: Bearer sekrit'
	assert_output 200
	run -0 code GET /metrics
	assert_output 401
	run -0 code GET /health
	assert_output 200
	PLOT_HTTP_TOKEN=sekrit run -0 python3 "$CLIENT" "$URL" chat "with a key"
	assert_output "with a key"
}

@test "no token configured: every route is open" {
	http_start
	run -0 code GET /v1/models
	assert_output 200
	run -0 code GET /metrics
	assert_output 200
}

@test "/health: 200 when the default model is ready, 503 with the reason when it failed" {
	http_start
	run -0 code GET /health
	assert_output 200
	run -0 cat "$BODY"
	assert_output --partial '"status":"ready"'
	plotd_stop
	plotd_write_config <<-EOF
	default_model: broken
	models:
	  - name: broken
	    executor: llm
	    path: $BATS_TEST_TMPDIR/missing.gguf
	  - name: echo
	    executor: synthetic
	EOF
	: >"$PLOTD_STDERR"
	http_start
	wait_until bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $URL/health)\" = 503 ] && curl -s $URL/health | grep -q failed"
	run -0 code GET /health
	assert_output 503
	run -0 cat "$BODY"
	assert_output --partial 'missing.gguf'
}

@test "/health is 503 while the default model loads (its file a FIFO: the load waits for a writer)" {
	mkfifo "$BATS_TEST_TMPDIR/held.gguf"
	plotd_write_config <<-EOF
	default_model: held
	models:
	  - name: held
	    executor: llm
	    path: $BATS_TEST_TMPDIR/held.gguf
	  - name: echo
	    executor: synthetic
	EOF
	http_start
	# the loader is blocked opening the FIFO: loading, however long we look
	run -0 code GET /health
	assert_output 503
	run -0 cat "$BODY"
	assert_output --partial '"status":"loading","model":"held","model_state":"loading"'
	run -0 "$PLOT" run -m echo "served meanwhile"
	assert_output "served meanwhile"
	run -0 code GET /health
	assert_output 503
	# a writer lets open() return; a FIFO is no GGUF file: failed, still 503
	exec {w}>"$BATS_TEST_TMPDIR/held.gguf"
	exec {w}>&-
	wait_until bash -c "curl -s $URL/health | grep -q '\"status\":\"failed\"'"
	run -0 code GET /health
	assert_output 503
}

@test "/metrics is the text of plot stats --prometheus" {
	http_start
	run -0 "$PLOT" run "one two"
	run -0 code GET /metrics
	assert_output 200
	# the same series in the same order (the uptime and plotd's RSS differ)
	grep -Ev 'uptime|resident_memory_bytes [0-9]' "$BODY" >"$BATS_TEST_TMPDIR/http.prom"
	"$PLOT" stats --prometheus | grep -Ev 'uptime|resident_memory_bytes [0-9]' >"$BATS_TEST_TMPDIR/cli.prom"
	run -0 diff "$BATS_TEST_TMPDIR/http.prom" "$BATS_TEST_TMPDIR/cli.prom"
	run -0 grep -c '^plot_submitted_total{model="echo"} 1$' "$BODY"
	run -0 python3 "$BATS_TEST_DIRNAME/promcheck.py" 'plot_queue_wait_seconds_count{model="echo"}' <"$BODY"
	assert_output 1
}

@test "/v1/queues, /v1/mailbox/ID and DELETE /v1/tasks/ID" {
	slow_config 5
	http_start
	id=$("$PLOT" submit "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16")
	run -0 code GET /v1/queues
	assert_output 200
	run -0 cat "$BODY"
	assert_output --partial '"model":"echo","queued":0,"running":1'
	run -0 code GET "/v1/mailbox/$id"
	assert_output 200
	run -0 cat "$BODY"
	assert_output --partial "\"id\":$id,\"model\":\"echo\",\"state\":\"running\""
	run -0 code DELETE "/v1/tasks/$id"
	assert_output 200
	run -0 cat "$BODY"
	assert_output "{\"id\":$id,\"cancelled\":true}"
	wait_until task_state_is "$id" cancelled
	run -0 code DELETE "/v1/tasks/$id"
	assert_output 409
	run -0 code GET /v1/mailbox/999999
	assert_output 404
	run -0 code GET /v1/mailbox/abc
	assert_output 404
}

@test "/v1/queues carries plot stats --json's keys per model, with its nulls" {
	slow_config 0
	http_start
	run -0 "$PLOT" run "one two three"
	run -0 code GET /v1/queues
	assert_output 200
	run -0 "$PLOT" stats --json
	python3 - "$BODY" "$output" <<-'PY'
	import json, sys
	http, cli = json.load(open(sys.argv[1]))["queues"], json.loads(sys.argv[2])["models"]
	assert [q["model"] for q in http] == [m["name"] for m in cli] == ["echo"], (http, cli)
	h, c = http[0], cli[0]
	assert [k for k in h if k != "model"] == [k for k in c if k != "name"], (set(c) ^ set(h))
	for k in ("device", "device_name", "device_total_bytes", "kv_blocks_total", "decode_tps",
	          "ttft_count", "max_units"):
	    assert h[k] is None and c[k] is None, (k, h[k], c[k])
	assert h["completed"] == c["completed"] == 1, (h, c)
	assert h["queue_wait_count"] == c["queue_wait_count"] == 1, (h, c)
	assert h["queued_by_priority"] == c["queued_by_priority"] == \
	       {"low": 0, "normal": 0, "high": 0, "critical": 0}, (h, c)
	PY
}

@test "a client that disconnects mid-stream cancels its task; with detach it does not" {
	slow_config 20
	http_start
	long=$(python3 -c 'print(" ".join("w%d" % i for i in range(400)))')
	run curl -s -N --max-time 1 "$URL/v1/completions" -d "{\"prompt\": \"$long\", \"stream\": true}"
	[ "$status" = 28 ] # curl's timeout: we hung up
	wait_until grep -q 'cancelled: its HTTP client disconnected' "$PLOTD_STDERR"
	id=$(sed -n 's/.*task \([0-9]*\) cancelled: its HTTP client disconnected.*/\1/p' "$PLOTD_STDERR")
	wait_until task_state_is "$id" cancelled
	run curl -s -N --max-time 1 "$URL/v1/completions" \
		-d "{\"prompt\": \"$long\", \"stream\": true, \"detach\": true}"
	[ "$status" = 28 ]
	id2=$(sed -n 's/.*task \([0-9]*\) submitted.*/\1/p' "$PLOTD_STDERR" | tail -n 1)
	[ "$id2" != "$id" ]
	run -0 task_state_is "$id2" running
	"$PLOT" cancel "$id2"
}

@test "a deadline that passes is 504; a draining daemon answers 503" {
	slow_config 2
	http_start
	run -0 code POST /v1/completions -d '{"prompt": "a b c d e f g h", "deadline": 0.3}'
	assert_output 504
	run -0 cat "$BODY"
	assert_output --partial 'deadline passed while running'
	id=$("$PLOT" submit "a b c d e f g h i j")
	kill -TERM "$PLOTD_PID"
	wait_until grep -q 'new submits are refused' "$PLOTD_STDERR"
	run -0 code POST /v1/completions -d '{"prompt": "late"}'
	assert_output 503
	run -0 code GET /health
	assert_output 503
	"$PLOT" cancel "$id"
}

@test "--http with a bad address or port in use fails at startup, naming it" {
	run -1 "$PLOTD" --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET" --http nonsense
	assert_output --partial "daemon.http: expected HOST:PORT, got 'nonsense'"
	# no implicit host (which would be every interface): it is always named
	run -1 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET" --http :8080
	assert_output --partial "daemon.http: expected HOST:PORT, got ':8080'"
	run -1 plotd_bounded --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET" --http 8080
	assert_output --partial "daemon.http: expected HOST:PORT, got '8080'"
	http_start
	port=${URL##*:}
	# a second daemon needs its own store: the first holds its database
	XDG_STATE_HOME=$BATS_TEST_TMPDIR/other-state \
		run -1 "$PLOTD" --config "$PLOT_CONFIG" --socket "$BATS_TEST_TMPDIR/run/other.sock" \
		--http "127.0.0.1:$port"
	assert_output --partial "daemon.http 127.0.0.1:$port: Address already in use"
}

@test "a missing http_token_file is a configuration error (78)" {
	slow_config 1000 100 "http_token_file: $BATS_TEST_TMPDIR/nope"
	run -78 "$PLOTD" --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET" --http 127.0.0.1:0
	assert_output --partial "daemon.http_token_file $BATS_TEST_TMPDIR/nope: No such file"
}

@test "a streaming client that stops reading is dropped at http_max_output, its task cancelled" {
	slow_config 0 100 "http_max_output: 16384, http_max_body: 4194304"
	http_start
	# a client with a tiny receive buffer that sends the request and never reads
	stalled_stream
	wait_until grep -q 'daemon.http_max_output 16384): dropping it' "$PLOTD_STDERR"
	wait_until grep -q 'cancelled: its HTTP client disconnected' "$PLOTD_STDERR"
}

@test "limits: header bytes, connections beyond http_max_connections, idle connections" {
	slow_config 1000 100 "http_max_header: 4096, http_max_connections: 2, http_idle_secs: 1"
	http_start
	run -0 curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 8000 /dev/zero | tr '\0' a)" "$URL/health"
	assert_output 431
	# two idle connections are held, a third waits unserved until they are
	# closed after http_idle_secs, then it is served (and idles out too)
	run -0 python3 - "${URL##*:}" <<-'PY'
	import socket, sys, time
	port = int(sys.argv[1])
	def conn():
	    s = socket.create_connection(("127.0.0.1", port))
	    s.settimeout(10)
	    return s
	t = time.time()
	a, b = conn(), conn()
	time.sleep(0.2)
	c = conn()
	c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
	assert a.recv(100) == b"", "idle connection not closed"
	print("idle closed", 0.8 < time.time() - t < 5)
	got = c.recv(100)
	print("third served after", got.startswith(b"HTTP/1.1 200"), 0.8 < time.time() - t < 5)
	PY
	assert_output $'idle closed True\nthird served after True True'
}

@test "plotd exits cleanly with HTTP requests still waiting (a stalled stream, a queued task)" {
	plotd_write_config <<-'EOF2'
	daemon: { log_level: debug, http_max_output: 1073741824, http_max_body: 4194304 }
	parking_lot:
	  pool: { max_running: 1 }
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 0 }
	EOF2
	http_start
	stalled_stream
	wait_until grep -q 'task 1 admitted' "$PLOTD_STDERR"
	# a second request waits behind it (max_running 1)
	curl -s --max-time 20 "$URL/v1/completions" -d '{"prompt": "queued"}' >"$BATS_TEST_TMPDIR/second" &
	plot_kill_later $!
	wait_until grep -q 'task 2 submitted' "$PLOTD_STDERR"
	plotd_stop TERM INT
	[ "$PLOTD_STATUS" -lt 128 ]
	grep -q 'plotd exited' "$PLOTD_STDERR"
}

@test "cost above max_units is 400 CAPACITY; plot's extras reach the task (priority, cost)" {
	http_start
	run -0 code POST /v1/completions -d '{"prompt": "x", "cost": 9}'
	assert_output 400
	run -0 cat "$BODY"
	assert_output --partial '"message":"cost 9 exceeds max_units 8 of model echo"'
	assert_output --partial '"code":"capacity"'
	run -0 curl -s -D "$BATS_TEST_TMPDIR/h" "$URL/v1/completions" \
		-d '{"prompt": "a b", "cost": 3, "priority": "high"}'
	id=$(sed -n 's/^X-Plot-Task: \([0-9]*\).*/\1/p' "$BATS_TEST_TMPDIR/h")
	run -0 "$PLOT" status --json "$id"
	assert_output --partial '"priority":"high"'
	assert_output --partial '"cost":3,'
}
