#!/usr/bin/env bats
# plot chat at a terminal and its conversation files (#14): the banner and
# prompt name the model, /? /exit /quit, /set and /clear confirm, Ctrl-C
# clears a line, text typed during an answer is not echoed into it, /save
# and /load keep a conversation (no symbolic links followed), /set min_p and
# /set stop reach the daemon. The tty tests run plot in tmux.

load helpers
load chat-helpers

setup() { chat_setup slow; }
teardown() { chat_teardown; }

@test "tty: the banner and the prompt name the model; /? and /exit; /set and /clear confirm" {
	plotd_start
	tmux_start "'$PLOT' chat"
	wait_until screen_has '^slow> ?$'
	run -0 screen
	assert_line "plot chat with slow: /? for help, /bye or Ctrl-D to leave"
	keys "/?" Enter
	wait_until screen_has '^/save FILE '
	keys "/set temperature 0.5" Enter
	wait_until screen_has '^temperature set to 0.5$'
	keys "/set stop the end" Enter
	wait_until screen_has '^stop string "the end" added \(1 of 16\)$'
	keys "/set system be brief" Enter
	wait_until screen_has '^system prompt set$'
	keys "/set top_p 7" Enter
	wait_until screen_has 'top_p must be in'
	run -1 screen_has '^top_p set to'
	keys "/clear" Enter
	wait_until screen_has '^conversation cleared \(settings kept\)$'
	keys "/model tiny" Enter
	wait_until screen_has '^tiny> ?$'
	keys "/exit" Enter
	wait_until exited
	assert_equal "$(cat "$STATUS")" 0
	tmux_start "'$PLOT' chat -m slow"
	wait_until screen_has '^slow> ?$'
	keys "/quit" Enter
	wait_until exited
	assert_equal "$(cat "$STATUS")" 0
}

@test "tty: Ctrl-C on a line with text clears it and keeps the chat" {
	plotd_start
	tmux_start "'$PLOT' chat -m slow"
	wait_until screen_has '^slow> ?$'
	keys "half a thought"
	wait_until screen_has '^slow> half a thought$'
	keys C-c
	wait_until last_line_is '^slow> ?$'
	! exited
	keys "hi" Enter
	wait_until screen_has '^hi$' # the synthetic model echoes
	wait_until last_line_is '^slow> ?$'
	run -1 screen_has 'half a thought.*hi|^hi.*half'
	keys C-d
	wait_until exited
	assert_equal "$(cat "$STATUS")" 0
}

@test "tty: text typed during an answer is not echoed into it; it waits at the next prompt" {
	plotd_start
	tmux_start "'$PLOT' chat -m slow"
	wait_until screen_has '^slow> ?$'
	keys "one two three four five six seven eight" Enter
	wait_until screen_has '^one two'
	keys "typed ahead"
	wait_until screen_has '^one two three four five six seven eight$'
	wait_until last_line_is '^slow> typed ahead$'
	run -0 screen
	refute_line --partial "eighttyped"
	refute_line --regexp '^one .*typed ahead'
	[ "$(screen | grep -c 'typed ahead')" = 1 ]
	keys C-u C-d
	wait_until exited
}

@test "/save and /load keep a conversation: the next turn sees the loaded one" {
	plotd_start
	wait_until ready tiny
	cd "$BATS_TEST_TMPDIR"
	printf '%s\n/set system be kind\nhello there\n/save conv.json\n' "$TINY_SET" | "$PLOT" chat -m tiny >one
	head -c -1 one >a1
	[ -s a1 ]
	run -0 stat -c %a conv.json
	assert_output 600
	run -0 jq -r '.format, .model, .system, (.messages | length), .messages[0].role, .messages[0].content, .messages[1].role' conv.json
	assert_output "$(printf 'plot-chat-1\ntiny\nbe kind\n2\nuser\nhello there\nassistant')"
	[ "$(jq -j '.messages[1].content' conv.json)" = "$(cat a1)" ]
	# a fresh chat loads it and goes on from it
	printf '%s\n/load conv.json\nthe cat sat\n' "$TINY_SET" | "$PLOT" chat -m tiny >two
	chatref "$TINY_PARAMS" "system:be kind" "user:hello there" "assistant:@a1" "user:the cat sat" >a2
	chatref "$TINY_PARAMS" "user:the cat sat" >a2-alone
	! cmp -s a2 a2-alone
	{ cat a2; echo; } >expect
	cmp expect two
	# the same in YAML, written by hand
	printf 'format: plot-chat-1\nmessages:\n  - {role: user, content: hello there}\n  - role: assistant\n    content: "%s"\nsystem: be kind\n' "$(cat a1)" >conv.yaml
	printf '%s\n/load conv.yaml\nthe cat sat\n' "$TINY_SET" | "$PLOT" chat -m tiny >three
	cmp expect three
}

