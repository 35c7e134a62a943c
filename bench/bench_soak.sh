# shellcheck shell=bash
#
# 10. Soak: does railyard stay as fast once the database holds a farm's
# history?  N dry-run tasks (1,000,000; QUICK=1: 40,000) go through the
# system in chunks of pipelines of 100 tasks, with every attempt and audit
# row kept:
#   - start: the first 3 chunks, on an empty database, each by 2 fresh workers
#     (--dry-run --slots 32): claim latency p99 (the workers' own --stats)
#     and throughput (the chunk's first claim to its last finish, from the
#     audit log);
#   - middle: the chunks in between, by 2 long-running workers, each chunk
#     submitted while the one before is still draining (autovacuum runs as
#     configured by the migrations, nothing else helps);
#   - end: the last 3 chunks, measured as the first were, on the full
#     database (start and end: the medians of their 3 chunks);
#   - table and index sizes at the end;
#   - railyard.prune(): everything but the end chunks pruned in batches
#     (timed), a plain VACUUM, then one more chunk: the tables must not
#     grow past their size before the prune (the freed space is reused).
# Not part of the default `make bench` (FULL: 7 minutes on a fast 2-core VM,
# 30 or more on a slow one): run it
# with `make bench BENCH=soak`, `bench/run.sh build/rel soak`, or SOAK=1.

bench_title_soak() {
	echo "10. Soak"
}

# soak_chunk DB TAG CHUNK: submits one chunk of CHUNK tasks in pipelines
# of 100 named TAG-1...; prints the first and last pipeline id.
soak_chunk() {
	submit_flat "$1" $(($3 / 100)) 100 true 8 "$2"
	q "$1" "SELECT min(id) || ' ' || max(id) FROM railyard.pipelines WHERE name LIKE '$2-%'"
}

# soak_rate DB FIRST LAST N: tasks/s of pipelines FIRST..LAST from their
# first claim to their last finish; "" unless all N succeeded with their
# history and audit rows.
soak_rate() {
	local db=$1 a=$2 b=$3 n=$4 ok
	ok=$(q "$db" "SELECT (SELECT count(*) FROM railyard.tasks
			WHERE pipeline_id BETWEEN $a AND $b AND state = 'succeeded') = $n
		AND (SELECT count(*) FROM railyard.task_attempts
			WHERE pipeline_id BETWEEN $a AND $b AND outcome = 'succeeded') = $n
		AND (SELECT count(*) FROM railyard.audit_log
			WHERE pipeline_id BETWEEN $a AND $b AND object = 'task' AND event = 'finish') = $n")
	[[ $ok == t ]] || return 0
	q "$db" "SELECT round(($n / extract(epoch FROM max(at) FILTER (WHERE event = 'finish')
		- min(at) FILTER (WHERE event = 'claim')))::numeric, 1)
		FROM railyard.audit_log WHERE pipeline_id BETWEEN $a AND $b AND object = 'task'"
}

# soak_done DB FIRST LAST N [PID...]: whether N tasks of pipelines
# FIRST..LAST succeeded; 2 when none of the workers is alive.
soak_done() {
	local db=$1 a=$2 b=$3 n=$4 pid
	shift 4
	poll "$db" "SELECT count(*) FROM railyard.tasks
		WHERE pipeline_id BETWEEN $a AND $b AND state = 'succeeded'"
	[[ $POLL_ANSWER =~ ^[0-9]+$ ]] && ((POLL_ANSWER >= n)) && return 0
	for pid in "$@"; do
		alive "$pid" && return 1
	done
	return 2
}

# soak_statistics DB: apply_statistics, as a farm's quiet moment would;
# says how many when there were any.
soak_statistics() {
	apply_statistics "$1"
	((${STATS_APPLIED:-0} > 0)) && say "applied $STATS_APPLIED runs queued for the statistics"
	return 0
}

# soak_measured DB TAG CHUNK: one chunk by 2 fresh workers; sets SOAK_RATE
# and SOAK_P99 (the larger of the two workers' claim p99), "" on failure.
# The statistics' queue is applied first, so that start and end compare
# the database's size, not how many runs the chunk before left queued.
soak_measured() {
	local db=$1 tag=$2 chunk=$3 ids a b w1 w2 p1 p2
	SOAK_RATE="" SOAK_P99=""
	soak_statistics "$db"
	ids=$(soak_chunk "$db" "$tag" "$chunk")
	read -r a b <<<"$ids"
	analyze_db "$db"
	start_worker "$db" "$tag-a" --dry-run --slots 32
	w1=$LAST_PID
	start_worker "$db" "$tag-b" --dry-run --slots 32
	w2=$LAST_PID
	WAIT_EVERY=0.5 wait_for 1800 soak_done "$db" "$a" "$b" "$chunk" "$w1" "$w2"
	stop_workers "$w1" "$w2"
	SOAK_RATE=$(soak_rate "$db" "$a" "$b" "$chunk")
	p1=$(jget "$TMP/stats/$tag-a.json" claim_ms_p99)
	p2=$(jget "$TMP/stats/$tag-b.json" claim_ms_p99)
	[[ -n $p1 && -n $p2 ]] && SOAK_P99=$(printf '%s\n' "$p1" "$p2" | sort -g | tail -n 1)
}

