#!/usr/bin/env bats
# Serving on the CUDA backend: plotd with `device: cuda` on a random-weight
# tiny Llama (tests/tools/gguf-random), the device emulated on the host
# (PLOT_CUDA_EMULATE=1, daemon/cuda-env.c: lib/cuda's cuda-emu.cu runs every
# kernel's own code), so the whole path (pool, executor, continuous batching,
# the CUDA forward pass and KV blocks) runs without a GPU. The oracle is the
# engine's own greedy output on the same device (llm-generate --device cuda
# --emulate), never pasted text; and the CPU's, where this model's margins
# allow (checked: the first 16 tokens of these prompts agree).
#
# Only a make CUDA=1 build can run it: `make CUDA=1 cli-cuda` (CI, after
# the CUDA unit tests); or a make CUDA=host build, where the device is khost,
# lib/cuda's own kernels run on the CPU (tests/gpu/khost; CI runs that too). It is not in tests/cli's default run, and it FAILS
# (never skips) when its binaries are not a CUDA build. tests/gpu/run runs
# it without PLOT_CUDA_EMULATE on the real device (PLOT_CUDA_REAL=1).
#
# Sizes: the emulation decodes ~200 tokens/s single stream here; tasks are
# 16 tokens except where one must outlive a check (those ignore EOS and are
# cancelled, never waited out).

load helpers
load serve-helpers

: "${PLOT_TESTBIN:=$BATS_TEST_DIRNAME/../../build/cc-cuda/tests}"
GEN="$PLOT_TESTBIN/llm-generate"
GGUF_RANDOM="$PLOT_TESTBIN/gguf-random"
P1="hello there"
P2="the cat sat on the mat"
P3="def fibonacci(n):"
P4="once upon a time"

setup_file() {
	case "$PLOT_BINDIR" in
	*/build/*-cuda/bin | */build/*-cuda-*/bin | */build/*-cudahost/bin | */build/*-cudahost-*/bin) ;;
	*) echo "# serve-cuda.bats needs a CUDA build: make CUDA=1 cli-cuda" >&2; return 1 ;;
	esac
	# a model whose greedy text varies (seed 3, smaller embeddings), 2 layers
	"$GGUF_RANDOM" --type Q8_0 --seed 3 --embd-scale 500 "$BATS_FILE_TMPDIR/tiny.gguf"
}

setup() {
	plot_setup
	MODEL="$BATS_FILE_TMPDIR/tiny.gguf"
	EMU=--emulate KHOST=
	# a make CUDA=host build: the device is khost, lib/cuda's kernels on the CPU
	case "$PLOT_BINDIR" in */build/*-cudahost/bin | */build/*-cudahost-*/bin) KHOST=1 ;; esac
	# khost runs each CUDA thread as a fiber: a wait for 64 sequences' results takes longer
	[ -z "$KHOST" ] || export SERVE_WAIT_S=120
	if [ "${PLOT_CUDA_REAL:-0}" = 1 ] || [ -n "$KHOST" ]; then EMU=; else export PLOT_CUDA_EMULATE=1; fi
	gpu_config 8 100
}
teardown() { plot_teardown; }

# gpu_config MAX_NUM_SEQS MAX_QUEUE_DEPTH [KV_MB]
gpu_config() {
	plotd_write_config <<-EOF
	daemon: { log_level: debug }
	default_model: gpu
	models:
	  - name: gpu
	    executor: llm
	    path: $MODEL
	    params: { device: cuda, kvcache_mem_mb: ${3:-2}, block_size: 16, max_num_seqs: $1, max_batch_tokens: 64 }
	    parking_lot:
	      pool: { threads: 2 }
	      limits: { max_units: null, max_queue_depth: $2, timeout_secs: 300 }
	EOF
}

# ---- helpers (the rest: serve-helpers.bash) --------------------------------

SERVE_MODEL=gpu
oracle() { "$GEN" $EMU --device cuda "$MODEL" "$2" "$1"; } # oracle PROMPT N
prompt_tokens() { "$GEN" --count "$MODEL" 1 "$1"; }

