#!/usr/bin/env bash
# Several hosts (issue 11, item 9): PostgreSQL in one network namespace,
# workers in two others, over TCP through veth pairs the test makes.  A
# pipeline spreads over both hosts; then one host's link goes down while
# it runs tasks: its lease runs out, it kills its tasks by its own clock,
# the database gives them to the other host, and when the link returns
# the cut-off worker reports nothing stale; every task ends with exactly
# one success.  Artifacts pass between the hosts through the HTTP store
# (nginx in the database's namespace).  Namespaces are named after this run and always removed.
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes

((EUID == 0)) || { echo "test_multihost needs root (ip netns)" >&2; exit 1; }
command -v ip >/dev/null || { echo "no ip(8): install iproute2" >&2; exit 1; }

NS_DB=ry-db-$$
NS_H1=ry-h1-$$
NS_H2=ry-h2-$$
NET=10.77
C=$RY_WORKDIR/cluster

# Namespaces first, so they are removed last (after the cluster stops).
for ns in "$NS_DB" "$NS_H1" "$NS_H2"; do
	ip netns add "$ns" || { echo "cannot create network namespace $ns" >&2; exit 1; }
	at_exit ip netns del "$ns"
	ip -n "$ns" link set lo up
done
# veth pairs straight into the namespaces: db <-> h1 and db <-> h2.
ip link add vdb1 netns "$NS_DB" type veth peer name vh1 netns "$NS_H1" || exit 1
ip link add vdb2 netns "$NS_DB" type veth peer name vh2 netns "$NS_H2" || exit 1
ip -n "$NS_DB" addr add "$NET.1.1/24" dev vdb1
ip -n "$NS_DB" addr add "$NET.2.1/24" dev vdb2
ip -n "$NS_H1" addr add "$NET.1.2/24" dev vh1
ip -n "$NS_H2" addr add "$NET.2.2/24" dev vh2
for pair in "$NS_DB vdb1" "$NS_DB vdb2" "$NS_H1 vh1" "$NS_H2 vh2"; do
	set -- $pair
	ip -n "$1" link set "$2" up || exit 1
done

# PostgreSQL in the db namespace, on its two veth addresses (TCP); the
# test itself reaches it through its unix socket.
ry_cluster_init "$C" "listen_addresses = '$NET.1.1,$NET.2.1'" "port = 5432" || exit 1
echo "host all all $NET.0.0/16 trust" >>"$C/data/pg_hba.conf"
ry__as_pg_in() { ip netns exec "$NS_DB" runuser -u "$RY_PGUSER" -- "$@"; }
(cd / && ry__as_pg_in "$RY_PG_BINDIR/pg_ctl" -D "$C/data" -l "$C/log" -w -t 60 start) >"$C/pg_ctl.log" 2>&1 ||
	{ echo "the cluster did not start in $NS_DB:"; tail -5 "$C/log"; exit 1; }
at_exit ry__as_pg "$RY_PG_BINDIR/pg_ctl" -D "$C/data" -m immediate stop
"$RY_PG_BINDIR/psql" -XAtq -d "host=$C/sock user=$RY_PGUSER dbname=postgres" -c "CREATE DATABASE railyard" || exit 1
export RAILYARD_DB="host=$C/sock user=$RY_PGUSER dbname=railyard"
"$RY" migrate >"$RY_WORKDIR/migrate.log" 2>&1 || { tail -5 "$RY_WORKDIR/migrate.log"; exit 1; }

# A railyard command that runs inside host N's namespace.
for n in 1 2; do
	ns_var=NS_H$n
	printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "${!ns_var}" "$RY" >"$RY_WORKDIR/ry-h$n"
	chmod +x "$RY_WORKDIR/ry-h$n"
done

# start_host N: a worker in host N's namespace, connected over TCP.
start_host() {
	local n=$1
	shift
	RY=$RY_WORKDIR/ry-h$n RAILYARD_DB="host=$NET.$n.1 port=5432 user=$RY_PGUSER dbname=railyard connect_timeout=5" \
		start_worker "h$n" --workdir "$RY_WORKDIR/w-h$n" --http-listen off "$@"
}

