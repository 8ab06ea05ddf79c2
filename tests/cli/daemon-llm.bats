#!/usr/bin/env bats
# executor: llm through plotd, on the tiny tokenized model of the unit tests
# (tests/fixtures/llm-exec-tiny.gguf): loading state, the prepare -> submit
# path, units = KV blocks, context and parameter errors, batch invariance.
# The executor's outputs are checked against direct engine calls in
# tests/unit/test-llm-exec.c; here the daemon's plumbing is the point.

load helpers
load serve-helpers # two_models (its is_ready is replaced below)

setup() {
	plot_setup
	TINY="$BATS_TEST_DIRNAME/../fixtures/llm-exec-tiny.gguf"
	plotd_write_config <<-EOF
	daemon: { log_level: debug }
	models:
	  - name: tiny
	    executor: llm
	    path: $TINY
	    params: { kvcache_mem_mb: 1, block_size: 16, max_num_seqs: 8, max_batch_tokens: 32 }
	    parking_lot: { pool: { threads: 1 } }
	  - name: small
	    executor: llm
	    path: $TINY
	    params: { kvcache_mem_mb: 1, block_size: 16, context_length: 64, kv_type: f32 }
	    parking_lot: { limits: { max_units: 2 } }
	EOF
}
teardown() { plot_teardown; }

