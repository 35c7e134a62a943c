#!/usr/bin/env bash
# Metrics and health (issue 11, item 7): a worker serves /metrics in the
# Prometheus text format and /healthz over HTTP on the address it is
# given; a scrape during a run shows the tasks running and the
# concurrency limit, one after it the claims, the claim-latency histogram
# and the completions by outcome; the dashboard views answer for Grafana.
. "$(dirname "$0")/lib.sh"

scrape_during_and_after_a_run() {
	ry_newdb scrape
	local wd=$RY_WORKDIR/w-scrape id url text
	# Four tasks hold until the file go exists, so the scrape sees them run.
	id=$(ry_submit "(name) VALUES ('metrics')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		SELECT :id, 't' || g, 'while [ ! -e \"$RY_WORKDIR/go\" ]; do sleep 0.05; done'
		  FROM generate_series(1, 4) g;
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'bad', 'exit 3');")
	start_worker m1 --slots 6 --workdir "$wd" --http-listen 127.0.0.1:0 --cgroup off
	wait_for 30 metrics_url m1
	url=$(metrics_url m1)
	[[ $url == http://127.0.0.1:* ]] || fail "the worker does not say where it serves: $url"

	# During the run: four running, limit six.
	wait_for 60 sql_eq 4 "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND state = 'running' AND started_at IS NOT NULL"
	wait_for 30 bash -c "curl -fsS '${url}metrics' | grep -qx 'railyard_tasks_running{agent=\"m1\"} 4'"
	text=$(curl -fsS -D "$RY_WORKDIR/headers" "${url}metrics")
	grep -qi '^content-type: text/plain; version=0.0.4' "$RY_WORKDIR/headers" ||
		fail "/metrics is not served as the Prometheus text format: $(cat "$RY_WORKDIR/headers")"
	[[ $(metric "$text" 'railyard_concurrency_limit{agent="m1"}') == 6 ]] ||
		fail "concurrency limit is not 6: $text"
	[[ $(metric "$text" 'railyard_db_connected{agent="m1"}') == 1 ]] ||
		fail "the scrape says the database is not connected: $text"
	local health
	health=$(curl -fsS "${url}healthz") || fail "/healthz did not answer 200"
	[[ $health == ok* && $health == *"database: connected"* && $health == *"running: 4"* ]] ||
		fail "/healthz says: $health"
	[[ $(curl -s -o /dev/null -w '%{http_code}' "${url}nothing") == 404 ]] ||
		fail "an unknown path does not answer 404"

	# After: one failure and four successes, claims counted in the histogram.
	touch "$RY_WORKDIR/go"
	wait_pipeline 60 "$id" failed >/dev/null
	wait_for 30 bash -c "curl -fsS '${url}metrics' | grep -qx 'railyard_completions_total{agent=\"m1\",outcome=\"succeeded\"} 4'"
	text=$(curl -fsS "${url}metrics")
	[[ $(metric "$text" 'railyard_completions_total{agent="m1",outcome="failed"}') == 1 ]] ||
		fail "one failed completion expected: $text"
	[[ $(metric "$text" 'railyard_tasks_claimed_total{agent="m1"}') == 5 ]] ||
		fail "five tasks claimed expected: $text"
	[[ $(metric "$text" 'railyard_tasks_running{agent="m1"}') == 0 ]] ||
		fail "tasks still running after the pipeline ended: $text"
	local count inf claims
	claims=$(metric "$text" 'railyard_claims_total{agent="m1"}')
	count=$(metric "$text" 'railyard_claim_latency_seconds_count{agent="m1"}')
	inf=$(metric "$text" 'railyard_claim_latency_seconds_bucket{agent="m1",le="+Inf"}')
	((claims >= 1 && count == claims && inf == claims)) ||
		fail "the histogram does not count every claim (claims $claims, count $count, +Inf $inf)"
	# Buckets never decrease.
	awk '/^railyard_claim_latency_seconds_bucket/ { if ($2 < prev) bad = 1; prev = $2 }
	     END { exit bad }' <<<"$text" || fail "the histogram buckets are not cumulative: $text"
	# Every sample line has HELP and TYPE for its family.
	local fam
	for fam in $(awk '!/^#/ { sub(/[{ ].*/, "", $1); sub(/_(bucket|sum|count)$/, "", $1); print $1 }' <<<"$text" | sort -u); do
		grep -q "^# TYPE $fam " <<<"$text" || fail "no TYPE line for $fam"
		grep -q "^# HELP $fam " <<<"$text" || fail "no HELP line for $fam"
	done

	# Draining: /healthz says so with 503.
	kill -TERM "$(worker_pid m1)"
	wait_for 30 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' '${url}healthz') == 503 || \$(curl -s -o /dev/null -w '%{http_code}' '${url}healthz') == 000 ]]"
	stop_worker m1
}

a_taken_port_is_not_fatal() {
	ry_newdb port
	local wd=$RY_WORKDIR/w-port id
	# Something else holds the port: the worker says so and works anyway.
	start_worker p1 --workdir "$wd" --http-listen 127.0.0.1:0 --cgroup off
	wait_for 30 bash -c "grep -q 'serving /metrics' '$RY_WORKDIR/worker-p1.log'"
	taken=$(metrics_url p1)
	taken=${taken#http://}
	taken=${taken%/}
	start_worker p2 --workdir "$wd-2" --http-listen "$taken" --cgroup off
	wait_for 30 grep -q "cannot serve /metrics and /healthz on $taken" "$RY_WORKDIR/worker-p2.log"
	stop_worker p1
	id=$(ry_submit "(name) VALUES ('port')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true');")
	wait_pipeline 60 "$id" succeeded >/dev/null
	[[ $(sql "SELECT h.agent_name FROM railyard.task_attempts h WHERE h.pipeline_id = $id") == p2 ]] ||
		fail "the worker without its port did not run the task"
}

config_is_checked() {
	local out
	out=$("$RY" worker --http-listen nowhere --dry-run 2>&1) && fail "a bad http_listen was accepted"
	[[ $out == *"http_listen must be HOST:PORT"* ]] || fail "unclear error for a bad http_listen: $out"
}

dashboard_views_answer() {
	ry_usedb scrape
	local n
	n=$(sql "SELECT sum(attempts) FROM railyard.dashboard_throughput WHERE team = 'default'")
	[[ $n == 5 ]] || fail "dashboard_throughput counts $n attempts, expected 5"
	n=$(sql "SELECT claims FROM railyard.dashboard_waits WHERE team = 'default'")
	[[ $n == 5 ]] || fail "dashboard_waits counts $n claims, expected 5"
	n=$(sql "SELECT count(*) FROM railyard.dashboard_queue_depth")
	[[ $n == 0 ]] || fail "dashboard_queue_depth shows a queue after the run: $n rows"
	n=$(sql "SELECT agent || ' ' || team || ' ' || (busy_s_1h > 0) FROM railyard.dashboard_utilization")
	[[ $n == "m1 default true" ]] || fail "dashboard_utilization: $n"
	ry_submit "(name, team) VALUES ('later', 'web')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true'), (:id, 'b', 'true');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'a', 'b');" >/dev/null
	n=$(sql "SELECT team || ' ' || ready || ' ' || blocked FROM railyard.dashboard_queue_depth")
	[[ $n == "web 1 1" ]] || fail "dashboard_queue_depth: $n"
}

run_scenario "a scrape during and after a run shows tasks, claims, latency and outcomes" scrape_during_and_after_a_run
run_scenario "a port in use is reported and the worker runs without /metrics" a_taken_port_is_not_fatal
run_scenario "a malformed http_listen is refused with the setting named" config_is_checked
run_scenario "the Grafana views show throughput, waits, queue depth and utilisation" dashboard_views_answer
