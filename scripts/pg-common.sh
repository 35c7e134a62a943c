# Shared by tests/run.sh and bench/run.sh (sourced, bash): finding the
# PostgreSQL binaries and the user a throwaway server runs as.

# pg_find_bindir PROG...: sets PG_BINDIR to pg_config --bindir when it has
# every PROG, else to the newest /usr/lib/postgresql/N/bin that does.
# Returns non-zero when none has them all.
pg_find_bindir() {
	local d p ok
	PG_BINDIR=""
	for d in "$(pg_config --bindir 2>/dev/null)" \
		$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4nr); do
		[[ -n $d ]] || continue
		ok=1
		for p in "$@"; do
			[[ -x $d/$p ]] || ok=0
		done
		if ((ok)); then
			PG_BINDIR=$d
			return 0
		fi
	done
	return 1
}

# pg_server_user: PostgreSQL refuses to run as root, so as root this makes
# sure the system user "railyard" exists and sets PG_AS=(runuser -u
# railyard --) as the prefix for server commands; otherwise PG_AS=().
# Prints what failed and returns non-zero on error.
pg_server_user() {
	PG_AS=()
	((EUID == 0)) || return 0
	if ! id railyard >/dev/null 2>&1 &&
		! useradd --system --no-create-home --shell /usr/sbin/nologin railyard 2>&1 &&
		! id railyard >/dev/null 2>&1; then
		echo "cannot create the system user railyard to run PostgreSQL (it refuses root)"
		return 1
	fi
	PG_AS=(runuser -u railyard --)
}

# pg_bouncer_conf DIR SERVER_SOCKET_DIR SERVER_PORT LISTEN_PORT MODE POOL
# MAX_CLIENTS USER: writes DIR/pgbouncer.ini and DIR/userlist.txt for a
# pgbouncer that listens on a Unix socket in DIR only (no TCP), trusts
# USER, pools in MODE (session, transaction) and ignores the options
# startup parameter, as railyard's connections need (docs/operations.md,
# "PgBouncer").  Its log and pid file go in DIR too.
pg_bouncer_conf() {
	local dir=$1
	printf '"%s" ""\n' "$8" >"$dir/userlist.txt"
	cat >"$dir/pgbouncer.ini" <<-INI
		[databases]
		* = host=$2 port=$3
		[pgbouncer]
		listen_addr =
		listen_port = $4
		unix_socket_dir = $dir
		auth_type = trust
		auth_file = $dir/userlist.txt
		pool_mode = $5
		default_pool_size = $6
		max_client_conn = $7
		ignore_startup_parameters = options
		logfile = $dir/pgbouncer.log
		pidfile = $dir/pgbouncer.pid
	INI
}