field() { # field KEY: a top-level key of the JSON reply on stdin
	python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

model_state() { # model_state NAME
	rawclient "$PLOT_SOCKET" call models |
		python3 -c 'import json,sys; print([m["state"] for m in json.load(sys.stdin)["models"] if m["name"] == sys.argv[1]][0])' "$1"
}

is_ready() { [ "$(model_state "$1")" = ready ]; }

greedy() { # greedy PROMPT N: submit, wait, print the output
	local id
	id=$(rawclient "$PLOT_SOCKET" submit "$1" "{\"model\": \"tiny\", \"temp\": 0, \"max_tokens\": $2}") || return 1
	rawclient "$PLOT_SOCKET" call result "{\"task\": $id, \"wait\": true}" | field data
}

@test "an llm model loads, and max_units null becomes the KV blocks" {
	plotd_start
	wait_until is_ready tiny
	run -0 rawclient "$PLOT_SOCKET" call stats
	# 1 MiB / (128 bytes per token (F16 K+V) * 16 tokens per block) = 512 blocks
	run -0 python3 -c 'import json,sys; print([m["max_units"] for m in json.loads(sys.argv[1])["models"] if m["name"] == "tiny"][0])' "$output"
	assert_output 512
}

# gguf_mem FILE KV_BYTES_PER_ELEMENT: the model's tensor bytes and its KV
# bytes per token (K and V of every layer), read from the GGUF by the gguf
# package, not by lib/llm
gguf_mem() {
	python3 - "$1" "$2" <<-'PY'
	import sys, gguf
	r = gguf.GGUFReader(sys.argv[1])
	def val(k, d=None):
	    f = r.fields.get(k)
	    if f is None:
	        return d
	    v = f.parts[f.data[0]]
	    return bytes(v).decode() if f.types[0] == gguf.GGUFValueType.STRING else int(v[0])
	a = val("general.architecture")
	heads = val(a + ".attention.head_count")
	kv_heads = val(a + ".attention.head_count_kv", heads)
	hd = val(a + ".attention.key_length", val(a + ".embedding_length") // heads)
	per_token = 2 * val(a + ".block_count") * kv_heads * hd * int(sys.argv[2])
	print(sum(int(t.n_bytes) for t in r.tensors), per_token)
	PY
}

@test "plot models shows the memory a model holds: its weights and KV cache, as the GGUF says" {
	plotd_start
	wait_until is_ready tiny
	wait_until is_ready small
	local weights per_token
	for m in "tiny 2" "small 4"; do # f16 and f32 KV caches
		set -- $m
		read -r weights per_token < <(gguf_mem "$TINY" "$2")
		run -0 --separate-stderr "$PLOT" --json models
		local blocks mem
		blocks=$(jq -r --arg n "$1" '.models[] | select(.name == $n) | .kv_blocks' <<<"$output")
		mem=$(jq -r --arg n "$1" '.models[] | select(.name == $n) | .mem_bytes' <<<"$output")
		[ "$blocks" -gt 0 ]
		assert_equal "$mem" "$((weights + blocks * 16 * per_token))"
		# plot stats reports the same KV cache and memory, also to Prometheus
		run -0 --separate-stderr "$PLOT" --json stats
		assert_equal "$(jq -r --arg n "$1" '.models[] | select(.name == $n) | .kv_bytes' <<<"$output")" \
			"$((blocks * 16 * per_token))"
		assert_equal "$(jq -r --arg n "$1" '.models[] | select(.name == $n) | .mem_bytes' <<<"$output")" "$mem"
		run -0 --separate-stderr "$PLOT" stats --prometheus
		assert_line "plot_mem_bytes{model=\"$1\"} $mem"
		# the table shows it in binary units
		local human
		human=$(python3 -c 'import sys; print("%.1f MiB" % (int(sys.argv[1]) / 2**20))' "$mem")
		run -0 --separate-stderr "$PLOT" models
		assert_line --regexp "^$1	llm	ready	(yes|no)	[0-9]+	$blocks	$human	-	"
	done
}

@test "params.kv_type f32 holds half the KV blocks of the default f16" {
	plotd_start
	wait_until is_ready small
	run -0 rawclient "$PLOT_SOCKET" call models
	run -0 python3 -c 'import json,sys; print([m["kv_blocks"] for m in json.loads(sys.argv[1])["models"] if m["name"] == sys.argv[2]][0])' "$output" small
	assert_output 256
}

@test "greedy output is the same alone and among 7 concurrent tasks" {
	plotd_start
	wait_until is_ready tiny
	run -0 greedy "hello there" 24
	solo="$output"
	[ -n "$solo" ]
	ids=()
	for i in 1 2 3 4 5 6 7 8; do
		p="hello there"
		[ $((i % 2)) = 0 ] && p="the cat sat on the mat $i"
		ids+=("$(rawclient "$PLOT_SOCKET" submit "$p" '{"model": "tiny", "temp": 0, "max_tokens": 24, "detach": true}')")
	done
	for i in 0 2 4 6; do
		run -0 sh -c "python3 '$PLOT_TESTS_DIR/rawclient.py' '$PLOT_SOCKET' call result '{\"task\": ${ids[$i]}, \"wait\": true}'"
		run -0 field data <<<"$output"
		assert_output "$solo"
	done
}

@test "context and sampling parameters are checked with clear messages" {
	plotd_start
	run -1 rawclient "$PLOT_SOCKET" submit "hello there" '{"model": "tiny", "max_tokens": 5000}'
	assert_output --partial '"code": "CONTEXT"'
	assert_output --regexp 'prompt of [0-9]+ tokens \+ max_tokens 5000 exceeds the context of 2048'
	# out of the protocol's range: the schema refuses it before any executor
	run -1 rawclient "$PLOT_SOCKET" submit "hello there" '{"model": "tiny", "top_p": 2}'
	assert_output --partial '"code": "INVALID"'
	assert_output --partial "field 'top_p': 2 is out of range 0..1"
	# in it but not what the sampler takes: the executor's own message
	run -1 rawclient "$PLOT_SOCKET" submit "hello there" '{"model": "tiny", "top_p": 0}'
	assert_output --partial 'top_p must be in (0, 1], got 0'
	run -1 rawclient "$PLOT_SOCKET" submit "hello there" '{"model": "tiny", "max_tokens": 0}'
	assert_output --partial 'max_tokens must be >= 1'
	run -1 rawclient "$PLOT_SOCKET" submit "hello there" '{"model": "small", "max_tokens": 100}'
	assert_output --partial 'exceeds the context of 64'
}

@test "a task costing more blocks than max_units is rejected with CAPACITY" {
	plotd_start
	# raw prompt (no chat template): ceil((prompt + 40) / 16) = 3 blocks > max_units 2
	run -1 rawclient "$PLOT_SOCKET" submit "hello there" '{"model": "small", "max_tokens": 40, "raw": true}'
	assert_output --partial '"code": "CAPACITY"'
	assert_output --partial 'exceeds max_units 2 of model small'
	run -0 rawclient "$PLOT_SOCKET" submit "hello there" '{"model": "small", "max_tokens": 8, "temp": 0, "raw": true}'
}

@test "a model file that does not load is reported failed with the reason" {
	plotd_write_config <<-EOF
	models:
	  - name: broken
	    executor: llm
	    path: $BATS_TEST_TMPDIR/missing.gguf
	EOF
	plotd_start
	wait_until sh -c "python3 '$PLOT_TESTS_DIR/rawclient.py' '$PLOT_SOCKET' call models | grep -q failed"
	run -1 rawclient "$PLOT_SOCKET" submit "hello" '{"model": "broken"}'
	assert_output --partial 'failed to load'
	assert_output --partial 'missing.gguf'
}

settled() { local s; s=$(model_state "$1"); [ "$s" = failed ] || [ "$s" = ready ]; }

@test "device: cuda without a CUDA build or a GPU fails that model clearly; the others serve" {
	two_models "$TINY" "device: cuda"
	# a make CUDA=1 build (binaries under build/<cc>-cuda/bin) tries the device
	local cuda_build=
	case "$PLOT_BINDIR" in */build/*-cuda/bin | */build/*-cuda-*/bin) cuda_build=1 ;; esac
	# the emulation test aid cannot make a build without CUDA serve it
	[ -n "$cuda_build" ] || export PLOT_CUDA_EMULATE=1
	plotd_start
	wait_until settled gpu
	if [ -n "$cuda_build" ] && [ "$(model_state gpu)" = ready ]; then
		# a CUDA build on a machine with a GPU: the model serves from it
		run -0 --separate-stderr "$PLOT" run -m gpu --max-tokens 4 "hello"
		return
	fi
	[ "$(model_state gpu)" = failed ]
	run -0 rawclient "$PLOT_SOCKET" call models
	if [ -n "$cuda_build" ]; then
		assert_output --regexp 'cuda:0: no (usable CUDA device|such CUDA device)'
	else
		assert_output --partial 'params.device: cuda: this build has no CUDA backend'
	fi
	run -1 rawclient "$PLOT_SOCKET" submit "hello" '{"model": "gpu"}'
	if [ -n "$cuda_build" ]; then # the device fails when the model loads
		assert_output --partial 'model gpu failed to load'
		assert_output --partial 'cuda:0: no'
	else # the config check refuses it before any pool starts
		assert_output --partial 'model gpu is not running'
		assert_output --partial 'no CUDA backend'
	fi
	run -0 --separate-stderr "$PLOT" run -m echo "still serving"
	assert_output "still serving"
	[ -n "$cuda_build" ] || plotd_log_has "pool gpu: not started"
	[ -n "$cuda_build" ] || plotd_log_has "PLOT_CUDA_EMULATE is set but this build has no CUDA backend: ignored"
}

@test "without max_tokens a task runs to the end of the context, not 256 tokens, with no timeout" {
	plotd_start
	wait_until is_ready tiny
	# ignore_eos: only the context (2048) or the KV cache can stop it
	id=$(rawclient "$PLOT_SOCKET" submit "hello there" '{"model": "tiny", "temp": 0, "ignore_eos": true, "raw": true}')
	rawclient "$PLOT_SOCKET" call result "{\"task\": $id, \"wait\": true}" >/dev/null
	run -0 "$PLOT" --json status "$id"
	local tokens ptokens
	tokens=$(jq -r .tokens <<<"$output")
	ptokens=$(jq -r .prompt_tokens <<<"$output")
	[ "$(jq -r .finish <<<"$output")" = max_tokens ]
	[ "$ptokens" -gt 0 ]
	[ "$((tokens + ptokens))" = 2048 ]
	[ "$(jq -r .deadline <<<"$output")" = null ]
	# the small model's context (64) and max_units (2 blocks: 32 tokens) bound it
	id=$(rawclient "$PLOT_SOCKET" submit "hello there" '{"model": "small", "temp": 0, "ignore_eos": true, "raw": true}')
	rawclient "$PLOT_SOCKET" call result "{\"task\": $id, \"wait\": true}" >/dev/null
	run -0 "$PLOT" --json status "$id"
	[ "$(jq -r '.tokens + .prompt_tokens' <<<"$output")" = 32 ]
}

@test "the llm submit line says the prompt tokens, uid and priority, logged before admitted" {
	plotd_start
	wait_until is_ready tiny
	local id uid
	id=$(rawclient "$PLOT_SOCKET" submit "hello there" '{"model": "tiny", "temp": 0, "max_tokens": 2, "prio": 2, "raw": true}')
	rawclient "$PLOT_SOCKET" call result "{\"task\": $id, \"wait\": true}" >/dev/null
	uid=$(id -u)
	run -0 grep -E "pool tiny: task $id (submitted|admitted)" "$PLOTD_STDERR"
	[ "${#lines[@]}" = 2 ]
	[[ "${lines[0]}" =~ "task $id submitted ("[1-9][0-9]*" prompt tokens, uid $uid, high, cost 1)"$ ]]
	[[ "${lines[1]}" == *"task $id admitted (high, cost 1, waited "* ]]
}
