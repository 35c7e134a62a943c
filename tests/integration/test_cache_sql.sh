#!/usr/bin/env bash
# The cache's SQL interface as a worker and people use it: sources and
# outputs at submission, the context a worker reads, records fenced by
# agent and attempt, lookups (hit, revoked, nondeterministic, flaky),
# corruption in the audit log, GC that keeps pins, stats.
. "$(dirname "$0")/lib.sh"

D1=1111111111111111111111111111111111111111111111111111111111111111
D2=2222222222222222222222222222222222222222222222222222222222222222
D3=3333333333333333333333333333333333333333333333333333333333333333
K1=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
K2=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb

# agent NAME: registers an agent row as a worker would; prints its id.
agent() {
	sql "SELECT railyard.register_agent('$1', 'host-$1', 'linux', 'amd64', 2, 1024, NULL,
	     '{linux,amd64}', 4, 2, 1024, $$, 'test', 60)"
}

# claim AGENT PIPELINE TASK: claims one ready task; prints "id attempt".
claim() {
	sql "SELECT c.id || ' ' || c.attempt FROM railyard.tasks t,
	       railyard.claim_tasks($1, ARRAY[t.id]) c
	      WHERE t.pipeline_id = $2 AND t.name = '$3'"
}

# finish AGENT ID ATTEMPT OUTCOME
finish() {
	sql "SELECT accepted FROM railyard.complete_tasks($1, ARRAY[$2]::bigint[], ARRAY[$3],
	       ARRAY['$4'], ARRAY[0], ARRAY[NULL]::text[], ARRAY[now()], ARRAY[now()],
	       ARRAY[NULL]::text[], ARRAY[NULL]::text[])"
}

# record AGENT JSON: prints "task|accepted|conflict" rows.
record() {
	sql "SELECT task_id, accepted, coalesce(conflict, '') FROM railyard.cache_record($1, '$2')"
}

# chain: build:lib -> build:app (build edge) -> test:app (test edge); lint runtime edge
submit_chain() {
	ry_submit "(name, source, revision) VALUES ('shop', '/srv/repo.git', 'main')" "
	INSERT INTO railyard.tasks (pipeline_id, name, service, command, cacheable, inputs, outputs)
	VALUES (:id, 'build:lib', 'lib', 'make lib', true, '{lib/}', '{lib/out}'),
	       (:id, 'build:app', 'app', 'make app', true, '{app/, go.sum}', '{app/bin}'),
	       (:id, 'test:app', 'app', 'make test', false, '{}', '{}'),
	       (:id, 'deploy:app', 'app', './deploy', false, '{}', '{}');
	INSERT INTO railyard.edges (pipeline_id, upstream, downstream, kind)
	VALUES (:id, 'build:lib', 'build:app', 'build'), (:id, 'build:app', 'test:app', 'test'),
	       (:id, 'build:lib', 'deploy:app', 'runtime');"
}

product_md_still_works() {
	local id
	id=$(sql "$PRODUCT_MD_SUBMISSION COMMIT; SELECT :id;")
	sql_eq "|{}" "SELECT coalesce(p.source, ''), min(t.outputs::text) FROM railyard.pipelines p
	              JOIN railyard.tasks t ON t.pipeline_id = p.id WHERE p.id = $id GROUP BY p.source"
	sql_eq ready "SELECT state FROM railyard.tasks WHERE pipeline_id = $id AND name = 'build:cart'"
}
run_scenario "PRODUCT.md's submission without source or outputs still works" product_md_still_works

