# shellcheck shell=bash
#
# 6. Submission rate: a 50-task pipeline with edges (the overhead
# benchmark's generator, 16 services) submitted over and over for D
# seconds by 4 concurrent clients, no workers running:
#   - plain SQL: pgbench running the PRODUCT.md transaction (INSERT the
#     pipeline RETURNING id, INSERT its 50 tasks, INSERT its edges, COMMIT;
#     validation runs at COMMIT); counted: pipelines validated in the
#     database, which must equal the transactions pgbench completed;
#   - `railyard submit FILE` (the same pipeline as JSON) in 4 shell loops;
#   - baseline: the same pgbench transaction into copies of the three tables
#     (same columns, constraints and indexes) without railyard's triggers:
#     no validation, no audit, no foreign keys;
#   - `railyard submit` through pgbouncer (transaction pooling): latency
#     one at a time, then 8 clients; each submission is still a new process
#     and client connection, but the server backends stay warm;
#   - the floors, interleaved with the latency runs: `railyard --version`
#     (the binary's start) and `psql -c 'SELECT 1'` (a new backend);
#   - plain SQL again, into a database already holding S tasks: does the
#     rate depend on how much is stored?
# Each variant gets a fresh database.

bench_title_submission() {
	echo "6. Submission rate"
}

# dag_json DAG NAME: the DAG as a railyard submit spec.
dag_json() {
	awk -F'\t' -v name="$2" '
		function j(x) { gsub(/\\/, "\\\\", x); gsub(/"/, "\\\"", x); return "\"" x "\"" }
		{
			needs = ""; n = split($5, d, " ")
			for (i = 1; i <= n; i++) {
				split(d[i], e, "=")
				needs = needs (i > 1 ? ", " : "") "{\"task\": " j(e[1]) ", \"kind\": " j(e[2]) "}"
			}
			tasks = tasks (NR > 1 ? ",\n" : "") sprintf("    {\"name\": %s, \"service\": %s, \"kind\": %s, \"command\": %s, \"mem_mb\": 16, \"timeout_s\": 600, \"needs\": [%s]}",
				j($1), j($3), j($2), j("sleep " $4), needs)
		}
		END { printf "{\n  \"name\": %s,\n  \"team\": \"bench\",\n  \"tasks\": [\n%s\n  ]\n}\n", j(name), tasks }' "$1"
}

# sub_pgbench DB SCRIPT SECONDS: "tps processed" of 4 clients, or "".
sub_pgbench() {
	local out tps n
	out=$("$PG_BINDIR/pgbench" -n -c 4 -j 4 -T "$3" -f "$2" "$(conninfo "$1")" 2>&1)
	echo "$out" >>"$TMP/logs/pgbench-submit.log"
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n 1)
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
	[[ -n $tps && -n $n ]] && echo "$tps $n"
}

# sub_cli_loop CONNINFO SPEC DEADLINE_US OUT: railyard submit until the
# deadline; appends one line per failed submission to OUT.
sub_cli_loop() {
	local t
	while stamp t && ((t < $3)); do
		RAILYARD_DB=$1 "$RY" submit "$2" >/dev/null 2>>"$4.err" || echo failed >>"$4"
	done
}

# sub_count DB NAME: "validated tasks" of the pipelines named NAME.
sub_count() {
	q "$1" "SELECT count(*) FILTER (WHERE p.validated_at IS NOT NULL),
			(SELECT count(*) FROM railyard.tasks t JOIN railyard.pipelines p2 ON p2.id = t.pipeline_id
			  WHERE p2.name = '$2')
		FROM railyard.pipelines p WHERE p.name = '$2'" | tr '|' ' '
}

