# shellcheck shell=bash
#
# 10. The build cache end to end (issue 9), against Turborepo on the same
# repository and commits.  bench/gen_cache_repo.sh writes a git monorepo
# of 100 services on five shared libraries and 20 commits touching 1-3
# packages each (QUICK=1: 100 services, 6 commits).  Every package's build
# is the same shell for both tools: railyard runs it as a cacheable task
# (inputs: the package directory; outputs: its out/; build edges from its
# dependencies) on one worker with 4 slots and a local store; Turborepo
# (`turbo` pinned below, installed with npm into this run's temp dir) runs
# it as the package's `build` script with dependsOn ^build, outputs out/**,
# its local cache and --concurrency=4.
#
# Per commit, for both: tasks run against the ideal set (a package whose
# own files changed, or one of whose dependencies' outputs changed: what
# an exact cache reruns), stale hits (every package's out/build.out after
# the run compared with a clean build of the commit without any cache,
# made here by running the scripts in build order: must be 0), and wall
# time (railyard: submission to `railyard wait` returning).  Then the no-op
# run (the last commit again, everything cached) and the latency of the
# worker's lookup query (railyard.cache_lookup, one key, pgbench) over the
# entries the run made.  Turborepo skipped, with a line saying why, when
# npm cannot install it.

TURBO_VERSION=1.13.4

bench_title_cache() {
	echo "10. Build cache: incremental builds of a 100-service monorepo, railyard vs Turborepo"
}

# bc_gt REPO COMMIT OUT: the clean build of COMMIT ("name sha" per
# package, in OUT), by running each package's script in build order.
bc_gt() {
	local repo=$1 commit=$2 out=$3 tree p script
	tree=$(mktemp -d "$TMP/gt.XXXXXX")
	git -C "$repo" archive "$commit" | tar -x -C "$tree"
	: >"$out"
	while IFS=$'\t' read -r p script; do
		(cd "$tree/pkgs/$p" && BENCH_SLEEP=0 bash -c "$script") || return 1
		echo "$p $(cut -d' ' -f1 "$tree/pkgs/$p/out/build.out")" >>"$out"
	done <"$repo/.bench/scripts"
	rm -rf "$tree"
}

# bc_ideal REPO PREV CUR GT_PREV GT_CUR: how many packages an exact cache
# reruns going from commit PREV to CUR.
bc_ideal() {
	local repo=$1 prev=$2 cur=$3 changed
	changed=$(git -C "$repo" diff --name-only "$prev" "$cur" -- pkgs | cut -d/ -f2 | sort -u | tr '\n' ' ')
	awk -v changed=" $changed" '
		FILENAME == ARGV[1] { before[$1] = $2; next }
		FILENAME == ARGV[2] { now[$1] = $2; next }
		{
			run = index(changed, " " $1 " ") > 0
			for (i = 2; i <= NF; i++) if (before[$i] != now[$i]) run = 1
			n += run
		}
		END { print n + 0 }' "$4" "$5" "$repo/.bench/packages"
}

