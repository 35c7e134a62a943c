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
	local out want
	want=$(tr -d '[:space:]' <"$RY_ROOT/VERSION")
	out=$("$RY" --version)
	[[ $out == "railyard $want" ]] || fail "railyard --version printed '$out', expected 'railyard $want'"
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

run_scenario "railyard --version prints VERSION" version_is_printed
run_scenario "railyard submit prints an id; railyard wait exits 0 once a worker ran it" submit_then_wait_succeeds
run_scenario "railyard wait --follow prints a progress line per claim and finish" wait_follow_prints_progress
run_scenario "railyard wait exits 1 for a failed pipeline" wait_exits_1_on_failure
run_scenario "railyard cancel stops a running pipeline; wait exits 2" cancel_makes_wait_exit_2
run_scenario "railyard status and status ID show pipelines, tasks, agents and why tasks wait" \
	status_shows_pipelines_and_agents
run_scenario "a bad spec (unknown key, cycle, unknown need) exits 1 with FILE:LINE and stores nothing" \
	bad_spec_is_refused
