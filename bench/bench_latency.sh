# shellcheck shell=bash
#
# 5. Decision latency: R ready tasks across P pipelines (varied priorities;
# a fifth need labels this agent lacks, gpu or macos, so the query must skip
# them), 100 registered agents with varied labels, and one real worker
# (--slots 1 --dry-run --labels docker) claiming one task per claim.  The
# worker times each claim itself (candidates query + placement in C +
# lease + COMMIT, as it sees them) and writes p50/p99/max with --stats; it
# is stopped after C claims, so the ready queue never drops below R.  Run
# twice: first right after the bulk submission (no planner statistics for
# the new rows yet), then after ANALYZE (the steady state of a live farm;
# the goal is for this one).
# Baseline: pgbench, one client, C single-row SKIP LOCKED claim-and-update
# transactions on a plain table with R ready rows, per-transaction
# latencies from its --log.

bench_title_latency() {
	echo "5. Decision latency"
}

# lat_phase DB NAME TARGET: one worker claiming until TARGET tasks (all
# phases together) succeeded; its --stats in LAT_N, LAT_P50, LAT_P99, LAT_MAX.
lat_phase() {
	local db=$1 name=$2 target=$3 ok=1 st=$TMP/stats/$2.json
	start_worker "$db" "$name" --slots 1 --dry-run --labels docker
	local wpid=$LAST_PID
	wait_for 600 at_least_succeeded "$db" "$target" "$wpid" || ok=0
	stop_workers "$wpid"
	LAT_N=$(jget "$st" claims)
	LAT_P50=$(jget "$st" claim_ms_p50) LAT_P99=$(jget "$st" claim_ms_p99) LAT_MAX=$(jget "$st" claim_ms_max)
	((ok)) && [[ -n $LAT_N ]]
}

