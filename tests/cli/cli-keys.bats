#!/usr/bin/env bats
# "The CLI never sends an unknown request key silently" (#14): plotd ignores
# a key its schema does not know (room for a newer peer's additions) and
# says so at log level debug. Every option of every command that talks to
# plotd is used here once, and the log must name no unknown key; a raw
# client's misspelt key shows the check sees one. A new option of these
# commands fails the option lists below until it is added to its command
# line here.

load helpers
load cli-helpers

setup() {
	plot_setup
	cli_config
	TINY="$BATS_TEST_DIRNAME/../fixtures/llm-exec-tiny.gguf"
}
teardown() { cli_teardown; }

# the long options `plot help CMD` lists, sorted, on one line
help_opts() {
	"$PLOT" help "$1" | sed -n 's/^ *\(-[a-zA-Z], \)\{0,1\}--\([a-z-]*\).*/\2/p' | sort | tr '\n' ' '
}

slow_unloaded() {
	[ "$("$PLOT" --json models | jq -r '.models[] | select(.name == "slow") | .state')" = unloaded ]
}

unknown_logged() { grep -E 'ignored [0-9]+ unknown keys?' "$PLOTD_STDERR"; }

@test "a key plotd does not know is logged at debug level, also inside a chat message" {
	plotd_start
	run -0 rawclient "$PLOT_SOCKET" submit "hi" '{"temprature": 0.5}'
	wait_log "client [0-9]+: submit: ignored 1 unknown key, the first 'temprature'"
	run -0 rawclient "$PLOT_SOCKET" call submit \
		'{"msgs": [{"role": "user", "content": "hi", "nmae": "x"}], "detach": true, "a": 1}'
	wait_log "submit: ignored 2 unknown keys, the first 'msgs\[0\]\.nmae'"
	run -0 rawclient "$PLOT_SOCKET" call stats '{"model": "echo", "wide": true}'
	wait_log "stats: ignored 1 unknown key, the first 'wide'"
}

@test "every option of every command sends only keys plotd knows" {
	assert_equal "$(help_opts run)" "cost deadline detach frequency-penalty key max-tokens min-p model penalty-last-n presence-penalty priority raw repetition-penalty seed stop temperature top-k top-p "
	assert_equal "$(help_opts submit)" "cost deadline frequency-penalty key max-tokens min-p model penalty-last-n presence-penalty priority raw repetition-penalty seed stop temperature top-k top-p "
	assert_equal "$(help_opts tail)" "no-follow "
	assert_equal "$(help_opts result)" "wait "
	assert_equal "$(help_opts wait)" "all model timeout "
	assert_equal "$(help_opts cancel)" "all model wait "
	assert_equal "$(help_opts queue)" "model state watch "
	assert_equal "$(help_opts list)" "limit model owner since state "
	assert_equal "$(help_opts stats)" "model prometheus watch wide "
	assert_equal "$(help_opts limits)" "model "
	assert_equal "$(help_opts models)" "name "
	assert_equal "$(help_opts ps)" ""
	assert_equal "$(help_opts daemon)" "now timeout "
	plotd_start
	local sampling=(-m echo -p high -n 3 --temperature 0.5 --top-k 5 --top-p 0.9 --min-p 0.1
		--repetition-penalty 1.1 --frequency-penalty 0.5 --presence-penalty -0.5
		--penalty-last-n 16 --seed 7 --stop zz --stop yy --deadline 60 --cost 1 --raw)
	run -0 "$PLOT" run "${sampling[@]}" --key k1 "a b c d"
	assert_output --regexp "^a b c ?$"
	run -0 "$PLOT" run "${sampling[@]}" --key k2 --detach "a b c d"
	local detached=$output
	run -0 "$PLOT" --json run "${sampling[@]}" --key k3 "a b c d"
	submit "${sampling[@]}" --key k4 "e f g h"
	# chat's /set keys, as its usage lists them, are all used below
	run -2 --separate-stderr "$PLOT" chat -m echo <<<'/set'
	assert_equal "$stderr" "plot chat: /set: usage: /set temperature|top_p|top_k|min_p|max_tokens|seed|stop|system|repetition_penalty|frequency_penalty|presence_penalty|penalty_last_n VALUE"
	run -0 --separate-stderr "$PLOT" chat -m echo <<-'EOF'
	/set temperature 0.5
	/set top_p 0.9
	/set top_k 5
	/set min_p 0.1
	/set max_tokens 3
	/set seed 7
	/set stop zz
	/set system be brief
	/set repetition_penalty 1.1
	/set frequency_penalty 0.5
	/set presence_penalty 0.5
	/set penalty_last_n 16
	hello there
	/model slow
	/stats
	EOF
	"$PLOT" result --wait "$detached" >/dev/null
	"$PLOT" tail "$ID" >/dev/null
	"$PLOT" tail --no-follow "$ID" >/dev/null
	"$PLOT" status "$ID" >/dev/null
	"$PLOT" --json status "$ID" >/dev/null
	"$PLOT" result "$ID" >/dev/null
	"$PLOT" wait "$ID" >/dev/null
	"$PLOT" wait --all -m echo --timeout 5 >/dev/null
	submit -m slow "$(words 200)"
	"$PLOT" cancel "$ID" >/dev/null
	submit -m slow "$(words 200)"
	"$PLOT" cancel --all -m slow --wait >/dev/null
	"$PLOT" queue -m echo --state done >/dev/null
	"$PLOT" list -m echo --state done --owner "$(id -un)" --since 3600 --limit 5 >/dev/null
	"$PLOT" stats -m echo >/dev/null
	"$PLOT" stats --wide >/dev/null
	"$PLOT" stats --prometheus >/dev/null
	"$PLOT" --json stats >/dev/null
	"$PLOT" limits -m echo >/dev/null
	"$PLOT" limits set -m echo max_queue_depth=50 >/dev/null
	"$PLOT" models >/dev/null
	"$PLOT" ps >/dev/null
	"$PLOT" models unload slow >/dev/null
	wait_until slow_unloaded
	"$PLOT" models load slow >/dev/null
	"$PLOT" models load --name t2 "$TINY" >/dev/null
	"$PLOT" config >/dev/null
	"$PLOT" daemon status >/dev/null
	"$PLOT" --json daemon status >/dev/null
	# the requests reached plotd: its submits are in the log
	[ "$(grep -c 'pool echo: task [0-9]* submitted' "$PLOTD_STDERR")" -ge 5 ]
	run -0 "$PLOT" daemon stop --timeout 10
	PLOTD_PID=""
	run -1 unknown_logged
	assert_output ""
}
