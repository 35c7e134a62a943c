#!/usr/bin/env bash
#
# bench/ab.sh OLD_RAILYARD NEW_RAILYARD [ROUNDS]
#
# Two builds of railyard against each other, interleaved ROUNDS times
# (default 5) on one throwaway PostgreSQL, each run against a database its
# own binary migrated:
#   - dag: the short-task DAG of bench_overhead (38 tasks of 0.05-0.3 s,
#     seed 1001): makespan on one worker --slots 8;
#   - true: 1,000 `true` tasks in 10 pipelines: tasks/s on one worker
#     --slots 16;
#   - cycle: the server's side of the hot path alone: a worker's claim
#     transaction (claim_placement, claim_tasks, the container and team
#     query, cache_context) and its completion (complete_tasks) of 1, 6
#     and 32 tasks at a time, looped by one pgbench client over 20,000
#     ready tasks: ms per claim + completion, what the per-call costs
#     weigh at the batch sizes short tasks give;
#   - submit: `railyard submit` of the submission benchmark's 50-task
#     pipeline, a new process and connection each: the median of 30 one at
#     a time (process start to exit) connecting directly and through a
#     PgBouncer in transaction mode, and pipelines/s from 8 shell loops for
#     8 s through it (bench_submission's rows, interleaved).
# AB_PARTS (default "dag true cycle") picks some.  Prints every run and
# the medians.  For the before/after of a change on a shared, noisy
# machine: interleaving puts both under the same load
# (docs/benchmarks.md).  A build of main, e.g.:
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
# shellcheck source=bench/bench_submission.sh
. "$ROOT/bench/bench_submission.sh"

TMP=$(mktemp -d /tmp/railyard-ab.XXXXXX) || exit 2
chmod 755 "$TMP"
mkdir -p "$TMP/work" "$TMP/bin" "$TMP/logs"
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

# cycle_ms K N: ms per claim + completion of K tasks, N of them looped by
# one pgbench client as a worker sends them; "" when pgbench failed.
cycle_ms() {
	local db=ab_cycle k=$1 n=$2 agent out
	new_db "$db"
	submit_flat "$db" 200 100 true 8 cycle
	analyze_db "$db"
	agent=$(q "$db" "SELECT railyard.register_agent('cycle', 'host', 'linux', 'x86_64', 64, 100000,
		100000, '{}', 32, 64, 100000, 1, 'ab', 60)")
	out=$("$PG_BINDIR/pgbench" -n -c 1 -t "$n" -D k="$k" -D agent="$agent" -f "$TMP/cycle.sql" \
		"$(conninfo "$db")" 2>&1)
	sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' <<<"$out"
	drop_db "$db"
}
# The claim's ids come back as an array literal (:ids, which pgbench puts
# in the quotes) and their number (:n); the completion reports each one
# succeeded, as a worker would.
cat >"$TMP/cycle.sql" <<-'EOF'
	BEGIN;
	SET LOCAL synchronous_commit = off;
	SELECT array_agg(id) AS ids, count(*) AS n FROM railyard.claim_placement(:agent, '{}', 'linux', 'x86_64', 64, 100000, :k, 32) \gset
	SELECT count(*) FROM railyard.claim_tasks(:agent, ':ids');
	SELECT id, image, team FROM railyard.tasks WHERE id = ANY (':ids'::bigint[]) AND (image IS NOT NULL OR team IS NOT NULL);
	SELECT count(*) FROM railyard.cache_context(:agent, ':ids');
	COMMIT;
	SELECT count(*) FROM railyard.complete_tasks(:agent, ':ids', array_fill(1, ARRAY[:n]), array_fill('succeeded'::text, ARRAY[:n]), array_fill(0, ARRAY[:n]), array_fill(NULL::text, ARRAY[:n]), array_fill(now(), ARRAY[:n]), array_fill(now(), ARRAY[:n]), array_fill('/tmp/cycle.log'::text, ARRAY[:n]), array_fill(''::text, ARRAY[:n]), array_fill(0.01::float8, ARRAY[:n]));
EOF

# submit_p50 CONNINFO: the median ms of 30 railyard submits one at a
# time, process start to exit; "" when one failed.
submit_p50() {
	local i t0 t1 out
	: >"$TMP/work/lat"
	for ((i = 0; i < 30; i++)); do
		stamp t0
		out=$(RAILYARD_DB=$1 "$RY" submit "$TMP/work/spec.json" 2>>"$TMP/work/submit.err") || out=""
		[[ $out =~ ^[0-9]+$ ]] || return 0
		stamp t1
		echo $((t1 - t0)) >>"$TMP/work/lat"
	done
	calc "$(pct "$TMP/work/lat" 50) / 1000" %.1f
}

