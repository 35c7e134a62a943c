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

# A cycle below tasks that are not on it: the path is the cycle alone.
cycle_below_other_tasks_is_told_alone() {
	local err
	err=$(sql_expect_error "$(submission below-p \
		"(:id, 'root', 'true'), (:id, 'loop-b', 'true'), (:id, 'loop-c', 'true'), (:id, 'after', 'true')" \
		"(:id, 'root', 'loop-b', 'build'), (:id, 'root', 'loop-c', 'build'),
		 (:id, 'loop-b', 'loop-c', 'build'), (:id, 'loop-c', 'loop-b', 'test'), (:id, 'loop-c', 'after', 'build')")" \
		"cycle: ")
	[[ $err == *"cycle: loop-b -> loop-c -> loop-b"* ]] || fail "expected the cycle loop-b -> loop-c -> loop-b: $err"
	nothing_stored below-p
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
	# No foreign key checks these row by row (migrations/0021_pipeline_fks.sql):
	# the statement triggers refuse a pipeline that does not exist, with
	# the key's SQLSTATE, and the whole statement stores nothing.
	local missing=$((id + 1000000)) err
	err=$(sql_expect_error "\\set VERBOSITY verbose
		BEGIN;
		INSERT INTO railyard.pipelines (name, team) VALUES ('orphan-p', 'qa') RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'other', 'true'), ($missing, 'orphan', 'true');
		COMMIT;" "cannot add task \"orphan\" to pipeline $missing: no such pipeline") || return
	[[ $err == *23503* ]] || fail "a task for a missing pipeline should fail with SQLSTATE 23503: $err"
	err=$(sql_expect_error "\\set VERBOSITY verbose
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES ($missing, 'a', 'b')" \
		"cannot add edge a -> b to pipeline $missing: no such pipeline") || return
	[[ $err == *23503* ]] || fail "an edge for a missing pipeline should fail with SQLSTATE 23503: $err"
	nothing_stored orphan-p
}

# What exec would reject is refused at INSERT, naming the limit or field
# (issue 6, finding 10).
command_over_the_argument_limit_is_refused() {
	sql_expect_error "BEGIN;
		INSERT INTO railyard.pipelines (name) VALUES ('big-cmd') RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 't', repeat('x', 131072));
		COMMIT;" "command is 131072 bytes; max_arg_bytes is 131071" >/dev/null
	nothing_stored big-cmd
	# One byte less is fine.
	local id
	id=$(ry_submit "(name) VALUES ('just-fits')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 't', repeat('x', 131071));")
	[[ $id =~ ^[0-9]+$ ]] || fail "a command of max_arg_bytes was refused"
}

env_over_the_limits_is_refused() {
	bad_field big-env env "jsonb_build_object('BIG', repeat('x', 131068))" 'env entry "BIG" is 131072 bytes'
	bad_field big-envs env "(SELECT jsonb_object_agg('K' || i, repeat('x', 100000)) FROM generate_series(1, 11) i)" \
		"max_exec_bytes is 1048576"
}

bad_placement_fields_are_refused() {
	bad_field empty-os os "''" 'os "" is invalid'
	bad_field blank-arch arch "' '" 'arch " " is invalid'
	bad_field comma-label requires "'{\"linux,gpu\"}'" 'label "linux,gpu" in requires is invalid'
	bad_field blank-label requires "'{\"a b\"}'" 'label "a b" in requires is invalid'
	bad_field brace-label requires "'{\"x}y\"}'" 'label "x}y" in requires is invalid'
	bad_field quote-pool pool "'a\"b'" 'pool "a"b" is invalid'
}

