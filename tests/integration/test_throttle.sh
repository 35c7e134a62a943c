#!/usr/bin/env bash
# The adaptive concurrency limit (issue 7, item 5), with pressure injected
# as files in the worker's pressure_dir: the limit falls within two
# intervals of high pressure and never by killing what runs, recovers once
# pressure ends, holds under steady moderate pressure, and is in the agent
# row, in railyard status and (once per change of direction) in the audit
# log.
. "$(dirname "$0")/lib.sh"

PD=$RY_WORKDIR/pressure
mkdir -p "$PD"

# psi CPU MEMORY IO: writes the three PSI files (some avg10), each replaced
# whole so the worker never reads half a file.
psi() {
	local f v
	for f in cpu memory io; do
		case $f in cpu) v=$1 ;; memory) v=$2 ;; io) v=$3 ;; esac
		printf 'some avg10=%s avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n' \
			"$v" >"$PD/$f.tmp"
		mv -f "$PD/$f.tmp" "$PD/$f"
	done
}

# meminfo AVAILABLE_PCT: MemTotal 1000000 kB with that share available.
meminfo() {
	printf 'MemTotal:        1000000 kB\nMemFree:          100 kB\nMemAvailable:   %d kB\n' \
		$(($1 * 10000)) >"$PD/meminfo.tmp"
	mv -f "$PD/meminfo.tmp" "$PD/meminfo"
}

limit() { sql "SELECT concurrency_limit FROM railyard.agents WHERE name = '$1'"; }
finished() { sql "SELECT count(*) FROM railyard.task_attempts"; }
# finished_after N: at least N attempts have finished (the test's clock:
# progress, not sleeping).
finished_after() { (($(finished) >= $1)); }

