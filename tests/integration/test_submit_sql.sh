#!/usr/bin/env bash
# Submitting pipelines with plain SQL (PRODUCT.md, "SQL"): validated as a
# whole at COMMIT; anything invalid aborts the whole transaction with a
# clear error and leaves nothing behind.
. "$(dirname "$0")/lib.sh"

# submission NAME TASK_ROWS [EDGE_ROWS]: a whole submission in one
# transaction; the rows refer to the new pipeline's id as :id.
submission() {
	local edges=""
	[[ -n ${3:-} ]] && edges="INSERT INTO railyard.edges (pipeline_id, upstream, downstream, kind) VALUES $3;"
	cat <<-EOF
		BEGIN;
		INSERT INTO railyard.pipelines (name, team) VALUES ('$1', 'qa') RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES $2;
		$edges
		COMMIT;
	EOF
}

# nothing_stored NAME: no trace of pipeline NAME (rows or audit entries).
nothing_stored() {
	local n
	n=$(sql "SELECT (SELECT count(*) FROM railyard.pipelines WHERE name = '$1')
	              + (SELECT count(*) FROM railyard.audit_log WHERE detail->>'name' = '$1')")
	[[ $n == 0 ]] || fail "the refused pipeline $1 left $n rows behind"
}

product_md_submission_is_accepted() {
	local out id
	out=$(sql "$PRODUCT_MD_SUBMISSION
SELECT 'before-commit', count(*) FROM railyard.tasks WHERE pipeline_id = :id AND state <> 'blocked';
COMMIT;
SELECT 'id', :id;")
	# Until COMMIT validates it, no task of the pipeline may look runnable.
	[[ $out == *"before-commit|0"* ]] || fail "tasks were runnable before COMMIT: $out"
	id=$(sed -n 's/^id|//p' <<<"$out")
	[[ $id =~ ^[0-9]+$ ]] || fail "no pipeline id in: $out"

	local states
	states=$(sql "SELECT name || '=' || state FROM railyard.tasks WHERE pipeline_id = $id ORDER BY name")
	[[ $states == $'build:cart=ready\ntest:cart=blocked' ]] ||
		fail "expected the root ready and its downstream blocked, got: $states"
	[[ $(sql "SELECT state FROM railyard.pipelines WHERE id = $id") == queued ]] ||
		fail "a new pipeline should be queued"
	local audit
	audit=$(sql "SELECT count(*) FROM railyard.audit_log
	             WHERE object = 'pipeline' AND object_id = $id AND event = 'submit'")
	[[ $audit == 1 ]] || fail "expected one 'submit' audit row for pipeline $id, found $audit"
}

cycle_is_refused_with_its_path() {
	local err path
	err=$(sql_expect_error "$(submission cyc-p \
		"(:id, 'cyc-a', 'true'), (:id, 'cyc-b', 'true'), (:id, 'cyc-c', 'true'), (:id, 'cyc-d', 'true')" \
		"(:id, 'cyc-d', 'cyc-a', 'build'), (:id, 'cyc-a', 'cyc-b', 'build'),
		 (:id, 'cyc-b', 'cyc-c', 'build'), (:id, 'cyc-c', 'cyc-a', 'test')")" "cycle: ")
	# The path names the tasks of the cycle in edge order, back to the first.
	path=$(grep -o 'cycle: .*' <<<"$err" | head -n 1)
	path=${path#cycle: }
	local -a hops
	IFS=' ' read -r -a hops <<<"${path// -> / }"
	((${#hops[@]} == 4)) || fail "expected a path of 3 edges, got: $path"
	[[ ${hops[0]} == "${hops[3]}" ]] || fail "the cycle path does not return to its start: $path"
	local sorted
	sorted=$(printf '%s\n' "${hops[@]:0:3}" | sort | tr '\n' ' ')
	[[ $sorted == "cyc-a cyc-b cyc-c " ]] || fail "the path should be the cycle a, b, c: $path"
	local i
	for i in 0 1 2; do
		case "${hops[i]}>${hops[i + 1]}" in
		"cyc-a>cyc-b" | "cyc-b>cyc-c" | "cyc-c>cyc-a") ;;
		*) fail "the path follows no edge from ${hops[i]} to ${hops[i + 1]}: $path" ;;
		esac
	done
	nothing_stored cyc-p
}

self_edge_is_refused_as_cycle() {
	sql_expect_error "$(submission self-p "(:id, 'self-a', 'true')" "(:id, 'self-a', 'self-a', 'build')")" \
		"cycle: self-a -> self-a" >/dev/null
	nothing_stored self-p
}

edge_to_unknown_task_is_refused() {
	local err
	err=$(sql_expect_error "$(submission ghost-p "(:id, 'real', 'true')" "(:id, 'real', 'ghost', 'build')")" \
		'unknown task "ghost"')
	[[ $err == *"real -> ghost"* ]] || fail "the error should name the edge: $err"
	nothing_stored ghost-p
}

duplicate_task_name_is_refused() {
	sql_expect_error "$(submission dup-p "(:id, 'twice', 'true'), (:id, 'twice', 'false')")" \
		"task_name_unique" >/dev/null
	nothing_stored dup-p
}

pipeline_without_tasks_is_refused() {
	sql_expect_error "BEGIN;
		INSERT INTO railyard.pipelines (name) VALUES ('empty-p');
		COMMIT;" "has no tasks" >/dev/null
	nothing_stored empty-p
}

# bad_field PIPELINE COLUMN VALUE EXPECTED: a task with COLUMN = VALUE is
# refused with an error naming EXPECTED, and nothing is stored.
bad_field() {
	sql_expect_error "BEGIN;
		INSERT INTO railyard.pipelines (name) VALUES ('$1') RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command, $2) VALUES (:id, 't', 'true', $3);
		COMMIT;" "$4" >/dev/null
	nothing_stored "$1"
}

task_added_after_submission_is_refused() {
	local id
	id=$(sql "$(submission late-p "(:id, 'first', 'true')")
		SELECT :id;")
	[[ $id =~ ^[0-9]+$ ]] || fail "submission failed: $id"
	sql_expect_error "INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES ($id, 'late', 'true')" \
		"already submitted" >/dev/null
	sql_expect_error "INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES ($id, 'first', 'first2')" \
		"already submitted" >/dev/null
	[[ $(sql "SELECT string_agg(name, ',') FROM railyard.tasks WHERE pipeline_id = $id") == first ]] ||
		fail "pipeline $id changed after submission"
}

run_scenario "the PRODUCT.md SQL submission is accepted: root ready, downstream blocked, audited" \
	product_md_submission_is_accepted
run_scenario "a cycle is refused with its path and nothing is stored" cycle_is_refused_with_its_path
run_scenario "an edge from a task to itself is refused as a cycle" self_edge_is_refused_as_cycle
run_scenario "an edge naming an unknown task is refused naming it, nothing stored" \
	edge_to_unknown_task_is_refused
run_scenario "a duplicate task name is refused, nothing stored" duplicate_task_name_is_refused
run_scenario "a pipeline without tasks is refused" pipeline_without_tasks_is_refused
run_scenario "cpu 0 is refused naming task_cpu_range" bad_field bad-cpu cpu 0 task_cpu_range
run_scenario "run_if 'sometimes' is refused naming run_if" bad_field bad-runif run_if "'sometimes'" \
	'run_if: "sometimes"'
run_scenario "timeout_s -1 is refused naming task_timeout_s_range" bad_field bad-timeout timeout_s -1 \
	task_timeout_s_range
run_scenario "an env that is not an object is refused naming task_env_is_object" bad_field bad-env env \
	"'[\"A=1\"]'" task_env_is_object
run_scenario "kind 'banana' is refused naming task_kind_valid" bad_field bad-kind kind "'banana'" \
	task_kind_valid
run_scenario "adding a task or edge to a submitted pipeline is refused" task_added_after_submission_is_refused