@test "/save and /load refuse symbolic links and bad files, naming what is wrong" {
	plotd_start
	cd "$BATS_TEST_TMPDIR"
	echo secret >target
	ln -s target link
	run -1 --separate-stderr "$PLOT" chat <<<"/save link"
	assert_equal "$stderr" "plot chat: /save link: a symbolic link; not followed"
	assert_equal "$(cat target)" secret
	run -1 --separate-stderr "$PLOT" chat <<<"/load link"
	assert_equal "$stderr" "plot chat: /load link: a symbolic link; not followed"
	run -1 --separate-stderr "$PLOT" chat <<<"/load missing.json"
	assert_equal "$stderr" "plot chat: /load missing.json: No such file or directory"
	run -2 --separate-stderr "$PLOT" chat <<<"/load"
	assert_equal "$stderr" "plot chat: /load: a file name is needed"
	echo '{"format": "plot-chat-1", "messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]}' >bad.json
	run -2 --separate-stderr "$PLOT" chat <<<"/load bad.json"
	assert_equal "$stderr" "plot chat: /load bad.json: messages[0]: role: expected user (turns alternate, user first)"
	echo '{"messages": []}' >noformat.json
	run -2 --separate-stderr "$PLOT" chat <<<"/load noformat.json"
	assert_equal "$stderr" 'plot chat: /load noformat.json: format: expected "plot-chat-1"'
	echo '{"format": "plot-chat-1", "messages": [' >broken.json
	run -2 --separate-stderr "$PLOT" chat <<<"/load broken.json"
	[[ "$stderr" == "plot chat: /load broken.json: line "* ]]
}

@test "/set min_p and /set stop reach the model; /set stop alone removes them" {
	plotd_start
	wait_until ready tiny
	cd "$BATS_TEST_TMPDIR"
	chatref "$TINY_PARAMS" "user:hello there" >plain
	chatref '{"model": "tiny", "temp": 1, "top_k": 0, "top_p": 1, "seed": 7, "max_tokens": 8, "min_p": 0.3}' "user:hello there" >minp
	! cmp -s plain minp # else min_p could be dropped unseen
	printf '%s\n/set min_p 0.3\nhello there\n' "$TINY_SET" | "$PLOT" chat -m tiny >out
	{ cat minp; echo; } >expect
	cmp expect out
	# a stop string taken from the answer itself cuts it there
	local stop
	stop=$(python3 -c 'import sys; d = open(sys.argv[1], "rb").read().decode(); print(d[len(d)//2:len(d)//2+2], end="")' plain)
	[ -n "$stop" ]
	STOP="$stop" python3 -c 'import json,os; print(json.dumps({"model": "tiny", "temp": 1, "top_k": 0, "top_p": 1, "seed": 7, "max_tokens": 8, "stop": [os.environ["STOP"]]}))' >params
	chatref "$(cat params)" "user:hello there" >cut
	! cmp -s plain cut
	printf '%s\n/set stop %s\nhello there\n' "$TINY_SET" "$stop" | "$PLOT" chat -m tiny >out
	{ cat cut; echo; } >expect
	cmp expect out
	printf '%s\n/set stop %s\n/set stop\nhello there\n' "$TINY_SET" "$stop" | "$PLOT" chat -m tiny >out
	{ cat plain; echo; } >expect
	cmp expect out
	run -2 --separate-stderr "$PLOT" chat <<<"/set min_p 2"
	[[ "$stderr" == *"min_p"*"2"* ]]
}

@test "tty: a queued answer shows its position, erased when the answer starts" {
	plotd_write_config <<-'EOF'
	parking_lot:
	  pool:    { max_running: 1 }
	default_model: slow
	models:
	  - name: slow
	    executor: synthetic
	    params: { tokens_per_sec: 20 }
	EOF
	plotd_start
	local id words
	words=$(seq -s ' ' 1 400)
	id=$("$PLOT" submit -m slow "$words")
	tmux_start "'$PLOT' chat"
	wait_until screen_has '^slow> ?$'
	keys "after the queue" Enter
	wait_until screen_has '^task [0-9]+ queued on slow: position 1 \([0-9]+s\)$'
	run -0 "$PLOT" cancel "$id"
	wait_until screen_has '^after the queue$'
	wait_until last_line_is '^slow> ?$'
	run -1 screen_has 'queued'
}
