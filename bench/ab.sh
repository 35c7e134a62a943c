#!/usr/bin/env bash
#
# bench/ab.sh OLD_RAILYARD NEW_RAILYARD [ROUNDS]
#
# Two builds of railyard against each other, interleaved ROUNDS times
# (default 5) on one throwaway PostgreSQL, each run against a database its
# own binary migrated:
#   - the short-task DAG of bench_overhead (38 tasks of 0.05-0.3 s, seed
#     1001): makespan on one worker --slots 8;
#   - 1,000 `true` tasks in 10 pipelines: tasks/s on one worker --slots 16.
# Prints every run and the medians.  For the before/after of a worker
# change on a shared, noisy machine: interleaving puts both under the same
# load (docs/benchmarks.md).  A build of main, e.g.:
#   git worktree add /tmp/base main && make -C /tmp/base build/rel/railyard
#   bench/ab.sh /tmp/base/build/rel/railyard build/rel/railyard

set -uo pipefail
export LC_ALL=C TZ=UTC
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS RAILYARD_DB

(($# >= 2)) || {
	echo "usage: bench/ab.sh OLD_RAILYARD NEW_RAILYARD [ROUNDS]" >&2
	exit 2
}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${3:-5}
for f in "$1" "$2"; do
	[[ -x $f ]] || {
		echo "error: $f is not an executable railyard" >&2
		exit 2
	}
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || {
	echo "error: ROUNDS must be a positive number, not '$ROUNDS'" >&2
	exit 2
}

# shellcheck source=scripts/pg-common.sh
. "$ROOT/scripts/pg-common.sh"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
# shellcheck source=bench/bench_overhead.sh
. "$ROOT/bench/bench_overhead.sh"

TMP=$(mktemp -d /tmp/railyard-ab.XXXXXX) || exit 2
chmod 755 "$TMP"
mkdir -p "$TMP/work" "$TMP/bin"
cp "$1" "$TMP/bin/old" && cp "$2" "$TMP/bin/new" || exit 2
: >"$TMP/rows.tsv"
: >"$TMP/meta.tsv"
trap harness_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The cluster's template is migrated by the old binary; the new one gets
# its own.  new_db copies whichever the run's binary migrated.
RY=$TMP/bin/old
echo "bench/ab.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), rounds: $ROUNDS"
echo "machine: $(machine_line)"
if ! start_cluster >"$TMP/setup.log" 2>&1; then
	echo "error: cannot start the cluster:" >&2
	sed 's/^/  /' "$TMP/setup.log" >&2
	exit 2
fi
q postgres "CREATE DATABASE ab_template_new" >/dev/null &&
	RAILYARD_DB=$(conninfo ab_template_new) "$TMP/bin/new" migrate >"$TMP/migrate-new.log" 2>&1 || {
	echo "error: the new binary cannot migrate a database:" >&2
	tail -n 20 "$TMP/migrate-new.log" >&2
	exit 2
}
AB_TEMPLATE=bench_template
new_db() {
	q postgres "DROP DATABASE IF EXISTS $1" >/dev/null 2>&1
	q postgres "CREATE DATABASE $1 TEMPLATE $AB_TEMPLATE" >/dev/null
}

dag=$TMP/work/dag.tsv
dag_generate 1001 12 | dag_shorten >"$dag"
read -r _ work _ < <(dag_bounds "$dag")
dag_sql "$dag" short >"$TMP/work/dag.sql"

# true_rate NAME: tasks/s of 1,000 `true` tasks on one worker --slots 16,
# first claim to last finish; "" when they did not all succeed.
true_rate() {
	local db=ab_true pid
	new_db "$db"
	submit_flat "$db" 10 100 true 16 true
	analyze_db "$db"
	start_worker "$db" "$1" --slots 16
	pid=$LAST_PID
	WAIT_EVERY=0.5 wait_for 600 at_least_succeeded "$db" 1000 "$pid" &&
		q "$db" "SELECT round((1000 / extract(epoch FROM max(finished_at) - min(claimed_at)))::numeric, 1)
			FROM railyard.task_attempts"
	stop_workers "$pid"
	drop_db "$db"
}

declare -A dags rates
for ((r = 1; r <= ROUNDS; r++)); do
	for v in old new; do
		RY=$TMP/bin/$v
		AB_TEMPLATE=bench_template
		[[ $v == new ]] && AB_TEMPLATE=ab_template_new
		dag_railyard ab_dag "dag-$v-$r" 8 "$TMP/work/dag.sql" "$work" 38
		rate=$(true_rate "true-$v-$r")
		echo "round $r $v: short DAG ${DAG_MAKESPAN:-FAILED} s, true ${rate:-FAILED} tasks/s (load $(loadavg))"
		dags[$v]+="${DAG_MAKESPAN:+$DAG_MAKESPAN }"
		rates[$v]+="${rate:+$rate }"
		kill_leftovers
	done
done

echo
echo "| | old | new |"
echo "| --- | --- | --- |"
# shellcheck disable=SC2086
echo "| short DAG makespan, median (s) | $(median ${dags[old]}) | $(median ${dags[new]}) |"
echo "| short DAG, per run (s) | ${dags[old]% } | ${dags[new]% } |"
# shellcheck disable=SC2086
echo "| \`true\` tasks, median (tasks/s) | $(median ${rates[old]}) | $(median ${rates[new]}) |"
echo "| \`true\` tasks, per run (tasks/s) | ${rates[old]% } | ${rates[new]% } |"
