#!/usr/bin/env bats
# The daemon's lifecycle from a terminal (#14): daemon restart and reload,
# and a client given --config that finds a daemon with another config.

load helpers
load cli-helpers

setup() {
	plot_setup
	cli_config 2
}

teardown() {
	cli_teardown
}

daemon_pid() {
	"$PLOT" --json daemon status | jq -r .pid
}

limit_is() { # limit_is KEY VALUE: the echo model's limit, for wait_until
	[ "$("$PLOT" --json limits -m echo | jq -r ".models[0].$1")" = "$2" ]
}

@test "daemon restart: a new plotd, with this command's config" {
	run -0 "$PLOT" daemon start --config "$PLOT_CONFIG"
	local old
	old=$(daemon_pid)
	plot_kill_later "$old"
	cp "$PLOT_CONFIG" "$BATS_TEST_TMPDIR/other.yaml"
	sed -i 's/max_queue_depth: 100/max_queue_depth: 5/' "$BATS_TEST_TMPDIR/other.yaml"
	run -0 --separate-stderr "$PLOT" daemon restart --config "$BATS_TEST_TMPDIR/other.yaml"
	[[ "$stderr" == *"stopped plotd (pid $old)"*"started plotd"* ]]
	local new
	new=$(daemon_pid)
	plot_kill_later "$new"
	[ "$new" != "$old" ]
	pid_gone "$old"
	run -0 --separate-stderr "$PLOT" -v config
	[[ "$stderr" == *"$BATS_TEST_TMPDIR/other.yaml"* ]]
	run -0 limit_is max_queue_depth 5
	# not running: restart starts it
	run -0 "$PLOT" daemon stop
	run -0 --separate-stderr "$PLOT" daemon restart --config "$PLOT_CONFIG"
	plot_kill_later "$(daemon_pid)"
	run -0 limit_is max_queue_depth 100
	run -2 "$PLOT" daemon status --now
	assert_line --index 0 "plot daemon: --now goes with stop or restart"
}

@test "daemon reload: plotd re-reads its config (SIGHUP); not running is 69" {
	plotd_start
	run -0 limit_is max_queue_depth 100
	sed -i 's/max_queue_depth: 100/max_queue_depth: 7/' "$PLOT_CONFIG"
	run -0 --separate-stderr "$PLOT" daemon reload
	assert_equal "$stderr" "plot daemon: plotd (pid $PLOTD_PID) re-reads $PLOT_CONFIG; its log says what changed"
	wait_until limit_is max_queue_depth 7
	plotd_alive
	run -69 --separate-stderr "$PLOT" --socket "$(no_daemon_socket)" daemon reload
	[[ "$stderr" == *"plotd is not running"* ]]
}

@test "a --config other than the running daemon's is noted on stderr; the same one is not" {
	plotd_start
	cp "$PLOT_CONFIG" "$BATS_TEST_TMPDIR/other.yaml"
	run -0 --separate-stderr "$PLOT" --config "$BATS_TEST_TMPDIR/other.yaml" run hello
	assert_output hello
	assert_equal "$stderr" "plot run: note: plotd (pid $PLOTD_PID) already runs with the config $PLOT_CONFIG, not $BATS_TEST_TMPDIR/other.yaml; plot daemon restart --config $BATS_TEST_TMPDIR/other.yaml uses it"
	run -0 --separate-stderr "$PLOT" --config "$PLOT_CONFIG" run hello
	assert_equal "$stderr" ""
	cd "$BATS_TEST_TMPDIR"
	run -0 --separate-stderr "$PLOT" --config plot.yaml run hello
	assert_equal "$stderr" ""
	run -0 --separate-stderr "$PLOT" -q --config other.yaml run hello
	assert_equal "$stderr" ""
}

