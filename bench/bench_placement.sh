# shellcheck shell=bash
#
# 10. Placement (issue 7): each figure with a baseline measured in the same
# run.
#   scarce agent: one gpu agent (2 slots) and three plain agents (2 slots
#     each) under a flood of generic 'sleep 2' tasks; GPU tasks ('sleep
#     0.3') arrive one at a time while the flood lasts.  Wait from ready to
#     claimed (p50, p99), how often gpu-box held only generic tasks while a
#     GPU task was ready, and the plain agents' busy share over the flood.
#     Protection on (scarce_fraction 0.25: gpu is 1 of 4 agents) vs off
#     (scarce_fraction 0: nothing is scarce).
#   fair share: teams of weights 3 and 1, each with plenty ready, on two
#     workers of 4 slots; mean |alpha's running share - 75 %| over samples
#     after the first claims while both teams still have ready work, vs the same with both weights 1 (what plain
#     priority order gives).
#   aging: one slot, a stream of priority-10 tasks (three per submission,
#     0.1 s apart) faster than it drains,
#     a priority-0 task: its wait with aging (600 points/min: about 1 s to
#     catch up) vs without (0: it waits for the stream to end).
#   pool cap: three workers, 30 tasks in a pool of capacity 2: the most
#     attempts overlapping at any instant (must equal the capacity).
#   overload: CPU-bound tasks (a shell loop of about 1 s of CPU, timed on
#     this machine first) on slots = 4 x cores, the
#     throttle on (AIMD, the host's real /proc/pressure) vs static slots =
#     cores vs static slots = 4 x cores: makespan and peak PSI cpu some
#     avg10 (sampled every 0.5 s).
#   memory-bound overload: one worker of 8 slots inside a memory cgroup of
#     896 MiB (the "RAM": nothing outside it is at risk), 'memhog 160 1500
#     1500' tasks with no mem_mb: oom kills with the throttle on (AIMD) vs
#     static 8 slots, makespan vs static slots = cores, peak cgroup memory.

bench_title_placement() {
	echo "10. Placement: scarce agents, fair share, aging, pools, AIMD"
}

# pl_overlap DB FILTER: most attempts matching FILTER (over task_attempts h)
# held at once, claim to finish.
pl_overlap() {
	q "$1" "WITH ev AS (SELECT h.claimed_at AS at, 1 AS d FROM railyard.task_attempts h WHERE $2
	                    UNION ALL SELECT h.finished_at, -1 FROM railyard.task_attempts h WHERE $2)
	        SELECT coalesce(max(n), 0) FROM (SELECT sum(d) OVER (ORDER BY at, d ROWS UNBOUNDED PRECEDING) AS n FROM ev) s"
}

pl_submit() {	# DB NAME TEAM PRIORITY COUNT COMMAND [REQUIRES] [POOL]: prints the pipeline id
	local req=${7:-} pool=${8:-NULL}
	[[ -n $req ]] || req='{}'
	q "$1" "WITH p AS (INSERT INTO railyard.pipelines (name, team, priority)
	                   VALUES ('$2', '$3', $4) RETURNING id),
	             t AS (INSERT INTO railyard.tasks (pipeline_id, name, command, requires, pool, mem_mb)
	                   SELECT p.id, 't-' || g, '$6', '$req', $pool, 64
	                     FROM p, generate_series(1, $5) g)
	        SELECT id FROM p"
}

