#!/usr/bin/env bash
# The lifecycle functions' rarer paths, driven through SQL as a worker's
# connection would drive them: a result with an outcome that does not
# exist, a task that runs out of attempts when its agent is lost, settling
# nothing, cancelling what is unknown or already over; and that settle's
# probe for what is left of a pipeline does not read finished tasks at
# every completion.  (make coverage
# holds settle, claim and complete to 90 % of their statements.)
. "$(dirname "$0")/lib.sh"

# agent NAME: an online agent row, as registration leaves it (inserted
# directly: agents are not guarded, and the test stays apart from
# register_agent's parameters); prints its id.
agent() {
	sql "INSERT INTO railyard.agents (name, hostname, os, arch, cores, mem_mb, slots, lease_until)
	     VALUES ('$1', 'host-$1', 'linux', 'x86_64', 4, 4096, 4, now() + interval '1 hour') RETURNING id"
}

# claim AGENT TASK_ID: leases the task to the agent; prints its attempt.
claim() {
	sql "SELECT attempt FROM railyard.claim_tasks($1, ARRAY[$2::bigint])"
}

unknown_outcome_is_refused() {
	local id tid aid err
	id=$(ry_submit "(name) VALUES ('outcome')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true');")
	tid=$(task_get "$id" a id)
	aid=$(agent outcome-agent)
	[[ $(claim "$aid" "$tid") == 1 ]] || fail "the task was not claimed"
	err=$(sql_expect_error "SELECT * FROM railyard.complete_tasks($aid, ARRAY[$tid::bigint], ARRAY[1],
	          ARRAY['maybe'], ARRAY[0], ARRAY[NULL::text], ARRAY[now()], ARRAY[now()],
	          ARRAY[NULL::text], ARRAY[NULL::text])" "outcome must be succeeded, failed, skipped or cached")
	[[ $(task_get "$id" a state) == running ]] || fail "a refused result changed the task: $err"
}

