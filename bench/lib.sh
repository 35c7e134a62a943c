# shellcheck shell=bash
#
# Helpers shared by the benchmarks; bench/run.sh sources this file, then
# every bench/bench_*.sh.  Nothing here measures anything by itself.
#
# Globals set by run.sh before use: ROOT (the repository), BUILD (the build
# directory), RY (its railyard binary), SPAWN and MEMHOG (its bench/spawn
# and bench/memhog), TMP (this run's temp dir), QUICK (1 or 0).

# ---- time and numbers ----------------------------------------------------

# Seconds since the epoch with microseconds ("1732686000.123456").
now() {
	printf '%s' "$EPOCHREALTIME"
}

# stamp VAR: sets VAR to the microseconds since the epoch, for bash
# arithmetic, without a subshell.  A $(now_us) forks one (about 0.5 ms of
# CPU here), which a loop timing or rating a short process would count as
# that process's cost.
stamp() {
	local stamp_us=${EPOCHREALTIME//[!0-9]/}	# a name no caller uses: printf -v would set this local
	printf -v "$1" '%d' "$((10#$stamp_us))"
}

# The same, printed: for $(now_us) where a subshell costs nothing that counts.
now_us() {
	local now
	stamp now
	echo "$now"
}

# nap SECONDS: sleeps without starting a process (read on a descriptor
# nobody writes to): polling loops must not load the machine they measure.
exec {NAP_FD}<> <(:)
nap() {
	read -r -t "$1" -u "$NAP_FD" || :
}

# calc EXPR: evaluates an awk expression, printed with %.6g unless FMT given.
calc() {
	awk -v fmt="${2:-%.6g}" "BEGIN { printf fmt, ($1) }"
}

# fmt N DECIMALS: a number rounded for a table; "" stays "".
fmt() {
	[[ -n $1 ]] || return 0
	awk -v x="$1" -v d="$2" 'BEGIN { printf "%.*f", d, x }'
}

# ratio A B [DECIMALS]: A / B, or "" when either is missing or B is zero.
ratio() {
	[[ -n $1 && -n $2 ]] || return 0
	awk -v a="$1" -v b="$2" -v d="${3:-3}" 'BEGIN { if (b + 0 != 0) printf "%.*f", d, a / b }'
}

# median X...: the median of the arguments (empty ones ignored).
median() {
	printf '%s\n' "$@" | awk 'NF' | sort -g |
		awk '{ v[NR] = $1 } END { if (NR) printf "%.6g", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# pct FILE P: the P-th percentile (0-100, nearest rank) of FILE's numbers.
pct() {
	sort -g "$1" | awk -v p="$2" '{ v[NR] = $1 } END {
		if (!NR) exit
		i = int(p / 100 * (NR - 1) + 0.5) + 1
		if (i > NR) i = NR
		printf "%.6g", v[i] }'
}

# jget FILE KEY: a number from a flat JSON object (worker --stats output).
jget() {
	grep -o "\"$2\": *[-0-9.e]*" "$1" 2>/dev/null | head -n 1 | sed 's/.*: *//'
}

# ---- progress --------------------------------------------------------------

say() {
	printf '  %s\n' "$*"
}

# ---- the cluster -------------------------------------------------------------

AS_PG=()	# prefix running a command as the cluster's user
PG_BINDIR=""
PGSOCK=""

# start_cluster: a throwaway cluster with PostgreSQL's durable defaults
# (fsync, synchronous_commit, full_page_writes on), a Unix socket in TMP
# only, run as the unprivileged user "railyard" when we are root.  Extra
# postgresql.conf lines come from $BENCH_PG_SETTINGS ("jit=off;work_mem=8MB").
# Prints what failed on error.
start_cluster() {
	if ! pg_find_bindir initdb pg_ctl psql pgbench; then
		echo "cannot find the PostgreSQL binaries with pgbench (pg_config --bindir, /usr/lib/postgresql/*/bin)"
		return 1
	fi
	pg_server_user || return 1
	AS_PG=("${PG_AS[@]}")
	PGSOCK=$TMP/sock
	mkdir -p "$TMP/pg" "$PGSOCK"
	chmod 700 "$TMP/pg"
	chmod 755 "$PGSOCK"
	touch "$TMP/postgresql.log"
	if ((EUID == 0)); then
		chown railyard: "$TMP/pg" "$PGSOCK" "$TMP/postgresql.log"
	fi
	# --nosync only spares initdb's own flush; the server then runs durable.
	if ! (cd "$TMP" && "${AS_PG[@]}" "$PG_BINDIR/initdb" -D "$TMP/pg" --nosync -U railyard \
		-A trust --encoding=UTF8 --locale=C) >"$TMP/initdb.log" 2>&1; then
		echo "initdb failed:"
		tail -n 20 "$TMP/initdb.log"
		return 1
	fi
	{
		printf '\n# bench/run.sh: PostgreSQL defaults (durable), private socket\n'
		printf "listen_addresses = ''\n"
		printf "unix_socket_directories = '%s'\n" "$PGSOCK"
		printf 'port = 5432\nmax_connections = 100\nlogging_collector = off\n'
		local kv
		IFS=';' read -r -a kvs <<<"${BENCH_PG_SETTINGS:-}"
		for kv in "${kvs[@]}"; do
			[[ -n ${kv// /} ]] && printf '%s\n' "$kv"
		done
	} >>"$TMP/pg/postgresql.conf"
	if ! (cd "$TMP" && "${AS_PG[@]}" "$PG_BINDIR/pg_ctl" -D "$TMP/pg" -l "$TMP/postgresql.log" \
		-w -t 60 start) >"$TMP/pg_ctl.log" 2>&1; then
		echo "cannot start the benchmark cluster:"
		tail -n 20 "$TMP/pg_ctl.log" "$TMP/postgresql.log"
		return 1
	fi
	if ! q postgres "CREATE DATABASE bench_template" >/dev/null; then
		echo "cannot create bench_template"
		return 1
	fi
	if ! (cd "$TMP" && RAILYARD_DB=$(conninfo bench_template) "$RY" migrate) >"$TMP/migrate.log" 2>&1; then
		echo "railyard migrate failed on the template database:"
		tail -n 20 "$TMP/migrate.log"
		return 1
	fi
}

stop_cluster() {
	[[ -n $PG_BINDIR && -f $TMP/pg/postmaster.pid ]] || return 0
	(cd / && "${AS_PG[@]}" "$PG_BINDIR/pg_ctl" -D "$TMP/pg" -m fast -w -t 30 stop) >/dev/null 2>&1 ||
		(cd / && "${AS_PG[@]}" "$PG_BINDIR/pg_ctl" -D "$TMP/pg" -m immediate -w stop) >/dev/null 2>&1
}

conninfo() {
	printf 'host=%s port=5432 user=railyard dbname=%s' "$PGSOCK" "$1"
}

# q DB SQL: runs SQL, prints unaligned tuples ("|" between columns).
q() {
	"$PG_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$(conninfo "$1")" -c "$2"
}

# poll DB SQL: sets POLL_ANSWER to the one-line answer, through one psql
# kept open per database for the polling loops (wait_for's conditions),
# or q's when it cannot; call it in the shell itself, not in a $(...).
# A psql and its server backend started at every poll cost this VM about
# 0.1 s of CPU (perf: a fifth of the machine at five polls a second, more
# than railyard's own backend), which the machine being measured would pay
# and the baselines (bench/spawn, the peers' own processes) never do.  The
# connection closes with the database (drop_db) or the shell.
poll() {
	local db=$1
	POLL_ANSWER=""
	if [[ ${POLL_DB:-} != "$db" || -z ${POLL_PSQL_PID:-} ]] || ! alive "$POLL_PSQL_PID"; then
		poll_close
		coproc POLL_PSQL { "$PG_BINDIR/psql" -X -A -t -q -d "$(conninfo "$db")" 2>&1; }
		POLL_DB=$db
	fi
	# One line per query: the statement on one line, its answer too.  (bash
	# unsets POLL_PSQL when the coprocess ends: a psql gone since the check
	# above, with the server, must not stop a set -u script.)
	local in=${POLL_PSQL[1]:-} out=${POLL_PSQL[0]:-}
	if [[ $in =~ ^[0-9]+$ && $out =~ ^[0-9]+$ ]] &&
		printf '%s;\n' "${2//$'\n'/ }" >&"$in" 2>/dev/null &&
		IFS= read -r -t 60 POLL_ANSWER <&"$out" && [[ $POLL_ANSWER != *ERROR* ]]; then
		return 0
	fi
	poll_close
	POLL_ANSWER=$(q "$db" "$2")
}

poll_close() {
	local fd=${POLL_PSQL[1]:-} pid=${POLL_PSQL_PID:-}
	POLL_DB=""
	[[ $fd =~ ^[0-9]+$ ]] && eval "exec $fd>&-"	# psql ends at the end of its input
	[[ -n $pid ]] && wait "$pid" 2>/dev/null
	return 0
}

# qfile DB FILE: runs a file of SQL quietly.
qfile() {
	"$PG_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$(conninfo "$1")" -f "$2"
}

# new_db NAME: a fresh copy of the migrated template.
new_db() {
	q postgres "DROP DATABASE IF EXISTS $1" >/dev/null 2>&1
	q postgres "CREATE DATABASE $1 TEMPLATE bench_template" >/dev/null
}

drop_db() {
	[[ ${POLL_DB:-} == "$1" ]] && poll_close
	q postgres "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1
}

# pg_settings_line: the settings every table is printed with.
pg_settings_line() {
	q postgres "SELECT 'PostgreSQL ' || current_setting('server_version') || ': ' ||
		string_agg(name || '=' || setting || coalesce(unit, ''), ' ' ORDER BY ord)
		FROM pg_settings JOIN unnest(ARRAY['fsync', 'synchronous_commit', 'full_page_writes',
			'wal_level', 'shared_buffers', 'max_connections', 'jit', 'work_mem'])
			WITH ORDINALITY AS k(name, ord) USING (name)" 2>/dev/null |
		sed 's/shared_buffers=16384 *8kB/shared_buffers=128MB/; s/work_mem=4096kB/work_mem=4MB/'
}

# ---- processes we start --------------------------------------------------

WORKER_PIDS=()	# every worker still possibly alive
BG_PIDS=()	# samplers, loops: killed on exit

# start_worker DB NAME ARGS...: a worker in the background, its log in
# TMP/logs/NAME.log, its --stats in TMP/stats/NAME.json; the pid is in
# LAST_PID.  The throttle is off unless ARGS say --throttle on (the
# placement benchmark's AIMD rows): other rows measure fixed parallelism.
# With START_CGROUP=DIR the worker joins that cgroup before it starts (its
# task cgroups then nest below it: see memcg_new).  With WORK_BASE=DIR its
# workdir is DIR/NAME instead of TMP/work/NAME (shm_work_dir: on tmpfs).
start_worker() {
	local db=$1 name=$2 join=() work=${WORK_BASE:-$TMP/work}/$2
	shift 2
	mkdir -p "$TMP/logs" "$TMP/stats" "$work"
	rm -f "$TMP/stats/$name.json"
	# shellcheck disable=SC2016  # $0 and $@ are the inner shell's
	[[ -n ${START_CGROUP:-} ]] && join=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$START_CGROUP")
	RAILYARD_DB=$(conninfo "$db") "${join[@]}" "$RY" worker --name "$name" --workdir "$work" \
		--stats "$TMP/stats/$name.json" --throttle off "$@" >"$TMP/logs/$name.log" 2>&1 </dev/null &
	LAST_PID=$!
	WORKER_PIDS+=("$LAST_PID")
}

alive() {
	kill -0 "$1" 2>/dev/null
}

# wait_exit TIMEOUT_S PID...: whether every PID exited in time.
wait_exit() {
	local deadline pid left
	deadline=$(($(now_us) + $1 * 1000000))
	shift
	while :; do
		left=0
		for pid in "$@"; do
			alive "$pid" && left=1
		done
		((left)) || break
		(($(now_us) > deadline)) && return 1
		nap 0.1
	done
	for pid in "$@"; do
		wait "$pid" 2>/dev/null
	done
	return 0
}

forget_worker() {
	local pid keep=()
	for pid in "${WORKER_PIDS[@]}"; do
		[[ $pid == "$1" ]] || keep+=("$pid")
	done
	WORKER_PIDS=("${keep[@]}")
}

# stop_workers PID...: SIGTERM (drain; --stats is written at exit), a
# second SIGTERM (kill tasks) after 15 s, SIGKILL after 5 more.
stop_workers() {
	local pid
	(($#)) || return 0
	for pid in "$@"; do
		kill -TERM "$pid" 2>/dev/null
	done
	if ! wait_exit 15 "$@"; then
		for pid in "$@"; do
			kill -TERM "$pid" 2>/dev/null
		done
		if ! wait_exit 5 "$@"; then
			for pid in "$@"; do
				kill -KILL "$pid" 2>/dev/null
			done
			wait_exit 5 "$@"
		fi
	fi
	for pid in "$@"; do
		forget_worker "$pid"
	done
}

# kill_leftovers: task processes (and make, spawn children) whose working
# directory is under TMP/work, after their parents are gone.  Only ours:
# nothing else has a cwd in this run's temp dir.
kill_leftovers() {
	local p c
	[[ -n ${TMP:-} && -d $TMP/work ]] || return 0
	for p in /proc/[0-9]*; do
		c=$(readlink "$p/cwd" 2>/dev/null) || continue
		[[ $c == "$TMP/work" || $c == "$TMP/work/"* ]] && kill -KILL "${p#/proc/}" 2>/dev/null
		[[ -n $SHM_WORK && ($c == "$SHM_WORK" || $c == "$SHM_WORK/"*) ]] && kill -KILL "${p#/proc/}" 2>/dev/null
	done
}

# shm_work_dir: sets SHM_WORK to a directory on tmpfs (/dev/shm) for
# workdirs, made once and removed on exit; status 1 when /dev/shm is not a
# tmpfs.  Rows that use it separate railyard's own cost from the disk file
# system's (a workspace and a log are two new inodes per task).
SHM_WORK=""
shm_work_dir() {
	[[ -n $SHM_WORK ]] && return 0
	[[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]] || return 1
	SHM_WORK=$(mktemp -d /dev/shm/railyard-bench.XXXXXX) || return 1
	chmod 755 "$SHM_WORK"
}

# ---- memory cgroups we make -------------------------------------------------

MEMCGS=()	# memory cgroups made by memcg_new: removed on exit
MEMCG="" MEMCG_V="" MEMCG_WHY=""	# memcg_new's results

# memcg_new NAME LIMIT_MB: a memory cgroup NAME below this shell's own
# (cgroup v2 when the unified hierarchy has the memory controller, else the
# v1 memory hierarchy), limited to LIMIT_MB, no swap (v2 memory.swap.max 0,
# v1 swappiness 0) where writable.  Sets MEMCG (its directory) and MEMCG_V
# (1 or 2); otherwise MEMCG_WHY says why not and the status is 1.
memcg_new() {
	local name=$1 bytes=$(($2 * 1048576)) mnt own dir
	MEMCG="" MEMCG_V="" MEMCG_WHY=""
	((EUID == 0)) || { MEMCG_WHY="not root: no writable memory cgroup"; return 1; }
	# mountinfo: the file system type is the field after " - ".
	mnt=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") break; if ($(i + 1) == "cgroup2") { print $5; exit } }' /proc/self/mountinfo)
	own=$(sed -n 's/^0:://p' /proc/self/cgroup)
	if [[ -n $mnt && -n $own ]] && grep -qw memory "$mnt${own%/}/cgroup.controllers" 2>/dev/null &&
		{ grep -qw memory "$mnt${own%/}/cgroup.subtree_control" ||
			echo +memory >"$mnt${own%/}/cgroup.subtree_control"; } 2>/dev/null; then
		dir=$mnt${own%/}/$name
		if mkdir "$dir" 2>/dev/null; then
			MEMCGS+=("$dir")
			if echo "$bytes" >"$dir/memory.max"; then
				[[ -e $dir/memory.swap.max ]] && { echo 0 >"$dir/memory.swap.max"; } 2>/dev/null
				MEMCG=$dir MEMCG_V=2
				return 0
			fi
			memcg_remove "$dir"
		fi
	fi
	mnt=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") break
		if ($(i + 1) == "cgroup" && $(i + 3) ~ /(^|,)memory(,|$)/) { print $5; exit } }' /proc/self/mountinfo)
	own=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3; exit }' /proc/self/cgroup)
	if [[ -z $mnt || -z $own ]]; then
		MEMCG_WHY="no memory controller: cgroup v2 without it delegated, no v1 memory hierarchy"
		return 1
	fi
	dir=$mnt${own%/}/$name
	if ! mkdir "$dir" 2>/dev/null; then
		MEMCG_WHY="cannot create $dir"
		return 1
	fi
	MEMCGS+=("$dir")
	{ echo 1 >"$dir/memory.use_hierarchy"; } 2>/dev/null	# the limit covers its children
	if ! { echo "$bytes" >"$dir/memory.limit_in_bytes"; } 2>/dev/null ||
		[[ $(cat "$dir/memory.use_hierarchy" 2>/dev/null) != 1 ]]; then
		# shellcheck disable=SC2034  # read by the benchmarks
		MEMCG_WHY="cannot limit $dir with its children (memory.limit_in_bytes, memory.use_hierarchy)"
		memcg_remove "$dir"
		return 1
	fi
	{ echo 0 >"$dir/memory.swappiness"; } 2>/dev/null
	# shellcheck disable=SC2034  # read by the benchmarks
	MEMCG=$dir MEMCG_V=1
}

# memcg_peak_mb DIR: the high-water mark of DIR's memory, MiB ("" when the
# kernel does not keep one: v2 before Linux 5.19).
memcg_peak_mb() {
	local f=$1/memory.peak
	[[ -e $f ]] || f=$1/memory.max_usage_in_bytes
	awk '{ printf "%.0f", $1 / 1048576 }' "$f" 2>/dev/null
}

# memcg_kernel_ooms DIR: the kernel's OOM kill count of DIR: v2 counts its
# whole tree (memory.events), v1 only processes directly in DIR
# (memory.oom_control), not those in child cgroups.
memcg_kernel_ooms() {
	if [[ -e $1/memory.events ]]; then
		awk '$1 == "oom_kill" { print $2 }' "$1/memory.events"
	else
		awk '$1 == "oom_kill" { print $2 }' "$1/memory.oom_control" 2>/dev/null
	fi
}

# cgroup_tree_remove DIR: kills every process in DIR and the cgroups below
# it (they are ours: made by memcg_new, or a worker's below one), then
# removes them, deepest first.  Status 1 when DIR is still there.
cgroup_tree_remove() {
	local dir=$1 f pid i left
	[[ $dir == /sys/fs/cgroup/* && -d $dir ]] || return 0
	for ((i = 0; i < 50; i++)); do
		left=0
		while IFS= read -r f; do
			while read -r pid; do
				kill -KILL "$pid" 2>/dev/null
				left=1
			done <"$f"
		done < <(find "$dir" -name cgroup.procs 2>/dev/null)
		((left)) || break
		nap 0.1
	done
	find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
	[[ ! -d $dir ]]
}

# memcg_remove DIR: cgroup_tree_remove, and DIR is no longer ours to clean.
memcg_remove() {
	local keep=() d
	cgroup_tree_remove "$1" || say "cannot remove the cgroup $1: processes still in it"
	for d in "${MEMCGS[@]}"; do
		[[ $d == "$1" ]] || keep+=("$d")
	done
	MEMCGS=("${keep[@]}")
}

# wait_for TIMEOUT_S CMD...: runs CMD every $WAIT_EVERY seconds (default
# 0.2) until it succeeds; gives up at the deadline, or at once when CMD
# returns 2 (waiting cannot help any more).
wait_for() {
	local deadline rc t
	stamp t
	deadline=$((t + $1 * 1000000))
	shift
	while :; do
		"$@"
		rc=$?
		((rc == 0)) && return 0
		((rc == 2)) && return 1
		stamp t
		((t > deadline)) && return 1
		nap "${WAIT_EVERY:-0.2}"
	done
}

# agents_online DB PIDS NAME...: whether every named agent is online;
# status 2 when one of the workers (PIDS: comma-separated) has exited.
agents_online() {
	local db=$1 pids=$2 pid names
	shift 2
	for pid in ${pids//,/ }; do
		alive "$pid" || return 2
	done
	names=$(printf '"%s",' "$@")
	[[ $(q "$db" "SELECT count(*) FROM railyard.agents
		WHERE name = ANY ('{${names%,}}') AND state = 'online'") -ge $# ]]
}

# ---- submission helpers --------------------------------------------------

# submit_flat DB PIPELINES PER_PIPELINE COMMAND MEM_MB [NAME]: independent
# tasks in one transaction.  Setup, not a measurement: it runs with jit off
# so the validation trigger's plans do not spend their time compiling.
submit_flat() {
	q "$1" "SET jit = off;
		BEGIN;
		WITH p AS (INSERT INTO railyard.pipelines (name, team)
			SELECT '${6:-bench}-' || g, 'bench' FROM generate_series(1, $2) g RETURNING id)
		INSERT INTO railyard.tasks (pipeline_id, name, kind, command, mem_mb, timeout_s)
		SELECT p.id, 'task-' || i, 'build', '$4', $5, 600
		  FROM p, generate_series(1, $3) i;
		COMMIT;" >/dev/null
}

# analyze_db DB: planner statistics for railyard's tables, as autovacuum
# keeps them on a live farm (bulk-submitted rows have none at first).
analyze_db() {
	q "$1" "ANALYZE railyard.tasks, railyard.pipelines, railyard.edges, railyard.agents" >/dev/null
}

# apply_statistics DB: applies the runs the workers left queued for the
# forecast statistics (they leave them for later while claims and
# completions are busy: docs/forecasting.md), untimed by the caller's
# measurement; sets STATS_APPLIED to how many (observe_pending's count)
# and STATS_RATE to runs applied per second ("" when none were, or on
# failure: STATS_APPLIED "" too).
apply_statistics() {
	local t0 t1
	STATS_APPLIED="" STATS_RATE=""
	stamp t0
	STATS_APPLIED=$(q "$1" "SELECT railyard.observe_pending()") || return 0
	stamp t1
	((STATS_APPLIED > 0 && t1 > t0)) &&
		STATS_RATE=$(calc "$STATS_APPLIED / (($t1 - $t0) / 1000000)" "%.1f")
	return 0
}

# count_state DB STATE: tasks in that state.
count_state() {
	q "$1" "SELECT count(*) FROM railyard.tasks WHERE state = '$2'"
}

# at_least_succeeded DB N [PID...]: whether N tasks succeeded; status 2
# when none of the given workers is alive any more (see wait_for).
at_least_succeeded() {
	local db=$1 n=$2 pid
	shift 2
	poll "$db" "SELECT count(*) FROM railyard.tasks WHERE state = 'succeeded'"
	[[ $POLL_ANSWER =~ ^[0-9]+$ ]] && ((POLL_ANSWER >= n)) && return 0
	(($#)) || return 1
	for pid in "$@"; do
		alive "$pid" && return 1
	done
	return 2
}

# pipeline_done DB ID PID: whether the pipeline finished; 2 when its
# worker has exited (see wait_for).
pipeline_done() {
	[[ $(q "$1" "SELECT state IN ('succeeded', 'failed', 'cancelled') FROM railyard.pipelines WHERE id = $2") == t ]] &&
		return 0
	alive "$3" || return 2
	return 1
}

# harness_cleanup: the EXIT trap of bench/run.sh and bench/profile_hotpath.sh:
# stops every process they started (samplers, workers, then the task
# processes they left), the cluster, and removes TMP unless KEEP_TMP=1.
# standalone_harness BUILD_DIR: for the scripts that run outside run.sh
# (bench/profile_*.sh): sets BUILD, and RY to a private copy of its
# railyard in a new TMP that goes on exit (harness_cleanup); status 2 with
# the reason on stderr when BUILD_DIR has no railyard.
standalone_harness() {
	BUILD=$(cd "$1" 2>/dev/null && pwd) || {
		echo "error: build directory $1 does not exist (run make first)" >&2
		return 2
	}
	RY=$BUILD/railyard
	[[ -x $RY ]] || {
		echo "error: $RY is missing: run make" >&2
		return 2
	}
	TMP=$(mktemp -d /tmp/railyard-profile.XXXXXX) || return 2
	chmod 755 "$TMP"	# the cluster's user must reach its directories
	mkdir -p "$TMP/work" "$TMP/bin" "$TMP/logs"
	cp "$RY" "$TMP/bin/railyard" || return 2
	RY=$TMP/bin/railyard
	trap harness_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

harness_cleanup() {
	local pid
	trap - EXIT INT TERM
	for pid in "${BG_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	if ((${#WORKER_PIDS[@]})); then
		for pid in "${WORKER_PIDS[@]}"; do
			kill -TERM "$pid" 2>/dev/null
			kill -TERM "$pid" 2>/dev/null	# the second one kills their tasks
		done
		wait_exit 5 "${WORKER_PIDS[@]}" || for pid in "${WORKER_PIDS[@]}"; do
			kill -KILL "$pid" 2>/dev/null
		done
	fi
	kill_leftovers
	for pid in "${MEMCGS[@]}"; do
		cgroup_tree_remove "$pid" || echo "cannot remove the cgroup $pid" >&2
	done
	stop_cluster
	if [[ ${KEEP_TMP:-} == 1 ]]; then
		echo "kept $TMP${SHM_WORK:+ and $SHM_WORK}" >&2
	else
		rm -rf "$TMP" ${SHM_WORK:+"$SHM_WORK"}
	fi
}

# ---- results -----------------------------------------------------------------

# One line per table row in TMP/rows.tsv:
# bench, metric, unit, railyard, baseline, ratio, goal, verdict, note.
# Empty fields print as "—" and go to JSON as null.

# row BENCH METRIC UNIT RAILYARD BASELINE RATIO GOAL VERDICT [NOTE]
row() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "${9:-}" \
		>>"$TMP/rows.tsv"
}

# invalid BENCH METRIC WHY: a figure that could not be measured honestly.
invalid() {
	row "$1" "$2" "" "" "" "" "" INVALID "$3"
	say "INVALID: $2: $3"
}

# verdict VALUE OP GOAL: "met" or "missed" (OP is <=, <, >=, >).
verdict() {
	[[ -n $1 ]] || return 0
	awk -v v="$1" -v g="$3" -v op="$2" 'BEGIN {
		ok = (op == "<=") ? v <= g : (op == "<") ? v < g : (op == ">=") ? v >= g : v > g
		print ok ? "met" : "missed" }'
}

# meta BENCH KEY VALUE: what a benchmark ran with (printed, and in JSON).
meta() {
	printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$TMP/meta.tsv"
}

MACHINE=""
machine_line() {
	local cores mem model kernel
	cores=$(nproc)
	mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	kernel=$(uname -r)
	# Task starts pay an RCU grace period per cgroup move without it
	# (docs/operations.md): it changes every real-process figure.
	local fdm=off
	awk '$0 ~ / - cgroup2? / && $NF ~ /(^|,)favordynmods(,|$)/ { found = 1 } END { exit !found }' \
		/proc/self/mountinfo && fdm=on
	printf '%s cores (%s), %s RAM, Linux %s, cgroup favordynmods %s' "$cores" "${model:-unknown cpu}" \
		"$mem" "$kernel" "$fdm"
}

loadavg() {
	cut -d' ' -f1-3 /proc/loadavg
}

# print_table BENCH TITLE: the markdown table of one benchmark.
print_table() {
	local bench=$1 title=$2
	printf '\n### %s\n\n' "$title"
	printf -- '- machine: %s; load average at start %s\n' "$MACHINE" "$(awk -F'\t' -v b="$bench" \
		'$1 == b && $2 == "load_at_start" { print $3 }' "$TMP/meta.tsv")"
	printf -- '- postgres: %s\n' "$PG_LINE"
	awk -F'\t' -v b="$bench" '$1 == b && $2 == "params" { print "- ran with: " $3 }' "$TMP/meta.tsv"
	printf '\n| metric | railyard | baseline | ratio | goal |\n| --- | --- | --- | --- | --- |\n'
	awk -F'\t' -v b="$bench" '
		function cell(s) { return s == "" ? "—" : s }
		$1 == b {
			m = $2; if ($3 != "") m = m " (" $3 ")"
			if ($8 == "INVALID") {
				printf "| %s | INVALID | — | — | — |\n", m
				notes[++n] = "INVALID " $2 ": " $9
				next
			}
			g = $7; if (g != "" && $8 != "") g = g " — " $8
			printf "| %s | %s | %s | %s | %s |\n", m, cell($4), cell($5), cell($6), cell(g)
			if ($9 != "") notes[++n] = $2 ": " $9
		}
		END { if (n) print ""; for (i = 1; i <= n; i++) print "- " notes[i] }' "$TMP/rows.tsv"
}

# write_json FILE: every row and what it ran on.
write_json() {
	local file=$1 ts
	ts=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	awk -F'\t' -v ts="$ts" -v quick="$QUICK" -v machine="$MACHINE" -v pg="$PG_LINE" \
		-v cores="$(nproc)" -v memkb="$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)" \
		-v order="$BENCH_ORDER" '
		function js(s) {
			gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, "\\t", s); gsub(/\n/, "\\n", s)
			return "\"" s "\""
		}
		function num(s) { return (s ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) ? s + 0 : "null" }
		function str(s) { return s == "" ? "null" : js(s) }
		FILENAME ~ /meta.tsv$/ { mk[$1, ++nm[$1]] = $2; mv[$1, nm[$1]] = $3; next }
		{ r[$1, ++nr[$1]] = $0 }
		END {
			printf "{\n  \"timestamp\": %s,\n  \"quick\": %s,\n", js(ts), quick ? "true" : "false"
			printf "  \"machine\": {\"cores\": %d, \"mem_mb\": %d, \"description\": %s},\n",
				cores, memkb / 1024, js(machine)
			printf "  \"postgres\": %s,\n  \"benchmarks\": [", js(pg)
			nb = split(order, names, " ")
			sep = ""
			for (b = 1; b <= nb; b++) {
				name = names[b]
				if (!nr[name] && !nm[name]) continue
				printf "%s\n    {\"name\": %s", sep, js(name)
				sep = ","
				for (i = 1; i <= nm[name]; i++)
					printf ", %s: %s", js(mk[name, i]), (num(mv[name, i]) == "null" ? js(mv[name, i]) : num(mv[name, i]))
				printf ",\n     \"rows\": ["
				rs = ""
				for (i = 1; i <= nr[name]; i++) {
					split(r[name, i], f, "\t")
					printf "%s\n       {\"metric\": %s, \"unit\": %s, \"railyard\": %s, \"baseline\": %s, \"ratio\": %s, \"goal\": %s, \"verdict\": %s, \"note\": %s}",
						rs, js(f[2]), str(f[3]), num(f[4]), num(f[5]), num(f[6]), str(f[7]), str(f[8]), str(f[9])
					rs = ","
				}
				printf "]}"
			}
			printf "\n  ]\n}\n"
		}' "$TMP/meta.tsv" "$TMP/rows.tsv" >"$file.tmp" && mv "$file.tmp" "$file"
}
