#!/usr/bin/env bash
# `railyard deps scan` and the dependency tables (issue 10, items 1, 2, 3
# and 5; docs/deps.md): a scan stores services and edges with evidence,
# exactly the true graph of a mixed-ecosystem fixture; a rescan is
# idempotent and reports what changed; explicit rows override and suppress
# detected ones and scans never touch them; railyard.yaml declarations
# follow the file; --dry-run stores nothing and needs no database; --json is
# JSON; broken manifests are warnings, never a failed or half-stored scan;
# nothing outside DIR is read; a build cycle is an error naming the path;
# railyard.affected() agrees with `railyard plan`.
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/fixtures/deps/repos.sh
. "$RY_ROOT/tests/fixtures/deps/repos.sh"

# scan_ok DIR ARGS...: a scan that must succeed; its output on stdout.
scan_ok() {
	local out rc=0
	out=$("$RY" deps scan "$@" 2>&1) || rc=$?
	((rc == 0)) || fail "railyard deps scan $* exited $rc: $out"
	printf '%s\n' "$out"
}

graph() {
	sql "SELECT from_service || ' ' || to_service || ' ' || kind FROM railyard.service_graph
	      WHERE repository = '$1' ORDER BY (from_service || ' ' || to_service || ' ' || kind) COLLATE \"C\""
}

