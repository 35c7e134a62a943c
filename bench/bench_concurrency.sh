# shellcheck shell=bash
#
# 2. Concurrency: N tasks of `sleep S` submitted at once (one transaction)
# to W workers with N slots in total.  A sampler records, every ~0.25 s,
# tasks running in the database, task processes in the process table (the
# workers' direct children: one /bin/sh per task), each worker's RSS and the
# connections railyard holds.  Baseline: bench/spawn starting N copies of
# the same command at once (the machine's own time to have them all
# running, and how many it had alive at once).
#
# Where the machine itself cannot start N processes within S seconds (the
# first ones end before the last begin: the baseline's peak is below N),
# the peak says more about the machine than about railyard, so a second
# run uses a sleep long enough for this machine (2.5 x the baseline's start
# time) and reports its peak on its own row.

bench_title_concurrency() {
	echo "2. Concurrency"
}

# conc_sample DB OUT PIDS: appends one sample line: epoch, db_running,
# db_succeeded, connections, processes, max_rss_kb, sum_rss_kb.
conc_sample() {
	local db=$1 out=$2 pids=$3 t dbline procs rss
	procs=$(ps -e -o ppid= | awk -v p=",$pids," 'index(p, "," $1 ",") { n++ } END { print n + 0 }')
	# Listing thousands of processes takes a while: the time is when the
	# list was complete, so "all seen by" errs late, never early.
	t=$(now)
	dbline=$(q "$db" "SELECT count(*) FILTER (WHERE state = 'running') || ' ' ||
		count(*) FILTER (WHERE state = 'succeeded') || ' ' ||
		(SELECT count(*) FROM pg_stat_activity WHERE application_name = 'railyard')
		FROM railyard.tasks" 2>/dev/null) || return 0
	rss=$(ps -o rss= -p "$pids" | awk '{ s += $1; if ($1 > m) m = $1 } END { print m + 0, s + 0 }')
	echo "$t $dbline $procs $rss" >>"$out"
}

# conc_sampler DB OUT PIDS N: samples until N tasks succeeded (or killed).
conc_sampler() {
	while :; do
		conc_sample "$1" "$2" "$3"
		[[ $(tail -n 1 "$2" | cut -d' ' -f3) -ge $4 ]] && break
		nap 0.2
	done
}

# conc_run TAG N WORKERS DUR: one run.  Sets CONC_OK (1 when every task
# succeeded), CONC_WHY, and the figures CONC_PEAK_PROC, CONC_PEAK_DB,
# CONC_STATS_PEAK, CONC_T_ALL (last process start after the COMMIT, s),
# CONC_T_SEEN (when the process table first showed all N, or ""),
# CONC_RSS_KB (largest worker RSS), CONC_CONNS (most connections at once).
conc_run() {
	local tag=$1 n=$2 workers=$3 dur=$4
	local per=$((n / workers)) db=bench_$tag i pids=() names=() out=$TMP/$tag.samples
	CONC_OK=0 CONC_WHY=""
	new_db "$db"
	for ((i = 1; i <= workers; i++)); do
		start_worker "$db" "$tag$i" --slots "$per"
		pids+=("$LAST_PID")
		names+=("$tag$i")
	done
	local plist
	plist=$(IFS=,; echo "${pids[*]}")
	if ! wait_for 60 agents_online "$db" "$plist" "${names[@]}"; then
		stop_workers "${pids[@]}"
		CONC_WHY="the workers did not come online within 60 s (worker logs: KEEP_TMP=1)"
		drop_db "$db"
		return
	fi
	: >"$out"
	submit_flat "$db" $(((n + 99) / 100)) $((n < 100 ? n : 100)) "sleep $dur" 8 "$tag"
	local t_sub
	t_sub=$(now)
	conc_sampler "$db" "$out" "$plist" "$n" &
	local sampler=$!
	BG_PIDS+=("$sampler")
	local ok=1
	wait_for $((dur * 4 + 120)) at_least_succeeded "$db" "$n" "${pids[@]}" || ok=0
	wait_exit 10 "$sampler" || kill "$sampler" 2>/dev/null
	stop_workers "${pids[@]}"

	local done_n
	done_n=$(count_state "$db" succeeded)
	if ((!ok)) || [[ $done_n != "$n" ]]; then
		CONC_WHY="only $done_n of $n tasks succeeded (worker logs: KEEP_TMP=1)"
		drop_db "$db"
		return
	fi
	read -r CONC_PEAK_DB CONC_PEAK_PROC CONC_RSS_KB CONC_CONNS CONC_T_SEEN < <(awk -v n="$n" -v t0="$t_sub" '
		{ if ($2 > pdb) pdb = $2; if ($5 > pp) pp = $5; if ($6 > rss) rss = $6
		  if ($4 > c) c = $4; if ($5 >= n && first == "") first = $1 - t0 }
		END { printf "%d %d %d %d %s\n", pdb, pp, rss, c, (first == "" ? "-" : first) }' "$out")
	[[ $CONC_T_SEEN == - ]] && CONC_T_SEEN=""
	# Exact: the last process start the workers recorded, after the commit.
	CONC_T_ALL=$(q "$db" "SELECT extract(epoch FROM max(started_at)) - $t_sub FROM railyard.task_attempts")
	local f v
	CONC_STATS_PEAK=0
	for f in "${names[@]}"; do
		v=$(jget "$TMP/stats/$f.json" peak_running)
		CONC_STATS_PEAK=$((CONC_STATS_PEAK + ${v:-0}))
	done
	drop_db "$db"
	CONC_OK=1
	say "$tag: peak running: db $CONC_PEAK_DB, processes $CONC_PEAK_PROC; all started $(fmt "$CONC_T_ALL" 2) s after commit; largest worker RSS $((CONC_RSS_KB / 1024)) MB; $CONC_CONNS connections"
}

bench_concurrency() {
	local n=2000 workers=4 dur=20
	if ((QUICK)); then
		n=400 workers=2 dur=8
	fi
	local per=$((n / workers))
	meta concurrency params "$n tasks of 'sleep $dur' (mem_mb 8) in one transaction; $workers workers x $per slots"

	# Baseline first: how long N spawns take on this machine right now.
	mkdir -p "$TMP/work/spawn"
	local base base_s base_peak
	base=$(cd "$TMP/work/spawn" && "$SPAWN" -n "$n" -k -c "sleep $dur")
	base_s=$(sed -n 's/.*spawn_s=\([0-9.]*\).*/\1/p' <<<"$base")
	base_peak=$(sed -n 's/.*peak=\([0-9]*\).*/\1/p' <<<"$base")
	say "baseline: $n x 'sleep $dur' started in ${base_s:-?} s by spawn, peak ${base_peak:-?}"

	conc_run conc "$n" "$workers" "$dur"
	if ((!CONC_OK)); then
		invalid concurrency "peak running tasks" "$CONC_WHY"
		return
	fi
	local seen="never all at once"
	[[ -n $CONC_T_SEEN ]] && seen="$(fmt "$CONC_T_SEEN" 2) s"
	row concurrency "peak running tasks, process table" "tasks" "$CONC_PEAK_PROC" "${base_peak:-}" \
		"$(ratio "$CONC_PEAK_PROC" "$base_peak" 3)" "$n" "$(verdict "$CONC_PEAK_PROC" ">=" "$n")" \
		"baseline: most alive at once when spawn started all $n at once"
	row concurrency "peak running tasks, database" "tasks" "$CONC_PEAK_DB" "" "" "$n" \
		"$(verdict "$CONC_PEAK_DB" ">=" "$n")" \
		"sampled count of tasks in state running; the workers' own peaks (--stats) add up to $CONC_STATS_PEAK"
	row concurrency "submission to all running" "s" "$(fmt "$CONC_T_ALL" 2)" "$(fmt "$base_s" 2)" \
		"$(ratio "$CONC_T_ALL" "$base_s" 2)" "" "" \
		"last process start the workers recorded, counted from the submitting COMMIT (the process table first showed all: $seen); baseline: spawn starting $n at once"
	row concurrency "worker RSS, largest, $per running" "MB" "$(calc "$CONC_RSS_KB / 1024" %.1f)" "" "" \
		"<= 20" "$(verdict "$(calc "$CONC_RSS_KB / 1024")" "<=" 20)"
	row concurrency "database connections per worker" "connections" \
		"$(calc "$CONC_CONNS / $workers" %.2f)" "" "" "<= 2" "$(verdict "$(calc "$CONC_CONNS / $workers")" "<=" 2)" \
		"most connections railyard held at once: $CONC_CONNS for $workers workers"

	# Machine-limited: the same again with tasks that outlast the start-up.
	if [[ -n $base_peak ]] && ((base_peak < n && CONC_PEAK_PROC < n)); then
		local long
		long=$(calc "2.5 * $base_s + 1" %.0f)
		say "this machine cannot have $n processes alive with 'sleep $dur' (spawn peaked at $base_peak): again with 'sleep $long'"
		conc_run conclong "$n" "$workers" "$long"
		if ((!CONC_OK)); then
			invalid concurrency "peak running tasks, sleep $long" "$CONC_WHY"
			return
		fi
		row concurrency "peak running tasks, process table, sleep $long" "tasks" "$CONC_PEAK_PROC" "" "" \
			"$n" "$(verdict "$CONC_PEAK_PROC" ">=" "$n")" \
			"starting $n processes took spawn $(fmt "$base_s" 1) s here, longer than 'sleep $dur' lasts; railyard started all $(fmt "$CONC_T_ALL" 1) s after the COMMIT; database peak $CONC_PEAK_DB, worker RSS $(calc "$CONC_RSS_KB / 1024" %.1f) MB, $CONC_CONNS connections"
	fi
}
