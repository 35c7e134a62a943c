# shellcheck shell=bash
# nginx (Debian's nginx-light) with WebDAV locations for the cache tests,
# started on 127.0.0.1 as an unprivileged user on free ports.  Sourced after
# lib.sh; the test defines write_conf (the nginx.conf it wants in
# $WEB/nginx.conf, listening on $PORT and, with DAV_TLS=1, $TLS_PORT).
#   start_nginx   sets PORT, TLS_PORT, NGINX_PID; stopped at exit
#   stop_nginx    a fast shutdown: open connections are cut

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || { echo "error: nginx is not installed (scripts/install-deps.sh)" >&2; exit 1; }
WEB=$RY_WORKDIR/web
mkdir -p "$WEB"/{dav,tmp,logs}
AS=()
if ((EUID == 0)); then
	id railyard >/dev/null 2>&1 || useradd --system --no-create-home railyard
	AS=(runuser -u railyard --)
fi
printf 'ci:%s\n' "$(openssl passwd -apr1 right-password)" >"$WEB/htpasswd"
chmod 755 "$RY_WORKDIR"
PORT="" TLS_PORT="" NGINX_PID=""

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_nginx() {
	local try i
	for try in 1 2 3 4 5 6 7 8; do
		PORT=$((20000 + (RANDOM * 7 + $$ + try) % 30000))
		TLS_PORT=$((PORT + 1))
		port_open "$PORT" && continue
		[[ ${DAV_TLS:-0} == 1 ]] && port_open "$TLS_PORT" && continue
		write_conf
		[[ ${#AS[@]} -eq 0 ]] || chown -R railyard: "$WEB"
		"${AS[@]}" "$NGINX" -e "$WEB/logs/error.log" -p "$WEB" -c "$WEB/nginx.conf" \
			>>"$WEB/logs/stderr" 2>&1 &
		NGINX_PID=$!
		for ((i = 0; i < 200; i++)); do
			if port_open "$PORT" && { [[ ${DAV_TLS:-0} != 1 ]] || port_open "$TLS_PORT"; }; then
				at_exit kill -TERM "$NGINX_PID"	# runuser passes it on to nginx
				return 0
			fi
			ry_alive "$NGINX_PID" || break
			ry_sleep 0.05
		done
		kill -TERM "$NGINX_PID" 2>/dev/null
		wait "$NGINX_PID" 2>/dev/null
	done
	echo "cannot start nginx:" >&2
	tail -n 5 "$WEB/logs/error.log" "$WEB/logs/stderr" >&2
	return 1
}

stop_nginx() {
	[[ -f $WEB/nginx.pid ]] && kill -TERM "$(cat "$WEB/nginx.pid")" 2>/dev/null
	wait_for 20 ry_dead "$NGINX_PID"
}

# dav_location PREFIX [LINE...]: a WebDAV location block storing under $WEB/dav.
dav_location() {
	local l
	printf '        location %s {\n            root %s/dav;\n            dav_methods PUT DELETE;\n' "$1" "$WEB"
	printf '            create_full_put_path on;\n            client_max_body_size 0;\n'
	shift
	for l in "$@"; do printf '            %s\n' "$l"; done
	printf '        }\n'
}

# dav_write_conf SERVERS: $WEB/nginx.conf with these server blocks.
dav_write_conf() {
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
		$1
		}
	CONF
}
