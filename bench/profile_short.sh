#!/usr/bin/env bash
#
# bench/profile_short.sh BUILD_DIR [TASKS [SLOTS [WORKER_ARGS...]]]
#
# Where a short task's time goes: TASKS tasks of `true` (default 1,000)
# bulk-submitted and ANALYZEd on the benchmark's own throwaway server, run
# by one `railyard worker --slots SLOTS` (default 4) with WORKER_ARGS
# (e.g. --claim-ahead 8).  Prints the rate (first claim to last finish),
# the worker's own CPU per task (utime and stime from /proc/PID/stat, read
# before it is stopped), and per attempt the mean claim -> start and run
# time.  TMPFS=1 puts the worker's workdir on /dev/shm; PERF=1 records
# the worker with `perf record -g` into perf.data in the current
# directory.  docs/benchmarks.md ("Short tasks and claim ahead") has its
# figures.

set -uo pipefail
export LC_ALL=C TZ=UTC
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS RAILYARD_DB

if (($# < 1)); then
	echo "usage: bench/profile_short.sh BUILD_DIR [TASKS [SLOTS [WORKER_ARGS...]]]" >&2
	exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_ARG=$1
N=${2:-1000}
SLOTS=${3:-4}
shift $(($# < 3 ? $# : 3))
QUICK=1
# shellcheck source=scripts/pg-common.sh
. "$ROOT/scripts/pg-common.sh"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

standalone_harness "$BUILD_ARG" || exit 2
start_cluster >"$TMP/setup.log" 2>&1 || {
	cat "$TMP/setup.log" >&2
	exit 2
}
if [[ ${TMPFS:-0} == 1 ]]; then
	shm_work_dir || {
		echo "error: /dev/shm is not a tmpfs" >&2
		exit 2
	}
	WORK_BASE=$SHM_WORK
fi

db=profile_short
new_db "$db"
submit_flat "$db" $(((N + 99) / 100)) $((N < 100 ? N : 100)) true 8 short
analyze_db "$db"
N=$(q "$db" "SELECT count(*) FROM railyard.tasks")
start_worker "$db" short --slots "$SLOTS" "$@"
pid=$LAST_PID
perf_pid=""
if [[ ${PERF:-0} == 1 ]]; then
	perf record -g -o perf.data -p "$pid" >"$TMP/perf.log" 2>&1 &
	perf_pid=$!
fi
WAIT_EVERY=0.2 wait_for 600 at_least_succeeded "$db" "$N" "$pid" || {
	echo "error: not every task succeeded (KEEP_TMP=1 keeps $TMP/logs/short.log)" >&2
	exit 1
}
read -r -a st <"/proc/$pid/stat"
[[ -n $perf_pid ]] && kill -INT "$perf_pid" && wait "$perf_pid"
hz=$(getconf CLK_TCK)

echo "$N tasks of true, one worker --slots $SLOTS $*${WORK_BASE:+ (workdir on tmpfs)}"
q "$db" "SELECT 'rate: ' || round(($N / extract(epoch FROM max(at) FILTER (WHERE event = 'finish')
		- min(at) FILTER (WHERE event = 'claim')))::numeric, 1) || ' tasks/s'
	FROM railyard.audit_log WHERE object = 'task'"
awk -v u="${st[13]}" -v s="${st[14]}" -v hz="$hz" -v n="$N" 'BEGIN {
	printf "worker CPU per task: %.2f ms (user %.2f, system %.2f)\n",
		(u + s) * 1000 / hz / n, u * 1000 / hz / n, s * 1000 / hz / n }'
q "$db" "SELECT 'per attempt, mean: claim -> start ' ||
		round(avg(extract(epoch FROM started_at - claimed_at))::numeric * 1000, 2) || ' ms, run ' ||
		round(avg(duration_s)::numeric * 1000, 2) || ' ms'
	FROM railyard.task_attempts"