# soak_measured3 DB TAG CHUNK: soak_measured three times (TAG-1..3); sets
# SOAK_RATE and SOAK_P99 to the medians ("" when a chunk failed) and
# SOAK_RUNS to the three "rate/p99" pairs.  A chunk takes a second or two
# at the start's rate: one alone is noise.
soak_measured3() {
	local db=$1 tag=$2 chunk=$3 rates=() p99s=() k
	SOAK_RUNS=""
	for k in 1 2 3; do
		soak_measured "$db" "$tag-$k" "$chunk"
		[[ -n $SOAK_RATE && -n $SOAK_P99 ]] || {
			SOAK_RATE="" SOAK_P99=""
			return
		}
		rates+=("$SOAK_RATE") p99s+=("$SOAK_P99")
		SOAK_RUNS+="${SOAK_RUNS:+ }$SOAK_RATE/$(fmt "$SOAK_P99" 2)"
	done
	SOAK_RATE=$(median "${rates[@]}") SOAK_P99=$(median "${p99s[@]}")
}

# soak_sizes DB: "heap index" bytes of railyard's tables that grow with
# history, summed.
soak_sizes() {
	q "$1" "SELECT sum(pg_table_size(c.oid)) || ' ' || sum(pg_indexes_size(c.oid))
		FROM pg_class c WHERE c.relnamespace = 'railyard'::regnamespace AND c.relkind = 'r'
		  AND c.relname IN ('pipelines', 'tasks', 'edges', 'task_attempts', 'audit_log',
		                    'run_history', 'pipeline_history', 'duration_stats')"
}

