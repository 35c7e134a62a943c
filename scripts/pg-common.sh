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
