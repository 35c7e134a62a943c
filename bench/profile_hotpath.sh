#!/usr/bin/env bash
#
# bench/profile_hotpath.sh BUILD_DIR [TASKS]
#
# Where the hot path's time and writes go, per task, measured on the
# benchmark's own throwaway server (durable defaults, as bench/run.sh starts
# it, plus pg_stat_statements):
#   - run:    TASKS no-op tasks (default 4,000) in pipelines of 100, bulk
#             submitted and ANALYZEd, claimed and completed by one
#             `railyard worker --dry-run --slots 32` (PROFILE_WORKERS=2:
#             two, as the throughput benchmark's orchestration ceiling);
#   - drain:  the statistics of the run (observation_pending), applied by
#             one observe_pending(); the workers' own drains are held off
#             during the run (PROFILE_DRAIN=workers: they are not, and the
#             drain applies what they left);
#   - submit: 40 submissions of the submission benchmark's 50-task pipeline
#             with 65 edges (plain SQL, one client), validated at COMMIT.
# For each phase: WAL bytes per task (pg_current_wal_lsn before and after,
# after a CHECKPOINT, so full-page images are counted as a live server pays
# them), rows inserted / updated (of which HOT) / deleted per task in each
# railyard table (pg_stat_user_tables), statements per task (top level:
# round trips; all: with those run inside functions and triggers) and the
# statements that took the most time (pg_stat_statements, track = all), and
# the WAL by relation (pg_walinspect: which tables and indexes it goes to).
# Prints markdown.  docs/benchmarks.md ("Where the time goes") holds its
# output before and after the hot-path work.

set -uo pipefail
export LC_ALL=C TZ=UTC
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS RAILYARD_DB

