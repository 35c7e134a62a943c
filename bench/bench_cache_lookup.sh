# shellcheck shell=bash
#
# 7. Cache lookup and task trees (pkg/cache, pkg/store, pkg/source).
# Lookup: bench_cache_lookup computes a task's key from a realistic
# component set and HEADs its record in a local store of B records, L times
# at random, synchronously and through the event-loop API; baseline in the
# same run: a bare stat() of the same file.  Goal: p99 < 1 ms.
# Trees: a generated git repository of 1,000 files (50 directories of 20,
# 0.2-4 KB each); per task tree, median and p90 over R runs of: railyard
# (pkg/source: mirror already holds the commit, copy of the host's
# snapshot), `git worktree add --detach`, `git archive | tar -x`, and a
# hard-link farm of the snapshot (`cp -al`, unsafe: tasks would share
# inodes; shown for scale).  Goal: a few tens of milliseconds.

bench_title_cache_lookup() {
	echo "7. Cache lookup and task trees"
}

# cl_time_ms CMD...: milliseconds CMD took (its output discarded).
cl_time_ms() {
	local a b
	a=$(now_us)
	"$@" >/dev/null 2>&1
	b=$(now_us)
	calc "($b - $a) / 1000" %.2f
}

cl_get() {
	awk -v k="$2" '$1 == k { print $2 }' "$1"
}

bench_cache_lookup() {
	local blobs=10000 lookups=20000 runs=20 bin=$BUILD/bench/bench_cache_lookup
	if ((QUICK)); then
		blobs=2000 lookups=5000 runs=8
	fi
	local dir=$TMP/cache_lookup out=$TMP/cache_lookup.out
	mkdir -p "$dir"
	meta cache_lookup params "$blobs records in a local store, $lookups random lookups; trees of a 1,000-file git repository, $runs runs each"
	if [[ ! -x $bin ]]; then
		invalid cache_lookup "lookup p99" "$bin is missing (make bench builds it)"
		return
	fi
	say "lookups: $lookups over $blobs records"
	if ! "$bin" lookup "$dir/store" "$blobs" "$lookups" >"$out" 2>"$out.err"; then
		invalid cache_lookup "lookup p99" "bench_cache_lookup failed: $(tail -n 1 "$out.err")"
	else
		local b50 b99 l50 l99 a50 a99
		b50=$(cl_get "$out" stat_us_p50) b99=$(cl_get "$out" stat_us_p99)
		l50=$(cl_get "$out" lookup_us_p50) l99=$(cl_get "$out" lookup_us_p99)
		a50=$(cl_get "$out" async_lookup_us_p50) a99=$(cl_get "$out" async_lookup_us_p99)
		row cache_lookup "lookup p50 (key + local HEAD)" "µs" "$l50" "$b50" "$(ratio "$l50" "$b50" 1)" "" ""
		row cache_lookup "lookup p99 (key + local HEAD)" "µs" "$l99" "$b99" "$(ratio "$l99" "$b99" 1)" \
			"< 1000" "$(verdict "$l99" "<" 1000)" "baseline: stat() of the same file, path precomputed"
		row cache_lookup "lookup p99 on the event loop" "µs" "$a99" "$b99" "$(ratio "$a99" "$b99" 1)" \
			"< 1000" "$(verdict "$a99" "<" 1000)" "ry_store_start + one loop turn; p50 $a50 µs"
		row cache_lookup "key computation p99" "µs" "$(cl_get "$out" key_us_p99)" "" "" "" ""
	fi

	# A 1,000-file repository and its mirror.
	local repo=$dir/repo
	say "generating a 1,000-file repository"
	git init -q "$repo"
	local d f
	for ((d = 1; d <= 50; d++)); do
		mkdir -p "$repo/svc$d/src"
		for ((f = 1; f <= 20; f++)); do
			head -c $((200 + (d * 131 + f * 977) % 3800)) /dev/urandom | base64 >"$repo/svc$d/src/f$f.txt"
		done
	done
	git -C "$repo" add -A
	git -C "$repo" -c user.email=b@b -c user.name=bench commit -qm init
	local commit
	commit=$(git -C "$repo" rev-parse HEAD)
	mkdir -p "$dir/trees"
	"$bin" checkout "$dir/state" "$repo" "$runs" "$dir/trees" >"$out" 2>"$out.err" || {
		invalid cache_lookup "task tree" "pkg/source checkout failed: $(tail -n 1 "$out.err")"
		return
	}
	local mirror snap
	mirror=$(ls -d "$dir"/state/mirrors/*.git)
	snap=$dir/state/snapshots/$commit
	local wt=() ar=() ln=() i
	for ((i = 0; i < runs; i++)); do
		wt+=("$(cl_time_ms git -C "$mirror" worktree add --detach "$dir/wt$i" "$commit")")
		mkdir -p "$dir/ar$i"
		ar+=("$(cl_time_ms bash -c "git -C '$mirror' archive '$commit' | tar -x -C '$dir/ar$i'")")
		ln+=("$(cl_time_ms cp -al "$snap" "$dir/ln$i")")
	done
	local r50 r90
	r50=$(cl_get "$out" checkout_ms_p50)
	r90=$(awk '$1 == "checkout_ms_p99" { print $2 }' "$out")
	local wt50 ar50 ln50
	wt50=$(median "${wt[@]}") ar50=$(median "${ar[@]}") ln50=$(median "${ln[@]}")
	row cache_lookup "task tree, 1,000 files: railyard (snapshot copy), median" "ms" "$r50" "$wt50" \
		"$(ratio "$r50" "$wt50" 2)" "tens of ms" "" "baseline: git worktree add --detach; railyard's slowest of $runs: $r90 ms; first tree of a commit (makes the snapshot): $(cl_get "$out" checkout_first_ms) ms"
	row cache_lookup "task tree: git archive | tar -x, median" "ms" "$ar50" "$wt50" "$(ratio "$ar50" "$wt50" 2)" "" ""
	row cache_lookup "task tree: hard links (cp -al), median" "ms" "$ln50" "$wt50" "$(ratio "$ln50" "$wt50" 2)" "" "" \
		"not used: tasks would share inodes, one task's write would change the others' trees"
}