@test "plotd --check-config checks users, groups and model files, and warns without loading" {
	local tiny="$BATS_TEST_DIRNAME/../fixtures/llm-exec-tiny.gguf" train
	train=$(python3 -c 'import gguf,sys; r = gguf.GGUFReader(sys.argv[1]); a = bytes(r.fields["general.architecture"].parts[-1]).decode(); print(int(r.fields[a + ".context_length"].parts[-1][0]))' "$tiny")
	cat >"$BATS_TEST_TMPDIR/ok.yaml" <<-EOF
	models:
	  - name: echo
	    executor: synthetic
	    params: { kvcache_mem_mb: 64 }
	  - name: tiny
	    executor: llm
	    path: $tiny
	    params: { context_length: $((train + 1)), tokens_per_sec: 3 }
	EOF
	run -0 --separate-stderr "$PLOTD" --check-config --config "$BATS_TEST_TMPDIR/ok.yaml"
	assert_line '  - name: "tiny"'
	local src="plotd: $BATS_TEST_TMPDIR/ok.yaml"
	assert_equal "$stderr" "$src: warning: models[0] (echo): params.kvcache_mem_mb is read by the llm executor only; this model's executor does not use it
$src: warning: models[1] (tiny): params.tokens_per_sec is read by the synthetic executor only; this model's executor does not use it
$src: warning: models[1] (tiny): params.context_length $((train + 1)) is above the $train tokens the model was trained on (llama.context_length); answers past that are usually poor"
	sed -i "s/context_length: $((train + 1))/context_length: $train/; s/, tokens_per_sec: 3//; s/kvcache_mem_mb: 64/tokens_per_sec: 9/" "$BATS_TEST_TMPDIR/ok.yaml"
	run -0 --separate-stderr "$PLOTD" --check-config --config "$BATS_TEST_TMPDIR/ok.yaml"
	assert_equal "$stderr" ""
	# errors: 78 and nothing on stdout
	echo 'not a model' >"$BATS_TEST_TMPDIR/fake.gguf"
	cat >"$BATS_TEST_TMPDIR/bad.yaml" <<-EOF
	daemon: { allow_users: [no-such-user-plot], allow_groups: [no-such-group-plot] }
	models:
	  - { name: a, executor: llm, path: $BATS_TEST_TMPDIR/missing.gguf }
	  - { name: b, executor: llm, path: $BATS_TEST_TMPDIR/fake.gguf }
	EOF
	run -78 --separate-stderr "$PLOTD" --check-config --config "$BATS_TEST_TMPDIR/bad.yaml"
	assert_output ""
	src="plotd: $BATS_TEST_TMPDIR/bad.yaml"
	assert_equal "$stderr" "$src:1:25: daemon.allow_users: no user 'no-such-user-plot'
$src: models[0] (a): path $BATS_TEST_TMPDIR/missing.gguf: No such file or directory
$src: models[1] (b): path $BATS_TEST_TMPDIR/fake.gguf: not a GGUF file (it does not start with \"GGUF\")"
	sed -i 's/allow_users: \[no-such-user-plot\], //' "$BATS_TEST_TMPDIR/bad.yaml"
	run -78 --separate-stderr "$PLOTD" --check-config --config "$BATS_TEST_TMPDIR/bad.yaml"
	[[ "$stderr" == "$src:1:26: daemon.allow_groups: no group 'no-such-group-plot'"$'\n'* ]]
}

@test "the keys of the models.yaml plot replaces are refused, each with what plot uses instead" {
	local key
	for key in max_blocking_threads thread_stack_size persistence hf_id dtype kvcache_mem_gpu; do
		printf 'models:\n  - name: a\n    %s: 1\n' "$key" >"$BATS_TEST_TMPDIR/m.yaml"
		run -78 --separate-stderr "$PLOTD" --check-config --config "$BATS_TEST_TMPDIR/m.yaml"
		[[ "$stderr" == "plotd: $BATS_TEST_TMPDIR/m.yaml:3:5: models[0].$key: not a plot setting: "?* ]]
		# the man page lists it with the same text
		grep -qF "${stderr#*not a plot setting: }" <(sed 's/\\-/-/g' "$BATS_TEST_DIRNAME/../../man/plot.yaml.5")
	done
	printf 'max_blocking_threads: 512\nmodels: [{name: a}]\n' >"$BATS_TEST_TMPDIR/m.yaml"
	run -78 --separate-stderr "$PLOTD" --check-config --config "$BATS_TEST_TMPDIR/m.yaml"
	[[ "$stderr" == *"1:1: max_blocking_threads: not a plot setting: plot has no blocking-thread pool"* ]]
}
