#!/usr/bin/env bats
# plot chat: the conversation reaches the model as chat messages with the
# whole context, slash commands are checked, EOF and /bye end it, and on a
# terminal (tmux) Ctrl-C stops an answer, cancelling its task, and the
# history file is never opened through a planted symlink.
#
# The oracle for "the second turn sees the first" is chatref.py, which
# submits the same message list (user, assistant = the first answer, user)
# straight over the protocol; the same list without the first turn must
# give a different answer, so a dropped context cannot pass.

load helpers
load chat-helpers

SMOL="$HOME/.local/share/plot/models/SmolLM2-135M-Instruct.Q4_1.gguf"

setup() { chat_setup tiny; }
teardown() { chat_teardown; }

submitted() { # submitted MODEL: the daemon's count of tasks submitted to MODEL
	rawclient "$PLOT_SOCKET" call stats |
		python3 -c 'import json,sys; print([m["submitted"] for m in json.load(sys.stdin)["models"] if m["name"] == sys.argv[1]][0])' "$1"
}

@test "two turns on stdin: two answers, the second rendered with the first turn" {
	plotd_start
	wait_until ready tiny
	cd "$BATS_TEST_TMPDIR"
	printf '%s\nhello there\n' "$TINY_SET" | "$PLOT" chat -m tiny >one
	head -c -1 one >a1 # the answer without the newline chat adds
	[ -s a1 ]
	printf '%s\nhello there\nthe cat sat\n' "$TINY_SET" | "$PLOT" chat -m tiny >two
	chatref "$TINY_PARAMS" "user:hello there" "assistant:@a1" "user:the cat sat" >a2
	chatref "$TINY_PARAMS" "user:the cat sat" >a2-alone
	! cmp -s a2 a2-alone # else this test could not see a dropped context
	{ cat a1; echo; cat a2; echo; } >expect
	cmp expect two
}

@test "/clear forgets the conversation; /set system goes first" {
	plotd_start
	wait_until ready tiny
	cd "$BATS_TEST_TMPDIR"
	printf '%s\nhello there\n/clear\nthe cat sat\n' "$TINY_SET" | "$PLOT" chat >out
	chatref "$TINY_PARAMS" "user:hello there" >a1
	chatref "$TINY_PARAMS" "user:the cat sat" >a2
	{ cat a1; echo; cat a2; echo; } >expect
	cmp expect out
	printf '%s\n/set system be brief\nthe cat sat\n' "$TINY_SET" | "$PLOT" chat >out
	chatref "$TINY_PARAMS" "system:be brief" "user:the cat sat" >a3
	! cmp -s a2 a3
	{ cat a3; echo; } >expect
	cmp expect out
}

@test "/set values are checked with clear errors (exit 2 on stdin)" {
	plotd_start
	run -2 --separate-stderr "$PLOT" chat <<<"/set top_p 2"
	assert_equal "$stderr" "plot chat: /set: top_p must be in (0, 1], got 2"
	run -2 --separate-stderr "$PLOT" chat <<<"/set temperature -1"
	[[ "$stderr" == *"temperature"*"-1"* ]]
	run -2 --separate-stderr "$PLOT" chat <<<"/set top_k many"
	[[ "$stderr" == *"top_k"*"many"* ]]
	run -2 --separate-stderr "$PLOT" chat <<<"/set max_tokens 0"
	assert_equal "$stderr" "plot chat: /set max_tokens: must be an integer in 1..1048576, got '0'"
	run -2 --separate-stderr "$PLOT" chat <<<"/set seed"
	assert_equal "$stderr" "plot chat: /set seed: a value is needed"
	run -2 --separate-stderr "$PLOT" chat <<<"/set color blue"
	[[ "$stderr" == *"unknown setting 'color'"* ]]
	run -2 --separate-stderr "$PLOT" chat <<<"/frobnicate"
	assert_equal "$stderr" "plot chat: unknown command '/frobnicate' (try /help)"
	# a good value is taken: nothing printed, and the chat goes on to EOF
	run -0 --separate-stderr "$PLOT" chat <<<"/set top_p 0.5"
	assert_equal "$stderr" ""
	assert_output ""
}

@test "/model and -m refuse an unknown model, accept a known one" {
	plotd_start
	run -1 --separate-stderr "$PLOT" chat <<<"/model nope"
	assert_equal "$stderr" "plot chat: error: no model named 'nope' (models: tiny, slow)"
	run -1 --separate-stderr "$PLOT" chat -m nope </dev/null
	assert_equal "$stderr" "plot chat: error: no model named 'nope' (models: tiny, slow)"
	# the same words and status as every other command that takes a model
	run -1 --separate-stderr "$PLOT" run -m nope hello
	assert_equal "$stderr" "plot run: error: no model named 'nope' (models: tiny, slow)"
	run -1 --separate-stderr "$PLOT" queue -m nope
	assert_equal "$stderr" "plot queue: error: no model named 'nope' (models: tiny, slow)"
	run -1 --separate-stderr "$PLOT" cancel --all -m nope
	assert_equal "$stderr" "plot cancel: error: no model named 'nope' (models: tiny, slow)"
	run -0 --separate-stderr "$PLOT" chat <<<$'/model slow\n/stats'
	assert_line --regexp '^model +slow$'
}