# bc_railyard_stale DB PIPELINE GT STORE: packages whose recorded output
# (read from the local store's blob) differs from the clean build.
bc_railyard_stale() {
	local db=$1 id=$2 gt=$3 store=$4 name digest got stale=0 want
	while IFS='|' read -r name digest; do
		name=${name#build:}
		if [[ -z ${BC_SEEN[$digest]:-} ]]; then
			BC_SEEN[$digest]=$(tar --zstd -xOf "$store/cas/${digest:0:2}/$digest" \
				"pkgs/$name/out/build.out" 2>/dev/null | cut -d' ' -f1)
		fi
		got=${BC_SEEN[$digest]}
		want=$(awk -v p="$name" '$1 == p { print $2 }' "$gt")
		[[ $got == "$want" ]] || stale=$((stale + 1))
	done < <(q "$db" "SELECT t.name, o.digest FROM railyard.tasks t
		LEFT JOIN railyard.task_outputs o ON o.task_id = t.id WHERE t.pipeline_id = $id")
	echo "$stale"
}

# bc_turbo_stale WC GT: packages whose out/build.out in the working copy
# differs from the clean build.
bc_turbo_stale() {
	local wc=$1 gt=$2 p want got stale=0
	while read -r p want; do
		got=$(cut -d' ' -f1 "$wc/pkgs/$p/out/build.out" 2>/dev/null)
		[[ $got == "$want" ]] || stale=$((stale + 1))
	done <"$gt"
	echo "$stale"
}

# bc_noop_breakdown DB PIPELINE: where the no-op run's time goes, per task
# and per level of the DAG, from the database's own timestamps: ready_at
# (the completion that readied it), claimed_at (the claim), finished_at
# (the worker's clock when the hit was restored) and cache_runs.recorded_at
# (the completion that reported it).  Printed and kept as meta lines
# (noop_level_N).
bc_noop_breakdown() {
	local db=$1 id=$2 line lvl
	while IFS= read -r line; do
		say "no-op breakdown: $line"
		lvl=${line%%:*}
		meta cache "noop_${lvl// /_}" "$line"
	done < <(q "$db" "
		WITH RECURSIVE lv AS (
		    SELECT t.name, 0 AS level FROM railyard.tasks t
		     WHERE t.pipeline_id = $id AND NOT EXISTS (SELECT 1 FROM railyard.edges e
		           WHERE e.pipeline_id = $id AND e.downstream = t.name)
		    UNION ALL
		    SELECT e.downstream, lv.level + 1 FROM lv
		      JOIN railyard.edges e ON e.pipeline_id = $id AND e.upstream = lv.name
		), l AS (SELECT name, max(level) AS level FROM lv GROUP BY name),
		s AS (
		    SELECT l.level, t.ready_at, t.claimed_at, t.finished_at, r.recorded_at,
		           extract(epoch FROM t.claimed_at - t.ready_at) * 1000 AS wait_claim,
		           extract(epoch FROM t.finished_at - t.claimed_at) * 1000 AS prep,
		           extract(epoch FROM r.recorded_at - t.finished_at) * 1000 AS wait_complete
		      FROM railyard.tasks t JOIN l ON l.name = t.name
		      LEFT JOIN railyard.cache_runs r ON r.task_id = t.id AND r.attempt = t.attempt
		     WHERE t.pipeline_id = $id
		), p AS (SELECT min(ready_at) AS t0 FROM s)
		SELECT format('level %s: %s tasks, ready %s-%s ms, done %s ms; per task mean (max): ready->claimed %s (%s) ms, claimed->hit restored %s (%s) ms, hit->completion sent %s (%s) ms',
		       level, count(*),
		       round(extract(epoch FROM min(ready_at) - p.t0) * 1000),
		       round(extract(epoch FROM max(ready_at) - p.t0) * 1000),
		       round(extract(epoch FROM max(recorded_at) - p.t0) * 1000),
		       round(avg(wait_claim)::numeric, 1), round(max(wait_claim)::numeric, 1),
		       round(avg(prep)::numeric, 1), round(max(prep)::numeric, 1),
		       round(avg(wait_complete)::numeric, 1), round(max(wait_complete)::numeric, 1))
		  FROM s, p GROUP BY level, p.t0 ORDER BY level" 2>&1)
}

bench_cache() {
	local services=100 commits=20 db=bench_cache
	((QUICK)) && commits=6
	local dir=$TMP/cache_e2e repo wc conf store sql turbo="" why_no_turbo=""
	repo=$dir/repo wc=$dir/turbo-wc conf=$dir/worker.conf store=$dir/store
	mkdir -p "$dir"
	meta cache params "$services services + 5 libraries, $commits commits of 1-3 packages; one railyard worker (4 slots, local store) vs turbo $TURBO_VERSION (--concurrency=4, local cache); build scripts sleep 50 ms"
	say "generating the monorepo ($services services, $commits commits)"
	bench/gen_cache_repo.sh "$services" "$commits" "$repo" >"$dir/gen.log" 2>&1 || {
		invalid cache "incremental tasks run" "gen_cache_repo.sh failed: $(tail -n 1 "$dir/gen.log")"
		return
	}
	local -a C
	mapfile -t C <"$repo/.bench/commits"

	# Turborepo, pinned, into this run's temp dir.
	if ! command -v npm >/dev/null; then
		why_no_turbo="npm is not installed"
	elif ! npm install --prefix "$dir/turbo" --no-audit --no-fund "turbo@$TURBO_VERSION" \
		>"$dir/npm.log" 2>&1; then
		why_no_turbo="npm install turbo@$TURBO_VERSION failed: $(tail -n 1 "$dir/npm.log")"
	else
		turbo=$dir/turbo/node_modules/.bin/turbo
		git clone -q "$repo" "$wc"
		cp -a "$repo/node_modules" "$wc/" 2>/dev/null || :
	fi
	[[ -z $why_no_turbo ]] || say "Turborepo skipped: $why_no_turbo"
	export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1

	# The pipeline, the same for every commit but its revision.
	sql=$dir/pipeline.sql
	{
		echo "BEGIN;"
		echo "INSERT INTO railyard.pipelines (name, source, revision) VALUES ('mono', '$repo', :'rev') RETURNING id \\gset"
		echo "INSERT INTO railyard.tasks (pipeline_id, name, service, command, cacheable, inputs, outputs) VALUES"
		local p script sep=""
		while IFS=$'\t' read -r p script; do
			printf "%s(:id, 'build:%s', '%s', \$c\$cd pkgs/%s && %s\$c\$, true, '{pkgs/%s/}', '{pkgs/%s/out}')\n" \
				"$sep" "$p" "$p" "$p" "$script" "$p" "$p"
			sep=","
		done <"$repo/.bench/scripts"
		echo ";"
		local deps d e=""
		echo "INSERT INTO railyard.edges (pipeline_id, upstream, downstream, kind) VALUES"
		sep=""
		while read -r p deps; do
			for d in $deps; do
				printf "%s(:id, 'build:%s', 'build:%s', 'build')\n" "$sep" "$d" "$p"
				sep=","
			done
		done <"$repo/.bench/packages"
		echo ";"
		echo "COMMIT;"
		echo "SELECT :id;"
	} >"$sql"

	new_db "$db"
	echo "cache_dir = $store" >"$conf"
	start_worker "$db" cache-w --slots 4 --config "$conf"
	local wpid=$LAST_PID

	local k id t0 t1 gt_prev="" gt rstate ideal r_run r_stale r_ms t_run t_stale t_ms out
	local sum_ideal=0 sum_r=0 sum_t=0 stale_r=0 stale_t=0 r_ms_all=() t_ms_all=() exact=0
	local cold_r="" cold_t=""
	declare -gA BC_SEEN=()
	for ((k = 0; k < ${#C[@]}; k++)); do
		gt=$dir/gt.$k
		bc_gt "$repo" "${C[k]}" "$gt" || {
			invalid cache "incremental tasks run" "the clean build of commit $k failed"
			return
		}
		# railyard
		t0=$(now_us)
		id=$("$PG_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$(conninfo "$db")" \
			-v rev="${C[k]}" -f "$sql" 2>"$dir/submit.err" | tail -n 1)
		if [[ ! $id =~ ^[0-9]+$ ]]; then
			invalid cache "incremental tasks run" "submission failed: $(tail -n 1 "$dir/submit.err")"
			return
		fi
		RAILYARD_DB=$(conninfo "$db") "$RY" wait "$id" --timeout 900 >/dev/null 2>&1
		rstate=$?
		t1=$(now_us)
		if ((rstate != 0)); then
			invalid cache "incremental tasks run" "pipeline of commit $k did not succeed (see the worker log)"
			return
		fi
		r_ms=$(calc "($t1 - $t0) / 1000" %.0f)
		r_run=$(q "$db" "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND state = 'succeeded'")
		r_stale=$(bc_railyard_stale "$db" "$id" "$gt" "$store")
		# Turborepo
		t_run="" t_stale="" t_ms=""
		if [[ -n $turbo ]]; then
			git -C "$wc" checkout -q "${C[k]}"
			t0=$(now_us)
			out=$(cd "$wc" && "$turbo" run build --concurrency=4 --output-logs=none 2>&1)
			t1=$(now_us)
			t_ms=$(calc "($t1 - $t0) / 1000" %.0f)
			t_run=$(awk '/Cached:/ { print $4 - $2 }' <<<"$out")
			t_stale=$(bc_turbo_stale "$wc" "$gt")
			[[ -n $t_run ]] || { why_no_turbo="turbo printed no summary: $(tail -n 2 <<<"$out")"; turbo=""; }
		fi
		if ((k == 0)); then
			cold_r=$r_ms cold_t=$t_ms
			say "cold build: railyard ran $r_run in $r_ms ms; turbo ran ${t_run:-—} in ${t_ms:-—} ms"
		else
			ideal=$(bc_ideal "$repo" "${C[k - 1]}" "${C[k]}" "$gt_prev" "$gt")
			sum_ideal=$((sum_ideal + ideal)) sum_r=$((sum_r + r_run))
			((r_run == ideal)) && exact=$((exact + 1))
			stale_r=$((stale_r + r_stale))
			r_ms_all+=("$r_ms")
			if [[ -n $t_run ]]; then
				sum_t=$((sum_t + t_run)) stale_t=$((stale_t + t_stale))
				t_ms_all+=("$t_ms")
			fi
			say "commit $k: ideal $ideal; railyard ran $r_run (stale $r_stale) in $r_ms ms; turbo ran ${t_run:-—} (stale ${t_stale:-—}) in ${t_ms:-—} ms"
		fi
		gt_prev=$gt
	done

	# No-op: the last commit again.
	local noop_r noop_t="" noop_run
	t0=$(now_us)
	id=$("$PG_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$(conninfo "$db")" \
		-v rev="${C[-1]}" -f "$sql" 2>/dev/null | tail -n 1)
	RAILYARD_DB=$(conninfo "$db") "$RY" wait "$id" --timeout 900 >/dev/null 2>&1
	t1=$(now_us)
	noop_r=$(calc "($t1 - $t0) / 1000" %.0f)
	noop_run=$(q "$db" "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND state <> 'cached'")
	bc_noop_breakdown "$db" "$id"
	if [[ -n $turbo ]]; then
		t0=$(now_us)
		(cd "$wc" && "$turbo" run build --concurrency=4 --output-logs=none >/dev/null 2>&1)
		t1=$(now_us)
		noop_t=$(calc "($t1 - $t0) / 1000" %.0f)
	fi

	# The worker's lookup query over the entries made, one key at a time,
	# with the worker stopped: the query's latency, not the worker's load.
	stop_workers
	local n_keys lat=$dir/lookup.lat
	q "$db" "CREATE TABLE bench_keys AS SELECT row_number() OVER () AS id, key FROM railyard.cache_entries" >/dev/null
	n_keys=$(q "$db" "SELECT count(*) FROM bench_keys")
	# The worker sends the four statements as one libpq pipeline (one
	# round trip: pkg/db/adb.c); pgbench's \startpipeline does the same.
	printf '\\set i random(1, %s)\n\\startpipeline\nBEGIN;\nSET LOCAL synchronous_commit = off;\nSELECT * FROM railyard.cache_lookup(ARRAY[(SELECT key FROM bench_keys WHERE id = :i)]);\nCOMMIT;\n\\endpipeline\n' \
		"$n_keys" >"$dir/lookup.pgbench"
	(cd "$dir" && "$PG_BINDIR/pgbench" -n -M extended -c 1 -t 3000 -f lookup.pgbench -l --log-prefix=lookup \
		-h "$PGSOCK" -p 5432 -U railyard "$db" >"$dir/pgbench.out" 2>&1)
	cat "$dir"/lookup.[0-9]* 2>/dev/null | awk '{ print $3 }' >"$lat"
	# The query alone: one statement (autocommit), the function's own cost
	# without the transaction's three other round trips.
	local lat1=$dir/lookup1.lat
	printf '\\set i random(1, %s)\nSELECT * FROM railyard.cache_lookup(ARRAY[(SELECT key FROM bench_keys WHERE id = :i)]);\n' \
		"$n_keys" >"$dir/lookup1.pgbench"
	(cd "$dir" && "$PG_BINDIR/pgbench" -n -c 1 -t 3000 -f lookup1.pgbench -l --log-prefix=lookup1 \
		-h "$PGSOCK" -p 5432 -U railyard "$db" >"$dir/pgbench1.out" 2>&1)
	cat "$dir"/lookup1.[0-9]* 2>/dev/null | awk '{ print $3 }' >"$lat1"

	local med_r med_t sum_r_ms=0 sum_t_ms=0 v
	med_r=$(median "${r_ms_all[@]}")
	for v in "${r_ms_all[@]}"; do sum_r_ms=$((sum_r_ms + v)); done
	if ((${#t_ms_all[@]})); then
		med_t=$(median "${t_ms_all[@]}")
		for v in "${t_ms_all[@]}"; do sum_t_ms=$((sum_t_ms + v)); done
	else
		med_t="" sum_t_ms=""
	fi
	local ncommits=$((${#C[@]} - 1))
	row cache "tasks run over $ncommits commits (ideal $sum_ideal)" "" "$sum_r" "${turbo:+$sum_t}" \
		"$(ratio "$sum_r" "$sum_ideal" 2) × ideal" "= ideal" \
		"$( ((sum_r == sum_ideal)) && echo met || echo missed)" \
		"railyard ran exactly the ideal set in $exact of $ncommits commits; ratio is railyard / ideal (Turborepo: $(ratio "${sum_t:-}" "$sum_ideal" 2) × ideal)"
	row cache "hit rate vs ideal (cacheable tasks not rerun / ideal not rerun)" "%" \
		"$(calc "100 * ($ncommits * 105 - $sum_r) / ($ncommits * 105 - $sum_ideal)" %.1f)" \
		"$([[ -n $turbo ]] && calc "100 * ($ncommits * 105 - $sum_t) / ($ncommits * 105 - $sum_ideal)" %.1f)" "" "100" \
		"$(verdict "$(calc "100 * ($ncommits * 105 - $sum_r) / ($ncommits * 105 - $sum_ideal)" %.1f)" ">=" 100)"
	row cache "stale hits (outputs ≠ clean uncached build)" "" "$stale_r" "${turbo:+$stale_t}" "" "0" \
		"$(verdict "$stale_r" "<=" 0)" "every package's out/build.out after every run, against a clean build of the commit"
	row cache "incremental wall time, median per commit" "ms" "$med_r" "$med_t" "$(ratio "$med_r" "$med_t" 2)" \
		"≤ Turborepo" "$([[ -n $med_t ]] && verdict "$(ratio "$med_r" "$med_t" 2)" "<=" 1)"
	row cache "incremental wall time, all $ncommits commits" "s" "$(calc "$sum_r_ms / 1000" %.1f)" \
		"$([[ -n $sum_t_ms ]] && calc "$sum_t_ms / 1000" %.1f)" "$(ratio "$sum_r_ms" "$sum_t_ms" 2)" "" ""
	row cache "no-op run (everything cached), wall time" "ms" "$noop_r" "$noop_t" "$(ratio "$noop_r" "$noop_t" 2)" \
		"≤ Turborepo" "$([[ -n $noop_t ]] && verdict "$(ratio "$noop_r" "$noop_t" 2)" "<=" 1)" \
		"railyard tasks not cached in the no-op run: $noop_run"
	row cache "cold build (105 tasks), wall time" "ms" "$cold_r" "$cold_t" "$(ratio "$cold_r" "$cold_t" 2)" "" "" \
		"Turborepo runs each script through npm run"
	if [[ -s $lat ]]; then
		row cache "lookup query p50 (railyard.cache_lookup, $n_keys entries)" "µs" "$(pct "$lat" 50)" "" "" "" ""
		row cache "lookup query p99" "µs" "$(pct "$lat" 99)" "" "" "< 1000" "$(verdict "$(pct "$lat" 99)" "<" 1000)" \
			"pgbench, one key per call as the worker sends it: BEGIN, SET LOCAL synchronous_commit = off (its only write is the entry's last use), the lookup and COMMIT in one pipeline, one round trip; the local store's part is table 7"
	else
		invalid cache "lookup query p99" "pgbench failed: $(tail -n 1 "$dir/pgbench.out")"
	fi
	if [[ -s $lat1 ]]; then
		row cache "lookup statement alone p50 / p99 (one SELECT, autocommit)" "µs" \
			"$(pct "$lat1" 50) / $(pct "$lat1" 99)" "" "" "" "" \
			"the same pgbench without BEGIN, SET LOCAL and COMMIT: one round trip, the function's index probes"
	else
		invalid cache "lookup statement alone" "pgbench failed: $(tail -n 1 "$dir/pgbench1.out")"
	fi
	[[ -z $why_no_turbo ]] || meta cache note "Turborepo skipped: $why_no_turbo"
	[[ -z $why_no_turbo ]] || row cache "Turborepo" "" "" "" "" "" "" "skipped: $why_no_turbo"
	alive "$wpid" && kill -TERM "$wpid" 2>/dev/null
	drop_db "$db"
}
