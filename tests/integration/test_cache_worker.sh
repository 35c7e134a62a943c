#!/usr/bin/env bash
# The build cache end to end (issue 9, item 9): real workers build a git
# repository with a shared library and two services; outputs pass between
# tasks and hosts through the stores (a local directory per worker, and an
# nginx WebDAV server started here on 127.0.0.1 as an unprivileged user).
#   - second run of an unchanged pipeline: every cacheable task cached,
#     outputs identical; a hit is checked, not unpacked (no workspace)
#   - one service's input changed: exactly it and its build-time dependents
#     rerun; an upstream rebuilt to identical output invalidates nothing
#   - two workers with separate local stores sharing the HTTP store
#   - a flipped byte in a stored blob: miss, quarantine, rerun, success
#   - the HTTP server stopped mid-pipeline: uncached with a warning, success
#   - wrong credentials: a clear error naming the store, uncached, success
#   - GC under a running pipeline deletes nothing it pins
#   - railyard cache explain names the changed component
#   - a missing repository or revision fails the task with that reason
#   - the cache lookahead: a 1-slot worker claims cached tasks beyond its
#     slot; misses it has no slot for are handed back, then run
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes

. "$(dirname "$0")/dav.sh"
mkdir -p "$WEB"/dav/{cache,secure}

# WebDAV on /cache/ (open) and /secure/ (basic auth).
write_conf() {
	dav_write_conf "    server {
        listen 127.0.0.1:$PORT;
$(dav_location /cache/)
$(dav_location /secure/ 'auth_basic "railyard cache";' "auth_basic_user_file $WEB/htpasswd;")
    }"
}

# make_repo DIR: a git repository with a shared library and two services.
make_repo() {
	local r=$1
	mkdir -p "$r/lib" "$r/services/cart" "$r/services/shop"
	git -C "$r" init -q -b main
	git -C "$r" config user.email t@example.com
	git -C "$r" config user.name test
	echo "lib v1" >"$r/lib/src.txt"
	echo "# the shared library" >"$r/lib/README"
	echo "cart v1" >"$r/services/cart/main.txt"
	echo "shop v1" >"$r/services/shop/main.txt"
	git -C "$r" add -A
	git -C "$r" commit -q -m initial
}

# commit_change REPO FILE TEXT: appends TEXT to FILE and commits; prints the commit.
commit_change() {
	echo "$3" >>"$1/$2"
	git -C "$1" commit -q -am "change $2"
	git -C "$1" rev-parse HEAD
}

# submit_shop REPO REVISION [EXTRA_SLEEP_S]: build:lib -> build:cart, build:shop
# (build edges) -> test:cart (test edge); prints the pipeline id.  The
# sleep (in build:cart) makes room for a failure mid-pipeline.
submit_shop() {
	local nap=${3:-0}
	ry_submit "(name, source, revision, team) VALUES ('shop', '$1', '$2', 'payments')" "
	INSERT INTO railyard.tasks (pipeline_id, name, service, command, cacheable, inputs, outputs)
	VALUES (:id, 'build:lib', 'lib', 'mkdir -p lib/out && cat lib/src.txt > lib/out/lib.a', true, '{lib/}', '{lib/out}'),
	       (:id, 'build:cart', 'cart', 'sleep $nap; test -f lib/out/lib.a && mkdir -p services/cart/bin && cat lib/out/lib.a services/cart/main.txt > services/cart/bin/cart', true, '{services/cart/}', '{services/cart/bin}'),
	       (:id, 'build:shop', 'shop', 'test -f lib/out/lib.a && mkdir -p services/shop/bin && cat lib/out/lib.a services/shop/main.txt > services/shop/bin/shop', true, '{services/shop/}', '{services/shop/bin}'),
	       (:id, 'test:cart', 'cart', 'grep -q \"cart v\" services/cart/bin/cart && ! test -e services/shop/bin', true, '{services/cart/}', '{}');
	INSERT INTO railyard.edges (pipeline_id, upstream, downstream, kind)
	VALUES (:id, 'build:lib', 'build:cart', 'build'), (:id, 'build:lib', 'build:shop', 'build'),
	       (:id, 'build:cart', 'test:cart', 'test');"
}

# states ID: "name=state" of pipeline ID's tasks, by name.
states() {
	sql "SELECT string_agg(name || '=' || state, ' ' ORDER BY name) FROM railyard.tasks WHERE pipeline_id = $1"
}