@test "EOF and /bye end the chat with 0; /bye ignores what follows" {
	plotd_start
	run -0 --separate-stderr "$PLOT" chat </dev/null
	assert_output ""
	assert_equal "$stderr" ""
	run -0 --separate-stderr "$PLOT" chat -m slow <<<$'/bye\nnever sent'
	assert_output ""
	run -0 submitted slow
	assert_output 0
	run -0 --separate-stderr "$PLOT" chat -m slow <<<$'hi\n/bye\nnever sent'
	assert_output "hi"
	run -0 submitted slow
	assert_output 1
}

@test "a no-daemon chat exits 69" {
	run -69 "$PLOT" chat </dev/null
}

# ---- on a terminal ---------------------------------------------------------

@test "tty: Ctrl-C stops an answer and cancels its task; /bye exits 0; history is 0600" {
	command -v tmux >/dev/null || skip "tmux is not installed (.ci/deps installs it)"
	plotd_start
	tmux_start "'$PLOT' --verbose chat -m slow"
	wait_until screen_has '^slow> ?$'
	tmux -S "$TMUX_SOCK" send-keys "one two three four five six seven eight nine ten eleven twelve" Enter
	wait_until screen_has '^one two'
	tmux -S "$TMUX_SOCK" send-keys C-c
	wait_until last_line_is '^slow> ?$'
	run -0 screen
	assert_line --regexp '^\[task [0-9]+: [0-9]+ tokens, time to first token [0-9.]+ s, [0-9.]+ tok/s, stopped\]$'
	local id
	id=$(screen | sed -n 's/^\[task \([0-9]*\):.*/\1/p')
	run -0 rawclient "$PLOT_SOCKET" call status "{\"task\": $id}"
	assert_output --partial '"state": 4,' # cancelled (rawclient.STATES)
	tmux -S "$TMUX_SOCK" send-keys "/stats" Enter
	wait_until screen_has '^answers +1 \(1 stopped\)$'
	tmux -S "$TMUX_SOCK" send-keys "/bye" Enter
	wait_until exited
	assert_equal "$(cat "$STATUS")" 0
	run -0 stat -c %a "$XDG_STATE_HOME/plot/history"
	assert_output 600
	run -0 cat "$XDG_STATE_HOME/plot/history"
	assert_line "/bye"
	assert_line --partial "one two three"
}

@test "tty: a symlink planted at the history file is not followed; chat goes on without history" {
	command -v tmux >/dev/null || skip "tmux is not installed (.ci/deps installs it)"
	plotd_start
	mkdir -p -m 0700 "$XDG_STATE_HOME/plot"
	echo precious >"$BATS_TEST_TMPDIR/victim"
	ln -s "$BATS_TEST_TMPDIR/victim" "$XDG_STATE_HOME/plot/history"
	tmux_start "'$PLOT' chat -m slow"
	wait_until screen_has "no history: cannot create $XDG_STATE_HOME/plot/history"
	wait_until screen_has '^slow> ?$'
	tmux -S "$TMUX_SOCK" send-keys "/bye" Enter
	wait_until exited
	assert_equal "$(cat "$STATUS")" 0
	assert_equal "$(cat "$BATS_TEST_TMPDIR/victim")" precious
	[ -L "$XDG_STATE_HOME/plot/history" ]
}

@test "tty: Ctrl-C twice at the empty prompt exits 130; Ctrl-D exits 0" {
	command -v tmux >/dev/null || skip "tmux is not installed (.ci/deps installs it)"
	plotd_start
	tmux_start "'$PLOT' chat -m slow"
	wait_until screen_has '^slow> ?$'
	tmux -S "$TMUX_SOCK" send-keys C-c
	wait_until screen_has '^\(Ctrl-C again, Ctrl-D or /bye to leave\)$'
	! exited
	tmux -S "$TMUX_SOCK" send-keys C-c
	wait_until exited
	assert_equal "$(cat "$STATUS")" 130
	tmux_start "'$PLOT' chat -m slow"
	wait_until screen_has '^slow> ?$'
	tmux -S "$TMUX_SOCK" send-keys C-d
	wait_until exited
	assert_equal "$(cat "$STATUS")" 0
}

# ---- the real model --------------------------------------------------------