# ---- tests --------------------------------------------------------------------

@test "cuda: the model serves from the device, named in plot models" {
	start_ready
	run -0 "$PLOT" models --json
	run -0 jq_py "[m['device'] for m in j['models'] if m['name'] == 'gpu'][0]" <<<"$output"
	assert_output cuda:0 # resolved: the config says cuda
	[ -z "$EMU" ] || plotd_log_has "PLOT_CUDA_EMULATE=1: device cuda is the host emulation"
}

@test "cuda: plot run's greedy output is the engine's greedy output on the device, and the CPU's" {
	start_ready
	serve_greedy_is_oracle 16
	for p in "$P1" "$P3"; do
		assert_equal "$("$GEN" --device cpu "$MODEL" 16 "$p")" "$(oracle "$p" 16)"
	done
}

@test "cuda: 8 concurrent plot runs each give exactly their solo output" {
	start_ready
	serve_concurrent_solo 1
}

@test "cuda: cancelling mid-stream frees its blocks" {
	start_ready
	# 1500 tokens (~94 of the 128 blocks): seconds of emulated work, so it
	# is still running when cancelled on a loaded machine
	c=$((($(prompt_tokens "$P2") + 1500 + 15) / 16))
	id=$(long_task "$P2" 1500)
	wait_until has_output "$id"
	run -0 stat_field used_units
	assert_output "$c"
	serve_cancel_frees "$id"
}

@test "cuda: QUEUE_FULL while the blocks are held, exit 75" {
	gpu_config 8 1
	start_ready
	serve_queue_full 400 "$P3" "$P2"
	run -0 "$PLOT" cancel "$BIG"
	run -0 "$PLOT" cancel "${QUEUED_IDS[0]}"
	wait_until units_are 0
}

@test "cuda: a deadline expires mid-generation: exit 124, partial output kept" {
	start_ready
	serve_deadline 480 0.5
	wait_until units_are 0
}

@test "cuda: plot tail from a second client replays from the start, then follows" {
	start_ready
	id=$(long_task "$P2" 1500) # still running when cancelled, under load too
	serve_tail_follows "$id"
}

@test "cuda: priority: a critical task submitted last is admitted first" {
	gpu_config 1 100
	start_ready
	first=$(long_task "$P1")
	serve_priority "$first" 4
}

@test "cuda: a client that disconnects mid-stream cancels its task and frees its blocks" {
	start_ready
	# it reads 4 chunks and vanishes without a word; 1500 tokens ignoring
	# EOS are seconds of work, so the task is still running then
	run -0 rawclient "$PLOT_SOCKET" run "$P2" 4 '{"temp": 0, "max_tokens": 1500, "ignore_eos": true}'
	id=$output
	wait_until task_state_is "$id" cancelled
	wait_until units_are 0
	plotd_log_has "task $id cancelled: its run client .* disconnected"
	run -0 has_output "$id"
	run -0 stat_field running
	assert_output 0
}

# admitted_before_done ID...: plotd logged every task's admission before
# any of them ended
admitted_before_done() {
	local re
	re=$(IFS='|'; echo "$*")
	grep -E "pool $SERVE_MODEL: task ($re) (admitted|done|failed|cancelled)" "$PLOTD_STDERR" |
		awk -v n=$# '/ admitted / { a++; next } { exit !(a == n) } END { exit !(a == n) }'
}

# the sampling parameters of the sampling test, one set per line
SAMPLING=("--temperature 0" "--temperature 1 --seed 7" "--temperature 1.5 --seed 7 --top-k 5"
	"--temperature 0.8 --seed 11 --top-p 0.9 --repetition-penalty 1.3")

