# chat-helpers.bash — what the chat tests (cli-chat.bats, chat-ux.bats)
# share: their daemon (the tiny llm fixture and a slow synthetic model), the
# sampling that makes tiny's answers reproducible, the chatref.py oracle, and
# plot run in a tmux server per test for the terminal cases.
#
#   load helpers
#   load chat-helpers
#   setup() { chat_setup DEFAULT_MODEL; }
#   teardown() { chat_teardown; }

TINY_PARAMS='{"model": "tiny", "temp": 1, "top_k": 0, "top_p": 1, "seed": 7, "max_tokens": 8}'
TINY_SET=$'/set temperature 1\n/set top_k 0\n/set top_p 1\n/set seed 7\n/set max_tokens 8'

chat_setup() { # chat_setup DEFAULT_MODEL
	plot_setup
	TMUX_SOCKS=()
	export XDG_STATE_HOME="$BATS_TEST_TMPDIR/state"
	TINY="$BATS_TEST_DIRNAME/../fixtures/llm-exec-tiny.gguf"
	plotd_write_config <<-EOF
	default_model: $1
	models:
	  - name: tiny
	    executor: llm
	    path: $TINY
	    params: { kvcache_mem_mb: 1, block_size: 16, max_num_seqs: 8, max_batch_tokens: 32 }
	  - name: slow
	    executor: synthetic
	    params: { tokens_per_sec: 5 }
	EOF
}

tmux_teardown() { # kill this test's tmux servers, then plotd
	local t
	for t in "${TMUX_SOCKS[@]}"; do
		tmux -S "$t" kill-server 2>/dev/null || true
	done
	plot_teardown
}
chat_teardown() { tmux_teardown; }

ready() { # ready MODEL
	rawclient "$PLOT_SOCKET" call models |
		python3 -c 'import json,sys; sys.exit(0 if [m for m in json.load(sys.stdin)["models"] if m["name"] == sys.argv[1] and m["state"] == "ready"] else 1)' "$1"
}

chatref() { # chatref PARAMS_JSON ROLE:CONTENT...
	python3 "$PLOT_TESTS_DIR/chatref.py" "$PLOT_SOCKET" "$@"
}

tmux_start() { # tmux_start CMD: run CMD in a fresh tmux server of this test
	TMUX_N=$((${TMUX_N:-0} + 1))
	TMUX_SOCK="$BATS_TEST_TMPDIR/tmux.$TMUX_N.sock"
	STATUS="$BATS_TEST_TMPDIR/status.$TMUX_N"
	TMUX_SOCKS+=("$TMUX_SOCK")
	tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -x 100 -y 30 \
		"env PLOT_SOCKET='$PLOT_SOCKET' XDG_STATE_HOME='$XDG_STATE_HOME' PLOT_NO_AUTOSTART=1 NO_COLOR=1 HOME='$BATS_TEST_TMPDIR' $1; echo \$? >'$STATUS'; sleep 600"
}
screen() { tmux -S "$TMUX_SOCK" capture-pane -p; }
screen_has() { screen | grep -qE -- "$1"; }
last_line_is() { [[ "$(screen | sed '/^$/d' | tail -n 1)" =~ $1 ]]; }
exited() { [ -s "$STATUS" ]; }
keys() { tmux -S "$TMUX_SOCK" send-keys "$@"; }