# sub_sql DB SCRIPT SECONDS NTASKS: pgbench submitting pipelines named
# bench-sql; SUB_TPS, SUB_VALID, or SUB_WHY when the database disagrees.
sub_sql() {
	local db=$1 out n tasks
	SUB_TPS="" SUB_VALID="" SUB_WHY=""
	out=$(sub_pgbench "$db" "$2" "$3")
	read -r SUB_TPS n <<<"${out:-}"
	read -r SUB_VALID tasks < <(sub_count "$db" bench-sql)
	if [[ -z $SUB_TPS || $SUB_VALID != "${n:-}" || $tasks != $((SUB_VALID * $4)) ]]; then
		SUB_WHY="pgbench completed ${n:-no} transactions but $SUB_VALID pipelines ($tasks tasks) were validated (log: KEEP_TMP=1)"
		SUB_TPS=""
	fi
}

# sub_cli_rate DB DIR CLIENTS SECONDS NTASKS SQL_TPS [CONNINFO VIA]:
# railyard submit in CLIENTS shell loops for SECONDS, connecting to DB or
# to CONNINFO (a pooler in front of DB, named VIA in the row); one row.
sub_cli_rate() {
	local db=$1 dir=$2 clients=$3 secs=$4 ntasks=$5 sql_tps=$6 via=${8:+ through $8}
	local t0 deadline i loops=() failed cli tasks elapsed conn rate
	conn=${7:-$(conninfo "$db")}
	: >"$dir/cli.failed"
	t0=$(now_us)
	deadline=$((t0 + secs * 1000000))
	for ((i = 0; i < clients; i++)); do
		sub_cli_loop "$conn" "$dir/spec.json" "$deadline" "$dir/cli.failed" &
		loops+=("$!")
		BG_PIDS+=("$!")
	done
	wait "${loops[@]}"
	elapsed=$(calc "($(now_us) - $t0) / 1000000" %.3f)
	failed=$(wc -l <"$dir/cli.failed")
	read -r cli tasks < <(sub_count "$db" bench-cli)
	say "railyard submit$via, $clients clients: $cli pipelines in $elapsed s, $failed failed"
	if ((failed > 0 || cli == 0)) || [[ $tasks != $((cli * ntasks)) ]]; then
		invalid submission "railyard submit$via, $clients clients" "$failed submissions failed, $cli validated: $(head -n 1 "$dir/cli.failed.err" 2>/dev/null)"
		return 0
	fi
	rate=$(calc "$cli / $elapsed" %.2f)
	row submission "railyard submit$via, $clients clients" "pipelines/s" "$(fmt "$rate" 1)" "$(fmt "$sql_tps" 1)" \
		"$(ratio "$rate" "$sql_tps" 3)" ">= 100" "$(verdict "$rate" ">=" 100)" \
		"$cli pipelines in $elapsed s into an empty database, one process and connection per submission; baseline: plain SQL, 4 clients, above"
}

# sub_lat_valid DB DIR FILE K NTASKS METRIC: whether FILE holds K timings
# and DB the K x NTASKS tasks of the pipelines they submitted; otherwise an
# INVALID row for METRIC, and status 1.
sub_lat_valid() {
	local n tasks
	n=$(wc -l <"$3")
	read -r _ tasks < <(sub_count "$1" bench-cli)
	if ((n != $4)) || [[ $tasks != $(($4 * $5)) ]]; then
		invalid submission "$6" "$n of $4 submissions printed an id, $tasks tasks stored: $(head -n 1 "$2/lat.err" 2>/dev/null)"
		return 1
	fi
}

# sub_bouncer_start DB DIR: a pgbouncer in transaction pooling mode in
# front of the benchmark cluster (its Unix socket in DIR/bouncer, run as
# the cluster's user); sets SUB_BOUNCER to a conninfo for DB through it, or
# SUB_WHY and returns 1.  Its options startup parameter is ignored, as
# PgBouncer needs for railyard's (docs/operations.md, "PgBouncer").
sub_bouncer_start() {
	local bdir=$2/bouncer pgb
	SUB_BOUNCER="" SUB_WHY=""
	if ! pgb=$(command -v pgbouncer); then
		SUB_WHY="pgbouncer is not installed (scripts/install-deps.sh)"
		return 1
	fi
	mkdir -p "$bdir"
	pg_bouncer_conf "$bdir" "$PGSOCK" 5432 5432 transaction 8 100 railyard
	((EUID == 0)) && chown -R railyard: "$bdir"
	(cd "$bdir" && exec "${AS_PG[@]}" "$pgb" "$bdir/pgbouncer.ini") >>"$TMP/logs/pgbouncer.out" 2>&1 &
	BG_PIDS+=("$!")
	SUB_BOUNCER="host=$bdir port=5432 user=railyard dbname=$1"
	if ! WAIT_EVERY=0.1 wait_for 15 sub_bouncer_ready "$SUB_BOUNCER"; then
		SUB_WHY="pgbouncer did not accept connections in 15 s: $(tail -n 1 "$bdir/pgbouncer.log" 2>/dev/null)"
		return 1
	fi
}

