#!/usr/bin/env bash
# Conditional execution (PRODUCT.md: run_if on_success / on_failure /
# always; only_if_changed, a PCRE2 pattern over the pipeline's changed
# paths) and the audit log of a finished pipeline.
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes

# states ID: "name=state" for every task of pipeline ID, by name.
states() {
	sql "SELECT string_agg(name || '=' || state, ' ' ORDER BY name) FROM railyard.tasks WHERE pipeline_id = $1"
}

# expect_states ID "a=succeeded b=skipped ...": the whole set, by name.
expect_states() {
	local got
	got=$(states "$1")
	[[ $got == "$2" ]] || fail "pipeline $1: expected task states '$2', got '$got'"
}

# cond_worker: the scenario's worker, agent "cond".
cond_worker() {
	start_worker cond --slots 4 --heartbeat 1 --lease 3 --workdir "$RY_WORKDIR/w-cond"
}

on_failure_runs_after_a_failure() {
	local id
	cond_worker
	id=$(ry_submit "(name) VALUES ('broken-build')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, run_if)
		VALUES (:id, 'build', 'echo compiling; exit 1', 'on_success'),
		       (:id, 'notify', 'echo build broke', 'on_failure'),
		       (:id, 'deploy', 'echo deploying', 'on_success'),
		       (:id, 'smoke', 'echo smoke test', 'on_success');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream)
		VALUES (:id, 'build', 'notify'), (:id, 'build', 'deploy'), (:id, 'deploy', 'smoke');")
	wait_pipeline 60 "$id" failed
	expect_states "$id" "build=failed deploy=skipped notify=succeeded smoke=skipped"
	[[ $(task_get "$id" build "exit_code") == 1 ]] || fail "build's exit code is not recorded as 1"
	[[ $(task_get "$id" deploy reason) == "upstream failed" ]] ||
		fail "deploy's skip reason is '$(task_get "$id" deploy reason)', not 'upstream failed'"
	# The skip propagates: deploy's own dependent is skipped for the same reason.
	[[ $(task_get "$id" smoke reason) == "upstream failed" ]] ||
		fail "smoke's skip reason is '$(task_get "$id" smoke reason)', not 'upstream failed'"
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id
	           WHERE t.pipeline_id = $id AND t.name IN ('deploy', 'smoke')") == 0 ]] ||
		fail "a skipped task has attempts: it ran"
	[[ $(sql "SELECT log_tail FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id
	           WHERE t.pipeline_id = $id AND t.name = 'notify'") == *"build broke"* ]] ||
		fail "notify did not run its command"
}

on_failure_skipped_when_nothing_fails() {
	local id reason
	cond_worker
	id=$(ry_submit "(name) VALUES ('green-build')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, run_if)
		VALUES (:id, 'build', 'true', 'on_success'), (:id, 'notify', 'echo broke', 'on_failure');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'build', 'notify');")
	wait_pipeline 60 "$id" succeeded
	expect_states "$id" "build=succeeded notify=skipped"
	reason=$(task_get "$id" notify reason)
	[[ $reason == *"no upstream failed"* ]] || fail "notify's skip reason '$reason' does not say no upstream failed"
}

always_runs_either_way() {
	local bad good
	cond_worker
	bad=$(ry_submit "(name) VALUES ('always-after-failure')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, run_if)
		VALUES (:id, 'build', 'exit 3', 'on_success'), (:id, 'cleanup', 'echo cleaned', 'always');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'build', 'cleanup');")
	good=$(ry_submit "(name) VALUES ('always-after-success')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, run_if)
		VALUES (:id, 'build', 'true', 'on_success'), (:id, 'cleanup', 'echo cleaned', 'always');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'build', 'cleanup');")
	wait_pipeline 60 "$bad" failed
	wait_pipeline 60 "$good" succeeded
	expect_states "$bad" "build=failed cleanup=succeeded"
	expect_states "$good" "build=succeeded cleanup=succeeded"
}

only_if_changed_selects_tasks() {
	local id
	cond_worker
	id=$(ry_submit "(name, changed_paths) VALUES ('cart-change', '{services/cart/main.go}')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, only_if_changed)
		VALUES (:id, 'build:cart', 'echo cart', '^services/cart/'),
		       (:id, 'build:search', 'echo search', '^services/search/'),
		       (:id, 'test:search', 'echo search tests', NULL);
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'build:search', 'test:search');")
	wait_pipeline 60 "$id" succeeded
	expect_states "$id" "build:cart=succeeded build:search=skipped test:search=succeeded"
	local reason
	reason=$(task_get "$id" build:search reason)
	[[ $reason == unchanged* ]] || fail "build:search's skip reason '$reason' does not start with 'unchanged'"
	# A condition skip is not a failure: the downstream ran, on_success.
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id
	           WHERE t.pipeline_id = $id AND t.name = 'test:search' AND h.outcome = 'succeeded'") == 1 ]] ||
		fail "test:search did not run after its upstream was skipped as unchanged"
}

only_if_changed_without_changed_paths_runs_all() {
	local id
	cond_worker
	id=$(ry_submit "(name, changed_paths) VALUES ('unknown-change', NULL)" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, only_if_changed)
		VALUES (:id, 'build:cart', 'echo cart', '^services/cart/'),
		       (:id, 'build:search', 'echo search', '^services/search/');")
	wait_pipeline 60 "$id" succeeded
	expect_states "$id" "build:cart=succeeded build:search=succeeded"
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $id AND outcome = 'succeeded'") == 2 ]] ||
		fail "not both tasks ran"
}

only_if_changed_invalid_pattern_fails() {
	local id reason
	cond_worker
	# A pattern PostgreSQL's regular expressions accept at COMMIT (\m: start
	# of a word) but PCRE2 cannot compile: the worker finds out.
	id=$(ry_submit "(name, changed_paths) VALUES ('bad-pattern', '{services/cart/main.go}')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, only_if_changed)
		VALUES (:id, 'broken', 'echo should not run', E'\\\\mcart');")
	wait_pipeline 60 "$id" failed
	expect_states "$id" "broken=failed"
	reason=$(task_get "$id" broken reason)
	echo "reason: $reason"
	[[ $reason == *only_if_changed* && $reason == *pattern* ]] ||
		fail "the reason '$reason' does not name the only_if_changed pattern"
	# PCRE2's own words for the escape it does not know.
	[[ $reason == *"unrecognized character follows"* ]] ||
		fail "the reason '$reason' does not say what is wrong with '\\m'"
	[[ $(sql "SELECT coalesce(log_tail, '') FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id
	           WHERE t.pipeline_id = $id") != *"should not run"* ]] || fail "the command ran despite the bad pattern"
}

audit_log_is_complete() {
	local id
	cond_worker
	id=$(ry_submit "(name, changed_paths) VALUES ('audited', '{services/cart/x.go}')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, only_if_changed)
		VALUES (:id, 'a', 'true', NULL), (:id, 'b', 'true', NULL),
		       (:id, 'c', 'true', '^services/cart/'), (:id, 'skipme', 'true', '^docs/');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream)
		VALUES (:id, 'a', 'b'), (:id, 'a', 'c'), (:id, 'b', 'skipme');")
	wait_pipeline 60 "$id" succeeded
	sql "SELECT id, actor, object, object_id, event, old_state, new_state FROM railyard.audit_log
	      WHERE pipeline_id = $id ORDER BY id"

	# Per task: its events in order, and who did them.
	local name tid events actors want
	for name in a b c skipme; do
		tid=$(task_get "$id" "$name" id)
		events=$(sql "SELECT string_agg(event, ' ' ORDER BY id) FROM railyard.audit_log
		               WHERE object = 'task' AND object_id = $tid")
		want="ready claim start finish"
		[[ $name == skipme ]] && want="ready claim start skip"
		# start is recorded when the worker reports the process running; a
		# task skipped before any process existed may lack it.
		[[ $events == "$want" || ($name == skipme && $events == "ready claim skip") ]] ||
			fail "task $name: audit events '$events', expected '$want'"
		# Who acted is the session's role; which agent, the worker it named.
		actors=$(sql "SELECT string_agg(DISTINCT actor || '/' || coalesce(agent, '-'), ' ')
		                FROM railyard.audit_log
		               WHERE object = 'task' AND object_id = $tid AND event <> 'ready'")
		[[ $actors == "$RY_PGUSER/cond" ]] ||
			fail "task $name: claim/start/finish by '$actors', not role $RY_PGUSER as agent cond"
	done
	# Tasks released by an upstream's completion were released by that worker.
	actors=$(sql "SELECT string_agg(DISTINCT l.actor || '/' || coalesce(l.agent, '-'), ' ')
	                FROM railyard.audit_log l
	                JOIN railyard.tasks t ON t.id = l.object_id
	              WHERE l.object = 'task' AND l.event = 'ready' AND t.pipeline_id = $id AND t.name <> 'a'")
	[[ $actors == "$RY_PGUSER/cond" ]] || fail "downstream tasks' ready events are by '$actors', not agent cond"
	# The roots were released by the submission, which no worker made.
	actors=$(sql "SELECT string_agg(DISTINCT l.actor || '/' || coalesce(l.agent, '-'), ' ')
	                FROM railyard.audit_log l
	                JOIN railyard.tasks t ON t.id = l.object_id
	              WHERE l.object = 'task' AND l.event = 'ready' AND t.pipeline_id = $id AND t.name = 'a'")
	[[ $actors == "$RY_PGUSER/-" ]] || fail "the root's ready event is by '$actors', not the submitting role alone"
	[[ $(sql "SELECT count(*) FROM railyard.audit_log
	           WHERE object = 'task' AND pipeline_id = $id AND (actor IS NULL OR actor = '')") == 0 ]] ||
		fail "audit rows without an actor"

	# The pipeline: submitted, started, finished, in that order.
	events=$(sql "SELECT string_agg(event || ':' || coalesce(new_state, ''), ' ' ORDER BY id) FROM railyard.audit_log
	               WHERE object = 'pipeline' AND object_id = $id")
	[[ $events == "submit:queued start:running finish:succeeded" ]] ||
		fail "pipeline audit events '$events', expected submit, start, finish"
	[[ $(sql "SELECT string_agg(agent, ' ' ORDER BY id) FROM railyard.audit_log
	           WHERE object = 'pipeline' AND object_id = $id AND event IN ('start', 'finish')") == "cond cond" ]] ||
		fail "the pipeline's start and finish are not attributed to agent cond"
	# Every event is in time order within the pipeline.
	[[ $(sql "SELECT count(*) FROM (SELECT at < lag(at) OVER (ORDER BY id) AS back FROM railyard.audit_log
	           WHERE pipeline_id = $id AND event <> 'start') x WHERE back") == 0 ]] ||
		fail "audit rows are not in time order"
}

run_scenario "run_if on_failure runs after a failure; on_success dependents are skipped transitively" \
	on_failure_runs_after_a_failure
run_scenario "run_if on_failure is skipped when nothing failed; the pipeline succeeds" \
	on_failure_skipped_when_nothing_fails
run_scenario "run_if always runs after a failure and after a success" always_runs_either_way
run_scenario "only_if_changed: matching task runs, unmatched is skipped 'unchanged', its downstream runs" \
	only_if_changed_selects_tasks
run_scenario "only_if_changed without changed_paths: every task runs" only_if_changed_without_changed_paths_runs_all
run_scenario "only_if_changed with an invalid pattern fails the task naming the error" \
	only_if_changed_invalid_pattern_fails
run_scenario "audit log: every task ready, claim, finish in order by agent cond; pipeline submit, start, finish" \
	audit_log_is_complete
