#!/usr/bin/env bash
# The forecast statistics off the completion path (issue 12,
# docs/forecasting.md "When the statistics see a run"): completing a task
# records its run in run_history and queues the observation in
# observation_pending, nothing more; railyard.observe_pending() applies
# the queue in batches, giving the same statistics and anomalies as
# railyard.observe() on the same history; it is idempotent, survives a bad
# row, and a worker applies the queue on its own.
. "$(dirname "$0")/lib.sh"

# observe_setup: the helpers of this script (schema observe_test): an agent
# per class, and a replay that runs one pipeline to the end with chosen
# times (one completion per task, tasks in dependency order), leaving the
# statistics alone.
observe_setup() {
	sql "CREATE SCHEMA observe_test;
CREATE FUNCTION observe_test.agent(p_name text, p_cores int) RETURNS bigint
LANGUAGE sql AS \$\$
    SELECT coalesce((SELECT id FROM railyard.agents WHERE name = p_name),
                    railyard.register_agent(p_name, 'host-' || p_name, 'linux', 'x86_64', p_cores, 8192,
                                            NULL, '{linux,x86_64}', 8, NULL, NULL, 1, 'test', 3600))
\$\$;
-- p_plan: task -> [start (s after p_t0), duration, agent, outcome]
CREATE FUNCTION observe_test.replay(p_pid bigint, p_t0 timestamptz, p_plan jsonb)
RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE
    t   record;
    st  timestamptz;
    att int;
BEGIN
    LOOP
        SELECT k.id, k.name, p_plan -> k.name AS p INTO t FROM railyard.tasks k
         WHERE k.pipeline_id = p_pid AND k.state = 'ready' ORDER BY k.id LIMIT 1;
        EXIT WHEN NOT FOUND;
        st := p_t0 + make_interval(secs => (t.p ->> 0)::float8);
        SELECT c.attempt INTO att FROM railyard.claim_tasks((t.p ->> 2)::bigint, ARRAY[t.id]) c;
        PERFORM railyard.complete_tasks((t.p ->> 2)::bigint, ARRAY[t.id], ARRAY[att],
            ARRAY[t.p ->> 3], ARRAY[CASE WHEN t.p ->> 3 = 'failed' THEN 1 ELSE 0 END],
            ARRAY[NULL]::text[], ARRAY[st], ARRAY[st + make_interval(secs => (t.p ->> 1)::float8)],
            ARRAY[NULL]::text[], ARRAY[NULL]::text[]);
    END LOOP;
END \$\$;
-- what the statistics and detectors produced, without the wall-clock
-- columns (the time they were applied) and ids
CREATE FUNCTION observe_test.snapshot() RETURNS TABLE (what text, row_json jsonb)
LANGUAGE sql AS \$\$
    SELECT 'stats', to_jsonb(s) - 'updated_at' FROM railyard.duration_stats s
    UNION ALL
    SELECT 'anomaly', to_jsonb(a) - 'id' - 'detected_at' - 'last_seen_at' - 'closed_at'
      FROM railyard.anomaly_log a
\$\$;" >/dev/null
}

# build_test_pipeline NAME: build -> test, prints its id.
build_test_pipeline() {
	ry_submit "(name) VALUES ('$1')" "
INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command) VALUES
  (:id, 'build', 'svc', 'build', 'true'), (:id, 'test', 'svc', 'test', 'true');
INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'build', 'test');"
}

# replay_history RUNS: RUNS runs of family obs, an hour apart: build on two
# agent classes of different speed (two runs in three on the fast one),
# 50 % slower from run 14 on; test a cache hit every fourth run, a failure
# at run 9.  Everything the detectors and the class offsets look at.
replay_history() {
	local fast slow i id ag d plan
	fast=$(sql "SELECT observe_test.agent('fast', 4)")
	slow=$(sql "SELECT observe_test.agent('slow', 8)")
	for ((i = 1; i <= $1; i++)); do
		ag=$fast
		((i % 3 == 0)) && ag=$slow
		d=$(awk -v i="$i" -v s=$((i % 3 == 0)) 'BEGIN { printf "%.2f", (s ? 150 : 100) * (i >= 14 ? 1.5 : 1) * (1 + 0.03 * sin(i * 2.1)) }')
		plan="\"build\": [0, $d, $ag, \"succeeded\"], \"test\": [$d, 30, $fast, \"$(
			((i % 4 == 0)) && echo cached || { ((i == 9)) && echo failed || echo succeeded; })\"]"
		id=$(build_test_pipeline "obs@r$i")
		sql "SELECT observe_test.replay($id, '2026-01-01'::timestamptz + make_interval(hours => $i), '{$plan}')" >/dev/null
	done
}

