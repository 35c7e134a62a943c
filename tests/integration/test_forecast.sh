#!/usr/bin/env bash
# Forecasting (issue 8, docs/forecasting.md): duration statistics, cold
# start, deterministic forecasts, the live ETA, anomaly detection that
# adapts, forecast-driven ranks, history import.  Runs are replayed through
# the real lifecycle functions (claim_tasks, complete_tasks, requeue_tasks)
# with chosen start and end times, so durations are exact and no test waits
# for a real process.
. "$(dirname "$0")/lib.sh"

# replay_sql: a helper in schema forecast_test (this script's own database)
# that runs one pipeline to the end: task after task in dependency order,
# each claimed by the agent and completed with start = the latest end of
# its upstreams and end = start + its duration from a JSON map (name ->
# seconds); outcomes from a second map (default succeeded).  Then the
# statistics take the runs in (observe_pending, what the workers do).
replay_setup() {
	sql "CREATE SCHEMA IF NOT EXISTS forecast_test;
CREATE OR REPLACE FUNCTION forecast_test.agent(p_name text, p_cores int DEFAULT 4) RETURNS bigint
LANGUAGE sql AS \$\$
    SELECT coalesce((SELECT id FROM railyard.agents WHERE name = p_name),
                    railyard.register_agent(p_name, 'host-' || p_name, 'linux', 'x86_64', p_cores, 8192,
                                            NULL, '{linux,x86_64}', 8, NULL, NULL, 1, 'test', 3600))
\$\$;
CREATE OR REPLACE FUNCTION forecast_test.replay(p_pid bigint, p_agent bigint, p_t0 timestamptz,
                                                p_dur jsonb, p_outcome jsonb DEFAULT '{}')
RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE
    t   record;
    fin jsonb := '{}';
    st  timestamptz;
    att int;
BEGIN
    LOOP
        SELECT id, name INTO t FROM railyard.tasks
         WHERE pipeline_id = p_pid AND state = 'ready' ORDER BY id LIMIT 1;
        EXIT WHEN NOT FOUND;
        SELECT max((fin->>e.upstream)::timestamptz) INTO st FROM railyard.edges e
         WHERE e.pipeline_id = p_pid AND e.downstream = t.name;
        st := coalesce(st, p_t0);
        SELECT c.attempt INTO att FROM railyard.claim_tasks(p_agent, ARRAY[t.id]) c;
        PERFORM railyard.complete_tasks(p_agent, ARRAY[t.id], ARRAY[att],
            ARRAY[coalesce(p_outcome->>t.name, 'succeeded')], ARRAY[0], ARRAY[NULL]::text[],
            ARRAY[st], ARRAY[st + make_interval(secs => (p_dur->>t.name)::float8)],
            ARRAY[NULL]::text[], ARRAY[NULL]::text[]);
        fin := fin || jsonb_build_object(t.name, st + make_interval(secs => (p_dur->>t.name)::float8));
    END LOOP;
    -- the statistics, as the workers' heartbeat would apply them
    PERFORM railyard.observe_pending();
END \$\$;" >/dev/null
}

# fresh_db NAME: a database of its own for one scenario, with the helpers.
fresh_db() {
	ry_newdb "$1" && replay_setup
}

# chain_pipeline NAME: build -> test -> deploy of one service, prints its id.
chain_pipeline() {
	ry_submit "(name) VALUES ('$1')" "
INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command) VALUES
  (:id, 'build', 'svc', 'build', 'true'), (:id, 'test', 'svc', 'test', 'true'),
  (:id, 'deploy', 'svc', 'deploy', 'true');
INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES
  (:id, 'build', 'test'), (:id, 'test', 'deploy');"
}

# run_chain NAME BUILD TEST DEPLOY [DAY]: submits and replays one run.
run_chain() {
	local id
	id=$(chain_pipeline "$1")
	sql "SELECT forecast_test.replay($id, forecast_test.agent('a1'),
	       '2026-01-01'::timestamptz + make_interval(days => ${5:-0}),
	       '{\"build\": $2, \"test\": $3, \"deploy\": $4}')" >/dev/null
	echo "$id"
}

