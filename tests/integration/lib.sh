# shellcheck shell=bash
#
# Helpers for integration test scripts.  tests/run.sh runs every
# tests/integration/test_*.sh as `bash SCRIPT` against a throwaway cluster;
# a script sources this file first:
#
#     #!/usr/bin/env bash
#     . "$(dirname "$0")/lib.sh"
#
#     root_task_is_ready() {
#         local id
#         id=$(sql "BEGIN;
#             INSERT INTO railyard.pipelines (name) VALUES ('p') RETURNING id \\gset
#             INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true');
#             COMMIT;
#             SELECT :id;")
#         [[ $(sql "SELECT state FROM railyard.tasks WHERE pipeline_id = $id") == ready ]] ||
#             fail "the only task of pipeline $id is not ready"
#     }
#     run_scenario "a pipeline's root task is ready once submitted" root_task_is_ready
#
# Run one script: tests/run.sh build/rel integration/test_NAME (KEEP_TMP=1
# keeps every scenario's output under /tmp/railyard-test.*/work/test_NAME).
# Do not `set -e` at the top: run_scenario applies it inside each scenario.
# Setup outside scenarios should `exit 1` when it fails: a script that exits
# non-zero, times out or records no scenario shows up as a failed "(script)".
#
# What a script can rely on when it starts:
#   - its own empty working directory as cwd ($RY_WORKDIR);
#   - its own database, fresh from the migrated template, in $RAILYARD_DB
#     (lib.sh calls `ry_newdb main` when sourced);
#   - $RY: absolute path of the railyard binary the build produced (the
#     sanitizer build under `make SANITIZE=...`);
#   - $RY_PG_BINDIR: the PostgreSQL binaries (psql, pg_ctl, ...);
#   - PGHOST/PGDATABASE are unset, so railyard uses $RAILYARD_DB.
#
# Scenarios say what must hold.  Wait for conditions with wait_for, never
# with fixed sleeps.  Anything a script starts in the background it either
# starts with start_worker or registers with at_exit.
#
# Helpers for pipelines and failure injection, documented where defined:
# ry_usedb, sql_eq, ry_submit, task_get, wait_pipeline, show_pipeline,
# wait_agent, task_pids, kill_task_processes, pg_restart.
#
# Environment from tests/run.sh: RY, RY_ROOT, RY_PG_BINDIR, RY_PGHOST,
# RY_PGPORT, RY_PGUSER, RY_TEMPLATE_DB, RY_WORKDIR, RY_RESULTS, RY_SUITE,
# RY_SCRIPT, RY_SANITIZER_DIR.

if [[ -z ${RY_RESULTS:-} || -z ${RY_WORKDIR:-} || -z ${RY:-} ]]; then
	echo "error: $0 is meant to run through tests/run.sh (e.g. tests/run.sh build/rel integration/${0##*/})" >&2
	exit 2
fi

export LC_ALL=C TZ=UTC
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS
cd "$RY_WORKDIR" || exit 2

RY__NSCEN=0		# scenarios run so far (names their directories)
RY__IN_SCENARIO=0	# 1 inside run_scenario's subshell
RY__SCEN_DIR=""		# that scenario's directory
RY__PLAIN_NAME=""	# open `scenario NAME` block, plain style
RY__PLAIN_START=0
RY__WORKERS=$RY_WORKDIR/.workers	# "pid name" per started worker
RY__AT_EXIT=$RY_WORKDIR/.at_exit	# cleanup commands, run last-first
: >"$RY__WORKERS"
: >"$RY__AT_EXIT"
# A descriptor nobody writes to: `read -t` on it sleeps without a process.
exec {RY__SLEEP_FD}<> <(:)

# ---- small internals ------------------------------------------------------

