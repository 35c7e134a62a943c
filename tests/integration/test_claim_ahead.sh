#!/usr/bin/env bash
# Claim ahead (claim_ahead, pkg/worker/lookahead.c): a worker whose slots
# are all busy also claims a few tasks beyond them, to start the moment a
# slot frees instead of a claim's round trips later; one that no slot
# frees for within claim_ahead_hold_ms goes back unstarted, its attempt
# given back.  Real worker, real database:
#   - 1 slot, claim_ahead 4: tasks are claimed while the one before them
#     runs, never two run at once, every task on its first attempt; with
#     claim_ahead 0 no task is claimed before the slot frees;
#   - 1 slot held by a long task: the task claimed ahead of it is handed
#     back unstarted after the hold, with that reason, and runs later on
#     its first attempt;
#   - with a build cache: cold tasks claimed ahead miss, wait for the slot
#     and run, each once;
#   - a pipeline cancelled while its task waits claimed ahead: it never runs.
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes

# sleepers N SECONDS: a pipeline of N independent tasks that sleep; its id.
sleepers() {
	ry_submit "(name) VALUES ('sleepers')" "
	INSERT INTO railyard.tasks (pipeline_id, name, command)
	SELECT :id, 's' || g, 'sleep $2' FROM generate_series(1, $1) g;"
}

# claimed_while_running ID: attempts of pipeline ID claimed before another
# attempt ended and started after it (with one slot: claimed ahead).
claimed_while_running() {
	sql "SELECT count(*) FROM railyard.task_attempts b
	    WHERE b.pipeline_id = $1 AND EXISTS (
	          SELECT 1 FROM railyard.task_attempts a
	           WHERE a.pipeline_id = b.pipeline_id AND a.task_id <> b.task_id
	             AND b.claimed_at < a.finished_at AND b.started_at >= a.finished_at)"
}

# one_slot_worker NAME [CONFIG_LINE...]: a database of its own and a worker
# NAME with one slot and those config lines, online, serving /metrics on a
# free port (metrics_url).
one_slot_worker() {
	local name=$1 wd=$RY_WORKDIR/w-$1
	shift
	ry_newdb "${name//-/_}"
	printf '%s\n' "$@" >"$wd.conf"
	start_worker "$name" --slots 1 --workdir "$wd" --config "$wd.conf" --http-listen 127.0.0.1:0
	wait_agent 30 "$name"
}

# ran_claimed_ahead ID N MIN: pipeline ID succeeded with its N tasks each on
# its first attempt, one at a time (one slot), and at least MIN of them
# were claimed while the one before them ran.
ran_claimed_ahead() {
	local n
	wait_pipeline 120 "$1" succeeded >/dev/null || return 1
	sql_eq "$2" "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $1
	               AND outcome = 'succeeded' AND attempt = 1" || return 1
	n=$(max_overlap "$1")
	[[ $n == 1 ]] || fail "one slot, yet $n tasks ran at once"
	n=$(claimed_while_running "$1")
	((n >= $3)) || fail "only $n of $(($2 - 1)) tasks were claimed while the one before them ran"
}

tasks_follow_without_a_claim_between() {
	local id n
	one_slot_worker ahead-on "claim_ahead = 4"
	id=$(sleepers 12 0.2)
	ran_claimed_ahead "$id" 12 6 || return 1
	stop_worker ahead-on

	# The control: without claim ahead the slot frees before each claim.
	one_slot_worker ahead-off "claim_ahead = 0"
	id=$(sleepers 6 0.2)
	wait_pipeline 120 "$id" succeeded >/dev/null || return 1
	n=$(claimed_while_running "$id")
	[[ $n == 0 ]] || fail "claim_ahead 0: $n tasks were claimed while another ran"
}