bad_fields_refused() {
	local base="BEGIN; INSERT INTO railyard.pipelines (name) VALUES ('p') RETURNING id \\gset
	INSERT INTO railyard.tasks (pipeline_id, name, command, outputs, inputs) VALUES"
	sql_expect_error "$base (:id, 'a', 'true', '{/etc/passwd}', '{}'); COMMIT;" task_outputs_valid
	sql_expect_error "$base (:id, 'a', 'true', '{dist/../../x}', '{}'); COMMIT;" task_outputs_valid
	sql_expect_error "$base (:id, 'a', 'true', '{.}', '{}'); COMMIT;" task_outputs_valid
	sql_expect_error "$base (:id, 'a', 'true', '{}', '{../x}'); COMMIT;" task_inputs_valid
	sql_expect_error "INSERT INTO railyard.pipelines (name, source) VALUES ('p', '--upload-pack=evil')" \
		pipeline_source_valid
	sql_expect_error "INSERT INTO railyard.pipelines (name, source) VALUES ('p', '')" \
		pipeline_source_valid
	# the whole tree as an input, a directory with a trailing slash as output: fine
	ry_submit "(name) VALUES ('ok')" "INSERT INTO railyard.tasks (pipeline_id, name, command, inputs, outputs)
	           VALUES (:id, 'a', 'true', '{., src/*.go}', '{dist/}');" >/dev/null
}
run_scenario "bad outputs, inputs and sources are refused by named constraints" bad_fields_refused

commit_pinned_once() {
	local id
	id=$(ry_submit "(name, source, revision, source_commit) VALUES ('p', '/r', 'main', '$D1${D1:0:0}')" \
		"INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'a', 'true');" 2>&1) ||
		fail "a pipeline with source_commit was refused: $id"
	sql_eq "" "SELECT source_commit FROM railyard.pipelines WHERE id = $id"
	local c1 c2
	c1=$(printf '%040d' 1)
	c2=$(printf '%040d' 2)
	sql_eq "$c1" "SELECT railyard.pin_source_commit($id, '$c1')"
	sql_eq "$c1" "SELECT railyard.pin_source_commit($id, '$c2')"
}
run_scenario "a submitter cannot pin the commit; the first worker to resolve it does" commit_pinned_once

context_and_fenced_records() {
	local a b id lib app test
	a=$(agent w1)
	b=$(agent w2)
	id=$(submit_chain)
	read -r lib _ <<<"$(claim "$a" "$id" build:lib)"
	# a record from another agent, or for another attempt, is refused
	sql_eq "$lib|f|not recorded: the task is not running under this agent with this attempt" \
		"SELECT task_id, accepted, conflict FROM railyard.cache_record($b,
		 '[{\"task_id\": $lib, \"attempt\": 1, \"outcome\": \"succeeded\", \"output_digest\": \"$D1\", \"output_size\": 10}]')"
	sql_eq "0" "SELECT count(*) FROM railyard.task_outputs"
	sql_eq "$lib|t|" "SELECT task_id, accepted, coalesce(conflict, '') FROM railyard.cache_record($a,
		 '[{\"task_id\": $lib, \"attempt\": 1, \"key\": \"$K1\", \"components\": {\"def.command\": \"make lib\"},
		    \"outcome\": \"succeeded\", \"output_digest\": \"$D1\", \"output_size\": 10,
		    \"manifest\": {\"lib/out\": \"sha256:$D3\"}, \"duration_s\": 12.5}]')"
	[[ $(finish "$a" "$lib" 1 succeeded) == t ]]
	read -r app _ <<<"$(claim "$b" "$id" build:app)"
	# build:app: build-upstream digests for its key, and what to restore
	sql_eq "/srv/repo.git|main|t|{app/,go.sum}|{app/bin}|{build:lib}|{$D1}|{build:lib}|{$D1}" \
		"SELECT source, revision, cacheable, inputs, outputs, build_upstreams,
		        build_upstream_digests, restore_from, restore_digests
		   FROM railyard.cache_context($b, ARRAY[$app])"
	# nothing for a task the agent does not hold
	sql_eq "0" "SELECT count(*) FROM railyard.cache_context($a, ARRAY[$app])"
	record "$b" "[{\"task_id\": $app, \"attempt\": 1, \"key\": \"$K2\", \"components\": {},
	     \"outcome\": \"succeeded\", \"output_digest\": \"$D2\", \"output_size\": 20, \"duration_s\": 3}]" >/dev/null
	[[ $(finish "$b" "$app" 1 succeeded) == t ]]
	read -r test _ <<<"$(claim "$a" "$id" test:app)"
	# a test edge restores but does not enter the key; runtime edges do neither
	sql_eq "{}|{build:app}|{$D2}" "SELECT build_upstreams, restore_from, restore_digests
	                                FROM railyard.cache_context($a, ARRAY[$test])"
	# an upstream without outputs: '' keeps names and digests aligned
	local d
	d=$(ry_submit "(name) VALUES ('p2')" "INSERT INTO railyard.tasks (pipeline_id, name, command)
	     VALUES (:id, 'gen', 'true'), (:id, 'use', 'true');
	     INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'gen', 'use');")
	local gen use
	read -r gen _ <<<"$(claim "$a" "$d" gen)"
	[[ $(finish "$a" "$gen" 1 succeeded) == t ]]
	read -r use _ <<<"$(claim "$a" "$d" use)"
	sql_eq '{gen}|{""}|{}' "SELECT build_upstreams, build_upstream_digests, restore_from
	                        FROM railyard.cache_context($a, ARRAY[$use])"
	sql_eq "$K1" "SELECT cache_key FROM railyard.tasks WHERE id = $lib"
}
run_scenario "cache_context gives upstream digests; cache_record is fenced by agent and attempt" \
	context_and_fenced_records

