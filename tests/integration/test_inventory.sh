#!/usr/bin/env bash
# Inventory import (railyard inventory import terraform|pulumi|kubernetes):
# planned agents stored per source, re-imports replace a source in one
# transaction, malformed input stores nothing, task_waits names offline
# planned agents, capacity_plan compares planned with online capacity.
. "$(dirname "$0")/lib.sh"

FIX=$RY_ROOT/tests/fixtures/inventory

rows() { sql "SELECT string_agg(name, ' ' ORDER BY name) FROM railyard.inventory WHERE source = '$1'"; }

kubernetes_nodes_stored() {
	ry_newdb k8s
	"$RY" inventory import kubernetes "$FIX/kubectl-nodes.json" >"$RY_WORKDIR/k.out"
	grep -q "kubernetes: 3 planned agents" "$RY_WORKDIR/k.out" || fail "unexpected output: $(cat "$RY_WORKDIR/k.out")"
	[[ $(sql "SELECT name, labels, cpu, mem_mb, os, arch, tool FROM railyard.inventory
	           WHERE name = 'k8s-arm-b'") == 'k8s-arm-b|{docker,arm-tests}|3.8|16384|linux|aarch64|kubernetes' ]] ||
		fail "k8s-arm-b stored as $(sql "SELECT * FROM railyard.inventory WHERE name = 'k8s-arm-b'")"
	[[ $(sql "SELECT origin FROM railyard.inventory WHERE name = 'k8s-gpu-c'") == '$.items[2] (node k8s-gpu-c)' ]] ||
		fail "the origin of a row does not name its place in the file"
}

reimport_replaces_its_source() {
	ry_newdb reimport
	"$RY" inventory import kubernetes "$FIX/kubectl-nodes.json" >/dev/null
	"$RY" inventory import terraform "$FIX/terraform-output.json" >/dev/null 2>&1
	[[ $(rows terraform) == "build-01 build-02 build-arm-01 gpu-01 gpu-02" ]] || fail "terraform rows: $(rows terraform)"
	# The same source again, from the state: the output's agents are gone, the others stay.
	"$RY" inventory import terraform "$FIX/terraform-show.json" >/dev/null 2>&1
	[[ $(rows terraform) == "lab-01 mac-01 runner-01" ]] || fail "re-import did not replace: $(rows terraform)"
	[[ $(rows kubernetes) == "k8s-arm-b k8s-build-a k8s-gpu-c" ]] || fail "another source changed: $(rows kubernetes)"
	# A named source keeps a second stack apart.
	"$RY" inventory import terraform "$FIX/terraform-output.json" --source terraform:gpu-stack >/dev/null 2>&1
	[[ $(rows terraform) == "lab-01 mac-01 runner-01" ]] || fail "--source replaced the default source"
	[[ $(rows terraform:gpu-stack) == "build-01 build-02 build-arm-01 gpu-01 gpu-02" ]] || fail "--source rows missing"
	[[ $(sql "SELECT count(*) FROM railyard.inventory WHERE labels @> '{cuda=12}'") == 2 ]] || fail "map labels lost"
	[[ $(sql "SELECT count(*) FROM railyard.inventory i WHERE origin LIKE '%db_admin%'") == 0 ]] ||
		fail "a sensitive output was stored"
}

malformed_stores_nothing() {
	local rc before
	ry_newdb malformed
	"$RY" inventory import pulumi "$FIX/pulumi.json" >/dev/null 2>&1
	before=$(rows pulumi)
	for f in pulumi:pulumi-duplicate kubernetes:kubectl-bad-quantity kubernetes:kubectl-truncated \
		terraform:terraform-not-output; do
		rc=0
		"$RY" inventory import "${f%%:*}" "$FIX/${f#*:}.json" --source pulumi 2>"$RY_WORKDIR/err" || rc=$?
		((rc == 1)) || fail "${f#*:}: exit $rc, want 1"
		grep -q "^railyard: error: $FIX/${f#*:}.json" "$RY_WORKDIR/err" || fail "${f#*:}: error does not name the file: $(cat "$RY_WORKDIR/err")"
		[[ $(rows pulumi) == "$before" ]] || fail "${f#*:}: the previous inventory changed"
	done
	grep -q 'kubectl-truncated.json:7:0: invalid JSON' "$RY_WORKDIR/err" ||
		grep -q 'not Terraform output' "$RY_WORKDIR/err" || fail "no place in the error"
	rc=0
	"$RY" inventory import ansible "$FIX/pulumi.json" 2>/dev/null || rc=$?
	((rc == 2)) || fail "an unknown tool exited $rc, want 2"
}

waits_name_offline_planned_agents() {
	local id why
	ry_newdb hint
	"$RY" inventory import terraform "$FIX/terraform-output.json" >/dev/null 2>&1
	start_worker plain --labels docker --slots 1 --heartbeat 1 --lease 3 --workdir "$RY_WORKDIR/w-plain"
	wait_agent 30 plain
	id=$(ry_submit "(name) VALUES ('needs-gpu')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, requires) VALUES (:id, 'train', 'true', '{gpu}');")
	why=$(sql "SELECT why FROM railyard.task_waits WHERE pipeline_id = $id")
	[[ $why == "no online agent has label gpu, and no registered agent has it: none could ever run it; 2 in the inventory are offline: gpu-01, gpu-02" ]] ||
		fail "task_waits says: $why"
	"$RY" status >"$RY_WORKDIR/status.out"
	grep -q "2 in the inventory are offline: gpu-01, gpu-02" "$RY_WORKDIR/status.out" ||
		fail "railyard status does not show the hint: $(cat "$RY_WORKDIR/status.out")"
	# One planned GPU agent comes online: it takes the task; the hint counts the other.
	start_worker gpu-01 --labels gpu --slots 1 --heartbeat 1 --lease 3 --workdir "$RY_WORKDIR/w-gpu"
	wait_pipeline 60 "$id" succeeded >/dev/null
	[[ $(sql "SELECT railyard.inventory_hint('{gpu}', NULL, NULL)") == "1 in the inventory is offline: gpu-02" ]] ||
		fail "hint with gpu-01 online: $(sql "SELECT railyard.inventory_hint('{gpu}', NULL, NULL)")"
	[[ -z $(sql "SELECT railyard.inventory_hint('{gpu}', NULL, NULL, 64)") ]] ||
		fail "a hint names planned agents with too few cpus (16) for a 64-cpu task"
	[[ -z $(sql "SELECT railyard.inventory_hint('{docker}', 'darwin', NULL)") ]] ||
		fail "a hint names planned linux agents for a darwin task"
	# Capacity: planned against online, per label.
	[[ $(sql "SELECT planned_agents, online_agents, planned_cpu, planned_mem_mb, planned_offline
	           FROM railyard.capacity_plan WHERE label = 'gpu'") == '2|1|32|131072|{gpu-02}' ]] ||
		fail "capacity_plan gpu: $(sql "SELECT * FROM railyard.capacity_plan WHERE label = 'gpu'")"
	[[ $(sql "SELECT planned_agents, online_agents, online_unplanned FROM railyard.capacity_plan
	           WHERE label = '*'") == '5|2|{plain}' ]] ||
		fail "capacity_plan *: $(sql "SELECT * FROM railyard.capacity_plan WHERE label = '*'")"
}

run_scenario "kubectl nodes are stored as planned agents (labels, cpu 3800m, memory Ki, os/arch)" kubernetes_nodes_stored
run_scenario "a re-import replaces its source's rows and no other" reimport_replaces_its_source
run_scenario "malformed inventory files exit 1 naming the place, and store nothing" malformed_stores_nothing
run_scenario "task_waits and status name planned agents that are offline; capacity_plan compares" waits_name_offline_planned_agents
