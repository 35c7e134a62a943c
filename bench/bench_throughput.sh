# shellcheck shell=bash
#
# 1. Throughput, two figures, each the median of 3 runs with history and
# audit kept at durable settings:
#   - orchestration ceiling: N no-op tasks in P pipelines claimed, placed and
#     completed by 2 workers in --dry-run; baseline: pgbench with a
#     single-row SKIP LOCKED claim-and-update transaction, 2 clients, same
#     server, same number of transactions;
#   - real processes: M tasks of `true` on 2 workers; baseline: bench/spawn
#     running /bin/sh -c true with the same parallelism; again with
#     `--claim-ahead 8` (a slot that frees starts a task already claimed),
#     and that with the workers' workdirs on tmpfs, where a task's two new
#     inodes (workspace, log) cost next to nothing (on this VM's ext4,
#     right after other runs freed many files, they cost most of the
#     worker's CPU: docs/benchmarks.md, "Short tasks and claim ahead").
# Rates come from the audit log (first claim to last finish), so worker
# start-up and shutdown are not counted; the harness polls for completion
# only twice a second, with one psql, to stay out of the way.  The tasks are
# submitted in bulk, then ANALYZEd (autovacuum would have done so on a live
# farm; without statistics for the new rows the claim query sorts every
# ready row: see the latency benchmark's "no statistics yet" row).

bench_title_throughput() {
	echo "1. Throughput"
}

# tp_rate DB N: tasks/s from the first claim to the last finish, or "" when
# not all N tasks succeeded with their history and audit rows.
tp_rate() {
	local db=$1 n=$2 ok
	ok=$(q "$db" "SELECT (SELECT count(*) FROM railyard.tasks WHERE state = 'succeeded') = $n
		AND (SELECT count(*) FROM railyard.task_attempts WHERE outcome = 'succeeded') = $n
		AND (SELECT count(*) FROM railyard.audit_log WHERE object = 'task' AND event = 'finish') = $n")
	[[ $ok == t ]] || return 0
	q "$db" "SELECT round(($n / extract(epoch FROM max(at) FILTER (WHERE event = 'finish')
		- min(at) FILTER (WHERE event = 'claim')))::numeric, 1)
		FROM railyard.audit_log WHERE object = 'task'"
}

# pgbench_claim DB N CLIENTS: tps of single-row claim-and-update
# transactions on a plain queue table; "" when not all N were done.
pgbench_claim() {
	local db=$1 n=$2 c=$3 out tps ndone
	q "$db" "CREATE TABLE bench_queue (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			state text NOT NULL DEFAULT 'ready', command text NOT NULL DEFAULT 'true',
			claimed_by text, finished_at timestamptz);
		CREATE INDEX bench_queue_ready ON bench_queue (id) WHERE state = 'ready';
		INSERT INTO bench_queue (state) SELECT 'ready' FROM generate_series(1, $n + $n / 10 + 100);" \
		>/dev/null && q "$db" "VACUUM ANALYZE bench_queue" >/dev/null || return 0
	cat >"$TMP/claim.sql" <<-'EOF'
		UPDATE bench_queue SET state = 'done', claimed_by = 'client' || :client_id, finished_at = now()
		 WHERE id = (SELECT id FROM bench_queue WHERE state = 'ready' ORDER BY id
		              LIMIT 1 FOR UPDATE SKIP LOCKED);
	EOF
	out=$("$PG_BINDIR/pgbench" -n -c "$c" -j "$c" -t $((n / c)) -f "$TMP/claim.sql" \
		"$(conninfo "$db")" 2>&1)
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n 1)
	ndone=$(q "$db" "SELECT count(*) FROM bench_queue WHERE state = 'done'")
	if [[ -z $tps || $ndone != $(((n / c) * c)) ]]; then
		echo "pgbench: $out" >>"$TMP/logs/pgbench.log"
		return 0
	fi
	fmt "$tps" 1
}