# sub_bouncer_ready CONNINFO: whether pgbouncer answers yet (psql's exit
# status 2, no connection, would stop wait_for at once).
sub_bouncer_ready() {
	"$PG_BINDIR/psql" -X -q -A -t -d "$1" -c "SELECT 1" >/dev/null 2>&1 || return 1
}

# sub_bouncer_stop DIR: stops sub_bouncer_start's pgbouncer.
sub_bouncer_stop() {
	local pid
	pid=$(cat "$1/bouncer/pgbouncer.pid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null
	wait_exit 10 "$pid"
	return 0
}

# sub_cli_bouncer_latency DB DIR NTASKS CONNINFO: as sub_cli_latency, one
# submission at a time, through the pooler at CONNINFO: each is still a
# new process and a new client connection, but the server backend behind
# it is one the pooler keeps, its caches and compiled functions warm.
sub_cli_bouncer_latency() {
	local db=$1 dir=$2 ntasks=$3 conn=$4 k=40 i t0 t1 out p50 p90
	((QUICK)) && k=15
	: >"$dir/lat.bouncer"
	for ((i = 0; i < k; i++)); do
		stamp t0
		out=$(RAILYARD_DB=$conn "$RY" submit "$dir/spec.json" 2>>"$dir/lat.err") || out=""
		[[ $out =~ ^[0-9]+$ ]] && stamp t1 && echo $((t1 - t0)) >>"$dir/lat.bouncer"
	done
	sub_lat_valid "$db" "$dir" "$dir/lat.bouncer" "$k" "$ntasks" "railyard submit through pgbouncer latency" ||
		return 0
	p50=$(calc "$(pct "$dir/lat.bouncer" 50) / 1000" %.1f)
	p90=$(calc "$(pct "$dir/lat.bouncer" 90) / 1000" %.1f)
	say "railyard submit through pgbouncer latency: p50 $p50 ms, p90 $p90 ms"
	row submission "railyard submit through pgbouncer latency, p50" "ms" "$p50" "${SUB_CLI_P50:-}" \
		"$(ratio "$p50" "${SUB_CLI_P50:-}" 2)" "< 30" "$(verdict "$p50" "<" 30)" \
		"$k submissions one at a time through pgbouncer (pool_mode = transaction) in front of the same server, process start to exit (p90 $p90 ms); baseline: railyard submit connecting directly, above"
}

# sub_cli_latency DB DIR NTASKS: one `railyard submit` at a time on an
# otherwise idle server, timed from before the process starts to its exit
# (it exits right after printing the id); baseline: psql submitting the same
# pipeline as SQL, also one new process and connection each, interleaved.
sub_cli_latency() {
	local db=$1 dir=$2 ntasks=$3 k=40 i t0 t1 conn out
	((QUICK)) && k=15
	conn=$(conninfo "$db")
	: >"$dir/lat.cli"
	: >"$dir/lat.sql"
	: >"$dir/lat.start"
	: >"$dir/lat.floor"
	dag_sql "$dir/dag.tsv" bench-lat >"$dir/lat.sql.in"
	for ((i = 0; i < k; i++)); do
		stamp t0
		out=$(RAILYARD_DB=$conn "$RY" submit "$dir/spec.json" 2>>"$dir/lat.err") || out=""
		[[ $out =~ ^[0-9]+$ ]] && stamp t1 && echo $((t1 - t0)) >>"$dir/lat.cli"
		stamp t0
		"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$conn" -f "$dir/lat.sql.in" >/dev/null 2>&1 &&
			stamp t1 && echo $((t1 - t0)) >>"$dir/lat.sql"
		# The floors: starting the railyard binary (its shared libraries),
		# and any libpq client's new process and backend doing nothing.
		stamp t0
		"$RY" --version >/dev/null && stamp t1 && echo $((t1 - t0)) >>"$dir/lat.start"
		stamp t0
		"$PG_BINDIR/psql" -X -q -A -t -d "$conn" -c "SELECT 1" >/dev/null 2>&1 &&
			stamp t1 && echo $((t1 - t0)) >>"$dir/lat.floor"
	done
	local p50 p90 b50
	sub_lat_valid "$db" "$dir" "$dir/lat.cli" "$k" "$ntasks" "railyard submit latency" || return 0
	p50=$(calc "$(pct "$dir/lat.cli" 50) / 1000" %.1f)
	p90=$(calc "$(pct "$dir/lat.cli" 90) / 1000" %.1f)
	b50=$(calc "$(pct "$dir/lat.sql" 50) / 1000" %.1f)
	say "railyard submit latency: p50 $p50 ms, p90 $p90 ms (psql $b50 ms)"
	SUB_CLI_P50=$p50
	local s50 f50
	s50=$(calc "$(pct "$dir/lat.start" 50) / 1000" %.1f)
	f50=$(calc "$(pct "$dir/lat.floor" 50) / 1000" %.1f)
	say "floors: railyard --version p50 $s50 ms, psql -c 'SELECT 1' p50 $f50 ms"
	row submission "railyard submit latency, p50" "ms" "$p50" "$b50" "$(ratio "$p50" "$b50" 2)" "< 30" \
		"$(verdict "$p50" "<" 30)" \
		"$k submissions of the $ntasks-task pipeline one at a time, process start to exit after printing the id (p90 $p90 ms); baseline: psql -f with the same pipeline as SQL, interleaved"
	row submission "floor: railyard --version, p50" "ms" "$s50" "$f50" "$(ratio "$s50" "$f50" 2)" "" "" \
		"starting the railyard binary and exiting (loading its shared libraries), interleaved with the submissions; baseline: psql -c 'SELECT 1', a new process, connection and backend doing nothing"
}

bench_submission() {
	local secs=20 stored=100000
	((QUICK)) && secs=4 stored=20000
	local dir=$TMP/work/sub db
	mkdir -p "$dir" "$TMP/logs"
	dag_generate 77 16 >"$dir/dag.tsv"
	local ntasks nedges
	ntasks=$(wc -l <"$dir/dag.tsv")
	nedges=$(awk -F'\t' '{ n += split($5, d, " ") } END { print n }' "$dir/dag.tsv")
	meta submission params "pipelines of $ntasks tasks and $nedges edges, 4 concurrent clients (railyard submit: also 8), $secs s each, each variant in a fresh database: raw tables, SQL, railyard submit (latency one at a time, then rates; then through pgbouncer), SQL with $stored tasks already stored"
	dag_sql "$dir/dag.tsv" bench-sql | grep -v '^\\echo' >"$dir/submit.sql"
	sed 's/railyard\./bench_raw./g; s/bench-sql/bench-raw/' "$dir/submit.sql" >"$dir/raw.sql"
	dag_json "$dir/dag.tsv" bench-cli >"$dir/spec.json"

	# Baseline: trigger-less copies of the three tables.
	db=bench_sub_raw
	new_db "$db"
	q "$db" "CREATE SCHEMA bench_raw;
		CREATE TABLE bench_raw.pipelines (LIKE railyard.pipelines INCLUDING ALL);
		CREATE TABLE bench_raw.tasks (LIKE railyard.tasks INCLUDING ALL);
		CREATE TABLE bench_raw.edges (LIKE railyard.edges INCLUDING ALL);" >/dev/null
	local raw raw_tps="" raw_n
	raw=$(sub_pgbench "$db" "$dir/raw.sql" "$secs")
	read -r raw_tps raw_n <<<"${raw:-}"
	if [[ -n $raw_tps && $(q "$db" "SELECT count(*) FROM bench_raw.pipelines") != "$raw_n" ]]; then
		raw_tps=""
	fi
	drop_db "$db"

	db=bench_sub_sql
	new_db "$db"
	sub_sql "$db" "$dir/submit.sql" "$secs" "$ntasks"
	drop_db "$db"
	local sql_tps=$SUB_TPS
	say "raw tables ${raw_tps:-FAILED} pipelines/s; SQL ${sql_tps:-FAILED} pipelines/s ($SUB_VALID validated)"
	if [[ -z $sql_tps ]]; then
		invalid submission "plain SQL" "$SUB_WHY"
	else
		row submission "plain SQL, 4 clients" "pipelines/s" "$(fmt "$sql_tps" 1)" "$(fmt "$raw_tps" 1)" \
			"$(ratio "$sql_tps" "$raw_tps" 3)" ">= 100" "$(verdict "$sql_tps" ">=" 100)" \
			"$SUB_VALID pipelines validated at COMMIT, $((SUB_VALID * ntasks)) tasks, into an empty database; baseline: the same INSERTs into trigger-less copies of the tables"
	fi

	# railyard submit, if this build has it.
	local check
	db=bench_sub_cli
	new_db "$db"
	if ! check=$(RAILYARD_DB=$(conninfo "$db") "$RY" submit --check "$dir/spec.json" 2>&1); then
		row submission "railyard submit" "pipelines/s" "" "" "" ">= 100" "not measured" \
			"railyard submit --check refused the spec: $(head -n 1 <<<"$check")"
	else
		sub_cli_latency "$db" "$dir" "$ntasks"
		drop_db "$db"
		db=bench_sub_cli4
		new_db "$db"
		sub_cli_rate "$db" "$dir" 4 "$secs" "$ntasks" "$sql_tps"
		drop_db "$db"
		db=bench_sub_cli8
		new_db "$db"
		sub_cli_rate "$db" "$dir" 8 "$secs" "$ntasks" "$sql_tps"
		drop_db "$db"
		# The operational answer to a new backend per submission: a pooler.
		db=bench_sub_bouncer
		new_db "$db"
		if sub_bouncer_start "$db" "$dir"; then
			sub_cli_bouncer_latency "$db" "$dir" "$ntasks" "$SUB_BOUNCER"
			drop_db "$db"
			db=bench_sub_bouncer8
			new_db "$db"
			sub_cli_rate "$db" "$dir" 8 "$secs" "$ntasks" "$sql_tps" "${SUB_BOUNCER%dbname=*}dbname=$db" pgbouncer
		else
			invalid submission "railyard submit through pgbouncer" "$SUB_WHY"
		fi
		sub_bouncer_stop "$dir"
	fi
	drop_db "$db"

	# Does the rate hold once the tables have history?
	db=bench_sub_big
	new_db "$db"
	submit_flat "$db" $((stored / 50)) 50 true 8 stored
	analyze_db "$db"
	sub_sql "$db" "$dir/submit.sql" "$secs" "$ntasks"
	drop_db "$db"
	say "SQL with $stored tasks stored: ${SUB_TPS:-FAILED} pipelines/s"
	if [[ -z $SUB_TPS ]]; then
		invalid submission "plain SQL, $stored tasks stored" "$SUB_WHY"
	else
		row submission "plain SQL, 4 clients, $stored tasks already stored" "pipelines/s" \
			"$(fmt "$SUB_TPS" 1)" "$(fmt "$sql_tps" 1)" "$(ratio "$SUB_TPS" "$sql_tps" 3)" ">= 100" \
			"$(verdict "$SUB_TPS" ">=" 100)" \
			"the same, into a database already holding $((stored / 50)) pipelines of 50 tasks (analyzed); baseline: plain SQL into an empty database"
	fi
}