lookups() {
	ry_newdb lookups
	local a id lib
	a=$(agent w1)
	sql_eq "$K1|f||no entry" "SELECT key, hit, coalesce(output_digest, ''), reason
	                          FROM railyard.cache_lookup(ARRAY['$K1'])"
	id=$(submit_chain)
	read -r lib _ <<<"$(claim "$a" "$id" build:lib)"
	record "$a" "[{\"task_id\": $lib, \"attempt\": 1, \"key\": \"$K1\", \"components\": {},
	     \"outcome\": \"succeeded\", \"output_digest\": \"$D1\", \"output_size\": 10, \"duration_s\": 7}]" >/dev/null
	finish "$a" "$lib" 1 succeeded >/dev/null
	sql_eq "t|$D1|10|7|" "SELECT hit, output_digest, output_size, duration_s, coalesce(reason, '')
	                      FROM railyard.cache_lookup(ARRAY['$K1'])"
	# another pipeline hits it: recorded as cached, hit counted, time saved
	id=$(submit_chain)
	read -r lib _ <<<"$(claim "$a" "$id" build:lib)"
	record "$a" "[{\"task_id\": $lib, \"attempt\": 1, \"key\": \"$K1\", \"components\": {},
	     \"outcome\": \"cached\", \"output_digest\": \"$D1\", \"output_size\": 10, \"restored_bytes\": 10}]" >/dev/null
	finish "$a" "$lib" 1 cached >/dev/null
	sql_eq "1|t" "SELECT hits, last_hit_at IS NOT NULL FROM railyard.cache_entries WHERE key = '$K1'"
	sql_eq "t" "SELECT cached FROM railyard.task_outputs WHERE task_id = $lib"
	sql_eq "2|1|50.0|10|7.0" "SELECT sum(lookups), sum(hits), max(hit_rate_pct), sum(bytes_restored), sum(time_saved_s)
	                         FROM railyard.cache_stats WHERE service = 'lib'"
	# revoked by provenance: a miss saying why, audited
	sql_eq "1" "SELECT entries FROM railyard.cache_revoke('w1', NULL, NULL, 'compromised')"
	sql_eq "f|revoked" "SELECT hit, reason FROM railyard.cache_lookup(ARRAY['$K1'])"
	sql_eq "revoke|1|compromised" "SELECT event, detail->>'entries', detail->>'reason'
	                               FROM railyard.audit_log WHERE object = 'cache' ORDER BY id DESC LIMIT 1"
	# a fresh run replaces the revoked entry
	id=$(submit_chain)
	read -r lib _ <<<"$(claim "$a" "$id" build:lib)"
	record "$a" "[{\"task_id\": $lib, \"attempt\": 1, \"key\": \"$K1\", \"components\": {},
	     \"outcome\": \"succeeded\", \"output_digest\": \"$D1\", \"output_size\": 10, \"duration_s\": 7}]" >/dev/null
	sql_eq "t" "SELECT hit FROM railyard.cache_lookup(ARRAY['$K1'])"
}
run_scenario "lookups hit, count hits and time saved, and miss with a reason once revoked" lookups

