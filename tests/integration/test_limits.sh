#!/usr/bin/env bash
# Limits enforced by the kernel (issue 7, item 6): a task's cgroup gets
# memory.max (or the v1 memory limit) from mem_mb and cpu weight and quota
# from cpu; a task allocating past mem_mb in a short burst fails with
# reason oom (read from the cgroup's events, no sampling window); the agent
# stays healthy; the agent row and status say which mode is in force.
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes

cgroups_possible() {
	((EUID == 0)) && [[ -w /sys/fs/cgroup/unified || -w /sys/fs/cgroup/memory || -w /sys/fs/cgroup ]]
}

burst_past_mem_mb_is_oom_exactly() {
	cgroups_possible || skip "needs root and a writable cgroup hierarchy"
	local wd=$RY_WORKDIR/w-oom id reason
	start_worker oom --slots 2 --workdir "$wd"
	wait_agent 30 oom
	wait_for 30 sql_eq t "SELECT limits LIKE 'kernel:%' FROM railyard.agents WHERE name = 'oom'"
	# About 128 MB, doubled into place in well under a second, then exit 0:
	# only the kernel's own count can see it.
	id=$(ry_submit "(name) VALUES ('burst')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, mem_mb, max_attempts)
		VALUES (:id, 'burst', 'awk ''BEGIN { s = \"x\"; while (length(s) < 134217728) s = s s; exit 0 }''', 32, 1),
		       (:id, 'after', 'true', 64, 1);")
	wait_pipeline 60 "$id" >/dev/null
	reason=$(task_get "$id" burst reason)
	[[ $reason == "oom: killed at its memory limit of 32 MB"* ]] || fail "the burst ended '$(task_get "$id" burst state)' with reason '$reason'"
	[[ $(task_get "$id" after state) == succeeded ]] || fail "the task beside it did not succeed"
	# The agent is healthy and takes more work.
	[[ $(sql "SELECT state || ' ' || coalesce(degraded, 'healthy') FROM railyard.agents WHERE name = 'oom'") == "online healthy" ]] ||
		fail "the agent after an oom: $(sql "SELECT state, degraded FROM railyard.agents WHERE name = 'oom'")"
	id=$(ry_submit "(name) VALUES ('next')" "INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'n', 'true');")
	wait_pipeline 30 "$id" succeeded >/dev/null
}

# cpu_files: what the task's own cgroup says about its cpu (v1 shares and
# quota, or v2 weight and max), found from /proc/self/cgroup.
CPU_PROBE='p=$(awk -F: '"'"'$2 == "cpu" || $2 ~ /(^|,)cpu(,|$)/ { print $3 }'"'"' /proc/self/cgroup | head -n 1)
if [ -n "$p" ] && [ -r /sys/fs/cgroup/cpu$p/cpu.shares ]; then
  echo "v1 $(cat /sys/fs/cgroup/cpu$p/cpu.shares) $(cat /sys/fs/cgroup/cpu$p/cpu.cfs_quota_us)"
else
  p=$(awk -F: '"'"'$1 == "0" { print $3 }'"'"' /proc/self/cgroup)
  for m in /sys/fs/cgroup /sys/fs/cgroup/unified; do
    if [ -r "$m$p/cpu.max" ]; then echo "v2 $(cat "$m$p/cpu.weight") $(cat "$m$p/cpu.max")"; exit 0; fi
  done
  echo none
fi'

cpu_weight_and_quota_come_from_cpu() {
	cgroups_possible || skip "needs root and a writable cgroup hierarchy"
	local wd=$RY_WORKDIR/w-cpu id out
	ry_newdb cpu
	start_worker cpu --slots 2 --cpus 4 --workdir "$wd"
	wait_agent 30 cpu
	id=$(ry_submit "(name) VALUES ('cpu')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, cpu)
		VALUES (:id, 'probe', \$probe\$$CPU_PROBE\$probe\$, 2);")
	wait_pipeline 60 "$id" succeeded >/dev/null
	out=$(tail -n 1 "$(sql "SELECT log_path FROM railyard.task_attempts WHERE pipeline_id = $id")")
	case $out in
	"v1 2048 200000" | "v2 200 200000 100000") ;;
	none) [[ $(sql "SELECT limits FROM railyard.agents WHERE name = 'cpu'") == *"cpu not limited"* ]] ||
		fail "no cpu controller for the task, yet the agent row claims cpu limits" ;;
	*) fail "a 2-cpu task's cgroup says '$out', expected v1 shares 2048 quota 200000 or v2 weight 200 max 200000 100000" ;;
	esac
	"$RY" status >"$RY_WORKDIR/status.out" 2>&1
	grep -Eq "^  cpu .*(cgroup2|cgroup1\+2|cgroup1), kernel" "$RY_WORKDIR/status.out" ||
		fail "railyard status does not say the limits are the kernel's: $(grep cpu "$RY_WORKDIR/status.out")"
}

sampling_is_the_fallback_and_says_so() {
	ry_newdb sampled
	start_worker sampled --cgroup off --workdir "$RY_WORKDIR/w-sampled"
	wait_agent 30 sampled
	wait_for 30 sql_eq t "SELECT limits LIKE 'sampled:%' AND isolation = 'pgroup' FROM railyard.agents WHERE name = 'sampled'"
	"$RY" status >"$RY_WORKDIR/status.out" 2>&1
	grep -q "pgroup, sampled" "$RY_WORKDIR/status.out" || fail "status does not say limits are sampled: $(cat "$RY_WORKDIR/status.out")"
}

run_scenario "a task allocating past mem_mb in a short burst fails with oom; the agent stays healthy" burst_past_mem_mb_is_oom_exactly
run_scenario "a task's cgroup gets cpu weight and quota from its cpu" cpu_weight_and_quota_come_from_cpu
run_scenario "without a writable cgroup, limits are sampled and the agent row and status say so" sampling_is_the_fallback_and_says_so