# outputs ID: "name=digest" of pipeline ID's recorded outputs, by name.
outputs() {
	sql "SELECT string_agg(t.name || '=' || o.digest, ' ' ORDER BY t.name)
	       FROM railyard.tasks t JOIN railyard.task_outputs o ON o.task_id = t.id
	      WHERE t.pipeline_id = $1"
}

# conf FILE [LINES...]: a worker config with the given cache_* lines.
conf() {
	local f=$1
	shift
	printf '%s\n' "$@" >"$f"
}

unchanged_and_one_change() {
	ry_newdb rerun
	local repo=$RY_WORKDIR/repo-rerun wd=$RY_WORKDIR/w-rerun id1 id2 id3 id4 c2 c3 o1 o2
	make_repo "$repo"
	conf "$wd.conf" "cache_dir = $wd/cache"
	start_worker rerun --slots 4 --workdir "$wd" --config "$wd.conf"
	wait_agent 30 rerun

	id1=$(submit_shop "$repo" main)
	wait_pipeline 60 "$id1" succeeded >/dev/null
	sql_eq "build:cart=succeeded build:lib=succeeded build:shop=succeeded test:cart=succeeded" \
		"SELECT string_agg(name || '=' || state, ' ' ORDER BY name) FROM railyard.tasks WHERE pipeline_id = $id1"
	o1=$(outputs "$id1")
	[[ $o1 == *build:cart=*build:lib=*build:shop=* ]] || fail "outputs not recorded: $o1"

	# the same revision again: everything cached, the same outputs
	id2=$(submit_shop "$repo" main)
	wait_pipeline 60 "$id2" succeeded >/dev/null
	[[ $(states "$id2") == "build:cart=cached build:lib=cached build:shop=cached test:cart=cached" ]] ||
		fail "second run not all cached: $(states "$id2")"
	o2=$(outputs "$id2")
	[[ $o1 == "$o2" ]] || fail "outputs differ: $o1 / $o2"
	# a hit is checked, not unpacked: no workspace (the first run's are there)
	[[ -d $wd/pipelines/$id1 ]] || fail "the first run left no workspaces in $wd/pipelines"
	[[ ! -e $wd/pipelines/$id2 ]] || fail "cache hits made workspaces: $(ls -R "$wd/pipelines/$id2")"

	# one service's input: it and its test rerun, the rest hits
	c2=$(commit_change "$repo" services/cart/main.txt "cart v2")
	id3=$(submit_shop "$repo" "$c2")
	wait_pipeline 60 "$id3" succeeded >/dev/null
	[[ $(states "$id3") == "build:cart=succeeded build:lib=cached build:shop=cached test:cart=succeeded" ]] ||
		fail "after changing cart: $(states "$id3")"
	local ex
	ex=$("$RY" cache explain "$id3:build:cart")
	echo "$ex"
	[[ $ex == *"inputs services/cart/: tree "*" → "* ]] || fail "explain does not name the input: $ex"
	[[ $ex == *"command unchanged"* ]] || fail "explain: $ex"

	# the library's README changes: build:lib reruns to identical bytes,
	# so nothing downstream of it reruns (early cutoff)
	c3=$(commit_change "$repo" lib/README "more words")
	id4=$(submit_shop "$repo" "$c3")
	wait_pipeline 60 "$id4" succeeded >/dev/null
	[[ $(states "$id4") == "build:cart=cached build:lib=succeeded build:shop=cached test:cart=cached" ]] ||
		fail "after an identical rebuild of lib: $(states "$id4")"
	sql_eq t "SELECT a.digest = b.digest FROM railyard.task_outputs a, railyard.task_outputs b,
	            railyard.tasks x, railyard.tasks y
	           WHERE a.task_id = x.id AND b.task_id = y.id AND x.name = 'build:lib' AND y.name = 'build:lib'
	             AND x.pipeline_id = $id1 AND y.pipeline_id = $id4"
	ex=$("$RY" cache explain "$id4:build:lib")
	[[ $ex == *"inputs lib/: tree "* ]] || fail "explain of lib: $ex"
}
run_scenario "unchanged rerun all cached; one change reruns exactly its dependents; early cutoff" unchanged_and_one_change

