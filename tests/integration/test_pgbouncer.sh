#!/usr/bin/env bash
# PgBouncer (issue 11, item 8): workers reach the database through
# Debian's pgbouncer.  In session mode everything works as directly,
# notifications included, and the audit log still names the agent; in
# transaction mode the worker says at start why its LISTEN cannot work
# there, and still runs pipelines to the end by polling.
. "$(dirname "$0")/lib.sh"

chain() {
	ry_submit "(name) VALUES ('$1')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		SELECT :id, 't' || g, 'true' FROM generate_series(1, 20) g;
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream)
		SELECT :id, 't' || g, 't' || (g + 1) FROM generate_series(1, 19) g;"
}

session_mode_works_like_direct() {
	ry_newdb session
	ry_pgbouncer session session
	local id
	RAILYARD_DB=$BOUNCER_DB start_worker bs --workdir "$RY_WORKDIR/w-bs" --http-listen off --heartbeat 5 --lease 30
	wait_for 30 grep -q "notifications reach this worker's database connection" "$RY_WORKDIR/worker-bs.log"
	grep -q "notifications do not reach" "$RY_WORKDIR/worker-bs.log" &&
		fail "session mode was reported as losing notifications"
	# A chain of 20 with a 5 s heartbeat: only NOTIFY makes it quick.
	id=$(chain s)
	wait_pipeline 60 "$id" succeeded >/dev/null
	local span
	span=$(sql "SELECT extract(epoch FROM max(finished_at) - min(started_at))::int FROM railyard.task_attempts WHERE pipeline_id = $id")
	((span < 20)) || fail "20 dependent tasks took $span s: woken by polling, not notifications"
	# Every connection went through pgbouncer: the server saw its clients only.
	[[ $(sql "SELECT count(*) FROM railyard.agents WHERE name = 'bs' AND state = 'online'") == 1 ]] ||
		fail "the agent is not online"
	[[ $(sql "SELECT count(DISTINCT agent) FROM railyard.audit_log WHERE pipeline_id = $id AND event = 'finish'") == 1 ]] ||
		fail "the audit log does not name the agent through pgbouncer: $(sql "SELECT DISTINCT actor, agent FROM railyard.audit_log WHERE pipeline_id = $id")"
}

transaction_mode_is_explained_and_polled() {
	ry_newdb txn
	ry_pgbouncer txn transaction
	local id
	RAILYARD_DB=$BOUNCER_DB start_worker bt --workdir "$RY_WORKDIR/w-bt" --http-listen off --heartbeat 1 --lease 10
	wait_for 30 grep -q "notifications do not reach this worker's database connection" "$RY_WORKDIR/worker-bt.log"
	grep -q "pool_mode = session" "$RY_WORKDIR/worker-bt.log" || fail "the warning does not say what to do"
	id=$(chain t)
	wait_pipeline 120 "$id" succeeded >/dev/null
	# A cancel reaches a running task by the heartbeat's answer.
	id=$(ry_submit "(name) VALUES ('c')" "INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'long', 'sleep 300');")
	wait_for 60 sql_eq running "SELECT state FROM railyard.tasks WHERE pipeline_id = $id"
	sql "SELECT railyard.cancel_pipeline($id)" >/dev/null
	wait_for 30 no_procs_in "$RY_WORKDIR/w-bt"
}

run_scenario "through pgbouncer in session mode: notifications, pipelines and the audit trail work" session_mode_works_like_direct
run_scenario "through pgbouncer in transaction mode: the worker says why LISTEN fails there and polls" transaction_mode_is_explained_and_polled