if (($# < 1)); then
	echo "usage: bench/profile_hotpath.sh BUILD_DIR [TASKS]" >&2
	exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
NTASKS=${2:-4000}
if ! [[ $NTASKS =~ ^[0-9]+$ ]] || ((NTASKS < 100)); then
	echo "error: TASKS must be a number of at least 100" >&2
	exit 2
fi
NTASKS=$((NTASKS / 100 * 100))
NWORKERS=${PROFILE_WORKERS:-1}
if ! [[ $NWORKERS =~ ^[1-9][0-9]?$ ]]; then
	echo "error: PROFILE_WORKERS must be 1 to 99" >&2
	exit 2
fi
QUICK=0

# shellcheck source=scripts/pg-common.sh
. "$ROOT/scripts/pg-common.sh"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
# shellcheck source=bench/bench_overhead.sh
. "$ROOT/bench/bench_overhead.sh"

standalone_harness "$1" || exit 2
SPAWN=$BUILD/bench/spawn

BENCH_PG_SETTINGS="shared_preload_libraries=pg_stat_statements;pg_stat_statements.track=all;track_functions=all${BENCH_PG_SETTINGS:+;$BENCH_PG_SETTINGS}"
if ! start_cluster >"$TMP/setup.log" 2>&1; then
	echo "error: cannot start the profiling cluster:" >&2
	sed 's/^/  /' "$TMP/setup.log" >&2
	exit 2
fi

# snapshot DB FILE: per railyard table "name ins upd hot del", plus the
# current WAL position on a line "wal LSN".
snapshot() {
	q "$1" "SELECT pg_stat_force_next_flush()" >/dev/null
	q "$1" "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del
		FROM pg_stat_user_tables WHERE schemaname = 'railyard' ORDER BY relname" | tr '|' ' ' >"$2"
	echo "wal $(q "$1" "SELECT pg_current_wal_lsn()")" >>"$2"
}

# report DB BEFORE AFTER N WHAT: the per-task table of one phase.
report() {
	local db=$1 before=$2 after=$3 n=$4 what=$5 wal
	wal=$(q "$db" "SELECT pg_wal_lsn_diff('$(awk '$1 == "wal" { print $2 }' "$after")',
		'$(awk '$1 == "wal" { print $2 }' "$before")')")
	echo
	echo "#### $what: $n tasks"
	echo
	echo "- WAL: $(calc "$wal / $n" %.0f) bytes per task ($wal in all)"
	q "$db" "SELECT sum(calls) FILTER (WHERE toplevel), sum(calls),
			round(sum(total_exec_time) FILTER (WHERE toplevel)::numeric, 1)
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())" |
		awk -F'|' -v n="$n" '{ printf "- statements: %.2f per task at top level (round trips), %.2f with those inside functions and triggers; %.3f ms of top-level execution per task\n", $1 / n, $2 / n, $3 / n }'
	echo
	echo "WAL by relation (pg_walinspect; a record counts for the first block it touches; top 12):"
	echo
	echo "| relation | bytes / task | records / task | of which full-page images, bytes / task |"
	echo "| --- | --- | --- | --- |"
	q "$db" "SELECT coalesce(pg_filenode_relation(0, (regexp_match(block_ref, 'rel \d+/\d+/(\d+)'))[1]::oid)::text,
				CASE WHEN block_ref IS NULL OR block_ref = '' THEN '(no relation: ' || resource_manager || ')'
				     ELSE '(other)' END) AS rel,
			round(sum(record_length)::numeric / $n, 0), round(count(*)::numeric / $n, 2),
			round(sum(fpi_length)::numeric / $n, 0)
		FROM pg_get_wal_records_info('$(awk '$1 == "wal" { print $2 }' "$before")',
		                             '$(awk '$1 == "wal" { print $2 }' "$after")')
		GROUP BY 1 ORDER BY 2 DESC LIMIT 12" |
		awk -F'|' '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }'
	echo
	echo "| table | inserted / task | updated / task | of which HOT | deleted / task |"
	echo "| --- | --- | --- | --- | --- |"
	awk -v n="$n" 'FNR == NR { if ($1 != "wal") { i[$1] = $2; u[$1] = $3; h[$1] = $4; d[$1] = $5 } next }
		$1 != "wal" {
			di = $2 - i[$1]; du = $3 - u[$1]; dh = $4 - h[$1]; dd = $5 - d[$1]
			if (di + du + dd == 0) next
			ti += di; tu += du; th += dh; td += dd
			printf "| %s | %.2f | %.2f | %s | %.2f |\n", $1, di / n, du / n,
				du ? sprintf("%.0f %%", 100 * dh / du) : "—", dd / n
		}
		END { printf "| all | %.2f | %.2f | %s | %.2f |\n", ti / n, tu / n,
			tu ? sprintf("%.0f %%", 100 * th / tu) : "—", td / n }' "$before" "$after"
	echo
	echo "Statements by total time (pg_stat_statements; per task: calls and ms):"
	echo
	echo "| statement | top level | calls / task | ms / task | rows / call |"
	echo "| --- | --- | --- | --- | --- |"
	q "$db" "SELECT regexp_replace(left(regexp_replace(query, '\s+', ' ', 'g'), 90), '\|', '/', 'g'),
			CASE WHEN toplevel THEN 'yes' ELSE 'no' END,
			round(calls::numeric / $n, 3), round((total_exec_time / $n)::numeric, 4),
			round(rows::numeric / greatest(calls, 1), 1)
		FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND query !~* 'pg_stat_statements|pg_stat_force_next_flush|pg_current_wal_lsn|pg_stat_user_tables|pg_get_wal_records_info'
		ORDER BY total_exec_time DESC LIMIT 12" |
		awk -F'|' '{ printf "| `%s` | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }'
}

echo "railyard hot-path profile, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "- machine: $(machine_line); load average at start $(loadavg)"
echo "- postgres: $(pg_settings_line)"

# ---- run: claim and complete -----------------------------------------------
db=profile_run
new_db "$db"
q "$db" "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION pg_walinspect" >/dev/null
submit_flat "$db" $((NTASKS / 100)) 100 true 8 prof
analyze_db "$db"
# The workers apply the statistics of finished runs when idle, one at a
# time (observe_pending, which skips while another holds its lock): held
# here, so that the run phase is the completion path alone and the drain
# phase below applies all of it.  PROFILE_DRAIN=workers lets them.
holder=""
if [[ ${PROFILE_DRAIN:-held} != workers ]]; then
	q "$db" "SELECT pg_advisory_lock(hashtext('railyard.observe_pending')), pg_sleep(86400)" >/dev/null 2>&1 &
	holder=$!
	until [[ $(q "$db" "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") == 1 ]]; do
		nap 0.05
	done