# SIGHUP re-reads the cache_* keys: a bad one keeps the old settings, a new
# cache_toolchain is a new platform (every key changes), a new store
# setting waits for a restart and says so.
sighup_reloads_cache_keys() {
	ry_newdb hupcache
	local repo=$RY_WORKDIR/repo-hup wd=$RY_WORKDIR/w-hup id log=$RY_WORKDIR/worker-hupcache.log pid
	make_repo "$repo"
	conf "$wd.conf" "cache_dir = $wd/cache"
	start_worker hupcache --slots 4 --workdir "$wd" --config "$wd.conf"
	pid=$RY_WORKER_PID
	wait_agent 30 hupcache
	id=$(submit_shop "$repo" main)
	wait_pipeline 60 "$id" succeeded >/dev/null

	conf "$wd.conf" "cache_dir = $wd/cache" "cache_toolchain = gcc-99" "cache_flaky = sometimes"
	kill -HUP "$pid"
	wait_for 30 grep -q "cannot reload configuration, keeping the old one: .*cache_flaky" "$log"
	id=$(submit_shop "$repo" main)
	wait_pipeline 60 "$id" succeeded >/dev/null
	[[ $(states "$id") == "build:cart=cached build:lib=cached build:shop=cached test:cart=cached" ]] ||
		fail "a refused reload changed the cache keys: $(states "$id")"

	conf "$wd.conf" "cache_dir = $wd/cache2" "cache_toolchain = gcc-99"
	kill -HUP "$pid"
	wait_for 30 grep -q "configuration reloaded" "$log"
	grep -q "cache store's settings .* take effect at the next start" "$log" ||
		fail "a changed cache_dir was not reported as waiting for a restart"
	id=$(submit_shop "$repo" main)
	wait_pipeline 60 "$id" succeeded >/dev/null
	[[ $(states "$id") == "build:cart=succeeded build:lib=succeeded build:shop=succeeded test:cart=succeeded" ]] ||
		fail "a new cache_toolchain did not change the keys: $(states "$id")"
	local ex
	ex=$("$RY" cache explain "$id:build:lib")
	[[ $ex == *toolchain* ]] || fail "explain does not name the toolchain: $ex"
	[[ -z $(ls -A "$wd/cache2" 2>/dev/null) ]] || fail "the store moved before a restart"
	ry_alive "$pid" || fail "the worker died on SIGHUP"
}
run_scenario "SIGHUP re-reads the cache keys: a bad one is refused, a new toolchain changes every key" \
	sighup_reloads_cache_keys

missing_source() {
	ry_newdb missing
	local repo=$RY_WORKDIR/repo-missing wd=$RY_WORKDIR/w-missing id r
	make_repo "$repo"
	conf "$wd.conf" "cache_dir = $wd/cache"
	start_worker missing --slots 2 --workdir "$wd" --config "$wd.conf"
	wait_agent 30 missing
	id=$(submit_shop "$RY_WORKDIR/no-such-repo" main)
	wait_pipeline 60 "$id" failed >/dev/null
	r=$(task_get "$id" build:lib reason)
	[[ $r == "source: "*"no-such-repo"* ]] || fail "missing repository, reason: $r"
	id=$(submit_shop "$repo" no-such-branch)
	wait_pipeline 60 "$id" failed >/dev/null
	r=$(task_get "$id" build:lib reason)
	[[ $r == *"revision no-such-branch not found"* ]] || fail "missing revision, reason: $r"
	ry_alive "$(worker_pid missing)" || fail "the worker died"
}
run_scenario "a missing repository or revision fails the task with that reason" missing_source

# blob DIR DIGEST: the local store's path of an artifact.
blob() { echo "$1/cas/${2:0:2}/$2"; }

# digest_of ID TASK: the output digest recorded for a task of pipeline ID.
digest_of() {
	sql "SELECT o.digest FROM railyard.task_outputs o JOIN railyard.tasks t ON t.id = o.task_id
	      WHERE t.pipeline_id = $1 AND t.name = '$2'"
}

# submit_hosts REPO: build:lib must run on host-a, build:cart on host-b
# (labels), test:cart anywhere; prints the pipeline id.
submit_hosts() {
	ry_submit "(name, source, revision) VALUES ('hosts', '$1', 'main')" "
	INSERT INTO railyard.tasks (pipeline_id, name, service, command, cacheable, inputs, outputs, requires)
	VALUES (:id, 'build:lib', 'lib', 'mkdir -p lib/out && cat lib/src.txt > lib/out/lib.a && hostname > lib/out/built-by', true, '{lib/}', '{lib/out}', '{host-a}'),
	       (:id, 'build:cart', 'cart', 'test -f lib/out/lib.a && mkdir -p services/cart/bin && cat lib/out/lib.a services/cart/main.txt > services/cart/bin/cart', true, '{services/cart/}', '{services/cart/bin}', '{host-b}'),
	       (:id, 'test:cart', 'cart', 'grep -q \"lib v1\" services/cart/bin/cart', false, '{}', '{}', '{}');
	INSERT INTO railyard.edges (pipeline_id, upstream, downstream, kind)
	VALUES (:id, 'build:lib', 'build:cart', 'build'), (:id, 'build:cart', 'test:cart', 'test');"
}