@test "cuda: per-request sampling holds inside one batch: each task gives its solo output" {
	gpu_config 16 100 4 # 256 blocks: the long task below and the eight fit together
	start_ready
	local k id ids=()
	# alone: the same prompt under each set; the sets give different text
	for k in 0 1 2 3; do
		run -0 --separate-stderr "$PLOT" run -n 24 ${SAMPLING[$k]} "$P2"
		[ -n "$output" ]
		printf '%s' "$output" >"$BATS_TEST_TMPDIR/solo.$k"
	done
	for k in 0 1 2; do
		for j in $(seq $((k + 1)) 3); do
			run -1 cmp -s "$BATS_TEST_TMPDIR/solo.$k" "$BATS_TEST_TMPDIR/solo.$j"
		done
	done
	# together: one slot held by a long task queues all eight (each set
	# twice); raising max_running admits them at once, so they decode in
	# the same batches
	run -0 "$PLOT" limits set -m gpu max_running=1
	long=$(long_task "$P1" 2000) # 127 blocks; long enough on a real GPU too
	wait_until task_state_is "$long" running
	for k in 0 1 2 3 4 5 6 7; do
		id=$("$PLOT" submit -n 24 ${SAMPLING[$((k % 4))]} "$P2")
		ids+=("$id")
	done
	run -0 "$PLOT" limits set -m gpu max_running=9
	run -0 "$PLOT" cancel "$long"
	for k in 0 1 2 3 4 5 6 7; do
		run -0 --separate-stderr "$PLOT" result --wait "${ids[$k]}"
		assert_equal "$output" "$(cat "$BATS_TEST_TMPDIR/solo.$((k % 4))")"
	done
	# they overlapped: all eight were admitted before the first of them ended
	admitted_before_done "${ids[@]}"
	wait_until units_are 0
}

# many PROMPT...: submit each prompt (greedy, 6 tokens ignoring EOS, raw,
# detached) on one connection and print the ids; many_wait ID...: wait for
# each and print its output, one repr per line (python: 64 clients would
# cost seconds of start-up)
many() {
	RAWCLIENT_DIR="$BATS_TEST_DIRNAME" python3 - "$PLOT_SOCKET" "$@" <<-'PY'
	import os, sys
	sys.path.insert(0, os.environ["RAWCLIENT_DIR"])
	import rawclient
	c = rawclient.Conn(sys.argv[1])
	c.hello()
	for p in sys.argv[2:]:
	    r = c.call("submit", prompt=p, temp=0, max_tokens=6, ignore_eos=True, raw=True, detach=True)
	    assert r["t"] == "ok", r
	    print(r["task"])
	PY
}
many_wait() {
	RAWCLIENT_DIR="$BATS_TEST_DIRNAME" python3 - "$PLOT_SOCKET" "$@" <<-'PY'
	import os, sys
	sys.path.insert(0, os.environ["RAWCLIENT_DIR"])
	import rawclient
	rawclient.TIMEOUT = float(os.environ.get("SERVE_WAIT_S", "10")) # khost: slower
	c = rawclient.Conn(sys.argv[1])
	c.hello()
	for t in sys.argv[2:]:
	    r = c.call("result", task=int(t), wait=True)
	    assert r["t"] == "ok" and r["state"] == 2, r # done
	    print(repr(r["data"]))
	PY
}

@test "cuda: 64 sequences admitted together decode in shared batches, each its solo output" {
	gpu_config 64 200 4
	start_ready
	local k ps=("$P1" "$P2" "$P3" "$P4") all=() ids solo
	ids=$(many "${ps[@]}")
	solo=$(many_wait $ids)
	for k in $(seq 0 63); do all+=("${ps[$((k % 4))]}"); done
	run -0 "$PLOT" limits set -m gpu max_running=1
	long=$(long_task "$P1" 2000)
	wait_until task_state_is "$long" running
	ids=$(many "${all[@]}")
	run -0 "$PLOT" limits set -m gpu max_running=65
	run -0 "$PLOT" cancel "$long"
	run -0 many_wait $ids
	assert_equal "$output" "$(for k in $(seq 1 16); do printf '%s\n' "$solo"; done)"
	admitted_before_done $ids
	wait_until units_are 0
}

