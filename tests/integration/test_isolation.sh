#!/usr/bin/env bash
# Containment of tasks (issue 6, deliverables 2 and 3): ending a task —
# because it finished, timed out, went over its memory or its worker died —
# ends every process it started, daemons in sessions of their own included;
# the agent row says how tasks are contained; each attempt records what it
# used.  Every scenario runs with cgroups (when this host allows them: root
# and a writable hierarchy) and with the process-group fallback
# (--cgroup off).
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes

FAST=(--heartbeat 1 --lease 3 --drain-timeout 1)

# procs_in WORKDIR [ATTEMPT]: live processes of tasks whose workspace is
# under WORKDIR (of that attempt only, when given).
procs_in() {
	local f pid
	for f in $(grep -lz "^RAILYARD_WORKSPACE=$1/" /proc/[0-9]*/environ 2>/dev/null); do
		[[ -z ${2:-} ]] || grep -qzx "RAILYARD_ATTEMPT=$2" "$f" 2>/dev/null || continue
		pid=${f#/proc/}
		pid=${pid%/environ}
		ry_alive "$pid" && echo "$pid"
	done
	return 0
}

cgroups_possible() {
	((EUID == 0)) && [[ -w /sys/fs/cgroup/unified || -w /sys/fs/cgroup/memory || -w /sys/fs/cgroup ]]
}

# mode_flags MODE: the worker flags for "cgroup" or "pgroup".
mode_flags() {
	if [[ $1 == cgroup ]]; then
		cgroups_possible || skip "needs root and a writable cgroup hierarchy"
		echo "--cgroup auto"
	else
		echo "--cgroup off"
	fi
}

# pid_from FILE: waits for FILE to hold a pid and prints it.
pid_from() {
	wait_for 30 test -s "$1"
	local p
	p=$(cat "$1")
	[[ $p =~ ^[0-9]+$ ]] || fail "$1 holds '$p', not a pid"
	echo "$p"
}

# A command that starts a daemon in a session of its own (it keeps the
# task's output pipe open, as careless daemons do), records its pid, then
# does $1.
daemon_then() {
	printf '%s' "setsid sleep 1000 & echo \$! > \$RAILYARD_PIPELINE_DIR/daemon.pid; $1"
}

isolation_is_recorded() {
	local mode=$1 flags want
	flags=$(mode_flags "$mode")
	ry_newdb "iso_$mode"
	# shellcheck disable=SC2086
	start_worker "iso-$mode" $flags --workdir "$RY_WORKDIR/w-iso-$mode"
	wait_agent 30 "iso-$mode"
	local got
	got=$(sql "SELECT isolation FROM railyard.agents WHERE name = 'iso-$mode'")
	if [[ $mode == cgroup ]]; then
		[[ $got == cgroup2 || $got == cgroup1+2 || $got == cgroup1 ]] ||
			fail "agents.isolation is '$got' with cgroups on a host that allows them"
	else
		[[ $got == pgroup ]] || fail "agents.isolation is '$got' with --cgroup off, not pgroup"
	fi
	grep -q "tasks run in" "$RY_WORKDIR/worker-iso-$mode.log" ||
		fail "the worker does not log how it contains tasks"
}

# finish|timeout|oom: the task ends that way; its daemon must be gone by the
# time the task's result is in the database.
daemon_dies_with_task() {
	local mode=$1 how=$2 flags cmd id want_state reason_like
	flags=$(mode_flags "$mode")
	ry_newdb "daemon_${mode}_$how"
	local wd=$RY_WORKDIR/w-daemon-$mode-$how
	case $how in
	finish) cmd=$(daemon_then "echo done") want_state=succeeded reason_like='%' ;;
	timeout) cmd=$(daemon_then "sleep 1000") want_state=failed reason_like='timeout%' ;;
	oom) cmd=$(daemon_then "awk 'BEGIN { s = \"x\"; while (length(s) < 200000000) s = s s; system(\"sleep 60\") }'")
		want_state=failed reason_like='oom%' ;;
	esac
	# shellcheck disable=SC2086
	start_worker "daemon-$mode-$how" $flags "${FAST[@]}" --workdir "$wd"
	id=$(ry_submit "(name) VALUES ('daemon')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, timeout_s, mem_mb)
		VALUES (:id, 'd', '${cmd//\'/\'\'}', 3, 40);")
	local daemon
	daemon=$(pid_from "$wd/pipelines/$id/shared/daemon.pid")
	wait_pipeline 60 "$id" "$want_state"
	# At the moment the result is stored, the daemon must already be dead.
	ry_dead "$daemon" || fail "the daemon $daemon the task started with setsid outlived the task ($how)"
	[[ $(sql "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND coalesce(reason, '') LIKE '$reason_like'") == 1 ]] ||
		fail "expected the task $want_state with reason like '$reason_like', got: $(task_get "$id" d 'state, reason')"
	[[ -z $(procs_in "$wd") ]] || fail "processes of the task still run: $(procs_in "$wd")"
}

