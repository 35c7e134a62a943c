#!/usr/bin/env bash
#
# bench/profile_submit.sh BUILD_DIR [RUNS]
#
# What one `railyard submit` of the submission benchmark's 50-task pipeline
# costs, counted in instructions rather than time: the VM's speed moves by
# 10 % from one minute to the next, an instruction count by less than 1 %.
# The benchmark's own throwaway server (durable defaults, as bench/run.sh
# starts it) is restarted under `valgrind --tool=callgrind`, which writes
# one profile per backend when it exits; autovacuum is off meanwhile, so
# every new profile is the backend of the session just run.  Prints, each
# the median of RUNS (default 6) sessions after two warm-up submissions:
#   - a bare session (psql -c 'SELECT 1'): connecting, the backend's start
#     and exit;
#   - a `railyard submit` session, and its difference from the bare one;
#   - the `railyard` process itself (its own callgrind run, once).
# KEEP_TMP=1 keeps the profiles (callgrind_annotate reads them).
# docs/benchmarks.md ("2026-12-02 (morning)") holds its output.

set -uo pipefail
export LC_ALL=C TZ=UTC
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS RAILYARD_DB

if (($# < 1)); then
	echo "usage: bench/profile_submit.sh BUILD_DIR [RUNS]" >&2
	exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
RUNS=${2:-6}
if ! [[ $RUNS =~ ^[1-9][0-9]?$ ]]; then
	echo "error: RUNS must be 1 to 99" >&2
	exit 2
fi
if ! command -v valgrind >/dev/null; then
	echo "error: valgrind is missing: apt-get install -y valgrind" >&2
	exit 2
fi
QUICK=0

# shellcheck source=scripts/pg-common.sh
. "$ROOT/scripts/pg-common.sh"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
# shellcheck source=bench/bench_overhead.sh
. "$ROOT/bench/bench_overhead.sh"
# shellcheck source=bench/bench_submission.sh
. "$ROOT/bench/bench_submission.sh"

standalone_harness "$1" || exit 2
if ! start_cluster >"$TMP/setup.log" 2>&1; then
	echo "error: cannot start the profiling cluster:" >&2
	sed 's/^/  /' "$TMP/setup.log" >&2
	exit 2
fi
db=profile_submit
new_db "$db"
dag_generate 77 16 >"$TMP/dag.tsv"
dag_json "$TMP/dag.tsv" bench-cli >"$TMP/spec.json"

submit() {
	RAILYARD_DB=$(conninfo "$db") "$RY" submit "$TMP/spec.json"
}
bare() {
	q "$db" "SELECT 1"
}

# Warm-up on the plain server: the database's first sessions write its
# relation cache file, later ones read it.
for _ in 1 2; do
	submit >/dev/null || {
		echo "error: railyard submit failed on the profiling cluster" >&2
		exit 1
	}
done
q postgres "ALTER SYSTEM SET autovacuum = off" >/dev/null
stop_cluster
mkdir -p "$TMP/cg"
((EUID == 0)) && chown railyard: "$TMP/cg"
(cd "$TMP" && exec "${AS_PG[@]}" valgrind --tool=callgrind --callgrind-out-file="$TMP/cg/cg.%p" \
	"$PG_BINDIR/postgres" -D "$TMP/pg" >"$TMP/valgrind.log" 2>&1) &
BG_PIDS+=("$!")
# (psql's status 2, no connection yet, would stop wait_for at once.)
server_up() {
	bare >/dev/null 2>&1 || return 1
}
if ! wait_for 120 server_up; then
	echo "error: the server did not start under valgrind: $(tail -n 3 "$TMP/valgrind.log")" >&2
	exit 1
fi
# more_profiles_than N: whether a backend has written its profile since.
more_profiles_than() {
	(($(find "$TMP/cg" -name 'cg.*' | wc -l) > $1))
}

# backend_ir CMD...: runs CMD; prints the instructions of the backend it
# started (the "summary:" line of the one profile that appears).
backend_ir() {
	local n f
	n=$(find "$TMP/cg" -name 'cg.*' | wc -l)
	"$@" >/dev/null || return 1
	wait_for 60 more_profiles_than "$n" || return 1
	nap 0.3	# callgrind writes the file in pieces
	f=$(ls -t "$TMP/cg"/cg.* | head -n 1)
	awk '/^summary:/ { print $2; exit }' "$f"
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

backend_ir bare >/dev/null	# the first session after a restart builds caches once
bare_ir=() sub_ir=()
for ((i = 0; i < RUNS; i++)); do
	v=$(backend_ir bare) && [[ -n $v ]] || { echo "error: no profile of a bare session" >&2; exit 1; }
	bare_ir+=("$v")
	v=$(backend_ir submit) && [[ -n $v ]] || { echo "error: no profile of a submission" >&2; exit 1; }
	sub_ir+=("$v")
done
b=$(printf '%s\n' "${bare_ir[@]}" | median)
s=$(printf '%s\n' "${sub_ir[@]}" | median)
client=$(RAILYARD_DB=$(conninfo "$db") valgrind --tool=callgrind --callgrind-out-file="$TMP/client.out" \
	"$RY" submit "$TMP/spec.json" 2>&1 >/dev/null | awk '/I *refs:/ { gsub(",", "", $NF); print $NF }')
[[ -n $client ]] || {
	echo "error: valgrind could not count the railyard process" >&2
	exit 1
}
[[ $(q "$db" "SELECT count(*) FROM railyard.pipelines WHERE validated_at IS NULL") == 0 ]] || {
	echo "error: a submission was not validated" >&2
	exit 1
}

mi() { calc "$1 / 1000000" %.1f; }
echo "| session (callgrind, median of $RUNS) | instructions (million) |"
echo "| --- | --- |"
echo "| bare: connect, SELECT 1, exit | $(mi "$b") |"
echo "| railyard submit, 50 tasks, 65 edges: its backend | $(mi "$s") |"
echo "| of which the submission (backend less bare) | $(mi "$((s - b))") |"
echo "| the railyard process itself | $(mi "$client") |"
echo
echo "(bare: ${bare_ir[*]}; submit: ${sub_ir[*]})"
