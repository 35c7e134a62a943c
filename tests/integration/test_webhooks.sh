#!/usr/bin/env bash
# Commit status and webhooks (issue 11, item 3): state changes reach the
# configured endpoints as JSON in the generic, GitHub or GitLab shape,
# through a transactional outbox (rows exist exactly when the change
# committed); one worker sends, signs with HMAC-SHA256 (verifiable with
# the snippet of docs/integrations.md), sends an idempotency key, retries
# with backoff while the endpoint is down and then delivers everything,
# in order per pipeline; what cannot be delivered becomes a dead letter
# visible in SQL.  The endpoint is tests/helpers/webhook_sink.
. "$(dirname "$0")/lib.sh"

SINK=$(dirname "$RY")/tests/helpers/webhook_sink
[[ -x $SINK ]] || { echo "no $SINK: run make unit first" >&2; exit 1; }

# start_sink NAME [PORT]: runs a sink logging to $RY_WORKDIR/NAME.log;
# sets SINK_PORT.  Answers with the code in $RY_WORKDIR/NAME.status if any.
start_sink() {
	local name=$1 port=${2:-0}
	"$SINK" "$port" "$RY_WORKDIR/$name.log" "$RY_WORKDIR/$name.status" >"$RY_WORKDIR/$name.port" &
	echo $! >"$RY_WORKDIR/$name.pid"
	at_exit kill "$(cat "$RY_WORKDIR/$name.pid")"
	wait_for 10 test -s "$RY_WORKDIR/$name.port"
	SINK_PORT=$(cat "$RY_WORKDIR/$name.port")
}

stop_sink() {
	local pid
	pid=$(cat "$RY_WORKDIR/$1.pid")
	kill "$pid"
	wait_for 10 ry_dead "$pid"
}

# worker_config NAME: a config file for a sending worker.
worker_config() {
	mkdir -p "$RY_WORKDIR/secrets"
	printf 'webhooks = on\nwebhook_secrets_dir = %s\ncgroup = off\n' "$RY_WORKDIR/secrets" \
		>"$RY_WORKDIR/$1.conf"
	echo "$RY_WORKDIR/$1.conf"
}

# The docs' verification snippet (docs/integrations.md, "Verifying the
# signature"), as a function: BODY_FILE SECRET_FILE -> sha256=HEX.
expected_signature() {
	printf 'sha256=%s' "$(openssl dgst -sha256 -hmac "$(cat "$2")" <"$1" | sed 's/^.*= //')"
}

# in_order LOG: for every (endpoint, pipeline), the first successful
# delivery of each outbox row comes in id order.
in_order() {
	local keys bad
	keys=$(awk -F'\t' '$1 == 200 && !seen[$3]++ { printf "%s%s", sep, "\x27" $3 "\x27"; sep = "," }' "$1")
	[[ -n $keys ]] || { echo "nothing delivered"; return 1; }
	bad=$(sql "WITH d AS (SELECT o.id, o.endpoint_id, o.pipeline_id, k.ord
	                        FROM unnest(ARRAY[$keys]::uuid[]) WITH ORDINALITY AS k (key, ord)
	                        JOIN railyard.webhook_outbox o ON o.idempotency_key = k.key)
	           SELECT count(*) FROM d a JOIN d b ON a.endpoint_id = b.endpoint_id
	              AND a.pipeline_id = b.pipeline_id AND a.id < b.id AND a.ord > b.ord")
	[[ $bad == 0 ]] || { echo "$bad pairs delivered out of order"; return 1; }
}

three_tasks() {
	ry_submit "(name, revision) VALUES ('$1', '0123456789abcdef0123456789abcdef01234567')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES
		    (:id, 'build', 'true'), (:id, 'test', 'true'), (:id, 'deploy', 'true');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES
		    (:id, 'build', 'test'), (:id, 'test', 'deploy');"
}

