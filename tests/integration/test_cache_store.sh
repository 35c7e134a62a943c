#!/usr/bin/env bash
# The HTTP store against a real server: nginx (Debian's nginx-light) with a
# WebDAV location, started here on 127.0.0.1 as an unprivileged user, with
# basic auth on one location, a rate-limited one and a TLS one.  Driven by
# tests/helpers/store_driver (pkg/store on a libevent loop, configured like
# a worker: cache_* settings, credentials from files).  No mocks of HTTP.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dav.sh"

DRIVER=$(dirname "$RY")/tests/helpers/store_driver
[[ -x $DRIVER ]] || { echo "error: $DRIVER is missing: run make unit" >&2; exit 1; }
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$WEB/key.pem" -out "$WEB/cert.pem" 2>/dev/null ||
	{ echo "error: cannot make a test certificate" >&2; exit 1; }
DAV_TLS=1

write_conf() {
	dav_write_conf "    server {
        listen 127.0.0.1:$PORT;
$(dav_location /cache/)
$(dav_location /secure/ 'auth_basic "railyard cache";' "auth_basic_user_file $WEB/htpasswd;")
        location /readonly/ {
            alias $WEB/dav/cache/;
        }
        location /slow/ {
            alias $WEB/dav/cache/;
            limit_rate 256k;
        }
    }
    server {
        listen 127.0.0.1:$TLS_PORT ssl;
        ssl_certificate $WEB/cert.pem;
        ssl_certificate_key $WEB/key.pem;
$(dav_location /cache/)
    }"
}

start_nginx || exit 1

# conf NAME LOCATION [KEY=VALUE...]: a worker config with a fresh local store.
conf() {
	local name=$1 loc=$2
	shift 2
	mkdir -p "$RY_WORKDIR/$name"
	{
		echo "name = w-$name"
		echo "cache_dir = $RY_WORKDIR/$name/cache"
		echo "cache_remote_url = http://127.0.0.1:$PORT/$loc"
		echo "cache_connect_timeout_ms = 1000"
		echo "cache_stall_timeout_s = 3"
		printf '%s\n' "$@"
	} >"$RY_WORKDIR/$name/worker.conf"
	echo "$RY_WORKDIR/$name/worker.conf"
}

drive() {
	local c=$1
	shift
	"$DRIVER" --config "$c" --workdir "$(dirname "$c")" "$@"
}

blob() {
	head -c "$2" /dev/urandom >"$1"
	sha256sum "$1" | cut -c1-64
}

round_trip() {
	local a b d out
	a=$(conf rt-a cache)
	b=$(conf rt-b cache)
	d=$(blob art.bin 100000)
	out=$(drive "$a" put art.bin)
	[[ $out == "ok 100000 $d" ]] || fail "put: $out"
	[[ -f $WEB/dav/cache/cas/$d ]] || fail "the server has no cas/$d"
	cmp art.bin "$WEB/dav/cache/cas/$d"
	# another host (another local store) fetches it through the remote
	out=$(drive "$b" head "$d")
	[[ $out == "ok 100000" ]] || fail "head: $out"
	out=$(drive "$b" get "$d" got.bin)
	[[ $out == "ok 100000" ]] || fail "get: $out"
	cmp art.bin got.bin
	[[ -f $RY_WORKDIR/rt-b/cache/cas/${d:0:2}/$d ]] || fail "the fetch did not fill the local store"
	# an action-cache record under a key
	printf '{"output": "%s"}' "$d" >ac.json
	out=$(drive "$a" put-ac "$(printf 'k%.0s' {1..64} | tr k a)" ac.json)
	[[ $out == ok* ]] || fail "put-ac: $out"
	[[ -f $WEB/dav/cache/ac/$(printf 'a%.0s' {1..64}) ]] || fail "the server has no ac/ record"
	out=$(drive "$b" delete "$d")
	[[ $out == ok* ]] || fail "delete: $out"
	[[ ! -e $WEB/dav/cache/cas/$d ]] || fail "delete left the server's copy"
	out=$(drive "$(conf rt-c cache)" head "$d")
	[[ $out == miss ]] || fail "head after delete: $out"
}
run_scenario "put, head, get, delete through the HTTP store; another host's fetch fills its local store" round_trip

