#!/usr/bin/env bash
# railyard migrate: safe to run concurrently, each migration applied once,
# and a no-op when everything is applied.
. "$(dirname "$0")/lib.sh"

# The migrations compiled into railyard, as schema_migrations names them.
expected_versions() {
	local f
	for f in "$RY_ROOT"/migrations/*.sql; do
		echo "${f##*/}"
	done | sort
}

concurrent_migrates_apply_each_once() {
	ry_newdb concurrent --empty
	"$RY" migrate >m1.log 2>&1 &
	local p1=$!
	"$RY" migrate >m2.log 2>&1 &
	local p2=$!
	wait "$p1" || fail "the first migrate failed: $(cat m1.log)"
	wait "$p2" || fail "the second migrate failed: $(cat m2.log)"

	local got
	got=$(sql "SELECT version FROM railyard.schema_migrations ORDER BY version")
	[[ $got == "$(expected_versions)" ]] ||
		fail "schema_migrations holds [$got], expected [$(expected_versions)]"
	# Each migration file was applied by exactly one of the two.
	local v n
	while read -r v; do
		n=$(cat m1.log m2.log | grep -c "applied migrations/$v\$" || :)
		((n == 1)) || fail "migrations/$v was applied $n times by the two concurrent runs"
	done < <(expected_versions)
	[[ $(sql "SELECT to_regclass('railyard.tasks') IS NOT NULL") == t ]] ||
		fail "railyard.tasks does not exist after migrating"
}

third_migrate_is_a_no_op() {
	ry_newdb again --empty
	"$RY" migrate >first.log 2>&1 || fail "migrate failed: $(cat first.log)"
	local before after
	before=$(sql "SELECT version, applied_at FROM railyard.schema_migrations ORDER BY version")
	"$RY" migrate >second.log 2>&1 || fail "a repeated migrate failed: $(cat second.log)"
	"$RY" migrate >third.log 2>&1 || fail "a repeated migrate failed: $(cat third.log)"
	after=$(sql "SELECT version, applied_at FROM railyard.schema_migrations ORDER BY version")
	[[ $before == "$after" ]] || fail "schema_migrations changed: [$before] became [$after]"
	if grep -q "applied migrations/" second.log third.log; then
		fail "a repeated migrate applied migrations again: $(cat second.log third.log)"
	fi
}

migrate_keeps_data() {
	# A database in use (the template copy) migrates again without losing rows.
	local id
	id=$(sql "BEGIN;
		INSERT INTO railyard.pipelines (name) VALUES ('keep-me') RETURNING id \\gset
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'only', 'true');
		COMMIT;
		SELECT :id;")
	"$RY" migrate >m.log 2>&1 || fail "migrate failed: $(cat m.log)"
	[[ $(sql "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id") == 1 ]] ||
		fail "pipeline $id lost its task across a migrate"
}

run_scenario "two concurrent migrates on an empty database both succeed, each migration applied once" \
	concurrent_migrates_apply_each_once
run_scenario "a repeated migrate is a no-op" third_migrate_is_a_no_op
run_scenario "migrate on a database with pipelines keeps them" migrate_keeps_data
