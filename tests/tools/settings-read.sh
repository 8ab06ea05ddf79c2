#!/usr/bin/env bash
# settings-read.sh — fail when a setting of plot.yaml is parsed but never read.
#
# Every row of the settings table (lib/cfg/cfg-table.c) names its struct
# member with offsetof(struct X, member) through the row macros. Preprocess
# the table, take each row's member, and require at least one read of it,
# `.member` or `->member` not followed by a plain `=`, in lib/, daemon/ or
# cmd/ outside lib/cfg/ (the loader, dump and table touch every member
# generically, which proves nothing). A row that drives a pool limit
# (POOL_LIMIT_* in the row) counts as read: cfg_lot_pool_config() and the
# daemon's live limits hand it to the pool through the table.
#
# Limits: a read is matched by member name, so a member named like a field
# of an unrelated struct (name, path) passes on that struct's reads; the
# test catches settings with their own names, which is most of them.
#
# Usage: tests/tools/settings-read.sh [REPO_ROOT]. Prints each unread member
# as "unread: struct X.member (row NAME)" and exits 1 if there is any.
set -euo pipefail

root="${1:-$(cd "$(dirname "$0")/../.." && pwd)}"
cd "$root"
cc="${CC:-cc}"

# The settings[] initializer, preprocessed, one row per line.
rows=$("$cc" -E -P -std=c11 -D_GNU_SOURCE -Iinclude -Ilib lib/cfg/cfg-table.c |
    awk '/cfg_setting settings\[\] =/{f=1} f{print} f&&/^};/{f=0}' |
    tr '\n' ' ' | sed 's/} *, *{/}\n{/g')

# Source files that may read a setting, comments stripped crudely (one-line
# /* */ and block-comment continuation lines).
readers=$(find lib daemon cmd -name '*.c' -o -name '*.h' | grep -v '^lib/cfg/' | sort)
# (A continuation line is "*" then a space, "/" or the end: "*pe = x;" is code.)
code=$(sed -E -e 's:/\*.*\*/::g' -e '/^[[:space:]]*\*([[:space:]/]|$)/d' -e 's://.*$::' $readers)

unread=0
n=0
while IFS= read -r row; do
    [[ "$row" =~ offsetof[[:space:]]*\([[:space:]]*struct[[:space:]]+([a-z_]+)[[:space:]]*,[[:space:]]*([a-z_.]+)[[:space:]]*\) ]] || continue
    st="${BASH_REMATCH[1]}" member="${BASH_REMATCH[2]}"
    name=$(sed -n 's/^[^"]*"\([^"]*\)".*/\1/p' <<<"$row")
    n=$((n + 1))
    [[ "$row" == *POOL_LIMIT_* ]] && continue
    field="${member##*.}" # daemon.socket: the read is .socket
    if ! grep -Eq "(\.|->)${field}\b([^=]|==|$)" <<<"$code"; then
        echo "unread: struct $st.$member (row $name)"
        unread=$((unread + 1))
    fi
done <<<"$rows"

if ((n == 0)); then
    echo "settings-read: found no rows in lib/cfg/cfg-table.c (did the row macros change?)" >&2
    exit 2
fi
echo "settings-read: $n settings, $unread unread"
((unread == 0))
