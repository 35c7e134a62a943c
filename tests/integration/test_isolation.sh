#!/usr/bin/env bash
# Isolation and containment of tasks (issue 6, deliverables 2 and 3).
#
# Tasks cannot reach railyard: as root, a task runs under a uid of its own
# (a gid per pipeline); it cannot read the worker's environment or another
# pipeline's workspaces, processes or secrets; no database credential is in
# its environment or the worker's; logs are the worker's alone.
#
# Ending a task — because it finished, timed out, went over its memory or
# its worker died — ends every process it started, daemons in sessions of
# their own included; the agent row says how tasks are contained; each
# attempt records what it used.  Every containment scenario runs with
# cgroups (when this host allows them: root and a writable hierarchy) and
# with the process-group fallback (--cgroup off).
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes

FAST=(--heartbeat 1 --lease 3 --drain-timeout 1)


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

needs_root() {
	((EUID == 0)) || skip "needs root (tasks run under other uids only when the worker is root)"
}

# The worker's environment carries a database URL with a password and
# PGPASSWORD; a hostile task looks for them everywhere it can.
credentials_out_of_reach() {
	needs_root
	ry_newdb creds
	local wd=$RY_WORKDIR/w-creds id pw=pw-probe-4711
	local probe='cat /proc/$PPID/environ; echo "environ rc=$?"; cat /proc/$PPID/cmdline >/dev/null; '
	probe+='ls /proc/$PPID/fd; echo "fd rc=$?"; env; id -u; ls -ld "$RAILYARD_WORKSPACE" "$RAILYARD_PIPELINE_DIR"'
	RAILYARD_DB="$RAILYARD_DB password=$pw" PGPASSWORD=$pw RY_WORKER_PROBE=worker-only-secret \
		start_worker creds --workdir "$wd"
	local wpid=$RY_WORKER_PID
	id=$(ry_submit "(name) VALUES ('creds')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'probe', '${probe//\'/\'\'}');")
	wait_pipeline 60 "$id"
	local log
	log=$(sql "SELECT log_path FROM railyard.task_attempts WHERE pipeline_id = $id")
	cat "$log"
	! grep -q "worker-only-secret" "$log" || fail "the task read the worker's environment"
	! grep -q "$pw" "$log" || fail "the task saw the database password"
	grep -q "environ rc=1" "$log" || fail "reading /proc/<worker>/environ did not fail"
	grep -q "fd rc=[12]" "$log" || fail "listing the worker's descriptors did not fail"
	! grep -qE '^(RAILYARD_DB|PGPASSWORD|PGHOST|PGUSER|PGDATABASE)=' "$log" ||
		fail "a database setting reached the task's environment"
	local uid
	uid=$(grep -E '^[0-9]+$' "$log" | head -n 1)
	[[ -n $uid && $uid != 0 && $uid != "$(id -u railyard-task 2>/dev/null || echo x)" ]] ||
		[[ $(sql "SELECT task_identity FROM railyard.agents WHERE name = 'creds'") == user* ]] ||
		fail "the task ran as uid '$uid'"
	# The worker itself keeps no credential in its environment.
	! tr '\0' '\n' <"/proc/$wpid/environ" | grep -q "$pw" ||
		fail "the worker's own /proc environ still holds the password"
	! tr '\0' '\n' <"/proc/$wpid/environ" | grep -q '^RAILYARD_DB=.' ||
		fail "the worker's own /proc environ still holds RAILYARD_DB"
	[[ $(sql "SELECT task_identity FROM railyard.agents WHERE name = 'creds'") != "" ]] ||
		fail "the agent row does not say who tasks run as"
}