bench_soak() {
	local n=1000000 chunk=10000
	((QUICK)) && n=40000 chunk=5000
	local nchunks=$((n / chunk)) db=bench_soak i ids a b w1 w2 mid_rate
	mkdir -p "$TMP/logs"
	meta soak params "$n dry-run tasks in $nchunks chunks of $chunk (pipelines of 100), history and audit kept; 3 start and 3 end chunks each by 2 fresh workers --dry-run --slots 32 (medians), the rest by 2 long-running ones"
	new_db "$db"

	local t0
	t0=$(now)
	soak_measured3 "$db" soak-start "$chunk"
	local r0=$SOAK_RATE p0=$SOAK_P99 runs0=$SOAK_RUNS
	say "start: ${r0:-FAILED} tasks/s, claim p99 $(fmt "${p0:-}" 2) ms (median of: $runs0)"

	# The middle: long-running workers, the next chunk submitted while the
	# previous one drains, so they never run dry.
	start_worker "$db" soak-mid-a --dry-run --slots 32
	w1=$LAST_PID
	start_worker "$db" soak-mid-b --dry-run --slots 32
	w2=$LAST_PID
	local ok=1 first_mid="" last_mid=""
	for ((i = 4; i < nchunks - 2; i++)); do
		ids=$(soak_chunk "$db" "soak-$i" "$chunk")
		read -r a b <<<"$ids"
		[[ -n $first_mid ]] || first_mid=$a
		last_mid=$b
		if ((i == 4)); then
			analyze_db "$db"
		fi
		# wait until the chunk is half done before submitting the next
		WAIT_EVERY=0.5 wait_for 1800 soak_done "$db" "$a" "$b" $((chunk / 2)) "$w1" "$w2" || {
			ok=0
			break
		}
		if ((i % 10 == 0)); then
			say "chunk $i/$nchunks submitted; $(q "$db" "SELECT count(*) FROM railyard.tasks WHERE state = 'succeeded'") tasks done"
		fi
	done
	local nmid=$(((nchunks - 6) * chunk))
	if ((ok && nmid > 0)); then
		WAIT_EVERY=0.5 wait_for 1800 soak_done "$db" "$first_mid" "$last_mid" "$nmid" "$w1" "$w2" || ok=0
		mid_rate=$(soak_rate "$db" "$first_mid" "$last_mid" "$nmid")
	fi
	stop_workers "$w1" "$w2"
	local mid_queued
	mid_queued=$(q "$db" "SELECT count(*) FROM railyard.observation_pending")
	say "middle: ${mid_rate:-FAILED} tasks/s over $nmid tasks; $mid_queued runs left queued for the statistics"

	soak_measured3 "$db" soak-end "$chunk"
	local r1=$SOAK_RATE p1=$SOAK_P99 runs1=$SOAK_RUNS
	say "end: ${r1:-FAILED} tasks/s, claim p99 $(fmt "${p1:-}" 2) ms (median of: $runs1)"
	local total
	total=$(q "$db" "SELECT count(*) FROM railyard.task_attempts")
	soak_statistics "$db"	# every run in the statistics before they are sized
	local sizes heap idx
	sizes=$(soak_sizes "$db")
	read -r heap idx <<<"$sizes"

	if [[ -n $r0 && -n $r1 ]]; then
		row soak "throughput, end vs start" "tasks/s" "$(fmt "$r1" 0)" "$(fmt "$r0" 0)" \
			"$(ratio "$r1" "$r0" 2)" ">= 0.90" "$(verdict "$(ratio "$r1" "$r0" 4)" ">=" 0.9)" \
			"median of 3 chunks of $chunk, each by 2 fresh workers, with $total attempts stored (railyard: $runs1) vs on the empty database (baseline: $runs0; tasks/s / claim p99 ms)"
	else
		invalid soak "throughput, end vs start" "a measured chunk did not complete with history and audit rows (KEEP_TMP=1 keeps the worker logs)"
	fi
	if [[ -n $p0 && -n $p1 ]]; then
		row soak "claim p99, end vs start" "ms" "$(fmt "$p1" 2)" "$(fmt "$p0" 2)" \
			"$(ratio "$p1" "$p0" 2)" "<= 1.10" "$(verdict "$(ratio "$p1" "$p0" 4)" "<=" 1.1)" \
			"the larger of the 2 workers' --stats claim p99 (candidates, placement, lease, COMMIT)"
	fi
	if [[ -n $mid_rate ]]; then
		row soak "throughput, the middle" "tasks/s" "$(fmt "$mid_rate" 0)" "$(fmt "$r0" 0)" \
			"$(ratio "$mid_rate" "$r0" 2)" "" "" \
			"$nmid tasks by 2 long-running workers, chunks submitted while they ran; baseline: the start chunks"
	fi
	if [[ -n $mid_rate && -n $mid_queued ]]; then
		row soak "runs queued for the statistics after the middle" "runs" "$mid_queued" "$nmid" \
			"$(ratio "$mid_queued" "$nmid" 2)" "" "" \
			"what the workers left for later while the middle kept them and the server busy; applied before the end chunks (observe_pending, untimed); baseline: the middle's runs"
	fi
	row soak "tables, end" "MB" "$(calc "$heap / 1048576" %.0f)" "" "" "" "" \
		"pipelines, tasks, edges, task_attempts, audit_log, run_history, pipeline_history, duration_stats: $(calc "$heap / $total" %.0f) bytes per attempt"
	row soak "indexes, end" "MB" "$(calc "$idx / 1048576" %.0f)" "" "" "" "" \
		"$(calc "$idx / $total" %.0f) bytes per attempt"

	# Retention: prune all but the end chunks, VACUUM, one more chunk.
	local pt0 pruned=0 out batches=0 done_flag=f cut
	cut=$(q "$db" "SELECT min(finished_at) FROM railyard.pipelines WHERE name LIKE 'soak-end-%'")
	pt0=$(now)
	while [[ $done_flag != t ]]; do
		out=$(q "$db" "SELECT pipelines, done FROM railyard.prune('$cut', 500)") || break
		pruned=$((pruned + ${out%%|*}))
		done_flag=${out##*|}
		batches=$((batches + 1))
	done
	local prune_s
	prune_s=$(calc "$(now) - $pt0" %.1f)
	q "$db" "VACUUM (ANALYZE) railyard.pipelines, railyard.tasks, railyard.edges, railyard.task_attempts,
		railyard.audit_log, railyard.run_history, railyard.pipeline_history" >/dev/null
	local left
	left=$(q "$db" "SELECT count(*) FROM railyard.task_attempts")
	soak_measured "$db" soak-after "$chunk"
	local r2=$SOAK_RATE heap2 idx2
	read -r heap2 idx2 <<<"$(soak_sizes "$db")"
	say "prune: $pruned pipelines in $batches calls, $prune_s s; $left attempts left; after one more chunk ${r2:-FAILED} tasks/s"
	if [[ $done_flag == t ]]; then
		row soak "prune, all but the end chunks" "s" "$prune_s" "" "" "" "" \
			"railyard.prune(before, 500) called $batches times: $pruned pipelines with their tasks, edges, attempts and audit rows; $left attempts left"
		row soak "tables + indexes after prune, VACUUM and one more chunk" "MB" \
			"$(calc "($heap2 + $idx2) / 1048576" %.0f)" "$(calc "($heap + $idx) / 1048576" %.0f)" \
			"$(ratio "$((heap2 + idx2))" "$((heap + idx))" 2)" "<= 1" \
			"$(verdict "$(ratio "$((heap2 + idx2))" "$((heap + idx))" 4)" "<=" 1)" \
			"the chunk reuses the space the prune freed (plain VACUUM, no rewrite); baseline: the size before the prune"
	else
		invalid soak "prune" "railyard.prune did not finish: $out"
	fi
	if [[ -n $r2 && -n $r0 ]]; then
		row soak "throughput after prune" "tasks/s" "$(fmt "$r2" 0)" "$(fmt "$r0" 0)" \
			"$(ratio "$r2" "$r0" 2)" "" "" "the chunk above; baseline: the start chunks"
	fi
	meta soak total_s "$(calc "$(now) - $t0" %.0f)"
	drop_db "$db"
}
