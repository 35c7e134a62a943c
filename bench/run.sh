#!/usr/bin/env bash
#
# bench/run.sh BUILD_DIR [BENCH...]     (make bench runs `bench/run.sh build/rel`)
#
# Railyard's benchmark suite.  Starts its own throwaway PostgreSQL (durable
# defaults: fsync, synchronous_commit and full_page_writes on; Unix socket in
# a temp dir; run as the unprivileged user "railyard" when we are root),
# runs each benchmark with its baseline measured in the same run, prints one
# table per benchmark (| metric | railyard | baseline | ratio | goal |, with
# the machine and the PostgreSQL settings) and writes
# bench/results/latest.json.  It builds nothing: make has built BUILD_DIR's
# railyard and bench/* programs.
#
# BENCH picks what runs (default all, in this order): throughput,
# concurrency, overhead, utilisation, latency, submission, cache_lookup, deps,
# forecast, placement, cache.  soak (long: 1,000,000 tasks) runs only when
# named or SOAK=1.
#
# Environment:
#   QUICK=1              a smaller version of every benchmark (< 3 minutes)
#   BENCH_PG_SETTINGS    extra postgresql.conf lines, ";"-separated
#                        ("jit=off"); printed with every table
#   BENCH_RESULTS=FILE   where the JSON goes (default bench/results/latest.json)
#   KEEP_TMP=1           keep the temp dir: cluster, worker logs, stats
#   SOAK=1               with no BENCH named: all of them and the soak
#   BENCH_PEERS=0        throughput without Graphile Worker and pg-boss
#                        (otherwise installed with npm ci from bench/peers/)
#   FORECAST_GENERIC, FORECAST_CACHE  the forecast history's share of tasks
#                        without a class label (1/3) and of cacheable tasks
#                        (0.25): bench/bench_forecast.sh
#   PLACEMENT_ONLY=memory  placement: only the memory-bound overload runs
#                        (for development; bench/bench_placement.sh)
#
# Benchmarks report; they do not fail the build: a missed goal or an INVALID
# row still exits 0.  Exit status 2 only when nothing could run (usage, no
# PostgreSQL, no binaries).  docs/benchmarks.md explains every figure.

set -uo pipefail
export LC_ALL=C TZ=UTC
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS RAILYARD_DB

BENCH_ORDER="throughput concurrency overhead utilisation latency submission cache_lookup deps forecast placement cache"
BENCH_OPTIONAL="soak"	# only when named, or with SOAK=1

usage() {
	echo "usage: bench/run.sh BUILD_DIR [$(echo "$BENCH_ORDER $BENCH_OPTIONAL" | tr ' ' '|')...]" >&2
	exit 2
}

(($# >= 1)) || usage
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
BUILD=$(cd "$1" 2>/dev/null && pwd) || {
	echo "error: build directory $1 does not exist (run make first)" >&2
	exit 2
}
shift
RY=$BUILD/railyard
SPAWN=$BUILD/bench/spawn
MEMHOG=$BUILD/bench/memhog
for f in "$RY" "$SPAWN" "$MEMHOG"; do
	if [[ ! -x $f ]]; then
		echo "error: $f is missing: run make bench (it builds railyard and bench/*.c)" >&2
		exit 2
	fi
done
QUICK=${QUICK:-0}
[[ $QUICK == 1 ]] || QUICK=0
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results/latest.json}

selected=("$@")
if ((${#selected[@]} == 0)); then
	read -r -a selected <<<"$BENCH_ORDER"
	[[ ${SOAK:-0} == 1 ]] && selected+=(soak)
fi
for b in "${selected[@]}"; do
	[[ " $BENCH_ORDER $BENCH_OPTIONAL " == *" $b "* ]] || {
		echo "error: no benchmark named '$b' (one of: $BENCH_ORDER $BENCH_OPTIONAL)" >&2
		exit 2
	}
done
BENCH_ORDER="$BENCH_ORDER $BENCH_OPTIONAL"	# the JSON lists what ran in this order

# shellcheck source=scripts/pg-common.sh
. "$ROOT/scripts/pg-common.sh"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
for f in "$ROOT"/bench/bench_*.sh; do
	# shellcheck disable=SC1090
	. "$f"
done

TMP=$(mktemp -d /tmp/railyard-bench.XXXXXX) || exit 2
chmod 755 "$TMP"	# the cluster's user must reach its directories
mkdir -p "$TMP/work" "$TMP/bin"
# Our own copies: a rebuild of BUILD_DIR during the run (by make, in
# another shell) must not swap the binary under a schema migrated by the
# old one.
cp "$RY" "$TMP/bin/railyard" && cp "$SPAWN" "$TMP/bin/spawn" && cp "$MEMHOG" "$TMP/bin/memhog" || exit 2
RY=$TMP/bin/railyard
SPAWN=$TMP/bin/spawn
MEMHOG=$TMP/bin/memhog
: >"$TMP/rows.tsv"
: >"$TMP/meta.tsv"

trap harness_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$(now)
MACHINE=$(machine_line)
echo "railyard benchmarks$( ((QUICK)) && echo " (QUICK=1: smaller versions)"), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $MACHINE"
if ! start_cluster >"$TMP/setup.log" 2>&1; then
	echo "error: cannot start the benchmark cluster:" >&2
	sed 's/^/  /' "$TMP/setup.log" >&2
	exit 2
fi
PG_LINE=$(pg_settings_line)
echo "postgres: $PG_LINE"

for b in "${selected[@]}"; do
	meta "$b" load_at_start "$(loadavg)"
	b_start=$(now)
	echo
	echo "== $b =="
	"bench_$b"
	meta "$b" duration_s "$(calc "$(now) - $b_start" %.0f)"
	print_table "$b" "$(bench_title_"$b")"
	# A benchmark that left anything behind must not disturb the next one.
	kill_leftovers
done

mkdir -p "$(dirname "$RESULTS")"
write_json "$RESULTS"
echo
echo "wrote $RESULTS in $(calc "$(now) - $started" %.0f) s"
exit 0