stats_exclude_cached_and_skipped() {
	fresh_db stats_exclude_cached
	local id i
	for i in 1 2 3; do
		id=$(ry_submit "(name) VALUES ('mix@r$i')" "
INSERT INTO railyard.tasks (pipeline_id, name, kind, command) VALUES
  (:id, 'ran', 'build', 'true'), (:id, 'hit', 'build', 'true'), (:id, 'skip', 'test', 'true'),
  (:id, 'lost', 'test', 'true');")
		sql "SELECT forecast_test.replay($id, forecast_test.agent('a1'), '2026-01-01',
		       '{\"ran\": 10, \"hit\": 0.1, \"skip\": 0.1, \"lost\": 7}',
		       '{\"hit\": \"cached\", \"skip\": \"skipped\"}')" >/dev/null
	done
	# A requeue before the process started is no duration either.
	id=$(ry_submit "(name) VALUES ('mix@r4')" "
INSERT INTO railyard.tasks (pipeline_id, name, kind, command) VALUES (:id, 'lost', 'test', 'true');")
	sql "SELECT railyard.claim_tasks(forecast_test.agent('a1'), ARRAY(SELECT id FROM railyard.tasks WHERE pipeline_id = $id));
	     SELECT railyard.requeue_tasks(ARRAY(SELECT id FROM railyard.tasks WHERE pipeline_id = $id), 'agent lost')" >/dev/null
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $id AND outcome = 'lost'") == 1 ]] ||
		fail "the requeue left no lost attempt"
	local got
	got=$(sql "SELECT task || ':' || runs FROM railyard.task_duration_stats
	           WHERE family = 'mix' AND task <> '' AND agent_class = '*' ORDER BY task")
	[[ $got == $'hit:0\nlost:3\nran:3' ]] || fail "expected durations of ran and lost (3 runs each) only, got: $got"
	[[ $(sql "SELECT cache_hit_pct FROM railyard.task_duration_stats WHERE family = 'mix' AND task = 'hit' AND agent_class = '*'") == 100.0 ]] ||
		fail "the cache hits should count as such: $(sql "SELECT * FROM railyard.task_duration_stats WHERE family = 'mix' AND task = 'hit'")"
	[[ $(sql "SELECT median_s FROM railyard.task_duration_stats WHERE family = 'mix' AND task = 'ran' AND agent_class = '*'") == 10.000 ]] ||
		fail "median of 'ran' should be 10 s"
	[[ $(sql "SELECT count(*) FROM railyard.run_history WHERE family = 'mix' AND task IN ('hit', 'skip')") == 0 ]] ||
		fail "cached or skipped runs were stored as durations"
	# A hit is a use all the same: retention must not take it for idle.
	[[ $(sql "SELECT recent_at IS NOT NULL FROM railyard.duration_stats
	           WHERE family = 'mix' AND task = 'hit' AND agent_class = '*'") == t ]] ||
		fail "a task answered only from the cache has no recent_at: retention cannot tell it is in use"
}
run_scenario "duration statistics count real runs only (not cached, skipped or failed before start)" \
	stats_exclude_cached_and_skipped

cold_start_falls_back_as_documented() {
	fresh_db cold_start_falls_bac
	local i id
	for i in 1 2 3 4 5 6; do
		run_chain "shop@c$i" 100 50 20 >/dev/null
	done
	id=$(ry_submit "(name) VALUES ('shop@new')" "
INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command, version, estimate_s) VALUES
  (:id, 'build', 'svc', 'build', 'true', '1', NULL),
  (:id, 'test', 'svc', 'test', 'true', '2', NULL),
  (:id, 'lint', 'svc', 'lint', 'true', '1', 33),
  (:id, 'package', 'other', 'package', 'true', '1', NULL);
INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command) VALUES
  (:id, 'test-e2e', 'svc', 'test', 'true');")
	local got
	got=$(sql "SELECT name || ' ' || source || ' ' || round(center_s) FROM railyard.task_estimates($id) ORDER BY task_id")
	local want=$'build history 100\ntest other version 50\nlint estimate 33\npackage default 60\ntest-e2e service+kind 50'
	[[ $got == "$want" ]] || fail "cold-start sources differ; expected:"$'\n'"$want"$'\n'"got:"$'\n'"$got"
	id=$(ry_submit "(name) VALUES ('other@x')" "
INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command) VALUES (:id, 'unit', 'new', 'test', 'true');")
	got=$(sql "SELECT source || ' ' || round(center_s) FROM railyard.task_estimates($id)")
	[[ $got == "kind 50" ]] || fail "a task of a new service should borrow from its kind: $got"
	sql "SELECT railyard.record_pending_forecasts(20, 600000)" >/dev/null
	[[ $(sql "SELECT cold_tasks FROM railyard.pipeline_forecasts WHERE pipeline_id = $id") == 1 ]] ||
		fail "the recorded forecast does not count the cold task"
}
run_scenario "a task without history borrows: other version, estimate_s, service+kind, kind, default" \
	cold_start_falls_back_as_documented

# A farm's first pipelines have nothing to borrow from: task_estimates
# answers estimate_s or the default without its borrowing statement, and
# must say what that statement would.  Other families' statistics of
# another kind change nothing; of the same kind they are borrowed again.
nothing_to_borrow_takes_estimate_or_default() {
	fresh_db no_stats
	local id got want=$'a estimate 12 0.3\nb default 60 0.6'
	id=$(ry_submit "(name) VALUES ('first@1')" "
INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command, estimate_s) VALUES
  (:id, 'a', 'svc', 'build', 'true', 12), (:id, 'b', 'svc', 'test', 'true', NULL);
INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'a', 'b');")
	got=$(sql "SELECT name || ' ' || source || ' ' || round(center_s) || ' ' || sigma FROM railyard.task_estimates($id) ORDER BY task_id")
	[[ $got == "$want" ]] || fail "with no statistics at all, expected:"$'\n'"$want"$'\n'"got:"$'\n'"$got"
	# The ranks the COMMIT gave: a weighs 12 s plus b's 60 s below it.
	sql_eq "72 60" "SELECT string_agg(round(rank)::text, ' ' ORDER BY id) FROM railyard.tasks WHERE pipeline_id = $id" ||
		fail "ranks from the estimates"
	sql "INSERT INTO railyard.duration_stats (family, task, version, agent_class, service, kind, runs, ewma_log, last_at, recent_at)
	     VALUES ('else', 'ship', '1', '*', 'svc', 'deploy', 5, ln(40), now(), now())" >/dev/null
	id=$(ry_submit "(name) VALUES ('first@2')" "
INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command, estimate_s) VALUES
  (:id, 'a', 'svc', 'build', 'true', 12), (:id, 'b', 'svc', 'test', 'true', NULL);")
	got=$(sql "SELECT name || ' ' || source || ' ' || round(center_s) || ' ' || sigma FROM railyard.task_estimates($id) ORDER BY task_id")
	[[ $got == "$want" ]] || fail "statistics of another kind only, expected:"$'\n'"$want"$'\n'"got:"$'\n'"$got"
	sql "INSERT INTO railyard.duration_stats (family, task, version, agent_class, service, kind, runs, ewma_log, last_at, recent_at)
	     VALUES ('else', 'check', '1', '*', 'svc', 'test', 5, ln(40), now(), now())" >/dev/null
	got=$(sql "SELECT name || ' ' || source || ' ' || round(center_s) FROM railyard.task_estimates($id) ORDER BY task_id")
	[[ $got == $'a estimate 12\nb service+kind 40' ]] ||
		fail "another family's statistics of the same kind are not borrowed:"$'\n'"$got"
	# Deciding there is nothing to borrow probes the kind's index: a kind
	# nobody ran yet, among 3,000 statistics rows of another, reads at most a
	# handful of rows (a semi-join scanned them all).
	sql "INSERT INTO railyard.duration_stats (family, task, version, agent_class, service, kind, runs, ewma_log, last_at, recent_at)
	     SELECT 'f' || g, 'compile', '1', '*', 'svc', 'build', 5, ln(30), now(), now() FROM generate_series(1, 3000) g;
	     ANALYZE railyard.duration_stats" >/dev/null
	id=$(ry_submit "(name) VALUES ('publisher@1')" "
INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command) VALUES (:id, 'ship', 'web', 'publish', 'true');")
	local fetched
	fetched=$(sql "BEGIN; SELECT source FROM railyard.task_estimates($id);
	               SELECT idx_tup_fetch + seq_tup_read FROM pg_stat_xact_user_tables
	                WHERE relid = 'railyard.duration_stats'::regclass; COMMIT")
	[[ $(sed -n 1p <<<"$fetched") == default ]] || fail "a kind nobody ran: $(sed -n 1p <<<"$fetched")"
	(($(sed -n 2p <<<"$fetched") <= 10)) ||
		fail "deciding there is nothing to borrow read $(sed -n 2p <<<"$fetched") of 3,002 statistics rows"
}
run_scenario "with nothing to borrow from, a task takes its estimate_s or the default" \
	nothing_to_borrow_takes_estimate_or_default

# The soak found it: with a farm's statistics (a million rows) every COMMIT
# that had a task without history read and sorted all rows of its kind.
cold_start_reads_the_nearest_twenty() {
	fresh_db cold_start_reads_the
	# 3,000 other families' identities of kind build: the 20 most recent
	# at 40 s, the older ones at 10 s; the family's own 11 at 100 s.
	sql "INSERT INTO railyard.duration_stats (family, task, version, agent_class, service, kind,
	        runs, ewma_log, last_at, recent_at)
	     SELECT 'f' || g, 'compile', '1', '*', 'svc', 'build', 5,
	            ln(CASE WHEN g <= 20 THEN 40 ELSE 10 END), now() - g * interval '1 hour',
	            now() - g * interval '1 hour'
	       FROM generate_series(1, 3000) g;
	     INSERT INTO railyard.duration_stats (family, task, version, agent_class, service, kind,
	        runs, ewma_log, last_at, recent_at)
	     SELECT 'shop', 'old' || g, '1', '*', 'svc', 'build', 5, ln(100),
	            now() - interval '1 year', now() - interval '1 year'
	       FROM generate_series(1, 11) g;
	     ANALYZE railyard.duration_stats" >/dev/null
	local id got fetched
	id=$(ry_submit "(name) VALUES ('shop@new')" "
INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command) VALUES
  (:id, 'fresh', 'svc', 'build', 'true'), (:id, 'elsewhere', 'nosvc', 'build', 'true');")
	got=$(sql "SELECT name || ' ' || source || ' ' || round(center_s) FROM railyard.task_estimates($id) ORDER BY task_id")
	[[ $got == $'fresh service+kind 100\nelsewhere kind 100' ]] ||
		fail "expected the family's own 11 (100 s) and the 9 most recent others (40 s): median 100 s; got:"$'\n'"$got"
	id=$(ry_submit "(name) VALUES ('newcomer@1')" "
INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command) VALUES (:id, 'fresh', 'svc', 'build', 'true');")
	# one transaction: the statistics rows this lookup fetched
	fetched=$(sql "BEGIN; SELECT count(*) FROM railyard.task_estimates($id);
	               SELECT idx_tup_fetch + seq_tup_read FROM pg_stat_xact_user_tables
	                WHERE relid = 'railyard.duration_stats'::regclass; COMMIT" | sed -n 2p)
	[[ $(sql "SELECT source || ' ' || round(center_s) FROM railyard.task_estimates($id)") == "service+kind 40" ]] ||
		fail "a new family should borrow the 20 most recent others (40 s): $(sql "SELECT * FROM railyard.task_estimates($id)")"
	((fetched <= 100)) ||
		fail "a cold-start lookup fetched $fetched statistics rows of 3,011; the nearest 20 are an index walk"
}
run_scenario "a cold-start estimate reads the 20 nearest identities, not all of its kind" \
	cold_start_reads_the_nearest_twenty

forecast_is_deterministic_and_sound() {
	fresh_db forecast_is_determin
	local i id a b
	for i in $(seq 1 12); do
		# durations wobble by a few percent around 100 / 50 / 20
		run_chain "det@r$i" $((97 + i % 7)) $((48 + i % 5)) $((19 + i % 3)) "$i" >/dev/null
	done
	id=$(chain_pipeline "det@next")
	a=$(sql "SELECT p10_s, p50_s, p90_s, samples, critical_path FROM railyard.pipeline_forecast($id)")
	b=$(sql "SELECT p10_s, p50_s, p90_s, samples, critical_path FROM railyard.pipeline_forecast($id)")
	[[ -n $a && $a == "$b" ]] || fail "two forecasts of the same pipeline differ: $a / $b"
	local p10 p50 p90 path
	IFS='|' read -r p10 p50 p90 _ path <<<"$a"
	awk -v a="$p10" -v b="$p50" -v c="$p90" 'BEGIN { exit !(a < b && b < c && b > 160 && b < 180) }' ||
		fail "expected p10 < p50 < p90 with p50 near 100 + 50 + 20 = 170 s: $a"
	[[ $path == "{build,test,deploy}" ]] || fail "critical path: $path"
	# COMMIT only queued the forecast at submission; the workers' heartbeat
	# records it (here called directly), once
	[[ $(sql "SELECT count(*) FROM railyard.pipeline_forecasts WHERE pipeline_id = $id") == 0 ]] ||
		fail "COMMIT computed a forecast itself"
	[[ $(sql "SELECT railyard.record_pending_forecasts(20, 600000)") == 1 &&
	   $(sql "SELECT railyard.record_pending_forecasts(20, 600000)") == 0 ]] ||
		fail "record_pending_forecasts should record the one pending forecast, then nothing"
	[[ $(sql "SELECT count(*) FROM railyard.pipeline_forecasts WHERE pipeline_id = $id AND kind = 'submit'
	            AND p50_s = $p50") == 1 ]] ||
		fail "no forecast recorded at submission, or not the one pipeline_forecast gives: $(sql "SELECT p50_s FROM railyard.pipeline_forecasts WHERE pipeline_id = $id")"
	"$RY" forecast "$id" >"$RY_WORKDIR/forecast.out"
	grep -q "critical path build -> test -> deploy" "$RY_WORKDIR/forecast.out" ||
		fail "railyard forecast did not print the critical path: $(cat "$RY_WORKDIR/forecast.out")"
	# finished pipelines are judged
	sql "SELECT forecast_test.replay($id, forecast_test.agent('a1'), '2026-02-01', '{\"build\": 100, \"test\": 50, \"deploy\": 20}')" >/dev/null
	[[ $(sql "SELECT pipelines > 0 AND within_10_pct IS NOT NULL FROM railyard.forecast_accuracy WHERE family = 'det'") == t ]] ||
		fail "forecast_accuracy has no row for the family"
	"$RY" forecast "$id" | grep -q "^actual " || fail "railyard forecast of a finished pipeline shows no actual"
}
run_scenario "the same history gives the same forecast (seeded), p10 < p50 < p90 around the chain's sum" \
	forecast_is_deterministic_and_sound

eta_shrinks_and_survives_a_retry() {
	fresh_db eta_shrinks_and_surv
	local i id agent r0 r1 r2 r3 rrun ids
	for i in $(seq 1 8); do
		run_chain "eta@r$i" 100 100 100 "$i" >/dev/null
	done
	id=$(chain_pipeline "eta@live")
	agent=$(sql "SELECT forecast_test.agent('live')")
	rem() { sql "SELECT round(remaining_s + queue_wait_s) FROM railyard.pipeline_forecast($id)"; }
	tid() { sql "SELECT id FROM railyard.tasks WHERE pipeline_id = $id AND name = '$1'"; }
	r0=$(rem)
	# build runs and ends now, having started 100 s ago
	sql "SELECT railyard.claim_tasks($agent, ARRAY[$(tid build)]);
	     SELECT railyard.complete_tasks($agent, ARRAY[$(tid build)], ARRAY[1], ARRAY['succeeded'], ARRAY[0],
	         ARRAY[NULL]::text[], ARRAY[now() - interval '100 s'], ARRAY[now()], ARRAY[NULL]::text[], ARRAY[NULL]::text[])" >/dev/null
	r1=$(rem)
	# test is claimed (it has just started: a stable task, far from its
	# usual end), then its agent is lost: retried
	sql "SELECT railyard.claim_tasks($agent, ARRAY[$(tid test)])" >/dev/null
	rrun=$(rem)
	awk -v a="$r1" -v b="$rrun" 'BEGIN { exit !(b > a - 10 && b <= a + 1) }' ||
		fail "a task that just started should leave the remaining time about as it was: $r1 -> $rrun"
	sql "SELECT railyard.requeue_tasks(ARRAY[$(tid test)], 'agent lost')" >/dev/null
	r2=$(rem)
	sql "SELECT railyard.claim_tasks($agent, ARRAY[$(tid test)]);
	     SELECT railyard.complete_tasks($agent, ARRAY[$(tid test)], ARRAY[2], ARRAY['succeeded'], ARRAY[0],
	         ARRAY[NULL]::text[], ARRAY[now() - interval '1 s'], ARRAY[now()], ARRAY[NULL]::text[], ARRAY[NULL]::text[])" >/dev/null
	r3=$(rem)
	echo "remaining: $r0 -> $r1 -> retry $r2 -> $r3"
	awk -v a="$r0" -v b="$r1" -v c="$r2" -v d="$r3" 'BEGIN {
		exit !(a > 250 && a < 350 && b < a && b > 150 && c >= b - 10 && c <= a && d < c && d > 50 && d < 150) }' ||
		fail "remaining time should shrink as tasks finish and stay consistent across the retry: $r0 -> $r1 -> retry $r2 -> $r3"
}
run_scenario "the ETA shrinks as tasks finish and stays consistent when a task is retried" \
	eta_shrinks_and_survives_a_retry

regression_is_flagged_then_adapts() {
	fresh_db regression_is_flagge
	local i id d open flagged_at="" cleared_at="" out
	out=$(sql "LISTEN railyard_anomaly; SELECT 1;" 2>&1)
	for i in $(seq 1 30); do
		# +-3 % wobble; from run 16 on, 40 % slower
		d=$(awk -v i="$i" 'BEGIN { f = (i >= 16) ? 1.4 : 1.0; printf "%.2f", 100 * f * (1 + 0.03 * sin(i * 2.1)) }')
		id=$(ry_submit "(name) VALUES ('reg@r$i')" "
INSERT INTO railyard.tasks (pipeline_id, name, kind, command) VALUES (:id, 'build', 'build', 'true');")
		sql "SELECT forecast_test.replay($id, forecast_test.agent('a1'), '2026-01-01'::timestamptz + make_interval(hours => $i), '{\"build\": $d}')" >/dev/null
		open=$(sql "SELECT count(*) FROM railyard.anomalies WHERE state = 'open' AND family = 'reg' AND task = 'build' AND kind IN ('slower', 'slow_run')")
		if [[ -z $flagged_at && $open -gt 0 ]]; then
			flagged_at=$i
		elif [[ -n $flagged_at && -z $cleared_at && $open == 0 ]]; then
			cleared_at=$i
		fi
		[[ -n $flagged_at || $i -lt 16 || $open == 0 ]]
	done
	echo "flagged at run $flagged_at, cleared at run $cleared_at"
	[[ $(sql "SELECT count(*) FROM railyard.anomaly_log WHERE family = 'reg' AND detected_at IS NOT NULL AND id IN
	          (SELECT id FROM railyard.anomaly_log WHERE family = 'reg' ORDER BY id LIMIT 0)") == 0 ]]
	[[ -n $flagged_at && $flagged_at -ge 16 && $flagged_at -le 19 ]] ||
		fail "the 40 % regression at run 16 should be flagged within 3 runs (flagged at: ${flagged_at:-never})"
	[[ -n $cleared_at && $cleared_at -le 26 ]] ||
		fail "the alarm should stop once the baseline adapted (still open after run ${cleared_at:-30})"
	[[ $(sql "SELECT count(*) FROM railyard.anomaly_log WHERE family = 'reg' AND since < '2026-01-01'::timestamptz + interval '15 hours 30 min'") == 0 ]] ||
		fail "an anomaly was raised before the regression: $(sql "SELECT kind, agent_class, since, what FROM railyard.anomalies WHERE family = 'reg'")"
	local med
	med=$(sql "SELECT round(median_s) FROM railyard.task_duration_stats WHERE family = 'reg' AND task = 'build' AND agent_class = '*'")
	awk -v m="$med" 'BEGIN { exit !(m > 130 && m < 150) }' || fail "the baseline should now be about 140 s, it is $med"
	[[ $(sql "SELECT count(*) FROM railyard.anomalies WHERE family = 'reg' AND state = 'closed' AND closed_reason = 'baseline adapted to the new level'") -ge 1 ]] ||
		fail "no anomaly closed with 'baseline adapted to the new level'"
	# the anomaly was announced, and status lists open ones
	out=$(sql "LISTEN railyard_anomaly;
	      SELECT forecast_test.replay(railyard.cancel_pipeline(0)::text::bigint, 0, now(), '{}')" 2>&1 || :)
	echo "$out"
}
run_scenario "a 40 % regression is flagged within a few runs and stops being flagged once the baseline adapts" \
	regression_is_flagged_then_adapts

anomaly_is_notified_and_listed() {
	fresh_db anomaly_is_notified_
	local i id out
	for i in $(seq 1 12); do
		id=$(ry_submit "(name) VALUES ('note@r$i')" "
INSERT INTO railyard.tasks (pipeline_id, name, kind, command) VALUES (:id, 'build', 'build', 'true');")
		sql "SELECT forecast_test.replay($id, forecast_test.agent('a1'), '2026-01-01', '{\"build\": $((50 + i % 3))}')" >/dev/null
	done
	id=$(ry_submit "(name) VALUES ('note@slow')" "
INSERT INTO railyard.tasks (pipeline_id, name, kind, command) VALUES (:id, 'build', 'build', 'true');")
	# one psql session: LISTEN, then the slow run; psql prints the NOTIFY
	out=$(sql "LISTEN railyard_anomaly;
	           SELECT forecast_test.replay($id, forecast_test.agent('a1'), '2026-01-02', '{\"build\": 300}');
	           SELECT 'done';" 2>&1)
	[[ $out == *'notification "railyard_anomaly"'* ]] || fail "no NOTIFY railyard_anomaly for a 6x slower run: $out"
	"$RY" status >"$RY_WORKDIR/status.out"
	grep -q "build (note).*one run took 300" "$RY_WORKDIR/status.out" ||
		fail "railyard status does not list the open anomaly: $(cat "$RY_WORKDIR/status.out")"
}
run_scenario "a new anomaly sends NOTIFY railyard_anomaly and railyard status lists it" anomaly_is_notified_and_listed

forecast_recorded_after_commit() {
	fresh_db forecast_recorded_af
	local i a b done
	for i in 1 2 3 4 5 6; do
		run_chain "rec@r$i" 100 50 20 "$i" >/dev/null
	done
	# a: started before the heartbeat came; b: finished before it came
	a=$(chain_pipeline "rec@a")
	b=$(chain_pipeline "rec@b")
	[[ $(sql "SELECT count(*) FROM railyard.forecast_pending WHERE pipeline_id IN ($a, $b)") == 2 &&
		$(sql "SELECT count(*) FROM railyard.pipeline_forecasts WHERE pipeline_id IN ($a, $b)") == 0 ]] ||
		fail "COMMIT should only queue the forecasts"
	sql "SELECT forecast_test.replay($b, forecast_test.agent('a1'), '2026-02-01', '{\"build\": 100, \"test\": 50, \"deploy\": 20}')" >/dev/null
	sql "SELECT railyard.claim_tasks(forecast_test.agent('a1'), ARRAY(SELECT id FROM railyard.tasks WHERE pipeline_id = $a AND name = 'build'))" >/dev/null
	# A time budget no loaded machine reaches: the test is about what is
	# recorded, not how fast.
	done=$(sql "SELECT railyard.record_pending_forecasts(20, 600000)")
	[[ $done == 1 && $(sql "SELECT count(*) FROM railyard.forecast_pending") == 0 ]] ||
		fail "one forecast should be recorded and the queue emptied (recorded $done)"
	[[ $(sql "SELECT count(*) FROM railyard.pipeline_forecasts WHERE pipeline_id = $b") == 0 ]] ||
		fail "a pipeline that finished before its forecast was made must not get one (its runs are in the statistics)"
	# recorded as at submission: the whole run, not what is left
	awk -v p="$(sql "SELECT p50_s FROM railyard.pipeline_forecasts WHERE pipeline_id = $a AND kind = 'submit'")" \
		'BEGIN { exit !(p > 160 && p < 180) }' ||
		fail "the forecast at submission should be the whole run (about 170 s): $(sql "SELECT p50_s, method FROM railyard.pipeline_forecasts WHERE pipeline_id = $a")"
}
run_scenario "the forecast at submission is recorded after COMMIT as if nothing had started; a pipeline already finished is dropped" \
	forecast_recorded_after_commit

# has_submit_forecast ID: the submission forecast of pipeline ID is stored.
has_submit_forecast() {
	[[ $(sql "SELECT count(*) FROM railyard.pipeline_forecasts WHERE pipeline_id = $1 AND kind = 'submit'") == 1 ]]
}

worker_records_submission_forecasts() {
	fresh_db worker_forecasts
	local i id
	for i in 1 2 3; do
		run_chain "wrk@r$i" 30 20 10 "$i" >/dev/null
	done
	# The task waits for a label no agent has: nothing runs, so only the
	# worker's housekeeping can have recorded the forecast.
	id=$(ry_submit "(name) VALUES ('wrk@new')" "
		INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command, requires)
		VALUES (:id, 'build', 'svc', 'build', 'true', '{nowhere}');")
	start_worker wf-1 --heartbeat 1 --lease 3 --workdir "$RY_WORKDIR/w-forecast"
	wait_for 30 has_submit_forecast "$id"
	[[ $(sql "SELECT count(*) FROM railyard.forecast_pending") == 0 ]] ||
		fail "the worker left submission forecasts queued"
}
run_scenario "an idle worker records the submission forecast queued at COMMIT" \
	worker_records_submission_forecasts

agent_classes_mix() {
	fresh_db agent_classes_mix
	local i id fast slow ag d got
	fast=$(sql "SELECT forecast_test.agent('fast', 4)")
	slow=$(sql "SELECT forecast_test.agent('slow', 8)")
	for i in $(seq 1 30); do
		# two runs in three on the fast class (100 s), the third on the
		# slow one (150 s), +-3 %; from run 25 on, 40 % slower on both
		ag=$fast
		((i % 3 == 0)) && ag=$slow
		d=$(awk -v i="$i" -v s=$((i % 3 == 0)) 'BEGIN { printf "%.2f", (s ? 150 : 100) * (i >= 25 ? 1.4 : 1) * (1 + 0.03 * sin(i * 2.1)) }')
		id=$(ry_submit "(name) VALUES ('mix@r$i')" "
INSERT INTO railyard.tasks (pipeline_id, name, kind, command) VALUES (:id, 'build', 'build', 'true');")
		sql "SELECT railyard.record_pending_forecasts(20, 600000)" >/dev/null   # the heartbeat
		if ((i == 24)); then
			# before the regression: forecast as the mix of both classes
			got=$(sql "SELECT round(p10_s) || ' ' || round(p50_s) || ' ' || round(p90_s) FROM railyard.pipeline_forecasts WHERE pipeline_id = $id")
			awk -v g="$got" 'BEGIN { split(g, q, " "); exit !(q[1] >= 90 && q[1] <= 105 && q[2] >= 95 && q[2] <= 110 && q[3] >= 140) }' ||
				fail "a task on two classes (100 s two runs in three, 150 s else) should be forecast p10/p50 near 100 s and the slow class inside p10-p90: $got"
			[[ $(sql "SELECT count(*) FROM railyard.anomaly_log WHERE family = 'mix'") == 0 ]] ||
				fail "runs on a slower agent class are no anomaly: $(sql "SELECT what FROM railyard.anomalies")"
		fi
		sql "SELECT forecast_test.replay($id, $ag, '2026-01-01'::timestamptz + make_interval(hours => $i), '{\"build\": $d}')" >/dev/null
	done
	got=$(sql "SELECT string_agg(round(median_s) || '', ' ' ORDER BY agent_class) FROM railyard.task_duration_stats
	           WHERE family = 'mix' AND task = 'build' AND agent_class <> '*'")
	echo "class medians: $got"
	[[ $(sql "SELECT count(*) FROM railyard.anomaly_log WHERE family = 'mix' AND kind IN ('slower', 'slow_run')
	          AND since >= '2026-01-02 01:00'") -ge 1 ]] ||
		fail "the 40 % regression on both classes should be flagged: $(sql "SELECT kind, since FROM railyard.anomaly_log WHERE family = 'mix'")"
}
run_scenario "a task that runs on agent classes of different speed is forecast as their mix, and only its real regression is flagged" \
	agent_classes_mix

queue_wait_behind_load() {
	fresh_db queue_wait_behind_lo
	local i id l got
	sql "SELECT forecast_test.agent('a1')" >/dev/null        # 8 slots
	for i in 1 2 3 4 5; do
		id=$(ry_submit "(name) VALUES ('load@h$i')" "
INSERT INTO railyard.tasks (pipeline_id, name, forecast_key, kind, command) VALUES (:id, 'j1', 'job', 'build', 'true');")
		sql "SELECT forecast_test.replay($id, forecast_test.agent('a1'), '2026-01-01'::timestamptz + make_interval(hours => $i), '{\"j1\": 60}')" >/dev/null
		run_chain "q@r$i" 30 20 10 "$i" >/dev/null
	done
	# 12 higher-priority tasks of 60 s ahead on 8 slots: the pipeline's
	# first task gets the first slot that frees once they are all placed
	l=$(ry_submit "(name, priority) VALUES ('load@now', 10)" "
INSERT INTO railyard.tasks (pipeline_id, name, forecast_key, kind, command)
SELECT :id, 'j' || g, 'job', 'build', 'true' FROM generate_series(1, 12) g;")
	id=$(chain_pipeline "q@now")
	got=$(sql "SELECT round(queue_wait_s) || ' ' || method FROM railyard.pipeline_forecast($id)")
	[[ $got == "60 "*"behind 12 queued tasks"* ]] ||
		fail "12 tasks of 60 s ahead on 8 slots should mean a 60 s queue wait: $got"
	sql "SELECT railyard.cancel_pipeline($l)" >/dev/null
	got=$(sql "SELECT round(queue_wait_s) FROM railyard.pipeline_forecast($id)")
	[[ $got == 0 ]] || fail "with the load gone the queue wait should be 0: $got"
}
run_scenario "a pipeline queued behind higher-priority work is forecast to wait until a slot is left for it" \
	queue_wait_behind_load

rank_follows_history() {
	fresh_db rank_follows_history
	# a root with a short fan-out (ids first) and a long chain
	submit_rank() {
		ry_submit "(name) VALUES ('rank@$1')" "
INSERT INTO railyard.tasks (pipeline_id, name, kind, command) VALUES
  (:id, 'fan', 'build', 'true'), (:id, 'f1', 'test', 'true'), (:id, 'f2', 'test', 'true'),
  (:id, 'f3', 'test', 'true'), (:id, 'chain1', 'build', 'true'), (:id, 'chain2', 'build', 'true');
INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES
  (:id, 'fan', 'f1'), (:id, 'fan', 'f2'), (:id, 'fan', 'f3'), (:id, 'chain1', 'chain2');"
	}
	local id first i
	id=$(submit_rank cold)
	first=$(sql "SELECT c.id FROM railyard.claim_candidates('{linux}', 'linux', 'x86_64', 64, 65536, 1) c")
	[[ $(sql "SELECT name FROM railyard.tasks WHERE id = $first") == fan ]] ||
		fail "without history the tie should go to the lower id (fan)"
	sql "SELECT railyard.cancel_pipeline($id)" >/dev/null
	for i in 1 2 3; do
		id=$(submit_rank "h$i")
		sql "SELECT railyard.cancel_pipeline(id) FROM railyard.pipelines WHERE name LIKE 'rank@%' AND state = 'queued' AND id <> $id" >/dev/null
		sql "SELECT forecast_test.replay($id, forecast_test.agent('a1'), '2026-01-01',
		       '{\"fan\": 5, \"f1\": 5, \"f2\": 6, \"f3\": 4, \"chain1\": 120, \"chain2\": 90}')" >/dev/null
	done
	id=$(submit_rank warm)
	first=$(sql "SELECT c.id FROM railyard.claim_candidates('{linux}', 'linux', 'x86_64', 64, 65536, 1) c")
	[[ $(sql "SELECT name FROM railyard.tasks WHERE id = $first") == chain1 ]] ||
		fail "with history the long chain should be claimed first: $(sql "SELECT name, rank FROM railyard.tasks WHERE pipeline_id = $id ORDER BY rank DESC")"
	local r
	r=$(sql "SELECT round(rank) FROM railyard.tasks WHERE pipeline_id = $id AND name = 'chain1'")
	[[ $r == 210 ]] || fail "chain1's rank should be 120 + 90 = 210 s, it is $r"
}
run_scenario "once history exists the rank orders a long chain before a short fan-out" rank_follows_history

history_import_is_checked_whole() {
	fresh_db history_import_is_ch
	local f=$RY_WORKDIR/history.jsonl out rc=0
	cat >"$f" <<-'JSONL'
		# exported from another CI system
		{"family": "imp", "task": "build", "start": "2026-01-05T10:00:00Z", "end": "2026-01-05T10:02:00Z", "outcome": "success", "run": 1, "host": {"os": "linux", "arch": "x86_64", "cores": 8, "labels": ["docker", "linux"]}}
		{"family": "imp", "task": "build", "start": "2026-01-06T10:00:00Z", "end": "2026-01-06T10:02:10Z", "outcome": "succeeded", "run": 2}
		{"family": "imp", "task": "build", "start": "2026-01-07T10:00:00Z", "end": "2026-01-07T09:02:10Z", "outcome": "succeeded", "run": 3}
	JSONL
	out=$("$RY" history import "$f" 2>&1) || rc=$?
	[[ $rc == 2 && $out == *"history.jsonl:4: \"end\" is before \"start\""* && $out == *"nothing imported"* ]] ||
		fail "a bad line should be reported as FILE:4 with exit 2 (rc $rc): $out"
	[[ $(sql "SELECT count(*) FROM railyard.run_history WHERE family = 'imp'") == 0 ]] ||
		fail "rows of a bad file were stored"
	printf '{"family": "imp", "task": "build", "start": 1, "end": 2, "outcome": "ok"}\n' >"$f.2"
	out=$("$RY" history import "$f.2" 2>&1) || :
	[[ $out == *"history.jsonl.2:1: \"outcome\" must be"* ]] || fail "bad outcome: $out"
	printf '{"family": "imp", "task": "build", "start": 1, "end": 2, "outcome": "failed", "colour": "red"}\n' >"$f.3"
	out=$("$RY" history import "$f.3" 2>&1) || :
	[[ $out == *"history.jsonl.3:1: unknown key \"colour\""* ]] || fail "unknown key: $out"
	printf '{"family": "imp", "task": "build", "start": 1, "end": 2\n' >"$f.4"
	out=$("$RY" history import "$f.4" 2>&1) || :
	[[ $out == *"history.jsonl.4:1: invalid JSON"* ]] || fail "broken JSON: $out"

	sed -i '$d' "$f"
	out=$("$RY" history import "$f")
	[[ $out == "imported 2 task runs and 2 pipeline runs"* ]] || fail "good file: $out"
	out=$("$RY" history import "$f")
	[[ $out == "imported 0 task runs and 0 pipeline runs"* ]] || fail "a second import should store nothing new: $out"
	[[ $(sql "SELECT agent_class FROM railyard.run_history WHERE family = 'imp' ORDER BY started_at LIMIT 1") == "linux/x86_64/8c/docker" ]] ||
		fail "host facts should give the agent class linux/x86_64/8c/docker"
	[[ $(sql "SELECT runs || ' ' || median_s FROM railyard.task_duration_stats WHERE family = 'imp' AND task = 'build' AND agent_class = '*'") == "2 124.900" ]] ||
		fail "imported runs should feed the statistics"
	local id
	id=$(ry_submit "(name) VALUES ('imp@1')" "INSERT INTO railyard.tasks (pipeline_id, name, kind, command) VALUES (:id, 'build', 'build', 'true');")
	[[ $(sql "SELECT source FROM railyard.task_estimates($id)") == history ]] ||
		fail "a new pipeline of the imported family should use the imported history"
}
run_scenario "history import: a malformed line is reported as FILE:LINE and nothing of the file is stored" \
	history_import_is_checked_whole