unstable_keys() {
	ry_newdb unstable
	local a b id lib
	a=$(agent w1)
	b=$(agent w2)
	id=$(submit_chain)
	read -r lib _ <<<"$(claim "$a" "$id" build:lib)"
	record "$a" "[{\"task_id\": $lib, \"attempt\": 1, \"key\": \"$K1\", \"components\": {},
	     \"outcome\": \"succeeded\", \"output_digest\": \"$D1\", \"output_size\": 10,
	     \"manifest\": {\"lib/out\": \"sha256:$D1\", \"lib/stamp\": \"sha256:$D1\"}}]" >/dev/null
	finish "$a" "$lib" 1 succeeded >/dev/null
	id=$(submit_chain)
	read -r lib _ <<<"$(claim "$b" "$id" build:lib)"
	local out
	out=$(record "$b" "[{\"task_id\": $lib, \"attempt\": 1, \"key\": \"$K1\", \"components\": {},
	     \"outcome\": \"succeeded\", \"output_digest\": \"$D2\", \"output_size\": 11,
	     \"manifest\": {\"lib/out\": \"sha256:$D1\", \"lib/stamp\": \"sha256:$D2\"}}]")
	[[ $out == *"nondeterministic: key aaaaaaaaaaaa produced 111111111111 before, now 222222222222"* ]] ||
		fail "no nondeterminism reported: $out"
	finish "$b" "$lib" 1 succeeded >/dev/null
	# the first output stays the entry; the view names the differing path and both agents
	sql_eq "$D1" "SELECT output_digest FROM railyard.cache_entries WHERE key = '$K1'"
	sql_eq "build:lib|{lib/stamp}|{w1,w2}" "SELECT task_name, differing_paths, agents
	                                         FROM railyard.nondeterministic_tasks WHERE key = '$K1'"
	sql_eq "t" "SELECT hit FROM railyard.cache_lookup(ARRAY['$K1'], 'keep-first', 'no-cache')"
	sql_eq "f|nondeterministic: its runs produced different outputs" \
		"SELECT hit, reason FROM railyard.cache_lookup(ARRAY['$K1'], 'no-cache', 'no-cache')"
	# the same key failing: flaky
	id=$(submit_chain)
	read -r lib _ <<<"$(claim "$a" "$id" build:lib)"
	record "$a" "[{\"task_id\": $lib, \"attempt\": 1, \"key\": \"$K1\", \"components\": {}, \"outcome\": \"failed\"}]" >/dev/null
	sql_eq "build:lib|2|1|{w1}" "SELECT task_name, successes, failures, failed_on
	                               FROM railyard.flaky_tasks WHERE key = '$K1'"
	sql_eq "f|flaky: its runs both succeeded and failed" \
		"SELECT hit, reason FROM railyard.cache_lookup(ARRAY['$K1'])"
	sql_eq "t" "SELECT hit FROM railyard.cache_lookup(ARRAY['$K1'], 'keep-first', 'keep-first')"
	sql_expect_error "SELECT * FROM railyard.cache_lookup(ARRAY['$K1'], 'sometimes', 'no-cache')" \
		"policies are keep-first or no-cache" >/dev/null
}
run_scenario "one key, different outputs or verdicts: nondeterministic and flaky, served by policy" unstable_keys

corruption_audited() {
	local a
	a=$(agent w1)
	sql "SELECT railyard.cache_corruption($a, '$D3', 'local /var/cache', 'content does not match its digest')" >/dev/null
	sql_eq "quarantine|$D3|w1" "SELECT event, detail->>'digest', detail->>'agent'
	                            FROM railyard.audit_log WHERE object = 'artifact' ORDER BY id DESC LIMIT 1"
}
run_scenario "a corrupt blob is recorded and written to the audit log" corruption_audited

