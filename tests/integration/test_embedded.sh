#!/usr/bin/env bash
# The embedded default (PRODUCT.md, "Connection"): with no database
# configured, railyard creates and runs a private cluster under
# $RAILYARD_HOME, on a Unix socket only, as an unprivileged user when root.
. "$(dirname "$0")/lib.sh"

# Nothing may point railyard elsewhere in this script.
unset RAILYARD_DB PGHOST PGDATABASE
PSQL=$RY_PG_BINDIR/psql

# use_home NAME: points RAILYARD_HOME at a fresh directory whose cluster is
# stopped at exit whatever happens.
use_home() {
	export RAILYARD_HOME=$RY_WORKDIR/$1
	at_exit env RAILYARD_HOME="$RAILYARD_HOME" "$RY" db stop
}

postmaster_pid() {
	head -n 1 "$RAILYARD_HOME/pg/postmaster.pid"
}

# q SQL: a query through the conninfo `railyard db url` prints.
q() {
	"$PSQL" -XAtq -v ON_ERROR_STOP=1 -d "$("$RY" db url)" -c "$1"
}

# A shared home for the lifecycle scenarios; each starts it when it needs it.
LIFE=life

start_creates_cluster_with_schema() {
	use_home "$LIFE"
	local out
	out=$("$RY" db start 2>err.log) || fail "db start failed: $(cat err.log)"
	[[ -z $out ]] || fail "db start wrote to stdout: $out"
	grep -q "created the embedded database" err.log || fail "no note that the cluster was created: $(cat err.log)"
	[[ -f $RAILYARD_HOME/pg/PG_VERSION ]] || fail "no cluster under $RAILYARD_HOME/pg"
	ry_alive "$(postmaster_pid)" || fail "the postmaster does not run"
	[[ $(q "SELECT to_regclass('railyard.tasks') IS NOT NULL") == t ]] ||
		fail "the schema was not applied to the new cluster"
	[[ $(q "SELECT current_user || '@' || current_database()") == railyard@railyard ]] ||
		fail "expected to be railyard on database railyard"
}

second_start_is_harmless() {
	use_home "$LIFE"
	"$RY" db start 2>/dev/null || fail "db start failed"
	local pid
	pid=$(postmaster_pid)
	"$RY" db start 2>err.log || fail "a second db start failed: $(cat err.log)"
	! grep -q "created" err.log || fail "a second start created something: $(cat err.log)"
	[[ $(postmaster_pid) == "$pid" ]] || fail "a second start restarted the server"
	ry_alive "$pid" || fail "the server stopped"
}

url_works_with_psql_and_socket_only() {
	use_home "$LIFE"
	local url
	url=$("$RY" db url) || fail "db url failed"
	[[ $url == *"host=/"* ]] || fail "the conninfo should name a socket directory: $url"
	[[ $("$PSQL" -XAt -d "$url" -c "SELECT 1") == 1 ]] || fail "psql cannot use: $url"
	[[ $(q "SHOW listen_addresses") == "" ]] || fail "listen_addresses is not empty"
	local pm
	pm=$(postmaster_pid)
	if command -v ss >/dev/null; then
		if ss -Hltnp | grep -q "pid=$pm,"; then
			fail "the postmaster listens on TCP: $(ss -Hltnp | grep "pid=$pm,")"
		fi
	fi
	[[ $("$RY" db psql -XAtc "SELECT current_database()") == railyard ]] ||
		fail "db psql does not reach the embedded database"
}

stop_stops_and_is_harmless_twice() {
	use_home "$LIFE"
	"$RY" db start 2>/dev/null || fail "db start failed"
	local pid sock
	pid=$(postmaster_pid)
	sock=$(sed -n 5p "$RAILYARD_HOME/pg/postmaster.pid")
	"$RY" db stop 2>err.log || fail "db stop failed: $(cat err.log)"
	! ry_alive "$pid" || fail "the postmaster $pid still runs after db stop"
	[[ ! -e $RAILYARD_HOME/pg/postmaster.pid ]] || fail "postmaster.pid is still there"
	[[ ! -S $sock/.s.PGSQL.5432 ]] || fail "the socket is still there"
	"$RY" db stop 2>err.log || fail "stopping a stopped cluster failed: $(cat err.log)"
}

