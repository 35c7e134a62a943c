#!/usr/bin/env bash
# Definitions are immutable after submission, run state changes only through
# railyard's functions, the audit log is append-only, and rows leave only
# through railyard.prune() (issue 6, finding 7 and deliverable 7; the
# "hand edits refused" scenario of the chaos set).  Every edit below is
# made as the test cluster's superuser — the owner, who has every privilege
# — so it is the guard, not a missing grant, that refuses it.
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes

guard_worker() {
	start_worker "$1" --slots 4 --heartbeat 1 --lease 3 --workdir "$RY_WORKDIR/w-$1"
}

# definitions: every pipeline's, task's and edge's definition, as one digest.
definitions() {
	sql "SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
	       SELECT concat_ws(',', p.id, p.name, p.team, p.priority, p.revision, p.changed_paths) AS x
	         FROM railyard.pipelines p
	       UNION ALL
	       SELECT concat_ws(',', t.id, t.pipeline_id, t.name, t.command, t.env, t.requires, t.os, t.arch,
	                        t.cpu, t.mem_mb, t.run_if, t.only_if_changed, t.max_attempts, t.timeout_s)
	         FROM railyard.tasks t
	       UNION ALL
	       SELECT concat_ws(',', e.pipeline_id, e.upstream, e.downstream, e.kind) FROM railyard.edges e) d"
}

# refused_edit SQL: the statement fails naming the guard, says what to do
# instead, and no definition changed (run state moves on meanwhile: a
# worker is running the pipeline).
refused_edit() {
	local before err
	before=$(definitions)
	err=$(sql_expect_error "$1" "by hand")
	[[ $err == *"HINT:"* ]] || fail "the refusal of '$1' gives no hint of what to do instead: $err"
	[[ $(definitions) == "$before" ]] || fail "the refused statement changed a definition: $1"
}