two_hosts_share_the_http_store() {
	ry_newdb hosts
	start_nginx || { fail "cannot start nginx"; return; }
	local repo=$RY_WORKDIR/repo-hosts a=$RY_WORKDIR/w-host-a b=$RY_WORKDIR/w-host-b id lib
	make_repo "$repo"
	conf "$a.conf" "cache_dir = $a/cache" "cache_remote_url = http://127.0.0.1:$PORT/cache"
	conf "$b.conf" "cache_dir = $b/cache" "cache_remote_url = http://127.0.0.1:$PORT/cache"
	start_worker host-a --slots 2 --labels host-a --workdir "$a" --config "$a.conf"
	start_worker host-b --slots 2 --labels host-b --workdir "$b" --config "$b.conf"
	wait_agent 30 host-a
	wait_agent 30 host-b
	id=$(submit_hosts "$repo")
	wait_pipeline 60 "$id" succeeded >/dev/null
	sql_eq "build:cart=host-b build:lib=host-a" \
		"SELECT string_agg(t.name || '=' || h.agent_name, ' ' ORDER BY t.name) FROM railyard.tasks t
		   JOIN railyard.task_attempts h ON h.task_id = t.id WHERE t.pipeline_id = $id AND t.name LIKE 'build:%'"
	lib=$(digest_of "$id" build:lib)
	[[ -f $(blob "$a/cache" "$lib") ]] || fail "host-a has not stored lib's output"
	[[ -f $WEB/dav/cache/cas/$lib ]] || fail "lib's output is not on the HTTP store"
	[[ -f $(blob "$b/cache" "$lib") ]] || fail "host-b did not fetch lib's output into its local store"
	sql_eq t "SELECT restored_bytes > 0 FROM railyard.cache_runs r JOIN railyard.tasks t ON t.id = r.task_id
	           WHERE t.pipeline_id = $id AND t.name = 'build:cart'"

	# host-a is replaced by a host with an empty local store: the same
	# pipeline again is served from the HTTP store (build:lib still
	# requires host-a, so the new host's hit is a fetch from the server)
	stop_worker host-a
	rm -rf "$a"
	start_worker host-a --slots 2 --labels host-a --workdir "$a" --config "$a.conf"
	wait_agent 30 host-a
	id=$(submit_hosts "$repo")
	wait_pipeline 60 "$id" succeeded >/dev/null
	[[ $(states "$id") == "build:cart=cached build:lib=cached test:cart=succeeded" ]] ||
		fail "second run over the shared store: $(states "$id")"
	[[ -f $(blob "$a/cache" "$lib") ]] || fail "the new host-a did not fetch lib's entry from the HTTP store"
}
run_scenario "two workers with separate local stores share the HTTP store: outputs pass between hosts" two_hosts_share_the_http_store

flipped_byte_is_a_miss() {
	ry_newdb flip
	local repo=$RY_WORKDIR/repo-flip wd=$RY_WORKDIR/w-flip id lib f
	make_repo "$repo"
	conf "$wd.conf" "cache_dir = $wd/cache"
	start_worker flip --slots 4 --workdir "$wd" --config "$wd.conf"
	wait_agent 30 flip
	id=$(submit_shop "$repo" main)
	wait_pipeline 60 "$id" succeeded >/dev/null
	lib=$(digest_of "$id" build:lib)
	f=$(blob "$wd/cache" "$lib")
	flip_byte "$f" 20
	id=$(submit_shop "$repo" main)
	wait_pipeline 60 "$id" succeeded >/dev/null
	[[ $(states "$id") == "build:cart=cached build:lib=succeeded build:shop=cached test:cart=cached" ]] ||
		fail "after the flipped byte: $(states "$id")"
	[[ $(digest_of "$id" build:lib) == "$lib" ]] || fail "the rerun produced another output"
	sql_eq 1 "SELECT count(*) FROM railyard.cache_corruptions WHERE digest = '$lib'"
	sql_eq 1 "SELECT count(*) FROM railyard.audit_log WHERE event = 'quarantine'"
	compgen -G "$wd/cache/quarantine/*" >/dev/null || fail "nothing in quarantine/"
	[[ $(sha256sum <"$f" | cut -d' ' -f1) == "$lib" ]] || fail "the local blob was not replaced by a good copy"
	grep -q "is corrupt" "$RY_WORKDIR/worker-flip.log" || fail "no warning about the corrupt entry"
}
run_scenario "a flipped byte in a stored blob: miss, quarantine, rerun, the pipeline succeeds" flipped_byte_is_a_miss