outbox_is_transactional() {
	ry_newdb tx
	sql "INSERT INTO railyard.webhook_endpoints (name, url, format) VALUES
	         ('gen', 'http://127.0.0.1:9/hook', 'generic'),
	         ('gh', 'https://api.github.invalid/repos/o/r/statuses/{sha}', 'github'),
	         ('gl', 'https://gitlab.invalid/api/v4/projects/7/statuses/{sha}', 'gitlab')"
	local id n
	id=$(three_tasks tx)
	# A cancel that rolls back leaves nothing in the outbox.
	n=$(sql "SELECT count(*) FROM railyard.webhook_outbox")
	sql "BEGIN; SELECT railyard.cancel_pipeline($id); ROLLBACK;" >/dev/null
	[[ $(sql "SELECT count(*) FROM railyard.webhook_outbox") == "$n" ]] ||
		fail "a rolled-back cancel left outbox rows"
	sql "SELECT railyard.cancel_pipeline($id)" >/dev/null
	n=$(sql "SELECT count(*) FROM railyard.webhook_outbox WHERE event = 'pipeline.cancelled'")
	[[ $n == 3 ]] || fail "the committed cancel wrote $n pipeline rows, expected one per endpoint (3)"
	# The shapes: GitHub and GitLab commit statuses, the generic event.
	local gh gl gen
	gh=$(sql "SELECT o.url || ' ' || o.body::text FROM railyard.webhook_outbox o
	            JOIN railyard.webhook_endpoints e ON e.id = o.endpoint_id
	           WHERE e.name = 'gh' AND o.event = 'task.cancelled' AND o.body->>'context' = 'railyard/build'")
	[[ $gh == "https://api.github.invalid/repos/o/r/statuses/0123456789abcdef0123456789abcdef01234567 "* &&
	   $gh == *'"state": "error"'* ]] || fail "GitHub status row: $gh"
	gl=$(sql "SELECT o.body::text FROM railyard.webhook_outbox o
	            JOIN railyard.webhook_endpoints e ON e.id = o.endpoint_id
	           WHERE e.name = 'gl' AND o.event = 'pipeline.cancelled'")
	[[ $gl == *'"name": "railyard"'* && $gl == *'"state": "canceled"'* ]] || fail "GitLab status row: $gl"
	gen=$(sql "SELECT o.body::text FROM railyard.webhook_outbox o
	             JOIN railyard.webhook_endpoints e ON e.id = o.endpoint_id
	            WHERE e.name = 'gen' AND o.event = 'task.cancelled' AND o.task_id IS NOT NULL LIMIT 1")
	[[ $gen == *'"event": "task.cancelled"'* && $gen == *'"pipeline": {'* && $gen == *'"task": {'* ]] ||
		fail "generic row: $gen"
	# A pipeline without a commit reaches the generic endpoint only.
	ry_submit "(name) VALUES ('nosha')" "INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true');" >/dev/null
	sql "SELECT railyard.cancel_pipeline(max(id)) FROM railyard.pipelines" >/dev/null
	n=$(sql "SELECT string_agg(DISTINCT e.format, ',') FROM railyard.webhook_outbox o
	           JOIN railyard.webhook_endpoints e ON e.id = o.endpoint_id
	          WHERE o.pipeline_id = (SELECT max(id) FROM railyard.pipelines)")
	[[ $n == generic ]] || fail "a pipeline without a commit went to: $n"
	# Bad endpoint definitions are refused with the constraint named.
	sql_expect_error "INSERT INTO railyard.webhook_endpoints (name, url, format) VALUES ('x', 'http://a/', 'bitbucket')" \
		webhook_format_valid >/dev/null
	sql_expect_error "INSERT INTO railyard.webhook_endpoints (name, url, secret_file) VALUES ('y', 'http://a/', '../etc/passwd')" \
		webhook_files_valid >/dev/null
}

delivered_signed_and_in_order() {
	ry_newdb deliver
	start_sink sink
	printf 'hunter2-%s\n' "$$" >"$RY_WORKDIR/secrets/sinkkey" 2>/dev/null ||
		{ mkdir -p "$RY_WORKDIR/secrets"; printf 'hunter2-%s\n' "$$" >"$RY_WORKDIR/secrets/sinkkey"; }
	printf 'Bearer t0ken\n' >"$RY_WORKDIR/secrets/ghtoken"
	sql "INSERT INTO railyard.webhook_endpoints (name, url, format, secret_file) VALUES
	         ('sink', 'http://127.0.0.1:$SINK_PORT/hook', 'generic', 'sinkkey');
	     INSERT INTO railyard.webhook_endpoints (name, url, format, auth_header, auth_file, events) VALUES
	         ('gh', 'http://127.0.0.1:$SINK_PORT/repos/o/r/statuses/{sha}', 'github', 'Authorization', 'ghtoken', '{task}')"
	local conf id1 id2
	conf=$(worker_config wd)
	start_worker wd --config "$conf" --workdir "$RY_WORKDIR/w-deliver" --http-listen off
	id1=$(three_tasks one)
	id2=$(three_tasks two)
	wait_pipeline 60 "$id1" succeeded >/dev/null
	wait_pipeline 60 "$id2" succeeded >/dev/null
	wait_for 60 sql_eq 0 "SELECT count(*) FROM railyard.webhook_outbox WHERE state <> 'delivered'"
	local rows lines
	rows=$(sql "SELECT count(*) FROM railyard.webhook_outbox")
	lines=$(awk -F'\t' '$1 == 200' "$RY_WORKDIR/sink.log" | cut -f3 | sort -u | wc -l)
	[[ $rows == "$lines" && $rows -gt 10 ]] ||
		fail "$rows outbox rows, $lines distinct deliveries seen by the endpoint"
	in_order "$RY_WORKDIR/sink.log" || fail "deliveries out of order"
	# Every generic delivery verifies with the documented snippet; the key is the row's.
	local status event key sig auth uri body n=0
	while IFS=$'\t' read -r status event key sig auth uri body; do
		[[ $uri == /hook ]] || continue
		printf '%s' "$body" >"$RY_WORKDIR/body"
		[[ $sig == "$(expected_signature "$RY_WORKDIR/body" "$RY_WORKDIR/secrets/sinkkey")" ]] ||
			fail "signature $sig does not verify for $body"
		[[ $(sql "SELECT event FROM railyard.webhook_outbox WHERE idempotency_key = '$key'") == "$event" ]] ||
			fail "delivery $key: event header $event is not the row's"
		n=$((n + 1))
	done <"$RY_WORKDIR/sink.log"
	((n > 0)) || fail "no generic delivery seen"
	# GitHub: the commit's URL, the token, a commit status body.
	grep -qP '^200\ttask.succeeded\t[^\t]+\t-\tBearer t0ken\t/repos/o/r/statuses/0123456789abcdef0123456789abcdef01234567\t\{.*"state": "success"' \
		"$RY_WORKDIR/sink.log" || fail "no GitHub status for a succeeded task: $(grep statuses "$RY_WORKDIR/sink.log" | head -3)"
	[[ $(sql "SELECT agent_name FROM railyard.webhook_sender") == wd ]] || fail "the sender is not recorded"
}

endpoint_down_then_back() {
	ry_newdb down
	start_sink down
	local port=$SINK_PORT conf id1 id2
	sql "INSERT INTO railyard.webhook_endpoints (name, url) VALUES ('down', 'http://127.0.0.1:$port/hook')"
	conf=$(worker_config wdown)
	start_worker wdown --config "$conf" --workdir "$RY_WORKDIR/w-down" --http-listen off
	id1=$(three_tasks a)
	wait_pipeline 60 "$id1" succeeded >/dev/null
	wait_for 60 sql_eq 0 "SELECT count(*) FROM railyard.webhook_outbox WHERE state <> 'delivered'"
	# Down: connection refused, then 503s.
	stop_sink down
	id2=$(three_tasks b)
	wait_pipeline 60 "$id2" succeeded >/dev/null
	# Only the head of the pipeline's queue is tried: the rest wait behind it.
	wait_for 60 sql_eq t "SELECT max(attempts) >= 2 FROM railyard.webhook_outbox WHERE state = 'pending'"
	[[ $(sql "SELECT count(*) FROM railyard.webhook_outbox WHERE state = 'pending' AND attempts > 0") == 1 ]] ||
		fail "rows behind a failing head were tried: $(sql "SELECT id, attempts FROM railyard.webhook_outbox WHERE state = 'pending'")"
	[[ $(sql "SELECT count(*) FROM railyard.webhook_outbox WHERE state = 'pending' AND last_error IS NOT NULL") -ge 1 ]] ||
		fail "no failed attempt recorded while the endpoint was down"
	echo 503 >"$RY_WORKDIR/down.status"
	start_sink down "$port"
	wait_for 60 bash -c "grep -q '^503' '$RY_WORKDIR/down.log'"
	[[ $(sql "SELECT count(*) FROM railyard.webhook_outbox WHERE state = 'delivered' AND pipeline_id = $id2") == 0 ]] ||
		fail "something counted as delivered on a 503"
	# Back: everything arrives, in order.
	rm "$RY_WORKDIR/down.status"
	wait_for 120 sql_eq 0 "SELECT count(*) FROM railyard.webhook_outbox WHERE state <> 'delivered'"
	local rows lines
	rows=$(sql "SELECT count(*) FROM railyard.webhook_outbox")
	lines=$(awk -F'\t' '$1 == 200' "$RY_WORKDIR/down.log" | cut -f3 | sort -u | wc -l)
	[[ $rows == "$lines" ]] || fail "$rows outbox rows but $lines delivered"
	in_order "$RY_WORKDIR/down.log" || fail "deliveries out of order after the outage"
	# The backoff grew: attempts of one row were spaced further apart.
	[[ $(sql "SELECT max(attempts) FROM railyard.webhook_outbox") -ge 3 ]] ||
		fail "no row needed three attempts"
}

dead_letters_are_visible() {
	ry_newdb dead
	start_sink dead
	echo 500 >"$RY_WORKDIR/dead.status"
	sql "INSERT INTO railyard.webhook_endpoints (name, url, max_attempts, events)
	     VALUES ('dead', 'http://127.0.0.1:$SINK_PORT/hook', 2, '{pipeline}')"
	local conf id
	conf=$(worker_config wdead)
	start_worker wdead --config "$conf" --workdir "$RY_WORKDIR/w-dead" --http-listen off
	id=$(ry_submit "(name) VALUES ('d')" "INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true');")
	wait_pipeline 60 "$id" succeeded >/dev/null
	wait_for 60 sql_eq 0 "SELECT count(*) FROM railyard.webhook_outbox WHERE state = 'pending'"
	local st
	st=$(sql "SELECT pending || ' ' || delivered || ' ' || dead || ' ' || (last_error LIKE 'HTTP 500%') FROM railyard.webhook_status")
	[[ $st == "0 0 2 true" ]] || fail "webhook_status: $st (expected 0 pending, 0 delivered, 2 dead, HTTP 500)"
	# Redelivered once the endpoint is fixed.
	rm "$RY_WORKDIR/dead.status"
	sql "SELECT railyard.webhook_redeliver(array_agg(id)) FROM railyard.webhook_outbox" >/dev/null
	wait_for 60 sql_eq 2 "SELECT count(*) FROM railyard.webhook_outbox WHERE state = 'delivered'"
}

one_sender_farm_wide() {
	ry_newdb one
	start_sink one
	sql "INSERT INTO railyard.webhook_endpoints (name, url) VALUES ('one', 'http://127.0.0.1:$SINK_PORT/hook')"
	local c1 c2 ids=() i
	c1=$(worker_config s1)
	c2=$(worker_config s2)
	start_worker s1 --config "$c1" --workdir "$RY_WORKDIR/w-s1" --http-listen 127.0.0.1:0
	start_worker s2 --config "$c2" --workdir "$RY_WORKDIR/w-s2" --http-listen 127.0.0.1:0
	for i in 1 2 3 4; do ids+=("$(three_tasks "p$i")"); done
	for i in "${ids[@]}"; do wait_pipeline 60 "$i" succeeded >/dev/null; done
	wait_for 60 sql_eq 0 "SELECT count(*) FROM railyard.webhook_outbox WHERE state <> 'delivered'"
	# Each row was sent exactly once (nothing failed, so nothing repeats),
	# and both workers ran tasks while only one sent.
	local dup
	dup=$(cut -f3 "$RY_WORKDIR/one.log" | sort | uniq -d | wc -l)
	[[ $dup == 0 ]] || fail "$dup deliveries were sent twice with both senders healthy"
	[[ $(sql "SELECT count(DISTINCT agent_name) FROM railyard.task_attempts") == 2 ]] ||
		skip "one worker ran every task; cannot tell the senders apart"
	# Each worker's /metrics says how many it delivered: one did them all.
	local w url counts=()
	for w in s1 s2; do
		url=$(metrics_url "$w")
		counts+=("$(metric "$(curl -fsS "${url}metrics")" "railyard_webhooks_delivered_total{agent=\"$w\"}")")
	done
	local rows
	rows=$(sql "SELECT count(*) FROM railyard.webhook_outbox")
	[[ "${counts[*]}" == "$rows 0" || "${counts[*]}" == "0 $rows" ]] ||
		fail "deliveries by s1 and s2: ${counts[*]} (expected all $rows by one of them)"
}

run_scenario "outbox rows are written with the state change, in each endpoint's format" outbox_is_transactional
run_scenario "deliveries arrive signed, with idempotency keys, in order per pipeline" delivered_signed_and_in_order
run_scenario "an endpoint down for a while loses nothing and gets everything in order after" endpoint_down_then_back
run_scenario "undeliverable webhooks become dead letters visible in SQL, and can be redelivered" dead_letters_are_visible
run_scenario "one worker sends at a time although several have webhooks = on" one_sender_farm_wide