bench_latency() {
	local ready=10000 claims=1000 cold=300 pipes=200
	if ((QUICK)); then
		ready=2000 claims=300 cold=100 pipes=40
	fi
	local db=bench_lat per=$(((ready + cold + claims + claims / 2) / pipes + 1))
	local total=$((per * pipes))
	meta latency params "$total ready tasks in $pipes pipelines (at least $ready ready throughout), 100 agents, one worker --slots 1 --dry-run --labels docker: $cold claims before ANALYZE, then $claims after; baseline pgbench -c 1 on a $ready-row queue"
	new_db "$db"
	q "$db" "ALTER TABLE railyard.tasks SET (autovacuum_enabled = false)" >/dev/null
	q "$db" "INSERT INTO railyard.agents (name, hostname, os, arch, cores, mem_mb, disk_mb,
			labels, slots, state, lease_s, lease_until, last_seen)
		SELECT 'farm-' || lpad(g::text, 3, '0'), 'host-' || g,
		       CASE WHEN g % 10 = 0 THEN 'darwin' ELSE 'linux' END,
		       CASE WHEN g % 4 = 0 THEN 'arm64' ELSE 'x86_64' END,
		       8 * (1 + g % 8), 16384 * (1 + g % 4), 500000,
		       ARRAY['linux', 'x86_64'] || string_to_array((ARRAY['docker,big-mem', 'docker,ui-tests',
		           'gpu,docker', 'macos,xcode', 'docker,arm', 'java,docker', 'node,chrome',
		           'docker,k8s'])[1 + g % 8], ','),
		       4 * (1 + g % 8), 'online', 86400, now() + interval '1 day', now()
		  FROM generate_series(1, 100) g" >/dev/null
	q "$db" "SET jit = off;
		BEGIN;
		WITH p AS (INSERT INTO railyard.pipelines (name, team, priority)
			SELECT 'lat-' || g, 'team' || (g % 7), (g * 37) % 11 - 5
			  FROM generate_series(1, $pipes) g RETURNING id)
		INSERT INTO railyard.tasks (pipeline_id, name, kind, command, mem_mb, timeout_s, requires, priority)
		SELECT p.id, 'task-' || i, 'build', 'true', 8, 600,
		       (ARRAY['{}', '{}', '{docker}', '{linux}', '{gpu}', '{}', '{docker,linux}',
		              '{macos}', '{}', '{docker}'])[1 + (p.id * 7 + i) % 10]::text[],
		       CASE WHEN i % 5 = 0 THEN (i % 9) - 4 END
		  FROM p, generate_series(1, $per) i;
		COMMIT;" >/dev/null
	local nready nagents
	nready=$(count_state "$db" ready)
	nagents=$(q "$db" "SELECT count(*) FROM railyard.agents WHERE state = 'online'")
	say "$nready ready tasks, $nagents online agents"

	# Cold: claims right after the bulk submission, before any statistics
	# exist for the new rows (autovacuum is off for the table so it cannot
	# step in halfway).  Warm: after ANALYZE, as autovacuum would have run
	# within a minute on a live farm.  The goal is for the warm figure.
	local left n p50 p99 max c50 c99 cmax cn
	if ! lat_phase "$db" lat-cold "$cold"; then
		invalid latency "claim latency" "the cold-statistics worker made ${LAT_N:-no} claims of $cold (worker log: KEEP_TMP=1)"
		drop_db "$db"
		return
	fi
	cn=$LAT_N c50=$LAT_P50 c99=$LAT_P99 cmax=$LAT_MAX
	analyze_db "$db"
	if ! lat_phase "$db" lat "$((cold + claims))"; then
		invalid latency "claim latency" "the worker made ${LAT_N:-no} claims of $claims (worker log: KEEP_TMP=1)"
		drop_db "$db"
		return
	fi
	n=$LAT_N p50=$LAT_P50 p99=$LAT_P99 max=$LAT_MAX
	left=$(count_state "$db" ready)

	# Baseline: the same server, a plain queue, one client.
	local b50="" b99="" bmax=""
	if q "$db" "CREATE TABLE bench_queue (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			state text NOT NULL DEFAULT 'ready', command text NOT NULL DEFAULT 'true',
			claimed_by text, finished_at timestamptz);
		CREATE INDEX bench_queue_ready ON bench_queue (id) WHERE state = 'ready';
		INSERT INTO bench_queue (state) SELECT 'ready' FROM generate_series(1, $ready + $claims);" >/dev/null &&
		q "$db" "VACUUM ANALYZE bench_queue" >/dev/null; then
		cat >"$TMP/claim1.sql" <<-'EOF'
			UPDATE bench_queue SET state = 'done', claimed_by = 'client' || :client_id, finished_at = now()
			 WHERE id = (SELECT id FROM bench_queue WHERE state = 'ready' ORDER BY id
			              LIMIT 1 FOR UPDATE SKIP LOCKED);
		EOF
		mkdir -p "$TMP/pgbench-lat"
		if (cd "$TMP/pgbench-lat" && "$PG_BINDIR/pgbench" -n -c 1 -t "$claims" -f "$TMP/claim1.sql" \
			--log --log-prefix=lat "$(conninfo "$db")") >"$TMP/pgbench-lat/out" 2>&1; then
			# --log columns: client, transaction, latency in microseconds, ...
			cat "$TMP"/pgbench-lat/lat.* | awk '{ print $3 / 1000 }' >"$TMP/pgbench-lat/ms"
			if [[ $(wc -l <"$TMP/pgbench-lat/ms") == "$claims" ]]; then
				b50=$(pct "$TMP/pgbench-lat/ms" 50)
				b99=$(pct "$TMP/pgbench-lat/ms" 99)
				bmax=$(pct "$TMP/pgbench-lat/ms" 100)
			fi
		fi
	fi
	drop_db "$db"
	say "railyard claims: $n, p50 $(fmt "$p50" 3) ms, p99 $(fmt "$p99" 3) ms, max $(fmt "$max" 3) ms (cold statistics: $cn, p50 $(fmt "$c50" 3), p99 $(fmt "$c99" 3), max $(fmt "$cmax" 3)); pgbench p50 ${b50:-?} p99 ${b99:-?} max ${bmax:-?} ms"
	local note="$n claims by the worker with at least $left tasks still ready and $nagents online agents, statistics fresh; baseline: pgbench single-row SKIP LOCKED claim-and-update, one client"
	row latency "claim latency p50" "ms" "$(fmt "$p50" 2)" "$(fmt "$b50" 2)" "$(ratio "$p50" "$b50" 2)" "" "" "$note"
	row latency "claim latency p99" "ms" "$(fmt "$p99" 2)" "$(fmt "$b99" 2)" "$(ratio "$p99" "$b99" 2)" \
		"< 5" "$(verdict "$p99" "<" 5)"
	row latency "claim latency max" "ms" "$(fmt "$max" 2)" "$(fmt "$bmax" 2)" "$(ratio "$max" "$bmax" 2)" "" ""
	row latency "claim latency p99, no statistics yet" "ms" "$(fmt "$c99" 2)" "$(fmt "$b99" 2)" \
		"$(ratio "$c99" "$b99" 2)" "" "" \
		"the first $cn claims right after the bulk submission, before ANALYZE (p50 $(fmt "$c50" 2) ms, max $(fmt "$cmax" 2) ms)"
}
