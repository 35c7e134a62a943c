#!/usr/bin/env bash
# railyard.submit_pipeline (sql/10_submit.sql), the one call `railyard
# submit` makes: the graph checked and ranked before the tasks are stored,
# each task inserted once with its final run state.  It must store exactly
# what plain INSERTs and the check at COMMIT (validate_pipeline) store, and
# refuse what they refuse, leaving nothing behind.
. "$(dirname "$0")/lib.sh"

# A pipeline touching every source of the rank weights (task_estimates):
# c has history of its own, d only in another version, a an estimate_s,
# b borrows from another family's tasks of its service and kind, e and f
# have nothing (default).  Two roots (a, f), a diamond, a priority of its
# own on a and the pipeline's (5) on the others.
TASKS='[
 {"name": "a", "service": "svc", "kind": "build", "command": "make a", "env": {"X": "1"},
  "requires": ["linux"], "priority": 7, "estimate_s": 30, "version": "1", "cpu": 2, "mem_mb": 512,
  "cacheable": true, "inputs": ["src/**"], "outputs": ["out/a"], "run_if": "on_success",
  "max_attempts": 3, "timeout_s": 600, "secrets": {}},
 {"name": "b", "service": "svc", "kind": "test", "command": "make b", "env": {}, "requires": [],
  "version": "1", "cpu": 1, "mem_mb": 256, "cacheable": false, "inputs": [], "outputs": [],
  "run_if": "always", "max_attempts": 1, "timeout_s": 60, "secrets": {}},
 {"name": "c", "service": "lib", "kind": "build", "command": "make c", "env": {}, "requires": [],
  "version": "1", "cpu": 1, "mem_mb": 256, "cacheable": false, "inputs": [], "outputs": [],
  "run_if": "on_success", "max_attempts": 3, "timeout_s": 3600, "secrets": {}},
 {"name": "d", "service": "lib", "kind": "package", "command": "make d", "env": {}, "requires": [],
  "version": "2", "cpu": 1, "mem_mb": 256, "cacheable": false, "inputs": [], "outputs": [],
  "run_if": "on_success", "max_attempts": 3, "timeout_s": 3600, "secrets": {}, "only_if_changed": "^lib/"},
 {"name": "e", "service": "app", "kind": "lint", "command": "make e", "env": {}, "requires": [],
  "version": "1", "cpu": 1, "mem_mb": 256, "cacheable": false, "inputs": [], "outputs": [],
  "run_if": "on_failure", "max_attempts": 3, "timeout_s": 3600, "secrets": {}},
 {"name": "f", "service": "app", "kind": "deploy", "command": "make f", "env": {}, "requires": [],
  "version": "1", "cpu": 1, "mem_mb": 256, "cacheable": false, "inputs": [], "outputs": [],
  "run_if": "on_success", "max_attempts": 3, "timeout_s": 3600, "secrets": {}, "image": "alpine:3"}
]'
EDGES='[
 {"upstream": "a", "downstream": "b", "kind": "build"},
 {"upstream": "a", "downstream": "c", "kind": "build"},
 {"upstream": "b", "downstream": "d", "kind": "test"},
 {"upstream": "c", "downstream": "d", "kind": "build"},
 {"upstream": "d", "downstream": "e", "kind": "runtime"}
]'

# The same pipeline with plain INSERTs, the tasks from the same JSON.
plain_submission() {
	cat <<-EOF
		BEGIN;
		INSERT INTO railyard.pipelines (name, team, priority) VALUES ('$1', 'qa', 5) RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command, env, requires, os, arch,
		       cpu, mem_mb, pool, priority, version, cacheable, inputs, run_if, only_if_changed,
		       max_attempts, timeout_s, outputs, secrets, image, forecast_key, estimate_s)
		SELECT :id, t.name, t.service, t.kind, t.command, t.env, t.requires, t.os, t.arch, t.cpu,
		       t.mem_mb, t.pool, t.priority, t.version, t.cacheable, t.inputs, t.run_if,
		       t.only_if_changed, t.max_attempts, t.timeout_s, t.outputs, t.secrets, t.image,
		       t.forecast_key, t.estimate_s
		  FROM jsonb_populate_recordset(NULL::railyard.tasks, '$TASKS') t;
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream, kind)
		SELECT :id, e.upstream, e.downstream, e.kind
		  FROM jsonb_populate_recordset(NULL::railyard.edges, '$EDGES') e;
		COMMIT;
		SELECT :id;
	EOF
}