# pl_scarce DB FRACTION: the scarce scenario; sets PL_P50 PL_P99 (ms),
# PL_HELD (GPU-ready instants with gpu-box full of generic work), PL_UTIL (%).
pl_scarce() {
	local db=$1 frac=$2 n=$3 gpus=$4 pids=() flood i gpu ids=() ok=1
	new_db "$db"
	q "$db" "UPDATE railyard.placement_settings SET scarce_fraction = $frac" >/dev/null
	start_worker "$db" "$db-gpu" --slots 2 --labels gpu
	pids+=("$LAST_PID")
	for i in 1 2 3; do
		start_worker "$db" "$db-plain$i" --slots 2
		pids+=("$LAST_PID")
	done
	local pl
	pl=$(IFS=,; echo "${pids[*]}")
	wait_for 60 agents_online "$db" "$pl" "$db-gpu" "$db-plain1" "$db-plain2" "$db-plain3" || ok=0
	flood=$(pl_submit "$db" flood default 0 "$n" 'sleep 2')
	for ((i = 0; i < gpus && ok; i++)); do
		nap 0.7
		gpu=$(pl_submit "$db" "gpu-$i" default 0 1 'sleep 0.3' '{gpu}')
		ids+=("$gpu")
	done
	wait_for 600 at_least_succeeded "$db" $((n + gpus)) "${pids[@]}" || ok=0
	stop_workers "${pids[@]}"
	((ok)) || return 1
	local in
	in=$(IFS=,; echo "${ids[*]}")
	read -r PL_P50 PL_P99 <<<"$(q "$db" "SELECT round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY w)),
	                                          round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY w))
	                                     FROM (SELECT extract(epoch FROM h.claimed_at - t.ready_at) AS w
	                                             FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id
	                                            WHERE h.pipeline_id IN ($in)) s" | tr '|' ' ')"
	# GPU tasks whose wait began while gpu-box held 2 generic tasks.
	PL_HELD=$(q "$db" "SELECT count(*) FROM railyard.tasks g
	                   WHERE g.pipeline_id IN ($in)
	                     AND (SELECT count(*) FROM railyard.task_attempts h
	                           WHERE h.agent_name = '$db-gpu' AND h.pipeline_id = $flood
	                             AND h.claimed_at <= g.ready_at AND h.finished_at > g.ready_at) >= 2")
	# Busy slot-time of the plain agents while generic work was ready:
	# from the flood's first claim to its last claim (after that, nothing
	# was left for a free slot to take).
	PL_UTIL=$(q "$db" "WITH span AS (SELECT min(claimed_at) AS a, max(claimed_at) AS b FROM railyard.task_attempts
	                                 WHERE pipeline_id = $flood)
	                   SELECT round((100 * sum(extract(epoch FROM least(h.finished_at, span.b) - greatest(h.claimed_at, span.a)))
	                                / (6 * extract(epoch FROM span.b - span.a)))::numeric, 1)
	                     FROM railyard.task_attempts h, span
	                    WHERE h.agent_name LIKE '$db-plain%' AND h.claimed_at < span.b GROUP BY span.a, span.b")
	drop_db "$db"
}

# pl_fair DB W_ALPHA N SAMPLES: sets PL_ERR (mean |alpha share - 75|, %)
# and PL_SAMPLES (how many samples were taken while both teams had ready
# work).
pl_fair() {
	local db=$1 wa=$2 n=$3 samples=$4 a b pids=() i ra rb qa qb sum=0 k=0
	new_db "$db"
	q "$db" "INSERT INTO railyard.teams (name, weight) VALUES ('alpha', $wa), ('beta', 1)" >/dev/null
	start_worker "$db" "$db-1" --slots 4
	pids+=("$LAST_PID")
	start_worker "$db" "$db-2" --slots 4
	pids+=("$LAST_PID")
	wait_for 60 agents_online "$db" "${pids[0]},${pids[1]}" "$db-1" "$db-2" || return 1
	a=$(pl_submit "$db" a alpha 0 "$n" 'sleep 0.3')
	b=$(pl_submit "$db" b beta 0 "$n" 'sleep 0.3')
	wait_for 60 at_least_succeeded "$db" 16 "${pids[@]}" || return 1
	# Shares are only owed while both teams want more than they run: a
	# sample after either ran out of ready work ends the measurement.
	for ((i = 0; i < samples; i++)); do
		read -r ra rb qa qb <<<"$(q "$db" "SELECT count(*) FILTER (WHERE pipeline_id = $a AND state = 'running'),
		                                      count(*) FILTER (WHERE pipeline_id = $b AND state = 'running'),
		                                      count(*) FILTER (WHERE pipeline_id = $a AND state = 'ready'),
		                                      count(*) FILTER (WHERE pipeline_id = $b AND state = 'ready')
		                                 FROM railyard.tasks WHERE state IN ('running', 'ready')" | tr '|' ' ')"
		((qa > 0 && qb > 0)) || break
		if ((ra + rb > 0)); then
			sum=$(calc "$sum + sqrt((100 * $ra / ($ra + $rb) - 75) ^ 2)" %.4f)
			k=$((k + 1))
		fi
		nap 0.25
	done
	stop_workers "${pids[@]}"
	((k > 0)) || return 1
	PL_ERR=$(calc "$sum / $k" %.1f) PL_SAMPLES=$k
	drop_db "$db"
}

