#!/usr/bin/env bash
# The worker runs what is submitted (PRODUCT.md: "railyard worker", the
# task lifecycle, deterministic execution, placement by requirements):
# pipelines run to the end, dependents wait for their upstreams, the task
# environment is fixed, requirements are respected, 500 tasks run at once,
# completions are batched and fenced, --dry-run, --stats and SIGHUP work.
# Each scenario has its own database, so nothing one leaves ready is taken
# by the workers of the next.
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes

# The agents' os and arch, which every worker adds to its labels.
host_os=$(uname -s | tr '[:upper:]' '[:lower:]')

# attempts_ok ID: every task of pipeline ID has exactly one attempt row,
# attempt 1, outcome succeeded, and the task itself says the same.
attempts_ok() {
	local bad
	bad=$(sql "SELECT t.name || ': state ' || t.state || ', attempt ' || t.attempt || ', attempts '
	              || coalesce(string_agg(h.attempt || '=' || h.outcome, ','), 'none')
	             FROM railyard.tasks t LEFT JOIN railyard.task_attempts h ON h.task_id = t.id
	            WHERE t.pipeline_id = $1
	            GROUP BY t.id
	           HAVING t.state <> 'succeeded' OR t.attempt <> 1 OR count(h.attempt) <> 1
	               OR bool_or(h.outcome <> 'succeeded' OR h.attempt <> 1)")
	[[ -z $bad ]] || fail "tasks without exactly one succeeded attempt 1 in pipeline $1: $bad"
}

product_md_pipeline_runs() {
	ry_newdb product
	local wd=$RY_WORKDIR/w-product id out
	out=$(sql "$PRODUCT_MD_SUBMISSION
COMMIT;
SELECT :id;")
	id=$out
	[[ $id =~ ^[0-9]+$ ]] || fail "the PRODUCT.md submission printed no id: $out"
	[[ $host_os == linux ]] || skip "the tasks require label linux; this host runs $host_os"

	# The commands build a checkout; stand one in where docs/operations.md
	# says each task's workspace is (workdir/pipelines/<id>/<task-id>-<name>).
	local name tid ws
	for name in build:cart test:cart; do
		tid=$(task_get "$id" "$name" id)
		ws=$wd/pipelines/$id/$tid-${name//:/_}/services/cart
		mkdir -p "$ws"
		printf 'all:\n\t@echo "compiled cart for $$RAILYARD_REVISION"\ntest:\n\t@echo "31 cart tests passed"\n' \
			>"$ws/Makefile"
	done

	start_worker product --slots 4 --workdir "$wd"
	wait_pipeline 60 "$id" succeeded
	[[ $(sql "SELECT labels @> '{linux}' FROM railyard.agents WHERE name = 'product'") == t ]] ||
		fail "the agent does not carry its os as a label: $(sql "SELECT labels FROM railyard.agents WHERE name = 'product'")"
	attempts_ok "$id"
	local tail
	tail=$(sql "SELECT h.log_tail FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id
	             WHERE t.pipeline_id = $id AND t.name = 'build:cart'")
	[[ $tail == *"compiled cart for 9f3c2e1"* ]] ||
		fail "build:cart's log_tail does not hold make's output: $tail"
	tail=$(sql "SELECT h.log_tail FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id
	             WHERE t.pipeline_id = $id AND t.name = 'test:cart'")
	[[ $tail == *"31 cart tests passed"* ]] ||
		fail "test:cart's log_tail does not hold make's output: $tail"
	# The build ran before its test, on the agent that matched {linux}.
	local order
	order=$(sql "SELECT string_agg(t.name, ' ' ORDER BY h.started_at)
	               FROM railyard.tasks t JOIN railyard.task_attempts h ON h.task_id = t.id
	              WHERE t.pipeline_id = $id AND h.agent_name = 'product'")
	[[ $order == "build:cart test:cart" ]] || fail "expected build:cart then test:cart on agent product, got: $order"
}

dependents_wait_for_upstreams() {
	ry_newdb diamond
	local wd=$RY_WORKDIR/w-diamond id
	# Each task appends "<time> <name> start" and "... end" to a shared file;
	# the time is the boot clock (/proc/uptime), which no clock adjustment moves.
	local cmd='read up _ < /proc/uptime; echo "$up $RAILYARD_TASK_NAME start" >> "$RAILYARD_PIPELINE_DIR/order"; sleep 1; read up _ < /proc/uptime; echo "$up $RAILYARD_TASK_NAME end" >> "$RAILYARD_PIPELINE_DIR/order"'
	cmd=${cmd//\'/\'\'}
	start_worker diamond --slots 4 --workdir "$wd"
	id=$(ry_submit "(name) VALUES ('diamond')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		VALUES (:id, 'a', '$cmd'), (:id, 'b', '$cmd'), (:id, 'c', '$cmd'), (:id, 'd', '$cmd');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream)
		VALUES (:id, 'a', 'b'), (:id, 'a', 'c'), (:id, 'b', 'd'), (:id, 'c', 'd');")
	wait_pipeline 60 "$id" succeeded
	attempts_ok "$id"

	local file=$wd/pipelines/$id/shared/order
	[[ -f $file ]] || fail "the tasks wrote no $file"
	cat "$file"
	before() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x + 0 < y + 0) }'; }
	# 10 ms resolution: a dependent may start in the hundredth its upstream ended.
	not_after() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x + 0 <= y + 0) }'; }
	local -A at=()
	local t name what n=0
	while read -r t name what; do
		at[$name.$what]=$t
		n=$((n + 1))
	done <"$file"
	((n == 8)) || fail "expected 8 lines (start and end of a, b, c, d) in $file, got $n"
	not_after "${at[a.end]}" "${at[b.start]}" || fail "b started before a ended"
	not_after "${at[a.end]}" "${at[c.start]}" || fail "c started before a ended"
	not_after "${at[b.end]}" "${at[d.start]}" || fail "d started before b ended"
	not_after "${at[c.end]}" "${at[d.start]}" || fail "d started before c ended"
	# b and c ran at the same time, on a worker with slots to spare.
	if ! before "${at[b.start]}" "${at[c.end]}" || ! before "${at[c.start]}" "${at[b.end]}"; then
		fail "b and c did not run in parallel: b ${at[b.start]}..${at[b.end]}, c ${at[c.start]}..${at[c.end]}"
	fi
	# The database's record agrees.
	local overlap
	overlap=$(sql "SELECT b.started_at < c.finished_at AND c.started_at < b.finished_at
	                      AND d.started_at >= greatest(b.finished_at, c.finished_at)
	                 FROM (SELECT h.* FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id
	                        WHERE t.pipeline_id = $id AND t.name = 'b') b,
	                      (SELECT h.* FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id
	                        WHERE t.pipeline_id = $id AND t.name = 'c') c,
	                      (SELECT h.* FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id
	                        WHERE t.pipeline_id = $id AND t.name = 'd') d")
	[[ $overlap == t ]] || fail "task_attempts do not show b and c overlapping and d after both"
}

task_environment_is_fixed() {
	ry_newdb env
	local wd=$RY_WORKDIR/w-env id
	local cmd='env; echo "CWD=$(pwd -P)"'
	cmd=${cmd//\'/\'\'}
	# The worker's own environment carries things a task must not see.
	RY_LEAK=1 PATH="$RY_WORKDIR/leak-bin:$PATH" TZ=America/New_York LC_ALL=C.UTF-8 \
		start_worker env --slots 2 --workdir "$wd"
	id=$(ry_submit "(name, revision) VALUES ('env', 'r42')" "
		INSERT INTO railyard.tasks (pipeline_id, name, service, command, env)
		VALUES (:id, 'env-a', 'cart', '$cmd', '{\"GREETING\": \"hello world\", \"EQ\": \"a=b\"}'),
		       (:id, 'env-b', NULL, '$cmd', '{}');")
	wait_pipeline 60 "$id" succeeded

	local name tid att log sde_a=""
	for name in env-a env-b; do
		read -r tid att <<<"$(task_get "$id" "$name" "id, attempt" | tr '|' ' ')"
		log=$(sql "SELECT log_path FROM railyard.task_attempts WHERE task_id = $tid")
		[[ -f $log ]] || fail "no log file for $name: '$log'"
		echo "--- $name ($log):"
		cat "$log"
		val() { sed -n "s/^$1=//p" "$log"; }
		has() { grep -q "^$1=" "$log"; }
		[[ $(val TZ) == UTC ]] || fail "$name: TZ is '$(val TZ)', not UTC"
		[[ $(val LC_ALL) == C ]] || fail "$name: LC_ALL is '$(val LC_ALL)', not C"
		[[ $(val SOURCE_DATE_EPOCH) =~ ^[0-9]+$ ]] || fail "$name: SOURCE_DATE_EPOCH is '$(val SOURCE_DATE_EPOCH)'"
		# The pipeline's creation time as the database recorded it, not this
		# test's clock (which may be adjusted while the test runs).
		[[ $(val SOURCE_DATE_EPOCH) == "$(sql "SELECT extract(epoch FROM created_at)::bigint
		                                        FROM railyard.pipelines WHERE id = $id")" ]] ||
			fail "$name: SOURCE_DATE_EPOCH $(val SOURCE_DATE_EPOCH) is not the pipeline's created_at"
		# Every task of a pipeline builds as of the same moment.
		[[ -z $sde_a || $sde_a == "$(val SOURCE_DATE_EPOCH)" ]] ||
			fail "SOURCE_DATE_EPOCH differs between tasks of one pipeline: $sde_a, $(val SOURCE_DATE_EPOCH)"
		sde_a=$(val SOURCE_DATE_EPOCH)
		local path
		path=$(val PATH)
		[[ $path != *leak-bin* ]] || fail "$name: the worker's PATH leaked into the task: $path"
		[[ :$path: == *:/usr/bin:* && :$path: == *:/bin:* ]] || fail "$name: PATH is not a system path: $path"
		[[ $(val RAILYARD_TASK_ID) == "$tid" ]] || fail "$name: RAILYARD_TASK_ID is '$(val RAILYARD_TASK_ID)', not $tid"
		[[ $(val RAILYARD_PIPELINE_ID) == "$id" ]] || fail "$name: RAILYARD_PIPELINE_ID is '$(val RAILYARD_PIPELINE_ID)'"
		[[ $(val RAILYARD_ATTEMPT) == "$att" && $att == 1 ]] || fail "$name: RAILYARD_ATTEMPT is '$(val RAILYARD_ATTEMPT)'"
		local ws
		ws=$(val RAILYARD_WORKSPACE)
		[[ -n $ws && -d $ws ]] || fail "$name: RAILYARD_WORKSPACE '$ws' is not a directory"
		[[ $ws == "$wd"/* ]] || fail "$name: the workspace $ws is outside the workdir $wd"
		[[ $(val CWD) == "$(cd "$ws" && pwd -P)" ]] || fail "$name: cwd is '$(val CWD)', not the workspace $ws"
		! has RY_LEAK || fail "$name: RY_LEAK from the worker's environment is visible to the task"
		! has RAILYARD_DB || fail "$name: the worker's RAILYARD_DB is visible to the task"
		! has RY_WORKDIR || fail "$name: the test harness's RY_WORKDIR is visible to the task"
	done
	# The task's own env, applied to env-a only.
	read -r tid <<<"$(task_get "$id" env-a id)"
	log=$(sql "SELECT log_path FROM railyard.task_attempts WHERE task_id = $tid")
	grep -qx 'GREETING=hello world' "$log" || fail "env-a: its env GREETING is not 'hello world'"
	grep -qx 'EQ=a=b' "$log" || fail "env-a: its env EQ is not 'a=b'"
	read -r tid <<<"$(task_get "$id" env-b id)"
	log=$(sql "SELECT log_path FROM railyard.task_attempts WHERE task_id = $tid")
	! grep -q '^GREETING=' "$log" || fail "env-b sees env-a's env"
}

requirements_are_respected() {
	ry_newdb placement
	local wd=$RY_WORKDIR/w-placement id
	start_worker plain --slots 4 --workdir "$wd"
	wait_agent 30 plain
	id=$(ry_submit "(name) VALUES ('placement')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, requires, cpu)
		VALUES (:id, 'train', 'echo trained', '{gpu}', 1),
		       (:id, 'huge', 'echo huge', '{}', 8),
		       (:id, 'plain', 'echo plain', '{}', 1);")
	# The plain task, claimed after the others were ready, shows the worker
	# has looked at them and passed them over.
	wait_for 30 sql_eq succeeded "SELECT state FROM railyard.tasks WHERE pipeline_id = $id AND name = 'plain'"
	[[ $(task_get "$id" train "state || ' ' || attempt") == "ready 0" ]] ||
		fail "the gpu task was taken by a worker without label gpu: $(task_get "$id" train 'state, attempt')"
	[[ $(task_get "$id" huge "state || ' ' || attempt") == "ready 0" ]] ||
		fail "the 8-cpu task was taken by a worker offering 4 cpu: $(task_get "$id" huge 'state, attempt')"
	local why
	why=$(sql "SELECT why FROM railyard.task_waits WHERE pipeline_id = $id AND name = 'train'")
	[[ $why == "no online agent has label gpu, and no registered agent has it: none could ever run it" ]] || fail "task_waits says why the gpu task waits: '$why'"

	start_worker gpu-box --slots 1 --labels gpu --workdir "$wd"
	wait_for 30 sql_eq succeeded "SELECT state FROM railyard.tasks WHERE pipeline_id = $id AND name = 'train'"
	[[ $(sql "SELECT agent_name FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id
	           WHERE t.pipeline_id = $id AND t.name = 'train'") == gpu-box ]] ||
		fail "the gpu task did not run on gpu-box"
	# Neither worker offers 8 cpu: the big task is still waiting.
	[[ $(task_get "$id" huge state) == ready ]] || fail "the 8-cpu task left ready: $(task_get "$id" huge state)"
	start_worker big --slots 1 --cpus 8 --workdir "$wd"
	wait_pipeline 30 "$id" succeeded
	[[ $(sql "SELECT agent_name FROM railyard.task_attempts h JOIN railyard.tasks t ON t.id = h.task_id
	           WHERE t.pipeline_id = $id AND t.name = 'huge'") == big ]] ||
		fail "the 8-cpu task did not run on the worker offering 8 cpu"
}

five_hundred_tasks_at_once() {
	ry_newdb load
	local wd=$RY_WORKDIR/w-load id i
	for i in 1 2 3 4; do
		start_worker "load$i" --slots 125 --workdir "$wd" --stats "$RY_WORKDIR/load$i.stats"
	done
	for i in 1 2 3 4; do
		wait_agent 30 "load$i"
	done
	id=$(ry_submit "(name) VALUES ('load')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, mem_mb)
		SELECT :id, 'sleep-' || g, 'sleep 15', 16 FROM generate_series(1, 500) g;")

	# Poll the count of running tasks; all 500 must be running at once.
	local n peak=0 deadline=$(($(ry__now_us) + 40000000))
	while :; do
		n=$(sql "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $id AND state = 'running'")
		((n > peak)) && peak=$n
		((peak == 500)) && break
		if (($(ry__now_us) > deadline)); then
			show_pipeline "$id" >&2
			fail "at most $peak of 500 tasks were running at once within 40 s"
		fi
		ry_sleep 0.1
	done
	echo "peak running: $peak"
	wait_pipeline 60 "$id" succeeded
	attempts_ok "$id"
	# Every process was alive at once: the last one started before the first ended.
	[[ $(sql "SELECT max(started_at) < min(finished_at) FROM railyard.task_attempts
	           WHERE pipeline_id = $id") == t ]] ||
		fail "the 500 processes did not all run at the same time: $(sql "SELECT min(started_at), max(started_at), min(finished_at) FROM railyard.task_attempts WHERE pipeline_id = $id")"
	local per
	per=$(sql "SELECT agent_name || '=' || count(*) FROM railyard.task_attempts
	            WHERE pipeline_id = $id GROUP BY agent_name ORDER BY agent_name" | tr '\n' ' ')
	echo "tasks per agent: $per"
	[[ $per =~ ^load1=([0-9]+)\ load2=([0-9]+)\ load3=([0-9]+)\ load4=([0-9]+)\ $ ]] ||
		fail "not every agent ran some tasks: $per"
	for i in 1 2 3 4; do
		((BASH_REMATCH[i] >= 1 && BASH_REMATCH[i] <= 125)) ||
			fail "agent load$i ran ${BASH_REMATCH[i]} tasks with 125 slots"
	done
	# Each worker saw as many processes at once as it ran tasks.
	stop_workers
	local total=0 p
	for i in 1 2 3 4; do
		[[ -s $RY_WORKDIR/load$i.stats ]] || fail "worker load$i wrote no --stats file"
		p=$(sql -v j="$(cat "$RY_WORKDIR/load$i.stats")" "SELECT :'j'::jsonb->>'peak_running'")
		total=$((total + p))
	done
	((total == 500)) || fail "the workers' peak_running adds up to $total, not 500"
}

completions_are_batched_and_fenced() {
	ry_newdb batch
	local wd=$RY_WORKDIR/w-batch id i
	id=$(ry_submit "(name) VALUES ('batch')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, mem_mb)
		SELECT :id, 'noop-' || g, 'true', 16 FROM generate_series(1, 300) g;")
	for i in 1 2; do
		start_worker "batch$i" --slots 50 --workdir "$wd" --exit-when-idle --stats "$RY_WORKDIR/batch$i.stats"
	done
	wait_pipeline 90 "$id" succeeded
	# Nothing completed twice: one history row per task, all of attempt 1.
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $id") == 300 ]] ||
		fail "expected 300 task_attempts rows for 300 tasks, got $(sql "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $id")"
	attempts_ok "$id"
	for i in 1 2; do
		wait_for 30 ry_dead "$(worker_pid "batch$i")"
	done
	local reported=0 jobs=0 refused=0 j
	for i in 1 2; do
		[[ -s $RY_WORKDIR/batch$i.stats ]] || fail "worker batch$i wrote no --stats file"
		j=$(cat "$RY_WORKDIR/batch$i.stats")
		echo "batch$i: $j"
		reported=$((reported + $(sql -v j="$j" "SELECT :'j'::jsonb->>'tasks_reported'")))
		jobs=$((jobs + $(sql -v j="$j" "SELECT :'j'::jsonb->>'completion_jobs'")))
		refused=$((refused + $(sql -v j="$j" "SELECT :'j'::jsonb->>'refused'")))
	done
	((reported == 300)) || fail "the workers reported $reported results for 300 tasks"
	((refused == 0)) || fail "$refused results were refused though no lease changed hands"
	# Batched: results finishing together went to the database together.
	((jobs < reported)) || fail "$reported results took $jobs completion round trips: not batched"
}

dry_run_executes_nothing() {
	ry_newdb dryrun
	local marker=$RY_WORKDIR/dry-run.marker id
	rm -f "$marker"
	id=$(ry_submit "(name) VALUES ('dry')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		VALUES (:id, 'touch', 'touch $marker'), (:id, 'after', 'touch $marker.after');
		INSERT INTO railyard.edges (pipeline_id, upstream, downstream) VALUES (:id, 'touch', 'after');")
	start_worker dry --dry-run --exit-when-idle --workdir "$RY_WORKDIR/w-dry"
	wait_pipeline 60 "$id" succeeded
	attempts_ok "$id"
	[[ ! -e $marker && ! -e $marker.after ]] || fail "--dry-run executed a task: the marker exists"
	local tails
	tails=$(sql "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $id AND log_tail ILIKE '%dry run%'")
	[[ $tails == 2 ]] || fail "expected both log_tails to say 'dry run', $tails do"
	local pid rc=0
	pid=$(worker_pid dry)
	wait_for 30 ry_dead "$pid"
	wait "$pid" || rc=$?
	((rc == 0)) || fail "the --exit-when-idle --dry-run worker exited with status $rc"
}

stats_file_is_written() {
	ry_newdb stats
	local f=$RY_WORKDIR/stats.json id
	rm -f "$f"
	id=$(ry_submit "(name) VALUES ('stats')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		SELECT :id, 's' || g, 'true' FROM generate_series(1, 5) g;")
	start_worker stats --exit-when-idle --workdir "$RY_WORKDIR/w-stats" --stats "$f"
	wait_pipeline 60 "$id" succeeded
	wait_for 30 ry_dead "$(worker_pid stats)"
	[[ -s $f ]] || fail "the worker wrote no $f"
	local j row
	j=$(cat "$f")
	echo "$j"
	row=$(sql -v j="$j" "SELECT (:'j'::jsonb->>'claims')::int, (:'j'::jsonb->>'claim_ms_p99')::float8 >= 0,
	                            (:'j'::jsonb->>'tasks_reported')::int") ||
		fail "$f is not JSON with numeric claims, claim_ms_p99 and tasks_reported: $j"
	local claims p99 reported
	IFS='|' read -r claims p99 reported <<<"$row"
	((claims >= 1)) || fail "stats: claims is $claims after claiming 5 tasks"
	[[ $p99 == t ]] || fail "stats: claim_ms_p99 is not a non-negative number: $j"
	((reported == 5)) || fail "stats: tasks_reported is $reported, expected 5"
}

sighup_reloads_config() {
	ry_newdb sighup
	local conf=$RY_WORKDIR/hup.conf id pid
	printf '# test config\nlabels = a\nslots = 2\n' >"$conf"
	start_worker hup --config "$conf" --workdir "$RY_WORKDIR/w-hup"
	pid=$RY_WORKER_PID
	wait_agent 30 hup
	[[ $(sql "SELECT 'a' = ANY (labels) AND NOT 'b' = ANY (labels) FROM railyard.agents WHERE name = 'hup'") == t ]] ||
		fail "the agent's labels are not a (and os/arch): $(sql "SELECT labels FROM railyard.agents WHERE name = 'hup'")"
	id=$(ry_submit "(name) VALUES ('needs-b')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, requires)
		VALUES (:id, 'on-b', 'echo on b', '{b}'), (:id, 'on-a', 'echo on a', '{a}');")
	# on-a running shows the worker has seen on-b and passed it over.
	wait_for 30 sql_eq succeeded "SELECT state FROM railyard.tasks WHERE pipeline_id = $id AND name = 'on-a'"
	[[ $(task_get "$id" on-b state) == ready ]] || fail "a task requiring b ran before the reload"

	# A longer heartbeat comes with a longer lease: both must apply, and
	# the database must know the new lease at once.
	printf '# test config\nlabels = a,b\nslots = 2\nheartbeat_s = 3\nlease_s = 40\n' >"$conf"
	kill -HUP "$pid"
	wait_for 30 sql_eq t "SELECT labels @> '{a,b}' FROM railyard.agents WHERE name = 'hup'"
	wait_for 30 sql_eq t "SELECT lease_s = 40 AND lease_until > now() + interval '30 seconds'
	                        FROM railyard.agents WHERE name = 'hup'"
	wait_pipeline 30 "$id" succeeded
	ry_alive "$pid" || fail "the worker died on SIGHUP"
	[[ $(sql "SELECT count(*) FROM railyard.agents WHERE name = 'hup' AND pid = $pid AND state = 'online'") == 1 ]] ||
		fail "the agent is not the same online process after SIGHUP"
}

binary_output_is_recorded() {
	ry_newdb binary
	local id tail
	# Output that is not UTF-8 must not make the result unstorable.
	id=$(ry_submit "(name) VALUES ('binary')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command)
		VALUES (:id, 'blob', 'printf \"\\\\377\\\\376marker\\\\n\"; head -c 4000 /dev/urandom');")
	start_worker binary --exit-when-idle --workdir "$RY_WORKDIR/w-binary"
	wait_pipeline 60 "$id" succeeded
	attempts_ok "$id"
	tail=$(sql "SELECT length(log_tail) > 0 FROM railyard.task_attempts WHERE pipeline_id = $id")
	[[ $tail == t ]] || fail "the binary task's log tail was not stored"
}

# only_if_changed '(x+x+)+y|z' on a path that holds a z after many x's:
# the first alternative backtracks until PCRE2's match limit stops it.
# That is an error naming the pattern, not "no path matches".
match_limit_is_an_error() {
	ry_newdb matchlimit
	local id path
	path="src/$(printf 'x%.0s' {1..60})/z"
	start_worker matchlimit --workdir "$RY_WORKDIR/w-matchlimit"
	id=$(ry_submit "(name, changed_paths) VALUES ('matchlimit', ARRAY['$path'])" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, only_if_changed)
		VALUES (:id, 'guarded', 'echo ran', '(x+x+)+y|z');")
	wait_pipeline 30 "$id" failed
	local got
	got=$(task_get "$id" guarded "state || ': ' || reason")
	[[ $got == "failed: only_if_changed pattern '(x+x+)+y|z' failed on changed path '$path': match limit exceeded" ]] ||
		fail "expected the task failed naming the pattern, path and limit, got: $got"
}

# 3,000 changed paths against a costly pattern (each match takes a few ms,
# under the limit) while another task runs: the worker keeps heartbeating,
# so no reaper takes its tasks and nothing is lost.
costly_matching_keeps_the_lease() {
	ry_newdb costly
	local wd=$RY_WORKDIR/w-costly conf=$RY_WORKDIR/costly.conf id
	printf 'match_limit = 10000000\n' >"$conf"
	start_worker costly --labels m --heartbeat 1 --lease 3 --config "$conf" --workdir "$wd"
	# Another worker's reaper watches the first one's lease.
	start_worker reaper --heartbeat 1 --lease 3 --workdir "$wd"
	wait_agent 30 costly
	wait_agent 30 reaper
	id=$(ry_submit "(name, changed_paths) VALUES ('costly',
	        ARRAY(SELECT 'dir' || g || '/' || repeat('x', 17) || '.y' FROM generate_series(1, 3000) g))" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, requires, only_if_changed)
		VALUES (:id, 'long', 'sleep 5', '{m}', NULL),
		       (:id, 'guarded', 'echo ran', '{m}', '(x+x+)+y');")
	wait_pipeline 120 "$id" succeeded
	[[ $(task_get "$id" guarded "state || ' ' || reason") == "skipped unchanged: no changed path matches only_if_changed" ]] ||
		fail "the costly match did not end as unchanged: $(task_get "$id" guarded 'state, reason')"
	[[ $(sql "SELECT count(*) FROM railyard.task_attempts WHERE pipeline_id = $id AND outcome = 'lost'") == 0 ]] ||
		fail "a task was lost while the worker matched: $(sql "SELECT task_id, attempt, agent_name, outcome, reason FROM railyard.task_attempts WHERE pipeline_id = $id")"
	[[ $(task_get "$id" long "state || ' ' || attempt") == "succeeded 1" ]] ||
		fail "the other task did not succeed at attempt 1: $(task_get "$id" long 'state, attempt')"
	[[ $(sql "SELECT count(*) FROM railyard.audit_log WHERE object = 'agent' AND event IN ('offline', 'lost')
	           AND object_id = (SELECT id FROM railyard.agents WHERE name = 'costly')") == 0 ]] ||
		fail "the matching worker was declared offline"
}

# Finished pipelines' workspaces and logs go after retention_s; those of a
# pipeline still running stay, however old.
retention_by_age() {
	ry_newdb retention
	local wd=$RY_WORKDIR/w-retention conf=$RY_WORKDIR/retention.conf a b
	printf 'retention_s = 2\nretention_min_s = 0\nretention_check_s = 1\n' >"$conf"
	start_worker retention --slots 2 --heartbeat 1 --lease 3 --config "$conf" --workdir "$wd"
	b=$(ry_submit "(name) VALUES ('still-running')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'long', 'sleep 60');")
	a=$(ry_submit "(name) VALUES ('done')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'quick', 'echo quick > out');")
	wait_pipeline 30 "$a" succeeded
	[[ -d $wd/pipelines/$a && -d $wd/logs/$a ]] || fail "pipeline $a left no workspace or log to remove"
	wait_for 30 sql_eq running "SELECT state FROM railyard.pipelines WHERE id = $b"
	gone() { [[ ! -e $wd/pipelines/$a && ! -e $wd/logs/$a ]]; }
	wait_for 30 gone
	[[ -d $wd/pipelines/$b && -d $wd/logs/$b ]] || fail "the running pipeline's workspace or log was removed"
	grep -q "retention: removing the workspaces and logs of pipeline $a" "$RY_WORKDIR/worker-retention.log" ||
		fail "the worker did not log the removal"
	sql "SELECT railyard.cancel_pipeline($b)" >/dev/null
}

# Over retention_mb, the oldest finished pipeline goes first.
retention_by_size() {
	ry_newdb retsize
	local wd=$RY_WORKDIR/w-retsize conf=$RY_WORKDIR/retsize.conf p1 p2
	printf 'retention_s = 86400\nretention_min_s = 0\nretention_mb = 3\nretention_check_s = 1\n' >"$conf"
	start_worker retsize --config "$conf" --workdir "$wd"
	p1=$(ry_submit "(name) VALUES ('older')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'w', 'head -c 2097152 /dev/urandom > blob');")
	wait_pipeline 30 "$p1" succeeded
	p2=$(ry_submit "(name) VALUES ('newer')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command) VALUES (:id, 'w', 'head -c 2097152 /dev/urandom > blob');")
	wait_pipeline 30 "$p2" succeeded
	wait_for 30 test ! -e "$wd/pipelines/$p1"
	[[ -d $wd/pipelines/$p2 ]] || fail "the newer pipeline was removed too, though 2 MB fit under 3 MB"
}

run_scenario "the PRODUCT.md SQL pipeline runs to succeeded on one worker" product_md_pipeline_runs
run_scenario "dependents wait for their upstreams; siblings run in parallel" dependents_wait_for_upstreams
run_scenario "the task environment is fixed and minimal; cwd is the workspace" task_environment_is_fixed
run_scenario "requirements are respected: labels and cpu" requirements_are_respected
run_scenario "500 sleep tasks run at once across 4 workers and succeed" five_hundred_tasks_at_once
run_scenario "completions are batched and fenced: one attempt row per task" completions_are_batched_and_fenced
run_scenario "--dry-run claims and completes without executing" dry_run_executes_nothing
run_scenario "--stats FILE writes claims, claim_ms_p99 and tasks_reported as JSON" stats_file_is_written
run_scenario "SIGHUP reloads the config file: new labels take effect" sighup_reloads_config
run_scenario "a task that prints binary (not UTF-8) output still has its result recorded" binary_output_is_recorded
run_scenario "only_if_changed hitting PCRE2's match limit fails the task naming the pattern" match_limit_is_an_error
run_scenario "3,000 changed paths against a costly pattern: the worker keeps its lease, nothing is lost" \
	costly_matching_keeps_the_lease
run_scenario "retention: finished pipelines' workspaces and logs go after retention_s, running ones stay" \
	retention_by_age
run_scenario "retention: over retention_mb the oldest finished pipeline goes first" retention_by_size
