#!/usr/bin/env bash
# Chaos (issue 6, deliverable 12): faults a farm meets, injected while real
# pipelines run, and the promises that must hold through them —
#   - 10 kill -9s of 3 workers during a 200-task pipeline (each restarted):
#     every task succeeds exactly once, and by the tasks' own marker files
#     no two runs of a task overlapped in time;
#   - PostgreSQL's disk full for 30 s during 60 tasks: 60 successes, 0
#     failures;
#   - the whole PostgreSQL server frozen (SIGSTOP) for longer than a lease,
#     then thawed: no failure, no run overlapping another;
#   - the workspace disk full: the task says so, the agent is degraded, then
#     recovers.
# The database faults use a cluster of this script's own, whose data
# directory lives on a small tmpfs (its WAL elsewhere), so the shared test
# cluster is never touched.  Needs root (mounts, the server's user).
. "$(dirname "$0")/lib.sh"
# shellcheck source=scripts/pg-common.sh
. "$RY_ROOT/scripts/pg-common.sh"

at_exit kill_task_processes

FAST=(--heartbeat 1 --lease 3 --drain-timeout 1)

needs_root() {
	((EUID == 0)) || skip "needs root (mounts a filesystem, runs a server as another user)"
}

# ---- marker files: when each run of each task was alive -------------------

# A task that ticks (boot clock, /proc/uptime) into the pipeline's shared
# directory from a child process: a child outlives the task's shell unless
# someone kills it, so a run that was not stopped keeps ticking.
tick_cmd() {
	local n=$1
	printf '%s' "sh -c 'i=0; while [ \$i -lt $n ]; do read up _ < /proc/uptime; echo \"tick \$RAILYARD_TASK_NAME \$RAILYARD_ATTEMPT \$up\" >> \"\$RAILYARD_PIPELINE_DIR/ticks\"; i=\$((i+1)); sleep 0.2; done; read up _ < /proc/uptime; echo \"done \$RAILYARD_TASK_NAME \$RAILYARD_ATTEMPT \$up\" >> \"\$RAILYARD_PIPELINE_DIR/ticks\"'"
}

# runs_never_overlap FILE TASKS: from the ticks, no two runs of a task were
# alive at once (each run's last tick came before another's first), and
# every task finished a run.  A run may finish and still run again: a worker
# killed between the end of a process and writing its result cannot know —
# those are counted and printed, not failed (the database still records
# one success, and the runs follow each other).
runs_never_overlap() {
	awk -v want="$2" '
		{ k = $2 " " $3; t = $4 + 0
		  if (!(k in lo) || t < lo[k]) lo[k] = t
		  if (!(k in hi) || t > hi[k]) hi[k] = t
		  if ($1 == "done") done[$2]++
		  runs[$2] = runs[$2] " " $3 }
		END {
			bad = 0
			for (task in runs) {
				n = split(runs[task], a, " ")
				delete seen; m = 0
				for (i = 1; i <= n; i++) if (!(a[i] in seen)) { seen[a[i]] = 1; att[++m] = a[i] }
				for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) {
					x = task " " att[i]; y = task " " att[j]
					if (lo[x] < hi[y] && lo[y] < hi[x]) {
						printf "task %s: attempt %s (%.2f-%.2f) overlaps attempt %s (%.2f-%.2f)\n",
							task, att[i], lo[x], hi[x], att[j], lo[y], hi[y]; bad++ }
				}
				if (!done[task]) { printf "task %s finished no run\n", task; bad++ }
				if (done[task] > 1) twice++
				ntasks++
			}
			if (ntasks != want) { printf "%d tasks left ticks, expected %d\n", ntasks, want; bad++ }
			printf "%d of %d tasks finished a run twice, one after the other\n", twice, ntasks > "/dev/stderr"
			exit bad > 0
		}' "$1"
}