fi
q "$db" "CHECKPOINT" >/dev/null
snapshot "$db" "$TMP/run.before"
q "$db" "SELECT pg_stat_statements_reset()" >/dev/null
pids=()
for ((i = 1; i <= NWORKERS; i++)); do
	start_worker "$db" "prof$i" --dry-run --slots 32
	pids+=("$LAST_PID")
done
if ! WAIT_EVERY=0.5 wait_for 900 at_least_succeeded "$db" "$NTASKS" "${pids[@]}"; then
	echo "error: the workers did not complete $NTASKS tasks (KEEP_TMP=1 keeps their logs)" >&2
	exit 1
fi
stop_workers "${pids[@]}"
snapshot "$db" "$TMP/run.after"
if [[ -n $holder ]]; then
	q "$db" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'SELECT pg_advisory_lock(hashtext(%' AND pid <> pg_backend_pid()" >/dev/null
	wait "$holder" 2>/dev/null
fi
report "$db" "$TMP/run.before" "$TMP/run.after" "$NTASKS" \
	"run (claim, complete, settle; $NWORKERS dry-run worker(s), --slots 32)"
rate=$(q "$db" "SELECT round(($NTASKS / extract(epoch FROM max(at) FILTER (WHERE event = 'finish')
	- min(at) FILTER (WHERE event = 'claim')))::numeric, 0) FROM railyard.audit_log WHERE object = 'task'")
echo
echo "($rate tasks/s, first claim to last finish)"

# ---- drain: the statistics of the run ------------------------------------------
# What the completions queued and the workers had not applied yet
# (observation_pending, sql/50_forecast.sql), applied in one call: its
# cost per task of the run, to set against the run's.
pending=$(q "$db" "SELECT count(*) FROM railyard.observation_pending")
q "$db" "CHECKPOINT" >/dev/null
snapshot "$db" "$TMP/drain.before"
q "$db" "SELECT pg_stat_statements_reset()" >/dev/null
t0=$(now)
applied=$(q "$db" "SELECT railyard.observe_pending()")
t1=$(now)
snapshot "$db" "$TMP/drain.after"
report "$db" "$TMP/drain.before" "$TMP/drain.after" "$NTASKS" \
	"drain (railyard.observe_pending() of the $applied observations the workers left queued, per task of the run)"
echo
echo "($applied observations in $(calc "($t1 - $t0) * 1000" %.0f) ms: $(calc "($t1 - $t0) * 1000 / ($applied > 0 ? $applied : 1)" %.3f) ms each; $pending were queued at the end of the run)"
drop_db "$db"

# ---- submit ------------------------------------------------------------------
db=profile_submit
new_db "$db"
q "$db" "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION pg_walinspect" >/dev/null
dag_generate 77 16 >"$TMP/dag.tsv"
dag_sql "$TMP/dag.tsv" prof-sub | grep -v '^\\echo' >"$TMP/submit.sql"
per=$(wc -l <"$TMP/dag.tsv")
nsub=40
q "$db" "CHECKPOINT" >/dev/null
snapshot "$db" "$TMP/sub.before"
q "$db" "SELECT pg_stat_statements_reset()" >/dev/null
if ! "$PG_BINDIR/pgbench" -n -c 1 -t "$nsub" -f "$TMP/submit.sql" "$(conninfo "$db")" >"$TMP/logs/pgbench.log" 2>&1; then
	echo "error: pgbench could not submit: $(tail -n 3 "$TMP/logs/pgbench.log")" >&2
	exit 1
fi
snapshot "$db" "$TMP/sub.after"
[[ $(q "$db" "SELECT count(*) FROM railyard.pipelines WHERE validated_at IS NOT NULL") == "$nsub" ]] || {
	echo "error: not all $nsub pipelines were validated" >&2
	exit 1
}
report "$db" "$TMP/sub.before" "$TMP/sub.after" $((nsub * per)) \
	"submit ($nsub pipelines of $per tasks with edges, plain SQL, one client)"
drop_db "$db"
exit 0
