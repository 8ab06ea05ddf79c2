#!/usr/bin/env bats
# plot run -m PATH and plot chat -m PATH (#14): a GGUF file tried without a
# config, served by a private plotd that lives as long as the command (and
# dies with it, even on SIGKILL), named after the file. The oracle is the
# same file served by a plotd from a config, with the same greedy request.

load helpers
load cli-helpers

setup() {
	plot_setup
	TINY="$BATS_TEST_DIRNAME/../fixtures/llm-exec-tiny.gguf"
	mkdir -p -m 0700 "$XDG_RUNTIME_DIR"
	cp "$TINY" "$BATS_TEST_TMPDIR/my tiny.gguf"
	plotd_write_config <<-EOF
	default_model: tiny
	models:
	  - name: tiny
	    executor: llm
	    path: $TINY
	    params: { kvcache_mem_mb: 1, block_size: 16, max_num_seqs: 8, max_batch_tokens: 32 }
	EOF
}

teardown() {
	plot_teardown
}

private_pid() { # private_pid FILE: the private plotd's pid from -v output
	sed -n 's/.*with a private plotd (pid \([0-9]*\)).*/\1/p' "$1"
}
no_private_dirs() { ! compgen -G "$XDG_RUNTIME_DIR/plot-adhoc-*" >/dev/null; }

@test "run -m PATH: the file is served as a model named after it, then its plotd is gone" {
	plotd_start
	cd "$BATS_TEST_TMPDIR"
	run -0 rawclient "$PLOT_SOCKET" call models
	"$PLOT" run -m tiny --temperature 0 -n 12 "hello there" >expect
	[ -s expect ]
	# the shared plotd keeps running (and holding its store): the private one
	# has its own
	run -0 --separate-stderr "$PLOT" -v run -m "./my tiny.gguf" --temperature 0 -n 12 "hello there"
	assert_equal "$output" "$(cat expect)"
	echo "$stderr" >err
	local pid
	pid=$(private_pid err)
	[[ "$pid" =~ ^[0-9]+$ ]]
	grep -q "serving $BATS_TEST_TMPDIR/my tiny.gguf as model my-tiny with a private plotd" err
	pid_gone "$pid"
	no_private_dirs
}

@test "chat -m PATH: the banner names the file's model; answers match the configured model's" {
	plotd_start
	cd "$BATS_TEST_TMPDIR"
	printf '/set temperature 0\n/set max_tokens 8\nhello there\n' | "$PLOT" chat -m tiny >expect
	plotd_stop
	printf '/set temperature 0\n/set max_tokens 8\nhello there\n/stats\n' |
		"$PLOT" chat -m "./my tiny.gguf" >out
	head -c "$(wc -c <expect)" out >answer
	cmp expect answer
	grep -qE '^model +my-tiny$' out
	no_private_dirs
}

@test "-m PATH errors: a missing file, not GGUF, and with submit or --detach are usage errors" {
	cd "$BATS_TEST_TMPDIR"
	run -2 --separate-stderr "$PLOT" run -m ./missing.gguf hi
	assert_equal "$stderr" "plot run: error: --model ./missing.gguf: No such file or directory"
	echo 'not a model' >fake.gguf
	run -2 --separate-stderr "$PLOT" run -m ./fake.gguf hi
	assert_equal "$stderr" 'plot run: error: --model ./fake.gguf: not a GGUF file (it does not start with "GGUF")'
	run -2 --separate-stderr "$PLOT" chat -m ./fake.gguf </dev/null
	assert_equal "$stderr" 'plot chat: error: --model ./fake.gguf: not a GGUF file (it does not start with "GGUF")'
	run -2 --separate-stderr "$PLOT" submit -m "./my tiny.gguf" hi
	[[ "$stderr" == "plot submit: --model ./my tiny.gguf: a model file is served only while plot run or chat runs; add it to plot.yaml's models to submit to it"* ]]
	run -2 --separate-stderr "$PLOT" run --detach -m "./my tiny.gguf" hi
	[[ "$stderr" == "plot run: --model ./my tiny.gguf: a model file is served only while"* ]]
	no_private_dirs
}

@test "-m PATH: a plot killed outright takes its private plotd along" {
	cd "$BATS_TEST_TMPDIR"
	mkfifo in
	"$PLOT" -v chat -m "./my tiny.gguf" <in >/dev/null 2>err &
	local plot=$! pid
	exec 5>in # chat waits for a line that never comes
	wait_until grep -q 'with a private plotd' err
	pid=$(private_pid err)
	plot_kill_later "$pid"
	kill -KILL "$plot"
	wait "$plot" || true
	exec 5>&-
	wait_until pid_gone "$pid"
}

@test "tty: the status line shows the file's model loading, with its progress" {
	local model="${PLOT_SMOLLM2:-$HOME/.local/share/plot/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
	[ -f "$model" ] || skip "no $model (make models)"
	script -qefc "$(printf '%q ' "$PLOT" run -m "$model" -n 4 --temperature 0 hello)" "$BATS_TEST_TMPDIR/ts" </dev/null >/dev/null
	run -0 cat "$BATS_TEST_TMPDIR/ts"
	assert_output --regexp $'\r\e\\[Kstarting plotd \\(pid [0-9]+\\) on '
	assert_output --regexp $'\r\e\\[Kloading SmolLM2-135M-Instruct.Q4_1: [0-9]+% \\([0-9]+s\\)'
	no_private_dirs
}

@test "bash completion of -m: a value with a '/' completes files, else model names" {
	cd "$BATS_TEST_TMPDIR"
	run -0 bash -c 'source "$1"; COMP_WORDS=(plot run -m ./my); COMP_CWORD=3; _plot; printf "%s\n" "${COMPREPLY[@]}"' _ "$BATS_TEST_DIRNAME/../../completions/plot.bash"
	assert_output "./my tiny.gguf"
}