# pl_aging DB RATE STREAM: sets PL_WAIT (s) of the priority-0 task;
# PL_BOUND (s): when the tasks that outrank it for good (those ready less
# than 10 / rate minutes after it, whose aged priority stays ahead) had
# all finished, from its ready time; PL_OVERTAKE: tasks it outranked that
# were claimed before it (0 when aging works).
pl_aging() {
	local db=$1 rate=$2 stream=$3 i low pid
	new_db "$db"
	q "$db" "UPDATE railyard.placement_settings SET aging_per_min = $rate, aging_cap = 50" >/dev/null
	start_worker "$db" "$db-w" --slots 1
	pid=$LAST_PID
	wait_for 60 agents_online "$db" "$pid" "$db-w" || return 1
	for i in 1 2 3; do
		pl_submit "$db" "first-$i" default 10 1 'sleep 0.2' >/dev/null
	done
	low=$(pl_submit "$db" low default 0 1 true)
	# Three tasks per submission: the stream outpaces one slot even when
	# a submission is slow on a loaded machine.
	for ((i = 0; i < stream; i++)); do
		pl_submit "$db" "high-$i" default 10 3 'sleep 0.2' >/dev/null
		nap 0.1
	done
	wait_for 300 at_least_succeeded "$db" $((3 * stream + 4)) "$pid" || return 1
	stop_workers "$pid"
	PL_WAIT=$(q "$db" "SELECT round(extract(epoch FROM h.claimed_at - t.ready_at)::numeric, 2)
	                   FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id
	                  WHERE t.pipeline_id = $low")
	local facts
	facts=$(q "$db" "WITH low AS (SELECT t.age_key, t.ready_at, h.claimed_at
	                                FROM railyard.tasks t JOIN railyard.task_attempts h ON h.task_id = t.id
	                               WHERE t.pipeline_id = $low)
	                 SELECT round(extract(epoch FROM greatest(max(h.finished_at) FILTER (WHERE t.age_key > low.age_key),
	                                                           low.ready_at) - low.ready_at)::numeric, 2),
	                        count(*) FILTER (WHERE t.age_key < low.age_key AND h.claimed_at < low.claimed_at)
	                   FROM railyard.tasks t JOIN railyard.task_attempts h ON h.task_id = t.id, low
	                  WHERE t.pipeline_id <> $low
	                  GROUP BY low.ready_at")
	IFS='|' read -r PL_BOUND PL_OVERTAKE <<<"$facts"
	drop_db "$db"
}

# pl_burn_iterations: how many turns of the overload's shell loop burn
# one second of CPU here (timed on 400,000 turns), so that the overload
# lasts as long on a fast machine as on a slow one: it is a sustained
# overload, not a burst that ends within the throttle's slow start.
pl_burn_iterations() {
	local t0 t1
	t0=$(date +%s%N)
	sh -c 'i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done'
	t1=$(date +%s%N)
	awk -v ns="$((t1 - t0))" 'BEGIN { n = 400000 * 1e9 / (ns > 0 ? ns : 1); printf "%d", (n < 100000 ? 100000 : n) }'
}

# pl_overload DB SLOTS THROTTLE TASKS ITERATIONS: sets PL_MAKESPAN (s),
# PL_PSI (peak).
# pl_cpu_quiet: whether the host's cpu PSI "some avg10" is under the
# throttle's low threshold (30); true where there is no PSI.
pl_cpu_quiet() {
	local v
	v=$(sed -n 's/^some avg10=\([0-9.]*\).*/\1/p' /proc/pressure/cpu 2>/dev/null)
	[[ -z $v ]] || awk -v v="$v" 'BEGIN { exit !(v < 30) }'
}

# pl_settle: before a run with the throttle on, waits (60 s at most) for
# the cpu pressure the previous rows left to decay (PSI's 10 s average),
# so AIMD judges this run's load and not the last one's.
pl_settle() {
	wait_for 60 pl_cpu_quiet ||
		say "cpu some avg10 still at or above 30 after 60 s; the AIMD run starts anyway"
}

pl_overload() {
	local db=$1 slots=$2 thr=$3 n=$4 iter=$5 pid sampler peak_file=$TMP/psi-$1
	new_db "$db"
	[[ $thr == off ]] || pl_settle
	start_worker "$db" "$db-w" --slots "$slots" --cpus "$slots" --throttle "$thr" --min-slots 1
	pid=$LAST_PID
	wait_for 60 agents_online "$db" "$pid" "$db-w" || return 1
	: >"$peak_file"
	( while :; do sed -n 's/^some avg10=\([0-9.]*\).*/\1/p' /proc/pressure/cpu >>"$peak_file" 2>/dev/null; sleep 0.5; done ) &
	sampler=$!
	BG_PIDS+=("$sampler")
	pl_submit "$db" burn default 0 "$n" "i=0; while [ \$i -lt $iter ]; do i=\$((i+1)); done" >/dev/null
	wait_for 1200 at_least_succeeded "$db" "$n" "$pid" || { kill "$sampler"; return 1; }
	kill "$sampler" 2>/dev/null
	stop_workers "$pid"
	PL_MAKESPAN=$(q "$db" "SELECT round(extract(epoch FROM max(finished_at) - min(claimed_at))::numeric, 2)
	                       FROM railyard.task_attempts")
	PL_PSI=$(sort -n "$peak_file" | tail -n 1)
	drop_db "$db"
}

bench_placement() {
	if [[ ${PLACEMENT_ONLY:-} == memory ]]; then
		meta placement params "$(pl_memory_params) (PLACEMENT_ONLY=memory: no other row)"
		pl_memory_rows
		return 0
	fi
	local flood=100 gpus=8 fair_n=600 samples=40 stream=40 cores
	cores=$(nproc)
	if ((QUICK)); then
		flood=50 gpus=5 fair_n=300 samples=20 stream=25
	fi
	local burn=$((cores * 4 * 3))
	meta placement params "scarce: 1 gpu + 3 plain agents x 2 slots, $flood generic 'sleep 2', $gpus GPU 'sleep 0.3' arriving 0.7 s apart; fair: 2 x 4 slots, 2 x $fair_n 'sleep 0.3', $samples samples 0.25 s apart; aging: 1 slot, $stream x 3 priority-10 'sleep 0.2' 0.1 s apart; pool: 3 workers x 4 slots, 30 'sleep 0.2' in a pool of 2; overload: $burn shell-loop tasks of about 1 s of CPU each (the loop's length timed here first); $(pl_memory_params)"

	local on_p50 on_p99 on_held on_util off_p50 off_p99 off_held off_util
	if pl_scarce bench_pl_on 0.25 "$flood" "$gpus"; then
		on_p50=$PL_P50 on_p99=$PL_P99 on_held=$PL_HELD on_util=$PL_UTIL
	fi
	if pl_scarce bench_pl_off 0 "$flood" "$gpus"; then
		off_p50=$PL_P50 off_p99=$PL_P99 off_held=$PL_HELD off_util=$PL_UTIL
	fi
	say "scarce: protection on p50 ${on_p50:-?} p99 ${on_p99:-?} ms held ${on_held:-?} util ${on_util:-?} %; off p50 ${off_p50:-?} p99 ${off_p99:-?} held ${off_held:-?} util ${off_util:-?} %"
	if [[ -n ${on_p99:-} && -n ${off_p99:-} ]]; then
		row placement "GPU task wait p50, protection on vs off" "ms" "$on_p50" "$off_p50" "$(ratio "$on_p50" "$off_p50" 2)" "" ""
		row placement "GPU task wait p99, protection on vs off" "ms" "$on_p99" "$off_p99" "$(ratio "$on_p99" "$off_p99" 2)" \
			"<= 500 (one claim round)" "$(verdict "$on_p99" "<=" 500)"
		row placement "GPU tasks ready while gpu-box held only generic work" "tasks" "$on_held" "$off_held" "" \
			"0" "$(verdict "$on_held" "<=" 0)" "of $gpus GPU tasks"
		row placement "plain agents busy during the flood, on vs off" "%" "$on_util" "$off_util" "$(ratio "$on_util" "$off_util" 3)" \
			">= 98" "$(verdict "$on_util" ">=" 98)" "busy slot-time (claim to finish) of the plain agents from the flood's first claim to its last"
	else
		invalid placement "scarce agent" "a scarce-scenario run did not finish (worker logs: KEEP_TMP=1)"
	fi

	local err_w err_1
	local fair_k=""
	pl_fair bench_pl_fair3 3 "$fair_n" "$samples" && err_w=$PL_ERR fair_k=$PL_SAMPLES
	pl_fair bench_pl_fair1 1 "$fair_n" "$samples" && err_1=$PL_ERR
	say "fair share: error vs 75 % with weights 3:1 ${err_w:-?}, with 1:1 ${err_1:-?}"
	if [[ -n ${err_w:-} && -n ${err_1:-} ]]; then
		row placement "running-share error vs weights 3:1" "points" "$err_w" "$err_1" "$(ratio "$err_w" "$err_1" 2)" \
			"<= 5" "$(verdict "$err_w" "<=" 5)" "mean |alpha's share of running tasks - 75 %| over $fair_k samples (of $samples) taken while both teams had ready work; baseline: the same teams with weights 1:1"
	else
		invalid placement "fair share" "a fair-share run did not finish"
	fi

	local w_on w_off bound="" over=""
	pl_aging bench_pl_age 600 "$stream" && w_on=$PL_WAIT bound=$PL_BOUND over=$PL_OVERTAKE
	pl_aging bench_pl_noage 0 "$stream" && w_off=$PL_WAIT
	say "aging: low-priority wait ${w_on:-?} s with aging (bound ${bound:-?} s, overtaken by ${over:-?}), ${w_off:-?} s without"
	if [[ -n ${w_on:-} && -n ${w_off:-} && -n $bound ]]; then
		# The bound the configuration implies: with 600 points/min a
		# priority-10 task ready less than 1 s after the low one stays
		# ahead of it for good, so the low one starts once those are
		# done, plus one round (completion, claim: 0.5 s allowed).
		local lim
		lim=$(calc "$bound + 0.5" %.2f)
		row placement "low-priority wait under a priority-10 stream vs its bound" "s" "$w_on" "$lim" \
			"$(ratio "$w_on" "$lim" 2)" "<= 1" "$(verdict "$(ratio "$w_on" "$lim" 3)" "<=" 1)" \
			"aging 600 points/min: the bound is when the tasks still outranking it (ready < 1 s after it) had finished, $bound s after it became ready, + 0.5 s for a round; without aging it waited $w_off s"
		row placement "tasks it outranked that started before it" "tasks" "$over" "" "" "0" \
			"$(verdict "$over" "<=" 0)" "tasks whose aged priority was below the low task's yet were claimed first"
	else
		invalid placement "aging" "an aging run did not finish"
	fi

	local db=bench_pl_pool pids=() i over
	new_db "$db"
	q "$db" "INSERT INTO railyard.pools (name, capacity) VALUES ('licence', 2)" >/dev/null
	for i in 1 2 3; do
		start_worker "$db" "$db-$i" --slots 4
		pids+=("$LAST_PID")
	done
	if wait_for 60 agents_online "$db" "$(IFS=,; echo "${pids[*]}")" "$db-1" "$db-2" "$db-3" &&
		pl_submit "$db" pool default 0 30 'sleep 0.2' '{}' "'licence'" >/dev/null &&
		wait_for 300 at_least_succeeded "$db" 30 "${pids[@]}"; then
		over=$(pl_overlap "$db" "true")
		row placement "pool cap: most tasks of a pool of 2 running at once" "tasks" "$over" "2" "$(ratio "$over" 2 2)" \
			"= 2" "$( [[ $over == 2 ]] && echo met || echo missed)" "3 workers x 4 slots, 30 tasks"
	else
		invalid placement "pool cap" "the pool run did not finish"
	fi
	stop_workers "${pids[@]}"
	drop_db "$db"

	local m_aimd p_aimd m_cores p_cores m_over p_over iter
	iter=$(pl_burn_iterations)
	meta placement burn_iterations "$iter"
	pl_overload bench_pl_aimd $((cores * 4)) on "$burn" "$iter" && m_aimd=$PL_MAKESPAN p_aimd=$PL_PSI
	pl_overload bench_pl_cores "$cores" off "$burn" "$iter" && m_cores=$PL_MAKESPAN p_cores=$PL_PSI
	pl_overload bench_pl_over $((cores * 4)) off "$burn" "$iter" && m_over=$PL_MAKESPAN p_over=$PL_PSI
	say "overload: AIMD ${m_aimd:-?} s (PSI ${p_aimd:-?}), static $cores ${m_cores:-?} s (PSI ${p_cores:-?}), static $((cores * 4)) ${m_over:-?} s (PSI ${p_over:-?})"
	if [[ -n ${m_aimd:-} && -n ${m_cores:-} && -n ${m_over:-} ]]; then
		row placement "overload makespan, AIMD vs static slots = cores" "s" "$m_aimd" "$m_cores" "$(ratio "$m_aimd" "$m_cores" 3)" \
			"<= 1.05" "$(verdict "$(ratio "$m_aimd" "$m_cores" 3)" "<=" 1.05)" "$burn CPU-bound tasks; slots $((cores * 4)), throttle on, the host's own /proc/pressure"
		row placement "overload makespan, AIMD vs static 4 x cores" "s" "$m_aimd" "$m_over" "$(ratio "$m_aimd" "$m_over" 3)" \
			"< 1" "$(verdict "$(ratio "$m_aimd" "$m_over" 3)" "<" 1)"
		row placement "overload peak PSI cpu some avg10, AIMD vs 4 x cores" "%" "$p_aimd" "$p_over" "$(ratio "$p_aimd" "$p_over" 2)" "" "" \
			"static slots = cores peaked at $p_cores"
	else
		invalid placement "overload" "an overload run did not finish"
	fi
	pl_memory_rows
}

# ---- memory-bound overload ---------------------------------------------------
# The "RAM" is a memory cgroup's limit (memcg_new), so that only this
# benchmark's processes can run out of it.  Sizes: 8 slots x a 160 MiB task
# = 1280 MiB, 1.43 x the 896 MiB limit (at most 5 fit); slots = cores x 160
# MiB is 0.36 x the limit.

PL_MEM_LIMIT_MB=896
PL_MEM_TASK_MB=160
PL_MEM_SLOTS=8

pl_memory_tasks() {
	if ((QUICK)); then echo 12; else echo 24; fi
}

pl_memory_params() {
	echo "memory-bound: one worker in a memory cgroup of $PL_MEM_LIMIT_MB MiB, $(pl_memory_tasks) x 'memhog $PL_MEM_TASK_MB 1500 1500' (no mem_mb declared) per run"
}

# pl_memload DB SLOTS THROTTLE TASKS: one worker (--slots SLOTS, --throttle
# THROTTLE) inside a fresh memory cgroup of PL_MEM_LIMIT_MB, TASKS memhog
# tasks in one pipeline.  It offers slots x 256 MB (the default mem_mb) so
# that slots, not offered memory, bound every run.  Sets PL_OOM (attempts
# failed with reason oom), PL_FAILED (failed otherwise), PL_OK (succeeded),
# PL_MAKESPAN (s, first claim to last finish), PL_PEAK (MiB, the cgroup's
# high-water mark), PL_KOOM (memcg_kernel_ooms); status 1 with PL_WHY.
pl_memload() {
	local db=$1 slots=$2 thr=$3 n=$4 name=$1-w cg pid pl ok=1 rec d
	PL_WHY=""
	if ! memcg_new "rybench-mem-$$-$db" "$PL_MEM_LIMIT_MB"; then
		PL_WHY=$MEMCG_WHY
		return 1
	fi
	cg=$MEMCG
	new_db "$db"
	[[ $thr == off ]] || pl_settle
	START_CGROUP=$cg start_worker "$db" "$name" --slots "$slots" --cpus "$slots" --mem-mb $((slots * 256)) \
		--throttle "$thr" --http-listen off
	pid=$LAST_PID
	if ! wait_for 60 agents_online "$db" "$pid" "$name"; then
		PL_WHY="the worker $name did not come online (its log: KEEP_TMP=1, logs/$name.log)"
		ok=0
	fi
	if ((ok)); then
		pl=$(q "$db" "WITH p AS (INSERT INTO railyard.pipelines (name) VALUES ('memhog') RETURNING id),
		                   t AS (INSERT INTO railyard.tasks (pipeline_id, name, command)
		                         SELECT p.id, 'm-' || g, '$MEMHOG $PL_MEM_TASK_MB 1500 1500'
		                           FROM p, generate_series(1, $n) g)
		              SELECT id FROM p")
		if ! wait_for 600 pipeline_done "$db" "$pl" "$pid"; then
			if alive "$pid"; then
				PL_WHY="the pipeline of $n tasks did not finish in 600 s ($(count_state "$db" succeeded) succeeded)"
			else
				PL_WHY="the worker exited before its pipeline finished (kernel oom kills in its own cgroup: $(memcg_kernel_ooms "$cg"))"
			fi
			ok=0
		fi
	fi
	stop_workers "$pid"
	PL_PEAK=$(memcg_peak_mb "$cg") PL_KOOM=$(memcg_kernel_ooms "$cg")
	# A worker killed before it could clean up leaves its cgroups (it
	# records them); those below cg go with it.
	while IFS= read -r rec; do
		while IFS= read -r d; do
			[[ $d == "$cg"/* ]] || cgroup_tree_remove "$d"
		done <"$rec"
	done < <(find "$TMP/work/$name" -path '*/state/*.cgroups' -type f 2>/dev/null)
	memcg_remove "$cg"
	if ((ok)); then
		IFS='|' read -r PL_OOM PL_FAILED PL_OK PL_MAKESPAN <<<"$(q "$db" "
			SELECT count(*) FILTER (WHERE outcome = 'failed' AND reason LIKE 'oom%'),
			       count(*) FILTER (WHERE outcome = 'failed' AND reason NOT LIKE 'oom%'),
			       count(*) FILTER (WHERE outcome = 'succeeded'),
			       round(extract(epoch FROM max(finished_at) - min(claimed_at))::numeric, 2)
			  FROM railyard.task_attempts WHERE pipeline_id = $pl")"
	fi
	drop_db "$db"
	((ok))
}

pl_memory_rows() {
	local n cores r src=memory.max_usage_in_bytes
	n=$(pl_memory_tasks)
	cores=$(nproc)
	local -A oom failed ok span peak koom why
	local run slots thr
	for r in "aimd $PL_MEM_SLOTS on" "static $PL_MEM_SLOTS off" "cores $cores off"; do
		read -r run slots thr <<<"$r"
		if pl_memload "bench_pl_mem_$run" "$slots" "$thr" "$n"; then
			oom[$run]=$PL_OOM failed[$run]=$PL_FAILED ok[$run]=$PL_OK span[$run]=$PL_MAKESPAN peak[$run]=$PL_PEAK
			koom[$run]=$PL_KOOM
			say "memory-bound $run (slots $slots, throttle $thr): $PL_OOM oom, $PL_FAILED other failures, $PL_OK succeeded of $n; makespan $PL_MAKESPAN s; peak ${PL_PEAK:-?} of $PL_MEM_LIMIT_MB MiB; kernel oom_kill in the top cgroup ${PL_KOOM:-?}"
		else
			why[$run]=$PL_WHY
			say "memory-bound $run (slots $slots, throttle $thr): not measured: $PL_WHY"
			# No memory cgroup: the other runs cannot have one either.
			[[ -z $MEMCG ]] && break
		fi
	done
	local metric="memory-bound overload: oom kills, AIMD vs static $PL_MEM_SLOTS slots"
	if [[ -z ${oom[aimd]:-} || -z ${oom[static]:-} ]]; then
		invalid placement "$metric" "${why[aimd]:-${why[static]:-}}"
		return 0
	fi
	local koom_what="cgroup v1: processes directly in it, i.e. the worker, not its tasks' cgroups"
	[[ $MEMCG_V == 2 ]] && src=memory.peak koom_what="cgroup v2: its whole tree"
	local goal=missed
	((oom[aimd] == 0 && oom[static] > 0)) && goal=met
	row placement "$metric" "kills" "${oom[aimd]}" "${oom[static]}" "" "0 with AIMD while static > 0" "$goal" \
		"attempts failed with reason oom, of $n 'memhog $PL_MEM_TASK_MB 1500 1500' tasks (no mem_mb declared) on one worker of $PL_MEM_SLOTS slots in a memory cgroup of $PL_MEM_LIMIT_MB MiB ($PL_MEM_SLOTS x $PL_MEM_TASK_MB = $((PL_MEM_SLOTS * PL_MEM_TASK_MB)) MiB); succeeded: AIMD ${ok[aimd]}, static ${ok[static]}; other failures: AIMD ${failed[aimd]}, static ${failed[static]}; the kernel's oom_kill count of the cgroup ($koom_what): AIMD ${koom[aimd]:-?}, static ${koom[static]:-?}"
	if [[ -n ${span[cores]:-} ]]; then
		# Tasks killed early shorten a run: only a run that did all the
		# work can meet the goal.
		local sv lost=""
		sv=$(verdict "$(ratio "${span[aimd]}" "${span[cores]}" 3)" "<=" 1.05)
		if ((ok[aimd] < n)); then
			sv=missed lost="; AIMD did not run all the work ($((n - ok[aimd])) of $n tasks failed), so its makespan is not comparable"
		fi
		row placement "memory-bound overload makespan, AIMD vs static slots = cores" "s" "${span[aimd]}" "${span[cores]}" \
			"$(ratio "${span[aimd]}" "${span[cores]}" 3)" "<= 1.05" "$sv" \
			"first claim to last finish; slots = cores ($cores: $cores x $PL_MEM_TASK_MB MiB fits, ${oom[cores]} oom) is the best safe static setting; static $PL_MEM_SLOTS slots took ${span[static]} s$lost"
	else
		invalid placement "memory-bound overload makespan, AIMD vs static slots = cores" "${why[cores]:-}"
	fi
	row placement "memory-bound overload peak cgroup memory, AIMD vs static $PL_MEM_SLOTS slots" "MiB" "${peak[aimd]:-}" "${peak[static]:-}" \
		"$(ratio "${peak[aimd]:-}" "${peak[static]:-}" 2)" "" "" \
		"the cgroup's high-water mark (cgroup v$MEMCG_V $src) against its limit of $PL_MEM_LIMIT_MB MiB; static slots = cores peaked at ${peak[cores]:-?} MiB"
}
