# shellcheck shell=bash
#
# 7. Forecast accuracy and anomaly detection (issue 8, docs/forecasting.md).
# A generated CI history, replayed in time order through the real SQL: each
# run is submitted with INSERTs, its forecast at submission recorded by
# record_pending_forecasts() (what the workers' heartbeat calls) while the
# farm's load is in the database, then every task claimed with claim_tasks
# and finished with complete_tasks at its generated times; after each
# replayed pipeline, railyard.observe_pending() (what the workers'
# heartbeat calls) feeds its runs to the statistics and detectors.
#
# The generator simulates a farm of 24 slots in three agent classes of
# different speed (12 slots x1.0, 8 x0.8, 4 x1.3), with the properties of
# real CI the issue lists, each visible to a forecaster only the way it is
# in a real farm:
#   - pipeline families with DAGs of 8-16 tasks; each task a base duration
#     (lognormal, 10-200 s) and its own noise (lognormal sigma 0.03-0.10);
#   - agent classes: two tasks in three require one class's label and
#     always run there; the others run on whichever class is free, in the
#     farm's proportions (slots: 1/2, 1/3, 1/6), which a forecaster sees
#     only as the mix of its recent placements;
#   - cache hits: a quarter of the tasks that have upstreams are cacheable,
#     each hit with its own probability (20-60 %);
#   - retries (1 %: the first attempt is lost half-way and requeued);
#   - step regressions (+30 % to +60 %, several per family, each on its own
#     task from its own run on, once the task has run about 12 times and
#     with about 5 runs left) and slow drift (+0.1 % per run on a third of
#     the tasks);
#   - bursts of queueing (one run in ten): more higher-priority work than
#     slots is queued just before the pipeline (25-72 tasks of a "load"
#     family, ~40 s each), so the pipeline waits until it drains; the load
#     is in the database when the forecast is made.
# Figures: share of pipelines within 10 % / 15 %, MdAPE and p10-p90
# coverage of the forecast at submission, against the naive baseline (mean
# of the family's last 3 runs) on the same pipelines, and against an
# oracle that knows the generator's true parameters (the median of 200
# simulations of the same run): what no forecaster can beat on this data.
# Queue-wait error on the bursts.  Recall of the injected regressions (a
# slower or slow_run anomaly on that task within 5 runs) and false alarms
# (task duration anomalies matching no injection) per 1,000 task runs.

bench_title_forecast() {
	echo "9. Forecast accuracy and anomaly detection"
}

