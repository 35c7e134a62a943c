# shellcheck shell=bash
#
# 7. Forecast accuracy and anomaly detection (issue 8, docs/forecasting.md).
# A generated CI history with the properties of real CI, replayed in time
# order through the real SQL (each run submitted with INSERTs, so its
# forecast is recorded at COMMIT; then every task claimed with
# claim_tasks and finished with complete_tasks at its generated times, so
# the statistics and detectors run in the completion triggers):
#   - pipeline families with DAGs of 8-16 tasks; each task a base duration
#     (lognormal, 10-200 s) and its own noise (lognormal sigma 0.03-0.10);
#   - three agent classes of different speed (x1.0, x0.8, x1.3), each run of
#     a task on one of them at random;
#   - cache hits (10 % of tasks that have upstreams, outcome cached);
#   - retries (1 %: the first attempt is lost half-way and requeued);
#   - step regressions (+30 % to +60 %, from some run on, in half of the
#     families, one task each) and slow drift (+0.1 % per run on a third of
#     the tasks);
#   - bursts of queueing (one run in ten waits 5-60 s for a slot before
#     each task).
# Figures: share of pipelines within 10 % / 15 %, MdAPE and p10-p90
# coverage of the forecast at submission, against the naive baseline (mean
# of the family's last 3 runs) on the same pipelines; recall of the
# injected regressions (a slower or slow_run anomaly on that task within 5
# runs) and false alarms (task anomalies matching no injection) per 1,000
# task runs.

bench_title_forecast() {
	echo "7. Forecast accuracy and anomaly detection"
}