# each_task_once ID N: N tasks, all succeeded, each with exactly one
# succeeded attempt and no failed one.
each_task_once() {
	local bad
	bad=$(sql "SELECT t.name || ': ' || t.state || ' ' || string_agg(h.attempt || '=' || h.outcome, ',' ORDER BY h.attempt)
	             FROM railyard.tasks t LEFT JOIN railyard.task_attempts h ON h.task_id = t.id
	            WHERE t.pipeline_id = $1 GROUP BY t.id
	           HAVING t.state <> 'succeeded' OR count(*) FILTER (WHERE h.outcome = 'succeeded') <> 1
	               OR count(*) FILTER (WHERE h.outcome NOT IN ('succeeded', 'lost')) > 0 LIMIT 10")
	[[ -z $bad ]] || fail "tasks not succeeded exactly once: $bad"
	[[ $(sql "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $1") == "$2" ]] ||
		fail "pipeline $1 does not have $2 tasks"
}

# ---- 10 kill -9s -------------------------------------------------------------

kill_nine_ten_times() {
	ry_newdb kill9
	local wd=$RY_WORKDIR/w-kill9 id cmd i k victim pid
	cmd=$(tick_cmd 5)
	for i in 1 2 3; do
		start_worker "chaos$i" --slots 6 "${FAST[@]}" --workdir "$wd"
	done
	id=$(ry_submit "(name) VALUES ('chaos-kill9')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, max_attempts)
		SELECT :id, 't' || g, '${cmd//\'/\'\'}', 10 FROM generate_series(1, 200) g;")
	done_at_least() {
		(($(sql "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND state = 'succeeded'") >= $1))
	}
	for k in $(seq 1 10); do
		wait_for 120 done_at_least $((k * 15))
		victim=chaos$((RANDOM % 3 + 1))
		pid=$(worker_pid "$victim")
		echo "kill -9 of $victim (pid $pid) after $((k * 15)) tasks"
		kill -KILL "$pid" 2>/dev/null || :
		wait_for 10 ry_dead "$pid"
		start_worker "$victim" --slots 6 "${FAST[@]}" --workdir "$wd"
	done
	wait_pipeline 180 "$id" succeeded
	each_task_once "$id" 200
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $id AND outcome = 'lost'") -gt 0 ]] ||
		fail "no attempt was lost: the kills did not hit running tasks"
	local why
	why=$(runs_never_overlap "$wd/pipelines/$id/shared/ticks" 200) || fail "runs overlapped: $why"
}

# ---- a cluster of our own on a small disk ----------------------------------

CHAOS_MNT="" CHAOS_DATA="" CHAOS_DB=""

# Starts it once (data directory on a 160 MB tmpfs, WAL on the normal disk);
# sets CHAOS_DB.  Stopped and unmounted at exit.
chaos_cluster() {
	pg_find_bindir initdb pg_ctl psql || fail "no PostgreSQL binaries"
	pg_server_user || fail "no user to run PostgreSQL as"
	local top=$RY_WORKDIR/pg
	CHAOS_MNT=$top/disk
	CHAOS_DATA=$CHAOS_MNT/data
	CHAOS_DB="host=$top/sock user=railyard dbname=chaos"
	# Scenarios run in subshells: an earlier one may have started it.
	[[ -S $top/sock/.s.PGSQL.5432 ]] && return 0
	mkdir -p "$CHAOS_MNT" "$top/wal" "$top/sock"
	mount -t tmpfs -o size=160m,mode=0755 "railyard-test-pgdisk-$$" "$CHAOS_MNT" ||
		fail "cannot mount a tmpfs for the database"
	at_exit umount -l "$CHAOS_MNT"
	mkdir -p "$CHAOS_DATA"
	chown railyard: "$CHAOS_DATA" "$top/wal" "$top/sock" 2>/dev/null || :
	chmod 700 "$CHAOS_DATA"
	(cd / && "${PG_AS[@]}" "$PG_BINDIR/initdb" -D "$CHAOS_DATA" --waldir "$top/wal" --nosync \
		-U railyard -A trust --encoding=UTF8 --locale=C) >"$top/initdb.log" 2>&1 ||
		fail "initdb failed: $(tail -n 5 "$top/initdb.log")"
	cat >>"$CHAOS_DATA/postgresql.conf" <<-EOF
		listen_addresses = ''
		unix_socket_directories = '$top/sock'
		max_connections = 50
		shared_buffers = 16MB
		fsync = off
		logging_collector = off
	EOF
	touch "$top/server.log"
	chown railyard: "$top/server.log" 2>/dev/null || :
	at_exit runuser -u railyard -- "$PG_BINDIR/pg_ctl" -D "$CHAOS_DATA" -m immediate -w stop
	(cd / && "${PG_AS[@]}" "$PG_BINDIR/pg_ctl" -D "$CHAOS_DATA" -l "$top/server.log" -w -t 60 start) \
		>"$top/pg_ctl.log" 2>&1 || fail "cannot start the chaos cluster: $(tail -n 5 "$top/server.log")"
	"$PG_BINDIR/psql" -X -q -d "host=$top/sock user=railyard dbname=postgres" -c "CREATE DATABASE chaos" ||
		fail "cannot create the chaos database"
	RAILYARD_DB=$CHAOS_DB "$RY" migrate >"$top/migrate.log" 2>&1 || fail "migrate failed: $(tail -n 5 "$top/migrate.log")"
}

# The processes of the chaos cluster: the postmaster and its children.
server_pids() {
	local pm f line rest ppid
	pm=$(head -n 1 "$CHAOS_DATA/postmaster.pid")
	echo "$pm"
	for f in /proc/[0-9]*/stat; do
		{ read -r line <"$f"; } 2>/dev/null || continue	# gone meanwhile
		rest=${line##*) }
		read -r _ ppid _ <<<"$rest"
		[[ $ppid == "$pm" ]] || continue
		f=${f#/proc/}
		echo "${f%/stat}"
	done
}

# ---- PostgreSQL's disk full for 30 s ------------------------------------------

database_disk_full() {
	needs_root
	chaos_cluster
	export RAILYARD_DB=$CHAOS_DB
	local wd=$RY_WORKDIR/w-dbfull id
	for i in 1 2; do
		start_worker "dbfull$i" --slots 5 "${FAST[@]}" --workdir "$wd"
	done
	# 4 KB of random output each: every result needs new pages (its log
	# tail goes to TOAST), as a busy farm's do.
	id=$(ry_submit "(name) VALUES ('dbfull')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, max_attempts)
		SELECT :id, 't' || g, 'sleep 2; head -c 3000 /dev/urandom | base64', 10
		  FROM generate_series(1, 60) g;")
	wait_for 60 sql_eq t "SELECT count(*) >= 5 FROM railyard.tasks WHERE pipeline_id = $id AND state = 'succeeded'"
	dd if=/dev/zero of="$CHAOS_MNT/filler" bs=64k 2>/dev/null || :
	# The fault is real: the database cannot grow a table now.
	sql_expect_error "CREATE TABLE public.probe AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 100000) g" \
		"No space left on device" >/dev/null
	echo "disk full at $(sql "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND state = 'succeeded'") of 60"
	ry_sleep 30	# the fault's duration
	rm -f "$CHAOS_MNT/filler"
	echo "space back at $(sql "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND state = 'succeeded'") of 60"
	wait_pipeline 180 "$id" succeeded
	each_task_once "$id" 60
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $id AND outcome = 'failed'") == 0 ]] ||
		fail "failures were recorded"
	grep -q "No space left on device" "$RY_WORKDIR"/worker-dbfull*.log ||
		fail "no worker ever met the full disk"
}

# ---- the whole server frozen longer than a lease ----------------------------

server_frozen() {
	needs_root
	chaos_cluster
	export RAILYARD_DB=$CHAOS_DB
	local wd=$RY_WORKDIR/w-frozen id cmd pids
	cmd=$(tick_cmd 40)	# 8 s: still running when the lease runs out
	for i in 1 2; do
		start_worker "frozen$i" --slots 5 "${FAST[@]}" --workdir "$wd"
	done
	id=$(ry_submit "(name) VALUES ('frozen')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, max_attempts)
		SELECT :id, 't' || g, '${cmd//\'/\'\'}', 10 FROM generate_series(1, 20) g;")
	wait_for 60 sql_eq 10 "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND state = 'running' AND started_at IS NOT NULL"
	pids=$(server_pids)
	# shellcheck disable=SC2086
	kill -STOP $pids
	ry_sleep 6	# the fault's duration: twice the 3 s lease
	# shellcheck disable=SC2086
	kill -CONT $pids
	wait_pipeline 180 "$id" succeeded
	each_task_once "$id" 20
	local why
	why=$(runs_never_overlap "$wd/pipelines/$id/shared/ticks" 20) || fail "runs overlapped: $why"
	grep -q "lease has run out" "$RY_WORKDIR"/worker-frozen*.log ||
		fail "no worker stopped its tasks when its lease ran out under the frozen server"
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $id AND outcome = 'lost'") -gt 0 ]] ||
		fail "no attempt was stopped by the frozen server"
}

# ---- the workspace disk full -------------------------------------------------

workspace_disk_full() {
	needs_root
	ry_newdb wsfull
	local mnt=$RY_WORKDIR/wsdisk conf=$RY_WORKDIR/wsfull.conf id id2
	mkdir -p "$mnt"
	mount -t tmpfs -o size=24m,mode=0755 "railyard-test-wsdisk-$$" "$mnt" || fail "cannot mount a tmpfs"
	at_exit umount -l "$mnt"
	printf 'min_free_mb = 2\n' >"$conf"
	start_worker wsfull "${FAST[@]}" --config "$conf" --workdir "$mnt/work"
	wait_agent 30 wsfull
	dd if=/dev/zero of="$mnt/filler" bs=64k 2>/dev/null || :
	id=$(ry_submit "(name) VALUES ('wsfull')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		VALUES (:id, 'write', 'dd if=/dev/zero of=big bs=1M count=5');")
	wait_pipeline 60 "$id" failed
	local reason
	reason=$(task_get "$id" write reason)
	echo "reason: $reason"
	[[ ${reason,,} == *"no space left on device"* ]] || fail "the reason does not name the full disk: $reason"
	wait_for 15 sql_eq t "SELECT degraded LIKE 'no space left on device%' FROM railyard.agents WHERE name = 'wsfull'"
	id2=$(ry_submit "(name) VALUES ('later')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'ok', 'echo ok');")
	local seen
	seen=$(sql "SELECT last_seen FROM railyard.agents WHERE name = 'wsfull'")
	wait_for 15 sql_eq t "SELECT last_seen > '$seen'::timestamptz + interval '1 second' FROM railyard.agents WHERE name = 'wsfull'"
	[[ $(task_get "$id2" ok state) == ready ]] || fail "the degraded agent took new work"
	rm -f "$mnt/filler"
	wait_for 15 sql_eq t "SELECT degraded IS NULL FROM railyard.agents WHERE name = 'wsfull'"
	wait_pipeline 30 "$id2" succeeded
}

run_scenario "10 kill -9s of 3 workers during 200 tasks: each task succeeds once, no runs overlap" \
	kill_nine_ten_times
run_scenario "PostgreSQL's disk full for 30 s during 60 tasks: 60 successes, 0 failures" database_disk_full
run_scenario "the whole PostgreSQL server frozen (SIGSTOP) past the lease, then thawed: no failure, no overlap" \
	server_frozen
run_scenario "the workspace disk fills: the task says so, the agent is degraded, then recovers" \
	workspace_disk_full
