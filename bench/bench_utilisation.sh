# shellcheck shell=bash
#
# 4. Utilisation of a saturated farm: 3 workers with S slots each get more
# ready work (independent `sleep D`, D from 0.5 to 2.5 s) than they can run
# in a window of W seconds, all submitted at once.  Busy slot-seconds are
# the task processes' run time inside [commit, commit + W] (start and end as
# the workers recorded them); available slot-seconds are 3 x S x W.  The
# window counts the ramp-up after the submitting COMMIT.  Saturation is
# checked, not assumed: some task must have been claimed after the window
# closed (work was still waiting all along).  Baseline: bench/spawn running
# the same commands with 3 x S parallelism for the same window.

bench_title_utilisation() {
	echo "4. Utilisation"
}

bench_utilisation() {
	local workers=3 slots=4 win=60
	if ((QUICK)); then
		win=10
	fi
	local total=$((workers * slots))
	# 1.3 x the window's capacity at 1.5 s a task on average.
	local ntasks=$((total * win * 13 / 15 + total))
	local db=bench_util dir=$TMP/work/util
	mkdir -p "$dir"
	meta utilisation params "$workers workers x $slots slots, window $win s, $ntasks ready tasks of sleep 0.5-2.5 s submitted at once; baseline spawn -j $total"
	awk -v n="$ntasks" 'BEGIN { srand(4242); for (i = 0; i < n; i++)
		printf "sleep %.1f\n", 0.5 + int(rand() * 21) / 10 }' >"$dir/cmds"

	local base
	base=$(cd "$dir" && "$SPAWN" -f "$dir/cmds" -j "$total" -w "$win" |
		sed -n 's/.*utilisation=\([0-9.]*\).*/\1/p')
	say "baseline: spawn -j $total kept ${base:-?} of its slot-time busy over $win s"

	new_db "$db"
	local pids=() names=() i
	for ((i = 1; i <= workers; i++)); do
		start_worker "$db" "util$i" --slots "$slots"
		pids+=("$LAST_PID")
		names+=("util$i")
	done
	if ! wait_for 60 agents_online "$db" "$(IFS=,; echo "${pids[*]}")" "${names[@]}"; then
		stop_workers "${pids[@]}"
		invalid utilisation "busy slot-time" "the workers did not come online within 60 s (worker logs: KEEP_TMP=1)"
		drop_db "$db"
		return
	fi
	# The same commands, in 4 pipelines of one transaction.
	awk -v per=$(((ntasks + 3) / 4)) '
		function s(x) { gsub(/\047/, "\047\047", x); return "\047" x "\047" }
		BEGIN { print "SET jit = off;"; print "BEGIN;" }
		(NR - 1) % per == 0 {
			if (NR > 1) print ";"
			p++
			printf "INSERT INTO railyard.pipelines (name, team) VALUES (\047util-%d\047, \047team%d\047) RETURNING id \\gset\n", p, p
			print "INSERT INTO railyard.tasks (pipeline_id, name, kind, command, mem_mb, timeout_s) VALUES"
			sep = ""
		}
		{ printf "%s(:id, \047t%05d\047, \047build\047, %s, 16, 600)", sep, NR, s($0); sep = ",\n" }
		END { print ";"; print "COMMIT;" }' "$dir/cmds" >"$dir/submit.sql"
	local t0 t1
	qfile "$db" "$dir/submit.sql" >/dev/null
	t0=$(now)
	t1=$(calc "$t0 + $win" %.6f)
	local ok=1
	wait_for $((win * 3 + 120)) at_least_succeeded "$db" "$ntasks" "${pids[@]}" || ok=0
	stop_workers "${pids[@]}"
	local done_n
	done_n=$(count_state "$db" succeeded)
	if ((!ok)) || [[ $done_n != "$ntasks" ]]; then
		invalid utilisation "busy slot-time" "only $done_n of $ntasks tasks succeeded (worker logs: KEEP_TMP=1)"
		drop_db "$db"
		return
	fi
	local busy late
	read -r busy late < <(q "$db" "SELECT round(sum(greatest(0, extract(epoch FROM
			least(finished_at, to_timestamp($t1)) - greatest(started_at, to_timestamp($t0)))))::numeric, 3),
		count(*) FILTER (WHERE claimed_at > to_timestamp($t1))
		FROM railyard.task_attempts" | tr '|' ' ')
	drop_db "$db"
	if ((late == 0)); then
		invalid utilisation "busy slot-time" "the farm ran out of work inside the window: not saturated"
		return
	fi
	local util base_pct=""
	util=$(calc "$busy / ($total * $win)" %.6f)
	[[ -n $base ]] && base_pct=$(calc "100 * $base" %.2f)
	say "railyard: $busy busy slot-seconds of $((total * win)); $late tasks still waited when the window closed"
	row utilisation "busy slot-time / available" "%" "$(calc "100 * $util" %.2f)" \
		"$base_pct" "$(ratio "$util" "$base" 4)" ">= 98" \
		"$(verdict "$(calc "100 * $util")" ">=" 98)" \
		"$busy of $((total * win)) slot-seconds busy; window starts at the submitting COMMIT; $late tasks were claimed after it closed (saturated throughout); baseline: spawn -j $total on the same commands"
}