http_store_stops_mid_pipeline() {
	ry_newdb stop
	start_nginx || { fail "cannot start nginx"; return; }
	local repo=$RY_WORKDIR/repo-stop wd=$RY_WORKDIR/w-stop w2=$RY_WORKDIR/w-stop2 id
	make_repo "$repo"
	conf "$wd.conf" "cache_dir = $wd/cache" "cache_remote_url = http://127.0.0.1:$PORT/cache" \
		"cache_connect_timeout_ms = 500" "cache_stall_timeout_s = 2"
	start_worker stop --slots 4 --workdir "$wd" --config "$wd.conf"
	wait_agent 30 stop
	id=$(submit_shop "$repo" main 3)
	wait_for 30 sql_eq running "SELECT state FROM railyard.tasks WHERE pipeline_id = $id AND name = 'build:cart'"
	stop_nginx
	wait_pipeline 60 "$id" succeeded >/dev/null
	grep -q "warning: task build:cart: http store http://127.0.0.1:$PORT/cache" "$RY_WORKDIR/worker-stop.log" ||
		fail "no warning naming the HTTP store: $(grep warning "$RY_WORKDIR/worker-stop.log")"
	# a host with an empty local store: the entries exist, the store is
	# down: everything runs uncached, with warnings, and succeeds
	stop_worker stop
	conf "$w2.conf" "cache_dir = $w2/cache" "cache_remote_url = http://127.0.0.1:$PORT/cache" \
		"cache_connect_timeout_ms = 500" "cache_stall_timeout_s = 2"
	start_worker stop2 --slots 4 --workdir "$w2" --config "$w2.conf"
	id=$(submit_shop "$repo" main)
	wait_pipeline 60 "$id" succeeded >/dev/null
	# (test:cart has no outputs: its hit needs no store)
	[[ $(states "$id") == "build:cart=succeeded build:lib=succeeded build:shop=succeeded test:cart=cached" ]] ||
		fail "with the store down: $(states "$id")"
	grep -q "running it uncached" "$RY_WORKDIR/worker-stop2.log" || fail "no 'running it uncached' warning"
}
run_scenario "the HTTP store stops mid-pipeline: tasks run uncached with a warning, the pipeline succeeds" http_store_stops_mid_pipeline

wrong_credentials() {
	ry_newdb creds
	start_nginx || { fail "cannot start nginx"; return; }
	local repo=$RY_WORKDIR/repo-creds wd=$RY_WORKDIR/w-creds id
	make_repo "$repo"
	echo wrong-password >"$wd.pw"
	chmod 600 "$wd.pw"
	conf "$wd.conf" "cache_dir = $wd/cache" "cache_remote_url = http://127.0.0.1:$PORT/secure" \
		"cache_remote_username = ci" "cache_remote_password_file = $wd.pw"
	start_worker creds --slots 4 --workdir "$wd" --config "$wd.conf"
	wait_agent 30 creds
	id=$(submit_shop "$repo" main)
	wait_pipeline 60 "$id" succeeded >/dev/null
	grep -q "http store http://127.0.0.1:$PORT/secure: .*HTTP 401: the store refused our credentials" \
		"$RY_WORKDIR/worker-creds.log" || fail "no clear credentials error naming the store: $(grep warning "$RY_WORKDIR/worker-creds.log")"
	[[ -z $(ls -A "$WEB/dav/secure") ]] || fail "something reached the store without credentials"
}
run_scenario "wrong credentials: a clear error naming the store, tasks run uncached, the pipeline succeeds" wrong_credentials