hand_edits_of_a_running_pipeline_are_refused() {
	local id tid
	id=$(ry_submit "(name) VALUES ('guarded')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		VALUES (:id, 'slow', 'sleep 5'), (:id, 'next', 'true'), (:id, 'last', 'true');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream)
		VALUES (:id, 'slow', 'next'), (:id, 'next', 'last');")
	tid=$(task_get "$id" slow id)
	guard_worker guards
	wait_for 30 sql_eq running "SELECT state FROM railyard.tasks WHERE id = $tid"
	# Finding 7, one by one.
	refused_edit "UPDATE railyard.tasks SET state = 'succeeded' WHERE id = $tid"
	refused_edit "UPDATE railyard.tasks SET state = 'ready', waiting_on = 0 WHERE pipeline_id = $id AND name = 'next'"
	refused_edit "DELETE FROM railyard.tasks WHERE id = $tid"
	refused_edit "DELETE FROM railyard.edges WHERE pipeline_id = $id AND upstream = 'slow'"
	refused_edit "UPDATE railyard.tasks SET command = 'echo changed' WHERE pipeline_id = $id AND name = 'next'"
	refused_edit "UPDATE railyard.edges SET upstream = 'last', downstream = 'slow' WHERE pipeline_id = $id AND upstream = 'slow'"
	refused_edit "UPDATE railyard.pipelines SET state = 'succeeded' WHERE id = $id"
	refused_edit "DELETE FROM railyard.pipelines WHERE id = $id"
	refused_edit "TRUNCATE railyard.tasks CASCADE"
	refused_edit "TRUNCATE railyard.edges"
	refused_edit "UPDATE railyard.task_attempts SET outcome = 'succeeded'"
	refused_edit "DELETE FROM railyard.task_attempts"
	# Adding to a submitted pipeline is refused too (at INSERT).
	sql_expect_error "INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES ($id, 'last', 'slow')" \
		"already submitted" >/dev/null
	# None of it got in the way: the pipeline runs to the end as submitted.
	wait_pipeline 60 "$id" succeeded >/dev/null
	[[ $(sql "SELECT string_agg(name || '=' || state, ' ' ORDER BY name) FROM railyard.tasks WHERE pipeline_id = $id") == \
		"last=succeeded next=succeeded slow=succeeded" ]] || fail "the pipeline did not run as submitted"
	local name events
	for name in slow next last; do
		events=$(sql "SELECT string_agg(event, ' ' ORDER BY id) FROM railyard.audit_log
		               WHERE object = 'task' AND object_id = $(task_get "$id" "$name" id)")
		[[ $events == "ready claim start finish" ]] || fail "task $name has audit events '$events'"
	done
}

audit_log_is_append_only() {
	local n digest
	n=$(sql "SELECT count(*) FROM railyard.audit_log")
	digest=$(sql "SELECT md5(string_agg(l::text, '|' ORDER BY id)) FROM railyard.audit_log l")
	refused_edit "DELETE FROM railyard.audit_log"
	refused_edit "UPDATE railyard.audit_log SET actor = 'someone else'"
	refused_edit "TRUNCATE railyard.audit_log"
	[[ $(sql "SELECT count(*) FROM railyard.audit_log") == "$n" ]] || fail "audit rows went missing"
	[[ $(sql "SELECT md5(string_agg(l::text, '|' ORDER BY id)) FROM railyard.audit_log l") == "$digest" ]] ||
		fail "audit rows changed"
}

prune_deletes_only_finished_history_audited() {
	ry_newdb prune
	local old=() i id running
	for i in 1 2 3; do
		id=$(ry_submit "(name) VALUES ('old-$i')" "
			INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true'), (:id, 'b', 'true');
			INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'a', 'b');")
		[[ $(sql "SELECT railyard.cancel_pipeline($id)") == cancelled ]] || fail "cannot finish pipeline $id"
		old+=("$id")
	done
	running=$(ry_submit "(name) VALUES ('still-queued')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true');")
	local cutoff out
	cutoff=$(sql "SELECT clock_timestamp()")
	# The forecast history: a run and an identity's statistics from before
	# the cutoff go, the ones after it (after the day below, too) stay.
	sql "INSERT INTO railyard.run_history (family, task, outcome, started_at, finished_at, duration_s)
	     VALUES ('old', 'a', 'succeeded', '$cutoff'::timestamptz - interval '2 days', '$cutoff'::timestamptz - interval '2 days', 1),
	            ('new', 'a', 'succeeded', '$cutoff'::timestamptz + interval '2 days', '$cutoff'::timestamptz + interval '2 days', 1);
	     INSERT INTO railyard.duration_stats (family, task, version, agent_class, last_at, recent_at)
	     VALUES ('old', 'a', '1', '*', '$cutoff'::timestamptz - interval '2 days', '$cutoff'::timestamptz - interval '2 days'),
	            ('new', 'a', '1', '*', '$cutoff'::timestamptz + interval '2 days', '$cutoff'::timestamptz + interval '2 days')" >/dev/null
	# Batched: one pipeline per call, until done.
	out=$(sql "SELECT pipelines, tasks, done FROM railyard.prune('$cutoff', 1)")
	[[ $out == "1|2|f" ]] || fail "the first prune with batch 1 returned '$out', expected 1 pipeline, 2 tasks, not done"
	out=$(sql "SELECT sum(pipelines), bool_or(done) FROM (SELECT * FROM railyard.prune('$cutoff', 1)
	           UNION ALL SELECT * FROM railyard.prune('$cutoff', 1)) x")
	[[ $out == "2|t" ]] || fail "the next two prunes returned '$out', expected 2 pipelines and done"
	[[ $(sql "SELECT count(*) FROM railyard.pipelines WHERE id IN ($(IFS=,; echo "${old[*]}"))") == 0 ]] ||
		fail "finished pipelines before the cutoff were not deleted"
	[[ $(sql "SELECT count(*) FROM railyard.tasks WHERE pipeline_id IN ($(IFS=,; echo "${old[*]}"))") == 0 ]] ||
		fail "their tasks were not deleted"
	[[ $(sql "SELECT count(*) FROM railyard.edges WHERE pipeline_id IN ($(IFS=,; echo "${old[*]}"))") == 0 ]] ||
		fail "their edges were not deleted"
	[[ $(sql "SELECT count(*) FROM railyard.edges WHERE pipeline_id = $running") == 0 &&
	   $(sql "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $running") == 1 ]] ||
		fail "the queued pipeline $running lost its task"
	[[ $(sql "SELECT count(*) FROM railyard.audit_log WHERE pipeline_id IN ($(IFS=,; echo "${old[*]}"))") == 0 ]] ||
		fail "their audit rows were not deleted"
	[[ $(sql "SELECT string_agg(family, ',') FROM railyard.run_history") == new ]] ||
		fail "run_history after the prune: $(sql "SELECT family, finished_at FROM railyard.run_history")"
	[[ $(sql "SELECT string_agg(family, ',') FROM railyard.duration_stats") == new ]] ||
		fail "duration_stats after the prune (the identity that ran after the cutoff stays): $(sql "SELECT family, recent_at FROM railyard.duration_stats")"
	[[ $(sql "SELECT sum((detail->>'run_history')::int) || '/' || sum((detail->>'duration_stats')::int)
	           FROM railyard.audit_log WHERE object = 'retention'") == 1/1 ]] ||
		fail "the prunes' audit rows do not count the history they deleted"
	# A pipeline that may still run is never touched, whatever the cutoff.
	out=$(sql "SELECT pipelines FROM railyard.prune(now() + interval '1 day')")
	[[ $out == 0 ]] || fail "prune deleted $out unfinished pipelines"
	[[ $(sql "SELECT state FROM railyard.pipelines WHERE id = $running") == queued ]] ||
		fail "the queued pipeline $running was touched"
	# Every prune that deleted something left its audit row.
	[[ $(sql "SELECT count(*), sum((detail->>'pipelines')::int) FROM railyard.audit_log
	           WHERE object = 'retention' AND event = 'prune'") == "3|3" ]] ||
		fail "expected 3 audited prunes of 3 pipelines: $(sql "SELECT detail FROM railyard.audit_log WHERE event = 'prune'")"
	sql_expect_error "SELECT railyard.prune(NULL)" "before must be a time" >/dev/null
}

# observe() reads a statistics row and updates it later under the
# statistics' writer lock, with no row lock: a prune deleting the row in
# between would make the run vanish.  The prune waits for that lock.
prune_waits_for_the_statistics_writer() {
	ry_newdb prunelock
	sql "INSERT INTO railyard.duration_stats (family, task, version, agent_class, last_at, recent_at)
	     VALUES ('idle', 'a', '1', '*', now() - interval '2 days', now() - interval '2 days')" >/dev/null
	# A writer holds the lock (as observe_pending does while it applies runs).
	# (its psql fails when it is terminated below: not the scenario's error)
	(sql "SELECT pg_advisory_lock(hashtext('railyard.observe_pending')), pg_sleep(60)" >/dev/null 2>&1 || true) &
	local holder=$!
	wait_for 10 sql_eq 1 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
	                      AND pid <> pg_backend_pid()"
	sql_expect_error "SET lock_timeout = '300ms'; SELECT * FROM railyard.prune(now() - interval '1 day')" \
		"lock timeout" >/dev/null
	[[ $(sql "SELECT count(*) FROM railyard.duration_stats") == 1 ]] ||
		fail "the prune deleted statistics while observe held its lock"
	sql "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()" >/dev/null
	wait "$holder"
	[[ $(sql "SELECT done FROM railyard.prune(now() - interval '1 day')") == t ]] ||
		fail "the prune did not finish once the lock was free"
	[[ $(sql "SELECT count(*) FROM railyard.duration_stats") == 0 ]] ||
		fail "the idle identity's statistics were not pruned"
}

# Finding 11: a cancel racing the completion of the last task must not turn
# the pipeline that just succeeded into "cancelled" (settle locks tasks
# first, then the pipeline; cancel must do the same and check the state).
cancel_racing_the_last_completion_keeps_success() {
	ry_newdb race
	local id tid out
	id=$(ry_submit "(name) VALUES ('race')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'only', 'true');")
	tid=$(task_get "$id" only id)
	# An agent row as registration leaves it (inserted directly: agents
	# are not guarded), holding the task.
	sql "INSERT INTO railyard.agents (name, hostname, os, arch, cores, mem_mb, slots, lease_until)
	     VALUES ('race-agent', 'h', 'linux', 'x86_64', 1, 1024, 1, now() + interval '1 hour');
	     SELECT id FROM railyard.claim_tasks((SELECT id FROM railyard.agents WHERE name = 'race-agent'), ARRAY[$tid::bigint]);" \
		>/dev/null
	[[ $(task_get "$id" only state) == running ]] || fail "the task was not claimed"
	# Session A finishes the last task as complete_tasks does, and holds
	# its transaction open.
	coproc A { "$RY_PG_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$RAILYARD_DB" 2>&1; }
	echo "BEGIN; SET LOCAL railyard.internal = on;
	      UPDATE railyard.tasks SET state = 'succeeded', finished_at = now() WHERE id = $tid;
	      SELECT railyard.settle(ARRAY[$tid::bigint]); SELECT 'settled';" >&"${A[1]}"
	while read -r -t 30 out <&"${A[0]}"; do
		[[ $out == settled ]] && break
	done
	[[ $out == settled ]] || fail "session A did not settle: $out"
	# Session B cancels meanwhile: it must wait for A...
	"$RY_PG_BINDIR/psql" -XAtq -d "$RAILYARD_DB" -c "SELECT railyard.cancel_pipeline($id)" >cancel.out 2>&1 &
	local b=$!
	wait_for 30 sql_eq 1 "SELECT count(*) FROM pg_stat_activity
	                       WHERE wait_event_type = 'Lock' AND query LIKE '%cancel_pipeline($id)%'"
	# ...and once A commits, find the pipeline succeeded and leave it so.
	echo "COMMIT; SELECT 'committed';" >&"${A[1]}"
	while read -r -t 30 out <&"${A[0]}"; do
		[[ $out == committed ]] && break
	done
	wait "$b" || fail "cancel_pipeline failed: $(cat cancel.out)"
	echo "\\q" >&"${A[1]}"
	[[ $(cat cancel.out) == succeeded ]] || fail "cancel_pipeline returned '$(cat cancel.out)', expected succeeded"
	[[ $(sql "SELECT state FROM railyard.pipelines WHERE id = $id") == succeeded ]] ||
		fail "the pipeline that succeeded is now $(sql "SELECT state FROM railyard.pipelines WHERE id = $id")"
	[[ $(sql "SELECT count(*) FROM railyard.audit_log WHERE pipeline_id = $id AND event = 'cancel'") == 0 ]] ||
		fail "a cancel was audited for a pipeline that was not cancelled"
}

explicit_ids_are_refused() {
	sql_expect_error "INSERT INTO railyard.pipelines (id, name) VALUES (424242, 'mine')" \
		'cannot insert a non-DEFAULT value into column "id"' >/dev/null
	sql_expect_error "BEGIN;
		INSERT INTO railyard.pipelines (name) VALUES ('ids') RETURNING id \\gset
		INSERT INTO railyard.tasks (id, pipeline_id, name, command) VALUES (424242, :id, 'a', 'true');
		COMMIT;" 'cannot insert a non-DEFAULT value into column "id"' >/dev/null
	[[ $(sql "SELECT count(*) FROM railyard.pipelines WHERE name IN ('mine', 'ids')") == 0 ]] ||
		fail "a refused submission left rows"
}

run_scenario "hand edits of a running pipeline (state, delete, edges, command, cycle) are refused; it finishes as submitted" \
	hand_edits_of_a_running_pipeline_are_refused
run_scenario "the audit log is append-only, even for the owner" audit_log_is_append_only
run_scenario "railyard.prune deletes finished pipelines before a time, in batches, audited, never unfinished ones" \
	prune_deletes_only_finished_history_audited
run_scenario "railyard.prune waits for observe's lock before it deletes statistics" \
	prune_waits_for_the_statistics_writer
run_scenario "cancel racing the last task's completion keeps the pipeline succeeded" \
	cancel_racing_the_last_completion_keeps_success
run_scenario "explicit ids in INSERTs are refused (identity columns GENERATED ALWAYS)" explicit_ids_are_refused
