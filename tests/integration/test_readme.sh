#!/usr/bin/env bash
# The README followed from an empty directory, as a newcomer would: the
# demo creates the database and ends saying it still runs and how to stop
# it; the README's SQL example works as pasted into `railyard db psql`; a
# worker runs it and `railyard wait` reports it; `railyard db stop` stops
# the database (issue 6, deliverable 11).
. "$(dirname "$0")/lib.sh"

unset RAILYARD_DB RAILYARD_HOME PGHOST PGDATABASE
at_exit kill_task_processes

# The first ```sql block of README.md, as a file.
readme_sql() {
	awk '/^```sql$/ { on = 1; next } on && /^```$/ { exit } on { print }' "$RY_ROOT/README.md"
}

readme_from_an_empty_directory() {
	mkdir -p newcomer
	cd newcomer
	at_exit env RAILYARD_HOME="$RY_WORKDIR/newcomer/.railyard" "$RY" db stop
	local out rc=0
	out=$(timeout -k 10 600 "$RY" demo 2>demo.err) || rc=$?
	printf '%s\n' "$out" >demo.out
	((rc == 0)) || fail "railyard demo exited $rc: $(tail -n 20 demo.err)"
	[[ -f .railyard/pg/PG_VERSION ]] || fail "the demo did not create ./.railyard"
	[[ $(tail -n 2 <<<"$out") == *"still running"*"railyard db stop"* ]] ||
		fail "the demo does not end saying the database still runs and how to stop it: $(tail -n 3 <<<"$out")"

	readme_sql >readme.sql
	[[ -s readme.sql ]] || fail "README.md has no sql block"
	out=$("$RY" db psql -X -q -v ON_ERROR_STOP=1 -f readme.sql 2>&1) ||
		fail "the README's SQL does not work as pasted: $out"
	local id
	id=$(sed -n 's/^submitted pipeline \([0-9][0-9]*\)$/\1/p' <<<"$out")
	[[ $id =~ ^[0-9]+$ ]] || fail "the README's SQL did not say which pipeline it submitted: $out"

	start_worker farm-01 --labels docker --slots 8 --exit-when-idle
	rc=0
	out=$(timeout -k 5 120 "$RY" wait "$id" --follow 2>&1) || rc=$?
	printf '%s\n' "$out"
	((rc == 0)) || fail "railyard wait $id --follow exited $rc: $out"
	[[ $out == *"build:cart"*"claim"*"test:cart"*"finish"*"pipeline $id succeeded"* ]] ||
		fail "wait --follow does not show the README's pipeline running: $out"

	"$RY" status >status.out 2>&1 || fail "railyard status failed: $(cat status.out)"
	grep -q "shop@9f3c2e1" status.out || fail "railyard status does not list the README's pipeline"
	stop_workers
	"$RY" db stop 2>stop.err || fail "railyard db stop failed: $(cat stop.err)"
	[[ ! -e .railyard/pg/postmaster.pid ]] || fail "the database still runs after railyard db stop"
}

run_scenario "the README from an empty directory: demo, the SQL example as pasted, a worker, wait, db stop" \
	readme_from_an_empty_directory
