# pg-helpers.bash — plotd daemons on one PostgreSQL database, for the bats
# files of the shared queue (daemon-pg.bats, daemon-pg-http.bats).
#
# Needs a server: make cli runs the bats files under tests/tools/pg-cluster.sh
# run (CI's cluster, or one started for the run), which exports PGHOST,
# PGPORT, PGUSER and PLOT_PG_DIR. Without them these tests FAIL, never skip.
# Each test gets its own database (createdb), each daemon its own socket,
# config and XDG_STATE_HOME (under $BATS_TEST_TMPDIR/dN, its log in dN/err).
# Leases are short (lease_ms 600: a heartbeat every 200 ms) unless
# $PGD_LEASE_MS says otherwise.

PGD_ARGS=()

setup_file() {
	[ -n "${PGHOST:-}" ] && [ -n "${PLOT_PG_DIR:-}" ] || {
		echo "# no PostgreSQL cluster: run under tests/tools/pg-cluster.sh run" >&2
		return 1
	}
}

setup() {
	plot_setup
	PGDB="plot_t${BATS_SUITE_TEST_NUMBER}_$$"
	createdb "$PGDB"
	PGD_PIDS=()
}

teardown() {
	local i ok=0
	for i in "${!PGD_PIDS[@]}"; do
		[ -n "${PGD_PIDS[$i]}" ] || continue
		kill -INT "${PGD_PIDS[$i]}" 2>/dev/null || true
		kill -INT "${PGD_PIDS[$i]}" 2>/dev/null || true
	done
	for i in "${!PGD_PIDS[@]}"; do
		[ -n "${PGD_PIDS[$i]}" ] || continue
		PLOTD_PID=${PGD_PIDS[$i]}
		wait_until plotd_gone || { kill -KILL "$PLOTD_PID"; ok=1; }
		wait "$PLOTD_PID" 2>/dev/null || { [ $? -lt 128 ] || ok=1; }
		assert_no_sanitizer "$BATS_TEST_TMPDIR/d$i/err" || ok=1
	done
	PLOTD_PID=""
	plot_teardown || ok=1
	dropdb --if-exists "$PGDB" 2>/dev/null || true
	return $ok
}

# pgd_config N UNITS [TOKENS_PER_SEC] [DEPTH]: daemon N's config ($PGD_LEASE_MS
# overrides the lease).
pgd_config() {
	local n=$1 units=$2 tps=${3:-1000} depth=${4:-100} d="$BATS_TEST_TMPDIR/d$1"
	mkdir -p -m 700 "$d"
	cat >"$d/plot.yaml" <<-EOF
	parking_lot:
	  pool:    { max_running: 8 }
	  limits:  { max_units: $units, max_queue_depth: $depth, timeout_secs: 120 }
	  queue:   { backend: postgres }
	  mailbox: { backend: postgres }
	daemon:    { log_level: debug }
	postgres:
	  url: "postgresql:///$PGDB?host=$PGHOST&port=$PGPORT&user=$PGUSER"
	  name: d$n
	  lease_ms: ${PGD_LEASE_MS:-600}
	default_model: echo
	models:
	  - name: echo
	    executor: synthetic
	    params: { tokens_per_sec: $tps }
	EOF
}

# pgd_start N UNITS [TPS] [DEPTH]: start daemon N; wait until it listens.
# PGD_ARGS (an array) adds plotd arguments.
pgd_start() {
	local n=$1 d="$BATS_TEST_TMPDIR/d$1"
	pgd_config "$@"
	XDG_STATE_HOME="$d/state" "$PLOTD" --config "$d/plot.yaml" --socket "$d/s" \
		--pid-file "$d/pid" "${PGD_ARGS[@]}" </dev/null >/dev/null 2>>"$d/err" 3>&- &
	PGD_PIDS[$n]=$!
	wait_until pgd_ready "$n"
}

pgd_ready() {
	kill -0 "${PGD_PIDS[$1]}" 2>/dev/null || { sed 's/^/# /' "$BATS_TEST_TMPDIR/d$1/err" >&2; return 2; }
	[ "$(cat "$BATS_TEST_TMPDIR/d$1/pid" 2>/dev/null)" = "${PGD_PIDS[$1]}" ]
}

# p N ARGS...: plot against daemon N.
p() {
	local n=$1
	shift
	"$PLOT" --socket "$BATS_TEST_TMPDIR/d$n/s" "$@"
}

sql() {
	psql -X -A -t -q -d "$PGDB" -c "$1"
}

# sql_is QUERY VALUE: the query answers VALUE now (for wait_until)
sql_is() {
	[ "$(sql "$1")" = "$2" ]
}
