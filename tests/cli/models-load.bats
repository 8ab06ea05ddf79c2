#!/usr/bin/env bats
# Models loaded and unloaded while plotd runs (#14): plot models unload
# cancels a model's tasks and frees it, the next request (or plot models
# load NAME) loads it again with task ids that never repeat, idle_unload_secs
# unloads an idle model, and plot models load PATH adds a GGUF file as a
# model; only plotd's own user may load or unload.

load helpers
load cli-helpers

setup() {
	plot_setup
	TINY="$BATS_TEST_DIRNAME/../fixtures/llm-exec-tiny.gguf"
	plotd_write_config <<-EOF
	daemon: { allow_users: [nobody] }
	default_model: echo
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 1000 }
	  - name: slow
	    executor: synthetic
	    parking_lot: { pool: { max_running: 1 } }
	    params: { tokens_per_sec: 20 }
	  - name: nap
	    executor: synthetic
	    idle_unload_secs: 1
	    params: { tokens_per_sec: 1000 }
	EOF
}

teardown() {
	cli_teardown
}

model_field() { # model_field NAME KEY: one key of `plot --json models`
	"$PLOT" --json models | jq -r --arg n "$1" ".models[] | select(.name == \$n) | .$2"
}
model_state_is() { [ "$(model_field "$1" state)" = "$2" ]; }

@test "unload frees a model; the next request, or models load NAME, loads it again; ids never repeat" {
	plotd_start
	run -0 "$PLOT" run -m echo "one two"
	submit -m echo "before"
	local before=$ID
	wait_until state_is "$before" done
	run -0 --separate-stderr "$PLOT" models unload echo
	wait_until model_state_is echo unloaded
	run -0 --separate-stderr "$PLOT" models
	assert_line --regexp $'^echo\tsynthetic\tunloaded\tyes\t-\t-\t-\t-\t-$'
	# its tasks went with it
	run -1 --separate-stderr "$PLOT" status "$before"
	# a request loads it again
	run -0 "$PLOT" run -m echo "three four"
	assert_output "three four"
	submit -m echo "after"
	[ "$ID" -gt "$before" ]
	# unloading twice, and loading by name
	run -0 "$PLOT" models unload echo
	wait_until model_state_is echo unloaded
	run -1 --separate-stderr "$PLOT" models unload echo
	assert_equal "$stderr" "plot models: error: model echo is not loaded (unloaded)"
	run -0 --separate-stderr "$PLOT" models load echo
	run -0 model_state_is echo ready
	run -0 "$PLOT" models load echo # already loaded: nothing to do
	run -1 --separate-stderr "$PLOT" models unload nope
	[[ "$stderr" == *"no model named 'nope'"* ]]
}

@test "unload cancels the model's running and queued tasks; their runs end cancelled" {
	plotd_start
	"$PLOT" run -m slow "$(words 400)" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	local pid=$!
	wait_until stat_is slow running 1
	submit -m slow "$(words 400)"
	wait_until state_is "$ID" queued
	wait_until test -s "$BATS_TEST_TMPDIR/out"
	run -0 "$PLOT" models unload slow
	local st=0
	wait "$pid" || st=$?
	assert_equal "$st" 130
	grep -q "cancelled" "$BATS_TEST_TMPDIR/err"
	wait_until model_state_is slow unloaded
	[ -s "$BATS_TEST_TMPDIR/out" ] # what streamed before the unload was kept
}

@test "idle_unload_secs: an idle model unloads, plot models says when, and the next request loads it" {
	plotd_start
	run -0 "$PLOT" run -m nap "wake up"
	run -0 --separate-stderr "$PLOT" models
	assert_line --regexp $'^nap\tsynthetic\tready\tno\t-\t-\t-\tin [0-9.]+s\t-$'
	assert_line --regexp $'^echo\tsynthetic\tready\tyes\t-\t-\t-\t-\t-$' # no idle_unload_secs
	wait_until model_state_is nap unloaded
	grep -q "pool nap: idle for 1 s (idle_unload_secs)" "$PLOTD_STDERR"
	run -0 "$PLOT" run -m nap "again"
	assert_output "again"
	run -0 model_state_is nap ready
	# a busy model does not unload: a task running longer than idle_unload_secs
	submit -m nap "$(words 3000)"
	wait_until chunks_ge "$ID" 1500 # 1.5 s at 1000 tokens/s
	run -0 model_state_is nap ready
	run -0 model_field nap idle_unload_in
	assert_output null # busy: no countdown
}

@test "models load PATH: a GGUF file becomes a model; bad paths and names are refused" {
	plotd_start
	cp "$TINY" "$BATS_TEST_TMPDIR/mini model.gguf"
	cd "$BATS_TEST_TMPDIR"
	run -0 --separate-stderr "$PLOT" models load "./mini model.gguf"
	assert_line --regexp $'^mini-model\tllm\t(loading [0-9]+%|ready)\tno\t'
	wait_until model_state_is mini-model ready
	run -0 model_field mini-model loaded_by_path
	assert_output true
	run -0 model_field mini-model path
	assert_output "$BATS_TEST_TMPDIR/mini model.gguf"
	run -0 "$PLOT" run -m mini-model --temperature 0 -n 4 "hello"
	run -0 --separate-stderr "$PLOT" models load --name other "./mini model.gguf"
	wait_until model_state_is other ready
	run -1 --separate-stderr "$PLOT" models load --name other "./mini model.gguf"
	assert_equal "$stderr" "plot models: error: there is a model named other already"
	run -1 --separate-stderr "$PLOT" models load --name 'bad name' "./mini model.gguf"
	[[ "$stderr" == *'a model name has 1 to 64 of A-Z a-z 0-9 . _ : -, got "bad name"'* ]]
	run -2 --separate-stderr "$PLOT" models load ./missing.gguf
	assert_equal "$stderr" "plot models: error: load ./missing.gguf: No such file or directory"
	# a file that is not GGUF loads as a failed model, with the reason
	echo nope >fake.gguf
	run -0 --separate-stderr "$PLOT" models load ./fake.gguf
	wait_until model_state_is fake failed
	run -0 model_field fake error
	[ -n "$output" ]
	run -0 "$PLOT" models unload other
	wait_until model_state_is other unloaded
	run -2 --separate-stderr "$PLOT" models unload
	run -2 --separate-stderr "$PLOT" models list --name x
}