start_recovers_after_crash() {
	use_home "$LIFE"
	"$RY" db start 2>/dev/null || fail "db start failed"
	q "CREATE TABLE crash_probe AS SELECT 42 AS answer" >/dev/null
	local pid
	pid=$(postmaster_pid)
	kill -KILL "$pid"
	wait_for 10 ry_dead "$pid"
	[[ -f $RAILYARD_HOME/pg/postmaster.pid ]] || fail "expected a stale postmaster.pid after kill -9"
	"$RY" db start 2>err.log || fail "db start after a crash failed: $(cat err.log)"
	local new
	new=$(postmaster_pid)
	[[ $new != "$pid" ]] && ry_alive "$new" || fail "no new postmaster after the crash"
	[[ $(q "SELECT answer FROM crash_probe") == 42 ]] || fail "committed data lost in the crash"
}

concurrent_first_starts_create_once() {
	use_home racing
	local i pids=()
	for i in 1 2 3; do
		"$RY" db start >"out.$i" 2>"err.$i" &
		pids+=($!)
	done
	for i in 1 2 3; do
		wait "${pids[i - 1]}" || fail "db start $i failed: $(cat "err.$i")"
	done
	local created
	created=$(cat err.1 err.2 err.3 | grep -c "created the embedded database" || :)
	((created == 1)) || fail "expected exactly one creation, saw $created"
	[[ $(q "SELECT to_regclass('railyard.tasks') IS NOT NULL") == t ]] || fail "schema missing"
}

# In an empty directory with nothing configured, only db start, migrate and
# demo may create a database; every other command says where it looked.
no_silent_creation() {
	mkdir -p empty/sub
	cd empty/sub
	unset RAILYARD_HOME
	local cmd rc out
	for cmd in "status" "wait 1" "cancel 1" "db url" "db psql -c select" "db stop"; do
		rc=0
		# shellcheck disable=SC2086  # the words are the command line
		out=$("$RY" $cmd 2>&1) || rc=$?
		((rc == 2)) || fail "railyard $cmd in an empty directory exited $rc, expected 2: $out"
		[[ $out == "railyard: error: "*"no .railyard directory in $RY_WORKDIR/empty/sub, $RY_WORKDIR/empty"* ]] ||
			fail "railyard $cmd does not say where it looked: $out"
	done
	rc=0
	out=$("$RY" submit "$RY_ROOT/examples/shop.yaml" 2>&1) || rc=$?
	((rc == 2)) || fail "railyard submit in an empty directory exited $rc: $out"
	[[ ! -e .railyard && ! -e ../.railyard ]] || fail "a command other than db start created .railyard"
	# With RAILYARD_HOME naming a directory without a cluster, the same.
	export RAILYARD_HOME=$RY_WORKDIR/empty/home
	rc=0
	out=$("$RY" status 2>&1) || rc=$?
	((rc == 2)) && [[ $out == *"embedded database under $RAILYARD_HOME"*"there is none"* ]] ||
		fail "railyard status with an empty RAILYARD_HOME: status $rc: $out"
	[[ ! -e $RAILYARD_HOME/pg ]] || fail "railyard status created a cluster under RAILYARD_HOME"
}

# As git finds .git: a .railyard in a parent directory is the one used.
home_found_in_a_parent() {
	mkdir -p proj/deep/er
	cd proj
	unset RAILYARD_HOME
	at_exit env RAILYARD_HOME="$RY_WORKDIR/proj/.railyard" "$RY" db stop
	"$RY" db start 2>err.log || fail "db start failed: $(cat err.log)"
	[[ -f .railyard/pg/PG_VERSION ]] || fail "db start did not create ./.railyard"
	cd deep/er
	local url
	url=$("$RY" db url) || fail "db url from a subdirectory failed"
	[[ $url == *"host=$RY_WORKDIR/proj/.railyard/run "* ]] || fail "db url from proj/deep/er does not use proj/.railyard: $url"
	"$RY" status >status.out 2>&1 || fail "status from a subdirectory failed: $(cat status.out)"
	[[ ! -e .railyard && ! -e ../.railyard ]] || fail "a second .railyard was created"
}