limit_follows_injected_pressure() {
	local wd=$RY_WORKDIR/w-throttle conf=$RY_WORKDIR/throttle.conf id t0 t1 ms n lim
	psi 1.0 0.0 0.0
	meminfo 90
	cat >"$conf" <<-EOC
		throttle = on
		pressure_dir = $PD
		meminfo_path = $PD/meminfo
		throttle_interval_ms = 400
		min_slots = 2
		throttle_start_slots = 2
	EOC
	start_worker aimd --slots 8 --config "$conf" --throttle on --workdir "$wd"
	wait_agent 30 aimd
	# Slow start: it begins at throttle_start_slots (by default the host's
	# cores) and doubles only while in use.
	wait_for 30 sql_eq 2 "SELECT concurrency_limit FROM railyard.agents WHERE name = 'aimd'"
	id=$(ry_submit "(name) VALUES ('load')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		SELECT :id, 't-' || g, 'sleep 0.4' FROM generate_series(1, 400) g;")
	wait_for 30 sql_eq 8 "SELECT concurrency_limit FROM railyard.agents WHERE name = 'aimd'"
	grep -q "concurrency limit 2 -> 4 of 8: no pressure" "$RY_WORKDIR/worker-aimd.log" &&
		grep -q "concurrency limit 4 -> 8 of 8: no pressure" "$RY_WORKDIR/worker-aimd.log" ||
		fail "slow start did not double 2 -> 4 -> 8: $(grep 'concurrency limit' "$RY_WORKDIR/worker-aimd.log")"
	wait_for 30 sql_eq 8 "SELECT count(*) FROM railyard.tasks WHERE state = 'running'"

	# High cpu pressure: 8 -> 4 -> 2 (min_slots), halving once per
	# interval: two steps, each logged (how long it takes is the
	# benchmark's business, not a test's on a loaded machine).
	psi 95.0 0.0 0.0
	wait_for 30 sql_eq 2 "SELECT concurrency_limit FROM railyard.agents WHERE name = 'aimd'"
	grep -q "concurrency limit 8 -> 4 of 8: cpu some avg10 95.0 > 70" "$RY_WORKDIR/worker-aimd.log" ||
		fail "the worker did not log the first decrease: $(grep 'concurrency limit' "$RY_WORKDIR/worker-aimd.log")"
	grep -q "concurrency limit 4 -> 2 of 8: cpu some avg10 95.0 > 70" "$RY_WORKDIR/worker-aimd.log" ||
		fail "the worker did not halve again to min_slots: $(grep 'concurrency limit' "$RY_WORKDIR/worker-aimd.log")"
	# It admits less; nothing running was stopped to get there.
	wait_for 30 sql_eq t "SELECT count(*) <= 2 FROM railyard.tasks WHERE state = 'running'"
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE outcome <> 'succeeded'") == 0 ]] ||
		fail "tasks were stopped to lower the limit: $(sql "SELECT outcome, reason FROM railyard.task_attempts WHERE outcome <> 'succeeded'")"
	# The status and the waiting tasks say so.
	"$RY" status >"$RY_WORKDIR/status.out" 2>&1
	grep -q "throttled: limit 2 of 8 (cpu some avg10 95.0 > 70)" "$RY_WORKDIR/status.out" ||
		fail "railyard status does not show the limit: $(cat "$RY_WORKDIR/status.out")"
	grep -Eq "aimd .* 8 +2 .* ago  (cgroup[12+]*|pgroup), (kernel|sampled)" "$RY_WORKDIR/status.out" ||
		fail "railyard status does not show slots, limit, isolation and limits: $(cat "$RY_WORKDIR/status.out")"
	# (While a slot is between two tasks the reason is "an agent has room":
	# wait for both held.)
	wait_for 30 sql_eq "worker throttled by pressure: aimd limit 2 of 8" \
		"SELECT why FROM railyard.task_waits WHERE pipeline_id = $id LIMIT 1"

	# Pressure ends: back to 8, one slot per interval while in use.
	psi 2.0 0.0 0.0
	wait_for 30 sql_eq 8 "SELECT concurrency_limit FROM railyard.agents WHERE name = 'aimd'"
	wait_for 30 sql_eq 8 "SELECT count(*) FROM railyard.tasks WHERE state = 'running'"

	# Steady moderate pressure: the limit holds while 30 tasks finish
	# (about 1.5 s: several intervals).
	psi 50.0 0.0 0.0
	n=$(finished)
	wait_for 60 finished_after $((n + 30))
	lim=$(limit aimd)
	[[ $lim == 8 ]] || fail "under steady moderate pressure the limit moved to $lim"

	# Memory: MemAvailable at 5 % is high pressure even with PSI quiet.
	psi 2.0 0.0 0.0
	meminfo 5
	wait_for 30 sql_eq 2 "SELECT concurrency_limit FROM railyard.agents WHERE name = 'aimd'"
	meminfo 90

	# One audit row per change of direction: down (slots to min_slots for
	# slow start), up, down, up, down; not one per step.
	[[ $(sql "SELECT string_agg(detail->>'direction', ',' ORDER BY id) FROM railyard.audit_log
	           WHERE object = 'agent' AND event = 'limit'") == down,up,down,up,down ]] ||
		fail "limit audit rows: $(sql "SELECT id, old_state, new_state, detail FROM railyard.audit_log WHERE event = 'limit'")"
	sql "SELECT railyard.cancel_pipeline($id)" >/dev/null
}

malformed_pressure_file_is_named_and_ignored() {
	ry_newdb bad
	local wd=$RY_WORKDIR/w-bad bad=$RY_WORKDIR/bad-pressure
	mkdir -p "$bad"
	printf 'some avg10=oops\n' >"$bad/cpu"
	printf 'some avg10=1.0 avg60=0 avg300=0 total=0\n' >"$bad/memory"
	printf 'some avg10=1.0 avg60=0 avg300=0 total=0\n' >"$bad/io"
	printf 'throttle_start_slots = 1\n' >"$RY_WORKDIR/badpsi.conf"
	start_worker badpsi --slots 4 --config "$RY_WORKDIR/badpsi.conf" --throttle on --pressure-dir "$bad" --workdir "$wd"
	wait_agent 30 badpsi
	wait_for 30 grep -q "cannot read host pressure: $bad/cpu:1: expected \"some avg10=PERCENT" "$RY_WORKDIR/worker-badpsi.log"
	# Slow start has nothing to learn from: the limit goes to slots and
	# stays there; the worker keeps working.
	wait_for 30 sql_eq 4 "SELECT concurrency_limit FROM railyard.agents WHERE name = 'badpsi'"
	grep -q "concurrency limit 1 -> 4 of 4: pressure unreadable: slots, judging nothing" "$RY_WORKDIR/worker-badpsi.log" ||
		fail "the worker did not say why it went to slots: $(grep 'concurrency limit' "$RY_WORKDIR/worker-badpsi.log")"
	local id
	id=$(ry_submit "(name) VALUES ('still')" "INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true');")
	wait_pipeline 30 "$id" succeeded >/dev/null
	[[ $(limit badpsi) == 4 ]] || fail "an unreadable pressure file changed the limit to $(limit badpsi)"
}

run_scenario "injected pressure: the limit falls, recovers, holds under moderate load, audited per turn" limit_follows_injected_pressure
run_scenario "a malformed pressure file is named in the log; the worker runs at slots" malformed_pressure_file_is_named_and_ignored
