#!/usr/bin/env bash
# The throttle judges the worker's own memory cgroup (issue 7, item 5): a
# worker started inside a real v1 memory cgroup limited to 192 MB, on a
# host with gigabytes available, lowers its concurrency limit when tmpfs
# is filled from inside that cgroup (shmem stays charged to it and cannot
# be reclaimed), although the host's MemAvailable says "plenty", and
# recovers once the memory is freed.  Nothing running is stopped on the
# way, and nothing is OOM-killed.
. "$(dirname "$0")/lib.sh"

MEMCG_ROOT=/sys/fs/cgroup/memory
CG=$MEMCG_ROOT/ry-test-memcg-$$
SHM=/dev/shm/ry-test-memcg-$$		# the filled tmpfs file
GO=/dev/shm/ry-test-memcg-$$.go		# the holding tasks end once it exists
LIMIT_MB=192

# Kills whatever is left in the test's cgroup tree and removes it, deepest
# first (a v1 cgroup can be removed while memory is still charged to it).
remove_cgroup() {
	local d pid i
	rm -f "$SHM" "$GO"
	[[ -d $CG ]] || return 0
	while IFS= read -r d; do
		for ((i = 0; i < 100; i++)); do
			while read -r pid; do kill -KILL "$pid" 2>/dev/null || :; done <"$d/cgroup.procs"
			rmdir "$d" 2>/dev/null && break
			ry_sleep 0.1
		done
	done < <(find "$CG" -depth -type d)
	return 0
}
at_exit remove_cgroup

limit() { sql "SELECT concurrency_limit FROM railyard.agents WHERE name = 'memcg'"; }
usage_mb() { echo $(($(cat "$CG/memory.usage_in_bytes") / 1048576)); }