completion_only_queues() {
	ry_newdb queues && observe_setup
	replay_history 2
	# 2 runs x (build, test, the pipeline): all recorded, all queued,
	# nothing applied
	[[ $(sql "SELECT count(*) FROM railyard.run_history WHERE family = 'obs'") == 4 &&
		$(sql "SELECT count(*) FROM railyard.pipeline_history WHERE family = 'obs'") == 2 ]] ||
		fail "the completions should have recorded 4 task runs and 2 pipeline runs: $(sql "SELECT task, outcome FROM railyard.run_history")"
	[[ $(sql "SELECT count(*) FROM railyard.observation_pending") == 6 ]] ||
		fail "6 observations should be queued: $(sql "SELECT o FROM railyard.observation_pending ORDER BY id")"
	[[ $(sql "SELECT count(*) FROM railyard.duration_stats") == 0 ]] ||
		fail "a completion updated duration_stats: $(sql "SELECT family, task, agent_class, runs FROM railyard.duration_stats")"
	# queued in the order they were recorded: one completion at a time
	[[ $(sql "SELECT string_agg(coalesce(nullif((o).task, ''), 'pipeline'), ' ' ORDER BY id)
	            FROM railyard.observation_pending") == "build test pipeline build test pipeline" ]] ||
		fail "observations out of order: $(sql "SELECT id, (o).task, (o).at FROM railyard.observation_pending ORDER BY id")"
	# then the statistics see them
	[[ $(sql "SELECT railyard.observe_pending()") == 6 ]] || fail "observe_pending should apply the 6 observations"
	[[ $(sql "SELECT count(*) FROM railyard.observation_pending") == 0 ]] || fail "the queue was not emptied"
	# build took 102.6 s and 97.4 s: 2 runs, the median between them
	awk -v r="$(sql "SELECT runs || ' ' || median_s FROM railyard.task_duration_stats
	                 WHERE family = 'obs' AND task = 'build' AND agent_class = '*'")" \
		'BEGIN { split(r, x, " "); exit !(x[1] == 2 && x[2] > 97.4 && x[2] < 102.6) }' ||
		fail "build's statistics after the drain: $(sql "SELECT * FROM railyard.task_duration_stats WHERE family = 'obs' AND task = 'build'")"
	sql_expect_error "SELECT railyard.observe_pending(0)" "limit 0 is not positive" >/dev/null
}
run_scenario "completing a task records its run and queues the observation; duration_stats waits for observe_pending" \
	completion_only_queues

# same_as_observe: the statistics in observe_test.drained are what
# observe() makes of the history in observe_test.queued, on empty
# statistics.
same_as_observe() {
	sql "DELETE FROM railyard.duration_stats; DELETE FROM railyard.anomaly_log;
	     SELECT railyard.observe(array_agg(o ORDER BY id)) FROM observe_test.queued" >/dev/null
	local diff
	diff=$(sql "(SELECT 'drain only', * FROM observe_test.drained EXCEPT ALL SELECT 'drain only', * FROM observe_test.snapshot())
	            UNION ALL
	            (SELECT 'observe only', * FROM observe_test.snapshot() EXCEPT ALL SELECT 'observe only', * FROM observe_test.drained)")
	[[ -z $diff ]] || fail "the drain and observe() disagree on the same history: $diff"
}

drain_matches_observe() {
	ry_newdb matches && observe_setup
	replay_history 30
	local total n got=0 calls=0
	total=$(sql "SELECT count(*) FROM railyard.observation_pending")
	((total == 30 * 3)) || fail "expected 90 queued observations, got $total"
	sql "CREATE TABLE observe_test.queued AS SELECT id, o FROM railyard.observation_pending" >/dev/null
	# in small batches, as a worker under a budget would
	while n=$(sql "SELECT railyard.observe_pending(7)") && ((n > 0)); do
		((n <= 7)) || fail "observe_pending(7) applied $n observations"
		got=$((got + n))
		calls=$((calls + 1))
	done
	((got == total && calls == 13)) || fail "the batches applied $got of $total observations in $calls calls"
	sql "CREATE TABLE observe_test.drained AS SELECT * FROM observe_test.snapshot()" >/dev/null
	# the history is worth comparing: both classes, the cache, a failure,
	# the regression flagged
	[[ $(sql "SELECT count(*) FROM railyard.duration_stats WHERE family = 'obs'") == 6 ]] ||
		fail "expected statistics rows *, fast and slow class for build, *, class for test and the family: $(sql "SELECT task, agent_class FROM railyard.duration_stats")"
	[[ $(sql "SELECT count(*) FROM railyard.anomaly_log WHERE family = 'obs' AND task = 'build' AND kind IN ('slower', 'slow_run')") -ge 1 ]] ||
		fail "the 50 % regression of build was not flagged: $(sql "SELECT kind, task, what FROM railyard.anomalies")"

	# Idempotent: nothing left, nothing changes.
	[[ $(sql "SELECT railyard.observe_pending()") == 0 ]] || fail "a second drain applied something"
	[[ $(sql "SELECT count(*) FROM (SELECT * FROM observe_test.snapshot()
	                                EXCEPT ALL SELECT * FROM observe_test.drained) d") == 0 ]] ||
		fail "a second drain changed the statistics"

	same_as_observe
}
run_scenario "observe_pending gives the statistics and anomalies observe() gives on the same history, in batches, and is idempotent" \
	drain_matches_observe

# A worker's drain has a time budget; its batches are sized to it, so a
# short budget takes a few observations, not a batch of 500, and the
# slices add up to the same statistics.
budget_slices_the_drain() {
	ry_newdb budget && observe_setup
	replay_history 30
	local n got calls
	sql "CREATE TABLE observe_test.queued AS SELECT id, o FROM railyard.observation_pending" >/dev/null
	# A spent budget still applies the first batch: the queue moves.
	got=$(sql "SELECT railyard.observe_pending(NULL, 0)")
	((got == 20)) || fail "observe_pending with a 0 ms budget took $got observations, not its first batch of 20"
	n=$(sql "SELECT railyard.observe_pending(NULL, 1)")
	((n >= 1 && n < 70)) ||
		fail "observe_pending with a 1 ms budget took $n of 70 observations: it should stop after its first small batch"
	got=$((got + n))
	calls=2
	while n=$(sql "SELECT railyard.observe_pending(NULL, 5)") && ((n > 0)); do
		got=$((got + n))
		calls=$((calls + 1))
	done
	((got == 90 && calls >= 2)) || fail "the slices applied $got of 90 observations in $calls calls"
	sql "CREATE TABLE observe_test.drained AS SELECT * FROM observe_test.snapshot()" >/dev/null
	same_as_observe
}
run_scenario "a time budget slices observe_pending into batches that end near it (the first whatever the time), with the same statistics" \
	budget_slices_the_drain

bad_observation_is_dropped() {
	ry_newdb bad && observe_setup
	replay_history 1
	# a row no statistics row can take (no family), between good ones
	sql "INSERT INTO railyard.observation_pending (o)
	     SELECT ROW(NULL, 'x', '1', '*', NULL, NULL, false, false, 1, NULL, now(), NULL, NULL)::railyard.observation" >/dev/null
	replay_history 1
	local out
	out=$(sql "SELECT railyard.observe_pending()" 2>&1)
	[[ $out == *"WARNING:  cannot apply the observation of"*"x v1"* && $out == *7 ]] ||
		fail "the bad observation should be dropped with a WARNING and all 7 taken: $out"
	[[ $(sql "SELECT count(*) FROM railyard.observation_pending") == 0 &&
		$(sql "SELECT runs FROM railyard.duration_stats WHERE family = 'obs' AND task = 'build' AND agent_class = '*'") == 2 ]] ||
		fail "the good observations around the bad one were not applied"
}
run_scenario "an observation that cannot be applied is dropped with a WARNING; the rest of its batch is applied" \
	bad_observation_is_dropped

# stats_caught_up ID: pipeline ID's runs are in the statistics and the queue
# is empty.
stats_caught_up() {
	[[ $(sql "SELECT count(*) FROM railyard.observation_pending") == 0 &&
		$(sql "SELECT string_agg(task || ':' || runs, ' ' ORDER BY task) FROM railyard.duration_stats
		        WHERE family = 'drained' AND agent_class = '*'") == ":1 build:1 test:1" ]]
}

worker_drains_on_its_own() {
	ry_newdb worker && observe_setup
	local id
	id=$(build_test_pipeline "drained@r1")
	start_worker wo-1 --heartbeat 1 --lease 3 --slots 2 --workdir "$RY_WORKDIR/w-observe"
	wait_pipeline 60 "$id" succeeded >/dev/null
	wait_for 30 stats_caught_up
}
run_scenario "a worker applies the queued observations without being asked" worker_drains_on_its_own