@test "cuda: plot stats shows the device, its memory, KV blocks, batch, tok/s, TTFT/ITL" {
	start_ready
	run -0 "$PLOT" run --temperature 0 -n 16 "$P1"
	mem=$(model_field gpu mem_bytes)
	[ "$mem" -gt 0 ]
	run -0 "$PLOT" stats --json
	run -0 jq_py "[(m['device'], m['mem_bytes'], m['kv_blocks_total'] > 0, m['batch_size'] >= 0, m['decode_tps'] > 0, m['ttft_count'], m['itl_count']) for m in j['models'] if m['name'] == 'gpu'][0]" <<<"$output"
	assert_output "('cuda:0', $mem, True, True, True, 1, 15)"
	run -0 "$PLOT" stats --wide
	# the engine table (tab-separated off a terminal): MODEL DEVICE DEVICE_MEM PREFILL_TOK/S ...
	assert_line --regexp $'^gpu\tcuda:0 \\([^,]+, [0-9.]+ [KMGT]?i?B free of [0-9.]+ [KMGT]i?B\\)\t[0-9.]+ [KM]iB\t[0-9.]+\t[0-9.]+\t[0-9]+\t0/[0-9]+\t'
	run -0 "$PLOT" stats --prometheus
	run -0 python3 "$BATS_TEST_DIRNAME/promcheck.py" 'plot_model_device_info{model="gpu",device="cuda:0",name="'"$(stat_field device_name)"'"}' \
		'plot_mem_bytes{model="gpu"}' 'plot_kv_blocks_total{model="gpu"}' 'plot_ttft_seconds_count{model="gpu"}' <<<"$output"
	assert_line --index 0 1
	assert_line --index 1 "$mem"
	assert_line --index 3 1
}

# two_gpu_models: gpu and gpu2, the same tiny model on the one device
two_gpu_models() {
	plotd_write_config <<-EOF
	daemon: { log_level: debug }
	default_model: gpu
	models:
	  - name: gpu
	    executor: llm
	    path: $MODEL
	    params: { device: cuda, kvcache_mem_mb: 2, block_size: 16, max_num_seqs: 4, max_batch_tokens: 64 }
	  - name: gpu2
	    executor: llm
	    path: $MODEL
	    params: { device: 'cuda:0', kvcache_mem_mb: 2, block_size: 16, max_num_seqs: 64, max_batch_tokens: 64 }
	EOF
}
dev_free() { "$PLOT" stats --json -m "$1" | jq_py "j['models'][0]['device_free_bytes']"; }
both_ready() { [ "$(model_field gpu state)" = ready ] && [ "$(model_field gpu2 state)" = ready ]; }
free_at_most() { [ "$(dev_free "$1")" -le "$2" ]; } # free_at_most MODEL BYTES
# every model's view of the device's free memory is the same, and below $1
free_agrees_below() {
	local a b
	a=$(dev_free gpu) b=$(dev_free gpu2)
	[ "$a" = "$b" ] && [ "$a" -lt "$1" ]
}

