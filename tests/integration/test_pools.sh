#!/usr/bin/env bash
# Farm-wide resource pools (issue 7, item 2): a task naming a pool takes
# one unit of it while it runs; the cap holds across workers because
# claim_tasks counts under the pool's row lock; a pool that does not exist
# is refused at COMMIT.
. "$(dirname "$0")/lib.sh"

pool_cap_holds_across_three_workers() {
	local wd=$RY_WORKDIR/w-pool id i
	sql "INSERT INTO railyard.pools (name, capacity) VALUES ('licence', 2)"
	for i in 1 2 3; do
		start_worker "pool$i" --slots 4 --workdir "$wd"
	done
	for i in 1 2 3; do
		wait_agent 30 "pool$i"
	done
	id=$(ry_submit "(name) VALUES ('pooled')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, pool)
		SELECT :id, 'lic-' || g, 'sleep 0.2', 'licence' FROM generate_series(1, 30) g;
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		SELECT :id, 'free-' || g, 'sleep 0.2' FROM generate_series(1, 6) g;")
	wait_pipeline 120 "$id" succeeded >/dev/null
	local n agents
	n=$(max_overlap "$id AND task_id IN (SELECT id FROM railyard.tasks WHERE pool = 'licence')")
	[[ $n == 2 ]] || fail "pool licence (capacity 2): at most $n overlapped, expected exactly 2"
	agents=$(sql "SELECT count(DISTINCT agent_id) FROM railyard.task_attempts WHERE pipeline_id = $id")
	((agents >= 2)) || fail "only $agents worker ran the pipeline: the cap was not tested across workers"
	# Tasks without a pool were not held back by it.
	n=$(max_overlap "$id")
	((n > 2)) || fail "with the pool full, other tasks did not run beside it (max overlap $n)"
}

unknown_pool_is_refused_at_commit() {
	local out
	out=$(sql_expect_error "BEGIN;
		INSERT INTO railyard.pipelines (name) VALUES ('nopool') RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command, pool) VALUES (:id, 'a', 'true', 'ghost');
		SELECT 'inserted';
		COMMIT;" 'pool "ghost" does not exist') || return 1
	[[ $out == *'task "a"'* ]] || fail "the refusal does not name the task: $out"
	[[ $(sql "SELECT count(*) FROM railyard.pipelines WHERE name = 'nopool'") == 0 ]] ||
		fail "the refused pipeline was stored"
}

full_pool_is_why_a_task_waits() {
	local id aid why
	sql "INSERT INTO railyard.pools (name, capacity) VALUES ('single', 1)"
	aid=$(sql "INSERT INTO railyard.agents (name, hostname, os, arch, cores, mem_mb, slots, lease_until)
	           VALUES ('waits-agent', 'h', 'linux', 'x86_64', 4, 4096, 4, now() + interval '1 hour') RETURNING id")
	id=$(ry_submit "(name) VALUES ('waits')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, pool)
		VALUES (:id, 'one', 'true', 'single'), (:id, 'two', 'true', 'single');")
	# A claim of both leases only one: the pool has room for one.
	[[ $(sql "SELECT count(*) FROM railyard.claim_tasks($aid, ARRAY(SELECT id FROM railyard.tasks WHERE pipeline_id = $id))") == 1 ]] ||
		fail "claim_tasks leased more than the pool's capacity"
	why=$(sql "SELECT why FROM railyard.task_waits WHERE pipeline_id = $id AND state = 'ready'")
	[[ $why == "pool single full (1/1, held by tasks "*")"* ]] || fail "task_waits: '$why'"
	# Lowering a pool's capacity below what runs admits nothing more.
	sql "UPDATE railyard.pools SET capacity = 0 WHERE name = 'single'"
	[[ $(sql "SELECT count(*) FROM railyard.claim_tasks($aid, ARRAY(SELECT id FROM railyard.tasks WHERE pipeline_id = $id AND state = 'ready'))") == 0 ]] ||
		fail "a task was leased from a pool of capacity 0"
}

run_scenario "3 workers, 30 tasks in a pool of capacity 2: exactly 2 overlap at most" pool_cap_holds_across_three_workers
run_scenario "a task naming a pool that does not exist is refused at COMMIT" unknown_pool_is_refused_at_commit
run_scenario "claim_tasks leases no more than a pool's room; task_waits names the full pool" full_pool_is_why_a_task_waits
