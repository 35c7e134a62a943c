#!/bin/sh
# Installs the Debian 12 packages Railyard needs to build, test and run.
#
#   scripts/install-deps.sh           install whatever is missing (as root)
#   scripts/install-deps.sh --check   silent when everything is installed;
#                                     installs when root; otherwise prints the
#                                     command to run and exits 1
#
# `make test`, `make demo` and `make bench` run --check first.
set -eu

PACKAGES="build-essential pkg-config libpq-dev libevent-dev libssl-dev libpcre2-dev
libjansson-dev libyaml-dev libsystemd-dev libcmocka-dev libxml2-dev postgresql-15
postgresql-client-15 procps iproute2
libcurl4-openssl-dev libarchive-dev libzstd-dev git nginx-light openssl"
# libpq linked in (Makefile: LIBPQ_A): the common and port code its libpq.a
# calls, and the headers of the GSSAPI and LDAP libraries it loads lazily
PACKAGES="$PACKAGES postgresql-server-dev-15 libkrb5-dev libldap-dev"
# integration tests of issue 11: PgBouncer, containers (podman + crun, and
# catatonit for `podman run --init`), curl
PACKAGES="$PACKAGES pgbouncer podman crun uidmap catatonit curl"
# make fuzz (libFuzzer) and make coverage (gcov reports, PL/pgSQL profiles)
PACKAGES="$PACKAGES clang libclang-rt-14-dev gcovr postgresql-15-plpgsql-check"

check=0
case "${1:-}" in
--check) check=1 ;;
"") ;;
*)
	echo "usage: scripts/install-deps.sh [--check]" >&2
	exit 2
	;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	# Not Debian: we cannot tell; the build will say what is missing.
	[ "$check" = 1 ] && exit 0
	echo "error: scripts/install-deps.sh knows only Debian (apt); install the equivalents of:" >&2
	echo "  $(echo $PACKAGES)" >&2
	exit 1
fi

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || :)
	[ "$status" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "sudo apt-get update && sudo apt-get install -y --no-install-recommends$missing" >&2
	exit 1
fi
echo "installing:$missing" >&2
# postgresql-15 may create and start a default cluster (postgresql-common);
# railyard never uses it: its own clusters listen on private Unix sockets.
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086  # word splitting of the list is intended
apt-get install -y --no-install-recommends $missing
