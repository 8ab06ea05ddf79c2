#!/usr/bin/env bats
# Every request field is checked before anything acts on it: the codec's
# schema table says presence, type, range; strings with an embedded NUL and
# keys given twice are refused. A bad field is INVALID, the connection and
# the daemon go on. Run under the sanitized build by `make SAN=... cli`.

load helpers

: "${PLOT_TESTBIN:=$BATS_TEST_DIRNAME/../../build/cc/tests}"
TORTURE="$PLOT_TESTBIN/proto-torture"

setup() { plot_setup; }
teardown() { plot_teardown; }

@test "the torture client walks every request type and field: all INVALID" {
	[ -x "$TORTURE" ] || fail "$TORTURE is not built (make $TORTURE)"
	plotd_start
	run -0 "$TORTURE" "$PLOT_SOCKET"
	# the count is the schema's: at least a case per field and type
	[[ "$output" =~ ^([0-9]+)\ cases,\ all\ INVALID$ ]] || fail "$output"
	((BASH_REMATCH[1] > 200))
	plotd_alive
	run -0 rawclient "$PLOT_SOCKET" call ping
}

@test "limits_set with a key/value item lacking its key or value is INVALID, no crash" {
	plotd_start
	run -1 rawclient "$PLOT_SOCKET" call limits_set '{"kv": [{"v": "4"}]}'
	assert_output --partial '"code": "INVALID"'
	assert_output --partial "kv[0].k': missing"
	run -1 rawclient "$PLOT_SOCKET" call limits_set '{"kv": [{"k": "max_units"}]}'
	assert_output --partial "kv[0].v': missing"
	run -1 rawclient "$PLOT_SOCKET" call limits_set '{}'
	assert_output --partial "'kv': missing"
	plotd_alive
}

@test "an embedded NUL is refused, not cut" {
	plotd_start
	run -1 rawclient "$PLOT_SOCKET" call submit '{"prompt": "ab\u0000cd"}'
	assert_output --partial '"code": "INVALID"'
	assert_output --partial "field 'prompt': embedded NUL at byte 2"
}

@test "a tiny positive deadline expires; zero is refused" {
	plotd_write_config <<-'EOF2'
	models:
	  - { name: echo, executor: synthetic, params: { tokens_per_sec: 10 } }
	EOF2
	plotd_start
	run -0 rawclient "$PLOT_SOCKET" submit "a b c d e f" '{"deadline": 5e-324, "detach": true}'
	task=$output
	run -0 rawclient "$PLOT_SOCKET" call result "{\"task\": $task, \"wait\": true}"
	assert_output --regexp '"state": [56],'
	run -1 rawclient "$PLOT_SOCKET" call submit '{"prompt": "x", "deadline": 0}'
	assert_output --partial "field 'deadline'"
	assert_output --partial "out of range"
}

@test "an empty queue reply carries tasks: []" {
	plotd_start
	run -0 rawclient "$PLOT_SOCKET" call queue
	assert_output --partial '"tasks": []'
}