gc_under_a_running_pipeline() {
	ry_newdb gc
	local repo=$RY_WORKDIR/repo-gc other=$RY_WORKDIR/repo-gc-other wd=$RY_WORKDIR/w-gc id1 id2 c2 old lib
	make_repo "$repo"
	make_repo "$other"
	conf "$wd.conf" "cache_dir = $wd/cache"
	start_worker gc --slots 4 --workdir "$wd" --config "$wd.conf"
	wait_agent 30 gc
	# a finished pipeline of another repository: nothing of it is pinned
	c2=$(commit_change "$other" services/cart/main.txt "cart v2")
	id1=$(submit_shop "$other" "$c2")
	wait_pipeline 60 "$id1" succeeded >/dev/null
	old=$(digest_of "$id1" build:cart)
	id2=$(submit_shop "$repo" main 4)
	wait_for 30 sql_eq running "SELECT state FROM railyard.tasks WHERE pipeline_id = $id2 AND name = 'build:cart'"
	lib=$(digest_of "$id2" build:lib)
	[[ -n $lib ]] || fail "lib has no output yet"
	"$RY" cache gc --max-size 0 --grace 0s --config "$wd.conf" --workdir "$wd" || fail "cache gc failed"
	[[ -f $(blob "$wd/cache" "$lib") ]] || fail "GC removed lib's output, pinned by the running pipeline"
	sql_eq 1 "SELECT count(*) FROM railyard.artifacts WHERE digest = '$lib'"
	[[ ! -f $(blob "$wd/cache" "$old") ]] || fail "GC kept the finished pipeline's unpinned cart output"
	wait_pipeline 60 "$id2" succeeded >/dev/null
}
run_scenario "GC under a running pipeline deletes nothing it pins" gc_under_a_running_pipeline

# submit_many VERSION N [HOLD_FILE]: N independent cacheable tasks c1..cN
# writing VERSION to their output; with HOLD_FILE, a task "hold" of higher
# priority (not cacheable) that runs until HOLD_FILE exists.
submit_many() {
	local v=$1 n=$2 hold=${3:-} rows="" i
	for ((i = 1; i <= n; i++)); do
		rows+="${rows:+, }(:id, 'c$i', 'mkdir -p o && echo $v-$i > o/f', true, '{o}', 0)"
	done
	[[ -z $hold ]] || rows+=", (:id, 'hold', 'while ! test -e $hold; do sleep 0.05; done', false, '{}', 10)"
	ry_submit "(name) VALUES ('many')" "
	INSERT INTO railyard.tasks (pipeline_id, name, command, cacheable, outputs, priority)
	VALUES $rows;"
}

cache_lookahead() {
	ry_newdb ahead
	local wd=$RY_WORKDIR/w-ahead id1 id2 id3 shared
	conf "$wd.conf" "cache_dir = $wd/cache"
	start_worker ahead --slots 1 --workdir "$wd" --config "$wd.conf"
	wait_agent 30 ahead

	id1=$(submit_many v1 12)
	wait_pipeline 120 "$id1" succeeded >/dev/null
	# all cached: with one slot, only the lookahead claims two in one
	# transaction (the same claimed_at)
	id2=$(submit_many v1 12)
	wait_pipeline 60 "$id2" succeeded >/dev/null
	sql_eq 12 "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id2 AND state = 'cached'"
	shared=$(sql "SELECT max(n) FROM (SELECT count(*) AS n FROM railyard.tasks
	               WHERE pipeline_id = $id2 GROUP BY claimed_at) c")
	((shared > 1)) || fail "no claim took more than the one free slot (largest claim: $shared)"
	# misses while the slot is held: handed back unstarted, then run
	id3=$(submit_many v2 6 "$RY_WORKDIR/ahead-go")
	wait_for 60 sql_eq running "SELECT state FROM railyard.tasks WHERE pipeline_id = $id3 AND name = 'hold'"
	wait_for 60 sql_eq t "SELECT count(*) > 0 FROM railyard.audit_log
	                       WHERE pipeline_id = $id3 AND event <> 'start'
	                         AND detail->>'reason' LIKE 'cache miss on an agent with no free slot%'"
	sql_eq 0 "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id3 AND name <> 'hold'
	            AND (started_at IS NOT NULL OR state NOT IN ('ready', 'running'))"
	touch "$RY_WORKDIR/ahead-go"
	wait_pipeline 120 "$id3" succeeded >/dev/null
	sql_eq 6 "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id3 AND state = 'succeeded'
	            AND attempt = 1 AND name <> 'hold'"
}
run_scenario "the cache lookahead: cached tasks beyond the one slot; misses with no slot handed back, then run" cache_lookahead
