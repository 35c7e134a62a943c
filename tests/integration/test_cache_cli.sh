#!/usr/bin/env bash
# railyard cache explain|stats|revoke as people use them, over records a
# worker would have written (railyard.cache_record).
. "$(dirname "$0")/lib.sh"

T1="tree 3f2a1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a3"
T2="tree 9c1b07aa5e4d3c2b1a09f8e7d6c5b4a3f2a1c0d9"
O1=$(printf '1%.0s' {1..64})
O2=$(printf '2%.0s' {1..64})
K1=$(printf 'a%.0s' {1..64})
K2=$(printf 'b%.0s' {1..64})

AGENT=$(sql "SELECT railyard.register_agent('w1', 'h', 'linux', 'amd64', 1, 1, NULL, '{}', 4, 4, 1, 1, 't', 60)")

# run_cart KEY INPUT_TREE PROTO_OUTPUT OUTCOME: one pipeline whose
# build:cart ran (or was served) with those components; prints its task id.
run_cart() {
	local id t
	id=$(ry_submit "(name, source, team) VALUES ('shop', '/srv/shop.git', 'payments')" "
	     INSERT INTO railyard.tasks (pipeline_id, name, service, command, cacheable, inputs, outputs)
	     VALUES (:id, 'build:cart', 'cart', 'make -C services/cart', true, '{services/cart/}', '{bin}');")
	t=$(sql "SELECT c.id FROM railyard.tasks t, railyard.claim_tasks($AGENT, ARRAY[t.id]) c
	         WHERE t.pipeline_id = $id")
	sql "SELECT accepted FROM railyard.cache_record($AGENT, '[{\"task_id\": $t, \"attempt\": 1,
	     \"key\": \"$1\", \"outcome\": \"$4\", \"output_digest\": \"$O1\", \"output_size\": 2048,
	     \"duration_s\": 42, \"restored_bytes\": $([[ $4 == cached ]] && echo 2048 || echo 0),
	     \"components\": {\"def.command\": \"make -C services/cart\", \"def.kind\": \"build\",
	       \"input:services/cart/\": \"$2\", \"upstream:build:proto\": \"output $3\",
	       \"platform.os\": \"linux\"}}]')" >/dev/null
	sql "SELECT accepted FROM railyard.complete_tasks($AGENT, ARRAY[$t]::bigint[], ARRAY[1], ARRAY['$4'],
	     ARRAY[0], ARRAY[NULL]::text[], ARRAY[now()], ARRAY[now()], ARRAY[NULL]::text[], ARRAY[NULL]::text[])" >/dev/null
	echo "$t"
}

explain_names_the_change() {
	local t1 t2 out pid
	t1=$(run_cart "$K1" "$T1" "$O1" succeeded)
	out=$("$RY" cache explain "$t1")
	[[ $out == *"no earlier entry of build:cart from this source: a first build"* ]] || fail "first build: $out"
	t2=$(run_cart "$K2" "$T2" "$O2" succeeded)
	out=$("$RY" cache explain "$t2")
	echo "$out"
	[[ $out == *"task $t2 build:cart: key bbbbbbbbbbbb… miss (ran, succeeded)"* ]] || fail "header: $out"
	[[ $out == *"compared with entry aaaaaaaaaaaa… (task $t1"* ]] || fail "no reference entry: $out"
	[[ $out == *"  inputs services/cart/: tree 3f2a1c… → 9c1b07…"* ]] || fail "input change not named: $out"
	[[ $out == *"  upstream build:proto output changed (111111… → 222222…)"* ]] || fail "upstream: $out"
	[[ $out == *"  command unchanged"* ]] || fail "unchanged command not said: $out"
	# PIPELINE:NAME names the same task
	pid=$(sql "SELECT pipeline_id FROM railyard.tasks WHERE id = $t2")
	[[ $("$RY" cache explain "$pid:build:cart") == "$out" ]] || fail "PIPELINE:NAME differs"
}
run_scenario "railyard cache explain names the changed components of a miss" explain_names_the_change

explain_errors() {
	local out rc id
	id=$(ry_submit "(name) VALUES ('p')" "INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true');")
	rc=0
	out=$("$RY" cache explain "$id:a" 2>&1) || rc=$?
	((rc == 1)) && [[ $out == *"has no cache key: it has not run yet"* ]] || fail "task without key (rc $rc): $out"
	rc=0
	out=$("$RY" cache explain 999999 2>&1) || rc=$?
	((rc == 2)) && [[ $out == "railyard: error: cache explain: task 999999 does not exist" ]] || fail "unknown task (rc $rc): $out"
	rc=0
	out=$("$RY" cache explain "x:y" 2>&1) || rc=$?
	((rc == 2)) && [[ $out == *"neither a task id nor PIPELINE:NAME"* ]] || fail "bad argument (rc $rc): $out"
}
run_scenario "explain of a task without a key, an unknown task, a bad argument: clear errors" explain_errors

stats_show_hits() {
	run_cart "$K2" "$T2" "$O2" cached >/dev/null
	local out
	out=$("$RY" cache stats)
	echo "$out"
	# three keyed runs of build:cart in this database: two built, one served
	[[ $out == *"total"*"lookups"* ]] || fail "no table: $out"
	echo "$out" | grep -E '^all +3 +1 +33\.3 +4\.0 KB +2\.0 KB +42s$' >/dev/null || fail "totals wrong: $out"
	echo "$out" | grep -E '^payments +3 +1 ' >/dev/null || fail "no team row: $out"
	echo "$out" | grep -E '^cart +3 +1 ' >/dev/null || fail "no service row: $out"
}
run_scenario "railyard cache stats: lookups, hits, bytes and time saved by team, service and day" stats_show_hits

revoke_by_provenance() {
	local out rc
	out=$("$RY" cache revoke --agent w1 --reason "misconfigured toolchain")
	[[ $out == "revoked 2 cache entries (revocation "*")" ]] || fail "revoke --agent: $out"
	sql_eq "f|revoked" "SELECT hit, reason FROM railyard.cache_lookup(ARRAY['$K2'])"
	out=$("$RY" cache revoke --since 1h)
	[[ $out == *"revoked 0 cache entries"*"nothing matched" ]] || fail "revoke --since again: $out"
	out=$("$RY" cache revoke --since '2020-01-01 00:00:00+00' --key "$K1")
	[[ $out == "revoked 0 cache entries"* ]] || fail "revoke --key: $out"
	sql_eq "3" "SELECT count(*) FROM railyard.audit_log WHERE object = 'cache' AND event = 'revoke'"
	rc=0
	out=$("$RY" cache revoke 2>&1) || rc=$?
	((rc == 2)) && [[ $out == *"needs --agent NAME, --since TIME or --key KEY"* ]] || fail "no criteria (rc $rc): $out"
	rc=0
	out=$("$RY" cache revoke --key nothex 2>&1) || rc=$?
	((rc == 2)) && [[ $out == *"is not a cache key"* ]] || fail "bad key (rc $rc): $out"
	rc=0
	out=$("$RY" cache revoke --since yesterdayish 2>&1) || rc=$?
	((rc == 2)) && [[ $out == *'--since: "yesterdayish" is neither a time nor an age'* ]] || fail "bad time (rc $rc): $out"
}
run_scenario "railyard cache revoke by agent, time or key; recorded in the audit log" revoke_by_provenance

gc_local_store() {
	ry_newdb gc
	local dir=$RY_WORKDIR/gcstore d1 d2 out
	mkdir -p "$dir"
	printf 'cache_dir = %s\n' "$dir" >gc.conf
	d1=$(printf 'orphan' | sha256sum | cut -c1-64)
	d2=$(printf 'known' | sha256sum | cut -c1-64)
	mkdir -p "$dir/cas/${d1:0:2}" "$dir/cas/${d2:0:2}"
	printf 'orphan' >"$dir/cas/${d1:0:2}/$d1"
	printf 'known' >"$dir/cas/${d2:0:2}/$d2"
	touch -d '2 hours ago' "$dir/cas/${d1:0:2}/$d1" "$dir/cas/${d2:0:2}/$d2"
	sql "INSERT INTO railyard.artifacts (digest, size) VALUES ('$d2', 5);
	     INSERT INTO railyard.cache_entries (key, output_digest, output_size, components, task_name)
	     VALUES ('$K1', '$d2', 5, '{}', 'x')" >/dev/null
	out=$("$RY" cache gc --config gc.conf --dry-run --grace 1h)
	[[ $out == *"would remove local ${d1:0:12}… (6 bytes): the database no longer records it"* ]] || fail "dry run: $out"
	[[ -f $dir/cas/${d1:0:2}/$d1 ]] || fail "a dry run removed a blob"
	out=$("$RY" cache gc --config gc.conf --grace 1h --max-size 1)
	echo "$out"
	[[ ! -e $dir/cas/${d1:0:2}/$d1 ]] || fail "the orphan blob is still there"
	[[ -f $dir/cas/${d2:0:2}/$d2 ]] || fail "a blob used within the grace in the database went"
	# once idle in the database too, the size cap removes it and its entry
	sql "UPDATE railyard.artifacts SET last_used_at = now() - interval '2 hours'" >/dev/null
	out=$("$RY" cache gc --config gc.conf --grace 1h --max-size 1)
	echo "$out"
	[[ $out == *"database: removed 1 artifacts (5 B) and 1 cache entries"* ]] || fail "size cap: $out"
	[[ ! -e $dir/cas/${d2:0:2}/$d2 ]] || fail "the evicted blob is still stored"
	local rc=0
	out=$("$RY" cache gc --max-size lots 2>&1) || rc=$?
	((rc == 2)) && [[ $out == *'--max-size: "lots" is not a size'* ]] || fail "bad size (rc $rc): $out"
}
run_scenario "railyard cache gc on a local store: orphans, grace, size cap, dry run" gc_local_store
