#!/usr/bin/env bash
#
# bench/gen_cache_repo.sh N COMMITS DIR [SEED]
#
# A git monorepo for the build-cache benchmark (bench/bench_cache.sh): a
# shared library `core`, four libraries lib1..lib4 built on it, and N
# services, each built on one of lib1..lib4, every third also on core
# directly, every tenth also on the service before it (a long tail of
# leaves).  Every package is pkgs/NAME with src/a.txt, src/b.txt, a README
# and a package.json whose `build` script is the package's build command,
# the same shell for railyard and Turborepo:
#   mkdir -p out && { cat src/*.txt; cat ../DEP/out/build.out ...; } |
#     sha256sum > out/build.out && sleep ${BENCH_SLEEP:-0.05}
# (its output depends on its sources and its dependencies' outputs only).
# The root is an npm workspace with turbo.json (build dependsOn ^build,
# outputs out/**).  After the initial commit, COMMITS commits each touch
# 1-3 packages: mostly a service's source; every fifth a library's source
# (many dependents); every seventh a library's README only (it rebuilds to
# identical bytes: early cutoff).  Writes DIR/.bench/packages (name, deps
# in build order), DIR/.bench/scripts (name TAB build script) and
# DIR/.bench/commits (one commit id per line, initial first).  Same N, COMMITS and SEED, same history (commit ids aside).

set -euo pipefail
(($# >= 3)) || {
	echo "usage: bench/gen_cache_repo.sh N COMMITS DIR [SEED]" >&2
	exit 2
}
n=$1 commits=$2 dir=$3 seed=${4:-7}
[[ $n =~ ^[1-9][0-9]*$ && $commits =~ ^[0-9]+$ ]] || {
	echo "error: N and COMMITS must be positive integers" >&2
	exit 2
}
mkdir -p "$dir/pkgs" "$dir/.bench"
RANDOM=$seed

# deps NAME: the package's build dependencies.
declare -A DEPS=()
names=(core lib1 lib2 lib3 lib4)
DEPS[core]=""
for l in lib1 lib2 lib3 lib4; do DEPS[$l]="core"; done
for ((i = 0; i < n; i++)); do
	s=$(printf 's%03d' "$i")
	d="lib$((1 + i % 4))"
	((i % 3 == 0)) && d="$d core"
	((i % 10 == 9)) && d="$d $(printf 's%03d' $((i - 1)))"
	DEPS[$s]=$d
	names+=("$s")
done

: >"$dir/.bench/packages"
: >"$dir/.bench/scripts"
for p in "${names[@]}"; do
	mkdir -p "$dir/pkgs/$p/src"
	echo "$p source a $RANDOM" >"$dir/pkgs/$p/src/a.txt"
	echo "$p source b $RANDOM" >"$dir/pkgs/$p/src/b.txt"
	echo "# $p" >"$dir/pkgs/$p/README.md"
	cats="" jdeps=""
	for d in ${DEPS[$p]}; do
		cats="$cats ../$d/out/build.out"
		jdeps="$jdeps${jdeps:+, }\"$d\": \"*\""
	done
	script="mkdir -p out && { cat src/*.txt;${cats:+ cat$cats;} } | sha256sum > out/build.out && sleep \${BENCH_SLEEP:-0.05}"
	cat >"$dir/pkgs/$p/package.json" <<-JSON
		{
		  "name": "$p",
		  "version": "1.0.0",
		  "private": true,
		  "scripts": { "build": "$script" },
		  "dependencies": { $jdeps }
		}
	JSON
	echo "$p ${DEPS[$p]}" >>"$dir/.bench/packages"
	printf '%s\t%s\n' "$p" "$script" >>"$dir/.bench/scripts"
done
cat >"$dir/package.json" <<-'JSON'
	{
	  "name": "mono",
	  "private": true,
	  "workspaces": ["pkgs/*"],
	  "packageManager": "npm@10.0.0"
	}
JSON
cat >"$dir/turbo.json" <<-'JSON'
	{
	  "$schema": "https://turbo.build/schema.json",
	  "pipeline": {
	    "build": { "dependsOn": ["^build"], "outputs": ["out/**"] }
	  }
	}
JSON
printf 'out/\nnode_modules/\n.turbo/\n.bench/\n' >"$dir/.gitignore"

git -C "$dir" init -q -b main
git -C "$dir" config user.email bench@example.com
git -C "$dir" config user.name bench
# The workspace links and lockfile npm would make (no registry needed:
# every dependency is a workspace package).
(cd "$dir" && npm install --offline --ignore-scripts --no-audit --no-fund >/dev/null 2>&1) || :
git -C "$dir" add -A
git -C "$dir" commit -q -m initial
git -C "$dir" rev-parse HEAD >"$dir/.bench/commits"

libs=(core lib1 lib2 lib3 lib4)
for ((c = 1; c <= commits; c++)); do
	k=$((1 + RANDOM % 3))
	touched=()
	if ((c % 7 == 0)); then
		p=${libs[RANDOM % 5]}
		echo "more about $p, commit $c" >>"$dir/pkgs/$p/README.md"
		touched+=("$p")
		k=$((k - 1))
	elif ((c % 5 == 0)); then
		p=${libs[1 + RANDOM % 4]}
		echo "change $c" >>"$dir/pkgs/$p/src/a.txt"
		touched+=("$p")
		k=$((k - 1))
	fi
	for ((j = 0; j < k; j++)); do
		p=$(printf 's%03d' $((RANDOM % n)))
		echo "change $c.$j" >>"$dir/pkgs/$p/src/b.txt"
		touched+=("$p")
	done
	((${#touched[@]})) || {
		p=$(printf 's%03d' $((RANDOM % n)))
		echo "change $c" >>"$dir/pkgs/$p/src/b.txt"
		touched+=("$p")
	}
	git -C "$dir" commit -q -am "commit $c: ${touched[*]}"
	git -C "$dir" rev-parse HEAD >>"$dir/.bench/commits"
done