@test "SmolLM2: the second chat turn sees the first" {
	[ -f "$SMOL" ] || skip "SmolLM2 is not installed (make models)"
	plotd_write_config <<-EOF
	models:
	  - name: smol
	    executor: llm
	    path: $SMOL
	    params: { kvcache_mem_mb: 64 }
	EOF
	plotd_start
	wait_until -t 60 ready smol
	local set=$'/set temperature 0\n/set max_tokens 30'
	# Alone, the question cannot be answered...
	run -0 --separate-stderr "$PLOT" chat -m smol <<<"$set"$'\nWhat is the secret code?'
	refute_output --partial 4242
	# ...after the first turn it is (the output is answer 1, then answer 2).
	cd "$BATS_TEST_TMPDIR"
	"$PLOT" chat -m smol <<<"$set"$'\nThe secret code is 4242.' >one
	"$PLOT" chat -m smol <<<"$set"$'\nThe secret code is 4242.\nWhat is the secret code?' >two
	cmp -n "$(stat -c %s one)" one two # the same first answer
	run -0 tail -c +"$(($(stat -c %s one) + 1))" two
	assert_output --partial 4242
}

@test "plot run sends its prompt as one user turn; --raw sends it as plain text" {
	plotd_start
	wait_until ready tiny
	run -0 --separate-stderr "$PLOT" run -m tiny --temperature 1 --seed 11 -n 12 "the cat sat"
	templated=$output
	chatref '{"temp": 1, "seed": 11, "max_tokens": 12}' "user:the cat sat" >ref
	assert_equal "$templated" "$(cat ref)"
	# --raw skips the template: fewer prompt tokens, as plotd logs them.
	run -0 --separate-stderr "$PLOT" run -m tiny --raw --temperature 1 --seed 11 -n 12 "the cat sat"
	wait_until prompt_token_counts_ge 3
	read -r t1 t2 raw <<<"$(prompt_token_counts | tr '\n' ' ')"
	assert_equal "$t1" "$t2"      # plot run and the chat message: same prompt
	[ "$raw" -lt "$t1" ]          # the raw prompt has no template around it
}

prompt_token_counts() {
	sed -nE 's/.*task [0-9]+ submitted \(([0-9]+) prompt tokens.*/\1/p' "$PLOTD_STDERR"
}
prompt_token_counts_ge() {
	[ "$(prompt_token_counts | wc -l)" -ge "$1" ]
}

@test "/set takes the penalties, in the sampler's ranges" {
	plotd_start
	run -2 --separate-stderr "$PLOT" chat <<<"/set repetition_penalty 0"
	assert_equal "$stderr" "plot chat: /set: repetition_penalty must be in (0, 10], got 0"
	run -2 --separate-stderr "$PLOT" chat <<<"/set frequency_penalty 3"
	[[ "$stderr" == *"frequency_penalty must be in [-2, 2], got 3"* ]]
	run -0 --separate-stderr "$PLOT" chat -m slow <<<$'/set repetition_penalty 1.2\n/set frequency_penalty -0.5\n/set presence_penalty 1.5\n/set penalty_last_n 32\nhi\n/stats'
	assert_line --regexp '^repetition_penalty +1.2$'
	assert_line --regexp '^frequency_penalty +-0.5$'
	assert_line --regexp '^presence_penalty +1.5$'
	assert_line --regexp '^penalty_last_n +32$'
	assert_line 'hi'
	# what /set did not set shows the model's generate.* value
	assert_line --regexp '^temperature +0.8 \(model default\)$'
	assert_line --regexp '^top_k +40 \(model default\)$'
	assert_line --regexp '^max_tokens +until the end of the text or context \(model default\)$'
	run -0 --separate-stderr "$PLOT" chat -m slow <<<$'/set temperature 0.3\n/stats'
	assert_line --regexp '^temperature +0.3$'
	# what nothing set is shown as it is in effect, never "daemon default"
	assert_line --regexp '^seed +random \(a new one each answer\)$'
	assert_line --regexp '^repetition_penalty +1 \(off\)$'
	assert_line --regexp '^frequency_penalty +0 \(off\)$'
	assert_line --regexp '^presence_penalty +0 \(off\)$'
	assert_line --regexp '^penalty_last_n +64 \(default\)$'
	refute_output --partial 'daemon default'
	# without -m, /stats names the default model
	run -0 --separate-stderr "$PLOT" chat <<<'/stats'
	assert_line --regexp '^model +tiny \(the default\)$'
}

@test "/stats shows the model's running-task timeout as plotd has it" {
	plotd_start
	local want
	want=$("$PLOT" --json stats -m slow | jq -r '.models[0].timeout_secs')
	run -0 --separate-stderr "$PLOT" chat -m slow <<<'/stats'
	if [ "$want" = 0 ]; then
		assert_line --regexp '^timeout +none \(model default\)$'
	else
		assert_line --regexp "^timeout +$want s \\(model default\\)$"
	fi
	run -0 "$PLOT" limits set -m slow timeout_secs=90
	run -0 --separate-stderr "$PLOT" chat -m slow <<<'/stats'
	assert_line --regexp '^timeout +90 s \(model default\)$'
	run -0 --separate-stderr "$PLOT" chat <<<'/stats' # the default model, tiny
	assert_line --regexp '^timeout +'
	refute_line --partial 'did not say'
}