# fc_generate SEED FAMILIES RUNS INJECTIONS: the replay script (psql) on
# stdout, the injected regressions ("family task run factor") on fd 3.
# FORECAST_GENERIC (share of tasks without a class label, default 1/3) and
# FORECAST_CACHE (share of the tasks with upstreams that are cacheable,
# default 0.25) vary the two properties that limit accuracy most.
fc_generate() {
	awk -v seed="$1" -v F="$2" -v R="$3" -v K="$4" -v GEN="${FORECAST_GENERIC:-0.3333}" \
		-v CA="${FORECAST_CACHE:-0.25}" '
		function gauss() { return sqrt(-2 * log(1 - rand())) * cos(6.283185307 * rand()) }
		function q(s) { return "\047" s "\047" }
		function mix(u) { u = rand(); return (u < 0.5) ? 0 : (u < 0.8333) ? 1 : 2 }
		# the earliest free slot
		function slotmin(   k, m) { m = 1; for (k = 2; k <= C; k++) if (slot[k] < slot[m]) m = k; return m }
		# One run of family f at run r behind B load tasks, fresh
		# randomness; the run time (first start to last end), the queue
		# wait in simwait; with rec, the plan in ts/td/tc/to/tr (and
		# ls/ld/lc for the load).
		function simulate(f, r, B, rec,   i, j, x, c, d, st, ready, m, out, rt, first, last) {
			for (m = 1; m <= C; m++) slot[m] = 0
			for (j = 1; j <= B; j++) {
				c = mix(); d = 40 * speed[c] * exp(0.1 * gauss())
				m = slotmin(); st = slot[m]; slot[m] = st + d
				if (rec) { ls[j] = st; ld[j] = d; lc[j] = c }
			}
			first = 1e18; last = 0
			for (i = 1; i <= n[f]; i++) {
				ready = 0
				for (x = 1; x <= np[f, i]; x++) if (endt[pred[f, i, x]] > ready) ready = endt[pred[f, i, x]]
				c = (pin[f, i] >= 0) ? pin[f, i] : mix()
				d = base[f, i] * speed[c] * (1 + drift[f, i] * r) * exp(sig[f, i] * gauss())
				if (stepat[f, i] && r >= stepat[f, i]) d *= stepf[f, i]
				out = "succeeded"
				if (hit[f, i] > 0 && rand() < hit[f, i]) { out = "cached"; d = 0.2 }
				rt = (rand() < 0.01) ? 0.5 : 0
				st = ready
				if (B > 0) { m = slotmin(); if (slot[m] > st) st = slot[m] }
				endt[i] = st + d * (1 + rt)
				if (B > 0) slot[m] = endt[i]
				# the lost attempt of a retry never reported its start
				if (st + d * rt < first) first = st + d * rt
				if (endt[i] > last) last = endt[i]
				if (rec) { ts[i] = st; td[i] = d; tc[i] = c; to[i] = out; tr[i] = rt }
			}
			simwait = first
			return last - first
		}
		# the p-quantile of v[1..k] (sorts v)
		function quant(v, k, p,   i, j, x) {
			for (i = 2; i <= k; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
			x = 1 + p * (k - 1); i = int(x)
			return (i >= k) ? v[k] : v[i] + (x - i) * (v[i + 1] - v[i])
		}
		BEGIN {
			srand(seed)
			C = 24
			speed[0] = 1.0; speed[1] = 0.8; speed[2] = 1.3
			M = 200
			for (f = 1; f <= F; f++) {
				n[f] = 8 + int(rand() * 9)
				for (i = 1; i <= n[f]; i++) {
					base[f, i] = exp(log(10) + rand() * log(20))
					sig[f, i] = 0.03 + rand() * 0.07
					drift[f, i] = (rand() < 0.33) ? 0.001 : 0
					pin[f, i] = (rand() < 1 - GEN) ? mix() : -1
					hit[f, i] = (i > 1 && rand() < CA) ? 0.2 + rand() * 0.4 : 0
					np[f, i] = 0
					if (i > 1) {
						k = 1 + int(rand() * 2)
						for (j = 0; j < k; j++) {
							u = i - 1 - int(rand() * ((i - 1 < 4) ? i - 1 : 4))
							dup = 0
							for (x = 1; x <= np[f, i]; x++) if (pred[f, i, x] == u) dup = 1
							if (!dup) pred[f, i, ++np[f, i]] = u
						}
					}
				}
				# K step regressions, each on its own task from its own run,
				# where a detector can judge them: after about 12 executions
				# of the task (cache hits execute nothing), with about 5 left
				for (i = 1; i <= n[f]; i++) perm[i] = i
				for (i = n[f]; i > 1; i--) { j = 1 + int(rand() * i); x = perm[i]; perm[i] = perm[j]; perm[j] = x }
				for (k = 1; k <= n[f] && ninj[f] < K; k++) {
					i = perm[k]
					lo = int(12 / (1 - hit[f, i])) + 1
					if (lo < int(R * 0.4)) lo = int(R * 0.4)
					hi = R - int(5 / (1 - hit[f, i]) + 0.999)
					if (lo > hi) continue
					stepat[f, i] = lo + int(rand() * (hi - lo + 1))
					stepf[f, i] = 1.3 + rand() * 0.3
					ninj[f]++
					printf "fam%d t%02d %d %.3f\n", f, i, stepat[f, i], stepf[f, i] > "/dev/fd/3"
				}
			}
			for (r = 1; r <= R; r++) for (f = 1; f <= F; f++) {
				t0 = sprintf("\0472026-01-01 00:00:00+00\047::timestamptz + interval \047%d seconds\047", r * 86400 + f * 3600)
				B = (rand() < 0.1) ? C + 1 + int(rand() * 2 * C) : 0
				if (B > 0) {
					print "BEGIN;"
					printf "INSERT INTO railyard.pipelines (name, team, priority) VALUES (%s, \047bench\047, 10) RETURNING id AS load_id \\gset\n", q("load@f" f "r" r)
					printf "INSERT INTO railyard.tasks (pipeline_id, name, forecast_key, kind, command) SELECT :load_id, \047j\047 || g, \047job\047, \047build\047, \047true\047 FROM generate_series(1, %d) g;\n", B
					print "COMMIT;"
				}
				print "BEGIN;"
				printf "INSERT INTO railyard.pipelines (name, team) VALUES (%s, \047bench\047) RETURNING id \\gset\n", q("fam" f "@r" r)
				printf "INSERT INTO railyard.tasks (pipeline_id, name, service, kind, requires, command) VALUES "
				for (i = 1; i <= n[f]; i++)
					printf "%s(:id, %s, %s, %s, %s, \047true\047)", (i > 1 ? ", " : ""), q(sprintf("t%02d", i)),
						q("svc" f "-" (i % 3)), q(i % 2 ? "build" : "test"),
						q(pin[f, i] >= 0 ? "{class" pin[f, i] "}" : "{}")
				print ";"
				e = ""
				for (i = 1; i <= n[f]; i++) for (x = 1; x <= np[f, i]; x++)
					e = e (e == "" ? "" : ", ") sprintf("(:id, %s, %s)", q(sprintf("t%02d", pred[f, i, x])), q(sprintf("t%02d", i)))
				if (e != "") print "INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES " e ";"
				print "COMMIT;"
				# the heartbeats record the forecasts at submission
				print "SELECT railyard.record_pending_forecasts(100, 60000);"
				run = simulate(f, r, B, 1)
				wait = simwait
				if (B > 0) {
					plan = ""
					for (j = 1; j <= B; j++)
						plan = plan (j > 1 ? ", " : "") sprintf("\"j%d\": [%.3f, %.3f, %d, \"succeeded\", 0]", j, ls[j], ld[j], lc[j])
					printf "SELECT bench_fc.replay(:load_id, %s, \047{%s}\047);\n", t0, plan
					print "SELECT railyard.observe_pending();"
				}
				plan = ""
				for (i = 1; i <= n[f]; i++)
					plan = plan (i > 1 ? ", " : "") sprintf("\"t%02d\": [%.3f, %.3f, %d, \"%s\", %.2f]", i, ts[i], td[i], tc[i], to[i], tr[i])
				printf "SELECT bench_fc.replay(:id, %s, \047{%s}\047);\n", t0, plan
				# the heartbeats apply the runs to the statistics (and the
				# detectors) before the next submission
				print "SELECT railyard.observe_pending();"
				for (k = 1; k <= M; k++) o[k] = simulate(f, r, B, 0)
				printf "INSERT INTO bench_fc.truth VALUES (:id, %d, %d, %.3f, %.3f, %.3f, %.3f, %.3f);\n",
					r, B, wait, run, quant(o, M, 0.5), quant(o, M, 0.1), quant(o, M, 0.9)
			}
		}'
}

fc_setup_sql() {
	cat <<-'EOF'
		CREATE SCHEMA bench_fc;
		-- one agent per class: cores 4, 8, 16; slots 12, 8, 4 (the farm's mix)
		CREATE TABLE bench_fc.agents AS
		SELECT c AS cls, railyard.register_agent('fc-' || c, 'fc-host-' || c, 'linux', 'x86_64', 4 << c, 65536,
		       NULL, ARRAY['linux', 'x86_64', 'class' || c], (ARRAY[12, 8, 4])[c + 1], NULL, NULL, 1, 'bench',
		       86400 * 365) AS id
		  FROM generate_series(0, 2) c;
		-- what the generator knows: the real queue wait and run time, and the
		-- oracle's p10/p50/p90 from the true parameters
		CREATE TABLE bench_fc.truth (pipeline_id bigint PRIMARY KEY, run int, load_tasks int, wait_s float8,
		                             run_s float8, oracle_p50_s float8, oracle_p10_s float8, oracle_p90_s float8);
		-- runs one pipeline: plan maps task -> [start (s from p_t0), duration,
		-- class, outcome, retry share]; tasks are claimed in order of start,
		-- so every upstream has finished first
		CREATE FUNCTION bench_fc.replay(p_pid bigint, p_t0 timestamptz, p_plan jsonb) RETURNS void
		LANGUAGE plpgsql AS $$
		DECLARE
		    t   record;
		    st  timestamptz;
		    att int;
		    ag  bigint;
		    d   float8;
		BEGIN
		    FOR t IN SELECT k.id, k.name, p_plan -> k.name AS p FROM railyard.tasks k
		              WHERE k.pipeline_id = p_pid ORDER BY ((p_plan -> k.name) ->> 0)::float8, k.id LOOP
		        st := p_t0 + make_interval(secs => (t.p ->> 0)::float8);
		        d := (t.p ->> 1)::float8;
		        SELECT id INTO ag FROM bench_fc.agents WHERE cls = (t.p ->> 2)::int;
		        att := NULL;
		        SELECT c.attempt INTO att FROM railyard.claim_tasks(ag, ARRAY[t.id]) c;
		        IF att IS NULL THEN
		            RAISE EXCEPTION 'replay: task % of pipeline % is not ready', t.name, p_pid;
		        END IF;
		        IF (t.p ->> 4)::float8 > 0 THEN
		            PERFORM railyard.requeue_tasks(ARRAY[t.id], 'agent lost');
		            st := st + make_interval(secs => d * (t.p ->> 4)::float8);
		            SELECT c.attempt INTO att FROM railyard.claim_tasks(ag, ARRAY[t.id]) c;
		        END IF;
		        PERFORM railyard.complete_tasks(ag, ARRAY[t.id], ARRAY[att], ARRAY[t.p ->> 3], ARRAY[0],
		            ARRAY[NULL]::text[], ARRAY[st], ARRAY[st + make_interval(secs => d)],
		            ARRAY[NULL]::text[], ARRAY[NULL]::text[]);
		    END LOOP;
		END $$;
	EOF
}

bench_forecast() {
	local families=10 runs=60 inject=5
	((QUICK)) && families=6 runs=30 inject=4
	local dir=$TMP/work/forecast db=bench_forecast
	mkdir -p "$dir"
	meta forecast params "$families pipeline families x $runs runs (8-16 tasks each, $inject injected regressions per family; tasks without a class label ${FORECAST_GENERIC:-0.3333}, cacheable ${FORECAST_CACHE:-0.25}), replayed in time order through claim_tasks/complete_tasks; forecast at submission vs mean of the family's last 3 runs and vs an oracle that knows the generator"
	fc_generate 4242 "$families" "$runs" "$inject" >"$dir/replay.sql" 3>"$dir/injected.txt"
	fc_setup_sql >"$dir/setup.sql"
	new_db "$db"
	local t0 t1
	if ! qfile "$db" "$dir/setup.sql" >/dev/null 2>"$dir/setup.err"; then
		invalid forecast "replay" "setup failed: $(head -n 3 "$dir/setup.err")"
		return
	fi
	t0=$(now)
	if ! qfile "$db" "$dir/replay.sql" >"$dir/replay.out" 2>"$dir/replay.err"; then
		invalid forecast "replay" "the replay failed: $(head -n 3 "$dir/replay.err")"
		drop_db "$db"
		return
	fi
	t1=$(now)
	local npipe ntask
	npipe=$(q "$db" "SELECT count(*) FROM railyard.pipeline_history WHERE family <> 'load'")
	ntask=$(q "$db" "SELECT count(*) FROM railyard.run_history WHERE family <> 'load'")
	say "replayed $npipe pipelines, $ntask task runs (and the load bursts) in $(calc "$t1 - $t0" %.1f) s"

	# All judged on the same pipelines: every run of a family from its 4th
	# on (the baseline needs 3).  The replay must have reproduced the
	# generated run times (sanity), else nothing here means anything.
	local acc
	acc=$(q "$db" "WITH j AS (
		SELECT h.duration_s AS a, f.p50_s, f.p10_s, f.p90_s, f.baseline_s, t.oracle_p50_s AS o,
		       t.oracle_p10_s AS o10, t.oracle_p90_s AS o90, t.run_s
		  FROM railyard.pipeline_forecasts f JOIN railyard.pipeline_history h USING (pipeline_id)
		  JOIN bench_fc.truth t USING (pipeline_id)
		 WHERE f.kind = 'submit' AND h.outcome = 'succeeded' AND t.run > 3)
		SELECT count(*),
		       round(100.0 * avg((abs(p50_s - a) / a <= 0.10)::int), 1),
		       round(100.0 * avg((abs(baseline_s - a) / a <= 0.10)::int), 1),
		       round(100.0 * avg((abs(o - a) / a <= 0.10)::int), 1),
		       round(100.0 * avg((abs(p50_s - a) / a <= 0.15)::int), 1),
		       round(100.0 * avg((abs(baseline_s - a) / a <= 0.15)::int), 1),
		       round(100.0 * avg((abs(o - a) / a <= 0.15)::int), 1),
		       round((100 * percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(p50_s - a) / a))::numeric, 2),
		       round((100 * percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(baseline_s - a) / a))::numeric, 2),
		       round((100 * percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(o - a) / a))::numeric, 2),
		       round(100.0 * avg((a BETWEEN p10_s AND p90_s)::int), 1),
		       round(100.0 * avg((a BETWEEN o10 AND o90)::int), 1),
		       count(*) FILTER (WHERE abs(run_s - a) > 0.01 * a)
		  FROM j" | tr '|' ' ')
	local n w10 b10 o10 w15 b15 o15 md bmd omd cov ocov bad
	read -r n w10 b10 o10 w15 b15 o15 md bmd omd cov ocov bad <<<"$acc"
	if [[ -z $n || $n == 0 || $bad != 0 ]]; then
		invalid forecast "accuracy" "${bad:-?} of ${n:-0} replayed run times differ from the generated ones by > 1 %"
		drop_db "$db"
		return
	fi
	row forecast "pipelines within 10 %" "%" "$w10" "$b10" "$(ratio "$w10" "$b10" 2)" ">= 95" \
		"$(verdict "$w10" ">=" 95)" "$n pipelines (every run from a family's 4th on); baseline: mean of the family's last 3 run times; an oracle that knows the generator's true parameters (median of 200 simulations of each run) gets $o10 %"
	row forecast "pipelines within 15 %" "%" "$w15" "$b15" "$(ratio "$w15" "$b15" 2)" "> baseline" \
		"$(verdict "$w15" ">" "$b15")" "oracle: $o15 %"
	row forecast "median absolute % error" "%" "$md" "$bmd" "$(ratio "$md" "$bmd" 2)" "< baseline" \
		"$(verdict "$md" "<" "$bmd")" "oracle: $omd %"
	row forecast "p10-p90 interval coverage" "%" "$cov" "" "" "75-85" \
		"$(awk -v c="$cov" 'BEGIN { print (c >= 75 && c <= 85) ? "met" : "missed" }')" \
		"share of actual run times inside the forecast p10-p90 interval (the oracle's: $ocov %); the baseline has none"

	# The queue wait of the runs behind a burst, forecast from the load.
	local qwait
	qwait=$(q "$db" "SELECT count(*),
		       round((100 * percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(f.queue_wait_s - t.wait_s) / t.wait_s))::numeric, 1),
		       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t.wait_s)::numeric),
		       round(100.0 * avg((abs(f.queue_wait_s - t.wait_s) <= 0.15 * t.wait_s)::int), 1)
		  FROM railyard.pipeline_forecasts f JOIN bench_fc.truth t USING (pipeline_id)
		 WHERE f.kind = 'submit' AND t.load_tasks > 0 AND t.wait_s > 0" | tr '|' ' ')
	local nq qmd qmed q15
	read -r nq qmd qmed q15 <<<"$qwait"
	row forecast "queue wait behind a burst, median abs. error" "%" "${qmd:-}" "" "" "" "" \
		"$nq runs queued behind 25-72 higher-priority tasks (median wait $qmed s); $q15 % within 15 %; the forecast sees the load, not its durations"

	# Recall: an injected step flagged slower/slow_run on its task by its
	# 5th execution since (a cache hit runs nothing a detector could see);
	# also counted by pipeline runs.  A false alarm: a task duration
	# anomaly outside every injection's window.
	local inj
	inj=$(awk '{ printf "%s(\047%s\047, \047%s\047, %d)", (NR > 1 ? ", " : ""), $1, $2, $3 }' "$dir/injected.txt")
	q "$db" "CREATE TABLE bench_fc.inj AS
		SELECT i.*, coalesce((SELECT t.run FROM railyard.run_history h JOIN bench_fc.truth t USING (pipeline_id)
		                       WHERE h.family = i.family AND h.task = i.task AND h.outcome = 'succeeded'
		                         AND t.run >= i.at ORDER BY t.run OFFSET 4 LIMIT 1), $runs) AS by_run
		  FROM (VALUES $inj) AS i(family, task, at)" >/dev/null
	local found total found_r fa
	read -r found found_r total < <(q "$db" "SELECT
		count(*) FILTER (WHERE EXISTS (SELECT 1 FROM railyard.anomaly_log a JOIN bench_fc.truth t USING (pipeline_id)
		    WHERE a.family = i.family AND a.task = i.task AND a.kind IN ('slower', 'slow_run')
		      AND t.run BETWEEN i.at AND i.by_run)),
		count(*) FILTER (WHERE EXISTS (SELECT 1 FROM railyard.anomaly_log a JOIN bench_fc.truth t USING (pipeline_id)
		    WHERE a.family = i.family AND a.task = i.task AND a.kind IN ('slower', 'slow_run')
		      AND t.run BETWEEN i.at AND i.at + 5)),
		count(*) FROM bench_fc.inj i" | tr '|' ' ')
	fa=$(q "$db" "SELECT count(*) FROM railyard.anomaly_log a JOIN bench_fc.truth t USING (pipeline_id)
		 WHERE a.task <> '' AND a.kind IN ('slower', 'slow_run', 'faster', 'fast_run')
		   AND NOT EXISTS (SELECT 1 FROM bench_fc.inj i WHERE i.family = a.family AND i.task = a.task
		                     AND t.run BETWEEN i.at AND i.by_run)")
	local recall fa_rate
	recall=$(calc "100 * $found / ($total > 0 ? $total : 1)" %.1f)
	fa_rate=$(calc "1000 * $fa / $ntask" %.2f)
	row forecast "regressions >= 30 % found within 5 executions" "%" "$recall" "" "" ">= 95" \
		"$(verdict "$recall" ">=" 95)" "$found of $total injected step regressions (+30 to +60 %) flagged slower/slow_run on their task by its 5th execution since (cache hits are no executions); within 5 pipeline runs: $found_r"
	row forecast "false alarms per 1,000 task runs" "" "$fa_rate" "" "" "<= 10" "$(verdict "$fa_rate" "<=" 10)" \
		"$fa task duration anomalies outside every injection's window in $ntask task runs (agent classes of different speed, drift, cache hits, retries and queueing bursts in the history)"

	# Speed: pipeline_forecast of a 200- and a 2,000-task DAG whose tasks
	# all have history, on this farm of 24 slots (median of 5 calls in one
	# session, timed by the server; the first call also plans its queries).
	local size id ms first
	for size in 200 2000; do
		id=$(q "$db" "SET jit = off;
			WITH p AS (INSERT INTO railyard.pipelines (name, team) VALUES ('speed$size@x', 'bench') RETURNING id),
			     t AS (INSERT INTO railyard.tasks (pipeline_id, name, kind, command)
			           SELECT p.id, 't' || g, 'build', 'true' FROM p, generate_series(1, $size) g RETURNING pipeline_id),
			     e AS (INSERT INTO railyard.edges (pipeline_id, upstream, downstream)
			           SELECT DISTINCT p.id, 't' || u, 't' || g FROM p, generate_series(2, $size) g,
			                  LATERAL (VALUES (greatest(1, g - 1 - (g * 7919) % 13)), (greatest(1, g - 1 - (g * 104729) % 29))) x(u)
			            WHERE u < g RETURNING 1)
			SELECT id FROM p" | tail -n 1)
		q "$db" "INSERT INTO railyard.duration_stats (family, task, version, agent_class, kind, runs, win, ewma_log, median_s, mad_log)
			SELECT 'speed$size', 't' || g, '1', '*', 'build', 10, '{1}', ln(10 + g % 50), 10 + g % 50, 0.08
			  FROM generate_series(1, $size) g" >/dev/null
		read -r first ms < <(q "$db" "DO \$\$ DECLARE t timestamptz; v float8[] := '{}'; x float8; BEGIN
			FOR i IN 1..5 LOOP t := clock_timestamp(); SELECT p50_s INTO x FROM railyard.pipeline_forecast($id);
			v := v || extract(epoch FROM clock_timestamp() - t) * 1000; END LOOP;
			RAISE NOTICE 'ms % %', v[1], (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY y) FROM unnest(v) y); END \$\$" 2>&1 |
			sed -n 's/.*ms \([0-9.]*\) \([0-9.]*\).*/\1 \2/p')
		local goal=50
		((size == 2000)) && goal=500
		row forecast "pipeline_forecast, $size tasks" "ms" "$(fmt "$ms" 1)" "" "" "< $goal" "$(verdict "$ms" "<" "$goal")" \
			"median of 5 calls in one session (the first, which also plans: $(fmt "$first" 1) ms); $(q "$db" "SELECT samples || ' draws, ' || method FROM railyard.pipeline_forecast($id)")"
	done
	drop_db "$db"
}