@test "cuda: stats, ps and models name the device (index, name) and its memory, total and free" {
	local total=
	if [ -n "$EMU" ]; then export PLOT_CUDA_EMULATE_MB=256; total=268435456; fi
	if [ -n "$KHOST" ]; then export KHOST_MEM_MB=256; total=268435456; fi
	two_gpu_models
	plotd_start
	wait_until both_ready
	run -0 "$PLOT" stats --json -m gpu
	run -0 jq_py "'\t'.join(str(m[k]) for m in j['models'] for k in ('device', 'device_name', 'device_total_bytes', 'device_free_bytes', 'mem_bytes'))" <<<"$output"
	IFS=$'\t' read -r dev name tot free mem <<<"$output"
	assert_equal "$dev" cuda:0
	[ -n "$name" ] && [ "$name" != None ]
	[ -z "$EMU" ] || assert_equal "$name" emulated
	[ -z "$KHOST" ] || assert_equal "$name" "khost: CUDA kernels on the CPU"
	[ -z "$total" ] || assert_equal "$tot" "$total"
	# both models' weights and caches are on the device: free is below total
	# minus them, once each model's sample is newer than the other's load (a
	# sample under 1 s old is not taken again: wait for it)
	mem2=$(model_field gpu2 mem_bytes)
	[ "$free" -gt 0 ]
	wait_until free_at_most gpu $((tot - mem - mem2))
	wait_until free_at_most gpu2 $((tot - mem - mem2))
	run -0 "$PLOT" models --json
	run -0 jq_py "[(m['device'], m['device_name'], m['device_total_bytes']) for m in j['models'] if m['name'] == 'gpu2'][0]" <<<"$output"
	assert_output "('cuda:0', '$name', $tot)"
	# the tables (tab-separated off a terminal)
	local T=$'\t' where="cuda:0 \\($name, [0-9.]+ [KMG]iB free of [0-9.]+ [KMGT]iB\\)"
	run -0 "$PLOT" ps
	assert_line --regexp "^gpu${T}ready${T}[0-9.]+ [KM]iB${T}${where}${T}-\$"
	run -0 "$PLOT" models
	assert_line --regexp "^gpu2${T}llm${T}ready${T}no${T}[0-9]+${T}[0-9]+${T}[0-9.]+ [KM]iB on ${where}${T}"
	run -0 "$PLOT" stats
	assert_line --regexp "^device: gpu holds [0-9.]+ [KM]iB on cuda:0 \\($name, "
	run -0 "$PLOT" stats --prometheus
	run -0 python3 "$BATS_TEST_DIRNAME/promcheck.py" 'plot_device_total_bytes{model="gpu",device="cuda:0"}' \
		'plot_device_free_bytes{model="gpu2",device="cuda:0"}' <<<"$output"
	assert_line --index 0 "$tot"
	[ "${lines[1]}" -le $((tot - mem - mem2)) ]
	# gpu2's first batch allocates its scratch on the device: gpu, idle all
	# along, sees the device's free memory fall too (its engine thread
	# resamples it when a read finds the figure older than 1 s)
	before=$(dev_free gpu)
	run -0 "$PLOT" run -m gpu2 --temperature 0 -n 2 "$P2"
	wait_until free_agrees_below "$before"
}

@test "cuda: on the CPU, the device figures are null and the tables unchanged" {
	plotd_write_config <<-EOF
	models:
	  - name: gpu
	    executor: llm
	    path: $MODEL
	    params: { device: cpu, kvcache_mem_mb: 2, block_size: 16 }
	EOF
	start_ready
	run -0 "$PLOT" stats --json
	run -0 jq_py "[(m['device'], m['device_name'], m['device_total_bytes'], m['device_free_bytes']) for m in j['models']][0]" <<<"$output"
	assert_output "('cpu', None, None, None)"
	run -0 "$PLOT" ps
	assert_line --regexp $'^gpu\tready\t[0-9.]+ [KM]iB\tcpu\t-$'
	run -0 "$PLOT" stats
	refute_line --partial "device:"
	run -0 "$PLOT" stats --prometheus
	refute_line --partial plot_device_
}

# ---- clear failures: the model fails to load, the daemon serves the others -----

model_field() { # model_field NAME KEY: of plot models --json
	"$PLOT" models --json | jq_py "[m for m in j['models'] if m['name']=='$1'][0]['$2']"
}
settled() { local s; s=$(model_field "$1" state); [ "$s" = failed ] || [ "$s" = ready ]; }

# model_fails PARAMS ASSERT_OUTPUT_ARGS...: model gpu of PARAMS (beside a
# synthetic echo, serve-helpers' two_models) fails to load, its error as
# assert_output ASSERT_OUTPUT_ARGS... says
model_fails() {
	two_models "$MODEL" "$1"
	shift
	plotd_start
	wait_until settled gpu
	run -0 model_field gpu state
	assert_output failed
	run -0 model_field gpu error
	assert_output "$@"
}

still_serving() {
	run -0 --separate-stderr "$PLOT" run -m echo "still serving"
	assert_output "still serving"
}

@test "cuda: a malformed params.device is a config error naming it: exit 78" {
	local d
	for d in gpu cuda:64 cuda:x "cuda:"; do
		two_models "$MODEL" "device: '$d'"
		run -78 --separate-stderr "$PLOTD" --check-config --config "$PLOT_CONFIG"
		assert_equal "$stderr" "plotd: $PLOT_CONFIG:8:23: models[1].params.device: expected cpu, cuda or cuda:N (N 0..63), got \"$d\""
	done
	# cuda:N within range is valid config; whether device N exists is the load's business
	two_models "$MODEL" "device: 'cuda:63'"
	run -0 "$PLOTD" --check-config --config "$PLOT_CONFIG"
}