# Pipeline A keeps a secret in its workspace, its shared directory and its
# environment; a task of pipeline B tries every way to it.
pipelines_are_walled_off() {
	needs_root
	ry_newdb walls
	local wd=$RY_WORKDIR/w-walls drop=$RY_WORKDIR/drop a b
	mkdir -p "$drop"
	chmod 1777 "$drop"
	local holder='echo top-secret > "$RAILYARD_WORKSPACE/secret"; echo top-secret > "$RAILYARD_PIPELINE_DIR/secret"; '
	holder+="echo \"\$\$ \$RAILYARD_WORKSPACE \$RAILYARD_PIPELINE_DIR\" > $drop/a.tmp; chmod 644 $drop/a.tmp; mv $drop/a.tmp $drop/a; sleep 30"
	local thief="read pid ws shared < $drop/a; "
	thief+='for f in "$ws/secret" "$shared/secret" "/proc/$pid/environ"; do cat "$f" && echo "READ $f"; done; '
	thief+='ls "$ws" && echo "LISTED ws"; ls "${shared%/*}" && echo "LISTED pipeline"; '
	thief+='kill -0 "$pid" && echo "SIGNALLED $pid"; echo stolen >> "$shared/secret" && echo "WROTE shared"; true'
	start_worker walls --slots 4 --workdir "$wd"
	a=$(ry_submit "(name) VALUES ('a')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, env)
		VALUES (:id, 'holder', '${holder//\'/\'\'}', '{\"A_SECRET\": \"env-secret-a\"}');")
	wait_for 30 test -s "$drop/a"
	b=$(ry_submit "(name) VALUES ('b')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'thief', '${thief//\'/\'\'}');")
	wait_pipeline 60 "$b" succeeded
	local log
	log=$(sql "SELECT log_path FROM railyard.task_attempts WHERE pipeline_id = $b")
	cat "$log"
	# The probes ran against a's real paths and pid (not a vacuous pass).
	grep -q "cat: .*/pipelines/$a/.*secret: Permission denied" "$log" ||
		fail "the thief never tried a's files"
	grep -q "kill: .*Operation not permitted\|kill: .*No such process" "$log" ||
		fail "the thief never tried to signal a's task"
	! grep -qE '^(READ|LISTED|SIGNALLED|WROTE)' "$log" || fail "pipeline b reached into pipeline a: $(grep -E '^(READ|LISTED|SIGNALLED|WROTE)' "$log")"
	! grep -q "top-secret\|env-secret-a" "$log" || fail "pipeline b read pipeline a's secrets"
	sql "SELECT railyard.cancel_pipeline($a)" >/dev/null
	# What the worker keeps is its own: logs 0600 in 0700 directories.
	local st
	st=$(stat -c '%a %U' "$log" "${log%/*}" "$wd/logs")
	[[ $st == $'600 root\n700 root\n700 root' ]] || fail "logs are not the worker's alone: $st"
	st=$(stat -c '%a' "$wd/pipelines/$a" "$wd/pipelines/$b")
	[[ $st == $'2770\n2770' ]] || fail "pipeline directories are not 2770: $st"
	[[ $(stat -c '%g' "$wd/pipelines/$a") != "$(stat -c '%g' "$wd/pipelines/$b")" ]] ||
		fail "two pipelines share a group"
}

# Tasks of one pipeline share its directory (artifacts pass from a build
# to its test), whatever uids they run under.
pipeline_shares_its_directory() {
	needs_root
	ry_newdb share
	local id
	start_worker share --slots 2 --workdir "$RY_WORKDIR/w-share"
	id=$(ry_submit "(name) VALUES ('share')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		VALUES (:id, 'build', 'mkdir -p \"\$RAILYARD_PIPELINE_DIR/out\" && echo artifact > \"\$RAILYARD_PIPELINE_DIR/out/a\" && id -u > \"\$RAILYARD_PIPELINE_DIR/uid.build\"'),
		       (:id, 'test', 'grep -q artifact \"\$RAILYARD_PIPELINE_DIR/out/a\" && echo checked >> \"\$RAILYARD_PIPELINE_DIR/out/a\" && id -u > \"\$RAILYARD_PIPELINE_DIR/uid.test\"');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'build', 'test');")
	wait_pipeline 60 "$id" succeeded
}

# Secrets: env values read by the worker from files under its secrets_dir;
# the task gets the value, its log and stored tail only ever show ***, the
# database holds names and file names only, a missing or escaping file
# fails the task naming the secret.
secrets_are_given_and_masked() {
	ry_newdb secrets
	local dir=$RY_WORKDIR/secrets conf=$RY_WORKDIR/secrets.conf id value=s3cr3t-Value-42
	mkdir -p "$dir/deploy"
	printf '%s\n' "$value" >"$dir/deploy/token"
	printf 'other-pw-7\n' >"$dir/db.pw"
	ln -sf /etc/hostname "$dir/escape"
	chmod -R go-rwx "$dir"
	printf 'secrets_dir = %s\n' "$dir" >"$conf"
	start_worker secrets --config "$conf" --workdir "$RY_WORKDIR/w-secrets"
	local cmd='echo "token=$API_TOKEN pw=$DB_PW"; [ "$API_TOKEN" = "s3cr3t-Value-42" ] && echo TOKEN-OK; '
	cmd+='echo "split: s3cr3t-"; echo "Value-42 alone"; cat '"$dir"'/deploy/token; echo done'
	id=$(ry_submit "(name) VALUES ('secrets')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, secrets)
		VALUES (:id, 'use', '${cmd//\'/\'\'}', '{\"API_TOKEN\": \"deploy/token\", \"DB_PW\": \"db.pw\"}'),
		       (:id, 'missing', 'echo never', '{\"GONE\": \"no/such\"}'),
		       (:id, 'escaping', 'echo never', '{\"HOST\": \"escape\"}');")
	wait_pipeline 60 "$id" failed
	local log tail
	log=$(sql "SELECT log_path FROM railyard.task_attempts a JOIN railyard.tasks t ON t.id = a.task_id
	            WHERE t.pipeline_id = $id AND t.name = 'use'")
	cat "$log"
	[[ $(task_get "$id" use state) == succeeded ]] || fail "the task with secrets did not succeed: $(task_get "$id" use 'state, reason')"
	grep -qx 'token=\*\*\* pw=\*\*\*' "$log" || fail "the secrets are not masked in the log"
	grep -qx 'TOKEN-OK' "$log" || fail "the task did not get the secret's value"
	! grep -q "$value\|other-pw-7" "$log" || fail "a secret value is in the log file"
	tail=$(sql "SELECT log_tail FROM railyard.task_attempts a JOIN railyard.tasks t ON t.id = a.task_id
	             WHERE t.pipeline_id = $id AND t.name = 'use'")
	[[ $tail == *"token=*** pw=***"* && $tail != *"$value"* ]] || fail "the stored tail is not masked: $tail"
	if ((EUID == 0)); then
		grep -q "deploy/token: Permission denied" "$log" || fail "the task could read the secret file itself"
	fi
	[[ -z $(sql "SELECT 1 FROM railyard.task_attempts WHERE log_tail LIKE '%$value%' OR reason LIKE '%$value%'
	             UNION ALL SELECT 1 FROM railyard.tasks WHERE secrets::text LIKE '%$value%'
	             UNION ALL SELECT 1 FROM railyard.audit_log WHERE detail::text LIKE '%$value%'") ]] ||
		fail "a secret value reached the database"
	[[ $(task_get "$id" missing "state || ': ' || reason") == "failed: secret GONE: cannot read $dir/no/such: No such file or directory" ]] ||
		fail "a missing secret file is not named: $(task_get "$id" missing 'state, reason')"
	[[ $(task_get "$id" escaping "state || ': ' || reason") == "failed: secret HOST: cannot read $dir/escape: "* ]] ||
		fail "a symlink out of secrets_dir was followed: $(task_get "$id" escaping 'state, reason')"
	# Bad names and paths never get in.
	sql_expect_error "BEGIN; INSERT INTO railyard.pipelines (name) VALUES ('bad') RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command, secrets)
		VALUES (:id, 'x', 'true', '{\"T\": \"../../etc/shadow\"}'); COMMIT;" task_secrets_valid >/dev/null
	sql_expect_error "BEGIN; INSERT INTO railyard.pipelines (name) VALUES ('bad') RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command, secrets)
		VALUES (:id, 'x', 'true', '{\"T\": \"/etc/shadow\"}'); COMMIT;" task_secrets_valid >/dev/null
	sql_expect_error "BEGIN; INSERT INTO railyard.pipelines (name) VALUES ('bad') RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command, secrets, env)
		VALUES (:id, 'x', 'true', '{\"T\": \"t\"}', '{\"T\": \"also\"}'); COMMIT;" task_secrets_valid >/dev/null
}

run_scenario "secrets from files reach the task's env and show as *** in its log and tail; bad ones are named" \
	secrets_are_given_and_masked
run_scenario "a task cannot read the worker's environment, descriptors or any database credential" \
	credentials_out_of_reach
run_scenario "a task of one pipeline cannot read, list, signal or write another pipeline's files and processes" \
	pipelines_are_walled_off
run_scenario "tasks of one pipeline share its directory, whatever uid each runs as" \
	pipeline_shares_its_directory

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