invalid_only_if_changed_is_refused() {
	bad_field bad-pattern only_if_changed "'(unclosed'" 'only_if_changed "(unclosed" is not a valid pattern'
	bad_field bad-range only_if_changed "'[z-a]'" 'is not a valid pattern'
	bad_field empty-pattern only_if_changed "''" 'only_if_changed must not be empty'
	# PCRE2 syntax PostgreSQL lacks is left to PCRE2 (the worker's).
	local id
	id=$(ry_submit "(name) VALUES ('pcre2-only')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, only_if_changed)
		VALUES (:id, 'named', 'true', '^(?<svc>services)/cart/'), (:id, 'possessive', 'true', '^a++b'),
		       (:id, 'flags', 'true', 'x(?i:CART)'), (:id, 'catastrophic', 'true', '(x+x+)+y|z');")
	[[ $id =~ ^[0-9]+$ ]] || fail "valid PCRE2 patterns were refused"
}

# Cycle detection and its message are linear in the pipeline's size.
huge_ring_is_refused_fast_with_a_short_message() {
	local start err elapsed
	start=$(ry__now_us)
	err=$(sql_expect_error "BEGIN;
		INSERT INTO railyard.pipelines (name) VALUES ('ring') RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		SELECT :id, 'ring-' || i, 'true' FROM generate_series(1, 20000) i;
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream)
		SELECT :id, 'ring-' || i, 'ring-' || (i % 20000 + 1) FROM generate_series(1, 20000) i;
		COMMIT;" "cycle: ")
	elapsed=$(($(ry__now_us) - start))
	echo "refused in $(ry__secs "$elapsed") s: $err"
	((elapsed < 15000000)) || fail "a 20,000-task ring took $(ry__secs "$elapsed") s to refuse"
	local msg
	msg=$(grep -o 'cycle: .*' <<<"$err" | head -n 1)
	[[ $msg == "cycle: ring-1 -> ring-2 -> ring-3 -> ring-4 -> ... -> ring-19998 -> ring-19999 -> ring-20000 -> ring-1 (20000 tasks)" ]] ||
		fail "the message is not the shortened cycle: $msg"
	nothing_stored ring
}

# Task names, teams and labels at their length limits: accepted at the
# limit, refused one past it naming the constraint (their patterns are a
# class and a length test, migrations/0014_submit.sql).
names_teams_labels_at_their_limits() {
	local id
	id=$(ry_submit "(name, team) VALUES ('limits-ok', 'T' || repeat('t.-_', 15) || 'tt')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, requires)
		VALUES (:id, '_' || repeat('n.:/@+=-', 24) || repeat('n', 7), 'true', ARRAY['_' || repeat('l.:+=@/-', 7) || 'lllllll']);")
	[[ $id =~ ^[0-9]+$ ]] || fail "a 200-character task name, a 63-character team and a 64-character label were refused"
	sql_eq "200|63|64" "SELECT length(t.name), length(p.team), length(t.requires[1])
	                      FROM railyard.tasks t JOIN railyard.pipelines p ON p.id = t.pipeline_id
	                     WHERE p.id = $id" || fail "the limits are not what was stored"
	sql_expect_error "$(submission long-name "(:id, repeat('n', 201), 'true')")" task_name_valid >/dev/null
	nothing_stored long-name
	sql_expect_error "$(submission bad-name "(:id, 'a b', 'true')")" task_name_valid >/dev/null
	nothing_stored bad-name
	sql_expect_error "$(submission dash-name "(:id, '-a', 'true')")" task_name_valid >/dev/null
	nothing_stored dash-name
	sql_expect_error "BEGIN;
		INSERT INTO railyard.pipelines (name, team) VALUES ('long-team', repeat('t', 64));
		COMMIT;" pipeline_team_valid >/dev/null
	nothing_stored long-team
	sql_expect_error "BEGIN;
		INSERT INTO railyard.pipelines (name, team) VALUES ('underscore-team', '_t');
		COMMIT;" pipeline_team_valid >/dev/null
	nothing_stored underscore-team
	bad_field long-label requires "ARRAY[repeat('l', 65)]" 'in requires is invalid'
}

run_scenario "the PRODUCT.md SQL submission is accepted: root ready, downstream blocked, audited" \
	product_md_submission_is_accepted
run_scenario "a cycle is refused with its path and nothing is stored" cycle_is_refused_with_its_path
run_scenario "an edge from a task to itself is refused as a cycle" self_edge_is_refused_as_cycle
run_scenario "a cycle below tasks not on it is reported alone" cycle_below_other_tasks_is_told_alone
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
run_scenario "adding a task or edge to a submitted or missing pipeline is refused" task_added_after_submission_is_refused
run_scenario "a command over the kernel's argument limit is refused naming max_arg_bytes" \
	command_over_the_argument_limit_is_refused
run_scenario "an env entry or a whole env over the limits is refused naming them" env_over_the_limits_is_refused
run_scenario "empty os/arch, labels with commas, blanks, braces or quotes are refused" bad_placement_fields_are_refused
run_scenario "an only_if_changed that cannot compile is refused; PCRE2-only syntax is accepted" \
	invalid_only_if_changed_is_refused
run_scenario "a 20,000-task ring is refused within seconds with a short message" \
	huge_ring_is_refused_fast_with_a_short_message
run_scenario "task names, teams and labels: accepted at their length limits, refused past them" \
	names_teams_labels_at_their_limits
