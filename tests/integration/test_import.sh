#!/usr/bin/env bash
# CI imports (railyard import github-actions / gitlab-ci) and JUnit reports
# (railyard wait --junit): converted pipelines load, run on a worker and
# report every task where CI tools read it; malformed input stores nothing.
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes
FIX=$RY_ROOT/tests/fixtures/ci
cd "$RY_ROOT" || exit 2	# fixture paths in messages are relative to the repository

pipelines() { sql "SELECT count(*) FROM railyard.pipelines"; }

# valid_xml FILE: well-formed (xmllint when installed; the unit test parses with libxml2 either way).
valid_xml() {
	if command -v xmllint >/dev/null; then
		xmllint --noout "$1"
	else
		grep -q '^<?xml version="1.0" encoding="UTF-8"?>' "$1"
	fi
}

github_workflow_converts() {
	local out=$RY_WORKDIR/gh.yaml err=$RY_WORKDIR/gh.err
	"$RY" import github-actions "tests/fixtures/ci/github/ci.yml" >"$out" 2>"$err"
	"$RY" submit --check "$out"
	grep -q '^- name: build:1.22:alpine:true$' "$out" || fail "no task for the include-only matrix combination"
	grep -q "^note: tests/fixtures/ci/github/ci.yml:21: step 1 uses actions/checkout@v4" "$err" ||
		fail "the uses: step is not reported with file:line: $(cat "$err")"
	grep -q "^note: tests/fixtures/ci/github/ci.yml:79: job \"publish-docs\" calls the reusable workflow" "$err" ||
		fail "the reusable workflow job is not reported"
	# Notes do not change the exit code, and nothing reaches the database.
	[[ $(pipelines) == 0 ]] || fail "import without --submit stored a pipeline"
}

