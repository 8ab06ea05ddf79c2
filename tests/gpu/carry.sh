#!/bin/sh
# carry.sh — the libraries plotd and plot link, as Debian packages unpacked
# into a git-ignored folder (default .gpu-deps/), so that a machine without
# them (the GPU machine: no -dev packages, no network) can build everything
# with `make CUDA=1 DEPS_ROOT=.gpu-deps` (the Makefile then takes headers
# and libraries from that folder and sets an rpath into it).
#
#   tests/gpu/carry.sh [DIR]      (make gpu-carry)
#
# Run here, where apt works: `apt-get download` fetches the -dev packages
# (headers, the .so links) and the runtime packages of every library the
# binaries load, down to what libpq and libmicrohttpd pull in (TLS,
# Kerberos, LDAP), and bats with its libraries for the serving checks, and
# `dpkg -x` unpacks them; documentation is dropped.
# libc, libstdc++ and libgcc are the GPU machine's own (its glibc is newer
# than this machine's, so libraries built here load there). About 20 MiB,
# under the 64 MiB a device run may carry. Idempotent: a second run
# re-downloads nothing when DIR/.done names the same package list.
set -eu

here=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:-$here/.gpu-deps}

DEV="libyaml-dev libmsgpack-dev libpcre2-dev libjansson-dev libmicrohttpd-dev libpq-dev
libsqlite3-dev libreadline-dev libncurses-dev"
RUNTIME="libyaml-0-2 libmsgpackc2 libpcre2-8-0 libjansson4 libmicrohttpd12 libpq5 libsqlite3-0
libreadline8 libtinfo6 libncursesw6 libgnutls30 libhogweed6 libnettle8 libgmp10 libidn2-0
libunistring2 libp11-kit0 libtasn1-6 libffi8 libssl3 libgssapi-krb5-2 libkrb5-3 libk5crypto3
libkrb5support0 libcom-err2 libkeyutils1 libldap-2.5-0 libsasl2-2"
# the bats serving checks (tests/gpu/run's sbats step): shell only, arch all
BATS="bats bats-support bats-assert bats-file"
want=$(echo $DEV $RUNTIME $BATS)

if [ -f "$dest/.done" ] && [ "$(cat "$dest/.done")" = "$want" ]; then
	echo "carry.sh: $dest is up to date ($(du -sh "$dest" | cut -f1))"
	exit 0
fi
command -v apt-get >/dev/null || { echo "carry.sh: needs apt-get (run it on a Debian machine)" >&2; exit 1; }
rm -rf "$dest"
mkdir -p "$dest/debs" "$dest/root"
# shellcheck disable=SC2086
(cd "$dest/debs" && apt-get download $want >"$dest/apt.log" 2>&1) || {
	cat "$dest/apt.log" >&2
	echo "carry.sh: apt-get download failed (apt-get update first?)" >&2
	exit 1
}
for d in "$dest"/debs/*.deb; do
	dpkg -x "$d" "$dest/root"
done
# shared libraries only: static archives would double the size for nothing
find "$dest/root" -name '*.a' -delete
rm -rf "$dest/debs" "$dest/apt.log" "$dest/root/usr/share/doc" "$dest/root/usr/share/man" \
	"$dest/root/usr/share/info" "$dest/root/usr/share/lintian" "$dest/root/usr/share/locale"
echo "$want" >"$dest/.done"
echo "carry.sh: $(echo $want | wc -w) packages unpacked into $dest ($(du -sh "$dest" | cut -f1))"
