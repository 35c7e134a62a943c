#!/usr/bin/env bash
# Roles and least privilege (issue 6, deliverable 1): what each railyard
# role may and may not do, that the audit log names the session's role (not
# a setting), optional row-level security by team, and that the embedded
# cluster lets no other OS user in.
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes

# Login roles for this run (roles belong to the whole cluster).
SUB=ryt_sub_$$
SUB2=ryt_sub2_$$
WRK=ryt_wrk_$$
RDR=ryt_rdr_$$
sql "CREATE ROLE $SUB LOGIN IN ROLE railyard_submitter;
     CREATE ROLE $SUB2 LOGIN IN ROLE railyard_submitter;
     CREATE ROLE $WRK LOGIN IN ROLE railyard_worker;
     CREATE ROLE $RDR LOGIN IN ROLE railyard_reader;" || exit 1
at_exit "$RY_PG_BINDIR/psql" -X -q -d "host=$RY_PGHOST port=$RY_PGPORT user=$RY_PGUSER dbname=postgres" \
	-c "DROP ROLE IF EXISTS $SUB, $SUB2, $WRK, $RDR"

# as ROLE [PSQL_OPTIONS...] SQL: runs SQL on this script's database as ROLE.
as() {
	local role=$1
	shift
	local script=${!#}
	"$RY_PG_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 \
		-d "host=$RY_PGHOST port=$RY_PGPORT user=$role dbname=$RY_DBNAME" "${@:1:$#-1}" <<<"$script"
}

# refused ROLE SQL EXPECTED: SQL as ROLE fails, mentioning EXPECTED.
refused() {
	local out rc=0
	out=$(as "$1" "$2" 2>&1) || rc=$?
	((rc != 0)) || fail "$1 could run: $2"
	[[ $out == *"$3"* ]] || fail "$1 running '$2' failed without mentioning '$3': $out"
}

# submit_as ROLE NAME [TEAM]: a two-task pipeline; prints its id.
submit_as() {
	as "$1" "BEGIN;
		INSERT INTO railyard.pipelines (name, team) VALUES ('$2', '${3:-default}') RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true'), (:id, 'b', 'true');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'a', 'b');
		COMMIT;
		SELECT :id;"
}

submitter_submits_cancels_and_reads_only() {
	local id out
	id=$(submit_as "$SUB" by-submitter)
	[[ $id =~ ^[0-9]+$ ]] || fail "the submitter could not submit: $id"
	[[ $(as "$SUB" "SELECT state FROM railyard.tasks WHERE pipeline_id = $id AND name = 'a'") == ready ]] ||
		fail "the submitter cannot read its pipeline's tasks"
	as "$SUB" "SELECT count(*) FROM railyard.pipeline_summary; SELECT count(*) FROM railyard.audit_log;
	           SELECT count(*) FROM railyard.task_waits; SELECT count(*) FROM railyard.agents" >/dev/null
	# Run state and history are not the submitter's to change.
	refused "$SUB" "UPDATE railyard.tasks SET state = 'succeeded' WHERE pipeline_id = $id" "permission denied"
	refused "$SUB" "UPDATE railyard.pipelines SET state = 'succeeded' WHERE id = $id" "permission denied"
	refused "$SUB" "DELETE FROM railyard.audit_log" "permission denied"
	refused "$SUB" "UPDATE railyard.audit_log SET actor = 'nobody'" "permission denied"
	refused "$SUB" "TRUNCATE railyard.audit_log" "permission denied"
	refused "$SUB" "DELETE FROM railyard.edges WHERE pipeline_id = $id" "permission denied"
	refused "$SUB" "INSERT INTO railyard.audit_log (actor, object, object_id, event) VALUES ('x', 'task', 1, 'finish')" \
		"permission denied"
	refused "$SUB" "SELECT railyard.settle(ARRAY[1::bigint])" "permission denied for function settle"
	refused "$SUB" "SELECT railyard.requeue_tasks(ARRAY[1::bigint], 'x')" "permission denied for function requeue_tasks"
	refused "$SUB" "SELECT * FROM railyard.claim_tasks(1, ARRAY[1::bigint])" "permission denied for function claim_tasks"
	refused "$SUB" "SELECT railyard.prune(now())" "permission denied for function prune"
	# Cancelling is.
	[[ $(as "$SUB" "SELECT railyard.cancel_pipeline($id)") == cancelled ]] || fail "the submitter could not cancel"
	[[ $(sql "SELECT string_agg(state::text, ',') FROM railyard.tasks WHERE pipeline_id = $id") == cancelled,cancelled ]] ||
		fail "cancel did not cancel the tasks"
}

audit_actor_is_the_session_role() {
	local id out
	# Neither railyard.actor nor SET ROLE changes who the audit log names.
	id=$(as "$SUB" "SET railyard.actor = 'worker:impostor';
		BEGIN;
		INSERT INTO railyard.pipelines (name, submitted_by) VALUES ('forged', 'someone-else') RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true');
		COMMIT;
		SELECT railyard.cancel_pipeline(:id);
		SELECT :id;" | tail -n 1)
	[[ $id =~ ^[0-9]+$ ]] || fail "submission failed: $id"
	out=$(sql "SELECT string_agg(DISTINCT actor || '/' || coalesce(agent, '-'), ' ') FROM railyard.audit_log
	            WHERE pipeline_id = $id")
	[[ $out == "$SUB/-" ]] || fail "audit rows of pipeline $id name '$out', expected the role $SUB and no agent"
	[[ $(sql "SELECT submitted_by || ' ' || state FROM railyard.pipelines WHERE id = $id") == "$SUB cancelled" ]] ||
		fail "submitted_by is not the session's role: $(sql "SELECT submitted_by FROM railyard.pipelines WHERE id = $id")"
	# A state forced at INSERT is railyard's: a new pipeline is queued.
	id=$(as "$SUB" "BEGIN;
		INSERT INTO railyard.pipelines (name, state) VALUES ('faked-state', 'succeeded') RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command, state) VALUES (:id, 'a', 'true', 'succeeded');
		COMMIT;
		SELECT :id;")
	[[ $(sql "SELECT p.state || ' ' || t.state FROM railyard.pipelines p JOIN railyard.tasks t ON t.pipeline_id = p.id
	           WHERE p.id = $id") == "queued ready" ]] || fail "the INSERT could set run state"
}

worker_role_runs_tasks_only_through_functions() {
	local id
	id=$(submit_as "$SUB" for-the-worker)
	(
		export RAILYARD_DB="host=$RY_PGHOST port=$RY_PGPORT user=$WRK dbname=$RY_DBNAME"
		start_worker roles-w --slots 2 --heartbeat 1 --lease 3 --workdir "$RY_WORKDIR/w-roles"
	)
	wait_pipeline 60 "$id" succeeded >/dev/null
	[[ $(sql "SELECT string_agg(DISTINCT actor || '/' || coalesce(agent, '-'), ' ') FROM railyard.audit_log
	           WHERE object = 'task' AND pipeline_id = $id AND event IN ('claim', 'start', 'finish')") == "$WRK/roles-w" ]] ||
		fail "the worker's events do not name role $WRK and agent roles-w"
	refused "$WRK" "INSERT INTO railyard.pipelines (name) VALUES ('x')" "permission denied"
	refused "$WRK" "UPDATE railyard.tasks SET state = 'ready' WHERE pipeline_id = $id" "permission denied"
	refused "$WRK" "UPDATE railyard.agents SET labels = '{gpu}'" "permission denied"
	refused "$WRK" "DELETE FROM railyard.task_attempts" "permission denied"
	refused "$WRK" "SELECT railyard.cancel_pipeline($id)" "permission denied for function cancel_pipeline"
	refused "$WRK" "SELECT railyard.requeue_tasks(ARRAY[1::bigint], 'x')" "permission denied for function requeue_tasks"
	refused "$WRK" "SELECT railyard.settle(ARRAY[1::bigint])" "permission denied for function settle"
	as "$WRK" "SELECT count(*) FROM railyard.tasks" >/dev/null || fail "the worker role cannot read tasks"
}

reader_only_reads() {
	local id
	id=$(submit_as "$SUB" for-the-reader)
	as "$RDR" "SELECT count(*) FROM railyard.pipelines; SELECT count(*) FROM railyard.tasks;
	           SELECT count(*) FROM railyard.edges; SELECT count(*) FROM railyard.task_attempts;
	           SELECT count(*) FROM railyard.audit_log; SELECT count(*) FROM railyard.pipeline_summary;
	           SELECT count(*) FROM railyard.task_waits; SELECT count(*) FROM railyard.agent_utilization;
	           SELECT railyard.is_bad_outcome('failed', false);" >/dev/null ||
		fail "the reader cannot read"
	refused "$RDR" "INSERT INTO railyard.pipelines (name) VALUES ('x')" "permission denied"
	refused "$RDR" "UPDATE railyard.pipelines SET priority = 9" "permission denied"
	refused "$RDR" "SELECT railyard.cancel_pipeline($id)" "permission denied for function cancel_pipeline"
	refused "$RDR" "SELECT * FROM railyard.heartbeat(1, '{}', '{}', 0)" "permission denied for function heartbeat"
	refused "$RDR" "CREATE TABLE railyard.mine (x int)" "permission denied for schema railyard"
}

# Every function that can write is classed, runs as the owner with a fixed
# search_path, and no function is open to PUBLIC.
functions_are_locked_down() {
	local out
	out=$(sql "SELECT string_agg(p.proname, ', ' ORDER BY p.proname) FROM pg_proc p
	            WHERE p.pronamespace = 'railyard'::regnamespace AND p.provolatile = 'v'
	              AND NOT EXISTS (SELECT 1 FROM railyard.function_access a WHERE a.name = p.proname)")
	[[ -z $out ]] ||
		fail "functions that can write but are not classed in sql/90_roles.sql (railyard.function_access): $out"
	out=$(sql "SELECT string_agg(p.proname, ', ' ORDER BY p.proname) FROM pg_proc p
	            WHERE p.pronamespace = 'railyard'::regnamespace AND p.provolatile = 'v'
	              AND p.proname NOT IN ('pipelines_before_insert', 'tasks_before_insert',
	                                    'refuse_direct_write')
	              AND NOT (p.prosecdef AND 'search_path=pg_catalog, railyard, pg_temp' = ANY (p.proconfig))")
	[[ -z $out ]] || fail "functions that can write without SECURITY DEFINER and a fixed search_path: $out"
	out=$(sql "SELECT string_agg(p.proname, ', ' ORDER BY p.proname) FROM pg_proc p
	            WHERE p.pronamespace = 'railyard'::regnamespace
	              AND (p.proacl IS NULL OR has_function_privilege('public', p.oid, 'EXECUTE'))")
	[[ -z $out ]] || fail "functions anyone may call: $out"
}

# So that \d+ documents the schema, as pg_cron's does.
everything_is_commented() {
	local out
	out=$(sql "SELECT string_agg(c.relname, ', ' ORDER BY c.relname) FROM pg_class c
	            WHERE c.relnamespace = 'railyard'::regnamespace AND c.relkind IN ('r', 'v', 'p')
	              AND obj_description(c.oid, 'pg_class') IS NULL")
	[[ -z $out ]] || fail "tables and views without COMMENT: $out"
	out=$(sql "SELECT string_agg(p.proname, ', ' ORDER BY p.proname) FROM pg_proc p
	            WHERE p.pronamespace = 'railyard'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL")
	[[ -z $out ]] || fail "functions without COMMENT: $out"
}

team_row_level_security() {
	local ours theirs out rc
	sql "ALTER TABLE railyard.pipelines ENABLE ROW LEVEL SECURITY;
	     INSERT INTO railyard.team_roles (team, role) VALUES ('payments', '$SUB'), ('search', '$SUB2');"
	ours=$(submit_as "$SUB" pay-1 payments)
	[[ $ours =~ ^[0-9]+$ ]] || fail "a member of team payments could not submit for it: $ours"
	theirs=$(submit_as "$SUB2" search-1 search)
	rc=0
	out=$(submit_as "$SUB" sneaky search 2>&1) || rc=$?
	((rc != 0)) && [[ $out == *'for team "search": role'*'may not act for that team'* ]] ||
		fail "$SUB submitted for team search: $out"
	rc=0
	out=$(submit_pipeline_as "$SUB" sneaky-one-call search 2>&1) || rc=$?
	((rc != 0)) && [[ $out == *'for team "search": role'*'may not act for that team'* ]] ||
		fail "$SUB submitted for team search through submit_pipeline: $out"
	[[ $(submit_pipeline_as "$SUB" pay-2 payments) =~ ^[0-9]+$ ]] ||
		fail "$SUB could not submit for its own team through submit_pipeline"
	rc=0
	out=$(as "$SUB" "SELECT railyard.cancel_pipeline($theirs)" 2>&1) || rc=$?
	((rc != 0)) && [[ $out == *"cannot cancel pipeline $theirs"* ]] || fail "$SUB cancelled team search's pipeline: $out"
	[[ $(as "$SUB" "SELECT railyard.cancel_pipeline($ours)") == cancelled ]] || fail "$SUB cannot cancel its own team's"
	# Every role still reads every pipeline.
	[[ $(as "$RDR" "SELECT count(*) FROM railyard.pipelines WHERE id IN ($ours, $theirs)") == 2 ]] ||
		fail "with row-level security on, a reader no longer sees every pipeline"
	sql "ALTER TABLE railyard.pipelines DISABLE ROW LEVEL SECURITY; DELETE FROM railyard.team_roles;"
}

# The one-call submission (railyard submit's) runs as the owner: who may
# call it, whose name the audit log gives, and team rules still apply.
submit_pipeline_as() {
	as "$1" "SELECT railyard.submit_pipeline('$2', '${3:-default}', 0, NULL, NULL, NULL,
	    '[{\"name\": \"a\", \"kind\": \"build\", \"command\": \"true\", \"env\": {}, \"requires\": [],
	       \"version\": \"1\", \"cpu\": 1, \"mem_mb\": 64, \"cacheable\": false, \"inputs\": [],
	       \"outputs\": [], \"run_if\": \"on_success\", \"max_attempts\": 1, \"timeout_s\": 60}]', '[]')"
}

submit_pipeline_is_the_submitters() {
	local id out rc=0
	id=$(submit_pipeline_as "$SUB" one-call)
	[[ $id =~ ^[0-9]+$ ]] || fail "the submitter could not call submit_pipeline: $id"
	[[ $(sql "SELECT string_agg(DISTINCT actor, ',') FROM railyard.audit_log WHERE pipeline_id = $id") == "$SUB" ]] ||
		fail "submit_pipeline's audit rows should name $SUB: $(sql "SELECT actor, event FROM railyard.audit_log WHERE pipeline_id = $id")"
	[[ $(sql "SELECT submitted_by FROM railyard.pipelines WHERE id = $id") == "$SUB" ]] ||
		fail "the pipeline should be submitted by $SUB"
	for role in "$RDR" "$WRK"; do
		rc=0
		out=$(submit_pipeline_as "$role" "by-$role" 2>&1) || rc=$?
		((rc != 0)) && [[ $out == *"permission denied for function submit_pipeline"* ]] ||
			fail "$role could call submit_pipeline: $out"
	done
}

# railyard.internal is a setting anyone may SET; it must not let a
# submitter's own INSERTs pass for submit_pipeline's (which keep the run
# state they are given and skip the check at COMMIT).
internal_setting_grants_a_submitter_nothing() {
	local id
	id=$(as "$SUB" "SET railyard.internal = on;
		BEGIN;
		INSERT INTO railyard.pipelines (name) VALUES ('forged') RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command, state, waiting_on, rank, ready_at)
		VALUES (:id, 'up', 'true', 'blocked', 7, 0, NULL),
		       (:id, 'down', 'true', 'ready', 0, 1e9, now());
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'up', 'down');
		COMMIT;
		SELECT :id;")
	[[ $id =~ ^[0-9]+$ ]] || fail "the submission failed: $id"
	local got
	got=$(sql "SELECT string_agg(name || '=' || state || '/' || waiting_on || '/' || (rank < 1e9), ' ' ORDER BY name)
	             FROM railyard.tasks WHERE pipeline_id = $id")
	[[ $got == "down=blocked/1/true up=ready/0/true" ]] ||
		fail "the forged run state survived (want down blocked behind up): $got"
	[[ $(sql "SELECT count(*) FROM railyard.audit_log WHERE pipeline_id = $id AND event = 'ready'") == 1 ]] ||
		fail "only up should have been released: $(sql "SELECT object_id, event FROM railyard.audit_log WHERE pipeline_id = $id")"
}

# The embedded cluster: peer authentication, and only the OS user that runs
# railyard (and the server's own user, as owner) may log in.
other_os_users_cannot_connect() {
	((EUID == 0)) || skip "needs root to create an OS user"
	local user=ryt$$ role url out rc
	useradd --system --no-create-home --shell /usr/sbin/nologin "$user" || fail "cannot create OS user $user"
	at_exit userdel "$user"
	export RAILYARD_HOME=$RY_WORKDIR/embedded
	unset RAILYARD_DB
	at_exit env RAILYARD_HOME="$RAILYARD_HOME" "$RY" db stop
	"$RY" db start 2>start.log || fail "db start failed: $(cat start.log)"
	for role in owner worker submitter reader; do
		url=$("$RY" db url --role "$role")
		rc=0
		out=$(cd / && runuser -u "$user" -- "$RY_PG_BINDIR/psql" -XAtq -d "$url" -c "SELECT 1" 2>&1) || rc=$?
		((rc != 0)) || fail "OS user $user connected to the embedded cluster as $role"
		echo "$user as $role: $out"
	done
	# Even with the socket in reach (the server's own user), peer
	# authentication allows only the roles mapped to it.
	url=$("$RY" db url --role worker)
	rc=0
	out=$(cd / && runuser -u railyard -- "$RY_PG_BINDIR/psql" -XAtq -d "$url" -c "SELECT 1" 2>&1) || rc=$?
	((rc != 0)) && [[ $out == *"authentication failed"* ]] ||
		fail "the server's OS user logged in as the worker role: $out"
}

run_scenario "a submitter submits, cancels and reads, and can change no state, history or audit row" \
	submitter_submits_cancels_and_reads_only
run_scenario "the audit log names the session's role, whatever railyard.actor or the INSERT says" \
	audit_actor_is_the_session_role
run_scenario "a worker role runs a pipeline through the functions and can write nothing directly" \
	worker_role_runs_tasks_only_through_functions
run_scenario "a reader reads everything and changes nothing" reader_only_reads
run_scenario "every function that can write is classed, SECURITY DEFINER with a fixed search_path; none is PUBLIC" \
	functions_are_locked_down
run_scenario "every table, view and function has a COMMENT" everything_is_commented
run_scenario "row-level security by team: a submitter submits and cancels only for its teams" team_row_level_security
run_scenario "submit_pipeline: a submitter submits in one call, in its own name; readers and workers cannot" \
	submit_pipeline_is_the_submitters
run_scenario "railyard.internal set by a submitter forges no run state and skips no check" \
	internal_setting_grants_a_submitter_nothing
run_scenario "no other OS user can connect to the embedded cluster" other_os_users_cannot_connect
