#!/usr/bin/env bash
# The CLI a CI job uses (PRODUCT.md, "CLI" and "Integration points"):
# `railyard submit FILE` prints the id, `railyard wait ID [--follow]` exits
# with the pipeline's result (0 succeeded, 1 failed, 2 cancelled), `railyard
# cancel ID`, `railyard status [ID]`, bad spec files refused with FILE:LINE,
# `railyard --version`.  A scenario whose command is missing is skipped.
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes

# need_cmd NAME...: skips the scenario unless `railyard NAME --help` works.
need_cmd() {
	local c out
	for c in "$@"; do
		out=$("$RY" "$c" --help 2>&1) && continue
		# --help may print usage with status 2; the command still exists.
		if [[ $out == *"unknown command"* ]]; then
			skip "railyard $c does not exist yet"
		fi
	done
	return 0
}

# ry_cli ARGS...: runs railyard with a deadline (a hung wait must not hang
# the script); prints its output, returns its status.
ry_cli() {
	timeout -k 5 150 "$RY" "$@"
}

# cli_worker NAME: a worker for the scenario's pipelines.
cli_worker() {
	start_worker "$1" --slots 4 --heartbeat 1 --lease 3 --workdir "$RY_WORKDIR/w-$1"
}

no_process() { [[ -z $(task_pids "$1") ]]; }

# counts: pipelines, tasks and audit rows, to show nothing was stored.
counts() {
	sql "SELECT (SELECT count(*) FROM railyard.pipelines), (SELECT count(*) FROM railyard.tasks),
	            (SELECT count(*) FROM railyard.audit_log)"
}

version_is_printed() {
	local out want pq
	want=$(tr -d '[:space:]' <"$RY_ROOT/VERSION")
	pq=$(pkg-config --modversion libpq)	# the libpq.a it was linked with
	out=$("$RY" --version)
	[[ $out == "railyard $want"$'\n'"libpq $pq (linked in)" ]] ||
		fail "railyard --version printed '$out', expected 'railyard $want' and 'libpq $pq (linked in)'"
}

