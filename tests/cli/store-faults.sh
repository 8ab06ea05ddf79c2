#!/bin/bash
# store-faults.sh PLOT PLOTD DIR — the sqlite store on a full disk while
# plotd runs: submits are refused with STORE (exit 74), the refused task
# never runs, reads keep working, and submits work again once the disk has
# room; then on a read-only file system: plotd refuses to start (74),
# naming the file, and starts again once it is writable, tasks intact. (A
# file system cannot be remounted read-only under a running plotd: it holds
# the database open for writing.) Mounts a 2 MiB tmpfs at DIR/mnt, so it needs
# the right to mount: exit 3 when it has none, and daemon-store.bats runs it
# again under `unshare -rm` (a user and mount namespace). Prints "faults: all
# checks passed" at the end; any failed check exits 1.
set -u
PLOT=$1 PLOTD=$2 DIR=$3
MNT=$DIR/mnt
export PLOT_SOCKET=$DIR/run/plotd.sock PLOT_NO_AUTOSTART=1 XDG_RUNTIME_DIR=$DIR/xdg
fail() { echo "faults: FAILED: $*"; [ -f "$DIR/plotd.err" ] && sed 's/^/  plotd: /' "$DIR/plotd.err" | tail -20; exit 1; }
cleanup() {
	[ -n "${PID:-}" ] && kill -KILL "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	umount "$MNT" 2>/dev/null
	true
}
trap cleanup EXIT
# retry CMD... for up to 20 s, 20 ms apart (a bounded poll)
retry() { local i; for ((i = 0; i < 1000; i++)); do "$@" && return 0; sleep 0.02; done; return 1; }

mkdir -p -m 700 "$DIR" "$DIR/run" "$MNT" || fail "mkdir"
if ! mount -t tmpfs -o size=2m,mode=700 plot-faults "$MNT"; then
	echo "faults: cannot mount a tmpfs at $MNT"
	exit 3 # the caller may try again in a user and mount namespace
fi
cat >"$DIR/plot.yaml" <<CFG
parking_lot:
  queue:   { backend: sqlite }
  mailbox: { backend: sqlite }
store: { path: $MNT/plot/plot.db }
daemon: { log_level: info }
models:
  - name: echo
    executor: synthetic
    params: { tokens_per_sec: 0 }
CFG
"$PLOTD" --config "$DIR/plot.yaml" --socket "$PLOT_SOCKET" 2>"$DIR/plotd.err" &
PID=$!
retry "$PLOT" models >/dev/null 2>&1 || fail "plotd did not start"
[ "$("$PLOT" run before)" = before ] || fail "first run"

# -- full disk: fill the file system, then submit until the store says so
dd if=/dev/zero of="$MNT/fill" bs=64k 2>/dev/null
big=$(head -c 30000 /dev/zero | tr '\0' x)
rc=0
for ((i = 0; i < 400 && rc == 0; i++)); do
	"$PLOT" submit "$big" >/dev/null 2>"$DIR/submit.err"
	rc=$?
done
[ "$rc" = 74 ] || fail "full disk: submit exited $rc, wanted 74 ($(cat "$DIR/submit.err"))"
grep -q "disk full" "$DIR/submit.err" || fail "full disk: no 'disk full' in: $(cat "$DIR/submit.err")"
echo "faults: full disk refused after $i submits: $(cat "$DIR/submit.err")"
kill -0 "$PID" || fail "plotd died on a full disk"
refused=$(sed -n 's/.*task \([0-9]*\) refused, not stored.*/\1/p' "$DIR/plotd.err" | tail -1)
[ -n "$refused" ] || fail "full disk: no refused task in the log"
state=$("$PLOT" --json status "$refused" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')
[ "$state" = cancelled ] || fail "full disk: refused task $refused is $state, not cancelled (it must never run)"
[ "$("$PLOT" result 1)" = before ] || fail "full disk: reads stopped working"
"$PLOT" list >/dev/null || fail "full disk: list"
rm -f "$MNT/fill"
retry "$PLOT" submit after-full >/dev/null 2>&1 || fail "submits do not work again after space was freed"

# -- a refused task never ran: its id is cancelled, not done
"$PLOT" list --state done >"$DIR/list" || fail "list"
kill -TERM "$PID"; wait "$PID"; rc=$?; PID=
[ "$rc" = 0 ] || fail "plotd exited $rc"

# -- read-only file system: a file that cannot be written is refused at start
mount -o remount,ro "$MNT" || fail "cannot remount read-only"
"$PLOTD" --config "$DIR/plot.yaml" --socket "$PLOT_SOCKET" 2>"$DIR/start.err"
rc=$?
[ "$rc" = 74 ] || fail "read-only: plotd exited $rc, wanted 74 ($(cat "$DIR/start.err"))"
grep -q "$MNT/plot/plot.db" "$DIR/start.err" || fail "read-only: the file is not named: $(cat "$DIR/start.err")"
grep -q "read-only" "$DIR/start.err" || fail "read-only: not said: $(cat "$DIR/start.err")"
echo "faults: read-only refused at start: $(cat "$DIR/start.err")"
mount -o remount,rw "$MNT" || fail "cannot remount read-write"
"$PLOTD" --config "$DIR/plot.yaml" --socket "$PLOT_SOCKET" 2>>"$DIR/plotd.err" &
PID=$!
retry "$PLOT" models >/dev/null 2>&1 || fail "plotd did not start again"
[ "$("$PLOT" result 1)" = before ] || fail "the first task is gone after the restart"
[ "$("$PLOT" run after-ro)" = after-ro ] || fail "run after the restart"
kill -TERM "$PID"; wait "$PID"; rc=$?; PID=
[ "$rc" = 0 ] || fail "plotd exited $rc"
grep -Eq "AddressSanitizer|runtime error:|ThreadSanitizer|LeakSanitizer" "$DIR/plotd.err" && fail "sanitizer report"
echo "faults: all checks passed"