# stored ID: everything a submission stores, without ids and times.
stored() {
	sql "SELECT p.name, p.team, p.priority, p.state, p.validated_at IS NOT NULL,
	            (SELECT count(*) FROM railyard.forecast_pending f WHERE f.pipeline_id = p.id)
	       FROM railyard.pipelines p WHERE p.id = $1;
	     SELECT t.name, t.service, t.kind, t.command, t.env, t.requires, t.os, t.arch, t.cpu,
	            t.mem_mb, t.pool, t.priority, t.version, t.cacheable, t.inputs, t.cache_key, t.run_if,
	            t.only_if_changed, t.max_attempts, t.timeout_s, t.state, t.reason, t.waiting_on,
	            t.upstream_failed, t.rank, t.attempt, t.agent_id, t.exit_code,
	            t.ready_at IS NOT NULL, t.claimed_at, t.started_at, t.finished_at, t.secrets,
	            t.forecast_key, t.estimate_s, t.outputs, t.team,
	            t.age_key IS NOT DISTINCT FROM CASE WHEN t.state = 'ready'
	                                                THEN railyard.age_key(t.priority, t.ready_at) END,
	            t.image
	       FROM railyard.tasks t WHERE t.pipeline_id = $1 ORDER BY t.name;
	     SELECT e.upstream, e.downstream, e.kind FROM railyard.edges e
	      WHERE e.pipeline_id = $1 ORDER BY 1, 2;
	     SELECT a.object, coalesce(t.name, ''), a.event, a.old_state, a.new_state, a.actor,
	            a.detail - 'name'
	       FROM railyard.audit_log a LEFT JOIN railyard.tasks t ON a.object = 'task' AND t.id = a.object_id
	      WHERE a.pipeline_id = $1 ORDER BY 1, 2, 3;"
}

one_call_stores_what_plain_inserts_store() {
	# History for the estimates: c's own, d's other version, and the
	# service and kind of b in another family.
	sql "INSERT INTO railyard.duration_stats (family, task, version, agent_class, service, kind, runs,
	                                          ewma_log, last_at, recent_at)
	     VALUES ('eq', 'c', '1', '*', 'lib', 'build', 8, ln(40), now(), now()),
	            ('eq', 'd', '1', '*', 'lib', 'package', 8, ln(90), now(), now()),
	            ('other', 'x', '1', '*', 'svc', 'test', 8, ln(300), now(), now())" >/dev/null
	local plain one
	plain=$(plain_submission eq | sql "$(cat)")
	one=$(sql "SELECT railyard.submit_pipeline('eq', 'qa', 5, NULL, NULL, NULL, '$TASKS', '$EDGES')")
	[[ $plain =~ ^[0-9]+$ && $one =~ ^[0-9]+$ ]] || fail "submissions failed: '$plain' '$one'"
	local sources
	sources=$(sql "SELECT string_agg(name || '=' || source, ' ' ORDER BY name) FROM railyard.task_estimates($one)")
	[[ $sources == "a=estimate b=service+kind c=history d=other version e=default f=default" ]] ||
		fail "the pipeline should use every source of estimates: $sources"
	local want got
	want=$(stored "$plain")
	got=$(stored "$one")
	[[ $got == "$want" ]] || fail "submit_pipeline stored something else than plain INSERTs:
$(diff <(echo "$want") <(echo "$got"))"
	# The ranks come from the estimates: a's is its own 30 s plus the
	# heaviest path below it (b 300 s, borrowed, then d 90 s and e 60 s).
	[[ $(sql "SELECT round(rank) FROM railyard.tasks WHERE pipeline_id = $one AND name = 'a'") == 480 ]] ||
		fail "a's rank should be 30 + 300 + 90 + 60: $(sql "SELECT name, rank FROM railyard.tasks WHERE pipeline_id = $one")"
}

