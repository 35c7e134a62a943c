# shellcheck shell=bash
#
# 7. Dependency detection and planning (issue 10): a generated monorepo of
# 1,000 services (300 with QUICK=1) in six ecosystems with a compose file
# (bench/gen_monorepo.sh; its true graph is known by construction):
#   - detection alone: `railyard deps scan --dry-run` (no database);
#   - cold: the first stored scan, every row inserted; warm: a rescan with
#     nothing changed (the OS file cache is warm for both: dropping it
#     would need root and disturb the machine; the generator has just
#     written the files);
#   - precision and recall of the stored graph against the true one, per
#     edge kind;
#   - `railyard plan DIR --changed FILE` for a one-file change in a leaf
#     service of the committed repository (the stored scan is current, so
#     plan loads it instead of scanning), wall time to a submitted pipeline
#     (median of 7), against `railyard submit` of the same pipeline (the
#     spec plan --json prints);
#   - the same for a change to a library many services build on.

bench_title_deps() {
	echo "8. Dependency detection and planning"
}

# dep_ms CMD...: runs CMD (output discarded) and prints its wall time in ms.
dep_ms() {
	local t0 t1
	t0=$(now_us)
	"$@" >/dev/null 2>&1 || {
		echo "failed: $*" >&2
		return 1
	}
	t1=$(now_us)
	calc "($t1 - $t0) / 1000" %.1f
}

# dep_median N CMD...: the median wall time of N runs, in ms.
dep_median() {
	local n=$1 i v all=()
	shift
	for ((i = 0; i < n; i++)); do
		v=$(dep_ms "$@") || return 1
		all+=("$v")
	done
	median "${all[@]}"
}

# dep_pr KIND: "precision recall" of the stored graph's KIND edges.
dep_pr() {
	local got=$TMP/deps-got.$1 want=$TMP/deps-want.$1 tp g w
	q bench_deps "SELECT from_service || ' ' || to_service || ' ' || kind FROM railyard.service_graph
		WHERE repository = 'mono' AND kind = '$1'" | LC_ALL=C sort >"$got"
	awk -v k="$1" '$3 == k' "$TMP/mono.truth" | LC_ALL=C sort >"$want"
	tp=$(LC_ALL=C comm -12 "$got" "$want" | wc -l)
	g=$(wc -l <"$got")
	w=$(wc -l <"$want")
	echo "$(calc "$g ? $tp / $g : 0" %.4f) $(calc "$w ? $tp / $w : 0" %.4f) $tp $g $w"
}

bench_deps() {
	local n=1000 runs=7
	((QUICK)) && n=300 runs=3
	local repo=$TMP/mono db=bench_deps v
	meta deps params "$n services (bench/gen_monorepo.sh, seed 42), median of $runs runs where timed"
	say "generating a monorepo of $n services"
	# a git checkout, as CI has one: plan then reuses the stored scan while
	# no manifest changed since its commit
	if ! { bash "$ROOT/bench/gen_monorepo.sh" "$n" "$repo" "$TMP/mono.truth" 42 &&
		git -C "$repo" init -q -b main && git -C "$repo" add -A &&
		git -C "$repo" -c user.email=bench@example.com -c user.name=bench commit -q -m mono; } \
		>"$TMP/gen.log" 2>&1; then
		invalid deps "generation" "$(tail -n 3 "$TMP/gen.log")"
		return
	fi
	new_db "$db"
	local conn
	conn=$(conninfo "$db")

	v=$(dep_median "$runs" "$RY" deps scan "$repo" --dry-run)
	row deps "detection alone (deps scan --dry-run)" ms "$v" "" "" "" "" \
		"$(find "$repo" -type f | wc -l) files, $(wc -l <"$TMP/mono.truth") true edges"
	v=$(RAILYARD_DB=$conn dep_ms "$RY" deps scan "$repo" --repo mono)
	row deps "scan, cold (first stored scan)" ms "$v" "" "" "" ""
	v=$(RAILYARD_DB=$conn dep_median "$runs" "$RY" deps scan "$repo" --repo mono)
	row deps "scan, warm (rescan, nothing changed)" ms "$v" "" "" "< 2000" "$(verdict "$v" "<" 2000)"

	local k p r tp g w
	for k in build test runtime; do
		read -r p r tp g w <<<"$(dep_pr "$k")"
		row deps "precision, $k edges" "" "$p" "" "" ">= 0.95" "$(verdict "$p" ">=" 0.95)" \
			"$tp of $g detected are true"
		row deps "recall, $k edges" "" "$r" "" "" ">= 0.90" "$(verdict "$r" ">=" 0.90)" \
			"$tp of $w true were detected"
	done

	# a leaf: the last service nothing depends on; a library: the most depended-on
	local leaf lib
	leaf=$(q "$db" "SELECT s.root FROM railyard.services s WHERE s.repository = 'mono' AND s.root LIKE 'go/%'
		AND NOT EXISTS (SELECT 1 FROM railyard.service_graph g WHERE g.repository = 'mono' AND g.to_service = s.name)
		ORDER BY s.name DESC LIMIT 1")
	lib=$(q "$db" "SELECT s.root FROM railyard.services s JOIN railyard.service_graph g
		ON g.repository = s.repository AND g.to_service = s.name AND g.kind = 'build'
		WHERE s.repository = 'mono' AND s.root LIKE 'go/%' GROUP BY s.root ORDER BY count(*) DESC, s.root LIMIT 1")
	local plan_leaf submit_leaf plan_lib tasks
	RAILYARD_DB=$conn "$RY" plan "$repo" --repo mono --dry-run --json --changed "$leaf/src/file0.txt" \
		>"$TMP/leaf.json" 2>/dev/null
	plan_leaf=$(RAILYARD_DB=$conn dep_median "$runs" "$RY" plan "$repo" --repo mono --changed "$leaf/src/file0.txt")
	submit_leaf=$(RAILYARD_DB=$conn dep_median "$runs" "$RY" submit "$TMP/leaf.json")
	tasks=$(grep -c '"command"' "$TMP/leaf.json")
	row deps "plan, one-file change to a submitted pipeline" ms "$plan_leaf" "$submit_leaf" \
		"$(ratio "$plan_leaf" "$submit_leaf" 1)" "< 100" "$(verdict "$plan_leaf" "<" 100)" \
		"$leaf: $tasks tasks; baseline: railyard submit of the same pipeline"
	RAILYARD_DB=$conn "$RY" plan "$repo" --repo mono --dry-run --json --changed "$lib/src/file0.txt" \
		>"$TMP/lib.json" 2>/dev/null
	plan_lib=$(RAILYARD_DB=$conn dep_median 3 "$RY" plan "$repo" --repo mono --changed "$lib/src/file0.txt")
	row deps "plan, a library's change to a submitted pipeline" ms "$plan_lib" "" "" "" "" \
		"$lib: $(grep -c '"command"' "$TMP/lib.json") tasks"
	drop_db "$db"
}
