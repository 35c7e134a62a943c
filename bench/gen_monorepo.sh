#!/usr/bin/env bash
#
# bench/gen_monorepo.sh N DIR TRUTH [SEED]
#
# Writes a monorepo of N services in DIR, mixed ecosystems in turn (Go
# modules with require + replace, a Node workspace, a Maven aggregator with
# modules, a Gradle build, .NET projects, Python projects with Poetry path
# dependencies), every service with a Dockerfile, a .proto file and a few
# source files; one docker compose file runs them all.  Its true graph is
# known by construction and written to TRUTH, one "from to kind" line per
# edge, sorted:
#   build    about two per service, to earlier services of the same
#            ecosystem (the build system's own dependency), plus FROM an
#            earlier "base" service's image for every tenth service, plus a
#            proto import of another service's file for every fifth
#   test     one per third service (test scope / devDependencies /
#            testImplementation / a test project / a Poetry dev group)
#   runtime  compose depends_on for one in four, an environment address
#            (*_ADDR, *_URL) for one in four, half through .env
# Same N and SEED, same repository.  Used by bench/bench_deps.sh.

set -euo pipefail
(($# >= 3)) || {
	echo "usage: bench/gen_monorepo.sh N DIR TRUTH [SEED]" >&2
	exit 2
}
n=$1 dir=$2 truth=$3 seed=${4:-42}
[[ $n =~ ^[1-9][0-9]*$ ]] || {
	echo "error: N must be a positive integer" >&2
	exit 2
}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

awk -v n="$n" -v dir="$dir" -v seed="$seed" -v truth="$truth" '
function eco(i) { return ecos[i % 6] }
function name(i) { return sprintf("s%04d", i) }
function root(i,   e) {
	e = eco(i)
	if (e == "node") return "node/" name(i)
	if (e == "maven") return "java/" name(i)
	if (e == "gradle") return "jvm/" name(i)
	if (e == "dotnet") return "dotnet/" name(i)
	if (e == "python") return "py/" name(i)
	return "go/" name(i)
}
function put(rel, text,   path) {
	path = dir "/" rel
	print text > path
	close(path)
}
function edge(a, b, kind,   key) {
	key = name(a) " " name(b) " " kind
	if (key in seen) return 0
	seen[key] = 1
	return 1
}
# an earlier service of the same ecosystem, or -1
function earlier(i,   k) {
	if (i < 6) return -1
	k = int(rand() * int(i / 6))
	return (i % 6) + 6 * k
}
BEGIN {
	srand(seed)
	split("go node maven gradle dotnet python", tmp, " ")
	for (k = 0; k < 6; k++) ecos[k] = tmp[k + 1]
	# directories first, in one mkdir
	cmd = "xargs mkdir -p"
	print dir "/java" | cmd
	print dir "/jvm" | cmd
	print dir "/node" | cmd
	for (i = 0; i < n; i++) print dir "/" root(i) "/src" | cmd
	close(cmd)

	for (i = 0; i < n; i++) {
		nb[i] = 0; nt[i] = 0
		for (k = 0; k < 2; k++) {
			d = earlier(i)
			if (d >= 0 && edge(i, d, "build")) build[i, nb[i]++] = d
		}
		if (i % 3 == 1) {
			d = earlier(i)
			if (d >= 0 && !((name(i) " " name(d) " build") in seen) && edge(i, d, "test"))
				test[i, nt[i]++] = d
		}
	}

	# ---- manifests per ecosystem
	modules = ""; includes = ""
	for (i = 0; i < n; i++) {
		e = eco(i); r = root(i); s = name(i)
		if (e == "go") {
			t = "module example.com/mono/" s "\n\ngo 1.22\n"
			for (k = 0; k < nb[i]; k++) t = t "\nrequire example.com/mono/" name(build[i, k]) " v0.0.0"
			for (k = 0; k < nb[i]; k++) t = t "\nreplace example.com/mono/" name(build[i, k]) " => ../" name(build[i, k])
			for (k = 0; k < nt[i]; k++) t = t "\nrequire example.com/mono/" name(test[i, k]) " v0.0.0"
			put(r "/go.mod", t)
			# a Go test dependency is an ordinary require: the truth says build
			for (k = 0; k < nt[i]; k++) {
				delete seen[s " " name(test[i, k]) " test"]
				seen[s " " name(test[i, k]) " build"] = 1
			}
		} else if (e == "node") {
			t = "{\n  \"name\": \"@mono/" s "\",\n  \"dependencies\": {"
			for (k = 0; k < nb[i]; k++) t = t (k ? "," : "") "\n    \"@mono/" name(build[i, k]) "\": \"workspace:*\""
			t = t "\n  },\n  \"devDependencies\": {"
			for (k = 0; k < nt[i]; k++) t = t (k ? "," : "") "\n    \"@mono/" name(test[i, k]) "\": \"workspace:*\""
			put(r "/package.json", t "\n  }\n}")
		} else if (e == "maven") {
			t = "<project>\n  <parent><groupId>com.mono</groupId><artifactId>mono-java</artifactId></parent>\n  <artifactId>" s "</artifactId>\n  <dependencies>"
			for (k = 0; k < nb[i]; k++) t = t "\n    <dependency><groupId>com.mono</groupId><artifactId>" name(build[i, k]) "</artifactId></dependency>"
			for (k = 0; k < nt[i]; k++) t = t "\n    <dependency><groupId>com.mono</groupId><artifactId>" name(test[i, k]) "</artifactId><scope>test</scope></dependency>"
			put(r "/pom.xml", t "\n  </dependencies>\n</project>")
			modules = modules "\n    <module>" s "</module>"
			edge(i, -1, "parent")
		} else if (e == "gradle") {
			t = "dependencies {"
			for (k = 0; k < nb[i]; k++) t = t "\n    implementation(project(\":" name(build[i, k]) "\"))"
			for (k = 0; k < nt[i]; k++) t = t "\n    testImplementation(project(\":" name(test[i, k]) "\"))"
			put(r "/build.gradle.kts", t "\n}")
			includes = includes "\ninclude(\":" s "\")"
		} else if (e == "dotnet") {
			t = "<Project Sdk=\"Microsoft.NET.Sdk\">\n  <ItemGroup>"
			if (nt[i]) t = t "\n    <PackageReference Include=\"xunit\" Version=\"2.6.1\" />"
			for (k = 0; k < nb[i]; k++) t = t "\n    <ProjectReference Include=\"..\\" name(build[i, k]) "\\" name(build[i, k]) ".csproj\" />"
			for (k = 0; k < nt[i]; k++) t = t "\n    <ProjectReference Include=\"..\\" name(test[i, k]) "\\" name(test[i, k]) ".csproj\" />"
			put(r "/" s ".csproj", t "\n  </ItemGroup>\n</Project>")
			# a test project references everything as a test dependency
			if (nt[i]) for (k = 0; k < nb[i]; k++) {
				delete seen[s " " name(build[i, k]) " build"]
				seen[s " " name(build[i, k]) " test"] = 1
			}
		} else {
			t = "[tool.poetry]\nname = \"" s "\"\n\n[tool.poetry.dependencies]\npython = \"^3.12\""
			for (k = 0; k < nb[i]; k++) t = t "\n" name(build[i, k]) " = { path = \"../" name(build[i, k]) "\", develop = true }"
			t = t "\n\n[tool.poetry.group.dev.dependencies]"
			for (k = 0; k < nt[i]; k++) t = t "\n" name(test[i, k]) " = { path = \"../" name(test[i, k]) "\" }"
			put(r "/pyproject.toml", t)
		}
		# Dockerfile: every tenth service builds FROM an earlier base service
		if (i % 10 == 9) {
			b = int(rand() * 10) * 10 % (i - 5)
			put(r "/Dockerfile", "FROM registry.example.com/mono/" name(b) ":latest\nCOPY . /app")
			base[i] = b
			edge(i, b, "build")
		} else {
			put(r "/Dockerfile", "FROM debian:12-slim\nCOPY . /app")
		}
		# protos: every fifth imports another service`s file
		p = "syntax = \"proto3\";\npackage mono." s ";"
		if (i % 5 == 4) {
			b = int(rand() * i)
			p = p "\nimport \"" root(b) "/src/" name(b) ".proto\";"
			edge(i, b, "build")
		}
		put(r "/src/" s ".proto", p)
		for (k = 0; k < 4; k++) put(r "/src/file" k ".txt", "source " s " " k)
	}
	put("java/pom.xml", "<project>\n  <groupId>com.mono</groupId>\n  <artifactId>mono-java</artifactId>\n  <packaging>pom</packaging>\n  <modules>" modules "\n  </modules>\n</project>")
	put("jvm/settings.gradle.kts", "rootProject.name = \"jvm\"" includes)
	put("package.json", "{\"name\": \"mono\", \"private\": true, \"workspaces\": [\"node/*\"]}")

	# ---- compose: every service, runtime edges in one of four ways
	c = "services:"; envfile = ""
	for (i = 0; i < n; i++) {
		s = name(i)
		c = c "\n  " s ":\n    build: ./" root(i)
		if (i < 2) continue
		r = i % 4
		t = int(rand() * i)
		if (r == 0) { c = c "\n    depends_on: [" name(t) "]"; edge(i, t, "runtime") }
		else if (r == 1) { c = c "\n    environment:\n      PEER_ADDR: " name(t) ":8080"; edge(i, t, "runtime") }
		else if (r == 2) {
			c = c "\n    environment:\n      UPSTREAM_URL: http://${HOST_" i "}:80/api"
			envfile = envfile "HOST_" i "=" name(t) "\n"
			edge(i, t, "runtime")
		}
	}
	put("docker-compose.yml", c)
	put(".env", envfile)
	for (key in seen) print key > truth
	close(truth)
}' </dev/null

# Maven children point at their aggregator: parent edges, by construction
tmp=$(mktemp)
awk '$3 == "parent" { print $1 " mono-java build"; next } { print }' "$truth" | LC_ALL=C sort -u >"$tmp"
mv "$tmp" "$truth"
