#!/usr/bin/env bash
# `railyard plan` (issue 10, items 3, 4 and 6; docs/deps.md "How plan
# decides") on a fixture git repository: a leaf change plans one service; a
# shared library's change plans all its dependents and nothing else; a
# build cycle is refused with its path; nothing affected submits nothing;
# --dry-run says why each service is in the plan; explicit rows in the
# database change the plan; the pipeline carries changed paths, typed
# edges, inputs, cacheable and only_if_changed; a planned pipeline runs to
# success on a worker in dependency order.
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/fixtures/deps/repos.sh
. "$RY_ROOT/tests/fixtures/deps/repos.sh"

at_exit kill_task_processes

# git_repo DIR: DIR as a git repository with everything committed.
git_repo() {
	git -C "$1" init -q -b main
	git -C "$1" -c user.email=t@example.com -c user.name=test add -A
	git -C "$1" -c user.email=t@example.com -c user.name=test commit -q -m fixture
}

# commit_change DIR FILE...: appends a line to each file and commits.
commit_change() {
	local dir=$1 f
	shift
	for f in "$@"; do
		mkdir -p "$(dirname "$dir/$f")"
		echo "// changed" >>"$dir/$f"
	done
	git -C "$dir" -c user.email=t@example.com -c user.name=test add -A
	git -C "$dir" -c user.email=t@example.com -c user.name=test commit -q -m change
}

# pipeline_services ID: the services of pipeline ID's tasks, sorted, one line.
pipeline_services() {
	sql "SELECT string_agg(s, ' ' ORDER BY s COLLATE \"C\")
	       FROM (SELECT DISTINCT service AS s FROM railyard.tasks WHERE pipeline_id = $1) t"
}

# plan_ok ARGS...: a plan that must submit; prints the pipeline id.
plan_ok() {
	local out rc=0
	out=$("$RY" plan "$@" 2>"$RY_WORKDIR/plan.err") || rc=$?
	((rc == 0)) || fail "railyard plan $* exited $rc: $(cat "$RY_WORKDIR/plan.err")"
	[[ $out =~ ^[0-9]+$ ]] || fail "railyard plan $* printed '$out', not a pipeline id"
	echo "$out"
}

setup_repo() {
	fixture_shop "$1"
	git_repo "$1"
}