# peers_install: Graphile Worker and pg-boss at the versions pinned by
# bench/peers/package-lock.json, installed with `npm ci` into TMP/peers
# (npm's cache makes a rerun work offline).  Sets PEERS_DIR, or says in one
# line why the peers are skipped and leaves it empty.
PEERS_DIR=""
peers_install() {
	PEERS_DIR=""
	if [[ ${BENCH_PEERS:-1} == 0 ]]; then
		say "peers skipped: BENCH_PEERS=0"
		return 0
	fi
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		say "peers skipped: node or npm is not installed (Graphile Worker and pg-boss need Node.js >= 20)"
		return 0
	fi
	mkdir -p "$TMP/peers" "$TMP/logs"
	cp "$ROOT/bench/peers/package.json" "$ROOT/bench/peers/package-lock.json" \
		"$ROOT/bench/peers/peer.js" "$TMP/peers/" || return 0
	if ! (cd "$TMP/peers" && timeout 600 npm ci --ignore-scripts --no-audit --no-fund \
		--prefer-offline) >"$TMP/logs/npm.log" 2>&1; then
		say "peers skipped: npm ci of graphile-worker 0.17.3 and pg-boss 10.4.2 failed ($(tail -n 1 "$TMP/logs/npm.log"))"
		return 0
	fi
	PEERS_DIR=$TMP/peers
}

# peer_rate QUEUE N: jobs/s of N no-op jobs through graphile or pgboss in a
# fresh database of the same server; "" when the run failed (its log is in
# TMP/logs/peer-QUEUE.log).
peer_rate() {
	local queue=$1 n=$2 db=bench_peer_$1 out
	[[ -n $PEERS_DIR ]] || return 0
	q postgres "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
	q postgres "CREATE DATABASE $db" >/dev/null || return 0
	out=$(cd "$PEERS_DIR" && timeout 900 node peer.js "$queue" "$PGSOCK" "$db" "$n" 2>>"$TMP/logs/peer-$queue.log")
	drop_db "$db"
	echo "$out" >>"$TMP/logs/peer-$queue.log"
	sed -n 's/^rate=\([0-9.]*\) .*/\1/p' <<<"$out"
}