gitlab_pipeline_runs_and_reports() {
	local id rc=0 xml=$RY_WORKDIR/gitlab-junit.xml
	# resource_group production becomes pool production: pools must exist.
	sql "INSERT INTO railyard.pools (name, capacity) VALUES ('production', 1)"
	id=$("$RY" import gitlab-ci "$FIX/gitlab/.gitlab-ci.yml" --submit --revision 9f3c2e1 \
		--changed services/cart/main.go 2>"$RY_WORKDIR/gl.err")
	[[ $id =~ ^[0-9]+$ ]] || fail "import --submit printed no pipeline id: $id"
	start_worker imp --labels linux,docker,gpu --slots 4 --heartbeat 1 --lease 3 --workdir "$RY_WORKDIR/w-imp"
	"$RY" wait "$id" --timeout 120 --junit "$xml" >"$RY_WORKDIR/wait.out" || rc=$?
	((rc == 0)) || { show_pipeline "$id"; fail "wait exited $rc for the converted GitLab pipeline"; }
	[[ $(sql "SELECT revision || ' ' || array_to_string(changed_paths, ',') FROM railyard.pipelines WHERE id = $id") == \
		"9f3c2e1 services/cart/main.go" ]] || fail "revision and changed paths were not submitted"
	# Stage order and needs became edges; the build output reached the tests.
	[[ $(sql "SELECT string_agg(upstream, ',' ORDER BY upstream) FROM railyard.edges
	           WHERE pipeline_id = $id AND downstream = 'integration'") == "test:1.22:pg" ]] ||
		fail "integration does not wait for exactly test:1.22:pg"
	[[ $(task_get "$id" test:1.22:mysql state) == succeeded ]] || fail "a matrix test did not succeed"
	[[ $(task_get "$id" notify-failure state) == skipped ]] || fail "the on_failure job ran"
	[[ $(task_get "$id" cleanup state) == succeeded ]] || fail "the always job in .post did not run"
	[[ $(task_get "$id" deploy pool) == production ]] || fail "resource_group did not become the pool"
	valid_xml "$xml"
	[[ $(grep -c '<testcase ' "$xml") == 9 ]] || fail "the report does not have one testcase per task: $(cat "$xml")"
	grep -q '<testsuite name="gitlab-ci" tests="9" failures="0" errors="0" skipped="1"' "$xml" ||
		fail "suite counts are wrong: $(head -n 5 "$xml")"
	grep -q '<testcase classname="gitlab-ci" name="test:1.21:pg" time="[0-9.]*">' "$xml" ||
		fail "a test case lacks classname/name/time"
	grep -A1 'name="notify-failure"' "$xml" | grep -q '<skipped message="condition: no upstream failed"/>' ||
		fail "the skipped task is not <skipped/> with its reason"
	grep -q 'go 1.22 db mysql' "$xml" || fail "the log tail is not in the report"
}

failing_pipeline_report() {
	local id rc=0 xml=$RY_WORKDIR/fail-junit.xml wf=$RY_WORKDIR/fail.yml
	cat >"$wf" <<-'YAML'
		name: red
		on: push
		jobs:
		  unit:
		    runs-on: linux
		    steps:
		      - run: |
		          echo "FAIL TestCheckout <cart> & \"total\""
		          exit 3
		  package:
		    runs-on: linux
		    needs: unit
		    steps:
		      - run: echo never
		  alert:
		    runs-on: linux
		    needs: [unit, package]
		    if: failure()
		    steps:
		      - run: echo alerting
	YAML
	id=$("$RY" import github-actions "$wf" --submit)
	start_worker red --slots 2 --heartbeat 1 --lease 3 --workdir "$RY_WORKDIR/w-red"
	echo stale >"$xml"
	"$RY" wait "$id" --timeout 120 --junit "$xml" >/dev/null || rc=$?
	((rc == 1)) || fail "wait exited $rc for a failed pipeline, want 1"
	valid_xml "$xml"
	grep -q 'failures="1"' "$xml" || fail "no failure counted: $(cat "$xml")"
	grep -q '<failure message="exit 3" type="exit">FAIL TestCheckout &lt;cart&gt; &amp; &quot;total&quot;' "$xml" ||
		fail "the failure lacks its reason or its escaped log tail: $(cat "$xml")"
	grep -A1 'name="package"' "$xml" | grep -q '<skipped message="upstream failed"/>' ||
		fail "the task skipped after the failure is not <skipped/>"
	[[ $(task_get "$id" alert state) == succeeded ]] || fail "if: failure() did not run after the failure"
	[[ -z $(find "$RY_WORKDIR" -maxdepth 1 -name 'fail-junit.xml.tmp.*') ]] || fail "a temporary report was left"
}

malformed_input_stores_nothing() {
	local before rc=0 bad=$RY_WORKDIR/bad.yml err
	before=$(pipelines)
	printf 'on: push\njobs:\n  a:\n    runs-on: linux\n    steps: [{run: x}]\n    needs: [ghost]\n' >"$bad"
	err=$("$RY" import github-actions "$bad" --submit 2>&1) || rc=$?
	((rc == 1)) || fail "malformed workflow exited $rc, want 1"
	[[ $err == *"bad.yml:6: job \"a\" needs unknown job \"ghost\""* ]] || fail "error lacks file:line: $err"
	rc=0
	printf 'a:\n  script: x\n  extends: .gone\n' >"$RY_WORKDIR/.gitlab-ci.yml"
	err=$("$RY" import gitlab-ci "$RY_WORKDIR/.gitlab-ci.yml" --submit 2>&1) || rc=$?
	((rc == 1)) || fail "malformed GitLab file exited $rc, want 1"
	[[ $err == *".gitlab-ci.yml:3: \"a\" extends unknown job \".gone\""* ]] || fail "error lacks file:line: $err"
	rc=0
	"$RY" import jenkins x >/dev/null 2>&1 || rc=$?
	((rc == 2)) || fail "an unknown CI system exited $rc, want 2"
	[[ $(pipelines) == "$before" ]] || fail "a refused import stored a pipeline"
}

branch_decides_rules() {
	local out
	out=$("$RY" import gitlab-ci "$FIX/gitlab/.gitlab-ci.yml" --branch release/2.0 2>&1 >/dev/null)
	[[ $out == *'ci/deploy.yml:10: job "deploy": when: manual jobs wait for a person'* ]] ||
		fail "on release/2.0 deploy should be manual and left out with a note: $out"
	"$RY" import gitlab-ci "$FIX/gitlab/.gitlab-ci.yml" --event schedule 2>/dev/null | grep -q '^- name: docs$' ||
		fail "a scheduled pipeline should have the docs job"
}

run_scenario "a GitHub workflow converts to a spec that submit accepts; notes carry file:line" github_workflow_converts
run_scenario "a converted GitLab pipeline (include, extends, matrix, rules) runs on a worker; wait --junit reports every task" gitlab_pipeline_runs_and_reports
run_scenario "a failed converted pipeline: wait exits 1, the JUnit report holds the failure, its log and the skips" failing_pipeline_report
run_scenario "malformed CI input exits 1 with file:line and stores nothing" malformed_input_stores_nothing
run_scenario "--branch and --event decide rules as GitLab would" branch_decides_rules