scan_stores_the_true_graph() {
	ry_newdb deps-store
	fixture_shop "$RY_WORKDIR/shop"
	scan_ok "$RY_WORKDIR/shop" >/dev/null
	local got want
	got=$(graph shop)
	want=$(shop_edges | LC_ALL=C sort)
	[[ $got == "$want" ]] || fail "stored graph differs from the fixture's true graph:
$(diff <(echo "$want") <(echo "$got"))"
	# evidence: file and line of the dependency, and the detector
	[[ $(sql "SELECT evidence || ' ' || detector || ' ' || origin FROM railyard.service_graph
	           WHERE repository = 'shop' AND from_service = 'orders' AND to_service = 'payments-api'") == \
		"java/orders/pom.xml:11 maven dependency detected" ]] || fail "orders -> payments-api evidence is wrong"
	[[ $(sql "SELECT evidence FROM railyard.service_graph WHERE from_service = 'cart' AND to_service = 'redis'") == \
		"docker-compose.yml:13" ]] || fail "cart -> redis (via .env) evidence is wrong"
	[[ $(sql "SELECT evidence FROM railyard.service_graph WHERE from_service = 'checkout' AND to_service = 'payments-api'") == \
		"config/checkout.env:1" ]] || fail "checkout -> payments-api (env_file) evidence is wrong"
	[[ $(sql "SELECT root || ' ' || ecosystem || ' ' || manifest || ' ' || owns_root FROM railyard.services
	           WHERE repository = 'shop' AND name = 'shop-java'") == "java maven java/pom.xml false" ]] ||
		fail "the Maven aggregator is not stored as one that owns only its pom"
	[[ $(sql "SELECT coalesce(root, '-') || ' ' || ecosystem FROM railyard.services WHERE name = 'redis'") == "- image" ]] ||
		fail "redis should be an image service without root"
	[[ $(sql "SELECT services || ' ' || dependencies || ' ' || added || ' ' || removed
	           FROM railyard.dep_scans WHERE repository = 'shop'") == "20 23 43 0" ]] ||
		fail "dep_scans row: $(sql "SELECT * FROM railyard.dep_scans")"
}

rescans_are_idempotent_and_report_changes() {
	ry_newdb deps-rescan
	fixture_shop "$RY_WORKDIR/shop2"
	scan_ok "$RY_WORKDIR/shop2" --repo shop >/dev/null
	local first out
	first=$(sql "SELECT first_seen FROM railyard.service_deps WHERE from_service = 'cart' AND to_service = 'money'")
	out=$(scan_ok "$RY_WORKDIR/shop2" --repo shop)
	[[ $out == *"since the last scan: 0 added, 0 removed"* ]] || fail "a rescan changed things: $out"
	# drop one dependency, add another
	sed -i 's|"@shop/ui": "workspace:\*",|"@shop/kit-two": "workspace:*",|' "$RY_WORKDIR/shop2/apps/storefront/package.json"
	fx_put "$RY_WORKDIR/shop2/packages/kit2/package.json" <<<'{"name": "@shop/kit-two"}'
	out=$(scan_ok "$RY_WORKDIR/shop2" --repo shop)
	[[ $out == *"since the last scan: 2 added, 1 removed"* ]] || fail "changes not reported: $out"
	[[ $out == *"+ service kit-two"* && $out == *"+ dependency storefront -> kit-two (build, apps/storefront/package.json:4)"* &&
		$out == *"- dependency storefront -> ui (build)"* ]] || fail "change lines missing: $out"
	[[ $(sql "SELECT first_seen FROM railyard.service_deps WHERE from_service = 'cart' AND to_service = 'money'") == "$first" ]] ||
		fail "an unchanged edge lost its first_seen"
	[[ $(sql "SELECT count(*) FROM railyard.dep_scans WHERE repository = 'shop'") == 3 ]] || fail "expected 3 scans recorded"
}

explicit_rows_override_and_survive_scans() {
	ry_newdb deps-explicit
	fixture_shop "$RY_WORKDIR/shop3"
	scan_ok "$RY_WORKDIR/shop3" --repo shop >/dev/null
	# a false edge suppressed, a missing one added, a service excluded: plain SQL
	sql "INSERT INTO railyard.service_deps (repository, from_service, to_service, kind, suppressed)
	     VALUES ('shop', 'storefront', 'cart', 'runtime', true);
	     INSERT INTO railyard.service_deps (repository, from_service, to_service, kind)
	     VALUES ('shop', 'storefront', 'recommender', 'runtime');
	     INSERT INTO railyard.services (repository, name, excluded) VALUES ('shop', 'protos', true)" >/dev/null
	local out g
	out=$(scan_ok "$RY_WORKDIR/shop3" --repo shop)
	g=$(graph shop)
	[[ $g != *"storefront cart runtime"* ]] || fail "the suppressed edge is still in the graph"
	[[ $g == *"storefront recommender runtime"* ]] || fail "the explicit edge is not in the graph"
	[[ $g != *"protos"* ]] || fail "the excluded service still has edges"
	[[ $(sql "SELECT origin || ' ' || coalesce(detector, '-') || ' ' || suppressed FROM railyard.service_deps
	           WHERE from_service = 'storefront' AND to_service = 'cart'") == "explicit - true" ]] ||
		fail "the scan touched the explicit row"
	# the excluded service's edges leave the stored graph; the explicit rows are no change
	[[ $out == *$'0 added, 1 removed\n  - dependency checkout -> protos (build)' ]] ||
		fail "the scan reported other changes: $out"
	# deleting the explicit row gives detection back
	sql "DELETE FROM railyard.service_deps WHERE from_service = 'storefront' AND to_service = 'cart'" >/dev/null
	scan_ok "$RY_WORKDIR/shop3" --repo shop >/dev/null
	[[ $(graph shop) == *"storefront cart runtime"* ]] || fail "the detected edge did not come back"
}

railyard_yaml_declarations_follow_the_file() {
	ry_newdb deps-yaml
	fixture_shop "$RY_WORKDIR/shop4"
	fx_put "$RY_WORKDIR/shop4/railyard.yaml" <<-'X'
	services:
	  - {name: legacy, root: legacy, ecosystem: make}
	dependencies:
	  - {from: legacy, to: money, kind: build}
	  - {from: cart, to: checkout, kind: runtime, suppress: true}
	X
	mkdir -p "$RY_WORKDIR/shop4/legacy"
	scan_ok "$RY_WORKDIR/shop4" --repo shop >/dev/null
	[[ $(sql "SELECT origin || ' ' || detector || ' ' || evidence_file || ':' || evidence_line
	           FROM railyard.service_deps WHERE from_service = 'legacy'") == "explicit railyard.yaml railyard.yaml:4" ]] ||
		fail "the declared edge is not stored as explicit with its line"
	[[ $(graph shop) != *"cart checkout runtime"* ]] || fail "the suppressed runtime edge is in the graph"
	# the declaration goes away with the file's line
	fx_put "$RY_WORKDIR/shop4/railyard.yaml" <<<'services: [{name: legacy, root: legacy}]'
	local out
	out=$(scan_ok "$RY_WORKDIR/shop4" --repo shop)
	[[ $out == *"- dependency legacy -> money (build)"* ]] || fail "removing the declaration was not reported: $out"
	[[ $(graph shop) == *"cart checkout runtime"* ]] || fail "the detected edge did not come back"
	# a bad railyard.yaml fails the scan whole, naming the line; nothing changes
	fx_put "$RY_WORKDIR/shop4/railyard.yaml" <<<$'services:\n  - {name: x, rooot: y}'
	local before rc=0
	before=$(sql "SELECT count(*) FROM railyard.dep_scans")
	out=$("$RY" deps scan "$RY_WORKDIR/shop4" --repo shop 2>&1) || rc=$?
	((rc == 1)) || fail "a bad railyard.yaml: exit $rc, expected 1"
	[[ $out == *"railyard: error: railyard.yaml:2: service: unknown key \"rooot\""* ]] || fail "error does not name the line: $out"
	[[ $(sql "SELECT count(*) FROM railyard.dep_scans") == "$before" ]] || fail "a failed scan was stored"
}

dry_run_and_json_need_no_database() {
	fixture_shop "$RY_WORKDIR/shop5"
	local out
	out=$(RAILYARD_DB="host=/nonexistent dbname=x" "$RY" deps scan "$RY_WORKDIR/shop5" --dry-run --json) ||
		fail "--dry-run --json failed without a database"
	# valid JSON with the graph: count through PostgreSQL's parser
	[[ $(sql -v "j=$out" "SELECT jsonb_array_length((:'j')::jsonb -> 'services') || ' ' ||
	                             jsonb_array_length((:'j')::jsonb -> 'edges') || ' ' || ((:'j')::jsonb ->> 'stored')") == \
		"20 23 false" ]] || fail "--json output is not the graph"
	out=$(RAILYARD_DB="host=/nonexistent dbname=x" "$RY" deps scan "$RY_WORKDIR/shop5" --dry-run)
	[[ $out == *"20 services, 23 dependencies (12 build, 4 test, 7 runtime)"* && $out == *"not stored (--dry-run)"* ]] ||
		fail "dry-run summary: $out"
}

broken_manifests_are_warnings() {
	ry_newdb deps-broken
	local d=$RY_WORKDIR/broken
	fixture_shop "$d"
	printf '<project><artifactId>x</artifactId>\n<dependencies>\n' >"$d/java/testkit/pom.xml"
	printf '{"name": "@shop/ui",\n  "dependencies": {,}\n}\n' >"$d/packages/ui/package.json"
	printf 'services:\n  cart: [\n' >"$d/docker-compose.override.yml"
	printf '<Project><ItemGroup><ProjectReference Include="..\\Nope\\Nope.csproj" /></ItemGroup></Project>\n' \
		>"$d/dotnet/Shared/Shared.csproj"
	printf 'module example.com/shop/money\nreplace example.com/x => ../gone\n' >"$d/libs/money/go.mod"
	head -c 2000000 /dev/zero | tr '\0' ' ' >"$d/apps/storefront/big.Dockerfile"
	local out
	out=$(scan_ok "$d" --repo broken)
	local w
	for w in "java/testkit/pom.xml:3: invalid XML" "packages/ui/package.json:2: invalid JSON" \
		"docker-compose.override.yml:3: invalid YAML" "dotnet/Shared/Shared.csproj:1: ProjectReference ..\\Nope\\Nope.csproj: no such project" \
		"libs/money/go.mod:2: replace => ../gone: no such directory" "apps/storefront/big.Dockerfile: not read: larger than 1024 KiB"; do
		[[ $out == *"$w"* ]] || fail "missing warning \"$w\" in: $out"
	done
	# the rest of the repository is stored, with the warnings
	[[ $(sql "SELECT count(*) FROM railyard.service_graph WHERE repository = 'broken'") -ge 18 ]] ||
		fail "the scan stored too little"
	[[ $(sql "SELECT cardinality(warnings) FROM railyard.dep_scans WHERE repository = 'broken'") == 6 ]] ||
		fail "warnings not stored with the scan"
}

nothing_outside_dir_is_read() {
	ry_newdb deps-outside
	local d=$RY_WORKDIR/inside
	mkdir -p "$RY_WORKDIR/secret" "$d/svc"
	fx_put "$RY_WORKDIR/secret/go.mod" <<<'module secret.example.com/passwords'
	fx_put "$d/svc/go.mod" <<<'module inside'
	ln -s "$RY_WORKDIR/secret/go.mod" "$d/svc2-go.mod"
	mkdir -p "$d/svc2" && ln -s ../../secret/go.mod "$d/svc2/go.mod"
	ln -s "$RY_WORKDIR/secret" "$d/linked-dir"
	ln -s loop-b "$d/svc/loop-a.env" && ln -s loop-a.env "$d/svc/loop-b"
	ln -s loop-b "$d/svc/.env"
	local out
	out=$(scan_ok "$d")
	[[ $out == *"svc2/go.mod: not read: a symbolic link leads outside the repository"* ]] ||
		fail "the link out was not refused: $out"
	[[ $out == *"svc/.env: not read: a loop of symbolic links"* ]] || fail "the link loop was not reported: $out"
	[[ $(sql "SELECT count(*) FROM railyard.services WHERE name LIKE '%passwords%' OR manifest LIKE '%secret%'") == 0 ]] ||
		fail "something outside DIR was read"
}

cycles_are_reported_with_their_path() {
	ry_newdb deps-cycle
	local d=$RY_WORKDIR/cyc out rc=0
	fx_put "$d/services/orders/pom.xml" <<-'X'
	<project>
	  <groupId>com.shop</groupId>
	  <artifactId>orders</artifactId>
	  <dependencies>
	    <dependency><groupId>com.shop</groupId><artifactId>payments</artifactId></dependency>
	  </dependencies>
	</project>
	X
	fx_put "$d/services/payments/pom.xml" <<-'X'
	<project>
	  <groupId>com.shop</groupId>
	  <artifactId>payments</artifactId>
	  <dependencies>
	    <dependency><groupId>com.shop</groupId><artifactId>orders</artifactId></dependency>
	  </dependencies>
	</project>
	X
	fx_put "$d/docker-compose.yml" <<<$'services:\n  a: {image: a, depends_on: [b]}\n  b: {image: b, depends_on: [a]}'
	out=$("$RY" deps scan "$d" 2>&1) || rc=$?
	((rc == 1)) || fail "a build cycle: exit $rc, expected 1"
	[[ $out == *"railyard: error: cycle: orders -> payments -> orders (build, services/payments/pom.xml:5)"* ]] ||
		fail "the cycle's path and evidence are missing: $out"
	[[ $out == *"warning: runtime cycle (deploys are not ordered along it): a -> b -> a (runtime, docker-compose.yml:3)"* ]] ||
		fail "the runtime cycle is not a warning: $out"
	# what the repository says is stored anyway
	[[ $(sql "SELECT count(*) FROM railyard.service_graph WHERE kind = 'build'") == 2 ]] || fail "the cycle was not stored"
}

# plan_names DIR PATHS...: the services `railyard plan --dry-run` lists, sorted.
plan_names() {
	local dir=$1
	shift
	"$RY" plan "$dir" --dry-run --repo shop --changed "$@" 2>/dev/null |
		sed -n 's/^  \([^ :]*\): .*/\1/p' | LC_ALL=C sort
}

affected_agrees_with_plan() {
	ry_newdb deps-affected
	fixture_shop "$RY_WORKDIR/shop6"
	scan_ok "$RY_WORKDIR/shop6" --repo shop >/dev/null
	local change sqlset planset
	for change in "libs/money/money.go" "protos/shop/v1/money.proto" "java/pom.xml" "go.work" \
		"docker-compose.yml" "config/checkout.env" "packages/kit/index.js" "README.md" \
		"services/cart/main.go,dotnet/Shared/Shared.cs"; do
		sqlset=$(sql "SELECT service FROM railyard.affected('shop', string_to_array('$change', ','))" | LC_ALL=C sort)
		# shellcheck disable=SC2046  # one path per word
		planset=$(plan_names "$RY_WORKDIR/shop6" $(tr ',' ' ' <<<"$change"))
		[[ $sqlset == "$planset" ]] || fail "for $change, railyard.affected says [${sqlset//$'\n'/ }] but plan [${planset//$'\n'/ }]"
	done
	# and the kinds: a runtime dependent gets integration tests, a test dependent its tests
	[[ $(sql "SELECT service || ':' || kind FROM railyard.affected('shop', '{libs/money/money.go}') ORDER BY 1") == \
		$'cart:build\ncheckout:build\nmoney:changed\nstorefront:runtime' ]] || fail "kinds of the money change are wrong"
	[[ $(sql "SELECT service || ':' || kind || ':' || coalesce(evidence, '') FROM railyard.affected('shop', '{packages/kit/x.js}') ORDER BY 1") == \
		$'e2e-kit:changed:\nstorefront:test:apps/storefront/package.json:8' ]] || fail "the test dependent is wrong"
}

run_scenario "deps scan stores the fixture's true graph with evidence" scan_stores_the_true_graph
run_scenario "a rescan is idempotent and reports what was added and removed" rescans_are_idempotent_and_report_changes
run_scenario "explicit rows override and suppress detection, and scans never touch them" explicit_rows_override_and_survive_scans
run_scenario "railyard.yaml declarations are stored as explicit rows and follow the file" railyard_yaml_declarations_follow_the_file
run_scenario "--dry-run and --json need no database" dry_run_and_json_need_no_database
run_scenario "broken manifests are warnings with file:line, the rest is stored" broken_manifests_are_warnings
run_scenario "nothing outside DIR is read; symlink loops are reported" nothing_outside_dir_is_read
run_scenario "a build cycle is an error naming its path, a runtime cycle a warning" cycles_are_reported_with_their_path
run_scenario "railyard.affected() agrees with railyard plan" affected_agrees_with_plan