# one_success ID: every task of pipeline ID succeeded exactly once.
one_success() {
	local bad
	bad=$(sql "SELECT string_agg(t.name || '=' || t.state || '/' || coalesce(h.s, 'none'), ' ')
	             FROM railyard.tasks t
	             LEFT JOIN (SELECT task_id, string_agg(attempt || ':' || outcome || '@' || coalesce(agent_name, '?'), ',') s,
	                               count(*) FILTER (WHERE outcome = 'succeeded') ok
	                          FROM railyard.task_attempts GROUP BY task_id) h ON h.task_id = t.id
	            WHERE t.pipeline_id = $1 AND (t.state <> 'succeeded' OR h.ok IS DISTINCT FROM 1)")
	[[ -z $bad ]] || fail "tasks without exactly one success: $bad"
}

spreads_over_both_hosts() {
	start_host 1 --slots 2 --heartbeat 1 --lease 6
	start_host 2 --slots 2 --heartbeat 1 --lease 6
	wait_for 30 sql_eq 2 "SELECT count(*) FROM railyard.agents WHERE state = 'online'"
	local id
	id=$(ry_submit "(name) VALUES ('spread')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		SELECT :id, 't' || g, 'sleep 1' FROM generate_series(1, 8) g;")
	wait_pipeline 60 "$id" succeeded >/dev/null
	one_success "$id"
	[[ $(sql "SELECT string_agg(DISTINCT agent_name, ',' ORDER BY agent_name) FROM railyard.task_attempts WHERE pipeline_id = $id") == h1,h2 ]] ||
		fail "the pipeline did not spread over both hosts: $(sql "SELECT agent_name, count(*) FROM railyard.task_attempts WHERE pipeline_id = $id GROUP BY 1")"
	[[ $(sql "SELECT count(*) FROM pg_stat_activity WHERE client_addr IS NOT NULL AND datname = 'railyard'") -ge 2 ]] ||
		fail "the workers are not connected over TCP"
}

# artifacts_pass_between_hosts: build:lib on host 1, build:cart (which
# needs lib's output) on host 2; each worker has its own local store and
# workdir, so lib's output can only reach host 2 through the HTTP store:
# nginx (WebDAV) in the database's namespace, on both veth addresses.
artifacts_pass_between_hosts() {
	local web=$RY_WORKDIR/web nginx repo=$RY_WORKDIR/repo id
	nginx=$(command -v nginx || echo /usr/sbin/nginx)
	[[ -x $nginx ]] || fail "nginx is not installed (scripts/install-deps.sh)"
	mkdir -p "$web"/{dav/cache,tmp,logs}
	cat >"$web/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $web/nginx.pid;
error_log $web/logs/error.log info;
events { worker_connections 64; }
http {
    log_format hosts '\$remote_addr \$request_method \$uri \$status';
    access_log $web/logs/access.log hosts;
    client_body_temp_path $web/tmp/body;
    proxy_temp_path $web/tmp/proxy;
    fastcgi_temp_path $web/tmp/fastcgi;
    uwsgi_temp_path $web/tmp/uwsgi;
    scgi_temp_path $web/tmp/scgi;
    server {
        listen $NET.1.1:8080;
        listen $NET.2.1:8080;
        location /cache/ {
            root $web/dav;
            dav_methods PUT DELETE;
            create_full_put_path on;
            client_max_body_size 0;
        }
    }
}
CONF
	chown -R "$RY_PGUSER": "$web"
	ip netns exec "$NS_DB" runuser -u "$RY_PGUSER" -- "$nginx" -e "$web/logs/error.log" -p "$web" -c "$web/nginx.conf" \
		>>"$web/logs/stderr" 2>&1 &
	local pid=$!
	at_exit kill -TERM "$pid"
	wait_for 20 ip netns exec "$NS_H2" bash -c "exec 3<>/dev/tcp/$NET.2.1/8080"

	# A repository with a library and a service that links it.
	mkdir -p "$repo/lib" "$repo/services/cart"
	git -C "$repo" init -q -b main
	echo "lib v1" >"$repo/lib/src.txt"
	echo "cart v1" >"$repo/services/cart/main.txt"
	git -C "$repo" add -A
	git -C "$repo" -c user.email=t@example.com -c user.name=test commit -q -m initial
	chmod -R a+rX "$repo"

	local n
	for n in 1 2; do
		printf 'cache_dir = %s\ncache_remote_url = http://%s.%s.1:8080/cache\n' \
			"$RY_WORKDIR/w-a$n/cache" "$NET" "$n" >"$RY_WORKDIR/a$n.conf"
	done
	RY=$RY_WORKDIR/ry-h1 RAILYARD_DB="host=$NET.1.1 port=5432 user=$RY_PGUSER dbname=railyard" \
		start_worker a1 --workdir "$RY_WORKDIR/w-a1" --http-listen off --labels host-1 --config "$RY_WORKDIR/a1.conf"
	RY=$RY_WORKDIR/ry-h2 RAILYARD_DB="host=$NET.2.1 port=5432 user=$RY_PGUSER dbname=railyard" \
		start_worker a2 --workdir "$RY_WORKDIR/w-a2" --http-listen off --labels host-2 --config "$RY_WORKDIR/a2.conf"
	id=$(ry_submit "(name, source, revision) VALUES ('artifacts', '$repo', 'main')" "
		INSERT INTO railyard.tasks (pipeline_id, name, service, command, cacheable, inputs, outputs, requires)
		VALUES (:id, 'build:lib', 'lib', 'mkdir -p lib/out && cat lib/src.txt > lib/out/lib.a', true, '{lib/}', '{lib/out}', '{host-1}'),
		       (:id, 'build:cart', 'cart', 'test -f lib/out/lib.a && mkdir -p services/cart/bin && cat lib/out/lib.a services/cart/main.txt > services/cart/bin/cart && grep -q \"lib v1\" services/cart/bin/cart', true, '{services/cart/}', '{services/cart/bin}', '{host-2}');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream, kind)
		VALUES (:id, 'build:lib', 'build:cart', 'build');")
	wait_pipeline 120 "$id" succeeded >/dev/null
	one_success "$id"
	[[ $(sql "SELECT string_agg(t.name || '@' || h.agent_name, ' ' ORDER BY t.name) FROM railyard.task_attempts h
	           JOIN railyard.tasks t ON t.id = h.task_id WHERE t.pipeline_id = $id") == "build:cart@a2 build:lib@a1" ]] ||
		fail "the tasks did not run on their hosts: $(sql "SELECT t.name, h.agent_name FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id WHERE t.pipeline_id = $id")"
	# lib's output went up from host 1 and came down on host 2, over the network.
	local digest
	digest=$(sql "SELECT o.digest FROM railyard.task_outputs o JOIN railyard.tasks t ON t.id = o.task_id
	               WHERE t.pipeline_id = $id AND t.name = 'build:lib'")
	[[ -n $digest ]] || fail "build:lib recorded no output"
	grep -q "^$NET.1.2 PUT /cache/cas/$digest 20[14]" "$web/logs/access.log" ||
		fail "host 1 did not upload lib's output: $(cat "$web/logs/access.log")"
	grep -q "^$NET.2.2 GET /cache/cas/$digest 200" "$web/logs/access.log" ||
		fail "host 2 did not download lib's output: $(cat "$web/logs/access.log")"
}

link_down_mid_task() {
	start_host 1 --slots 2 --heartbeat 1 --lease 6
	start_host 2 --slots 2 --heartbeat 1 --lease 6
	wait_for 30 sql_eq 2 "SELECT count(*) FROM railyard.agents WHERE state = 'online'"
	local id
	id=$(ry_submit "(name) VALUES ('cut')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, max_attempts)
		SELECT :id, 'long' || g, 'sleep 10', 3 FROM generate_series(1, 4) g;")
	wait_for 60 sql_eq 4 "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND state = 'running' AND started_at IS NOT NULL"
	local cut
	cut=$(sql "SELECT string_agg(t.name, ' ' ORDER BY t.name) FROM railyard.tasks t JOIN railyard.agents a ON a.id = t.agent_id
	            WHERE t.pipeline_id = $id AND a.name = 'h1'")
	[[ -n $cut ]] || fail "host 1 runs none of the tasks"
	# The cut: host 1's cable is pulled (no RST, packets just vanish).
	ip -n "$NS_DB" link set vdb1 down
	# Host 1 stops its tasks when its own clock says the lease ran out ...
	wait_for 30 grep -q "our lease has run out" "$RY_WORKDIR/worker-h1.log"
	wait_for 30 no_procs_in "$RY_WORKDIR/w-h1"
	# ... the database gives them to host 2, which runs them once it has
	# room (its own two first).
	local n
	n=$(wc -w <<<"$cut")
	wait_for 90 sql_eq "$n" "SELECT count(*) FROM railyard.tasks t JOIN railyard.agents a ON a.id = t.agent_id
	                          WHERE t.pipeline_id = $id AND a.name = 'h2' AND t.state = 'running' AND t.attempt = 2"
	# The link returns while host 2 runs them.
	ip -n "$NS_DB" link set vdb1 up
	wait_pipeline 120 "$id" succeeded >/dev/null
	one_success "$id"
	local name
	for name in $cut; do
		[[ $(sql "SELECT agent_name FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id
		           WHERE t.pipeline_id = $id AND t.name = '$name' AND h.outcome = 'succeeded'") == h2 ]] ||
			fail "$name, cut off on host 1, did not succeed on host 2: $(sql "SELECT string_agg(h.attempt || ':' || h.outcome || '@' || h.agent_name, ' ') FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id WHERE t.pipeline_id = $id AND t.name = '$name'")"
	done
	# Host 1 comes back and reports nothing stale: none of its attempts of
	# the cut tasks counts as a success, and it takes work again.
	wait_for 60 sql_eq online "SELECT state FROM railyard.agents WHERE name = 'h1'"
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $id AND agent_name = 'h1' AND outcome = 'succeeded'") == 0 ]] ||
		fail "a stale result of host 1 was recorded as a success"
	[[ $(sql "SELECT string_agg(DISTINCT outcome, ',') FROM railyard.task_attempts WHERE pipeline_id = $id AND agent_name = 'h1'") == lost ]] ||
		fail "host 1's cut attempts are not recorded as lost: $(sql "SELECT attempt, outcome, reason FROM railyard.task_attempts WHERE pipeline_id = $id AND agent_name = 'h1'")"
	local id2
	id2=$(ry_submit "(name) VALUES ('after')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		SELECT :id, 't' || g, 'sleep 1' FROM generate_series(1, 6) g;")
	wait_pipeline 60 "$id2" succeeded >/dev/null
	one_success "$id2"
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $id2 AND agent_name = 'h1'") -ge 1 ]] ||
		fail "host 1 took no work after the link returned"
}

run_scenario "a pipeline spreads over two hosts connected over TCP" spreads_over_both_hosts
run_scenario "artifacts pass between the hosts through the HTTP store" artifacts_pass_between_hosts
run_scenario "a link down mid-task: the lease expires, the task reruns on the other host, nothing stale" link_down_mid_task