# Peer authentication, one login role per kind of client.
roles_fit_their_commands() {
	use_home "$LIFE"
	"$RY" db start 2>/dev/null || fail "db start failed"
	[[ $(q "SELECT string_agg(DISTINCT auth_method, ',') FROM pg_hba_file_rules") == peer ]] ||
		fail "the embedded cluster does not use peer authentication only: $(q "SELECT type, auth_method FROM pg_hba_file_rules")"
	local role want url got
	for role in owner:railyard worker:ry_worker submitter:ry_submitter reader:ry_reader; do
		want=${role#*:}
		url=$("$RY" db url --role "${role%%:*}") || fail "db url --role ${role%%:*} failed"
		got=$("$PSQL" -XAtq -d "$url" -c "SELECT session_user")
		[[ $got == "$want" ]] || fail "db url --role ${role%%:*} logs in as '$got', expected $want"
	done
	url=$("$RY" db url --role=reader)
	local rc=0
	"$PSQL" -XAtq -v ON_ERROR_STOP=1 -d "$url" -c "INSERT INTO railyard.pipelines (name) VALUES ('x')" 2>err.log || rc=$?
	((rc != 0)) && grep -q "permission denied" err.log || fail "the reader role could insert a pipeline: $(cat err.log)"
	rc=0
	"$RY" db url --role nobody 2>err.log || rc=$?
	((rc == 2)) && grep -q "invalid --role 'nobody'" err.log || fail "a bad --role was not refused: $(cat err.log)"
}

long_home_uses_private_tmp_socket() {
	local long=deep
	while ((${#long} < 120)); do
		long+=/directory-name-that-is-long
	done
	use_home "$long"
	local url dir
	"$RY" db start 2>err.log || fail "db start failed: $(cat err.log)"
	url=$("$RY" db url 2>err.log) || fail "db url failed: $(cat err.log)"
	dir=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$url")
	at_exit rm -rf "$dir"
	[[ $dir == /tmp/railyard-* ]] || fail "expected a socket directory under /tmp, got: $url"
	[[ $(stat -c %a "$dir") == 700 ]] || fail "$dir should be private (mode 700), is $(stat -c %a "$dir")"
	[[ $(q "SELECT 1") == 1 ]] || fail "cannot connect through $dir"
	"$RY" db stop || fail "db stop failed"
}

runs_unprivileged_as_root() {
	((EUID == 0)) || skip "needs root"
	use_home "$LIFE"
	"$RY" db start 2>/dev/null || fail "db start failed"
	local owner
	owner=$(ps -o user= -p "$(postmaster_pid)")
	[[ -n $owner && $owner != root ]] || fail "the postmaster runs as '$owner'"
}

closed_parent_is_reported() {
	((EUID == 0)) || skip "needs root (the server user must be another user)"
	mkdir -p closed
	chmod 700 closed
	use_home closed/home
	local rc=0
	"$RY" db start 2>err.log || rc=$?
	((rc == 2)) || fail "expected exit status 2, got $rc"
	grep -q "$RY_WORKDIR/closed is not accessible" err.log || fail "the error should name the directory: $(cat err.log)"
	grep -q "RAILYARD_HOME" err.log || fail "the error should suggest RAILYARD_HOME: $(cat err.log)"
	[[ $(stat -c %a closed) == 700 ]] || fail "railyard changed the mode of a directory it did not make"
}

external_database_refused_for_start_stop() {
	local verb rc
	for verb in start stop; do
		rc=0
		RAILYARD_DB="host=/nonexistent dbname=x" "$RY" db "$verb" 2>err.log || rc=$?
		((rc == 2)) || fail "db $verb with RAILYARD_DB set: expected status 2, got $rc"
		grep -q "external database" err.log || fail "db $verb should say an external database is configured: $(cat err.log)"
		rc=0
		"$RY" --db "host=/nonexistent dbname=x" db "$verb" 2>err.log || rc=$?
		((rc == 2)) || fail "db $verb with --db: expected status 2, got $rc"
	done
	[[ $(RAILYARD_DB="dbname=elsewhere" "$RY" db url) == "dbname=elsewhere" ]] ||
		fail "db url should print the configured database"
}

run_scenario "db start creates and starts the cluster with the schema applied" start_creates_cluster_with_schema
run_scenario "a second db start is harmless" second_start_is_harmless
run_scenario "db url works with psql; the server listens on a Unix socket only" url_works_with_psql_and_socket_only
run_scenario "db stop stops the server, and stopping again is harmless" stop_stops_and_is_harmless_twice
run_scenario "after kill -9 of the postmaster, db start recovers with the data" start_recovers_after_crash
run_scenario "under root the server runs as an unprivileged user" runs_unprivileged_as_root
run_scenario "three railyards starting a new home at once create it once" concurrent_first_starts_create_once
run_scenario "in an empty directory only db start, migrate and demo create a database; others say where they looked" \
	no_silent_creation
run_scenario "a .railyard in a parent directory is found, as git finds .git" home_found_in_a_parent
run_scenario "the embedded cluster uses peer authentication and db url --role logs in as that kind of client" \
	roles_fit_their_commands
run_scenario "a home too deep for a socket path gets a private socket directory in /tmp" long_home_uses_private_tmp_socket
run_scenario "a parent directory the server user cannot enter is named in the error" closed_parent_is_reported
run_scenario "db start/stop refuse when an external database is configured" external_database_refused_for_start_stop