# fc_generate SEED FAMILIES RUNS: the replay script (psql) on stdout, the
# injected regressions ("family task run") on fd 3.
fc_generate() {
	awk -v seed="$1" -v F="$2" -v R="$3" '
		function gauss() { return sqrt(-2 * log(1 - rand())) * cos(6.283185307 * rand()) }
		function q(s) { return "\047" s "\047" }
		BEGIN {
			srand(seed)
			speed[0] = 1.0; speed[1] = 0.8; speed[2] = 1.3
			for (f = 1; f <= F; f++) {
				n[f] = 8 + int(rand() * 9)
				for (i = 1; i <= n[f]; i++) {
					base[f, i] = exp(log(10) + rand() * log(20))
					sig[f, i] = 0.03 + rand() * 0.07
					drift[f, i] = (rand() < 0.33) ? 0.001 : 0
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
				stepat[f] = 0
				if (f % 2 == 1) {
					steptask[f] = 1 + int(rand() * n[f])
					stepat[f] = int(R * 0.4) + int(rand() * R * 0.3)
					stepf[f] = 1.3 + rand() * 0.3
					printf "%s %s %d\n", "fam" f, sprintf("t%02d", steptask[f]), stepat[f] > "/dev/fd/3"
				}
			}
			for (r = 1; r <= R; r++) for (f = 1; f <= F; f++) {
				print "BEGIN;"
				printf "INSERT INTO railyard.pipelines (name, team) VALUES (%s, \047bench\047) RETURNING id \\gset\n", q("fam" f "@r" r)
				printf "INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command) VALUES "
				for (i = 1; i <= n[f]; i++)
					printf "%s(:id, %s, %s, %s, \047true\047)", (i > 1 ? ", " : ""), q(sprintf("t%02d", i)), q("svc" f "-" (i % 3)), q(i % 2 ? "build" : "test")
				print ";"
				e = ""
				for (i = 1; i <= n[f]; i++) for (x = 1; x <= np[f, i]; x++)
					e = e (e == "" ? "" : ", ") sprintf("(:id, %s, %s)", q(sprintf("t%02d", pred[f, i, x])), q(sprintf("t%02d", i)))
				if (e != "") print "INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES " e ";"
				print "COMMIT;"
				burst = (rand() < 0.1)
				plan = ""
				for (i = 1; i <= n[f]; i++) {
					cls = int(rand() * 3)
					d = base[f, i] * speed[cls] * (1 + drift[f, i] * r) * exp(sig[f, i] * gauss())
					if (stepat[f] && i == steptask[f] && r >= stepat[f]) d *= stepf[f]
					out = "succeeded"
					if (np[f, i] > 0 && rand() < 0.10) { out = "cached"; d = 0.2 }
					retry = (rand() < 0.01) ? 0.5 : 0
					wait = burst ? 5 + rand() * 55 : 0
					plan = plan (plan == "" ? "" : ", ") sprintf("\"t%02d\": [%.3f, %d, \"%s\", %.3f, %.2f]", i, d, cls, out, wait, retry)
				}
				printf "SELECT bench_fc.replay(:id, %s, \047{%s}\047);\n", q(sprintf("2026-01-01 00:00:00+00")) "::timestamptz + interval \047" (r * 86400 + f * 3600) " seconds\047", plan
			}
		}'
}

fc_setup_sql() {
	cat <<-'EOF'
		CREATE SCHEMA bench_fc;
		-- one agent per class: (cores 4, 8, 16) with different labels
		CREATE TABLE bench_fc.agents AS
		SELECT c AS cls, railyard.register_agent('fc-' || c, 'fc-host-' || c, 'linux', 'x86_64', 4 << c, 65536,
		       NULL, ARRAY['linux', 'x86_64', 'class' || c], 8, NULL, NULL, 1, 'bench', 86400 * 365) AS id
		  FROM generate_series(0, 2) c;
		-- runs one pipeline: plan maps task -> [duration, class, outcome, wait, retry share]
		CREATE FUNCTION bench_fc.replay(p_pid bigint, p_t0 timestamptz, p_plan jsonb) RETURNS void
		LANGUAGE plpgsql AS $$
		DECLARE
		    t   record;
		    fin jsonb := '{}';
		    st  timestamptz;
		    att int;
		    ag  bigint;
		    p   jsonb;
		    d   float8;
		BEGIN
		    LOOP
		        SELECT id, name INTO t FROM railyard.tasks
		         WHERE pipeline_id = p_pid AND state = 'ready' ORDER BY id LIMIT 1;
		        EXIT WHEN NOT FOUND;
		        p := p_plan -> t.name;
		        SELECT max((fin ->> e.upstream)::timestamptz) INTO st FROM railyard.edges e
		         WHERE e.pipeline_id = p_pid AND e.downstream = t.name;
		        st := coalesce(st, p_t0) + make_interval(secs => (p ->> 3)::float8);
		        d := (p ->> 0)::float8;
		        SELECT id INTO ag FROM bench_fc.agents WHERE cls = (p ->> 1)::int;
		        SELECT c.attempt INTO att FROM railyard.claim_tasks(ag, ARRAY[t.id]) c;
		        IF (p ->> 4)::float8 > 0 THEN
		            PERFORM railyard.requeue_tasks(ARRAY[t.id], 'agent lost');
		            st := st + make_interval(secs => d * (p ->> 4)::float8);
		            SELECT c.attempt INTO att FROM railyard.claim_tasks(ag, ARRAY[t.id]) c;
		        END IF;
		        PERFORM railyard.complete_tasks(ag, ARRAY[t.id], ARRAY[att], ARRAY[p ->> 2], ARRAY[0],
		            ARRAY[NULL]::text[], ARRAY[st], ARRAY[st + make_interval(secs => d)],
		            ARRAY[NULL]::text[], ARRAY[NULL]::text[]);
		        fin := fin || jsonb_build_object(t.name, st + make_interval(secs => d));
		    END LOOP;
		END $$;
	EOF
}

bench_forecast() {
	local families=8 runs=60
	((QUICK)) && families=4 runs=30
	local dir=$TMP/work/forecast db=bench_forecast
	mkdir -p "$dir"
	meta forecast params "$families pipeline families x $runs runs (8-16 tasks each), replayed in time order through claim_tasks/complete_tasks; forecast at submission vs mean of the family's last 3 runs"
	fc_generate 4242 "$families" "$runs" >"$dir/replay.sql" 3>"$dir/injected.txt"
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
	npipe=$(q "$db" "SELECT count(*) FROM railyard.pipeline_history")
	ntask=$(q "$db" "SELECT count(*) FROM railyard.run_history")
	say "replayed $npipe pipelines, $ntask task runs in $(calc "$t1 - $t0" %.1f) s"

	# Both judged on the same pipelines: every succeeded run from the 4th
	# of its family on (the baseline needs 3 runs).
	local acc
	acc=$(q "$db" "WITH j AS (
		SELECT h.duration_s AS a, f.p50_s, f.p10_s, f.p90_s, f.baseline_s
		  FROM railyard.pipeline_forecasts f JOIN railyard.pipeline_history h USING (pipeline_id)
		  JOIN railyard.pipelines p ON p.id = f.pipeline_id
		 WHERE f.kind = 'submit' AND h.outcome = 'succeeded'
		   AND split_part(p.name, '@r', 2)::int > 3)
		SELECT count(*),
		       round(100.0 * avg((abs(p50_s - a) / a <= 0.10)::int), 1),
		       round(100.0 * avg((abs(baseline_s - a) / a <= 0.10)::int), 1),
		       round(100.0 * avg((abs(p50_s - a) / a <= 0.15)::int), 1),
		       round(100.0 * avg((abs(baseline_s - a) / a <= 0.15)::int), 1),
		       round((100 * percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(p50_s - a) / a))::numeric, 2),
		       round((100 * percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(baseline_s - a) / a))::numeric, 2),
		       round(100.0 * avg((a BETWEEN p10_s AND p90_s)::int), 1)
		  FROM j" | tr '|' ' ')
	local n w10 b10 w15 b15 md bmd cov
	read -r n w10 b10 w15 b15 md bmd cov <<<"$acc"
	row forecast "pipelines within 10 %" "%" "$w10" "$b10" "$(ratio "$w10" "$b10" 2)" ">= 95" \
		"$(verdict "$w10" ">=" 95)" "$n pipelines (every run from a family's 4th on); baseline: mean of the family's last 3 run times"
	row forecast "pipelines within 15 %" "%" "$w15" "$b15" "$(ratio "$w15" "$b15" 2)" "> baseline" \
		"$(verdict "$w15" ">" "$b15")"
	row forecast "median absolute % error" "%" "$md" "$bmd" "$(ratio "$md" "$bmd" 2)" "< baseline" \
		"$(verdict "$md" "<" "$bmd")"
	row forecast "p10-p90 interval coverage" "%" "$cov" "" "" "75-85" \
		"$(awk -v c="$cov" 'BEGIN { print (c >= 75 && c <= 85) ? "met" : "missed" }')" \
		"share of actual run times inside the forecast p10-p90 interval; the baseline has none"

	# Recall: an injected step found as slower/slow_run on its task within 5 runs.
	local inj found=0 total=0 fam task at hit
	while read -r fam task at; do
		total=$((total + 1))
		hit=$(q "$db" "SELECT count(*) FROM railyard.anomaly_log a JOIN railyard.pipelines p ON p.id = a.pipeline_id
			WHERE a.family = '$fam' AND a.task = '$task' AND a.kind IN ('slower', 'slow_run')
			  AND split_part(p.name, '@r', 2)::int BETWEEN $at AND $((at + 5))")
		((hit > 0)) && found=$((found + 1))
	done <"$dir/injected.txt"
	local fa
	fa=$(q "$db" "WITH inj(family, task, at) AS (VALUES $(awk '{ printf "%s(\047%s\047, \047%s\047, %d)", (NR > 1 ? ", " : ""), $1, $2, $3 }' "$dir/injected.txt"))
		SELECT count(*) FROM railyard.anomaly_log a JOIN railyard.pipelines p ON p.id = a.pipeline_id
		 WHERE a.task <> '' AND a.kind IN ('slower', 'slow_run', 'faster', 'fast_run')
		   AND NOT EXISTS (SELECT 1 FROM inj WHERE inj.family = a.family AND inj.task = a.task
		                     AND split_part(p.name, '@r', 2)::int BETWEEN inj.at AND inj.at + 5)")
	local recall fa_rate
	recall=$(calc "100 * $found / ($total > 0 ? $total : 1)" %.1f)
	fa_rate=$(calc "1000 * $fa / $ntask" %.2f)
	row forecast "regressions >= 30 % found within 5 runs" "%" "$recall" "" "" ">= 95" \
		"$(verdict "$recall" ">=" 95)" "$found of $total injected step regressions (+30 to +60 %) flagged slower/slow_run on their task"
	row forecast "false alarms per 1,000 task runs" "" "$fa_rate" "" "" "<= 10" "$(verdict "$fa_rate" "<=" 10)" \
		"$fa task anomalies matching no injection in $ntask task runs (with agent classes of different speed, drift, cache hits, retries and queueing bursts in the history)"
	# Speed: pipeline_forecast of a 200- and a 2,000-task DAG whose tasks
	# all have history (median of 5 calls, timed by the server).
	local size id ms
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
		ms=$(q "$db" "DO \$\$ DECLARE t timestamptz; v float8[] := '{}'; x float8; BEGIN
			FOR i IN 1..5 LOOP t := clock_timestamp(); SELECT p50_s INTO x FROM railyard.pipeline_forecast($id);
			v := v || extract(epoch FROM clock_timestamp() - t) * 1000; END LOOP;
			RAISE NOTICE 'ms %', (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY y) FROM unnest(v) y); END \$\$" 2>&1 |
			sed -n 's/.*ms \([0-9.]*\).*/\1/p')
		local goal=50
		((size == 2000)) && goal=500
		row forecast "pipeline_forecast, $size tasks" "ms" "$(fmt "$ms" 1)" "" "" "< $goal" "$(verdict "$ms" "<" "$goal")" \
			"median of 5 calls; $(q "$db" "SELECT samples || ' Monte Carlo draws' FROM railyard.pipeline_forecast($id)")"
	done
	drop_db "$db"
}