@test "plot ps lists the loaded models: memory and device as plot models has them; unloaded ones are left out" {
	plotd_start
	run -0 --separate-stderr "$PLOT" models load --name mini "$TINY"
	wait_until model_state_is mini ready
	run -0 "$PLOT" models unload slow
	wait_until model_state_is slow unloaded
	local mem human
	mem=$(model_field mini mem_bytes)
	[ "$mem" -gt 0 ]
	human=$(python3 -c 'import sys; print("%.1f MiB" % (int(sys.argv[1]) / 2**20))' "$mem")
	assert_equal "$(model_field mini device)" cpu
	run -0 --separate-stderr "$PLOT" ps
	assert_line --regexp $'^echo\tready\t-\t-\t-$'
	assert_line --regexp $'^mini\tready\t'"$human"$'\tcpu\t-$'
	refute_line --regexp $'^slow\t'
	run -0 --separate-stderr "$PLOT" --json ps
	assert_equal "$(jq -r '.models[] | select(.name == "mini") | [.state, .mem_bytes, .device] | @tsv' <<<"$output")" \
		"ready	$mem	cpu"
	assert_equal "$(jq -c '.models[] | select(.name == "echo") | [.mem_bytes, .device]' <<<"$output")" \
		"[null,null]"
	[ -z "$(jq -r '.models[] | select(.name == "slow") | .name' <<<"$output")" ]
	run -2 --separate-stderr "$PLOT" ps extra
}

@test "only plotd's own user may load or unload (PERMISSION); others may list" {
	chmod o+x "$BATS_RUN_TMPDIR" # nobody must reach the socket (as daemon-perms.bats)
	plotd_start
	run -0 rawclient --uid 65534 "$PLOT_SOCKET" call models
	assert_output --partial '"name": "echo"'
	run -1 rawclient --uid 65534 "$PLOT_SOCKET" call models '{"unload": "echo"}'
	assert_output --partial '"code": "PERMISSION"'
	assert_output --partial "only plotd's own user may load or unload models"
	run -1 rawclient --uid 65534 "$PLOT_SOCKET" call models "{\"load\": \"$TINY\", \"name\": \"x\"}"
	assert_output --partial '"code": "PERMISSION"'
	run -0 model_state_is echo ready
	[ -z "$(model_field x name)" ]
}

@test "plot models load/unload as another user: exit 77 naming the rule; listing still works" {
	[ "$(id -u)" = 0 ] || fail "needs root to run plot as nobody (setpriv)"
	chmod o+x "$BATS_RUN_TMPDIR"
	plotd_start
	as_nobody() {
		setpriv --reuid=65534 --regid=65534 --clear-groups \
			env HOME="$BATS_TEST_TMPDIR" PLOT_SOCKET="$PLOT_SOCKET" PLOT_NO_AUTOSTART=1 "$PLOT" "$@"
	}
	run -0 --separate-stderr as_nobody models
	assert_line --regexp $'^echo\tsynthetic\tready\tyes\t'
	run -77 --separate-stderr as_nobody models unload echo
	assert_equal "$stderr" "plot models: error: only plotd's own user may load or unload models"
	run -77 --separate-stderr as_nobody models load echo
	run -77 --separate-stderr as_nobody models load "$TINY"
	assert_equal "$stderr" "plot models: error: only plotd's own user may load or unload models"
	run -0 model_state_is echo ready
	[ -z "$(model_field llm-exec-tiny name)" ]
}

@test "HTTP: a stream open during an unload ends, the model unloads after it, and the next request loads it" {
	plotd_start --http 127.0.0.1:0
	wait_until grep -q 'http: listening on' "$PLOTD_STDERR"
	local url
	url="http://$(sed -n 's/.*http: listening on \([0-9.:]*\).*/\1/p' "$PLOTD_STDERR" | head -n 1)"
	curl -sN -X POST "$url/v1/chat/completions" -H 'Content-Type: application/json' \
		-d "{\"model\": \"slow\", \"stream\": true, \"messages\": [{\"role\": \"user\", \"content\": \"$(words 400)\"}]}" \
		>"$BATS_TEST_TMPDIR/sse" &
	local curl=$!
	wait_until grep -q 'w2' "$BATS_TEST_TMPDIR/sse"
	run -0 "$PLOT" models unload slow
	wait "$curl" # the stream ended
	wait_until model_state_is slow unloaded
	! grep -q 'w400' "$BATS_TEST_TMPDIR/sse"
	PLOT_HTTP_MODEL=slow run -0 python3 "$BATS_TEST_DIRNAME/httpclient.py" "$url" chat "back again"
	assert_output "back again"
	run -0 model_state_is slow ready
}