no_slot_in_time_hands_back() {
	local id
	one_slot_worker ahead-hold "claim_ahead = 2" "claim_ahead_hold_ms = 300"
	id=$(ry_submit "(name) VALUES ('held')" "
	INSERT INTO railyard.tasks (pipeline_id, name, command, priority)
	VALUES (:id, 'hold', 'while ! test -e $RY_WORKDIR/hold-go; do sleep 0.05; done', 10),
	       (:id, 'a1', 'true', 0), (:id, 'a2', 'true', 0), (:id, 'a3', 'true', 0);")
	wait_for 60 sql_eq running "SELECT state FROM railyard.tasks WHERE pipeline_id = $id AND name = 'hold'" ||
		return 1
	wait_for 60 sql_eq t "SELECT count(*) > 0 FROM railyard.audit_log WHERE pipeline_id = $id
	    AND detail->>'reason' LIKE 'claimed ahead (claim_ahead) and no slot freed within%'" || return 1
	# Nothing started beside the held slot; what went back is ready again.
	sql_eq 0 "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND name <> 'hold'
	            AND (started_at IS NOT NULL OR state NOT IN ('ready', 'running'))" || return 1
	# /metrics counts what was claimed ahead and what went back.
	local url text
	url=$(metrics_url ahead-hold) || fail "the worker did not say where it serves /metrics"
	text=$(curl -fsS "${url}metrics") || fail "no /metrics at $url"
	(($(metric "$text" 'railyard_claim_ahead_claimed_total{agent="ahead-hold"}') >= 1)) ||
		fail "railyard_claim_ahead_claimed_total does not count the task claimed ahead"
	(($(metric "$text" 'railyard_claim_ahead_handed_back_total{agent="ahead-hold"}') >= 1)) ||
		fail "railyard_claim_ahead_handed_back_total does not count the hand-back"
	touch "$RY_WORKDIR/hold-go"
	wait_pipeline 120 "$id" succeeded >/dev/null || return 1
	sql_eq 3 "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND name <> 'hold'
	            AND state = 'succeeded' AND attempt = 1"
}

# A pipeline cancelled while its task waits, claimed ahead: the task never
# starts, even once the slot frees.
cancelled_while_claimed_ahead() {
	local a b
	one_slot_worker ahead-cancel "claim_ahead = 2" "claim_ahead_hold_ms = 60000"
	a=$(ry_submit "(name) VALUES ('long')" "
	INSERT INTO railyard.tasks (pipeline_id, name, command)
	VALUES (:id, 'hold', 'while ! test -e $RY_WORKDIR/cancel-go; do sleep 0.05; done');")
	wait_for 60 sql_eq running "SELECT state FROM railyard.tasks WHERE pipeline_id = $a" || return 1
	b=$(ry_submit "(name) VALUES ('doomed')" "
	INSERT INTO railyard.tasks (pipeline_id, name, command)
	VALUES (:id, 'mark', 'touch $RY_WORKDIR/cancel-ran');")
	wait_for 60 sql_eq running "SELECT state FROM railyard.tasks WHERE pipeline_id = $b" || return 1
	sql_eq t "SELECT started_at IS NULL FROM railyard.tasks WHERE pipeline_id = $b" || return 1
	sql "SELECT railyard.cancel_pipeline($b)" >/dev/null
	wait_for 30 sql_eq cancelled "SELECT state FROM railyard.pipelines WHERE id = $b" || return 1
	# The cancel's NOTIFY makes the worker ask at once which tasks are no
	# longer its own; then the slot frees.
	wait_for 30 grep -q "task mark (id [0-9]* attempt 1) is no longer ours" \
		"$RY_WORKDIR/worker-ahead-cancel.log" || return 1
	touch "$RY_WORKDIR/cancel-go"
	wait_pipeline 60 "$a" succeeded >/dev/null || return 1
	[[ ! -e $RY_WORKDIR/cancel-ran ]] || fail "the cancelled task claimed ahead ran"
}

# A bad value stops the worker before it registers, naming the flag.
bad_value_is_named() {
	local out
	if out=$("$RY" worker --name ahead-bad --claim-ahead 129 --workdir "$RY_WORKDIR/w-bad" 2>&1); then
		fail "--claim-ahead 129 was accepted"
	fi
	[[ $out == *'option --claim-ahead: claim_ahead must be a whole number from 0 to 128, not "129"'* ]] ||
		fail "unclear refusal: $out"
	sql_eq 0 "SELECT count(*) FROM railyard.agents WHERE name = 'ahead-bad'"
}

# With a build cache a task claimed ahead is looked up first; a miss waits
# for the slot like any other (the preparation asks again at each pass).
cold_cache_misses_wait_for_the_slot() {
	local id
	one_slot_worker ahead-cache "cache_dir = $RY_WORKDIR/cache-ahead" "claim_ahead = 4"
	id=$(ry_submit "(name) VALUES ('cold')" "
	INSERT INTO railyard.tasks (pipeline_id, name, command, cacheable, outputs)
	SELECT :id, 'c' || g, 'sleep 0.1; mkdir -p o && echo ' || g || ' > o/f', true, '{o}'
	  FROM generate_series(1, 10) g;")
	ran_claimed_ahead "$id" 10 3
}

run_scenario "1 slot, claim_ahead 4: tasks claimed while the one before runs, one at a time, first attempts; not with claim_ahead 0" tasks_follow_without_a_claim_between
run_scenario "a task claimed ahead of a long one goes back unstarted after claim_ahead_hold_ms, then runs on its first attempt" no_slot_in_time_hands_back
run_scenario "with a build cache, cold tasks claimed ahead miss and wait for the slot; all run once" cold_cache_misses_wait_for_the_slot
run_scenario "a pipeline cancelled while its task waits claimed ahead: the task never runs" cancelled_while_claimed_ahead
run_scenario "a bad --claim-ahead stops the worker naming the flag; no agent registered" bad_value_is_named