@test "cuda: a device index that does not exist fails that model clearly; the others serve" {
	[ -z "$EMU" ] || export PLOT_CUDA_EMULATE=1 # the emulation has one device, cuda:0
	model_fails "device: 'cuda:7'" --regexp 'tiny.gguf: cuda:7: no such CUDA device \(found [0-9]+\)$'
	run -1 rawclient "$PLOT_SOCKET" submit "hello" '{"model": "gpu"}'
	assert_output --partial 'model gpu failed to load'
	assert_output --partial 'cuda:7: no such CUDA device'
	still_serving
}

@test "cuda: no driver or no visible device fails that model clearly; the others serve" {
	# the real runtime, no emulation, and no device visible to it: this
	# machine has no driver at all (cudaErrorInsufficientDriver), a GPU
	# machine hides its devices (CUDA_VISIBLE_DEVICES empty: none found)
	unset PLOT_CUDA_EMULATE
	export CUDA_VISIBLE_DEVICES=
	model_fails "device: cuda" \
		--regexp 'tiny.gguf: cuda:0: no (usable CUDA device: .*cudaGetDeviceCount.*|such CUDA device \(found 0\))$'
	run -1 rawclient "$PLOT_SOCKET" submit "hello" '{"model": "gpu"}'
	assert_output --partial 'model gpu failed to load'
	still_serving
}

@test "cuda: weights and KV cache that do not fit device memory fail that model clearly" {
	[ -n "$EMU$KHOST" ] || skip "needs the emulated or khost device's memory budget"
	# 1 MiB of device memory: the tiny model's weights alone are 1.4 MiB
	export PLOT_CUDA_EMULATE_MB=1 KHOST_MEM_MB=1
	model_fails "device: cuda, kvcache_mem_mb: 2" \
		--regexp 'tiny.gguf: cuda:0: out of device memory uploading [a-z0-9_.]+ \('
	still_serving
}

@test "cuda: a KV budget larger than the device's memory fails that model clearly" {
	[ -n "$EMU$KHOST" ] || skip "needs the emulated or khost device's memory budget"
	# 8 MiB of device memory: the weights fit, 64 MiB of KV cache does not
	export PLOT_CUDA_EMULATE_MB=8 KHOST_MEM_MB=8
	model_fails "device: cuda, kvcache_mem_mb: 64" \
		'KV cache (kvcache_mem_mb 64): cuda:0: out of device memory for the KV cache (4096 blocks, 64.0 MiB)'
	still_serving
}

# ---- the HTTP front: the same figures as plot stats --------------------------

# http_start: plotd with the HTTP front on a free loopback port; sets URL
http_start() {
	plotd_start --http 127.0.0.1:0
	wait_until grep -q 'http: listening on' "$PLOTD_STDERR"
	URL="http://$(sed -n 's/.*http: listening on \([0-9.:]*\).*/\1/p' "$PLOTD_STDERR" | head -n 1)"
}
# http_get PATH: the body of a GET that answers 200 (python, not curl: the
# GPU machine runs this file too)
http_get() {
	python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$URL$1"
}

