#!/usr/bin/env bash
#
# tests/run.sh BUILD_DIR [SUITE...]      (make test runs `tests/run.sh build/rel`)
#
# Runs the unit test binaries BUILD_DIR/tests/test_* (cmocka, TAP output)
# and the integration scripts tests/integration/test_*.sh against a
# throwaway PostgreSQL cluster, prints one line per test case, writes
# ./test-results.json and ends with the line "N passed, N failed" (plus
# ", N skipped" when any were).  Exit status 1 when anything failed, 2 on a
# usage or setup error.
#
# test-results.json: {"summary": {"passed", "failed", "skipped"}, "tests":
# [{"suite", "name", "outcome", "duration_s", "message"}]}; duration_s is
# null for unit test cases (cmocka's TAP output does not time them).
#
# SUITE picks what runs: "unit", "integration", "unit/test_core",
# "integration/test_migrate", "test_migrate", or a glob such as
# "integration/*worker*".  Without SUITE, $TESTS (space or comma separated)
# does the same; without either, everything runs.
#
# Environment:
#   JOBS=N             integration scripts run N at a time (default 1)
#   RY_TEST_TIMEOUT=S  limit per integration script (default 900 s)
#   KEEP_TMP=1         keep the temp dir: cluster, logs, every scenario's output
#   RY_COVERAGE=DIR    (make coverage) profile PL/pgSQL with plpgsql_check:
#                      the cluster preloads it, and at the end (and before
#                      every pg_restart) tests/coverage-harvest.sh appends
#                      every database's counts to DIR/plpgsql.tsv and
#                      DIR/sqlfunc.tsv
#
# The cluster: initdb --nosync, fsync/synchronous_commit/full_page_writes
# off, Unix socket in the temp dir only, run as the unprivileged system user
# "railyard" when we are root.  Database railyard_template holds the
# migrated schema (RAILYARD_DB points at it); each script gets its own copy
# (see tests/integration/lib.sh).  The cluster is always stopped on exit.

set -uo pipefail
export LC_ALL=C TZ=UTC

usage() {
	echo "usage: tests/run.sh BUILD_DIR [unit|integration|unit/NAME|integration/NAME|NAME...]" >&2
	exit 2
}