gc_keeps_pins() {
	ry_newdb gc
	local a id lib app old
	a=$(agent w1)
	id=$(submit_chain)
	read -r lib _ <<<"$(claim "$a" "$id" build:lib)"
	record "$a" "[{\"task_id\": $lib, \"attempt\": 1, \"key\": \"$K1\", \"components\": {},
	     \"outcome\": \"succeeded\", \"output_digest\": \"$D1\", \"output_size\": 1000, \"duration_s\": 1}]" >/dev/null
	finish "$a" "$lib" 1 succeeded >/dev/null
	# an old artifact from a finished pipeline, in no entry; an old cold entry
	old=$(submit_chain)
	# (finished through railyard: hand edits of run state are refused)
	sql "SELECT railyard.cancel_pipeline($old);
	     INSERT INTO railyard.artifacts (digest, size, last_used_at) VALUES
	       ('$D2', 500, now() - interval '2 days'), ('$D3', 5000, now() - interval '1 day');
	     INSERT INTO railyard.cache_entries (key, output_digest, output_size, components, task_name, duration_s)
	     VALUES ('$K2', '$D3', 5000, '{}', 'build:old', 1);
	     UPDATE railyard.artifacts SET last_used_at = now() - interval '3 days' WHERE digest = '$D1';" >/dev/null
	# pipeline $id still runs: D1 is its build:lib output (pinned) despite its age
	sql_eq "$D1" "SELECT string_agg(DISTINCT digest, ',') FROM railyard.cache_pins() WHERE pipeline_id = $id"
	# dry run: reports, deletes nothing
	sql_eq "$D2|not a cache entry, no active pipeline needs it" \
		"SELECT digest, why FROM railyard.cache_gc(NULL, NULL, '1 hour', true) WHERE digest IS NOT NULL"
	sql_eq "3" "SELECT count(*) FROM railyard.artifacts"
	# a size cap of 2000 bytes: D3 (5000, cold, cheap) goes; D1 pinned stays
	sql_eq "$D2|0
$D3|1" "SELECT digest, entries FROM railyard.cache_gc(2000, NULL, '1 hour') WHERE digest IS NOT NULL"
	sql_eq "$D1" "SELECT string_agg(digest, ',') FROM railyard.artifacts"
	sql_eq "0" "SELECT count(*) FROM railyard.cache_entries WHERE key = '$K2'"
	# the pipeline finished: now D1 may age out
	sql "SELECT railyard.cancel_pipeline($id)" >/dev/null
	sql_eq "$D1" "SELECT digest FROM railyard.cache_gc(NULL, '1 day', '1 hour') WHERE digest IS NOT NULL"
	sql_eq "0" "SELECT count(*) FROM railyard.artifacts"
}
run_scenario "GC removes by age, size and value but never what an active pipeline pins" gc_keeps_pins

documented() {
	sql_eq "0" "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	            WHERE n.nspname = 'railyard' AND c.relkind IN ('r', 'v')
	              AND c.relname IN ('artifacts', 'task_outputs', 'cache_entries', 'cache_runs',
	                  'cache_corruptions', 'cache_revocations', 'cache_stats',
	                  'nondeterministic_tasks', 'flaky_tasks', 'cache_gc_order')
	              AND obj_description(c.oid, 'pg_class') IS NULL"
	sql_eq "0" "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	            WHERE n.nspname = 'railyard' AND (p.proname LIKE 'cache%' OR p.proname = 'pin_source_commit')
	              AND obj_description(p.oid, 'pg_proc') IS NULL"
}
run_scenario "every cache table, view and function carries a COMMENT" documented

spec_fields_reach_the_database() {
	cat >spec.yaml <<-'YAML'
		name: src
		source: /srv/repo.git
		revision: abc123
		tasks:
		  - name: build:lib
		    command: make lib
		    cacheable: true
		    inputs: [lib/, go.sum]
		    outputs: [lib/out/, lib/VERSION]
		  - name: test:lib
		    command: make test
		    needs: [{task: build:lib, kind: test}]
	YAML
	local id
	id=$("$RY" submit spec.yaml)
	sql_eq "/srv/repo.git|{lib/out/,lib/VERSION}|{lib/,go.sum}" \
		"SELECT p.source, t.outputs, t.inputs FROM railyard.pipelines p JOIN railyard.tasks t
		  ON t.pipeline_id = p.id WHERE p.id = $id AND t.name = 'build:lib'"
	printf 'name: bad\ntasks:\n  - name: a\n    command: b\n    outputs: [/etc]\n' >bad.yaml
	local out rc=0
	out=$("$RY" submit bad.yaml 2>&1) || rc=$?
	((rc == 1)) || fail "a spec with an absolute output exited $rc"
	[[ $out == *'bad.yaml:5: task "a": outputs item 1: "/etc" is absolute'* ]] || fail "unclear error: $out"
}
run_scenario "railyard submit stores source and outputs; bad paths are refused with file:line" \
	spec_fields_reach_the_database