@test "cuda: GET /v1/queues has plot stats --json's keys: device figures for the GPU model, null on the CPU" {
	plotd_write_config <<-EOF
	default_model: gpu
	models:
	  - name: gpu
	    executor: llm
	    path: $MODEL
	    params: { device: cuda, kvcache_mem_mb: 2, block_size: 16, max_num_seqs: 4, max_batch_tokens: 64 }
	  - name: cpu
	    executor: llm
	    path: $MODEL
	    params: { device: cpu, kvcache_mem_mb: 2, block_size: 16 }
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 0 }
	EOF
	http_start
	wait_until is_ready
	SERVE_MODEL=cpu wait_until is_ready
	run -0 "$PLOT" run --temperature 0 -n 16 "$P1"
	run -0 http_get /v1/queues
	printf '%s' "$output" >"$BATS_TEST_TMPDIR/queues.json"
	run -0 "$PLOT" stats --json
	python3 - "$BATS_TEST_TMPDIR/queues.json" "$output" <<-'PY'
	import json, sys
	http = {q["model"]: q for q in json.load(open(sys.argv[1]))["queues"]}
	cli = {m["name"]: m for m in json.loads(sys.argv[2])["models"]}
	assert sorted(http) == sorted(cli) == ["cpu", "echo", "gpu"], (sorted(http), sorted(cli))
	for name in cli: # the same keys, in the same order, the name aside
	    h = [k for k in http[name] if k != "model"]
	    c = [k for k in cli[name] if k != "name"]
	    assert h == c, (name, set(c) - set(h), set(h) - set(c))
	g, cg = http["gpu"], cli["gpu"]
	assert g["device"] == "cuda:0" and g["device_name"] == cg["device_name"] != None, g
	assert g["device_total_bytes"] == cg["device_total_bytes"] > 0, g
	assert 0 < g["device_free_bytes"] <= g["device_total_bytes"], g
	assert g["mem_bytes"] == cg["mem_bytes"] > 0, g
	assert g["kv_blocks_total"] == cg["kv_blocks_total"] > 0 and g["kv_blocks_used"] == 0, g
	assert (g["ttft_count"], g["itl_count"]) == (1, 15) and g["decode_tps"] > 0, g
	assert g["batch_size"] >= 0 and g["ttft_p50_ms"] > 0 and g["itl_p99_ms"] > 0, g
	c = http["cpu"]
	assert c["device"] == "cpu" and c["kv_blocks_total"] > 0, c
	# kvcache_mem_mb sizes the cache on the device as on the CPU: 2 MiB, the
	# same blocks, every one a unit (max_units null)
	assert g["kv_bytes"] == c["kv_bytes"] == 2 << 20, (g["kv_bytes"], c["kv_bytes"])
	assert g["kv_blocks_total"] == c["kv_blocks_total"] == g["max_units"], (g, c)
	assert [c[k] for k in ("device_name", "device_total_bytes", "device_free_bytes")] == [None] * 3, c
	e = http["echo"]
	assert e["device"] is None and e["kv_blocks_total"] is None and e["decode_tps"] is None, e
	PY
	# /metrics: the device's memory for the GPU model, nothing of it for the CPU one
	run -0 http_get /metrics
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/metrics"
	run -0 python3 "$BATS_TEST_DIRNAME/promcheck.py" 'plot_device_total_bytes{model="gpu",device="cuda:0"}' \
		'plot_device_free_bytes{model="gpu",device="cuda:0"}' 'plot_kv_blocks_total{model="gpu"}' \
		'plot_kv_blocks_used{model="gpu"}' 'plot_batch_size{model="gpu"}' \
		'plot_itl_seconds_count{model="gpu"}' 'plot_decode_tokens_per_second{model="gpu"}' \
		'plot_ttft_seconds{model="gpu",quantile="0.99"}' <"$BATS_TEST_TMPDIR/metrics"
	assert_line --index 0 "$(stat_field device_total_bytes)"
	[ "${lines[1]}" -gt 0 ] && [ "${lines[1]}" -le "${lines[0]}" ]
	assert_line --index 2 "$(stat_field kv_blocks_total)"
	assert_line --index 3 0
	[[ "${lines[4]}" =~ ^[0-9]+$ ]]
	assert_line --index 5 15
	python3 -c 'import sys; sys.exit(not (float(sys.argv[1]) > 0 and float(sys.argv[2]) > 0))' "${lines[6]}" "${lines[7]}"
	run -1 grep -E '^plot_device_(total|free)_bytes\{model="(cpu|echo)"' "$BATS_TEST_TMPDIR/metrics"
	run -0 grep -c '^plot_model_device_info{model="cpu",device="cpu"} 1$' "$BATS_TEST_TMPDIR/metrics"
}