two_writers() {
	local a b d
	a=$(conf w-a cache)
	b=$(conf w-b cache)
	d=$(blob same.bin 3000000)
	drive "$a" --parallel 4 put same.bin >a.out &
	drive "$b" --parallel 4 put same.bin >b.out &
	wait
	cat a.out b.out
	[[ $(grep -c "^ok 3000000 $d" a.out b.out | awk -F: '{s += $2} END {print s}') == 8 ]] ||
		fail "not every writer succeeded: $(cat a.out b.out)"
	[[ $(find "$WEB/dav/cache/cas" -name "$d*" | wc -l) == 1 ]] || fail "more than one copy on the server"
	cmp same.bin "$WEB/dav/cache/cas/$d"
}
run_scenario "eight uploads of one blob from two hosts at once: all succeed, one whole copy remains" two_writers

corrupt_remote() {
	local a b d out
	a=$(conf c-a cache)
	b=$(conf c-b cache)
	d=$(blob precious.bin 50000)
	drive "$a" put precious.bin >/dev/null
	flip_byte "$WEB/dav/cache/cas/$d" 25000
	out=$(drive "$b" get "$d" got-c.bin)
	[[ $out == "corrupt: http store http://127.0.0.1:$PORT/cache: GET cas/${d:0:12}…: content does not match its digest"* ]] ||
		fail "a flipped byte was not reported corrupt: $out"
	[[ ! -e got-c.bin ]] || fail "a corrupt download reached its destination"
	[[ ! -e $RY_WORKDIR/c-b/cache/cas/${d:0:2}/$d ]] || fail "a corrupt download entered the local store"
	[[ -z $(ls -A "$RY_WORKDIR/c-b/cache/tmp") ]] || fail "temporary files left: $(ls "$RY_WORKDIR/c-b/cache/tmp")"
}
run_scenario "a blob altered on the server is corrupt: never delivered, never stored locally" corrupt_remote

credentials() {
	local bad good d out
	printf 'wrong-password\n' >bad.pw
	printf 'right-password\n' >good.pw
	chmod 600 bad.pw good.pw
	bad=$(conf auth-bad secure "cache_remote_username = ci" "cache_remote_password_file = $PWD/bad.pw")
	good=$(conf auth-good secure "cache_remote_username = ci" "cache_remote_password_file = $PWD/good.pw")
	d=$(blob s.bin 1000)
	# the local store takes it; the remote's refusal is a warning naming the store
	out=$(drive "$bad" put s.bin)
	[[ $out == "ok 1000 $d (warning: http store http://127.0.0.1:$PORT/secure: HEAD cas/${d:0:12}…: HTTP 401: the store refused our credentials)" ]] ||
		fail "wrong credentials on put: $out"
	out=$(drive "$(conf auth-bad2 secure "cache_remote_username = ci" "cache_remote_password_file = $PWD/bad.pw")" get "$d" x.bin)
	[[ $out == "auth: http store http://127.0.0.1:$PORT/secure: GET cas/${d:0:12}…: HTTP 401: the store refused our credentials" ]] ||
		fail "wrong credentials on get: $out"
	out=$(drive "$good" put s.bin)
	[[ $out == "ok 1000 $d" ]] || fail "right credentials: $out"
	[[ -f $WEB/dav/secure/cas/$d ]]
	# a password file anyone can read is refused before any request
	chmod 644 good.pw
	out=$(drive "$good" head "$d")
	[[ $out == *"is readable by everyone"* ]] || fail "a world-readable password file was used: $out"
}
run_scenario "wrong credentials: a clear auth error naming the store; the local copy still serves" credentials

read_only_delete() {
	local c d out
	c=$(conf ro readonly)
	d=$(blob r.bin 500)
	drive "$(conf ro-w cache)" put r.bin >/dev/null
	out=$(drive "$c" delete "$d")
	[[ $out == *"HTTP 405: the store does not allow DELETE"* ]] || fail "DELETE on a read-only location: $out"
	[[ -f $WEB/dav/cache/cas/$d ]]
}
run_scenario "a store that does not allow DELETE says so; nothing is removed" read_only_delete

tls_verified() {
	local d out c
	d=$(blob t.bin 2000)
	mkdir -p tls
	c=tls/worker.conf
	printf 'cache_dir = %s\ncache_remote_url = https://127.0.0.1:%s/cache\n' "$PWD/tls/c1" "$TLS_PORT" >"$c"
	out=$(drive "$c" put t.bin)
	[[ $out == "ok 2000 $d (warning: http store https://127.0.0.1:$TLS_PORT/cache: HEAD cas/"*"SSL certificate problem"* ]] ||
		fail "an unknown certificate was accepted: $out"
	printf 'cache_dir = %s\ncache_remote_url = https://127.0.0.1:%s/cache\ncache_remote_ca_file = %s\n' \
		"$PWD/tls/c2" "$TLS_PORT" "$WEB/cert.pem" >"$c"
	out=$(drive "$c" put t.bin)
	[[ $out == "ok 2000 $d" ]] || fail "with the CA configured: $out"
}
run_scenario "TLS is verified: an unknown certificate fails, a configured CA works" tls_verified