# throughput_peer_row NAME SETTINGS RATE...: railyard's median against one
# peer's (the rates array of railyard is in the caller's scope).
throughput_peer_row() {
	local name=$1 settings=$2 prate r
	shift 2
	if ((${#rates[@]} == runs && $# == runs)); then
		r=$(median "${rates[@]}")
		prate=$(median "$@")
		row throughput "orchestration vs $name, $n jobs" "tasks/s" "$(fmt "$r" 0)" "$(fmt "$prate" 0)" \
			"$(ratio "$r" "$prate" 2)" "" "" "baseline: $name ($settings), runs $*"
	else
		invalid throughput "orchestration vs $name" "fewer than $runs runs completed (TMP/logs/peer-*.log with KEEP_TMP=1)"
	fi
}

bench_throughput() {
	local runs=3 n=20000 pipes=200 slots=32 m=5000 mslots=4
	if ((QUICK)); then
		n=2000 pipes=20 m=300
	fi
	local r db rate arate srate base a b ok rates=() bases=() prates=() arates=() srates=() pbases=()
	local gw gws=() pb pbs=() drains=() lefts=()
	local spawn_n=$((m < 2000 ? m : 2000))	# a rate: 2,000 spawns measure it well
	mkdir -p "$TMP/logs"
	peers_install
	shm_work_dir || say "no tmpfs at /dev/shm: the row with the workdir on tmpfs is skipped"
	meta throughput params "orchestration: $n no-op tasks in $pipes pipelines, 2 workers --dry-run --slots $slots, pgbench 2 clients x $((n / 2)) transactions; real: $m tasks of 'true', 2 workers --slots $mslots vs spawn -j $((2 * mslots)) x $spawn_n; median of $runs runs"

	for ((r = 1; r <= runs; r++)); do
		db=bench_tp_$r
		new_db "$db"
		submit_flat "$db" "$pipes" $((n / pipes)) true 8 tp
		analyze_db "$db"
		start_worker "$db" "tp$r-a" --dry-run --slots "$slots"
		a=$LAST_PID
		start_worker "$db" "tp$r-b" --dry-run --slots "$slots"
		b=$LAST_PID
		ok=1
		WAIT_EVERY=0.5 wait_for 600 at_least_succeeded "$db" "$n" "$a" "$b" || ok=0
		stop_workers "$a" "$b"
		rate=""
		((ok)) && rate=$(tp_rate "$db" "$n")
		apply_statistics "$db"
		base=$(pgbench_claim "$db" "$n" 2)
		say "run $r/$runs orchestration: railyard ${rate:-FAILED} tasks/s, pgbench ${base:-FAILED} tps; statistics: ${STATS_APPLIED:-FAILED} runs applied after it, ${STATS_RATE:-no rate}/s"
		[[ -n $rate ]] && rates+=("$rate")
		[[ -n $STATS_APPLIED ]] && lefts+=("$STATS_APPLIED")
		[[ -n $STATS_RATE ]] && drains+=("$STATS_RATE")
		[[ -n $base ]] && bases+=("$base")
		drop_db "$db"
		if [[ -n $PEERS_DIR ]]; then
			gw=$(peer_rate graphile "$n")
			pb=$(peer_rate pgboss "$n")
			say "run $r/$runs peers: Graphile Worker ${gw:-FAILED} jobs/s, pg-boss ${pb:-FAILED} jobs/s"
			[[ -n $gw ]] && gws+=("$gw")
			[[ -n $pb ]] && pbs+=("$pb")
		fi

		real_rate "tpr$r" "$m" "$mslots"
		rate=$REAL_RATE srate=""
		mkdir -p "$TMP/work/spawn"
		base=$(cd "$TMP/work/spawn" && "$SPAWN" -n "$spawn_n" -j $((2 * mslots)) -c true |
			sed -n 's/.*rate=\([0-9.]*\).*/\1/p')
		real_rate "tpa$r" "$m" "$mslots" --claim-ahead 8
		arate=$REAL_RATE
		if [[ -n $SHM_WORK ]]; then
			WORK_BASE=$SHM_WORK real_rate "tps$r" "$m" "$mslots" --claim-ahead 8
			srate=$REAL_RATE
		fi
		say "run $r/$runs real processes: railyard ${rate:-FAILED} tasks/s (claim ahead: ${arate:-FAILED}; and workdir on tmpfs: ${srate:-FAILED}), spawn ${base:-FAILED}/s"
		[[ -n $rate ]] && prates+=("$rate")
		[[ -n $arate ]] && arates+=("$arate")
		[[ -n $srate ]] && srates+=("$srate")
		[[ -n $base ]] && pbases+=("$base")
	done

	local why="fewer than $runs of $runs runs completed every task with history and audit rows (worker logs: KEEP_TMP=1)"
	if ((${#rates[@]} == runs && ${#bases[@]} == runs)); then
		rate=$(median "${rates[@]}")
		base=$(median "${bases[@]}")
		row throughput "orchestration ceiling, $n tasks" "tasks/s" "$(fmt "$rate" 0)" "$(fmt "$base" 0)" \
			"$(ratio "$rate" "$base" 2)" "" "" \
			"railyard runs ${rates[*]}; baseline: pgbench single-row SKIP LOCKED claim-and-update, runs ${bases[*]}"
	else
		invalid throughput "orchestration ceiling" "$why"
	fi
	if ((${#drains[@]} == runs && ${#rates[@]} == runs)); then
		rate=$(median "${drains[@]}")
		row throughput "statistics applied after the orchestration run" "runs/s" "$(fmt "$rate" 0)" \
			"$(fmt "$(median "${rates[@]}")" 0)" "$(ratio "$rate" "$(median "${rates[@]}")" 2)" "" "" \
			"the runs the workers left queued for the forecast statistics (they yield to claims and completions), applied by one observe_pending() after the run: ${lefts[*]} (the $n tasks' runs and their pipelines'); baseline: the orchestration rate that queued them"
	elif ((${#lefts[@]} == runs)); then
		invalid throughput "statistics applied after the orchestration run" \
			"in some run the workers had applied them all themselves (left: ${lefts[*]})"
	else
		invalid throughput "statistics applied after the orchestration run" "$why"
	fi
	if [[ -n $PEERS_DIR ]]; then
		throughput_peer_row "Graphile Worker 0.17.3" "concurrentJobs 24, maxPoolSize 25, localQueue 500, completeJobBatchDelay 0 (its performance page); jobs deleted when done" "${gws[@]}"
		throughput_peer_row "pg-boss 10.4.2" "10 workers, batchSize 1000, polling 0.5 s; completed jobs kept" "${pbs[@]}"
		local best
		best=$(printf '%s\n' "$(median "${gws[@]}")" "$(median "${pbs[@]}")" | sort -g | tail -n 1)
		if ((${#rates[@]} == runs && ${#gws[@]} == runs && ${#pbs[@]} == runs)); then
			rate=$(median "${rates[@]}")
			row throughput "orchestration vs the best peer, $n tasks" "tasks/s" "$(fmt "$rate" 0)" \
				"$(fmt "$best" 0)" "$(ratio "$rate" "$best" 2)" ">= 1" \
				"$(verdict "$(ratio "$rate" "$best" 4)" ">=" 1)" \
				"baseline: the faster peer's median jobs/s in the same run (same server, same N, interleaved with railyard's runs)"
		else
			invalid throughput "orchestration vs the best peer" "a peer or railyard failed a run (TMP/logs/peer-*.log with KEEP_TMP=1)"
		fi
	fi
	if ((${#prates[@]} == runs && ${#pbases[@]} == runs)); then
		rate=$(median "${prates[@]}")
		base=$(median "${pbases[@]}")
		row throughput "real processes, $m tasks of true" "tasks/s" "$(fmt "$rate" 0)" "$(fmt "$base" 0)" \
			"$(ratio "$rate" "$base" 2)" "" "" \
			"railyard runs ${prates[*]}; baseline: raw posix_spawn of /bin/sh -c true, -j $((2 * mslots)), runs ${pbases[*]}"
	else
		invalid throughput "real processes" "$why"
	fi
	if ((${#arates[@]} == runs && ${#pbases[@]} == runs)); then
		rate=$(median "${arates[@]}")
		base=$(median "${pbases[@]}")
		row throughput "real processes, --claim-ahead 8, $m tasks of true" "tasks/s" "$(fmt "$rate" 0)" \
			"$(fmt "$base" 0)" "$(ratio "$rate" "$base" 2)" "" "" \
			"the same with up to 8 tasks per worker claimed beyond its free slots; railyard runs ${arates[*]}"
	else
		invalid throughput "real processes, --claim-ahead 8" "$why"
	fi
	[[ -n $SHM_WORK ]] || return 0
	if ((${#srates[@]} == runs && ${#pbases[@]} == runs)); then
		rate=$(median "${srates[@]}")
		base=$(median "${pbases[@]}")
		row throughput "real processes, --claim-ahead 8, workdirs on tmpfs, $m tasks of true" "tasks/s" \
			"$(fmt "$rate" 0)" "$(fmt "$base" 0)" "$(ratio "$rate" "$base" 2)" "" "" \
			"the same, each worker's workdir (workspaces, logs) on /dev/shm: what railyard costs where creating a file is cheap; railyard runs ${srates[*]}"
	else
		invalid throughput "real processes, --claim-ahead 8, workdirs on tmpfs" "$why"
	fi
}

# real_rate NAME M SLOTS [WORKER_ARGS...]: sets REAL_RATE to the tasks/s
# of M tasks of `true` on 2 workers of SLOTS slots each (workdirs under
# WORK_BASE when set), first claim to last finish; "" when not every task
# succeeded with its history.  Not in a subshell: the harness must know
# its workers.
real_rate() {
	local name=$1 m=$2 slots=$3 db=bench_$1 mm a b ok=1
	shift 3
	REAL_RATE=""
	new_db "$db"
	submit_flat "$db" $(((m + 99) / 100)) $((m < 100 ? m : 100)) true 8 "$name"
	analyze_db "$db"
	mm=$(q "$db" "SELECT count(*) FROM railyard.tasks")
	start_worker "$db" "$name-a" --slots "$slots" "$@"
	a=$LAST_PID
	start_worker "$db" "$name-b" --slots "$slots" "$@"
	b=$LAST_PID
	WAIT_EVERY=0.5 wait_for 1800 at_least_succeeded "$db" "$mm" "$a" "$b" || ok=0
	stop_workers "$a" "$b"
	((ok)) && REAL_RATE=$(tp_rate "$db" "$mm")
	drop_db "$db"
}