# refused NAME TASKS EDGES EXPECTED: submit_pipeline refuses, mentioning
# EXPECTED, and no trace of the pipeline is left.
refused() {
	sql_expect_error "SELECT railyard.submit_pipeline('$1', 'qa', 0, NULL, NULL, NULL, '$2', '$3')" "$4"
	local n
	n=$(sql "SELECT (SELECT count(*) FROM railyard.pipelines WHERE name = '$1')
	              + (SELECT count(*) FROM railyard.audit_log WHERE detail->>'name' = '$1')")
	[[ $n == 0 ]] || fail "the refused pipeline $1 left $n rows behind"
}

task() { printf '{"name": "%s", "kind": "build", "command": "true", "env": {}, "requires": [], "version": "1", "cpu": %s, "mem_mb": 256, "cacheable": false, "inputs": [], "outputs": [], "run_if": "on_success", "max_attempts": 3, "timeout_s": 60}' "$1" "${2:-1}"; }
edge() { printf '{"upstream": "%s", "downstream": "%s", "kind": "build"}' "$1" "$2"; }

one_call_refuses_what_the_commit_check_refuses() {
	refused r-obj "{}" "[]" "tasks and edges must be JSON arrays of objects"
	refused r-none "[]" "[]" 'has no tasks'
	refused r-twice "[$(task x), $(task x)]" "[]" 'task "x" is given twice'
	refused r-unknown "[$(task x)]" "[$(edge x zz)]" 'unknown task "zz"'
	refused r-cycle "[$(task x), $(task y), $(task z)]" "[$(edge x y), $(edge y z), $(edge z y)]" \
		'cycle: y -> z -> y'
	refused r-self "[$(task x)]" "[$(edge x x)]" 'cycle: x -> x'
	refused r-cpu "[$(task x 0)]" "[]" 'task_cpu_range'
	refused r-dup-edge "[$(task x), $(task y)]" "[$(edge x y), $(edge x y)]" 'edges_pkey'
	refused r-no-up "[$(task x), $(task y)]" '[{"downstream": "y", "kind": "build"}]' \
		'null value in column "upstream"'
	refused r-no-down "[$(task x), $(task y)]" '[{"upstream": "x", "kind": "build"}]' \
		'null value in column "downstream"'
}

# Its pipeline is stored submitted at once: the same transaction cannot
# slip in a task or an edge the graph check never saw.
nothing_added_after_the_call() {
	local out
	out=$(sql_expect_error "BEGIN;
		SELECT railyard.submit_pipeline('late', 'qa', 0, NULL, NULL, NULL, '[$(task x)]', '[]') AS id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'y', 'true');
		COMMIT;" 'the pipeline was already submitted')
	sql_expect_error "BEGIN;
		SELECT railyard.submit_pipeline('late', 'qa', 0, NULL, NULL, NULL, '[$(task x), $(task y)]', '[]') AS id \\gset
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'x', 'y');
		COMMIT;" 'the pipeline was already submitted' >/dev/null
	[[ $(sql "SELECT count(*) FROM railyard.pipelines WHERE name = 'late'") == 0 ]] ||
		fail "a refused transaction left its pipeline behind: $out"
}

# The run columns belong to railyard: keys for them in the tasks' JSON
# are ignored (the INSERT names none of them), and the graph decides
# state and count of upstreams, not the caller.
run_state_in_the_json_is_ignored() {
	local id got forged
	forged='"state": "running", "waiting_on": 0, "attempt": 5, "agent_id": 1, "exit_code": 0, '
	forged+='"reason": "forged", "upstream_failed": true, "rank": 1e9, "team": "other", "age_key": 1e9, '
	forged+='"started_at": "2020-01-01", "finished_at": "2020-01-01", "claimed_at": "2020-01-01"'
	id=$(sql "SELECT railyard.submit_pipeline('forged-json', 'qa', 0, NULL, NULL, NULL,
		'[$(task up | sed "s/}\$/, $forged}/"), $(task down | sed "s/}\$/, $forged}/")]',
		'[$(edge up down)]')") || return
	got=$(sql "SELECT string_agg(concat_ws(',', name, state, waiting_on, attempt, agent_id, exit_code,
			reason, upstream_failed, rank < 1e9, team, started_at, finished_at, claimed_at), ' ' ORDER BY name)
		FROM railyard.tasks WHERE pipeline_id = $id")
	[[ $got == "down,blocked,1,0,f,t,qa up,ready,0,0,f,t,qa" ]] ||
		fail "run state given in the JSON was stored: $got"
}

run_scenario "submit_pipeline stores what plain INSERTs and the check at COMMIT store" \
	one_call_stores_what_plain_inserts_store
run_scenario "submit_pipeline refuses what the check at COMMIT refuses, leaving nothing behind" \
	one_call_refuses_what_the_commit_check_refuses
run_scenario "after submit_pipeline, its transaction can add no task or edge" nothing_added_after_the_call
run_scenario "submit_pipeline ignores run state given in its JSON" run_state_in_the_json_is_ignored