submit_then_wait_succeeds() {
	need_cmd submit wait
	ry_newdb cli-shop
	local id rc=0 out
	id=$(ry_cli submit "$RY_ROOT/examples/shop.yaml")
	[[ $id =~ ^[0-9]+$ ]] || fail "railyard submit printed '$id', not a pipeline id alone"
	[[ $(sql "SELECT name || ' ' || state || ' ' || (SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id)
	           FROM railyard.pipelines WHERE id = $id") == "shop@9f3c2e1 queued 23" ]] ||
		fail "pipeline $id is not the queued 23-task shop@9f3c2e1"
	cli_worker shop
	out=$(ry_cli wait "$id" --timeout 120 2>&1) || rc=$?
	echo "wait: $out"
	((rc == 0)) || fail "railyard wait $id exited $rc for a pipeline that should succeed: $out"
	[[ $(sql "SELECT state FROM railyard.pipelines WHERE id = $id") == succeeded ]] ||
		fail "wait exited 0 but pipeline $id is $(sql "SELECT state FROM railyard.pipelines WHERE id = $id")"
}

wait_follow_prints_progress() {
	need_cmd submit wait
	ry_newdb cli-follow
	local id rc=0 out name missing=""
	id=$(ry_cli submit "$RY_ROOT/examples/shop.yaml")
	[[ $id =~ ^[0-9]+$ ]] || fail "railyard submit printed '$id'"
	cli_worker follow
	out=$(ry_cli wait "$id" --follow --timeout 120) || rc=$?
	printf '%s\n' "$out"
	((rc == 0)) || fail "railyard wait $id --follow exited $rc"
	# A line per task claimed and per task finished or skipped, as it happened.
	while IFS= read -r name; do
		grep -Eq "(^|[[:space:]])${name}[[:space:]]+claim" <<<"$out" &&
			grep -Eq "(^|[[:space:]])${name}[[:space:]]+(finish|skip)" <<<"$out" ||
			missing+=" $name"
	done < <(sql "SELECT name FROM railyard.tasks WHERE pipeline_id = $id AND state = 'succeeded' ORDER BY id")
	[[ -z $missing ]] || fail "wait --follow printed no claim and finish lines for:$missing"
	grep -Eq "notify:failure[[:space:]]+skip" <<<"$out" || fail "wait --follow did not report notify:failure skipped"
	[[ $(tail -n 1 <<<"$out") == *succeeded* ]] || fail "the last line does not give the result: $(tail -n 1 <<<"$out")"
	(($(wc -l <<<"$out") >= 45)) || fail "expected a progress line per event, got $(wc -l <<<"$out") lines"
}

wait_exits_1_on_failure() {
	need_cmd submit wait
	ry_newdb cli-fail
	local id rc=0 out
	cat >fails.yaml <<-'EOF'
		name: failing
		tasks:
		  - name: build
		    command: echo compiling; exit 2
		  - name: test
		    command: "true"
		    needs: [build]
	EOF
	id=$(ry_cli submit fails.yaml)
	[[ $id =~ ^[0-9]+$ ]] || fail "railyard submit printed '$id'"
	cli_worker fail
	out=$(ry_cli wait "$id" --timeout 120 2>&1) || rc=$?
	echo "wait: $out"
	((rc == 1)) || fail "railyard wait exited $rc for a failed pipeline, expected 1"
	[[ $out == *build* ]] || fail "wait's output does not name the failed task: $out"
	# The end of the failed task's log, where the reason usually is.
	[[ $out == *"log of build, attempt 1"*"| compiling"* ]] || fail "wait does not show the failed task's log: $out"
	out=$(ry_cli status "$id")
	[[ $out == *"log of build, attempt 1"*"| compiling"* ]] ||
		fail "status $id does not show the failed task's log: $out"
}

cancel_makes_wait_exit_2() {
	need_cmd submit wait cancel
	ry_newdb cli-cancel
	local id tid rc=0 out waiter
	cat >long.yaml <<-'EOF'
		name: long
		tasks:
		  - name: long
		    command: sleep 60
		  - name: after
		    command: "true"
		    needs: [long]
	EOF
	id=$(ry_cli submit long.yaml)
	[[ $id =~ ^[0-9]+$ ]] || fail "railyard submit printed '$id'"
	tid=$(task_get "$id" long id)
	cli_worker cancel
	# A CI job waiting on the pipeline when someone cancels it.
	# (Its status goes through a file: a failing command in the background
	# job would fail the scenario.)
	{
		local wrc=0
		ry_cli wait "$id" --timeout 120 >wait.out 2>&1 || wrc=$?
		echo "$wrc" >wait.rc
	} &
	waiter=$!
	wait_for 30 sql_eq running "SELECT state FROM railyard.tasks WHERE id = $tid AND started_at IS NOT NULL"
	out=$(ry_cli cancel "$id" 2>&1) || fail "railyard cancel $id failed: $out"
	echo "cancel: $out"
	wait "$waiter"
	rc=$(cat wait.rc)
	echo "wait: $(cat wait.out)"
	((rc == 2)) || fail "railyard wait exited $rc for a cancelled pipeline, expected 2"
	[[ $(sql "SELECT state FROM railyard.pipelines WHERE id = $id") == cancelled ]] || fail "the pipeline is not cancelled"
	[[ $(sql "SELECT string_agg(state::text, ',' ORDER BY name) FROM railyard.tasks WHERE pipeline_id = $id") == "cancelled,cancelled" ]] ||
		fail "the tasks are not cancelled: $(sql "SELECT string_agg(name || '=' || state, ' ') FROM railyard.tasks WHERE pipeline_id = $id")"
	wait_for 10 no_process "$tid"
	# Cancelling an unknown pipeline is an error, naming it.
	rc=0
	out=$(ry_cli cancel 999999 2>&1) || rc=$?
	((rc != 0)) || fail "railyard cancel 999999 succeeded"
	[[ $out == *999999* ]] || fail "the error does not name pipeline 999999: $out"
}

status_shows_pipelines_and_agents() {
	need_cmd submit status
	ry_newdb cli-status
	local id out name
	id=$(ry_cli submit "$RY_ROOT/examples/shop.yaml")
	[[ $id =~ ^[0-9]+$ ]] || fail "railyard submit printed '$id'"
	start_worker status-agent --slots 4 --labels docker --dry-run --heartbeat 1 --lease 3 --workdir "$RY_WORKDIR/w-status"
	wait_agent 30 status-agent
	wait_pipeline 60 "$id" succeeded
	out=$(ry_cli status)
	printf '%s\n' "$out"
	grep -Eq "(^|[[:space:]])${id}[[:space:]]+shop@9f3c2e1[[:space:]].*succeeded" <<<"$out" ||
		fail "railyard status does not list pipeline $id shop@9f3c2e1 succeeded"
	grep -q "status-agent" <<<"$out" || fail "railyard status does not list agent status-agent"
	grep -q "docker" <<<"$out" || fail "railyard status does not show the agent's labels"
	out=$(ry_cli status "$id")
	printf '%s\n' "$out"
	grep -q "shop@9f3c2e1" <<<"$out" || fail "railyard status $id does not name the pipeline"
	grep -q "succeeded" <<<"$out" || fail "railyard status $id does not give its state"
	while IFS= read -r name; do
		grep -q -- "$name" <<<"$out" || fail "railyard status $id does not list task $name"
	done < <(sql "SELECT name FROM railyard.tasks WHERE pipeline_id = $id")

	# Why a task waits, in words.
	local id2
	id2=$(ry_submit "(name) VALUES ('needs-gpu')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, requires) VALUES (:id, 'train', 'true', '{gpu}');")
	out=$(ry_cli status "$id2")
	printf '%s\n' "$out"
	grep -q "no online agent has label gpu" <<<"$out" || fail "railyard status $id2 does not say why train waits"
	# An unknown pipeline is an error.
	local rc=0
	out=$(ry_cli status 999999 2>&1) || rc=$?
	((rc != 0)) || fail "railyard status 999999 succeeded: $out"
}

# bad_spec FILE EXPECTED_LINE WORDS...: submitting FILE exits 1 with an
# error naming FILE:EXPECTED_LINE (a regex) and WORDS, and stores nothing.
bad_spec() {
	local file=$1 line=$2 before after rc=0 out w
	shift 2
	before=$(counts)
	out=$(ry_cli submit "$file" 2>&1) || rc=$?
	echo "submit $file (status $rc): $out"
	((rc == 1)) || fail "railyard submit $file exited $rc, expected 1"
	grep -Eq "$file:$line" <<<"$out" || fail "the error does not name $file:$line: $out"
	for w in "$@"; do
		[[ $out == *"$w"* ]] || fail "the error does not mention '$w': $out"
	done
	after=$(counts)
	[[ $before == "$after" ]] || fail "a refused spec stored something: $before -> $after"
}

bad_spec_is_refused() {
	need_cmd submit
	ry_newdb cli-bad
	cat >unknown-key.yaml <<-'EOF'
		name: typo
		tasks:
		  - name: build
		    command: make
		    colour: red
	EOF
	bad_spec unknown-key.yaml 5 colour
	cat >cycle.yaml <<-'EOF'
		name: circular
		tasks:
		  - name: a
		    command: "true"
		    needs: [c]
		  - name: b
		    command: "true"
		    needs: [a]
		  - name: c
		    command: "true"
		    needs: [b]
	EOF
	bad_spec cycle.yaml '[0-9]+' cycle "a" "b" "c"
	printf '{"name": "json", "tasks": [{"name": "x", "command": "true", "needs": ["nope"]}]}\n' >unknown-need.json
	bad_spec unknown-need.json '[0-9]+' nope
	# A file that is not there: an error naming it, nothing stored.
	local rc=0 out
	out=$(ry_cli submit missing.yaml 2>&1) || rc=$?
	((rc != 0)) || fail "submitting a missing file succeeded"
	[[ $out == *missing.yaml* ]] || fail "the error does not name missing.yaml: $out"
}

# A lock held elsewhere keeps a command's statement waiting, as a slow query
# would.  lock_pipelines starts a session holding it (coproc LOCKER).
lock_pipelines() {
	coproc LOCKER { "$RY_PG_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$RAILYARD_DB" 2>&1; }
	echo "BEGIN; LOCK TABLE railyard.pipelines IN ACCESS EXCLUSIVE MODE; SELECT 'locked';" >&"${LOCKER[1]}"
	local line
	read -r -t 30 line <&"${LOCKER[0]}" || :
	[[ $line == locked ]] || fail "cannot lock railyard.pipelines: $line"
}

unlock_pipelines() {
	echo "ROLLBACK; \\q" >&"${LOCKER[1]}"
}

# cli_backends STATE: how many sessions of railyard's CLI are in STATE
# ("waiting": blocked on a lock; "any").
cli_backends() {
	local cond="true"
	[[ $1 == waiting ]] && cond="wait_event_type = 'Lock'"
	sql "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'railyard cli:%' AND $cond"
}

statement_timeout_and_interrupt_stop_the_query() {
	ry_newdb cli-timeouts
	lock_pipelines
	local rc out start
	# The statement timeout: default flag, --opt=value and the environment.
	for how in "--statement-timeout 1" "--statement-timeout=1" "env"; do
		rc=0 start=$(ry__now_us)
		if [[ $how == env ]]; then
			out=$(RAILYARD_STATEMENT_TIMEOUT=1 ry_cli status 2>&1) || rc=$?
		else
			# shellcheck disable=SC2086  # the option and its value
			out=$(ry_cli $how status 2>&1) || rc=$?
		fi
		((rc == 2)) && [[ $out == "railyard: error: "*"statement timeout"* ]] ||
			fail "status with $how against a locked table: status $rc: $out"
		(($(ry__now_us) - start < 30000000)) || fail "the 1 s statement timeout ($how) took over 30 s"
	done
	rc=0
	out=$(ry_cli --statement-timeout=soon status 2>&1) || rc=$?
	((rc == 2)) && [[ $out == "railyard: error: invalid --statement-timeout 'soon'"* ]] ||
		fail "a bad --statement-timeout was not refused: $out"
	rc=0
	out=$(RAILYARD_CONNECT_TIMEOUT=-1 ry_cli status 2>&1) || rc=$?
	((rc == 2)) && [[ $out == *"invalid RAILYARD_CONNECT_TIMEOUT '-1'"* ]] ||
		fail "a bad RAILYARD_CONNECT_TIMEOUT was not refused: $out"

	# Ctrl-C (and SIGTERM): the statement is cancelled on the server, not
	# left running.  (A background job of a script starts with SIGINT
	# ignored, and railyard keeps an ignored signal ignored: env resets it.)
	local log=${RY_PGHOST%/*}/postgresql.log cancels pid sig
	for sig in INT TERM; do
		cancels=$(grep -c "canceling statement due to user request" "$log" || :)
		env --default-signal=INT "$RY" status >/dev/null 2>&1 &
		pid=$!
		wait_for 30 sql_eq 1 "SELECT count(*) FROM pg_stat_activity
		                       WHERE application_name = 'railyard cli:status' AND wait_event_type = 'Lock'"
		kill -"$sig" "$pid"
		rc=0
		wait "$pid" || rc=$?
		((rc == 128 + $(kill -l "$sig"))) || fail "status interrupted with SIG$sig exited $rc: it should die of the signal"
		wait_for 10 sql_eq 0 "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'railyard cli:status'"
		(($(grep -c "canceling statement due to user request" "$log" || :) > cancels)) ||
			fail "SIG$sig did not cancel the statement on the server"
	done
	# kill -9 leaves no chance to cancel: the server notices the client is
	# gone while the statement waits (client_connection_check_interval).
	"$RY" status >/dev/null 2>&1 &
	pid=$!
	wait_for 30 sql_eq 1 "SELECT count(*) FROM pg_stat_activity
	                       WHERE application_name = 'railyard cli:status' AND wait_event_type = 'Lock'"
	kill -KILL "$pid"
	wait "$pid" || :
	wait_for 15 sql_eq 0 "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'railyard cli:status'"
	unlock_pipelines
}

options_take_both_forms_and_one_error_format() {
	ry_newdb cli-options
	local id rc out
	id=$(ry_submit "(name) VALUES ('never-runs')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true');")
	for args in "--timeout=0.2 $id" "$id --timeout 0.2" "--timeout 0.2 $id"; do
		rc=0
		# shellcheck disable=SC2086  # the words are the arguments
		out=$(ry_cli wait $args 2>&1) || rc=$?
		((rc == 2)) && [[ $out == "railyard: error: timed out waiting for pipeline $id"* ]] ||
			fail "wait $args: status $rc: $out"
	done
	for args in "status --bogus" "wait" "wait --timeout" "cancel 1 2" "submit" "migrate extra" \
		"db url --role" "status -x" "db nonsense" "nonsense"; do
		rc=0
		# shellcheck disable=SC2086
		out=$(ry_cli $args 2>&1) || rc=$?
		((rc == 2)) || fail "railyard $args exited $rc, expected 2: $out"
		[[ $out == "railyard: error: "* || $out == "usage: "* ]] ||
			fail "railyard $args does not use the one error format: $out"
	done
	out=$(ry_cli status --bogus 2>&1) || :
	[[ $out == "railyard: error: status: unknown option '--bogus'"* ]] || fail "unknown option message: $out"
	out=$(ry_cli wait --timeout 2>&1) || :
	[[ $out == "railyard: error: wait: option '--timeout' needs a value"* ]] || fail "missing value message: $out"
	for cmd in migrate submit wait status cancel db demo; do
		ry_cli "$cmd" --help >help.out 2>&1 || fail "railyard $cmd --help failed: $(cat help.out)"
		grep -q "^usage: railyard $cmd" help.out || fail "railyard $cmd --help prints no usage: $(cat help.out)"
	done
}

# Names, revisions, reasons and logs may hold anything: nothing that came
# from the database or a task may drive the terminal (issue 6, finding 12).
terminal_controls_are_stripped() {
	ry_newdb cli-escapes
	local id out
	id=$(ry_submit "(name, revision) VALUES (E'evil\\x1b]0;pwned\\x07\\x1b[2Jname', E'r\\x1b[31mred\\u009b1m')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		VALUES (:id, 'loud', 'printf \"\\\\033[2J\\\\033]0;title\\\\007boom\\\\n\"; exit 3');")
	cli_worker escapes
	wait_pipeline 60 "$id" failed >/dev/null
	[[ $(sql "SELECT position(E'\\x1b' IN log_tail) > 0 FROM railyard.task_attempts a
	           JOIN railyard.tasks t ON t.id = a.task_id WHERE t.pipeline_id = $id") == t ]] ||
		fail "the test needs a log tail with escapes in it"
	for args in "status" "status $id" "wait $id" "wait $id --follow"; do
		# shellcheck disable=SC2086
		out=$(ry_cli $args 2>&1) || :
		printf '%s\n' "$out" >"out.$$"
		if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "out.$$" || grep -q $'\xc2[\x80-\x9f]' "out.$$"; then
			fail "railyard $args printed control characters: $(od -c "out.$$" | grep -m 3 '033\|007')"
		fi
	done
	out=$(ry_cli status "$id")
	[[ $out == *"evil?]0;pwned??[2Jname"* ]] || fail "status $id does not show the name, made printable: $out"
	[[ $out == *"boom"* ]] || fail "status $id does not show the failed task's log: $out"
}

status_lists_active_pipelines_first() {
	ry_newdb cli-order
	local done_id active_id out
	done_id=$(ry_submit "(name) VALUES ('finished-first')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true');")
	sql "SELECT railyard.cancel_pipeline($done_id)" >/dev/null
	active_id=$(ry_submit "(name) VALUES ('still-active')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true');")
	out=$(ry_cli status)
	printf '%s\n' "$out"
	[[ $out == *still-active*finished-first* ]] || fail "status does not list the active pipeline first: $out"
}

# PRODUCT.md's "fast regardless of statistics": right after a 50,000-task
# COMMIT (no ANALYZE has run) status of that pipeline takes under 2 s.
status_of_a_huge_pipeline_right_after_commit() {
	ry_newdb cli-huge
	sql "ALTER TABLE railyard.tasks SET (autovacuum_enabled = off);
	     ALTER TABLE railyard.edges SET (autovacuum_enabled = off);"
	local huge small out
	# submit_chain NAME N: N tasks in chains of 10.
	submit_chain() {
		ry_submit "(name) VALUES ('$1')" "
			INSERT INTO railyard.tasks (pipeline_id, name, command)
			SELECT :id, 'task-' || i, 'true' FROM generate_series(1, $2) i;
			INSERT INTO railyard.edges (pipeline_id, upstream, downstream)
			SELECT :id, 'task-' || i, 'task-' || (i + 1) FROM generate_series(1, $2 - 1) i WHERE i % 10 <> 0;"
	}
	small=$(submit_chain small 5000)
	huge=$(submit_chain huge 50000)
	[[ $(sql "SELECT reltuples FROM pg_class WHERE oid = 'railyard.tasks'::regclass") == -1 ]] ||
		echo "note: tasks has statistics already"
	# best_status ID: the best of two runs in µs (a load spike is not a plan).
	best_status() {
		local best=999999999 start t i
		for i in 1 2; do
			start=$(ry__now_us)
			out=$(ry_cli status "$1") || fail "status $1 failed: $out"
			t=$(($(ry__now_us) - start))
			((t < best)) && best=$t
		done
		echo "$best"
	}
	local t_small t_huge
	t_small=$(best_status "$small")
	t_huge=$(best_status "$huge")
	out=$(ry_cli status "$huge")
	echo "status of a 5,000-task pipeline: $(ry__secs "$t_small") s; of a 50,000-task one: $(ry__secs "$t_huge") s"
	(($(grep -c '^task-' <<<"$out") == 50000)) || fail "status $huge does not list 50,000 tasks"
	[[ $out == *"task-50000"*"waiting for task-49999"* ]] || fail "status does not say what task-50000 waits for"
	# The goal is 2 s (make bench's figure); what the test holds on any
	# machine is that no plan made without statistics is worse than linear:
	# ten times the tasks may take at most 30 times as long (a nested loop
	# over both would take 100 times).
	((t_huge < 2000000 || t_huge < 30 * t_small)) ||
		fail "status grew from $(ry__secs "$t_small") s to $(ry__secs "$t_huge") s for 10 times the tasks"
}

# railyard submit sends the whole submission as one statement, committed
# on its own: what only the database can refuse (an unknown pool, checked
# at COMMIT) exits 1 naming the place and stores nothing; a pipeline with
# edges and one without store everything a submission stores (tasks,
# edges, released roots, the audit row, the queued forecast).
submit_one_statement_all_or_nothing() {
	need_cmd submit
	ry_newdb cli-onestmt
	local before out rc=0 id one roots
	cat >nopool.yaml <<'EOF'
name: nopool
team: t
tasks:
  - name: a
    command: "true"
  - name: b
    command: "true"
    pool: no-such-pool
    needs: [a]
EOF
	before=$(counts)
	out=$(ry_cli submit nopool.yaml 2>&1) || rc=$?
	echo "submit: $out"
	((rc == 1)) || fail "railyard submit exited $rc for an unknown pool, not 1: $out"
	[[ $out == *'nopool.yaml: '*'pool "no-such-pool" does not exist'* ]] ||
		fail "the error does not name the file and the pool: $out"
	[[ $(counts) == "$before" ]] || fail "a refused submission left rows behind: $before -> $(counts)"

	id=$(ry_cli submit "$RY_ROOT/examples/shop.yaml") || fail "railyard submit examples/shop.yaml failed"
	[[ $id =~ ^[0-9]+$ ]] || fail "railyard submit printed '$id', not a pipeline id alone"
	printf '{"name": "one", "team": "t", "tasks": [{"name": "only", "command": "true"}]}\n' >one.json
	one=$(ry_cli submit one.json) || fail "railyard submit of a one-task pipeline failed"
	[[ $one =~ ^[0-9]+$ ]] || fail "railyard submit printed '$one', not a pipeline id alone"
	roots=$(sql "SELECT count(*) FROM railyard.tasks t WHERE t.pipeline_id = $id
	               AND NOT EXISTS (SELECT 1 FROM railyard.edges e
	                                WHERE e.pipeline_id = $id AND e.downstream = t.name)")
	((roots > 0)) || fail "examples/shop.yaml has no root task"
	sql_eq "$id|t|23|$roots|t|1|1
$one|t|1|1|f|1|1" \
		"SELECT p.id, p.validated_at IS NOT NULL,
		        (SELECT count(*) FROM railyard.tasks t WHERE t.pipeline_id = p.id),
		        (SELECT count(*) FROM railyard.tasks t WHERE t.pipeline_id = p.id AND t.state = 'ready'),
		        (SELECT count(*) FROM railyard.edges e WHERE e.pipeline_id = p.id) > 0,
		        (SELECT count(*) FROM railyard.audit_log a
		          WHERE a.pipeline_id = p.id AND a.object = 'pipeline' AND a.event = 'submit'),
		        (SELECT count(*) FROM railyard.forecast_pending f WHERE f.pipeline_id = p.id)
		   FROM railyard.pipelines p ORDER BY p.id" ||
		fail "the submitted pipelines are not stored whole"
}

run_scenario "railyard --version prints VERSION and the libpq linked in" version_is_printed
run_scenario "railyard submit: one statement, all or nothing (an unknown pool at COMMIT stores nothing)" \
	submit_one_statement_all_or_nothing
run_scenario "railyard submit prints an id; railyard wait exits 0 once a worker ran it" submit_then_wait_succeeds
run_scenario "railyard wait --follow prints a progress line per claim and finish" wait_follow_prints_progress
run_scenario "railyard wait exits 1 for a failed pipeline" wait_exits_1_on_failure
run_scenario "railyard cancel stops a running pipeline; wait exits 2" cancel_makes_wait_exit_2
run_scenario "railyard status and status ID show pipelines, tasks, agents and why tasks wait" \
	status_shows_pipelines_and_agents
run_scenario "a bad spec (unknown key, cycle, unknown need) exits 1 with FILE:LINE and stores nothing" \
	bad_spec_is_refused
run_scenario "statement timeouts (flag, --opt=value, env) and Ctrl-C stop the query on the server; kill -9 too" \
	statement_timeout_and_interrupt_stop_the_query
run_scenario "every command takes --opt value and --opt=value and reports errors as 'railyard: error:'" \
	options_take_both_forms_and_one_error_format
run_scenario "names, revisions and logs with terminal escapes are printed without control characters" \
	terminal_controls_are_stripped
run_scenario "status lists active pipelines before finished ones" status_lists_active_pipelines_first
run_scenario "status of a 50,000-task pipeline right after its COMMIT: under 2 s, or no worse than linear" \
	status_of_a_huge_pipeline_right_after_commit