# Microseconds since the epoch.
ry__now_us() {
	local t=${EPOCHREALTIME//[!0-9]/}
	echo $((10#$t))
}

# ry__us SECONDS: "2", "0.5", "1.25" -> microseconds.
ry__us() {
	local s=$1 int frac
	int=${s%%.*}
	frac=${s#"$int"}
	frac=${frac#.}000000
	echo $((10#${int:-0} * 1000000 + 10#${frac:0:6}))
}

# Seconds with three decimals from a span in microseconds.
ry__secs() {
	printf '%d.%03d' $(($1 / 1000000)) $((($1 / 1000) % 1000))
}

# shellcheck source=tests/escape.sh
. "$(dirname "${BASH_SOURCE[0]}")/../escape.sh"

# ry__record OUTCOME NAME DURATION_US MESSAGE: one line of results.
ry__record() {
	printf '%s\t%s\t%s\t%s\n' "$1" "$(ry_esc "$2")" "$(ry__secs "$3")" "$(ry_esc "$4")" >>"$RY_RESULTS"
}

# Sanitizer reports (ASAN/UBSAN log_path files) written since the last call:
# prints their first lines and moves them into directory $1.
ry__claim_sanitizer_reports() {
	local dest=$1 f found=1
	[[ -n ${RY_SANITIZER_DIR:-} && -d $RY_SANITIZER_DIR ]] || return 1
	for f in "$RY_SANITIZER_DIR"/*; do
		[[ -f $f ]] || continue
		found=0
		echo "sanitizer report ${f##*/}:"
		head -n 30 "$f"
		mkdir -p "$dest"
		mv "$f" "$dest/"
	done
	return $found
}

# Writes a scenario's verdict unless one is there already (the first wins).
ry__verdict() {
	[[ -s $RY__SCEN_DIR/verdict ]] && return 0
	printf '%s\n%s' "$1" "$2" >"$RY__SCEN_DIR/verdict"
}

ry__on_err() {
	local rc=$1 cmd=$2 where=$3
	ry__verdict failed "command failed (status $rc) at $where: $cmd"
}

ry__scenario_exit() {
	stop_workers
}

# ---- scenarios -------------------------------------------------------------

# run_scenario NAME FUNC [ARGS...]
#   Runs FUNC ARGS in a subshell with `set -eE -o pipefail` and records one
#   result named NAME: passed when FUNC returns normally, failed when FUNC
#   calls `fail`, when any command fails (the message names the command and
#   line), or when a sanitizer reported anything; skipped when FUNC calls
#   `skip`.  FUNC's stdout/stderr go to $RY_WORKDIR/scenario.N/output (the
#   tail is part of a failure's message).  Workers started inside are
#   stopped when it ends.  Variables FUNC sets do not outlive it.
#   Returns 0 when the scenario passed or was skipped, 1 otherwise.
run_scenario() {
	local name=$1 fn=$2
	shift 2
	RY__NSCEN=$((RY__NSCEN + 1))
	local dir=$RY_WORKDIR/scenario.$RY__NSCEN
	mkdir -p "$dir"
	: >"$dir/verdict"
	local start rc
	start=$(ry__now_us)
	(
		RY__IN_SCENARIO=1
		RY__SCEN_DIR=$dir
		set -eE -o pipefail
		trap 'ry__on_err $? "$BASH_COMMAND" "${BASH_SOURCE[0]##*/}:$LINENO"' ERR
		trap ry__scenario_exit EXIT
		"$fn" "$@"
	) >"$dir/output" 2>&1 </dev/null
	rc=$?
	local outcome message=""
	if [[ -s $dir/verdict ]]; then
		outcome=$(head -n 1 "$dir/verdict")
		message=$(tail -n +2 "$dir/verdict")
	elif ((rc == 0)); then
		outcome=passed
	else
		outcome=failed
		message="scenario exited with status $rc"
	fi
	local reports
	if reports=$(ry__claim_sanitizer_reports "$dir/sanitizer"); then
		outcome=failed
		message="${message:+$message; }a sanitizer reported an error"$'\n'"$reports"
	fi
	if [[ $outcome == failed && -s $dir/output ]]; then
		message+=$'\n'"--- last output ($dir/output):"$'\n'$(tail -n 25 "$dir/output")
	fi
	ry__record "$outcome" "$name" $(($(ry__now_us) - start)) "$message"
	[[ $outcome != failed ]]
}

# fail MESSAGE
#   Inside run_scenario: the scenario fails with MESSAGE and ends now.
#   In a plain `scenario` block: records the failure and returns 1.
fail() {
	local msg="${1:-failed}"
	if ((RY__IN_SCENARIO)); then
		ry__verdict failed "$msg"
		exit 1
	fi
	if [[ -n $RY__PLAIN_NAME ]]; then
		ry__record failed "$RY__PLAIN_NAME" $(($(ry__now_us) - RY__PLAIN_START)) "$msg"
		RY__PLAIN_NAME=""
		return 1
	fi
	ry__record failed "(script)" 0 "$msg"
	return 1
}

# skip REASON
#   Inside run_scenario: the scenario is recorded as skipped and ends now
#   (e.g. "needs root").  In a plain block: records it skipped.
skip() {
	local msg="${1:-skipped}"
	if ((RY__IN_SCENARIO)); then
		ry__verdict skipped "$msg"
		exit 0
	fi
	if [[ -n $RY__PLAIN_NAME ]]; then
		ry__record skipped "$RY__PLAIN_NAME" $(($(ry__now_us) - RY__PLAIN_START)) "$msg"
		RY__PLAIN_NAME=""
	fi
	return 0
}

# scenario NAME / pass / fail MSG — the plain style, without a function:
#     scenario "a cycle is refused"
#     if sql_expect_error "..." "cycle: " >/dev/null; then pass; fi
#   `scenario` opens a block, `pass` or `fail` closes it.  A block still
#   open at the next `scenario` or at exit is recorded as failed.  Prefer
#   run_scenario: it catches failing commands for you.
scenario() {
	if [[ -n $RY__PLAIN_NAME ]]; then
		fail "scenario ended without pass or fail"
	fi
	RY__PLAIN_NAME=$1
	RY__PLAIN_START=$(ry__now_us)
}

pass() {
	((RY__IN_SCENARIO)) && return 0	# run_scenario passes on return anyway
	if [[ -z $RY__PLAIN_NAME ]]; then
		ry__record failed "(script)" 0 "pass called outside a scenario"
		return 1
	fi
	ry__record passed "$RY__PLAIN_NAME" $(($(ry__now_us) - RY__PLAIN_START)) ""
	RY__PLAIN_NAME=""
}

# ---- waiting ---------------------------------------------------------------

# ry_sleep SECONDS: sleeps without starting a process.  For pacing a poll
# loop only; use wait_for to wait for something.
ry_sleep() {
	read -r -t "$1" -u "$RY__SLEEP_FD" _ || :
}

# wait_for TIMEOUT_S CMD [ARGS...]
#   Runs CMD until it succeeds (polling every 50 ms, its output discarded).
#   On timeout the scenario fails with a message naming CMD and showing its
#   last output; outside a scenario it returns 1.
wait_for() {
	local timeout=$1
	shift
	local deadline=$(($(ry__now_us) + $(ry__us "$timeout")))
	while :; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		if (($(ry__now_us) > deadline)); then
			local out
			out=$("$@" 2>&1 | tail -n 5) || :
			fail "timed out after ${timeout}s waiting for: $*${out:+ (last output: $out)}"
			return 1
		fi
		ry_sleep 0.05
	done
}

# ---- SQL -------------------------------------------------------------------

# sql [PSQL_OPTIONS...] "SQL SCRIPT"
#   Runs the script (one or more statements) against $RAILYARD_DB with
#   psql -XAtq and ON_ERROR_STOP; prints the rows, fields separated by |.
#   Non-zero status (3) when a statement fails.  Example:
#     n=$(sql "SELECT count(*) FROM railyard.tasks WHERE state = 'ready'")
sql() {
	local script=${!#}
	"$RY_PG_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$RAILYARD_DB" "${@:1:$#-1}" <<<"$script"
}

# sql_expect_error "SQL SCRIPT" "EXPECTED SUBSTRING"
#   The script must fail, with an error mentioning the substring; fails the
#   scenario otherwise.  Prints psql's error output (capture it to check more):
#     err=$(sql_expect_error "INSERT ..." 'violates check constraint')
sql_expect_error() {
	local out rc=0
	out=$(sql "$1" 2>&1) || rc=$?
	if ((rc == 0)); then
		fail "SQL succeeded but should have failed mentioning \"$2\": $1"
		return 1
	fi
	if [[ $out != *"$2"* ]]; then
		fail "SQL failed without mentioning \"$2\": $out"
		return 1
	fi
	printf '%s\n' "$out"
}

# ry_newdb NAME [--empty]
#   Creates a fresh database (dropping one of that name first) and points
#   RAILYARD_DB at it: a copy of the migrated template, or with --empty a
#   database without railyard's schema (for testing migrate itself).  The
#   database is named after the script and NAME, so scripts never collide.
#   Prints nothing; sets RY_DBNAME.
ry_newdb() {
	local tmpl=$RY_TEMPLATE_DB
	[[ ${2:-} == --empty ]] && tmpl=template0
	local name="${RY_SCRIPT}_$1"
	name=${name//[!A-Za-z0-9_]/_}
	name=${name:0:63}
	"$RY_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
		-d "host=$RY_PGHOST port=$RY_PGPORT user=$RY_PGUSER dbname=postgres" \
		-c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"$name\"" \
		-c "CREATE DATABASE \"$name\" TEMPLATE \"$tmpl\"" || return 1
	RY_DBNAME=$name
	export RAILYARD_DB="host=$RY_PGHOST port=$RY_PGPORT user=$RY_PGUSER dbname=$name"
}

# ---- workers and other background processes -------------------------------

# start_worker NAME [ARGS...]
#   Starts `$RY worker --name NAME ARGS...` in the background, its output
#   appended to $RY_WORKDIR/worker-NAME.log.  Sets RY_WORKER_PID.  Stopped
#   by stop_worker/stop_workers, at the end of the scenario, or at exit.
#   The throttle is off unless ARGS turn it on (--throttle on): a loaded
#   test machine's own pressure would otherwise change every scenario's
#   parallelism (test_throttle.sh injects pressure files instead).  No
#   /metrics listener unless ARGS name one.
start_worker() {
	local name=$1
	shift
	# No /metrics unless asked for (a later --http-listen wins): workers of
	# tests running side by side would all ask for the default port.
	"$RY" worker --name "$name" --throttle off --http-listen off "$@" >>"$RY_WORKDIR/worker-$name.log" 2>&1 </dev/null &
	RY_WORKER_PID=$!
	echo "$RY_WORKER_PID $name" >>"$RY__WORKERS"
}

# max_overlap PIPELINE_ID [AND ...]: the most attempts of the pipeline
# running at any one instant, from the attempt history (an end sorts
# before a start at the same instant); more conditions may follow the id.
max_overlap() {
	sql "WITH ev AS (
	         SELECT started_at AS at, 1 AS d FROM railyard.task_attempts WHERE pipeline_id = $1
	         UNION ALL
	         SELECT finished_at, -1 FROM railyard.task_attempts WHERE pipeline_id = $1)
	     SELECT coalesce(max(n), 0) FROM (SELECT sum(d) OVER (ORDER BY at, d ROWS UNBOUNDED PRECEDING) AS n FROM ev) s"
}

# metrics_url NAME: the base URL the worker NAME logged it serves /metrics
# on (start it with --http-listen 127.0.0.1:0); status 1 until it has.
metrics_url() {
	local url
	url=$(sed -n 's|.*serving /metrics and /healthz on \(http://[^ ]*/\)$|\1|p' \
		"$RY_WORKDIR/worker-$1.log" | tail -n 1)
	[[ -n $url ]] && echo "$url"
}

# metric TEXT NAME_AND_LABELS: the value of one sample line of a scrape.
metric() {
	awk -v k="$2" '$1 == k { print $2; f = 1 } END { exit !f }' <<<"$1"
}

# worker_pid NAME: prints the pid of the worker started last under NAME.
worker_pid() {
	awk -v n="$1" '$2 == n { p = $1 } END { if (p == "") exit 1; print p }' "$RY__WORKERS"
}

# ry_alive PID: whether the process runs (a zombie does not count).
ry_alive() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	state=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 0
	[[ $state != Z && $state != X ]]
}

# stop_worker NAME [SIGNAL] [TIMEOUT_S]
#   Sends SIGNAL (default TERM) to the worker and waits up to TIMEOUT_S
#   (default 30) for it to exit; fails the scenario if it does not.  With
#   KILL this is the "worker dies" failure injection.
stop_worker() {
	local pid
	pid=$(worker_pid "$1") || {
		fail "no worker named $1 was started"
		return 1
	}
	kill -"${2:-TERM}" "$pid" 2>/dev/null || :
	wait_for "${3:-30}" ry_dead "$pid"
}

# ry_dead PID: the opposite of ry_alive, for wait_for.
ry_dead() { ! ry_alive "$1"; }

# stop_workers
#   Stops every worker still running: TERM, then KILL after 10 s.  Runs by
#   itself at the end of each scenario and at exit.
stop_workers() {
	local pid name pids=() left
	[[ -s $RY__WORKERS ]] || return 0
	while read -r pid name; do
		if ry_alive "$pid" && kill -TERM "$pid" 2>/dev/null; then
			pids+=("$pid")
		fi
	done <"$RY__WORKERS"
	local deadline=$(($(ry__now_us) + 10000000))
	while ((${#pids[@]})); do
		left=()
		for pid in "${pids[@]}"; do
			if ry_alive "$pid"; then
				left+=("$pid")
			fi
		done
		pids=("${left[@]}")
		((${#pids[@]})) || break
		if (($(ry__now_us) > deadline)); then
			echo "stop_workers: killing workers that ignored SIGTERM for 10 s: ${pids[*]}" >&2
			kill -KILL "${pids[@]}" 2>/dev/null || :
			break
		fi
		ry_sleep 0.05
	done
	: >"$RY__WORKERS"
	return 0
}

# at_exit CMD [ARGS...]
#   Runs CMD ARGS when the script exits (last registered, first run), even
#   after a failure or a timeout.  Example: at_exit "$RY" db stop
at_exit() {
	printf '%q ' "$@" >>"$RY__AT_EXIT"
	printf '\n' >>"$RY__AT_EXIT"
}

# ry_pgbouncer NAME MODE [tcp]
#   Starts Debian's pgbouncer in front of the test cluster, as the cluster's
#   user, from a directory of its own, pooling in MODE (session,
#   transaction), stopped at exit; sets BOUNCER_DB to a conninfo for the
#   current database through it.  It listens on a Unix socket in that
#   directory, and with tcp on 127.0.0.1 too (BOUNCER_DB then says TCP),
#   at a port it is seen to listen on: pgbouncer starts whether or not it
#   could bind one, so its log decides, and a port another process holds
#   makes it try the next.  RY_BOUNCER_INI, when set, is added to its
#   [pgbouncer] settings (TLS, auth_type) and RY_BOUNCER_USERS replaces its
#   userlist.txt (no password, for auth_type = trust).
ry_pgbouncer() {
	local name=$1 mode=$2 tcp=${3:-} dir=$RY_WORKDIR/bouncer-$1 port pid try
	command -v pgbouncer >/dev/null || fail "pgbouncer is not installed (scripts/install-deps.sh)"
	# shellcheck source=scripts/pg-common.sh
	. "$RY_ROOT/scripts/pg-common.sh"
	mkdir -p "$dir"
	for try in 1 2 3 4 5; do
		port=$((20000 + ($$ + RANDOM) % 30000))
		pg_bouncer_conf "$dir" "$RY_PGHOST" "$RY_PGPORT" "$port" "$mode" 20 200 "$RY_PGUSER"
		[[ -z $tcp ]] || sed -i 's/^listen_addr =.*/listen_addr = 127.0.0.1/' "$dir/pgbouncer.ini"
		[[ -z ${RY_BOUNCER_INI:-} ]] || printf '%s\n' "$RY_BOUNCER_INI" >>"$dir/pgbouncer.ini"
		[[ -z ${RY_BOUNCER_USERS:-} ]] || printf '%s\n' "$RY_BOUNCER_USERS" >"$dir/userlist.txt"
		: >"$dir/pgbouncer.log"
		chown -R "$RY_PGUSER" "$dir"
		runuser -u "$RY_PGUSER" -- pgbouncer -d "$dir/pgbouncer.ini" ||
			fail "pgbouncer did not start: $(tail -5 "$dir/pgbouncer.log")"
		wait_for 10 grep -q "process up" "$dir/pgbouncer.log"
		pid=$(cat "$dir/pgbouncer.pid")
		[[ -z $tcp ]] || grep -q "listening on 127.0.0.1:$port" "$dir/pgbouncer.log" && break
		kill "$pid"
		wait_for 10 ry_dead "$pid"
		pid=""
	done
	[[ -n $pid ]] || fail "pgbouncer could not listen on 127.0.0.1: $(tail -5 "$dir/pgbouncer.log")"
	at_exit kill "$pid"
	if [[ -n $tcp ]]; then
		BOUNCER_DB="host=127.0.0.1 port=$port user=$RY_PGUSER dbname=$RY_DBNAME"
	else
		BOUNCER_DB="host=$dir port=$port user=$RY_PGUSER dbname=$RY_DBNAME"
	fi
	wait_for 10 "$RY_PG_BINDIR/psql" -XAtq -d "$BOUNCER_DB" -c "SELECT 1"
}

# ---- pipelines, tasks and failure injection --------------------------------

# ry_usedb NAME
#   Points RAILYARD_DB at the database an earlier `ry_newdb NAME` created,
#   without recreating it: for a scenario that examines what the one before
#   it left behind.  Fails when that database does not exist.  Sets RY_DBNAME.
ry_usedb() {
	local name="${RY_SCRIPT}_$1"
	name=${name//[!A-Za-z0-9_]/_}
	name=${name:0:63}
	# shellcheck disable=SC2034  # for the caller, as ry_newdb sets it
	RY_DBNAME=$name
	export RAILYARD_DB="host=$RY_PGHOST port=$RY_PGPORT user=$RY_PGUSER dbname=$name"
	if ! sql "SELECT 1" >/dev/null 2>&1; then
		fail "database $name does not exist: the scenario that creates it (ry_newdb $1) did not run"
		return 1
	fi
}

# sql_eq EXPECTED "SQL"
#   Succeeds when the query prints exactly EXPECTED, else prints what it
#   got; made for wait_for:
#     wait_for 30 sql_eq succeeded "SELECT state FROM railyard.pipelines WHERE id = $id"
sql_eq() {
	local out
	out=$(sql "$2" 2>&1) || {
		printf '%s\n' "$out"
		return 1
	}
	[[ $out == "$1" ]] && return 0
	printf 'got: %s\n' "$out"
	return 1
}

# flip_byte FILE OFFSET
#   Corrupts FILE by flipping one bit of the byte at OFFSET (writing a
#   fixed byte instead would leave random data as it was 1 time in 256).
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N 1 "$1" | tr -d ' ')
	printf "\\x$(printf %02x $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# ry_submit "PIPELINE_COLUMNS VALUES (...)" "STATEMENTS"
#   Submits a pipeline in one transaction, as PRODUCT.md's SQL does, and
#   prints its id: `INSERT INTO railyard.pipelines $1`, then STATEMENTS with
#   the new id as :id.  Fails the scenario when the submission is refused.
#     id=$(ry_submit "(name) VALUES ('p')" "
#         INSERT INTO railyard.tasks (pipeline_id, name, command)
#         VALUES (:id, 'a', 'true'), (:id, 'b', 'true');
#         INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'a', 'b');")
ry_submit() {
	local out
	out=$(sql "BEGIN;
INSERT INTO railyard.pipelines $1 RETURNING id \\gset
$2
COMMIT;
SELECT :id;" 2>&1) || {
		fail "submission refused: $out"
		return 1
	}
	if [[ ! $out =~ ^[0-9]+$ ]]; then
		fail "submission printed no pipeline id: $out"
		return 1
	fi
	echo "$out"
}

# task_get PIPELINE_ID TASK_NAME COLUMNS
#   Prints COLUMNS (an SQL select list over railyard.tasks) of one task,
#   fields separated by |:  read -r state attempt <<<"$(task_get 7 build 'state, attempt' | tr '|' ' ')"
task_get() {
	sql "SELECT $3 FROM railyard.tasks WHERE pipeline_id = $1 AND name = '$2'"
}

# show_pipeline ID
#   Prints pipeline ID, its tasks and their attempts, and the tail of every
#   worker log: what a failure message needs.
show_pipeline() {
	local f
	echo "--- pipeline $1:"
	sql "SELECT 'pipeline', id, name, state FROM railyard.pipelines WHERE id = $1" 2>&1 || :
	sql "SELECT 'task', id, name, state, attempt, coalesce(reason, '') FROM railyard.tasks
	      WHERE pipeline_id = $1 ORDER BY id LIMIT 40" 2>&1 || :
	sql "SELECT 'attempt', task_id, attempt, agent_name, outcome, coalesce(reason, '')
	       FROM railyard.task_attempts WHERE pipeline_id = $1 ORDER BY task_id, attempt LIMIT 40" 2>&1 || :
	for f in "$RY_WORKDIR"/worker-*.log; do
		[[ -f $f ]] || continue
		echo "--- ${f##*/}:"
		tail -n 8 "$f"
	done
}

# wait_pipeline TIMEOUT ID [STATE]
#   Waits until pipeline ID is finished (succeeded, failed or cancelled) and
#   prints its state.  With STATE the scenario fails unless it ended in that
#   state; on timeout it fails either way.  Failures show show_pipeline.
wait_pipeline() {
	local timeout=$1 id=$2 want=${3:-} st=""
	local deadline=$(($(ry__now_us) + $(ry__us "$timeout")))
	while :; do
		st=$(sql "SELECT state FROM railyard.pipelines WHERE id = $id" 2>/dev/null) || st=""
		case $st in
		succeeded | failed | cancelled) break ;;
		esac
		if (($(ry__now_us) > deadline)); then
			show_pipeline "$id" >&2
			fail "pipeline $id did not finish within ${timeout}s (state: ${st:-unknown})"
			return 1
		fi
		ry_sleep 0.1
	done
	if [[ -n $want && $st != "$want" ]]; then
		show_pipeline "$id" >&2
		# The tasks that decided it, in the message itself: the summary
		# shows only the end of the scenario's output.
		fail "pipeline $id ended $st, expected $want; not succeeded: $(sql "
			SELECT left(string_agg(name || ' ' || state || coalesce(' (' || reason || ')', ''), '; ' ORDER BY id), 600)
			  FROM railyard.tasks WHERE pipeline_id = $id AND state <> 'succeeded'" 2>&1)"
		return 1
	fi
	echo "$st"
}

# wait_agent TIMEOUT NAME
#   Waits until the worker started last under NAME has registered: its
#   agents row is online and carries the worker's pid.
wait_agent() {
	local pid
	pid=$(worker_pid "$2") || {
		fail "no worker named $2 was started"
		return 1
	}
	wait_for "$1" sql_eq online "SELECT state FROM railyard.agents WHERE name = '$2' AND pid = $pid"
}

# task_pids [TASK_ID]
#   Prints the pids of live processes of task TASK_ID (of any task without
#   it) run by this script's workers: processes whose environment holds
#   RAILYARD_TASK_ID=TASK_ID and a RAILYARD_WORKSPACE under $RY_WORKDIR (the
#   workers' default workdir; give --workdir a directory under it too).
#   Task ids repeat across databases; the workspace tells scripts apart.
task_pids() {
	ry__task_procs "$RY_WORKDIR" ${1:+"RAILYARD_TASK_ID=$1"}
}

# procs_in WORKDIR [ATTEMPT]
#   Prints the pids of live task processes whose workspace is under WORKDIR
#   (a worker's --workdir), of that attempt only when given: what one
#   scenario's workers started, whatever the task ids (they repeat across
#   databases).  no_procs_in is its negation, for wait_for.
procs_in() {
	ry__task_procs "$1" ${2:+"RAILYARD_ATTEMPT=$2"}
}
no_procs_in() { [[ -z $(procs_in "$@") ]]; }

# ry__task_procs DIR [VAR=VALUE...]: live processes whose environment has
# a RAILYARD_WORKSPACE under DIR and every VAR=VALUE given.
ry__task_procs() {
	local dir=$1 files f pid kv
	shift
	# Processes vanish while grep reads: its status says nothing here.
	files=$(grep -lz "^RAILYARD_WORKSPACE=$dir/" /proc/[0-9]*/environ 2>/dev/null) || :
	for f in $files; do
		for kv in "$@"; do
			grep -qzx "$kv" "$f" 2>/dev/null || continue 2
		done
		pid=${f#/proc/}
		pid=${pid%/environ}
		if ry_alive "$pid"; then
			echo "$pid"
		fi
	done
	return 0
}

# kill_task_processes [TASK_ID]
#   SIGKILLs what task_pids finds: the processes a worker killed with -9
#   left behind (they live in their own process groups and outlive it).
#   Register `at_exit kill_task_processes` in scripts that kill workers.
kill_task_processes() {
	local pids
	pids=$(task_pids "${1:-}")
	# shellcheck disable=SC2086  # one pid per word
	[[ -z $pids ]] || kill -KILL $pids 2>/dev/null || :
}

# pg_restart [DOWN_SECONDS [CMD ARGS...]]
#   Failure injection: stops the test cluster with `pg_ctl stop -m fast`
#   (every connection is cut), stays down DOWN_SECONDS (default 0), then
#   runs CMD ARGS if given (still down: e.g. a wait_for of what must happen
#   during the outage), then starts it again with the same data directory,
#   configuration and log, as tests/run.sh did.  Fails the scenario when the
#   cluster does not stop or does not come back.  All scripts share the
#   cluster: with JOBS > 1 the others see their connections cut too.
pg_restart() {
	local down=${1:-0} top=${RY_PGHOST%/*} out rc=0
	shift $(($# ? 1 : 0))
	local data=$top/pg as=()
	if [[ ! -f $data/PG_VERSION ]]; then
		fail "pg_restart: no cluster in $data (tests/run.sh keeps it next to $RY_PGHOST)"
		return 1
	fi
	# make coverage: the PL/pgSQL counts live in shared memory; keep them.
	if [[ -n ${RY_COVERAGE:-} ]]; then
		"$RY_ROOT/tests/coverage-harvest.sh" "$RY_PG_BINDIR" \
			"host=$RY_PGHOST port=$RY_PGPORT user=$RY_PGUSER" "$RY_COVERAGE"
	fi
	# tests/run.sh runs it as the owner of the data directory when we are root.
	if ((EUID == 0)) && [[ $(stat -c %U "$data") != root ]]; then
		as=(runuser -u "$(stat -c %U "$data")" --)
	fi
	out=$(cd "$top" && "${as[@]}" "$RY_PG_BINDIR/pg_ctl" -D "$data" -m fast -w -t 60 stop 2>&1) ||
		rc=$?
	if ((rc)); then
		fail "pg_restart: cannot stop the test cluster: $out"
		return 1
	fi
	[[ $down == 0 ]] || ry_sleep "$down"
	local during=0
	# In a subshell: a failing check must not leave the cluster down.
	(($# == 0)) || ("$@") || during=$?
	out=$(cd "$top" && "${as[@]}" "$RY_PG_BINDIR/pg_ctl" -D "$data" -l "$top/postgresql.log" \
		-w -t 60 start 2>&1) || rc=$?
	if ((rc)); then
		fail "pg_restart: cannot start the test cluster again: $out"$'\n'"$(tail -n 10 "$top/postgresql.log")"
		return 1
	fi
	return $during
}

# ry_remove_worker_cgroups: removes the cgroups that workers of this script
#   recorded (state/NAME.cgroups under their workdirs) and left behind when
#   killed with -9 and not restarted: whatever still runs in them is killed.
#   Runs by itself at exit.
ry_remove_worker_cgroups() {
	local rec dir sub pid
	while IFS= read -r rec; do
		while IFS= read -r dir; do
			[[ -d $dir && $dir == /sys/fs/cgroup/* ]] || continue
			for sub in "$dir"/*/; do
				[[ -d $sub ]] || continue
				if [[ -e $sub/cgroup.kill ]]; then
					echo 1 >"$sub/cgroup.kill" 2>/dev/null || :
				else
					while read -r pid; do kill -KILL "$pid" 2>/dev/null || :; done <"$sub/cgroup.procs"
				fi
				wait_for 5 rmdir "$sub" || :
			done
			rmdir "$dir" 2>/dev/null || :
		done <"$rec"
	done < <(find "$RY_WORKDIR" -path '*/state/*.cgroups' -type f 2>/dev/null)
	return 0
}

ry__on_exit() {
	local rc=$?
	trap - EXIT
	if [[ -n $RY__PLAIN_NAME ]]; then
		fail "scenario ended without pass or fail"
	fi
	stop_workers
	ry_remove_worker_cgroups
	if [[ -s $RY__AT_EXIT ]]; then
		local cmds
		mapfile -t cmds <"$RY__AT_EXIT"
		for ((i = ${#cmds[@]} - 1; i >= 0; i--)); do
			eval "${cmds[i]}" >>"$RY_WORKDIR/at_exit.log" 2>&1 || :
		done
	fi
	exit "$rc"
}

trap ry__on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ry_newdb main || {
	echo "error: cannot create this script's database from $RY_TEMPLATE_DB" >&2
	exit 1
}

# The submission from PRODUCT.md verbatim, with psql's \gset standing in for
# "say 42", and without its COMMIT so a test can look inside the open
# transaction.  Use: sql "$PRODUCT_MD_SUBMISSION COMMIT; SELECT :id;"
PRODUCT_MD_SUBMISSION="
BEGIN;
INSERT INTO railyard.pipelines (name, team, priority, revision, changed_paths)
VALUES ('shop@9f3c2e1', 'payments', 5, '9f3c2e1', '{services/cart/main.go}')
RETURNING id \\gset
INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command,
                            requires, cpu, mem_mb, timeout_s)
VALUES (:id, 'build:cart', 'cart', 'build', 'make -C services/cart', '{linux}', 2, 2048, 900),
       (:id, 'test:cart',  'cart', 'test',  'make -C services/cart test', '{linux}', 1, 1024, 600);
INSERT INTO railyard.edges (pipeline_id, upstream, downstream, kind)
VALUES (:id, 'build:cart', 'test:cart', 'build');
"

# ---- clusters of a script's own (failover, several hosts) -------------------

# ry_cluster_init DIR [POSTGRESQL.CONF LINES...]
#   initdb's a cluster of the script's own in DIR/data (as the unprivileged
#   user railyard when root), its socket in DIR/sock, its log DIR/log;
#   each further argument is a postgresql.conf line.  Not started.
ry_cluster_init() {
	local dir=$1 line
	shift
	mkdir -p "$dir/data" "$dir/sock"
	chmod 700 "$dir/data"
	chmod 755 "$dir" "$dir/sock"
	touch "$dir/log"
	((EUID == 0)) && chown "$RY_PGUSER": "$dir/data" "$dir/sock" "$dir/log"
	ry__as_pg "$RY_PG_BINDIR/initdb" -D "$dir/data" --nosync -U "$RY_PGUSER" -A trust \
		--encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; return 1; }
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$dir/sock'"
		echo "fsync = off"
		echo "max_connections = 100"
		echo "shared_buffers = 32MB"
		for line; do echo "$line"; done
	} >>"$dir/data/postgresql.conf"
}

# ry_cluster_ctl DIR ARGS...: pg_ctl on DIR's cluster (start, stop -m fast,
# promote ...), waiting for it; the cluster is stopped at exit.
ry_cluster_ctl() {
	local dir=$1
	shift
	if [[ $1 == start ]] && [[ ! -e $dir/.at_exit ]]; then
		touch "$dir/.at_exit"
		at_exit ry__as_pg "$RY_PG_BINDIR/pg_ctl" -D "$dir/data" -m immediate stop
	fi
	ry__as_pg "$RY_PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 "$@" >>"$dir/pg_ctl.log" 2>&1
}

# Runs a command as the cluster's user when root (cwd /, which it may read).
ry__as_pg() {
	if ((EUID == 0)); then
		(cd / && runuser -u "$RY_PGUSER" -- "$@")
	else
		"$@"
	fi
}