(($# >= 1)) || usage
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/pg-common.sh
. "$root/scripts/pg-common.sh"
# shellcheck source=tests/escape.sh
. "$root/tests/escape.sh"
cd "$root" || exit 2
build=$(cd "$1" 2>/dev/null && pwd) || {
	echo "error: build directory $1 does not exist (run make first)" >&2
	exit 2
}
shift
selection=("$@")
if ((${#selection[@]} == 0)) && [[ -n ${TESTS:-} ]]; then
	read -r -a selection <<<"${TESTS//,/ }"
fi
jobs=${JOBS:-1}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || jobs=1
script_timeout=${RY_TEST_TIMEOUT:-900}
unit_timeout=300
results_json=$root/test-results.json

# ---- what to run -------------------------------------------------------------

# matches ID SEL: whether selection SEL names test ID ("unit/test_core").
matches() {
	local id=$1 sel=$2
	# shellcheck disable=SC2053  # globs are allowed on purpose
	[[ $id == $sel || ${id#*/} == $sel || ${id%%/*} == "$sel" ]]
}

selected() {
	local sel
	((${#selection[@]})) || return 0
	for sel in "${selection[@]}"; do
		matches "$1" "$sel" && return 0
	done
	return 1
}

ids=() units=() scripts=()
for f in "$build"/tests/test_*; do
	[[ -f $f && -x $f ]] || continue
	ids+=("unit/${f##*/}")
	selected "unit/${f##*/}" && units+=("$f")
done
for f in tests/integration/test_*.sh; do
	[[ -f $f ]] || continue
	base=${f##*/}
	ids+=("integration/${base%.sh}")
	selected "integration/${base%.sh}" && scripts+=("$f")
done
for sel in "${selection[@]}"; do
	hit=0
	for id in "${ids[@]}"; do
		matches "$id" "$sel" && hit=1
	done
	if ((!hit)); then
		echo "error: no test matches '$sel' (unit tests in $build/tests, scripts in tests/integration)" >&2
		exit 2
	fi
done

# ---- results -----------------------------------------------------------------

tmp=$(mktemp -d /tmp/railyard-test.XXXXXX) || exit 2
chmod 755 "$tmp"	# the cluster's user must reach its directories
mkdir -p "$tmp/results"
all=$tmp/results.tsv	# outcome, suite, name, duration_s|null, message (escaped)
: >"$all"
n_passed=0 n_failed=0 n_skipped=0


# add OUTCOME SUITE NAME DURATION MESSAGE (fields already escaped): records
# one test case and prints its line.
add() {
	local outcome=$1 suite=$2 name=$3 dur=$4 msg=$5 tag line
	[[ -n $name ]] || name="(unnamed)"
	case $outcome in
	passed) tag=PASS n_passed=$((n_passed + 1)) ;;
	skipped) tag=SKIP n_skipped=$((n_skipped + 1)) ;;
	*) outcome=failed tag=FAIL n_failed=$((n_failed + 1)) ;;
	esac
	printf '%s\t%s\t%s\t%s\t%s\n' "$outcome" "$suite" "$name" "$dur" "$msg" >>"$all"
	line="$tag $suite: $(printf '%b' "$name")"
	[[ $dur != null ]] && line+=" (${dur}s)"
	if [[ $outcome == skipped && -n $msg ]]; then
		line+=" - $(printf '%b' "$msg" | head -n 1)"
	fi
	printf '%s\n' "$line"
	if [[ $outcome == failed && -n $msg ]]; then
		printf '%b\n' "$msg" | sed 's/^/    /'
	fi
}

ctrl_chars=() ctrl_hex=()
for ((i = 1; i < 32; i++)); do
	((i == 9 || i == 10 || i == 13)) && continue	# escaped already
	printf -v hex '%02x' "$i"
	printf -v c "\\x$hex"
	ctrl_chars+=("$c")
	ctrl_hex+=("$hex")
done

# An escaped field as a JSON string.
json_str() {
	local s=$1 k
	s=${s//\"/\\\"}
	for k in "${!ctrl_chars[@]}"; do
		[[ $s == *"${ctrl_chars[k]}"* ]] && s=${s//"${ctrl_chars[k]}"/\\u00${ctrl_hex[k]}}
	done
	printf '"%s"' "$s"
}

write_json() {
	local outcome suite name dur msg sep=""
	{
		printf '{"summary": {"passed": %d, "failed": %d, "skipped": %d},\n "tests": [' \
			"$n_passed" "$n_failed" "$n_skipped"
		while IFS=$'\t' read -r outcome suite name dur msg; do
			printf '%s\n  {"suite": %s, "name": %s, "outcome": "%s", "duration_s": %s, "message": %s}' \
				"$sep" "$(json_str "$suite")" "$(json_str "$name")" "$outcome" "$dur" \
				"$(json_str "$msg")"
			sep=,
		done <"$all"
		printf '\n]}\n'
	} >"$results_json.tmp" && mv "$results_json.tmp" "$results_json"
}

finish() {
	write_json
	if ((n_skipped)); then
		printf '%d passed, %d failed, %d skipped\n' "$n_passed" "$n_failed" "$n_skipped"
	else
		printf '%d passed, %d failed\n' "$n_passed" "$n_failed"
	fi
	((n_failed == 0))
	exit $?
}

now_us() {
	local t=${EPOCHREALTIME//[!0-9]/}
	echo $((10#$t))
}

secs() {
	printf '%d.%03d' $(($1 / 1000000)) $((($1 / 1000) % 1000))
}

# ---- the cluster -------------------------------------------------------------

as_pg=()	# prefix running a command as the cluster's user
bindir=""
pghost=$tmp/sock
running_pids=()	# background run_script jobs
declare -A script_of=()	# their pid -> script base name

cleanup() {
	local pid d owner
	trap - EXIT INT TERM
	# Scripts still running (interrupted): TERM lets lib.sh clean up.
	for pid in "${running_pids[@]}"; do
		d=${script_of[$pid]:-}
		[[ -n $d && -s $tmp/results/$d.pid ]] && kill -TERM "$(cat "$tmp/results/$d.pid")" 2>/dev/null
	done
	for pid in "${running_pids[@]}"; do
		wait "$pid" 2>/dev/null
	done
	# Our cluster, and any embedded cluster a script left running.
	if [[ -n $bindir ]]; then
		while IFS= read -r d; do
			d=${d%/postmaster.pid}
			owner=$(stat -c %U "$d")
			if ((EUID == 0)) && [[ $owner != root ]]; then
				(cd / && runuser -u "$owner" -- "$bindir/pg_ctl" -D "$d" -m immediate -w stop) >/dev/null 2>&1
			else
				"$bindir/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
			fi
		done < <(find "$tmp" -name postmaster.pid 2>/dev/null)
	fi
	if [[ -n ${KEEP_TMP:-} ]]; then
		echo "kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# setup_cluster: prints what failed on error.
setup_cluster() {
	if ! pg_find_bindir initdb pg_ctl psql; then
		echo "cannot find the PostgreSQL binaries (pg_config --bindir, /usr/lib/postgresql/*/bin); run scripts/install-deps.sh"
		return 1
	fi
	bindir=$PG_BINDIR
	pg_server_user || return 1
	as_pg=("${PG_AS[@]}")
	mkdir -p "$tmp/pg" "$pghost"
	chmod 700 "$tmp/pg"
	chmod 755 "$pghost"	# anyone may connect; trust auth, socket only
	if ((EUID == 0)); then
		chown railyard: "$tmp/pg" "$pghost"
		touch "$tmp/postgresql.log"
		chown railyard: "$tmp/postgresql.log"
	fi
	if ! (cd "$tmp" && "${as_pg[@]}" "$bindir/initdb" -D "$tmp/pg" --nosync -U railyard -A trust \
		--encoding=UTF8 --locale=C) >"$tmp/initdb.log" 2>&1; then
		echo "initdb failed:"
		tail -n 20 "$tmp/initdb.log"
		return 1
	fi
	cat >>"$tmp/pg/postgresql.conf" <<-EOF

		# tests/run.sh: a throwaway cluster, fast and private
		listen_addresses = ''
		unix_socket_directories = '$pghost'
		port = 5432
		max_connections = 300
		shared_buffers = 128MB
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		logging_collector = off
	EOF
	if [[ -n ${RY_COVERAGE:-} ]]; then
		cat >>"$tmp/pg/postgresql.conf" <<-EOF
			# RY_COVERAGE: every PL/pgSQL statement counted, in shared memory
			shared_preload_libraries = 'plpgsql, plpgsql_check'
			plpgsql_check.profiler = on
			track_functions = 'all'
		EOF
	fi
	if ! (cd "$tmp" && "${as_pg[@]}" "$bindir/pg_ctl" -D "$tmp/pg" -l "$tmp/postgresql.log" \
		-w -t 60 start) >"$tmp/pg_ctl.log" 2>&1; then
		echo "cannot start the test cluster:"
		tail -n 20 "$tmp/pg_ctl.log" "$tmp/postgresql.log"
		return 1
	fi
	local conn="host=$pghost port=5432 user=railyard"
	if ! "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$conn dbname=postgres" \
		-c "CREATE DATABASE railyard_template" 2>&1; then
		echo "cannot create railyard_template"
		return 1
	fi
	if [[ -n ${RY_COVERAGE:-} ]] && ! "$bindir/psql" -X -q -v ON_ERROR_STOP=1 \
		-d "$conn dbname=railyard_template" -c "CREATE EXTENSION plpgsql_check SCHEMA public" 2>&1; then
		echo "cannot create extension plpgsql_check (package postgresql-15-plpgsql-check)"
		return 1
	fi
	export RAILYARD_DB="$conn dbname=railyard_template"
	if ! (cd "$tmp" && "$RY" migrate) >"$tmp/migrate.log" 2>&1; then
		echo "railyard migrate failed on the template database:"
		tail -n 20 "$tmp/migrate.log"
		return 1
	fi
	export RY_PG_BINDIR=$bindir RY_PGHOST=$pghost RY_PGPORT=5432 RY_PGUSER=railyard
	export RY_TEMPLATE_DB=railyard_template
}

# ---- unit tests --------------------------------------------------------------

run_unit() {
	local bin=$1 name=${1##*/}
	local suite=unit/$name out=$tmp/unit/$name
	local rc=0 line plan=0 seen=0 cur_outcome="" cur_name="" cur_msg="" failed_any=0
	mkdir -p "$out"
	CMOCKA_MESSAGE_OUTPUT=tap UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		timeout -k 10 "$unit_timeout" "$bin" >"$out/stdout" 2>"$out/stderr" </dev/null || rc=$?
	flush() {
		[[ -n $cur_outcome ]] || return 0
		[[ $cur_outcome == failed ]] && failed_any=1
		add "$cur_outcome" "$suite" "$(ry_esc "$cur_name")" null "$(ry_esc "${cur_msg%$'\n'}")"
		cur_outcome="" cur_msg=""
	}
	while IFS= read -r line; do
		if [[ $line =~ ^1\.\.([0-9]+) ]]; then
			plan=${BASH_REMATCH[1]}
		elif [[ $line =~ ^(not\ )?ok\ [0-9]+\ \#\ SKIP\ ?(.*)$ ]]; then
			flush
			seen=$((seen + 1))
			cur_outcome=skipped cur_name=${BASH_REMATCH[2]}
		elif [[ $line =~ ^(not\ )?ok\ [0-9]+(\ -\ (.*))?$ ]]; then
			flush
			seen=$((seen + 1))
			cur_name=${BASH_REMATCH[3]}
			[[ -n ${BASH_REMATCH[1]} ]] && cur_outcome=failed || cur_outcome=passed
		elif [[ $line =~ ^#\ (not\ )?ok\ -\  ]]; then
			:	# the group's summary line
		elif [[ $line == "#"* && $cur_outcome == failed ]]; then
			cur_msg+="${line#\# }"$'\n'
		fi
	done <"$out/stdout"
	flush
	if ((rc != 0 && !failed_any)) || ((seen < plan)) || ((plan == 0)); then
		local why="exited with status $rc"
		((rc == 124)) && why="timed out after ${unit_timeout}s"
		((seen < plan || plan == 0)) && why+=" after $seen of $plan test cases were reported"
		# A sanitizer's report is worth more from its first line than its tail.
		local detail
		detail=$(sed -n '/ERROR: [A-Za-z]*Sanitizer\|runtime error:/,$p' "$out/stderr" | head -n 30)
		[[ -n $detail ]] || detail=$(tail -n 30 "$out/stderr")
		add failed "$suite" "(binary)" null "$(ry_esc "$why"$'\n'"$detail")"
	fi
}

# ---- integration scripts ---------------------------------------------------

# In the background: runs one script, then writes its exit status to .rc.
run_script() {
	local script=$1 base=${1##*/}
	base=${base%.sh}
	local wd=$tmp/work/$base rc=0
	mkdir -p "$wd/sanitizer"
	chmod 755 "$tmp/work" "$wd"
	: >"$tmp/results/$base.tsv"
	(
		export RY_WORKDIR=$wd RY_RESULTS=$tmp/results/$base.tsv RY_SUITE=integration/$base
		export RY_SCRIPT=$base RY_SANITIZER_DIR=$wd/sanitizer RY_ROOT=$root
		export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$wd/sanitizer/asan"
		export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}:log_path=$wd/sanitizer/ubsan"
		cd "$wd" || exit 2
		# timeout leads its own process group: cleanup signals it by pid.
		timeout -k 10 "$script_timeout" bash "$root/$script" &
		echo $! >"$tmp/results/$base.pid"
		wait $!
	) >"$wd/script.log" 2>&1 </dev/null || rc=$?
	echo "$rc" >"$tmp/results/$base.rc"
}

# In the foreground, once the script ended: prints and records its results.
report_script() {
	local base=$1 wd=$tmp/work/$1 suite=integration/$1
	local rc outcome name dur msg nfailed=0 n=0
	rc=$(cat "$tmp/results/$base.rc")
	while IFS=$'\t' read -r outcome name dur msg; do
		n=$((n + 1))
		[[ $outcome == failed ]] && nfailed=$((nfailed + 1))
		add "$outcome" "$suite" "$name" "$dur" "$msg"
	done <"$tmp/results/$base.tsv"
	local tail_log
	tail_log=$(tail -n 20 "$wd/script.log" 2>/dev/null)
	if ((rc == 124 || rc == 137)); then
		add failed "$suite" "(script)" null "$(ry_esc "timed out after ${script_timeout}s"$'\n'"$tail_log")"
	elif ((rc != 0 && nfailed == 0)); then
		add failed "$suite" "(script)" null "$(ry_esc "exited with status $rc"$'\n'"$tail_log")"
	elif ((n == 0)); then
		add failed "$suite" "(script)" null "$(ry_esc "ran no scenarios"$'\n'"$tail_log")"
	fi
	local f reports=""
	for f in "$wd"/sanitizer/*; do
		[[ -f $f ]] && reports+="${f##*/}:"$'\n'"$(head -n 30 "$f")"$'\n'
	done
	if [[ -n $reports ]]; then
		add failed "$suite" "(script)" null "$(ry_esc "a sanitizer reported outside any scenario"$'\n'"$reports")"
	fi
}

# ---- main --------------------------------------------------------------------

if ((${#units[@]} + ${#scripts[@]} == 0)); then
	echo "error: no tests found (unit binaries in $build/tests, scripts in tests/integration)" >&2
	exit 2
fi

for bin in "${units[@]}"; do
	run_unit "$bin"
done

if ((${#scripts[@]})); then
	# The binary this build produced (make copies it to ./railyard too).
	export RY=$build/railyard
	if [[ ! -x $RY ]]; then
		add failed harness "(setup)" null "$(ry_esc "no railyard binary in $build: run make")"
		finish
	fi
	if ! setup_cluster >"$tmp/setup.log" 2>&1; then
		add failed harness "(setup)" null "$(ry_esc "$(cat "$tmp/setup.log")")"
		finish
	fi

	reap() {
		local pid found=0
		wait -n "${running_pids[@]}" 2>/dev/null
		for pid in "${running_pids[@]}"; do
			[[ -e $tmp/results/${script_of[$pid]}.rc ]] || continue
			wait "$pid" 2>/dev/null
			report_script "${script_of[$pid]}"
			unset "script_of[$pid]"
			found=1
		done
		running_pids=("${!script_of[@]}")
		((found)) || read -r -t 0.1 <> <(:) || :
	}
	for script in "${scripts[@]}"; do
		while ((${#running_pids[@]} >= jobs)); do
			reap
		done
		run_script "$script" &
		base=${script##*/}
		script_of[$!]=${base%.sh}
		running_pids=("${!script_of[@]}")
	done
	while ((${#running_pids[@]})); do
		reap
	done
	if [[ -n ${RY_COVERAGE:-} ]]; then
		tests/coverage-harvest.sh "$bindir" "host=$pghost port=5432 user=railyard" "$RY_COVERAGE"
	fi
fi
finish
