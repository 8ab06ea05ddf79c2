#!/bin/sh
# pg-cluster.sh — a private, throw-away PostgreSQL cluster for the tests.
#
#   pg-cluster.sh start        create and start one; print `export PG...` lines
#                              (eval them) naming it: PGHOST (its socket
#                              directory), PGPORT, PGUSER, PGDATABASE, PLOT_PG_DIR
#   pg-cluster.sh stop [DIR]   stop it and delete its directory (DIR defaults
#                              to $PLOT_PG_DIR)
#   pg-cluster.sh restart [DIR]  crash and restart its server (immediate stop:
#                              no checkpoint, recovery from WAL), same options
#   pg-cluster.sh run CMD...   run CMD against the cluster named by
#                              $PLOT_PG_DIR when one is running (CI starts one
#                              for the whole `make check`), else against a new
#                              one started for CMD and stopped after it
#
# DESIGN
#   initdb in a mktemp directory, no TCP (listen_addresses=''), the Unix socket
#   in that same directory, trust authentication: nothing outside the
#   directory can reach it and nothing is left behind. initdb refuses to run
#   as root (CI and this machine run as root), so as root the cluster belongs
#   to the system user `plotpg`, created here when missing (useradd -r, no
#   home, no shell); as any other user it belongs to that user. Either way the
#   cluster's superuser role is named after the cluster's owner and PGUSER is
#   set to it, so a test running as root connects as that role through trust.
#   The directory is made under $PLOT_PG_TMP (default /tmp). The server
#   binaries come from PG_BINDIR, else the newest /usr/lib/postgresql/*/bin
#   (Debian keeps them off PATH), else pg_config --bindir. The server runs
#   with fsync off: the tests need a server, not durability.
set -eu

die() { echo "pg-cluster: $*" >&2; exit 1; }

bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    done
    d=$(pg_config --bindir 2>/dev/null || true)
    [ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return; }
    die "no PostgreSQL server binaries (initdb): install the Debian package postgresql (make deps) or set PG_BINDIR"
}

# run a command as the cluster's owner
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u plotpg -- "$@"; else "$@"; fi
}

owner_name() {
    if [ "$(id -u)" -eq 0 ]; then echo plotpg; else id -un; fi
}

ensure_user() {
    [ "$(id -u)" -eq 0 ] || return 0
    id plotpg >/dev/null 2>&1 && return 0
    useradd -r -M -d /nonexistent -s /usr/sbin/nologin plotpg 2>/dev/null ||
        id plotpg >/dev/null 2>&1 || die "cannot create the system user plotpg (useradd)"
}

start() {
    bin=$(bindir)
    ensure_user
    # /tmp, not $TMPDIR: plotpg must reach it, and the socket path must stay
    # under the 107 bytes a Unix socket name may have
    dir=$(mktemp -d "${PLOT_PG_TMP:-/tmp}/plot-pg.XXXXXX")
    chmod 755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown plotpg "$dir"
    # a port number only names the socket file; it is private to $dir
    port=$((20000 + $$ % 20000))
    if ! as_owner "$bin/initdb" -D "$dir/data" -A trust -U "$(owner_name)" -E UTF8 \
            --no-sync >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2; rm -rf "$dir"; die "initdb failed"
    fi
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
            -o "-c listen_addresses='' -k $dir -p $port -c fsync=off -c max_connections=64" \
            start >/dev/null 2>&1; then
        cat "$dir/server.log" >&2; rm -rf "$dir"; die "pg_ctl start failed"
    fi
    echo "export PLOT_PG_DIR='$dir' PGHOST='$dir' PGPORT='$port' PGUSER='$(owner_name)' PGDATABASE=postgres"
}

stop() {
    dir=${1:-${PLOT_PG_DIR:-}}
    [ -n "$dir" ] || die "stop: no directory (argument or PLOT_PG_DIR)"
    [ -d "$dir/data" ] || die "stop: $dir holds no cluster"
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

restart() {
    dir=${1:-${PLOT_PG_DIR:-}}
    [ -n "$dir" ] && [ -d "$dir/data" ] || die "restart: no cluster (argument or PLOT_PG_DIR)"
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w -t 30 restart >/dev/null 2>&1 ||
        die "restart: pg_ctl restart failed (see $dir/server.log)"
}

run() {
    if [ -n "${PLOT_PG_DIR:-}" ] && [ -S "$PLOT_PG_DIR/.s.PGSQL.${PGPORT:-}" ]; then
        exec "$@"
    fi
    env=$(start)
    eval "$env"
    trap 'stop "$PLOT_PG_DIR"; exit 130' INT TERM
    rc=0
    "$@" || rc=$?
    stop "$PLOT_PG_DIR"
    return $rc
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    start) start ;;
    stop) stop "$@" ;;
    restart) restart "$@" ;;
    run) [ $# -gt 0 ] || die "run: no command"; run "$@" ;;
    *) die "usage: pg-cluster.sh start | stop [DIR] | restart [DIR] | run CMD..." ;;
esac
