# shellcheck shell=bash
#
# 3. Scheduling overhead: a generated microservice DAG (two shared roots,
# then per service build -> test -> deploy; builds depend on 0-3 earlier
# services' builds and on the roots, some tests on another service's build,
# some deploys on another service's deploy; every task is `sleep D` with D
# from 0.2 to 2.0 s) run three ways with the same N:
#   - railyard: one worker with N slots, the pipeline submitted by SQL;
#     makespan = the pipeline's finished_at - created_at (the submitting
#     transaction's start), both stamped by the database;
#   - make -j N on a Makefile with the same commands and edges (wall time);
#   - stage barriers: make -j N on all builds, then all tests, then all
#     deploys (edges inside a stage kept, the rest implied by the barrier).
# The lower bound is max(critical path, total work / N); the naive
# sequential time is the sum of the durations (computed, not run).
#
# Makespan from history (issue 8): a DAG with uneven durations (the same
# generator, sleeps log-uniform 0.2-3.0 s) on one worker with fewer slots
# than the DAG is wide, run twice: the first run has no history (every
# task weighs the same in the upward rank), the second ranks by the first
# run's durations.  Each run's makespan (first process start to last end,
# as the worker stamped them) against the clairvoyant list schedule: the
# upward-rank list schedule on the same slots with the run's true
# durations (each task's measured run time), computed by dag_list_schedule.
#
# Then the same DAGs with short tasks (overhead_short), and one task start
# after an idle gap into fresh cgroups (overhead_task_start), the part of
# a DAG level's latency the kernel decides.

bench_title_overhead() {
	echo "3. Scheduling overhead"
}

# dag_generate SEED SERVICES: one line per task, in topological order:
# name, kind, service, duration, then "upstream=edgekind" items.
dag_generate() {
	awk -v seed="$1" -v S="$2" '
		function dur() { return sprintf("%.1f", 0.2 + int(rand() * 19) / 10) }
		function emit(name, kind, svc, deps) {
			printf "%s\t%s\t%s\t%s\t%s\n", name, kind, svc, dur(), deps
		}
		BEGIN {
			srand(seed)
			emit("build:proto", "build", "proto", "")
			emit("build:common", "build", "common", "build:proto=build")
			for (i = 1; i <= S; i++) {
				svc = sprintf("svc%02d", i)
				deps = ""
				if (rand() < 0.5) deps = deps " build:proto=build"
				if (rand() < 0.4) deps = deps " build:common=build"
				split("", used)
				nlib = 0
				k = int(rand() * 4)
				lo = (i > 12) ? i - 12 : 1
				for (j = 0; j < k && i > 1; j++) {
					u = lo + int(rand() * (i - lo))
					if (u in used) continue
					used[u] = 1
					lib[++nlib] = sprintf("svc%02d", u)
					deps = deps " build:" lib[nlib] "=build"
				}
				emit("build:" svc, "build", svc, substr(deps, 2))
				deps = "build:" svc "=build"
				if (nlib && rand() < 0.3) deps = deps " build:" lib[1] "=test"
				emit("test:" svc, "test", svc, deps)
				deps = "test:" svc "=test"
				if (nlib && rand() < 0.25) deps = deps " deploy:" lib[nlib] "=runtime"
				emit("deploy:" svc, "deploy", svc, deps)
			}
		}'
}

# dag_bounds DAG N: "critical_path total_work tasks".
dag_bounds() {
	awk -F'\t' '{
		f = 0; n = split($5, d, " ")
		for (i = 1; i <= n; i++) { split(d[i], e, "="); if (fin[e[1]] > f) f = fin[e[1]] }
		fin[$1] = f + $4; if (fin[$1] > cp) cp = fin[$1]; work += $4
	} END { printf "%.3f %.3f %d\n", cp, work, NR }' "$1"
}

# dag_uneven DAG SEED: the DAG with its durations redrawn log-uniform in
# 0.2-3.0 s (a few long tasks among many short ones).
dag_uneven() {
	awk -F'\t' -v OFS='\t' -v seed="$2" 'BEGIN { srand(seed) }
		{ $4 = sprintf("%.1f", 0.2 * exp(rand() * log(15))); print }' "$1"
}