# kill -9 of the worker; the same agent restarted kills the leftovers of its
# previous incarnation before it registers.
restart_kills_leftovers() {
	local mode=$1 flags id tid
	flags=$(mode_flags "$mode")
	ry_newdb "restart_$mode"
	local wd=$RY_WORKDIR/w-restart-$mode name=restart-$mode
	local cmd
	cmd=$(daemon_then "sleep 1000")
	# shellcheck disable=SC2086
	start_worker "$name" $flags "${FAST[@]}" --workdir "$wd"
	id=$(ry_submit "(name) VALUES ('leftovers')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'l', '${cmd//\'/\'\'}');")
	tid=$(task_get "$id" l id)
	local daemon
	daemon=$(pid_from "$wd/pipelines/$id/shared/daemon.pid")
	wait_for 30 sql_eq running "SELECT state FROM railyard.tasks WHERE id = $tid"
	stop_worker "$name" KILL
	# The worker's death takes its task's main process (PR_SET_PDEATHSIG);
	# the daemon and the task's other children live on until the restart.
	ry_alive "$daemon" || fail "the daemon died with the worker already (nothing left to test)"
	# shellcheck disable=SC2086
	start_worker "$name" $flags "${FAST[@]}" --workdir "$wd"
	local pid=$RY_WORKER_PID
	wait_for 30 sql_eq online "SELECT state FROM railyard.agents WHERE name = '$name' AND pid = $pid"
	# Registered: by now nothing of the old task may run.
	ry_dead "$daemon" || fail "the restarted worker registered while the daemon $daemon still ran"
	[[ -z $(procs_in "$wd" 1) ]] || fail "processes of the old attempt still run after the restart: $(procs_in "$wd" 1)"
	grep -q "left behind" "$RY_WORKDIR/worker-$name.log" ||
		fail "the restarted worker did not say it killed leftovers"
	# The attempt the dead worker held is lost, not failed; the task runs again.
	wait_for 30 sql_eq "1 lost" "SELECT attempt || ' ' || outcome FROM railyard.task_attempts WHERE task_id = $tid AND attempt = 1"
}

usage_is_recorded() {
	local mode=$1 flags id
	flags=$(mode_flags "$mode")
	ry_newdb "usage_$mode"
	# shellcheck disable=SC2086
	start_worker "usage-$mode" $flags --workdir "$RY_WORKDIR/w-usage-$mode"
	local burn='i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done'
	local mem="awk 'BEGIN { s = \"x\"; while (length(s) < 40000000) s = s s; print length(s) }'"
	local io='dd if=/dev/zero of=big bs=1M count=8 oflag=direct 2>/dev/null || dd if=/dev/zero of=big bs=1M count=8 conv=fsync 2>/dev/null'
	id=$(ry_submit "(name) VALUES ('usage')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, mem_mb)
		VALUES (:id, 'burn', '${burn//\'/\'\'}', 256), (:id, 'mem', '${mem//\'/\'\'}', 512),
		       (:id, 'io', '${io//\'/\'\'}', 256);")
	wait_pipeline 90 "$id" succeeded
	local row
	row=$(sql "SELECT t.name || ' cpu=' || coalesce(round(a.cpu_s::numeric, 2)::text, 'NULL') ||
	                  ' peak=' || coalesce((a.mem_peak_bytes >> 20)::text, 'NULL') ||
	                  ' write=' || coalesce((a.io_write_bytes >> 20)::text, 'NULL') ||
	                  ' dur=' || coalesce(round(a.duration_s::numeric, 2)::text, 'NULL')
	             FROM railyard.task_attempts a JOIN railyard.tasks t ON t.id = a.task_id
	            WHERE a.pipeline_id = $id ORDER BY t.name")
	echo "$row"
	[[ $(sql "SELECT a.cpu_s > 0.2 FROM railyard.task_attempts a JOIN railyard.tasks t ON t.id = a.task_id
	           WHERE a.pipeline_id = $id AND t.name = 'burn'") == t ]] ||
		fail "the cpu-bound attempt did not record its cpu seconds: $row"
	[[ $(sql "SELECT a.mem_peak_bytes > 40000000 FROM railyard.task_attempts a JOIN railyard.tasks t ON t.id = a.task_id
	           WHERE a.pipeline_id = $id AND t.name = 'mem'") == t ]] ||
		fail "the attempt holding a 64 MB string did not record a peak above 40 MB: $row"
	[[ $(sql "SELECT a.io_write_bytes >= 8 * 1024 * 1024 FROM railyard.task_attempts a JOIN railyard.tasks t ON t.id = a.task_id
	           WHERE a.pipeline_id = $id AND t.name = 'io'") == t ]] ||
		fail "the attempt writing 8 MB to disk did not record it: $row"
	[[ $(sql "SELECT bool_and(duration_s > 0) FROM railyard.task_attempts WHERE pipeline_id = $id") == t ]] ||
		fail "attempts without a duration: $row"
}

for mode in cgroup pgroup; do
	run_scenario "$mode: the agent row says how tasks are contained" isolation_is_recorded $mode
	run_scenario "$mode: a setsid daemon is gone when its task finishes" daemon_dies_with_task $mode finish
	run_scenario "$mode: a setsid daemon is gone when its task times out" daemon_dies_with_task $mode timeout
	run_scenario "$mode: a setsid daemon is gone when its task goes over its memory" daemon_dies_with_task $mode oom
	run_scenario "$mode: a restarted worker kills what its killed predecessor left, before registering" \
		restart_kills_leftovers $mode
	run_scenario "$mode: each attempt records cpu seconds, peak memory, bytes written and duration" \
		usage_is_recorded $mode
done
