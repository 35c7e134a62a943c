#!/usr/bin/env bash
# Failure behaviour (PRODUCT.md, "Failure behaviour (each one tested)"): a
# worker killed mid-task, late completions fenced off, max_attempts, the
# database restarting under running tasks, timeouts and memory limits,
# draining on SIGTERM, cancellation, and two workers claiming one name.
# Workers run with --heartbeat 1 --lease 3 so that leases run out quickly.
. "$(dirname "$0")/lib.sh"

# Task processes of killed workers outlive them: never leave them behind.
at_exit kill_task_processes

FAST=(--heartbeat 1 --lease 3)

# has_process TASK_ID: a process of that task runs.
has_process() { [[ -n $(task_pids "$1") ]]; }
no_process() { [[ -z $(task_pids "$1") ]]; }

# attempts_of TASK_ID: "attempt agent outcome reason" per history row.
attempts_of() {
	sql "SELECT attempt || ' ' || coalesce(agent_name, '-') || ' ' || outcome || ' ' || coalesce(reason, '-')
	       FROM railyard.task_attempts WHERE task_id = $1 ORDER BY attempt"
}

worker_killed_mid_task() {
	ry_newdb kill9
	local wd=$RY_WORKDIR/w-kill9 id tid
	id=$(ry_submit "(name) VALUES ('kill9')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'slow', 'sleep 4');")
	tid=$(task_get "$id" slow id)
	start_worker kill9-a "${FAST[@]}" --workdir "$wd"
	wait_for 30 has_process "$tid"
	stop_worker kill9-a KILL
	# Its task lives on in its own process group: a dead host takes it along.
	kill_task_processes "$tid"
	wait_for 10 no_process "$tid"

	start_worker kill9-b "${FAST[@]}" --exit-when-idle --workdir "$wd"
	local b=$RY_WORKER_PID
	wait_pipeline 60 "$id" succeeded
	local hist
	hist=$(attempts_of "$tid")
	echo "$hist"
	[[ $(task_get "$id" slow "state || ' ' || attempt") == "succeeded 2" ]] ||
		fail "expected the task succeeded at attempt 2, got: $(task_get "$id" slow 'state, attempt')"
	[[ $hist == $'1 kill9-a lost agent lost\n2 kill9-b succeeded -' ]] ||
		fail "expected attempt 1 lost by kill9-a (agent lost) and attempt 2 succeeded on kill9-b, got: $hist"
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE task_id = $tid AND outcome = 'succeeded'") == 1 ]] ||
		fail "the task completed more than once"
	[[ $(sql "SELECT count(*) FROM railyard.audit_log WHERE object = 'task' AND object_id = $tid
	           AND event = 'retry'") == 1 ]] ||
		fail "the audit log has no single 'retry' event for the task"
	local rc=0
	wait_for 30 ry_dead "$b"
	wait "$b" || rc=$?
	((rc == 0)) || fail "worker kill9-b (--exit-when-idle) exited with status $rc"
}

late_completion_is_refused() {
	ry_usedb kill9
	local id tid a b
	id=$(sql "SELECT id FROM railyard.pipelines WHERE name = 'kill9'")
	tid=$(task_get "$id" slow id)
	a=$(sql "SELECT id FROM railyard.agents WHERE name = 'kill9-a'")
	b=$(sql "SELECT id FROM railyard.agents WHERE name = 'kill9-b'")
	[[ -n $tid && -n $a && -n $b ]] || fail "the previous scenario left no pipeline kill9 with agents kill9-a and kill9-b"
	[[ $(task_get "$id" slow "state || ' ' || attempt") == "succeeded 2" ]] ||
		fail "the previous scenario did not end with the task succeeded at attempt 2"
	snapshot() {
		sql "SELECT state, attempt, agent_id, exit_code, reason, started_at, finished_at
		       FROM railyard.tasks WHERE id = $tid;
		     SELECT * FROM railyard.task_attempts WHERE task_id = $tid ORDER BY attempt;
		     SELECT state, finished_at FROM railyard.pipelines WHERE id = $id;
		     SELECT count(*) FROM railyard.audit_log WHERE pipeline_id = $id;"
	}
	local before after out
	before=$(snapshot)
	# late AGENT ATTEMPT OUTCOME: the killed attempt's result arriving now.
	late() {
		sql "SELECT task_id || ' ' || attempt || ' ' || accepted::text FROM railyard.complete_tasks(
		        $1, ARRAY[$tid::bigint], ARRAY[$2], ARRAY['$3'], ARRAY[0], ARRAY[NULL]::text[],
		        ARRAY[now() - interval '5 seconds'], ARRAY[now()], ARRAY[NULL]::text[], ARRAY['late'],
		        ARRAY[5.0]::float8[], ARRAY[NULL]::float8[], ARRAY[NULL]::bigint[],
		        ARRAY[NULL]::bigint[], ARRAY[NULL]::bigint[])"
	}
	out=$(late "$a" 1 succeeded)
	[[ $out == "$tid 1 false" ]] || fail "the dead agent's late success for attempt 1 was not refused: $out"
	out=$(late "$a" 1 failed)
	[[ $out == "$tid 1 false" ]] || fail "the dead agent's late failure for attempt 1 was not refused: $out"
	# Nor may anyone finish an attempt that is not the current one.
	out=$(late "$b" 1 failed)
	[[ $out == "$tid 1 false" ]] || fail "a completion naming attempt 1 from kill9-b was not refused: $out"
	after=$(snapshot)
	[[ $before == "$after" ]] || fail "a refused completion changed something:"$'\n'"before: $before"$'\n'"after: $after"
}

max_attempts_exhausted_fails() {
	ry_newdb maxatt
	local wd=$RY_WORKDIR/w-maxatt id tid
	id=$(ry_submit "(name) VALUES ('once')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, max_attempts)
		VALUES (:id, 'once', 'sleep 30', 1), (:id, 'after', 'true', 3);
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'once', 'after');")
	tid=$(task_get "$id" once id)
	start_worker once-a "${FAST[@]}" --workdir "$wd"
	wait_for 30 has_process "$tid"
	stop_worker once-a KILL
	kill_task_processes "$tid"
	# Another worker's reaper notices the lease ran out.
	start_worker once-b "${FAST[@]}" --exit-when-idle --workdir "$wd"
	wait_pipeline 60 "$id" failed
	[[ $(task_get "$id" once "state || ' ' || attempt || ' ' || reason") == "failed 1 agent lost" ]] ||
		fail "expected the task failed at attempt 1 with reason 'agent lost', got: $(task_get "$id" once 'state, attempt, reason')"
	[[ $(attempts_of "$tid") == "1 once-a lost agent lost" ]] ||
		fail "expected one lost attempt in the history, got: $(attempts_of "$tid")"
	[[ $(task_get "$id" after state) == skipped ]] || fail "the failed task's dependent was not skipped"
}

# db_restart_keeps_results DOWN_S: 20 running tasks keep running across a
# database restart (down DOWN_S seconds) and every result is reported.
db_restart_keeps_results() {
	local down=$1
	[[ ${JOBS:-1} == 1 ]] || skip "restarts the cluster every script shares; needs JOBS=1"
	ry_newdb "restart$down"
	local wd=$RY_WORKDIR/w-restart$down id t0
	start_worker "restart$down" --slots 20 --heartbeat 1 --lease 10 --workdir "$wd"
	local pid=$RY_WORKER_PID
	id=$(ry_submit "(name) VALUES ('restart')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, mem_mb)
		SELECT :id, 'sleep-' || g, 'sleep 3', 16 FROM generate_series(1, 20) g;")
	# All 20 processes have started and the database knows it.
	wait_for 30 sql_eq 20 "SELECT count(*) FROM railyard.tasks
	                        WHERE pipeline_id = $id AND state = 'running' AND started_at IS NOT NULL"
	t0=$(sql "SELECT now()")
	pg_restart "$down"
	wait_pipeline 60 "$id" succeeded
	local bad
	bad=$(sql "SELECT t.name || ': attempt ' || t.attempt || ', history ' ||
	                  coalesce(string_agg(h.attempt || '=' || h.outcome, ','), 'none')
	             FROM railyard.tasks t LEFT JOIN railyard.task_attempts h ON h.task_id = t.id
	            WHERE t.pipeline_id = $id
	            GROUP BY t.id
	           HAVING t.attempt <> 1 OR count(h.attempt) <> 1 OR bool_or(h.outcome <> 'succeeded')")
	[[ -z $bad ]] || fail "a result was lost or a task re-ran across the restart: $bad"
	# They were running when the server went down: every result crossed it.
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $id
	           AND finished_at > '$t0'") == 20 ]] ||
		fail "not every task finished after the restart began; the restart did not happen under them"
	ry_alive "$pid" || fail "the worker died with the database"
	wait_for 15 sql_eq online "SELECT state FROM railyard.agents WHERE name = 'restart$down'"
}

timeout_kills_process_group() {
	ry_newdb timeout
	local wd=$RY_WORKDIR/w-timeout id tid
	local cmd='sh -c '\''sleep 300 & echo $! > $RAILYARD_PIPELINE_DIR/child.pid; sleep 300'\'''
	start_worker timeout "${FAST[@]}" --workdir "$wd"
	id=$(ry_submit "(name) VALUES ('timeout')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, timeout_s)
		VALUES (:id, 'hang', '${cmd//\'/\'\'}', 2);")
	tid=$(task_get "$id" hang id)
	wait_pipeline 60 "$id" failed
	local reason
	reason=$(task_get "$id" hang reason)
	[[ $reason == timeout* ]] || fail "the task failed with reason '$reason', not one starting with 'timeout'"
	[[ $(sql "SELECT outcome || ' ' || (reason LIKE 'timeout%') || ' ' || (duration_s < 60)
	           FROM railyard.task_attempts WHERE task_id = $tid") == "failed true true" ]] ||
		fail "the history does not record a timeout failure: $(attempts_of "$tid")"
	local child
	child=$(cat "$wd/pipelines/$id/shared/child.pid") || fail "the task wrote no child.pid"
	[[ $child =~ ^[0-9]+$ ]] || fail "child.pid holds '$child'"
	ry_dead "$child" || fail "the task's background child $child outlived the timeout"
	no_process "$tid" || fail "processes of the timed-out task still run: $(task_pids "$tid")"
	# The agent is fine.
	agent_still_works timeout
}

# agent_still_works WORKER: after a kill, the same worker runs the next task.
agent_still_works() {
	local id
	id=$(ry_submit "(name) VALUES ('after-$1')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'ok', 'echo ok');")
	wait_pipeline 30 "$id" succeeded
	[[ $(sql "SELECT agent_name FROM railyard.task_attempts WHERE pipeline_id = $id") == "$1" ]] ||
		fail "the next task did not run on the same worker $1"
}

oom_kills_and_agent_survives() {
	ry_newdb oom
	local wd=$RY_WORKDIR/w-oom id tid
	# ~130 MB held by awk (Debian's base system), while a 20 MB limit applies.
	local cmd='awk '\''BEGIN { s = "x"; while (length(s) < 100000000) s = s s; system("sleep 60") }'\'''
	start_worker oom "${FAST[@]}" --workdir "$wd"
	id=$(ry_submit "(name) VALUES ('oom')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, mem_mb, timeout_s)
		VALUES (:id, 'hog', '${cmd//\'/\'\'}', 20, 300);")
	tid=$(task_get "$id" hog id)
	wait_pipeline 60 "$id" failed
	local reason
	reason=$(task_get "$id" hog reason)
	[[ $reason == oom* ]] || fail "the task failed with reason '$reason', not one starting with 'oom'"
	wait_for 5 no_process "$tid"
	agent_still_works oom
}

sigterm_drains() {
	ry_newdb drain
	local wd=$RY_WORKDIR/w-drain id1 id2 tid1 tid2 pid
	id1=$(ry_submit "(name) VALUES ('draining')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'finish-me', 'sleep 2');")
	tid1=$(task_get "$id1" finish-me id)
	start_worker drain --slots 4 "${FAST[@]}" --workdir "$wd"
	pid=$RY_WORKER_PID
	wait_for 30 has_process "$tid1"
	kill -TERM "$pid"
	wait_for 10 grep -q draining "$RY_WORKDIR/worker-drain.log"
	# Ready while the worker drains, with slots free: it must stay ready.
	id2=$(ry_submit "(name) VALUES ('not-now')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'later', 'true');")
	tid2=$(task_get "$id2" later id)
	wait_for 30 ry_dead "$pid"
	local rc=0
	wait "$pid" || rc=$?
	((rc == 0)) || fail "the drained worker exited with status $rc"
	wait_pipeline 5 "$id1" succeeded
	[[ $(task_get "$id1" finish-me "state || ' ' || attempt") == "succeeded 1" ]] ||
		fail "the running task did not finish at attempt 1 while draining"
	[[ $(task_get "$id2" later "state || ' ' || attempt") == "ready 0" ]] ||
		fail "the draining worker took a new task: $(task_get "$id2" later 'state, attempt')"
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE task_id = $tid2") == 0 ]] ||
		fail "the task submitted during the drain has attempts"
	[[ $(sql "SELECT state FROM railyard.agents WHERE name = 'drain'") == offline ]] ||
		fail "the drained agent is $(sql "SELECT state FROM railyard.agents WHERE name = 'drain'"), not offline"
}

second_sigterm_stops_now() {
	ry_newdb drain2
	local wd=$RY_WORKDIR/w-drain2 id tid pid
	id=$(ry_submit "(name) VALUES ('interrupted')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'long', 'sleep 60');")
	tid=$(task_get "$id" long id)
	start_worker drain2 "${FAST[@]}" --workdir "$wd"
	pid=$RY_WORKER_PID
	wait_for 30 has_process "$tid"
	kill -TERM "$pid"
	wait_for 10 grep -q draining "$RY_WORKDIR/worker-drain2.log"
	kill -TERM "$pid"
	wait_for 10 ry_dead "$pid"
	wait_for 5 no_process "$tid"
	# Requeued for another attempt, not failed.
	[[ $(task_get "$id" long "state || ' ' || attempt") == "ready 1" ]] ||
		fail "expected the task ready again after attempt 1, got: $(task_get "$id" long 'state, attempt, reason')"
	[[ $(sql "SELECT outcome FROM railyard.task_attempts WHERE task_id = $tid AND attempt = 1") == lost ]] ||
		fail "attempt 1 is not recorded as lost: $(attempts_of "$tid")"
	[[ $(sql "SELECT state FROM railyard.pipelines WHERE id = $id") != failed ]] || fail "the pipeline failed"
	# The next claim is attempt 2 (a dry run finishes it without a minute's sleep).
	start_worker drain2-next --dry-run --exit-when-idle --workdir "$wd"
	wait_pipeline 30 "$id" succeeded
	[[ $(task_get "$id" long "state || ' ' || attempt") == "succeeded 2" ]] ||
		fail "the requeued task did not run as attempt 2: $(task_get "$id" long 'state, attempt')"
}

cancel_kills_running_task() {
	ry_newdb cancel
	local wd=$RY_WORKDIR/w-cancel id tid
	id=$(ry_submit "(name) VALUES ('cancel-me')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		VALUES (:id, 'long', 'sleep 60'), (:id, 'after', 'true');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'long', 'after');")
	tid=$(task_get "$id" long id)
	start_worker cancel "${FAST[@]}" --workdir "$wd"
	wait_for 30 has_process "$tid"
	[[ $(sql "SELECT railyard.cancel_pipeline($id)") == cancelled ]] || fail "cancel_pipeline did not say cancelled"
	wait_for 5 no_process "$tid"
	[[ $(sql "SELECT state FROM railyard.pipelines WHERE id = $id") == cancelled ]] || fail "the pipeline is not cancelled"
	[[ $(sql "SELECT string_agg(name || '=' || state, ' ' ORDER BY name) FROM railyard.tasks
	           WHERE pipeline_id = $id") == "after=cancelled long=cancelled" ]] ||
		fail "not every task is cancelled: $(sql "SELECT string_agg(name || '=' || state, ' ') FROM railyard.tasks WHERE pipeline_id = $id")"
	# The worker goes on, and its killed process was not reported as a result.
	local id2
	id2=$(ry_submit "(name) VALUES ('after-cancel')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'ok', 'echo ok');")
	wait_pipeline 30 "$id2" succeeded
	[[ $(task_get "$id" long state) == cancelled ]] || fail "the cancelled task changed state afterwards"
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE task_id = $tid AND outcome IN ('succeeded', 'failed')") == 0 ]] ||
		fail "the killed process was reported as a result: $(attempts_of "$tid")"
}

duplicate_name_is_refused() {
	ry_newdb dupname
	local wd=$RY_WORKDIR/w-dup first out rc=0
	start_worker dup "${FAST[@]}" --workdir "$wd"
	first=$RY_WORKER_PID
	wait_agent 30 dup
	out=$(timeout -k 5 60 "$RY" worker --name dup "${FAST[@]}" --workdir "$wd" 2>&1 </dev/null) || rc=$?
	echo "second worker (status $rc): $out"
	((rc != 0 && rc != 124 && rc != 137)) || fail "a second worker named dup did not refuse to start (status $rc)"
	[[ $out == *'"dup"'* || $out == *"dup"*"in use"* ]] || fail "the error does not name the agent: $out"
	ry_alive "$first" || fail "the first worker died"
	[[ $(sql "SELECT state || ' ' || pid FROM railyard.agents WHERE name = 'dup'") == "online $first" ]] ||
		fail "the agent row no longer belongs to the first worker: $(sql "SELECT state, pid FROM railyard.agents WHERE name = 'dup'")"
}


# The database goes away for longer than the lease.  The worker cannot know
# its tasks were not given to someone else, so by its own clock it stops
# them once its lease has run out — while the database is still down — and
# reports them lost (not failed) once it is back; they run again.  The
# first attempt never ends by itself, however long stopping the cluster
# takes; the second ends at once.
lease_expiry_stops_tasks() {
	[[ ${JOBS:-1} == 1 ]] || skip "stops the cluster every script shares; needs JOBS=1"
	ry_newdb leaseclock
	local wd=$RY_WORKDIR/w-leaseclock id tid
	id=$(ry_submit "(name) VALUES ('cut-off')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, max_attempts)
		VALUES (:id, 'long', 'if [ \"\$RAILYARD_ATTEMPT\" = 1 ]; then sleep 600; fi', 3);")
	tid=$(task_get "$id" long id)
	start_worker leaseclock "${FAST[@]}" --workdir "$wd"
	wait_for 30 sql_eq running "SELECT state FROM railyard.tasks WHERE id = $tid AND started_at IS NOT NULL"
	[[ -n $(procs_in "$wd" 1) ]] || fail "attempt 1 is not running"
	# Down until the worker has stopped attempt 1 by itself (lease 3 s).
	pg_restart 0 wait_for 20 no_procs_in "$wd" 1
	grep -q "lease has run out" "$RY_WORKDIR/worker-leaseclock.log" ||
		fail "the worker did not say why it stopped its tasks"
	wait_pipeline 60 "$id" succeeded
	local hist
	hist=$(attempts_of "$tid")
	echo "$hist"
	[[ $hist == "1 leaseclock lost stopped by its agent: lease expired while cut off from the database"$'\n'"2 leaseclock succeeded -" ]] ||
		fail "expected attempt 1 lost (stopped by its agent) and attempt 2 succeeded, got: $hist"
}

# A claim whose reply never reached the worker (it committed, the worker
# never heard): the worker never started it, so handing it back must not
# use up an attempt — a max_attempts 1 task must not fail 'agent lost'.
unstarted_claim_keeps_its_attempt() {
	ry_newdb refund
	local wd=$RY_WORKDIR/w-refund id tid agent
	start_worker refund "${FAST[@]}" --workdir "$wd"
	wait_agent 30 refund
	agent=$(sql "SELECT id FROM railyard.agents WHERE name = 'refund'")
	# A label the worker lacks keeps it from claiming the task itself.
	id=$(ry_submit "(name) VALUES ('refund')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, max_attempts, requires)
		VALUES (:id, 'once', 'true', 1, '{elsewhere}');")
	tid=$(task_get "$id" once id)
	# The lost claim: leased to the worker's agent behind its back.
	[[ $(sql "SELECT count(*) FROM railyard.claim_tasks($agent, ARRAY[$tid::bigint])") == 1 ]] ||
		fail "could not claim the task for the agent"
	# Its next heartbeat hands it back (perhaps already: no look at the
	# state in between), saying why, so the claim did take.
	wait_for 15 sql_eq "ready 0" "SELECT state || ' ' || attempt FROM railyard.tasks WHERE id = $tid"
	[[ $(task_get "$id" once reason) == "claimed but not started by its agent" ]] ||
		fail "the task is ready, but not handed back by its agent: $(task_get "$id" once reason)"
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE task_id = $tid") == 0 ]] ||
		fail "a claim that never ran left a history row: $(attempts_of "$tid")"
	# And it can still run, once, as attempt 1.
	start_worker refund-b "${FAST[@]}" --labels elsewhere --exit-when-idle --workdir "$wd"
	wait_pipeline 30 "$id" succeeded
	[[ $(task_get "$id" once attempt) == 1 ]] || fail "the task ran as attempt $(task_get "$id" once attempt)"
}

# release_tasks is fenced like completions: only the agent holding that
# attempt can hand a task back; refunds give the attempt back, releases
# without refund record a lost attempt.
release_is_fenced() {
	ry_newdb release
	local a b id t1 t2
	a=$(sql "SELECT railyard.register_agent('rel-a', 'h', 'linux', 'x86_64', 1, 1024, NULL, '{linux}', 2, 2, 1024, 1, 'test', 30, false, 'pgroup', 'test')")
	b=$(sql "SELECT railyard.register_agent('rel-b', 'h', 'linux', 'x86_64', 1, 1024, NULL, '{linux}', 2, 2, 1024, 2, 'test', 30, false, 'pgroup', 'test')")
	id=$(ry_submit "(name) VALUES ('release')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'x', 'true'), (:id, 'y', 'true');")
	t1=$(task_get "$id" x id)
	t2=$(task_get "$id" y id)
	sql "SELECT count(*) FROM railyard.claim_tasks($a, ARRAY[$t1, $t2]::bigint[])" >/dev/null
	local before
	before=$(sql "SELECT state, attempt, agent_id FROM railyard.tasks WHERE pipeline_id = $id ORDER BY id")
	sql "SELECT railyard.release_tasks($b, ARRAY[$t1, $t2]::bigint[], ARRAY[1, 1], 'not mine', true)" >/dev/null
	sql "SELECT railyard.release_tasks($a, ARRAY[$t1, $t2]::bigint[], ARRAY[2, 2], 'wrong attempt', false)" >/dev/null
	[[ $(sql "SELECT state, attempt, agent_id FROM railyard.tasks WHERE pipeline_id = $id ORDER BY id") == "$before" ]] ||
		fail "a release by another agent or for another attempt changed the tasks"
	sql "SELECT railyard.release_tasks($a, ARRAY[$t1]::bigint[], ARRAY[1], 'handed back', true)" >/dev/null
	sql "SELECT railyard.release_tasks($a, ARRAY[$t2]::bigint[], ARRAY[1], 'stopped', false)" >/dev/null
	[[ $(task_get "$id" x "state || ' ' || attempt || ' ' || coalesce(agent_id::text, '-')") == "ready 0 -" ]] ||
		fail "the refunded task is $(task_get "$id" x 'state, attempt, agent_id')"
	[[ $(task_get "$id" y "state || ' ' || attempt") == "ready 1" ]] ||
		fail "the released task is $(task_get "$id" y 'state, attempt')"
	[[ $(attempts_of "$t1") == "" ]] || fail "the refund left a history row: $(attempts_of "$t1")"
	[[ $(sql "SELECT outcome || ' ' || reason FROM railyard.task_attempts WHERE task_id = $t2") == "lost stopped" ]] ||
		fail "the release did not record a lost attempt: $(attempts_of "$t2")"
}

# inject_errors SQLSTATE: from now on every insert into task_attempts fails
# with SQLSTATE until stop_errors (a trigger: what a full disk, a read-only
# switch or a failover look like to the worker).
inject_errors() {
	sql "CREATE TABLE IF NOT EXISTS public.inject (state text);
	     DELETE FROM public.inject; INSERT INTO public.inject VALUES ('$1');
	     CREATE OR REPLACE FUNCTION public.inject_fail() RETURNS trigger LANGUAGE plpgsql AS \$f\$
	     DECLARE s text;
	     BEGIN
	         SELECT state INTO s FROM public.inject;
	         IF s IS NOT NULL THEN
	             RAISE EXCEPTION 'injected failure %', s USING ERRCODE = s;
	         END IF;
	         RETURN NEW;
	     END \$f\$;
	     CREATE OR REPLACE TRIGGER inject BEFORE INSERT ON railyard.task_attempts
	         FOR EACH ROW EXECUTE FUNCTION public.inject_fail();" >/dev/null
}
stop_errors() { sql "DELETE FROM public.inject" >/dev/null; }

# transient_errors_keep_results SQLSTATE: while the database refuses every
# completion with SQLSTATE, results are kept and retried with backoff; none
# turns into a failure.
transient_errors_keep_results() {
	local state=$1
	ry_newdb "transient_$state"
	local wd=$RY_WORKDIR/w-transient-$state id
	start_worker "transient-$state" --slots 10 --workdir "$wd"
	wait_agent 30 "transient-$state"
	inject_errors "$state"
	id=$(ry_submit "(name) VALUES ('transient')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		SELECT :id, 't' || g, 'echo done ' || g FROM generate_series(1, 10) g;")
	# Every task has been claimed and finished; its result refused, again.
	refused_twice() {
		local n
		n=$(grep -c "cannot report [0-9]* task results, keeping them: injected failure $state" \
			"$RY_WORKDIR/worker-transient-$state.log" || :)
		((n >= 2))
	}
	wait_for 30 sql_eq 10 "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND state = 'running'"
	wait_for 60 refused_twice
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $id") == 0 ]] ||
		fail "results were stored while the database refused them"
	stop_errors
	wait_pipeline 60 "$id" succeeded
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $id AND outcome = 'succeeded' AND attempt = 1") == 10 ]] ||
		fail "not every result arrived as a success of attempt 1: $(sql "SELECT task_id, attempt, outcome, reason FROM railyard.task_attempts WHERE pipeline_id = $id")"
}

# One result in a batch carries data the database refuses (a constraint
# the test adds): that one is found (by halving the batch) and stored as
# failed with the reason; the others are stored as they were.
one_bad_result_is_isolated() {
	ry_newdb poison
	local wd=$RY_WORKDIR/w-poison id
	sql "ALTER TABLE railyard.task_attempts ADD CONSTRAINT no_poison
	         CHECK (coalesce(log_tail, '') NOT LIKE '%POISON%')" >/dev/null
	start_worker poison --slots 20 --workdir "$wd"
	wait_agent 30 poison
	# Held back until all 20 wait, their results leave as one batch.
	inject_errors 53300
	id=$(ry_submit "(name) VALUES ('poison')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		SELECT :id, 't' || g, CASE WHEN g = 13 THEN 'echo POISON' ELSE 'echo fine' END
		  FROM generate_series(1, 20) g;")
	wait_for 60 grep -q "cannot report 20 task results, keeping them" "$RY_WORKDIR/worker-poison.log"
	stop_errors
	wait_pipeline 60 "$id" failed
	[[ $(sql "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND state = 'succeeded'") == 19 ]] ||
		fail "the good results were not all stored as successes: $(sql "SELECT name, state FROM railyard.tasks WHERE pipeline_id = $id AND state <> 'succeeded'")"
	local reason
	reason=$(task_get "$id" t13 "state || ': ' || reason")
	[[ $reason == "failed: result could not be stored: "*no_poison* ]] ||
		fail "the bad result is not failed with the database's reason: $reason"
	grep -q "finding the one at fault" "$RY_WORKDIR/worker-poison.log" ||
		fail "the worker did not bisect the batch"
}

# A worker killed while results wait for an unreachable database reports
# them after its restart, from its journal: nothing runs again.
journal_survives_kill() {
	[[ ${JOBS:-1} == 1 ]] || skip "stops the cluster every script shares; needs JOBS=1"
	ry_newdb journal
	local wd=$RY_WORKDIR/w-journal id name=journal
	# A lease long enough to outlast the outage: nothing is reaped meanwhile.
	start_worker "$name" --heartbeat 1 --lease 60 --slots 5 --workdir "$wd"
	wait_agent 30 "$name"
	# The tasks end only once the database is down (a gate in /tmp, which
	# tasks share): however long stopping the cluster takes, no result can
	# reach it first.
	local gate
	gate=$(mktemp -d /tmp/ry-journal-gate.XXXXXX)
	chmod 0755 "$gate"
	# j5 stores an output; "use", after it, needs it restored: the journal
	# keeps the output's record with the result.
	id=$(ry_submit "(name) VALUES ('journal')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, outputs)
		SELECT :id, 'j' || g, 'while [ ! -e $gate/open ]; do sleep 0.05; done; echo done' ||
		       CASE WHEN g = 5 THEN '; mkdir -p out && echo built >out/x' ELSE '' END,
		       CASE WHEN g = 5 THEN '{out}' ELSE '{}' END::text[]
		  FROM generate_series(1, 5) g;
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		VALUES (:id, 'use', 'test \"\$(cat out/x)\" = built');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'j5', 'use');")
	wait_for 30 sql_eq 5 "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND started_at IS NOT NULL"
	local journal=$wd/state/$name.journal
	# While the database is down: the tasks end, their results are written
	# to the journal, and the worker is killed before it can send them.
	journaled() { [[ $(grep -c '"result"' "$journal") == 5 ]]; }
	pg_restart 0 eval 'touch "$gate/open" && wait_for 30 journaled && stop_worker journal KILL'
	rm -rf "$gate"
	start_worker "$name" --heartbeat 1 --lease 60 --slots 5 --workdir "$wd"
	wait_pipeline 60 "$id" succeeded
	local bad
	bad=$(sql "SELECT t.name || ': ' || string_agg(h.attempt || '=' || h.outcome, ',')
	             FROM railyard.tasks t JOIN railyard.task_attempts h ON h.task_id = t.id
	            WHERE t.pipeline_id = $id GROUP BY t.id
	           HAVING count(*) <> 1 OR bool_or(h.attempt <> 1 OR h.outcome <> 'succeeded')")
	[[ -z $bad ]] || fail "results were lost with the worker, tasks ran again: $bad"
	grep -q "reporting 5 results of a previous run" "$RY_WORKDIR/worker-$name.log" ||
		fail "the restarted worker did not report the journal's results"
	wait_for 10 test ! -s "$journal"
}

# A task writing 300 MB with log_max_mb = 10: the log stops at 10 MB with a
# marker, the rest is drained and dropped, and the task succeeds.
log_is_capped() {
	ry_newdb logcap
	local conf=$RY_WORKDIR/logcap.conf id log
	printf 'log_max_mb = 10\n' >"$conf"
	start_worker logcap --config "$conf" --workdir "$RY_WORKDIR/w-logcap"
	id=$(ry_submit "(name) VALUES ('logcap')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		VALUES (:id, 'chatty', 'yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde | head -c 300000000; echo; echo finished');")
	wait_pipeline 120 "$id" succeeded
	log=$(sql "SELECT log_path FROM railyard.task_attempts WHERE pipeline_id = $id")
	local size
	size=$(stat -c %s "$log")
	echo "log size: $size"
	((size >= 10 * 1024 * 1024 && size <= 10 * 1024 * 1024 + 200)) ||
		fail "the log is $size bytes, not 10 MB plus a marker"
	[[ $(sql "SELECT log_tail LIKE '%[railyard: output truncated at 10 MB (log_max_mb)%' FROM railyard.task_attempts WHERE pipeline_id = $id") == t ]] ||
		fail "the stored tail does not show the truncation marker"
}

# Scripts and tools written against the earlier worker functions keep
# working: the new parameters all come last, with defaults.
earlier_signatures_still_work() {
	ry_newdb oldsigs
	local a id t
	a=$(sql "SELECT railyard.register_agent('old', 'h', 'linux', 'x86_64', 1, 1024, NULL, '{linux}', 2, 2, 1024, 1, 't', 30)")
	[[ $(sql "SELECT isolation IS NULL AND task_identity IS NULL FROM railyard.agents WHERE id = $a") == t ]] ||
		fail "register_agent without the new arguments did not register"
	sql "SELECT count(*) FROM railyard.heartbeat($a, '{}', '{}', 0)" >/dev/null
	sql "SELECT railyard.update_agent($a, '{linux}', 3, 3, 1024)" >/dev/null
	[[ $(sql "SELECT slots || ' ' || lease_s FROM railyard.agents WHERE id = $a") == "3 30" ]] ||
		fail "update_agent without a lease changed the lease: $(sql "SELECT slots, lease_s FROM railyard.agents WHERE id = $a")"
	id=$(ry_submit "(name) VALUES ('oldsigs')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'x', 'true');")
	t=$(task_get "$id" x id)
	sql "SELECT count(*) FROM railyard.claim_tasks($a, ARRAY[$t]::bigint[])" >/dev/null
	[[ $(sql "SELECT accepted FROM railyard.complete_tasks($a, ARRAY[$t]::bigint[], ARRAY[1], ARRAY['succeeded'],
	        ARRAY[0], ARRAY[NULL]::text[], ARRAY[now()], ARRAY[now()], ARRAY[NULL]::text[], ARRAY['ok'])") == t ]] ||
		fail "complete_tasks without the usage arguments was not accepted"
	[[ $(sql "SELECT cpu_s IS NULL AND duration_s IS NOT NULL FROM railyard.task_attempts WHERE task_id = $t") == t ]] ||
		fail "the history row is not as expected"
}

run_scenario "kill -9 of a worker mid-task: the task runs again elsewhere as attempt 2" worker_killed_mid_task
run_scenario "a late completion from the killed attempt is refused and changes nothing" late_completion_is_refused
run_scenario "max_attempts 1: a lost task fails with 'agent lost' and so does the pipeline" max_attempts_exhausted_fails
run_scenario "PostgreSQL restarted under 20 running tasks: no result lost, attempt 1 everywhere" \
	db_restart_keeps_results 0
run_scenario "PostgreSQL down 4 s (longer than the heartbeat): no result lost, attempt 1 everywhere" \
	db_restart_keeps_results 4
run_scenario "a timeout kills the task's whole process group; the worker stays healthy" timeout_kills_process_group
run_scenario "a task over its mem_mb is killed as 'oom'; the agent keeps working" oom_kills_and_agent_survives
run_scenario "SIGTERM drains: the running task finishes, nothing new is claimed, exit 0, offline" sigterm_drains
run_scenario "a second SIGTERM stops at once and requeues the running task" second_sigterm_stops_now
run_scenario "cancelling a running pipeline kills its task; the worker goes on" cancel_kills_running_task
run_scenario "a second worker with the same --name refuses to start, naming the agent" duplicate_name_is_refused
run_scenario "cut off from the database past its lease, the worker stops its tasks itself; reported lost, run again" \
	lease_expiry_stops_tasks
run_scenario "a claim the worker never started is handed back without using up an attempt" \
	unstarted_claim_keeps_its_attempt
run_scenario "release_tasks is fenced: only the holder of that attempt hands a task back" release_is_fenced
run_scenario "the database refuses completions as disk full (53100): results kept, retried, none failed" \
	transient_errors_keep_results 53100
run_scenario "the database is read-only (25006) for a while: results kept, retried, none failed" \
	transient_errors_keep_results 25006
run_scenario "one result in a batch has data the database refuses: only it fails, with the reason" \
	one_bad_result_is_isolated
run_scenario "a worker killed while results wait for the database reports them after its restart" \
	journal_survives_kill
run_scenario "a task writing 300 MB with log_max_mb = 10: the log is capped with a marker, the task succeeds" \
	log_is_capped
run_scenario "the worker functions still take the earlier argument lists" earlier_signatures_still_work
