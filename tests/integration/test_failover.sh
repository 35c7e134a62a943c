#!/usr/bin/env bash
# Failover (issue 11, item 8): workers given a multi-host connection
# string (host=A,B ... target_session_attrs=read-write) survive a primary
# switch in the middle of a run: the test makes a primary and a streaming
# replica of it (pg_basebackup -R), stops the primary while tasks run and
# promotes the replica.  Every result ends up on the new primary, and no
# task that completed runs again: each task has exactly one attempt, and
# ran to its end exactly once.
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes

A=$RY_WORKDIR/primary
B=$RY_WORKDIR/replica
RAN=$RY_WORKDIR/ran	# each execution that completes leaves a file here

primary_then_replica_promoted() {
	ry_cluster_init "$A" "wal_level = replica" "max_wal_senders = 5" "wal_keep_size = 64MB" ||
		fail "cannot initdb the primary"
	ry_cluster_ctl "$A" start || fail "the primary did not start: $(tail -5 "$A/log")"
	"$RY_PG_BINDIR/psql" -XAtq -d "host=$A/sock user=$RY_PGUSER dbname=postgres" -c "CREATE DATABASE railyard" ||
		fail "cannot create the database"
	RAILYARD_DB="host=$A/sock user=$RY_PGUSER dbname=railyard" "$RY" migrate >"$RY_WORKDIR/migrate.log" 2>&1 ||
		fail "migrate failed: $(tail -5 "$RY_WORKDIR/migrate.log")"
	# The replica: a base backup with standby.signal and primary_conninfo.
	mkdir -p "$B/sock"
	chmod 755 "$B" "$B/sock"
	touch "$B/log"
	chown "$RY_PGUSER": "$B" "$B/sock" "$B/log"
	ry__as_pg "$RY_PG_BINDIR/pg_basebackup" -D "$B/data" -R -X stream -c fast -d "host=$A/sock user=$RY_PGUSER" \
		>"$B/basebackup.log" 2>&1 || fail "pg_basebackup failed: $(cat "$B/basebackup.log")"
	echo "unix_socket_directories = '$B/sock'" >>"$B/data/postgresql.conf"
	ry_cluster_ctl "$B" start || fail "the replica did not start: $(tail -5 "$B/log")"
	[[ $("$RY_PG_BINDIR/psql" -XAtq -d "host=$B/sock user=$RY_PGUSER dbname=railyard" -c "SELECT pg_is_in_recovery()") == t ]] ||
		fail "the replica is not a standby"

	export RAILYARD_DB="host=$A/sock,$B/sock port=5432,5432 user=$RY_PGUSER dbname=railyard target_session_attrs=read-write connect_timeout=3"
	mkdir -p "$RAN"
	chmod 1777 "$RAN"
	local id
	id=$(ry_submit "(name) VALUES ('failover')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		SELECT :id, 't' || g, 'sleep 0.' || (3 + g % 5) || ' && touch \"$RAN/\$RAILYARD_TASK_NAME.\$RAILYARD_ATTEMPT.\$\$\"'
		  FROM generate_series(1, 60) g;")
	start_worker f1 --workdir "$RY_WORKDIR/w-f1" --slots 3 --lease 60 --http-listen off
	start_worker f2 --workdir "$RY_WORKDIR/w-f2" --slots 3 --lease 60 --http-listen off

	# Mid-run: some done, some running.
	wait_for 60 bash -c "(( \$(ls '$RAN' | wc -l) >= 12 ))"
	[[ $(sql "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND state = 'running'") -gt 0 ]] ||
		fail "nothing was running at the switch"
	# The switch: the primary stops (a fast shutdown sends its last WAL to
	# the standby first), the replica is promoted.
	ry_cluster_ctl "$A" stop -m fast || fail "the primary did not stop"
	ry_cluster_ctl "$B" promote || fail "the replica was not promoted: $(tail -5 "$B/log")"

	wait_pipeline 180 "$id" succeeded >/dev/null
	[[ $(sql "SELECT pg_is_in_recovery()") == f ]] || fail "the checks do not run on the new primary"
	# Every result is on the new primary: one attempt per task, succeeded.
	local bad
	bad=$(sql "SELECT string_agg(t.name || ':' || t.attempt || ':' || coalesce(h.n::text, '0'), ' ')
	             FROM railyard.tasks t
	             LEFT JOIN (SELECT task_id, count(*) n, bool_and(outcome = 'succeeded') ok
	                          FROM railyard.task_attempts GROUP BY task_id) h ON h.task_id = t.id
	            WHERE t.pipeline_id = $id AND (t.attempt <> 1 OR h.n IS DISTINCT FROM 1 OR NOT h.ok)")
	[[ -z $bad ]] || fail "tasks without exactly one succeeded attempt (name:attempt:attempt rows): $bad"
	# And each ran to its end exactly once.
	local runs
	runs=$(ls "$RAN" | cut -d. -f1 | sort | uniq -c | awk '$1 != 1 { print $2 "x" $1 }' | tr '\n' ' ')
	[[ -z $runs ]] || fail "tasks that completed more than once: $runs"
	[[ $(ls "$RAN" | wc -l) == 60 ]] || fail "$(ls "$RAN" | wc -l) executions completed, expected 60"
	grep -q "lost the database connection" "$RY_WORKDIR/worker-f1.log" ||
		fail "worker f1 never saw the switch"
	grep -q "reconnected to the database" "$RY_WORKDIR/worker-f1.log" ||
		fail "worker f1 did not reconnect"
	[[ $(sql "SELECT count(*) FROM railyard.agents WHERE state = 'online'") == 2 ]] ||
		fail "both agents should be online on the new primary"
}

run_scenario "a primary switch mid-run: every result on the new primary, nothing run twice" primary_then_replica_promoted
