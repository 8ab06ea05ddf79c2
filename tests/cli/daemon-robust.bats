#!/usr/bin/env bats
# plotd survives any client: pipelined requests are all answered in order,
# a connection's streams are all cancelled when it drops, pending output of
# all clients together is capped (daemon.max_output_mb), partial frames
# time out and all of them together are bounded in memory, and at the fd
# limit accept backs off with one log line and no spin.

load helpers

setup() { plot_setup; }
teardown() { plot_teardown; }

@test "20,000 pipelined requests on one connection get 20,000 replies in order" {
	plotd_start --max-client-output 16384
	# without resuming buffered frames after the output drains this stalls
	# for a tick (250 ms) per 16 KiB of replies: minutes, not seconds
	run -0 timeout 20 python3 "$PLOT_TESTS_DIR/rawclient.py" --timeout 15 "$PLOT_SOCKET" \
		pipeline 20000 config
	assert_output "20000 replies in order"
	plotd_alive
}

@test "a connection that opened 64 streams and dropped gets all 64 cancelled" {
	plotd_write_config <<-'EOF2'
	parking_lot:
	  pool:    { max_running: 2 }
	  limits:  { max_queue_depth: 1000 }
	daemon:    { log_level: info }
	models:
	  - { name: echo, executor: synthetic, params: { tokens_per_sec: 5 } }
	EOF2
	plotd_start
	run -0 rawclient "$PLOT_SOCKET" streams 64
	[ "$(wc -w <<<"$output")" = 64 ]
	cancelled() {
		[ "$(grep -c 'cancelled: its run client .* disconnected' "$PLOTD_STDERR")" = 64 ]
	}
	wait_until cancelled
	run -0 rawclient "$PLOT_SOCKET" call stats
	assert_output --partial '"cancelled": 64'
	assert_output --partial '"queued": 0'
	assert_output --partial '"running": 0'
}

@test "output of all clients past daemon.max_output_mb drops a subscriber, the task completes" {
	plotd_write_config <<-'EOF2'
	daemon: { log_level: info, max_output_mb: 1 }
	models:
	  - { name: echo, executor: synthetic, params: { tokens_per_sec: 0 } }
	EOF2
	# the per-connection cap (64 MiB) is never reached: only the total can
	# drop this client, whose 4 streams of ~800 KB each it never reads
	plotd_start --max-client-output 67108864
	run -0 rawclient "$PLOT_SOCKET" noread 270000 4
	assert_line --index 0 --regexp '^[0-9]+$'
	assert_line --index 1 dropped
	task=${lines[0]}
	plotd_log_has "dropped: plotd's pending output of all clients is over daemon.max_output_mb \\(1 MiB\\)"
	run -0 rawclient "$PLOT_SOCKET" call result "{\"task\": $task, \"wait\": true}"
	assert_output --partial '"state": 2'
	run -0 rawclient "$PLOT_SOCKET" call ping
}

rss_kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }

@test "200 stalled partial frames: memory bounded by max_input_mb, all time out" {
	plotd_write_config <<-'EOF2'
	daemon: { log_level: info, frame_timeout_secs: 1, max_input_mb: 16 }
	models:
	  - { name: echo, executor: synthetic }
	EOF2
	# ASan's quarantine would hold freed buffers and blur the figure
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1" plotd_start
	local before after
	before=$(rss_kib "$PLOTD_PID" VmRSS)
	run -0 timeout 60 python3 "$PLOT_TESTS_DIR/rawclient.py" --timeout 20 "$PLOT_SOCKET" \
		partial 200 1048576
	assert_line --index 0 ready
	assert_line --index 1 "200 closed"
	after=$(rss_kib "$PLOTD_PID" VmHWM)
	echo "# RSS before ${before} KiB, peak ${after} KiB" >&3
	# 16 MiB of input buffers, plus slack for allocator rounding
	((after - before < 40 * 1024)) || fail "peak RSS grew by $(((after - before) / 1024)) MiB"
	plotd_log_has "was not completed within daemon.frame_timeout_secs"
	plotd_log_has "over daemon.max_input_mb"
	run -0 rawclient "$PLOT_SOCKET" call ping
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

@test "at the fd limit accept backs off: one log line, no spin, service resumes" {
	# plotd with 64 fds; 80 clients exhaust them
	(ulimit -n 64 && exec "$PLOTD" --config "$PLOT_CONFIG" --socket "$PLOT_SOCKET" \
		--pid-file "$BATS_TEST_TMPDIR/plotd.pid" </dev/null \
		>>"$BATS_TEST_TMPDIR/plotd.stdout" 2>>"$PLOTD_STDERR" 3>&-) &
	PLOTD_PID=$!
	wait_until test -S "$PLOT_SOCKET"
	wait_until rawclient "$PLOT_SOCKET" call ping
	coproc HOLD { python3 "$PLOT_TESTS_DIR/rawclient.py" "$PLOT_SOCKET" hold 80; }
	local line
	read -r line <&"${HOLD[0]}"
	[ "$line" = "held 80" ] || fail "hold: $line"
	wait_log "accept: Too many open files"
	local t0 t1
	t0=$(cpu_ticks "$PLOTD_PID")
	# a client waits in the backlog meanwhile; bounded: it must not be answered yet
	run -124 timeout 1 python3 "$PLOT_TESTS_DIR/rawclient.py" "$PLOT_SOCKET" call ping
	t1=$(cpu_ticks "$PLOTD_PID")
	# 1 s of wall time: a spinning accept loop burns ~100 ticks
	(((t1 - t0) < 20)) || fail "plotd used $((t1 - t0)) ticks of CPU in 1 s at the fd limit"
	[ "$(grep -c 'accept: Too many open files' "$PLOTD_STDERR")" = 1 ]
	exec {HOLD[1]}>&-
	wait "$HOLD_PID" || true
	run -0 rawclient "$PLOT_SOCKET" call ping
	plotd_log_has "accept: accepting connections again"
}