# dag_list_schedule DAG SLOTS DURATIONS: the makespan of the upward-rank
# list schedule of DAG on SLOTS slots when each task takes the time
# DURATIONS gives it ("name seconds" lines; DAG's own column otherwise):
# whenever a slot is free, the ready task of highest rank starts (ties:
# the earlier task), as claims order by rank.  The DAG lists upstreams
# before downstreams.
dag_list_schedule() {
	awk -F'\t' -v N="$2" -v durs="$3" '
		BEGIN { while ((getline line < durs) > 0) { split(line, f, " "); dur[f[1]] = f[2] } }
		{
			n++; name[n] = $1; id[$1] = n
			d[n] = ($1 in dur) ? dur[$1] : $4
			k = split($5, u, " ")
			for (i = 1; i <= k; i++) {
				split(u[i], e, "="); up = id[e[1]]
				down[up, ++nd[up]] = n; wait[n]++
			}
		}
		END {
			for (v = n; v >= 1; v--) {
				r = 0
				for (i = 1; i <= nd[v]; i++) if (rank[down[v, i]] > r) r = rank[down[v, i]]
				rank[v] = d[v] + r
			}
			for (v = 1; v <= n; v++) if (!wait[v]) ready[v] = 1
			t = 0; free = N; done = 0
			while (done < n) {
				while (free > 0) {
					b = 0
					for (v in ready) if (!b || rank[v] > rank[b] || (rank[v] == rank[b] && v + 0 < b + 0)) b = v
					if (!b) break
					delete ready[b]; free--; endt[b] = t + d[b]; running[b] = 1
				}
				m = -1
				for (v in running) if (m < 0 || endt[v] < m) m = endt[v]
				t = m
				for (v in running) if (endt[v] <= t) {
					delete running[v]; free++; done++
					for (i = 1; i <= nd[v]; i++) if (--wait[down[v, i]] == 0) ready[down[v, i]] = 1
				}
			}
			printf "%.3f\n", t
		}' "$1"
}

# dag_makefile DAG [KIND]: the DAG as a Makefile; with KIND only that
# kind's tasks and the edges between them (one stage of the barrier run).
dag_makefile() {
	awk -F'\t' -v only="${2:-}" '
		function t(s) { gsub(/:/, "_", s); return s }
		only == "" || $2 == only {
			all = all " " t($1)
			deps = ""; n = split($5, d, " ")
			for (i = 1; i <= n; i++) {
				split(d[i], e, "=")
				if (only == "" || kind[e[1]] == only) deps = deps " " t(e[1])
			}
			rules = rules t($1) ":" deps "\n\tsleep " $4 "\n"
		}
		{ kind[$1] = $2 }
		END { printf ".PHONY: all%s\nall:%s\n%s", all, all, rules }' "$1"
}

# dag_sql DAG NAME: a psql script submitting the DAG as one pipeline and
# printing its id.
dag_sql() {
	awk -F'\t' -v name="$2" '
		function s(x) { gsub(/\047/, "\047\047", x); return "\047" x "\047" }
		{
			tasks = tasks (NR > 1 ? ",\n" : "") sprintf("(:id, %s, %s, %s, %s, 16, 600)",
				s($1), s($3), s($2), s("sleep " $4))
			n = split($5, d, " ")
			for (i = 1; i <= n; i++) {
				split(d[i], e, "=")
				edges = edges (edges != "" ? ",\n" : "") sprintf("(:id, %s, %s, %s)",
					s(e[1]), s($1), s(e[2]))
			}
		}
		END {
			print "BEGIN;"
			print "INSERT INTO railyard.pipelines (name, team) VALUES (" s(name) ", \047bench\047) RETURNING id \\gset"
			print "INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command, mem_mb, timeout_s) VALUES"
			print tasks ";"
			if (edges != "") {
				print "INSERT INTO railyard.edges (pipeline_id, upstream, downstream, kind) VALUES"
				print edges ";"
			}
			print "COMMIT;"
			print "\\echo :id"
		}' "$1"
}