gc_removes_remote_blobs() {
	ry_newdb gc
	local c d1 d2 a id t
	c=$(conf gc cache)
	d1=$(blob old.bin 4000)
	d2=$(blob kept.bin 4000)
	drive "$c" put old.bin >/dev/null
	drive "$c" put kept.bin >/dev/null
	a=$(sql "SELECT railyard.register_agent('w-gc', 'h', 'linux', 'amd64', 1, 1, NULL, '{}', 1, 1, 1, 1, 't', 60)")
	id=$(ry_submit "(name) VALUES ('p')" "INSERT INTO railyard.tasks (pipeline_id, name, command, outputs)
	     VALUES (:id, 'a', 'true', '{out}'), (:id, 'b', 'true', '{}');
	     INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'a', 'b');")
	t=$(sql "SELECT c.id FROM railyard.tasks t, railyard.claim_tasks($a, ARRAY[t.id]) c WHERE t.pipeline_id = $id AND t.name = 'a'")
	sql "SELECT * FROM railyard.cache_record($a, '[{\"task_id\": $t, \"attempt\": 1, \"outcome\": \"succeeded\",
	     \"output_digest\": \"$d2\", \"output_size\": 4000}]');
	     INSERT INTO railyard.artifacts (digest, size, last_used_at) VALUES ('$d1', 4000, now() - interval '1 day');
	     UPDATE railyard.artifacts SET last_used_at = now() - interval '1 day';" >/dev/null
	# pipeline $id runs: d2 is pinned (task b will restore it)
	"$RY" cache gc --config "$c" --max-age 1h --grace 1m >gc.out
	cat gc.out
	grep -q "database: removed 1 artifacts" gc.out
	grep -q "kept 1 pinned" gc.out
	[[ ! -e $WEB/dav/cache/cas/$d1 && ! -e $RY_WORKDIR/gc/cache/cas/${d1:0:2}/$d1 ]] ||
		fail "the unpinned blob is still stored"
	[[ -f $WEB/dav/cache/cas/$d2 && -f $RY_WORKDIR/gc/cache/cas/${d2:0:2}/$d2 ]] ||
		fail "GC removed a blob a running pipeline needs"
	sql_eq "$d2" "SELECT string_agg(digest, ',') FROM railyard.artifacts"
}
run_scenario "railyard cache gc removes records and blobs (local and remote) but keeps what a running pipeline pins" \
	gc_removes_remote_blobs

unreachable() {
	local c out start
	c=$(conf down cache)
	sed -i "s|127.0.0.1:$PORT|127.0.0.1:9|" "$c"	# discard: nobody listens
	start=$(ry__now_us)
	out=$(drive "$c" get "$(printf 'e%.0s' {1..64})" x.bin)
	[[ $out == "unavailable: http store http://127.0.0.1:9/cache: GET cas/eeeeeeeeeeee…: "* ]] ||
		fail "an unreachable store: $out"
	(($(ry__now_us) - start < 5000000)) || fail "an unreachable store took more than 5 s to give up"
}
run_scenario "an unreachable store is unavailable, quickly" unreachable

stopped_mid_transfer() {
	local c d out pid i
	c=$(conf mid slow)
	d=$(blob big.bin 8000000)
	drive "$(conf mid-w cache)" put big.bin >/dev/null
	# 8 MB at 256 KB/s: about 30 s; the server stops after the first bytes
	drive "$c" --parallel 2 get "$d" big.out >mid.out 2>mid.err &
	pid=$!
	wait_for 20 bash -c "find '$RY_WORKDIR/mid/cache/tmp' -name '*.part-*' -size +100k | grep -q ."
	stop_nginx
	wait_for 20 ry_dead "$pid"
	wait "$pid" || fail "the driver exited $? (crashed?): $(cat mid.err)"
	cat mid.out
	[[ $(grep -c '^unavailable: http store http://127.0.0.1:'"$PORT"'/slow: GET cas/' mid.out) == 2 ]] ||
		fail "a server stopped mid-transfer: $(cat mid.out)"
	[[ ! -e big.out.0 && ! -e big.out.1 ]] || fail "a partial download reached its destination"
	[[ -z $(ls -A "$RY_WORKDIR/mid/cache/tmp") && -z $(ls -A "$RY_WORKDIR/mid/cache/cas") ]] ||
		fail "partial files left behind"
}
run_scenario "the server stopped mid-transfer: unavailable, no crash, no partial file kept" stopped_mid_transfer