last_attempt_lost_fails_and_settles() {
	local id tid aid out
	id=$(ry_submit "(name) VALUES ('lost')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, max_attempts, run_if)
		VALUES (:id, 'deploy', 'true', 1, 'on_success'), (:id, 'smoke', 'true', 3, 'on_success'),
		       (:id, 'page', 'true', 3, 'on_failure');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream)
		VALUES (:id, 'deploy', 'smoke'), (:id, 'deploy', 'page');")
	tid=$(task_get "$id" deploy id)
	aid=$(agent lost-agent)
	[[ $(claim "$aid" "$tid") == 1 ]] || fail "the task was not claimed"
	# Its agent is lost with the only attempt it had.
	[[ $(sql "SELECT railyard.requeue_lost(ARRAY[$aid::bigint], 'agent lost')") == 1 ]] ||
		fail "requeue_lost did not count the task"
	out=$(sql "SELECT string_agg(name || '=' || state || ':' || coalesce(reason, ''), ' ' ORDER BY name)
	             FROM railyard.tasks WHERE pipeline_id = $id")
	[[ $out == "deploy=failed:agent lost page=ready: smoke=skipped:upstream failed" ]] ||
		fail "after its last attempt was lost: $out"
	[[ $(sql "SELECT outcome FROM railyard.task_attempts WHERE task_id = $tid") == lost ]] ||
		fail "the lost attempt is not in the history"
}

settling_nothing_does_nothing() {
	local before
	before=$(sql "SELECT count(*) FROM railyard.audit_log")
	sql "SELECT railyard.settle(ARRAY[-1::bigint]); SELECT railyard.settle('{}')" >/dev/null
	[[ $(sql "SELECT count(*) FROM railyard.audit_log") == "$before" ]] || fail "settling nothing changed something"
}

cancel_unknown_or_finished() {
	local id
	sql_expect_error "SELECT railyard.cancel_pipeline(-5)" "pipeline -5 does not exist" >/dev/null
	id=$(ry_submit "(name) VALUES ('over')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true');")
	[[ $(sql "SELECT railyard.cancel_pipeline($id)") == cancelled ]] || fail "cannot cancel pipeline $id"
	[[ $(sql "SELECT railyard.cancel_pipeline($id)") == cancelled ]] || fail "a second cancel changed its answer"
	[[ $(sql "SELECT count(*) FROM railyard.audit_log WHERE pipeline_id = $id AND object = 'pipeline'
	           AND event = 'cancel'") == 1 ]] || fail "a second cancel was audited again"
}

# heap_fetches SQL: the heap fetches of an index-only scan of SQL.
heap_fetches() {
	sql "SET enable_bitmapscan = off; SET enable_seqscan = off;
	     EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $1" | sed -n 's/.*Heap Fetches: \([0-9]*\).*/\1/p'
}

# settle asks tasks_unfinished whether a pipeline has anything left at
# every completion.  The old versions of finished tasks are found dead by
# a probe and not read again (migrations/0022: with deduplication they sat
# in posting lists with live entries, and every probe read them again:
# 125 heap fetches at each probe here).
probe_reads_few() {
	local n
	n=$(heap_fetches "$PROBE")
	((n <= 5)) || {
		echo "a probe of tasks_unfinished fetched $n heap tuples: finished tasks are read at every probe"
		return 1
	}
}

# complete_claimed AGENT PIPELINE N: claims the N ready tasks of PIPELINE
# with the lowest ids and completes them, as a worker's batches would.
complete_claimed() {
	local ids
	ids="ARRAY(SELECT id FROM railyard.tasks WHERE pipeline_id = $2 AND state = 'ready' ORDER BY id LIMIT $3)"
	[[ $(sql "SELECT count(*) FROM railyard.claim_tasks($1, $ids)") == "$3" ]] || fail "$3 tasks were not claimed"
	ids="ARRAY(SELECT id FROM railyard.tasks WHERE pipeline_id = $2 AND state = 'running' ORDER BY id)"
	[[ $(sql "SELECT count(*) FILTER (WHERE accepted) FROM railyard.complete_tasks($1, $ids,
	              array_fill(1, ARRAY[$3]), array_fill('succeeded'::text, ARRAY[$3]),
	              array_fill(0, ARRAY[$3]), array_fill(NULL::text, ARRAY[$3]),
	              array_fill(now(), ARRAY[$3]), array_fill(now(), ARRAY[$3]),
	              array_fill(NULL::text, ARRAY[$3]), array_fill(NULL::text, ARRAY[$3]))") == "$3" ]] ||
		fail "$3 completions were not accepted"
}

finished_tasks_read_once() {
	local id aid
	local -g PROBE
	# no VACUUM to clear the old versions away while the probes run
	sql "ALTER TABLE railyard.tasks SET (autovacuum_enabled = off)" >/dev/null
	# 20 pipelines of 100 tasks in one statement, as a bulk submission
	sql "BEGIN;
	     WITH p AS (INSERT INTO railyard.pipelines (name, team)
	                SELECT 'probe-' || g, 'probe' FROM generate_series(1, 20) g RETURNING id)
	     INSERT INTO railyard.tasks (pipeline_id, name, command)
	     SELECT p.id, 'task-' || i, 'true' FROM p, generate_series(1, 100) i;
	     COMMIT;" >/dev/null
	id=$(sql "SELECT min(id) FROM railyard.pipelines WHERE name LIKE 'probe-%'")
	aid=$(agent probe-agent)
	complete_claimed "$aid" "$id" 32
	complete_claimed "$aid" "$id" 32
	PROBE="SELECT 1 FROM railyard.tasks u WHERE u.pipeline_id = $id
	         AND u.state IN ('blocked', 'ready', 'running') LIMIT 1"
	[[ -n $(heap_fetches "$PROBE") ]] || fail "no index-only scan of tasks_unfinished: $(sql "EXPLAIN $PROBE")"
	# A dead version is marked so once no snapshot can see it; another
	# table's autovacuum may hold one for a moment.
	wait_for 30 probe_reads_few
	sql "ALTER TABLE railyard.tasks RESET (autovacuum_enabled)" >/dev/null
}

run_scenario "a result with an unknown outcome is refused and changes nothing" unknown_outcome_is_refused
run_scenario "a task whose last attempt is lost fails 'agent lost' and its dependents settle" \
	last_attempt_lost_fails_and_settles
run_scenario "settling unknown tasks does nothing" settling_nothing_does_nothing
run_scenario "settle's probe of a pipeline's unfinished tasks reads its finished tasks once, not at every completion" \
	finished_tasks_read_once
run_scenario "cancelling an unknown pipeline is an error; cancelling a finished one changes nothing" \
	cancel_unknown_or_finished