# make_wall DIR N FILE...: wall seconds of make -j N over each file in
# turn, or "" when one failed.
make_wall() {
	local dir=$1 n=$2 t0 f
	shift 2
	t0=$(now)
	for f in "$@"; do
		(cd "$dir" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -j "$n" -f "$f" all) >>"$dir/make.log" 2>&1 || return 0
	done
	calc "$(now) - $t0" %.3f
}

# dag_railyard DB NAME N SQLFILE WORK NTASKS [WORKER_ARGS...]: sets
# DAG_MAKESPAN to the makespan (s) of the pipeline in SQLFILE on one worker
# NAME --slots N that is online and idle before the pipeline arrives, from
# its created_at to its finished_at (both stamped by the database); ""
# unless all NTASKS succeeded.  A fresh DB.  (Not a $(...): the harness
# must know the worker.)
DAG_MAKESPAN=""
dag_railyard() {
	local db=$1 name=$2 n=$3 sql=$4 work=$5 ntasks=$6 wpid id rm=""
	shift 6
	new_db "$db"
	start_worker "$db" "$name" --slots "$n" "$@"
	wpid=$LAST_PID
	if wait_for 60 agents_online "$db" "$wpid" "$name"; then
		id=$(qfile "$db" "$sql" | tail -n 1)
		if [[ $id =~ ^[0-9]+$ ]] && wait_for "$(calc "$work + 120" %.0f)" pipeline_done "$db" "$id" "$wpid" &&
			[[ $(count_state "$db" succeeded) == "$ntasks" ]]; then
			rm=$(q "$db" "SELECT round(extract(epoch FROM finished_at - created_at)::numeric, 3)
				FROM railyard.pipelines WHERE id = $id")
		fi
	fi
	stop_workers "$wpid"
	drop_db "$db"
	DAG_MAKESPAN=$rm
}

bench_overhead() {
	local runs=3 services=66 n=8
	if ((QUICK)); then
		runs=1 services=12
	fi
	local ntasks=$((2 + 3 * services))
	meta overhead params "$ntasks-task DAG ($services services + 2 shared roots), sleeps 0.2-2.0 s, N=$n slots: one worker --slots $n vs make -j $n; $runs seeds, medians; stage barriers on the first seed"
	local r dir dag cp work lb rm mk st
	local v_r=() v_mk=() v_st=() v_st_r=() v_lb=() v_cp=() v_work=()
	local q_rmk=() q_rlb=() q_mklb=() q_rseq=() q_rst=()
	for ((r = 1; r <= runs; r++)); do
		dir=$TMP/work/dag$r
		mkdir -p "$dir"
		dag=$dir/dag.tsv
		dag_generate "$((1000 + r))" "$services" >"$dag"
		read -r cp work _ < <(dag_bounds "$dag")
		lb=$(calc "($cp > $work / $n) ? $cp : $work / $n" %.3f)
		dag_makefile "$dag" >"$dir/dag.mk"
		dag_makefile "$dag" build >"$dir/stage1.mk"
		dag_makefile "$dag" test >"$dir/stage2.mk"
		dag_makefile "$dag" deploy >"$dir/stage3.mk"
		dag_sql "$dag" "dag-seed$r" >"$dir/dag.sql"

		# railyard: the worker is up and idle before the pipeline arrives,
		# as make is ready the moment it starts.
		dag_railyard "bench_dag_$r" "dag$r" "$n" "$dir/dag.sql" "$work" "$ntasks"
		rm=$DAG_MAKESPAN
		mk=$(make_wall "$dir" "$n" dag.mk)
		# The barrier baseline is far off either way: the first seed only.
		st=-
		((r == 1)) && st=$(make_wall "$dir" "$n" stage1.mk stage2.mk stage3.mk)
		say "seed $r: railyard ${rm:-FAILED} s, make -j $n ${mk:-FAILED} s, stage barriers ${st:-FAILED} s; critical path $cp s, work $work s, lower bound $lb s"
		if [[ -z $rm || -z $mk || -z $st ]]; then
			invalid overhead "makespan" "seed $r did not complete (railyard ${rm:-failed}, make ${mk:-failed}, stages ${st:-failed}; KEEP_TMP=1 keeps the logs)"
			return
		fi
		v_r+=("$rm") v_mk+=("$mk") v_lb+=("$lb") v_cp+=("$cp") v_work+=("$work")
		q_rmk+=("$(ratio "$rm" "$mk" 6)") q_rlb+=("$(ratio "$rm" "$lb" 6)")
		q_mklb+=("$(ratio "$mk" "$lb" 6)") q_rseq+=("$(ratio "$rm" "$work" 6)")
		if [[ $st != - ]]; then
			v_st+=("$st") v_st_r+=("$rm")
			q_rst+=("$(ratio "$rm" "$st" 6)")
		fi
	done
	local m_r m_mk m_st m_lb m_work m_rmk m_rlb m_mklb m_rseq m_rst
	m_r=$(median "${v_r[@]}") m_mk=$(median "${v_mk[@]}") m_st=$(median "${v_st[@]}")
	m_lb=$(median "${v_lb[@]}") m_work=$(median "${v_work[@]}")
	m_rmk=$(median "${q_rmk[@]}") m_rlb=$(median "${q_rlb[@]}") m_mklb=$(median "${q_mklb[@]}")
	m_rseq=$(median "${q_rseq[@]}") m_rst=$(median "${q_rst[@]}")
	local runs_note="per seed: railyard ${v_r[*]} s; make ${v_mk[*]} s"
	row overhead "makespan vs make -j $n" "s" "$(fmt "$m_r" 2)" "$(fmt "$m_mk" 2)" "$(fmt "$m_rmk" 3)" \
		"<= 1.02" "$(verdict "$m_rmk" "<=" 1.02)" "$runs_note; ratio = median of per-seed ratios"
	row overhead "makespan / lower bound" "x" "$(fmt "$m_rlb" 3)" "$(fmt "$m_mklb" 3)" \
		"" "<= 1.10" "$(verdict "$m_rlb" "<=" 1.10)" \
		"lower bound max(critical path, work / $n): ${v_lb[*]} s (critical paths ${v_cp[*]} s); baseline column: make -j $n"
	row overhead "lower bound max(critical path, work / $n)" "s" "$(fmt "$m_lb" 2)" "" "" "" ""
	row overhead "makespan vs naive sequential" "s" "$(fmt "$m_r" 2)" "$(fmt "$m_work" 2)" \
		"$(fmt "$m_rseq" 3)" "<= 0.70" "$(verdict "$m_rseq" "<=" 0.70)" \
		"sequential = sum of the durations (computed, not run); goal: at least 30 % better"
	row overhead "makespan vs stage barriers" "s" "$(fmt "$(median "${v_st_r[@]}")" 2)" "$(fmt "$m_st" 2)" \
		"$(fmt "$m_rst" 3)" "" "" "stage barriers: make -j $n on all builds, then all tests, then all deploys; first seed only"
	overhead_history
	overhead_short
	overhead_task_start
}

# dag_shorten: a dag_generate DAG on stdin with its sleeps rescaled from
# 0.2-2.0 s to 0.05-0.3 s (overhead_short, bench/ab.sh).
dag_shorten() {
	awk -F'\t' -v OFS='\t' '{ $4 = sprintf("%.2f", 0.05 + ($4 - 0.2) / 1.8 * 0.25); print }'
}

# The same DAGs with short tasks (sleeps 0.05-0.3 s, as a project compiling
# itself): per task, railyard's claim, start and report cost weighs far
# more.  One worker --slots 8, idle before the pipeline arrives, vs
# make -j 8; the median of per-seed ratios.  Again with --claim-ahead 8.
overhead_short() {
	local runs=3 services=66 n=8 r dir dag rm ra mk ntasks cp work
	((QUICK)) && runs=1 services=12
	ntasks=$((2 + 3 * services))
	local ratios=() v_r=() v_mk=() aratios=() v_a=()
	for ((r = 1; r <= runs; r++)); do
		dir=$TMP/work/short$r
		mkdir -p "$dir"
		dag=$dir/dag.tsv
		dag_generate "$((1000 + r))" "$services" | dag_shorten >"$dag"
		read -r cp work _ < <(dag_bounds "$dag")
		dag_makefile "$dag" >"$dir/dag.mk"
		dag_sql "$dag" "short-seed$r" >"$dir/dag.sql"
		dag_railyard "bench_short_$r" "short$r" "$n" "$dir/dag.sql" "$work" "$ntasks"
		rm=$DAG_MAKESPAN
		mk=$(make_wall "$dir" "$n" dag.mk)
		dag_railyard "bench_shorta_$r" "shorta$r" "$n" "$dir/dag.sql" "$work" "$ntasks" --claim-ahead 8
		ra=$DAG_MAKESPAN
		say "short tasks, seed $r: railyard ${rm:-FAILED} s (claim ahead ${ra:-FAILED} s), make -j $n ${mk:-FAILED} s; critical path $cp s, work $work s"
		if [[ -z $rm || -z $mk || -z $ra ]]; then
			invalid overhead "makespan vs make, short tasks" "seed $r did not complete (KEEP_TMP=1 keeps the logs)"
			return
		fi
		v_r+=("$rm") v_mk+=("$mk") ratios+=("$(ratio "$rm" "$mk" 6)")
		v_a+=("$ra") aratios+=("$(ratio "$ra" "$mk" 6)")
	done
	local m
	m=$(median "${ratios[@]}")
	row overhead "makespan vs make -j $n, tasks of 0.05-0.3 s" "s" "$(fmt "$(median "${v_r[@]}")" 2)" \
		"$(fmt "$(median "${v_mk[@]}")" 2)" "$(fmt "$m" 3)" "<= 1.05" "$(verdict "$m" "<=" 1.05)" \
		"the $ntasks-task DAGs above with sleeps rescaled to 0.05-0.3 s; per seed: railyard ${v_r[*]} s, make ${v_mk[*]} s; ratio = median of per-seed ratios"
	m=$(median "${aratios[@]}")
	row overhead "makespan vs make -j $n, tasks of 0.05-0.3 s, --claim-ahead 8" "s" \
		"$(fmt "$(median "${v_a[@]}")" 2)" "$(fmt "$(median "${v_mk[@]}")" 2)" "$(fmt "$m" 3)" \
		"<= 1.05" "$(verdict "$m" "<=" 1.05)" \
		"the same worker with up to 8 tasks claimed beyond its free slots; per seed: railyard ${v_a[*]} s"
}

# One task start after an idle gap, through railyard's own spawn code
# (bench/task_start.c): into fresh task cgroups as the worker does it, the
# same with the cgroup2 leaf joined through cgroup.procs (the worker's way
# where clone3 is refused), and without cgroups (the baseline).  The gap
# lets the kernel's RCU grace periods end, as between a DAG's levels:
# moving a whole process into a cgroup then waits for a new one.
# ts_get FILE KEY: KEY's value in task_start's "key=value ..." line.
ts_get() {
	tr ' ' '\n' <"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'
}

overhead_task_start() {
	local n=40 idle=50 bin=$BUILD/bench/task_start m out base into procs
	((QUICK)) && n=15
	if [[ ! -x $bin ]]; then
		invalid overhead "task start into its cgroups after an idle gap, p50" "$bin is missing (make bench builds it)"
		return
	fi
	out=$TMP/task_start
	for m in none cgroups procs; do
		if ! "$bin" -n "$n" -i "$idle" -m "$m" >"$out.$m" 2>"$out.$m.err"; then
			if [[ $m != none ]] && grep -q "no cgroups" "$out.$m.err"; then
				row overhead "task start into its cgroups after an idle gap, p50" "ms" "" "" "" "" \
					"not measured" "$(head -n 1 "$out.$m.err") (needs root and a writable cgroup hierarchy)"
				return
			fi
			invalid overhead "task start ($m) after an idle gap" "task_start failed: $(tail -n 1 "$out.$m.err")"
			return
		fi
		say "task start ($m, $idle ms apart): $(cat "$out.$m")"
	done
	base=$(ts_get "$out.none" p50_ms) into=$(ts_get "$out.cgroups" p50_ms) procs=$(ts_get "$out.procs" p50_ms)
	row overhead "task start into its cgroups after an idle gap, p50" "ms" "$(fmt "$into" 2)" "$(fmt "$base" 2)" \
		"$(ratio "$into" "$base" 1)" "" "" \
		"$n starts of sh -c true $idle ms apart, each into fresh cgroups ($(ts_get "$out.cgroups" mode)): cgroup2 by clone3 CLONE_INTO_CGROUP, v1 through tasks; p90 $(ts_get "$out.cgroups" p90_ms) ms; baseline: the same start without cgroups"
	row overhead "the same, cgroup2 joined through cgroup.procs, p50" "ms" "$(fmt "$procs" 2)" "$(fmt "$base" 2)" \
		"$(ratio "$procs" "$base" 1)" "" "" \
		"the worker's way where clone3 is refused: moving a process waits for an RCU grace period after an idle gap; p90 $(ts_get "$out.procs" p90_ms) ms"
}

# The makespan of a DAG run twice on 4 slots: without history, then with
# the first run's durations in the upward rank; each against the
# clairvoyant list schedule with that run's true durations.
overhead_history() {
	local services=30 slots=4
	((QUICK)) && services=12
	local dir=$TMP/work/history db=bench_history id r wpid
	mkdir -p "$dir"
	dag_generate 2024 "$services" >"$dir/base.tsv"
	dag_uneven "$dir/base.tsv" 7 >"$dir/dag.tsv"
	local ntasks
	ntasks=$(wc -l <"$dir/dag.tsv")
	new_db "$db"
	start_worker "$db" history --slots "$slots"
	wpid=$LAST_PID
	local made=() ideal=() why=""
	if ! wait_for 60 agents_online "$db" "$wpid" history; then
		why="the worker did not come online"
	fi
	for r in 1 2; do
		[[ -z $why ]] || break
		dag_sql "$dir/dag.tsv" "history@run$r" >"$dir/run$r.sql"
		id=$(qfile "$db" "$dir/run$r.sql" | tail -n 1)
		if ! [[ $id =~ ^[0-9]+$ ]] || ! wait_for 300 pipeline_done "$db" "$id" "$wpid" ||
			[[ $(q "$db" "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND state = 'succeeded'") != "$ntasks" ]]; then
			why="run $r did not complete"
			break
		fi
		made+=("$(q "$db" "SELECT round(extract(epoch FROM max(a.finished_at) - min(a.started_at))::numeric, 3)
			FROM railyard.task_attempts a WHERE a.pipeline_id = $id AND a.outcome = 'succeeded'")")
		q "$db" "SELECT t.name || ' ' || round(extract(epoch FROM a.finished_at - a.started_at)::numeric, 3)
			FROM railyard.task_attempts a JOIN railyard.tasks t ON t.id = a.task_id
			WHERE a.pipeline_id = $id AND a.outcome = 'succeeded'" >"$dir/durations$r.txt"
		ideal+=("$(dag_list_schedule "$dir/dag.tsv" "$slots" "$dir/durations$r.txt")")
	done
	stop_workers "$wpid"
	drop_db "$db"
	if [[ -n $why ]]; then
		invalid overhead "makespan from history" "$why (KEEP_TMP=1 keeps the logs)"
		return
	fi
	say "history: run 1 ${made[0]} s (clairvoyant ${ideal[0]} s), run 2 ${made[1]} s (clairvoyant ${ideal[1]} s)"
	row overhead "second run vs clairvoyant list schedule" "s" "$(fmt "${made[1]}" 2)" "$(fmt "${ideal[1]}" 2)" \
		"$(ratio "${made[1]}" "${ideal[1]}" 3)" "<= 1.03" "$(verdict "$(ratio "${made[1]}" "${ideal[1]}" 4)" "<=" 1.03)" \
		"$ntasks-task DAG, sleeps log-uniform 0.2-3.0 s, one worker with $slots slots; the second run ranks by the first run's durations; baseline: the upward-rank list schedule on $slots slots with the second run's measured durations"
	row overhead "first run (no history) vs clairvoyant" "s" "$(fmt "${made[0]}" 2)" "$(fmt "${ideal[0]}" 2)" \
		"$(ratio "${made[0]}" "${ideal[0]}" 3)" "" "" "the same DAG before any history: every task weighs alike in the rank"
}