a_leaf_change_plans_one_service() {
	ry_newdb plan-leaf
	local d=$RY_WORKDIR/leaf id
	setup_repo "$d"
	commit_change "$d" dotnet/Pricing.Tests/PriceTests.cs
	id=$(plan_ok "$d" --base HEAD~1)
	[[ $(pipeline_services "$id") == "Pricing.Tests" ]] || fail "pipeline $id runs $(pipeline_services "$id")"
	[[ $(sql "SELECT string_agg(name, ' ' ORDER BY name) FROM railyard.tasks WHERE pipeline_id = $id") == \
		"build:Pricing.Tests test:Pricing.Tests" ]] || fail "unexpected tasks in pipeline $id"
	[[ $(sql "SELECT changed_paths::text || ' ' || (revision = '$(git -C "$d" rev-parse HEAD)') || ' ' || source
	           FROM railyard.pipelines WHERE id = $id") == "{dotnet/Pricing.Tests/PriceTests.cs} true $(cd "$d" && pwd -P)" ]] ||
		fail "the pipeline does not carry the change, the revision and the checkout as its source"
	grep -q "planned 2 tasks for 1 of 20 services: Pricing.Tests" "$RY_WORKDIR/plan.err" ||
		fail "no summary on stderr: $(cat "$RY_WORKDIR/plan.err")"
}

a_shared_library_plans_its_dependents_and_nothing_else() {
	ry_newdb plan-shared
	local d=$RY_WORKDIR/shared id
	setup_repo "$d"
	commit_change "$d" libs/money/rates.go
	id=$(plan_ok "$d" --base HEAD~1)
	# money; cart and checkout build on it (checkout by two routes); storefront
	# only runs them: its integration tests
	[[ $(pipeline_services "$id") == "cart checkout money storefront" ]] ||
		fail "pipeline $id runs $(pipeline_services "$id")"
	[[ $(sql "SELECT string_agg(name, ' ' ORDER BY name) FROM railyard.tasks
	           WHERE pipeline_id = $id AND service = 'storefront'") == "integration:storefront" ]] ||
		fail "storefront should only run its integration tests"
	# typed edges, no stage barrier
	local edges
	edges=$(sql "SELECT upstream || '>' || downstream || ':' || kind FROM railyard.edges WHERE pipeline_id = $id")
	for e in "build:money>build:cart:build" "build:cart>build:checkout:build" "build:money>build:checkout:build" \
		"build:cart>test:cart:build" "test:checkout>deploy:checkout:test" \
		"deploy:checkout>integration:storefront:runtime" "deploy:cart>integration:storefront:runtime"; do
		grep -qx "$e" <<<"$edges" || fail "pipeline $id lacks edge $e"
	done
	! grep -q "build:checkout>test:cart" <<<"$edges" || fail "a stage barrier: cart's tests wait for checkout's build"
	# cart and checkout call each other: no deploy ordered inside that cycle
	! grep -q "deploy:cart>deploy:checkout\|deploy:checkout>deploy:cart" <<<"$edges" ||
		fail "a deploy was ordered along a runtime cycle"
	grep -q "warning: runtime cycle" "$RY_WORKDIR/plan.err" || true
	# the cache's inputs and conditions come from the service roots
	[[ $(sql "SELECT cacheable || ' ' || inputs::text || ' ' || only_if_changed FROM railyard.tasks
	           WHERE pipeline_id = $id AND name = 'build:cart'") == \
		'true {services/cart,go.work,go.work.sum} ^(?:services/cart(/|$)|go\.work$|go\.work\.sum$|libs/money(/|$))' ]] ||
		fail "build:cart: $(sql "SELECT cacheable, inputs, only_if_changed FROM railyard.tasks WHERE pipeline_id = $id AND name = 'build:cart'")"
	[[ $(sql "SELECT cacheable FROM railyard.tasks WHERE pipeline_id = $id AND name = 'deploy:cart'") == f ]] ||
		fail "a deploy must not be cacheable"
}

a_build_cycle_is_refused_with_its_path() {
	ry_newdb plan-cycle
	local d=$RY_WORKDIR/cycle out rc=0
	setup_repo "$d"
	fx_put "$d/railyard.yaml" <<<$'dependencies:\n  - {from: money, to: checkout}'
	commit_change "$d" libs/money/rates.go
	out=$("$RY" plan "$d" --base HEAD~1 2>&1) || rc=$?
	((rc == 1)) || fail "a build cycle: exit $rc, expected 1: $out"
	[[ $out == *"railyard: error: cycle: cart -> money -> checkout -> cart (build, services/checkout/go.mod:4)"* &&
		$out == *"  money -> checkout: build, railyard.yaml:2"* ]] || fail "the cycle's path and evidence: $out"
	[[ $(sql "SELECT count(*) FROM railyard.pipelines") == 0 ]] || fail "something was submitted"
}

nothing_affected_submits_nothing() {
	ry_newdb plan-none
	local d=$RY_WORKDIR/none out rc=0
	setup_repo "$d"
	commit_change "$d" README.md docs/guide.md
	out=$("$RY" plan "$d" --base HEAD~1 2>&1) || rc=$?
	((rc == 0)) || fail "nothing affected: exit $rc: $out"
	[[ $out == *"nothing to do: no service is affected by the 2 changed paths"* &&
		$out == *"not in any service (ignored): README.md docs/guide.md"* ]] || fail "unexpected output: $out"
	[[ $(sql "SELECT count(*) FROM railyard.pipelines") == 0 ]] || fail "something was submitted"
}

dry_run_says_why() {
	ry_newdb plan-dry
	local d=$RY_WORKDIR/dry out
	setup_repo "$d"
	out=$("$RY" plan "$d" --dry-run --changed services/cart/main.go 2>/dev/null)
	[[ $out == *"3 of 20 services affected by 1 changed path:"* ]] || fail "no header: $out"
	[[ $out == *"  cart: changed: services/cart/main.go"* ]] || fail "cart's reason: $out"
	[[ $out == *"  checkout: build dependency on cart (services/checkout/go.mod:4), cart changed: services/cart/main.go"* ]] ||
		fail "checkout's reason: $out"
	[[ $out == *"  storefront: runtime dependency on cart (docker-compose.yml:6): integration tests, cart changed: services/cart/main.go"* ]] ||
		fail "storefront's reason: $out"
	[[ $(sql "SELECT count(*) FROM railyard.pipelines") == 0 ]] || fail "--dry-run submitted"
	# --json: the spec railyard submit takes
	"$RY" plan "$d" --dry-run --json --changed services/cart/main.go >"$RY_WORKDIR/plan.json" 2>/dev/null
	"$RY" submit --check "$RY_WORKDIR/plan.json" || fail "the --json spec does not pass railyard submit --check"
}

explicit_rows_change_the_plan() {
	ry_newdb plan-explicit
	local d=$RY_WORKDIR/explicit id
	setup_repo "$d"
	"$RY" deps scan "$d" >/dev/null
	# a person says checkout does not really build on cart
	sql "INSERT INTO railyard.service_deps (repository, from_service, to_service, kind, suppressed)
	     VALUES ('explicit', 'checkout', 'cart', 'build', true)" >/dev/null
	id=$(plan_ok "$d" --changed services/cart/main.go)
	[[ $(sql "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND name = 'build:checkout'") == 0 ]] ||
		fail "checkout was rebuilt although the edge is suppressed"
}

changed_paths_given_every_way() {
	ry_newdb plan-paths
	local d=$RY_WORKDIR/paths id out rc=0
	setup_repo "$d"
	id=$(plan_ok "$d" --changed "$(cd "$d" && pwd)/jvm/catalog/src/A.java" dotnet/Shared/S.cs)
	[[ $(pipeline_services "$id") == "Pricing Pricing.Tests Shared catalog inventory recommender" ]] ||
		fail "absolute and positional paths: $(pipeline_services "$id")"
	id=$(printf 'python/features/f.py\n\n' | plan_ok "$d" --changed -)
	[[ $(pipeline_services "$id") == "features recommender" ]] || fail "paths from stdin: $(pipeline_services "$id")"
	out=$("$RY" plan "$d" --changed /etc/passwd 2>&1) || rc=$?
	((rc == 2)) && [[ $out == *"is not inside"* ]] || fail "a path outside DIR: exit $rc: $out"
	rc=0
	out=$("$RY" plan "$d" 2>&1) || rc=$?
	((rc == 2)) && [[ $out == *"plan needs --changed PATH... or --base REV"* ]] || fail "no change given: exit $rc: $out"
	rc=0
	out=$("$RY" plan "$d" --base no-such-rev 2>&1) || rc=$?
	((rc == 2)) && [[ $out == *"git diff failed"* ]] || fail "a bad --base: exit $rc: $out"
}

the_planned_pipeline_runs_in_order() {
	ry_newdb plan-run
	local d=$RY_WORKDIR/run id log=$RY_WORKDIR/run.log
	: >"$log"
	chmod 666 "$log"
	fx_put "$d/railyard.yaml" <<-X
	templates:
	  ecosystems:
	    go:
	      build: "echo build {name} >> $log"
	      test: "echo test {name} >> $log"
	      integration: null
	X
	fx_put "$d/lib/go.mod" <<<'module example.com/lib'
	fx_put "$d/app/go.mod" <<<$'module example.com/app\nrequire example.com/lib v1.0.0'
	fx_put "$d/tool/go.mod" <<<$'module example.com/tool\nrequire example.com/app v1.0.0'
	git_repo "$d"
	commit_change "$d" lib/lib.go
	id=$(plan_ok "$d" --base HEAD~1)
	start_worker planrun --slots 3 --workdir "$RY_WORKDIR/w"
	wait_pipeline 60 "$id" succeeded >/dev/null
	# each build after the build it needs; tests after their own build
	local order
	order=$(tr '\n' ' ' <"$log")
	[[ $order == "build lib "*"build app "*"build tool "* ]] || fail "builds ran out of order: $order"
	[[ $(grep -c . "$log") == 6 ]] || fail "expected 3 builds and 3 tests: $order"
}

a_stored_scan_is_reused_while_manifests_stay() {
	ry_newdb plan-stored
	local d=$RY_WORKDIR/stored out
	setup_repo "$d"
	"$RY" deps scan "$d" >/dev/null
	[[ $(sql "SELECT revision FROM railyard.dep_scans") == "$(git -C "$d" rev-parse HEAD)" ]] ||
		fail "a scan of a clean checkout did not record its commit"
	# a commit that touches no manifest: the stored graph is current
	commit_change "$d" services/cart/main.go
	out=$("$RY" plan "$d" --dry-run --changed services/cart/main.go 2>&1)
	[[ $out == *"note: the stored scan of $(git -C "$d" rev-parse HEAD~1 | cut -c1-12) is current"* ]] ||
		fail "the stored scan was not reused: $out"
	[[ $out == *"  checkout: build dependency on cart (services/checkout/go.mod:4)"* ]] ||
		fail "the stored graph planned differently: $out"
	# a commit that changes a manifest: scan again, and see the new edge
	printf 'require example.com/shop/cart v0.1.0\n' >>"$d/libs/money/go.mod"
	git -C "$d" -c user.email=t@example.com -c user.name=test commit -q -am "money needs cart"
	out=$("$RY" plan "$d" --dry-run --changed services/search.txt services/cart/main.go 2>&1) || :
	[[ $out != *"stored scan"* ]] || fail "a stale stored scan was used: $out"
	[[ $out == *"cycle: "* ]] || fail "the new edge (a cycle) was not seen: $out"
	# a change that is itself a manifest: scan too
	git -C "$d" -c user.email=t@example.com -c user.name=test revert --no-edit HEAD >/dev/null
	"$RY" deps scan "$d" >/dev/null
	out=$("$RY" plan "$d" --dry-run --changed apps/storefront/package.json 2>&1)
	[[ $out != *"stored scan"* ]] || fail "the stored scan was used for a manifest change: $out"
	# a dirty manifest is not part of a commit: no revision is recorded
	echo '// dirty' >>"$d/services/cart/go.mod"
	"$RY" deps scan "$d" >/dev/null
	[[ $(sql "SELECT revision IS NULL FROM railyard.dep_scans ORDER BY id DESC LIMIT 1") == t ]] ||
		fail "a scan of a dirty checkout recorded a commit"
}

run_scenario "a leaf change plans one service" a_leaf_change_plans_one_service
run_scenario "plan reuses the stored scan while no manifest changed, and scans when one did" a_stored_scan_is_reused_while_manifests_stay
run_scenario "a shared library's change plans all its dependents and nothing else" a_shared_library_plans_its_dependents_and_nothing_else
run_scenario "a build cycle is refused with its path" a_build_cycle_is_refused_with_its_path
run_scenario "nothing affected: says so, submits nothing, exit 0" nothing_affected_submits_nothing
run_scenario "--dry-run says why each service is in the plan" dry_run_says_why
run_scenario "explicit rows in the database change the plan" explicit_rows_change_the_plan
run_scenario "changed paths: absolute, positional, from stdin; bad ones refused" changed_paths_given_every_way
run_scenario "a planned pipeline runs on a worker in dependency order" the_planned_pipeline_runs_in_order