# submit_rate CONNINFO DB: pipelines/s that 8 loops of railyard submit
# through CONNINFO stored in DB in 8 s; "" when one failed.
submit_rate() {
	local t0 i loops=() n elapsed
	: >"$TMP/work/failed"
	t0=$(now_us)
	for ((i = 0; i < 8; i++)); do
		sub_cli_loop "$1" "$TMP/work/spec.json" $((t0 + 8000000)) "$TMP/work/failed" &
		loops+=("$!")
	done
	wait "${loops[@]}"
	elapsed=$(calc "($(now_us) - $t0) / 1000000" %.3f)
	[[ -s $TMP/work/failed ]] && return 0
	n=$(q "$2" "SELECT count(*) FROM railyard.pipelines WHERE validated_at IS NOT NULL")
	calc "$n / $elapsed" %.1f
}

PARTS=" ${AB_PARTS:-dag true cycle} "
if [[ $PARTS == *" submit "* ]]; then
	dag_generate 77 16 >"$TMP/work/sub.tsv"
	dag_json "$TMP/work/sub.tsv" bench-cli >"$TMP/work/spec.json"
	# In $TMP/bouncer: kill_leftovers ends what runs in $TMP/work.
	sub_bouncer_start postgres "$TMP" || {
		echo "error: $SUB_WHY" >&2
		exit 2
	}
fi
declare -A dags rates cycles sdirect sbouncer srate
for ((r = 1; r <= ROUNDS; r++)); do
	for v in old new; do
		RY=$TMP/bin/$v
		AB_TEMPLATE=bench_template
		[[ $v == new ]] && AB_TEMPLATE=ab_template_new
		line="round $r $v:"
		if [[ $PARTS == *" dag "* ]]; then
			dag_railyard ab_dag "dag-$v-$r" 8 "$TMP/work/dag.sql" "$work" 38
			line+=" short DAG ${DAG_MAKESPAN:-FAILED} s,"
			dags[$v]+="${DAG_MAKESPAN:+$DAG_MAKESPAN }"
		fi
		if [[ $PARTS == *" true "* ]]; then
			rate=$(true_rate "true-$v-$r")
			line+=" true ${rate:-FAILED} tasks/s,"
			rates[$v]+="${rate:+$rate }"
		fi
		if [[ $PARTS == *" cycle "* ]]; then
			for k in 1 6 32; do
				ms=$(cycle_ms "$k" $((k == 1 ? 400 : k == 6 ? 200 : 100)))
				line+=" cycle of $k ${ms:-FAILED} ms,"
				cycles[$v$k]+="${ms:+$ms }"
			done
		fi
		if [[ $PARTS == *" submit "* ]]; then
			# A database per run: the pooler keeps connections to the last.
			db=ab_submit_${v}_$r
			new_db "$db"
			ms=$(submit_p50 "$(conninfo "$db")")
			line+=" submit ${ms:-FAILED} ms,"
			sdirect[$v]+="${ms:+$ms }"
			conn="host=$TMP/bouncer port=5432 user=railyard dbname=$db"
			ms=$(submit_p50 "$conn")
			line+=" through pgbouncer ${ms:-FAILED} ms,"
			sbouncer[$v]+="${ms:+$ms }"
			rate=$(submit_rate "$conn" "$db")
			line+=" 8 clients through pgbouncer ${rate:-FAILED} pipelines/s,"
			srate[$v]+="${rate:+$rate }"
		fi
		echo "${line%,} (load $(loadavg))"
		kill_leftovers
	done
done

echo
echo "| | old | new |"
echo "| --- | --- | --- |"
# shellcheck disable=SC2086
if [[ $PARTS == *" dag "* ]]; then
	echo "| short DAG makespan, median (s) | $(median ${dags[old]}) | $(median ${dags[new]}) |"
	echo "| short DAG, per run (s) | ${dags[old]% } | ${dags[new]% } |"
fi
# shellcheck disable=SC2086
if [[ $PARTS == *" true "* ]]; then
	echo "| \`true\` tasks, median (tasks/s) | $(median ${rates[old]}) | $(median ${rates[new]}) |"
	echo "| \`true\` tasks, per run (tasks/s) | ${rates[old]% } | ${rates[new]% } |"
fi
# shellcheck disable=SC2086
if [[ $PARTS == *" cycle "* ]]; then
	for k in 1 6 32; do
		echo "| claim + completion of $k, median (ms) | $(median ${cycles[old$k]}) | $(median ${cycles[new$k]}) |"
		echo "| claim + completion of $k, per run (ms) | ${cycles[old$k]% } | ${cycles[new$k]% } |"
	done
fi
# shellcheck disable=SC2086
if [[ $PARTS == *" submit "* ]]; then
	echo "| railyard submit, direct, median p50 (ms) | $(median ${sdirect[old]}) | $(median ${sdirect[new]}) |"
	echo "| railyard submit, direct, per run (ms) | ${sdirect[old]% } | ${sdirect[new]% } |"
	echo "| railyard submit through pgbouncer, median p50 (ms) | $(median ${sbouncer[old]}) | $(median ${sbouncer[new]}) |"
	echo "| railyard submit through pgbouncer, per run (ms) | ${sbouncer[old]% } | ${sbouncer[new]% } |"
	echo "| 8 clients through pgbouncer, median (pipelines/s) | $(median ${srate[old]}) | $(median ${srate[new]}) |"
	echo "| 8 clients through pgbouncer, per run (pipelines/s) | ${srate[old]% } | ${srate[new]% } |"
fi