limit_follows_the_cgroup_not_the_host() {
	[[ -d $MEMCG_ROOT && -w $MEMCG_ROOT/cgroup.procs ]] ||
		skip "no writable v1 memory hierarchy at $MEMCG_ROOT (needs root on a cgroup v1 or hybrid host)"
	mkdir "$CG" || skip "cannot create a memory cgroup under $MEMCG_ROOT"
	echo $((LIMIT_MB * 1048576)) >"$CG/memory.limit_in_bytes"
	echo 0 >"$CG/memory.swappiness" 2>/dev/null || :	# shmem stays in memory
	local host_pct
	host_pct=$(awk '/^MemTotal:/ { t = $2 } /^MemAvailable:/ { a = $2 } END { printf "%d", 100 * a / t }' /proc/meminfo)
	((host_pct > 50)) || skip "the host itself has only $host_pct % of its memory available"

	# Calm PSI injected: the loaded test machine's own cpu and io pressure
	# must not move the limit; memory comes from the real /proc/meminfo and
	# the real cgroup.  Low/ok at 30/50 %: what the worker's binary and logs
	# leave as inactive file cache cannot lift the filled cgroup over them.
	local pd=$RY_WORKDIR/calm wd=$RY_WORKDIR/w-memcg conf=$RY_WORKDIR/memcg.conf f
	mkdir -p "$pd"
	for f in cpu memory io; do
		printf 'some avg10=0.00 avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n' >"$pd/$f"
	done
	cat >"$conf" <<-EOC
		throttle = on
		throttle_slow_start = off
		pressure_dir = $pd
		throttle_interval_ms = 300
		min_slots = 1
		mem_available_low_pct = 30
		mem_available_ok_pct = 50
	EOC
	# The worker joins the cgroup before it becomes railyard (same pid).
	cat >"$RY_WORKDIR/in-memcg" <<-EOS
		#!/bin/sh
		echo \$\$ >"$CG/cgroup.procs" || exit 1
		exec "$RY" "\$@"
	EOS
	chmod +x "$RY_WORKDIR/in-memcg"
	RY=$RY_WORKDIR/in-memcg start_worker memcg --slots 4 --config "$conf" --throttle on --workdir "$wd"
	wait_agent 30 memcg
	grep -qx "$(worker_pid memcg)" "$CG/cgroup.procs" || fail "the worker is not in $CG"
	wait_for 30 grep -q "throttle judges memory of cgroup $CG (limit $LIMIT_MB MB) and the host" \
		"$RY_WORKDIR/worker-memcg.log"
	wait_for 30 sql_eq 4 "SELECT concurrency_limit FROM railyard.agents WHERE name = 'memcg'"

	# Three tasks hold their slots until told to go: the limit stays in use.
	local hold n
	hold=$(ry_submit "(name) VALUES ('hold')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		SELECT :id, 'hold-' || g, 'while [ ! -e $GO ]; do sleep 0.1; done' FROM generate_series(1, 3) g;")
	wait_for 30 sql_eq 3 "SELECT count(*) FROM railyard.tasks WHERE state = 'running'"
	# Fill the worker's cgroup to 24 MB short of its limit (12 % available,
	# the host far above) with tmpfs written from inside it: shmem stays
	# charged to the cgroup after dd exits.  (Not from a task: a task's
	# 150 MB peak would rightly keep the memory headroom from raising the
	# limit again in a 192 MB cgroup.)
	n=$((LIMIT_MB - $(usage_mb) - 24))
	((n > 64)) || fail "the worker alone uses $(usage_mb) MB of the $LIMIT_MB MB cgroup"
	sh -c 'echo $$ >"$1/cgroup.procs" && exec dd if=/dev/zero of="$2" bs=1M count="$3" status=none' \
		sh "$CG" "$SHM" "$n"

	# 4 -> 2 -> 1, each step judged on the cgroup's figures.
	wait_for 60 sql_eq 1 "SELECT concurrency_limit FROM railyard.agents WHERE name = 'memcg'"
	local why pct
	why=$(sql "SELECT detail->>'pressure' FROM railyard.audit_log
	            WHERE object = 'agent' AND event = 'limit' ORDER BY id LIMIT 1")
	# The reason is memory below the low mark, a share only the cgroup has
	# (the host has $host_pct % available).
	[[ $why =~ memory\ cgroup\ available\ ([0-9]+)(\.[0-9]+)?%\ \<\ 30 ]] ||
		fail "the limit fell for another reason: \"$why\""
	pct=${BASH_REMATCH[1]}
	((pct < 30 && pct < host_pct)) || fail "the reason's figure is the host's, not the cgroup's: \"$why\""
	grep -qF "concurrency limit 4 -> 2 of 4: $why" "$RY_WORKDIR/worker-memcg.log" ||
		fail "the worker did not log the decrease: $(grep 'concurrency limit' "$RY_WORKDIR/worker-memcg.log")"
	# A lower limit stops nothing: every task still runs.
	[[ $(sql "SELECT count(*) FROM railyard.tasks WHERE state = 'running'") == 3 ]] ||
		fail "tasks were stopped: $(sql "SELECT name, state, reason FROM railyard.tasks WHERE state <> 'running'")"

	# The memory is freed: back to 4 while the holders keep the limit in use.
	rm -f "$SHM"
	wait_for 60 sql_eq 4 "SELECT concurrency_limit FROM railyard.agents WHERE name = 'memcg'"
	touch "$GO"
	wait_pipeline 60 "$hold" succeeded >/dev/null
	[[ $(sql "SELECT string_agg(detail->>'direction', ',' ORDER BY id) FROM railyard.audit_log
	           WHERE object = 'agent' AND event = 'limit'") == down,up ]] ||
		fail "limit audit rows: $(sql "SELECT id, old_state, new_state, detail FROM railyard.audit_log WHERE event = 'limit'")"
	local ooms
	ooms=$(awk '$1 == "oom_kill" { print $2 }' "$CG/memory.oom_control")
	[[ ${ooms:-0} == 0 ]] || fail "the kernel OOM-killed $ooms processes in $CG"
	stop_workers
	remove_cgroup
}

# A configured directory is read like the worker's own (tests inject the
# files there); a reload resolves memory_cgroup again.
memory_cgroup_follows_the_config_and_reloads() {
	local wd=$RY_WORKDIR/w-off conf=$RY_WORKDIR/off.conf pd=$RY_WORKDIR/calm2 fake=$RY_WORKDIR/fakecg f
	ry_newdb off
	mkdir -p "$pd" "$fake"
	for f in cpu memory io; do
		printf 'some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n' >"$pd/$f"
	done
	# v1 files: 512 MB limit, 500 MB used, 2 MB inactive file cache.
	echo $((500 * 1048576)) >"$fake/memory.usage_in_bytes"
	printf 'cache 0\nhierarchical_memory_limit %d\ntotal_inactive_file %d\n' \
		$((512 * 1048576)) $((2 * 1048576)) >"$fake/memory.stat"
	printf 'memory_cgroup = off\nthrottle_slow_start = off\npressure_dir = %s\nthrottle_interval_ms = 200\n' "$pd" >"$conf"
	start_worker memoff --slots 2 --throttle on --workdir "$wd" --config "$conf"
	wait_agent 30 memoff
	wait_for 30 grep -q "throttle judges host memory only: memory_cgroup = off" "$RY_WORKDIR/worker-memoff.log"
	local id
	id=$(ry_submit "(name) VALUES ('busy')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		SELECT :id, 'b-' || g, 'while [ ! -e $GO ]; do sleep 0.1; done' FROM generate_series(1, 2) g;")
	wait_for 30 sql_eq 2 "SELECT count(*) FROM railyard.tasks WHERE state = 'running'"
	wait_for 30 sql_eq 2 "SELECT concurrency_limit FROM railyard.agents WHERE name = 'memoff'"

	printf 'memory_cgroup = %s\nthrottle_slow_start = off\npressure_dir = %s\nthrottle_interval_ms = 200\n' "$fake" "$pd" >"$conf"
	kill -HUP "$(worker_pid memoff)"
	wait_for 30 grep -q "throttle judges memory of cgroup $fake (limit 512 MB) and the host" \
		"$RY_WORKDIR/worker-memoff.log"
	# (512 - 500 + 2) / 512 = 2.7 % available: high pressure.
	wait_for 30 sql_eq 1 "SELECT concurrency_limit FROM railyard.agents WHERE name = 'memoff'"
	grep -q "concurrency limit 2 -> 1 of 2: memory cgroup available 2.7% < 10%" "$RY_WORKDIR/worker-memoff.log" ||
		fail "the decrease was not judged on the cgroup's figures: $(grep 'concurrency limit' "$RY_WORKDIR/worker-memoff.log")"
	touch "$GO"
	wait_pipeline 60 "$id" succeeded >/dev/null
	rm -f "$GO"
}

run_scenario "a worker in a 192 MB memory cgroup: the limit falls when the cgroup fills (the host has plenty) and recovers" limit_follows_the_cgroup_not_the_host
run_scenario "memory_cgroup = off judges the host only; a reload to an injected cgroup directory judges its figures" memory_cgroup_follows_the_config_and_reloads
