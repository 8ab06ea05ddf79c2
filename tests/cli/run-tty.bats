#!/usr/bin/env bats
# plot run on a terminal (#14): while plotd starts or the task waits in the
# queue a one-line status shows on stderr and is erased before the first
# token; nothing of it on a pipe. --verbose sums the run up; with no prompt
# and a terminal on stdin, plot says it reads the prompt from there.
#
# `script` gives plot a pseudo-terminal and records every byte written to
# it, erased lines included, so a status that flashes by is still seen in
# the typescript; tmux shows what is left on the screen.

load helpers
load cli-helpers

setup() {
	plot_setup
	TMUX_SOCKS=()
	plotd_write_config <<-'EOF'
	parking_lot:
	  pool:    { max_running: 1 }
	default_model: echo
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: 1000 }
	  - name: slow
	    executor: synthetic
	    params: { tokens_per_sec: 20 }
	EOF
}

teardown() {
	local t
	for t in "${TMUX_SOCKS[@]}"; do
		tmux -S "$t" kill-server 2>/dev/null || true
	done
	plot_teardown
}

in_pty() { # in_pty TYPESCRIPT CMD...: run CMD on a pseudo-terminal, record it
	local ts="$1"
	shift
	script -qefc "$(printf '%q ' "$@")" "$ts" </dev/null >/dev/null
}

@test "tty: a queued task shows its position until its first token, then only the answer" {
	plotd_start
	submit -m slow "$(words 400)"
	wait_until state_is "$ID" running
	in_pty "$BATS_TEST_TMPDIR/ts" "$PLOT" run -m slow "after the queue" &
	local pid=$!
	wait_until grep -q 'queued on slow: position 1' "$BATS_TEST_TMPDIR/ts"
	run -0 "$PLOT" cancel "$ID"
	wait "$pid"
	run -0 cat "$BATS_TEST_TMPDIR/ts"
	assert_output --regexp $'\r\e\\[Ktask [0-9]+ queued on slow: position 1 \\([0-9]+s\\)'
	# erased before the answer (a "running" status may come in between)
	assert_output --regexp $'\r\e\\[Kafter the queue'
	refute_output --regexp $'queued on slow: position 1 \\([0-9]+s\\)after'
}

@test "no status on a pipe or a file, nor with -q" {
	plotd_start
	submit -m slow "$(words 400)"
	wait_until state_is "$ID" running
	"$PLOT" run -m slow "after the queue" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	local pid=$!
	in_pty "$BATS_TEST_TMPDIR/quiet" "$PLOT" -q run -m slow "quiet one" &
	local qpid=$!
	wait_until stat_is slow queued 2
	# a control on a terminal, queued after both: once it has shown its
	# status, the two others had the time to show theirs
	in_pty "$BATS_TEST_TMPDIR/control" "$PLOT" run -m slow "control" &
	local cpid=$!
	wait_until grep -q 'queued on slow: position 3' "$BATS_TEST_TMPDIR/control"
	run -0 "$PLOT" cancel "$ID"
	wait "$pid"
	wait "$qpid"
	wait "$cpid"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/out")" "after the queue"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/err")" ""
	run -0 cat "$BATS_TEST_TMPDIR/quiet"
	refute_output --partial queued
	assert_output --partial "quiet one"
}

@test "tty: autostart says plotd is starting, then erases it" {
	unset PLOT_NO_AUTOSTART
	in_pty "$BATS_TEST_TMPDIR/ts" "$PLOT" --config "$PLOT_CONFIG" run "auto started"
	plot_kill_later "$("$PLOT" --json daemon status | jq -r .pid)"
	run -0 cat "$BATS_TEST_TMPDIR/ts"
	assert_output --regexp $'\r\e\\[Kstarting plotd \\(pid [0-9]+\\) on [^\r]*\r\e\\[K'
	assert_output --regexp $'\r\e\\[Kauto started'
	run -0 "$PLOT" daemon stop
}

@test "run --verbose ends with the task id, time to first token, tokens and tok/s" {
	plotd_start
	run -0 --separate-stderr "$PLOT" --verbose run -m slow "one two three four"
	assert_output "one two three four"
	[[ "$stderr" =~ ^\[task\ [0-9]+:\ 4\ tokens,\ time\ to\ first\ token\ [0-9]+\.[0-9]{3}\ s,\ [0-9]+\.[0-9]\ tok/s\]$ ]]
	run -0 --separate-stderr "$PLOT" run -m slow "one two"
	assert_equal "$stderr" ""
}

@test "tty: run with no prompt says it reads the prompt from stdin; a pipe does not" {
	tmux_sock="$BATS_TEST_TMPDIR/tmux.sock"
	TMUX_SOCKS+=("$tmux_sock")
	plotd_start
	tmux -S "$tmux_sock" -f /dev/null new-session -d -x 100 -y 20 \
		"env PLOT_SOCKET='$PLOT_SOCKET' PLOT_NO_AUTOSTART=1 NO_COLOR=1 '$PLOT' run; echo status=\$?; sleep 600"
	wait_until eval 'tmux -S "$tmux_sock" capture-pane -p | grep -q "^plot run: reading the prompt from stdin; end it with Ctrl-D$"'
	tmux -S "$tmux_sock" send-keys "typed prompt" Enter C-d
	wait_until eval 'tmux -S "$tmux_sock" capture-pane -p | grep -q "^status=0$"'
	run -0 tmux -S "$tmux_sock" capture-pane -p
	assert_line "typed prompt" # the echo of the input, then the answer
	[ "$(tmux -S "$tmux_sock" capture-pane -p | grep -c '^typed prompt$')" = 2 ]
	run -0 --separate-stderr "$PLOT" run <<<"piped prompt"
	assert_output "piped prompt"
	assert_equal "$stderr" ""
}
