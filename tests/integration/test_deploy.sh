#!/usr/bin/env bash
# deploy/: the container entrypoint, run here without a container, with the
# files a Kubernetes pod would have (secret volume, downward API annotations,
# ConfigMap): the worker registers under the node's name with the labels of
# the pod annotation, and the password file becomes a private ~/.pgpass.
# The healthcheck fails when nothing answers.  (deploy/ manifests are parsed
# and checked in tests/unit/test_deploy.c.)
. "$(dirname "$0")/lib.sh"

entrypoint_starts_worker() {
	local pod=$RY_WORKDIR/pod
	mkdir -p "$pod/secret" "$pod/podinfo" "$pod/home"
	printf 'localhost:5432:railyard:railyard:not-a-real-password\n' >"$pod/secret/pgpass"
	chmod 0444 "$pod/secret/pgpass"	# as a secret volume may mount it: libpq would refuse it
	cat >"$pod/podinfo/annotations" <<-'EOF'
		kubectl.kubernetes.io/restartedAt="2024-03-01T10:00:00Z"
		railyard.dev/labels="docker,k8s"
	EOF
	printf 'slots = 2\nheartbeat_s = 1\nlease_s = 3\nworkdir = %s\ndrain_timeout_s = 5\n' "$pod/work" >"$pod/worker.conf"
	HOME=$pod/home RAILYARD_CONFIG=$pod/worker.conf RAILYARD_SECRET_DIR=$pod/secret \
		RAILYARD_PODINFO_DIR=$pod/podinfo RAILYARD_AGENT_NAME=node-a RAILYARD_BIN=$RY \
		"$RY_ROOT/deploy/entrypoint.sh" --exit-when-idle >"$RY_WORKDIR/entrypoint.log" 2>&1
	[[ $(sql "SELECT name, slots, labels @> '{docker,k8s}' FROM railyard.agents") == "node-a|2|t" ]] ||
		fail "agent: $(sql "SELECT name, slots, labels FROM railyard.agents"); log: $(cat "$RY_WORKDIR/entrypoint.log")"
	[[ $(stat -c %a "$pod/home/.pgpass") == 600 ]] || fail "~/.pgpass is not private"
	cmp -s "$pod/secret/pgpass" "$pod/home/.pgpass" || fail "~/.pgpass differs from the secret"
}

healthcheck_fails_without_server() {
	local rc=0 port
	# A port in the unprivileged range that this script picks by its pid; nothing of ours listens there.
	port=$((20000 + $$ % 20000))
	"$RY_ROOT/deploy/healthcheck.sh" 127.0.0.1 "$port" /healthz 2>/dev/null || rc=$?
	((rc != 0)) || fail "the healthcheck passed with nothing listening on $port"
}

run_scenario "deploy/entrypoint.sh: agent named after the node, labels from the pod annotation, private pgpass" entrypoint_starts_worker
run_scenario "deploy/healthcheck.sh fails when nothing serves /healthz" healthcheck_fails_without_server
