#!/usr/bin/env bash
# Container executor (issue 11, item 4): a task that names an image runs
# in it under the agent's podman, with its tree mounted as the working
# directory, the same fixed environment, the task user's ids, and the
# cpu/memory limits passed to the runtime; its output is the task's log;
# a timeout and a cancel kill the container itself.  The image is built
# here from files copied from the host (podman import, no registry).
. "$(dirname "$0")/lib.sh"

at_exit kill_task_processes

PODMAN=$(command -v podman) || { echo "podman is not installed (scripts/install-deps.sh)" >&2; exit 1; }
IMAGE=localhost/railyard-test-$$:1
ROOTFS=$RY_WORKDIR/rootfs

# A root filesystem from the host's own binaries and their libraries.
mkdir -p "$ROOTFS/bin" "$ROOTFS/tmp" "$ROOTFS/etc"
for b in sh sleep cat id echo touch ls; do
	src=$(command -v "$b")
	cp -L "$src" "$ROOTFS/bin/$b"
	for lib in $(ldd "$src" | grep -o '/[^ ]*'); do
		mkdir -p "$ROOTFS$(dirname "$lib")"
		cp -L "$lib" "$ROOTFS$lib"
	done
done
echo "railyard-test-image" >"$ROOTFS/etc/image-marker"
tar -C "$ROOTFS" -cf "$RY_WORKDIR/rootfs.tar" . || exit 1
"$PODMAN" import "$RY_WORKDIR/rootfs.tar" "$IMAGE" >/dev/null || { echo "cannot import the test image" >&2; exit 1; }
at_exit "$PODMAN" rmi -f "$IMAGE"

# What this machine needs to run a container at all, tried in order; the
# first that works is what the workers use (container_runtime and
# container_options).  Why each step failed is kept for the skip message.
RUNTIME=$PODMAN
OPTIONS="--network none"
why=""
try_run() { "$RUNTIME" run --rm $OPTIONS "$IMAGE" /bin/sh -c 'echo ok' 2>&1; }
if ! out=$(try_run) || [[ $out != ok ]]; then
	why+="podman run --network none: $out; "
	# crun refuses a soft/hard limit above what this sandbox allows.
	OPTIONS="--network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
	if ! out=$(try_run) || [[ $out != ok ]]; then
		why+="with --ulimit nofile/nproc: $out; "
		# crun 1.8 refuses "hybrid" cgroups (v1 controllers with a v2
		# hierarchy that holds controllers too): hide the v2 mount in a
		# mount namespace of the runtime's own.
		if grep -q ' /sys/fs/cgroup/unified cgroup2 ' /proc/self/mounts &&
		   [[ -n $(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null) ]]; then
			RUNTIME=$RY_WORKDIR/podman
			cat >"$RUNTIME" <<WRAP
#!/bin/sh
# podman with the cgroup v2 mount of a hybrid host hidden (crun refuses it).
exec unshare -m sh -c 'mount -t tmpfs tmpfs /sys/fs/cgroup/unified && exec "\$0" "\$@"' "$PODMAN" "\$@"
WRAP
			chmod +x "$RUNTIME"
			if ! out=$(try_run) || [[ $out != ok ]]; then
				why+="with the hybrid cgroup v2 mount hidden: $out; "
				RUNTIME=""
			fi
		else
			RUNTIME=""
		fi
	fi
fi

# worker_conf NAME: the container settings that work here.
worker_conf() {
	printf 'container_runtime = %s\ncontainer_options = %s\n' "$RUNTIME" "$OPTIONS" >"$RY_WORKDIR/$1.conf"
	echo "$RY_WORKDIR/$1.conf"
}

need_runtime() {
	[[ -n $RUNTIME ]] || skip "podman cannot run a container on this machine: $why"
}

# container_gone NAME: no container of that name exists any more.
container_gone() {
	[[ -z $("$RUNTIME" ps -a --filter "name=^$1\$" --format '{{.Names}}' 2>/dev/null) ]]
}

runs_in_the_image() {
	need_runtime
	ry_newdb run
	local conf wd=$RY_WORKDIR/w-run id
	conf=$(worker_conf crun)
	start_worker crun --config "$conf" --workdir "$wd" --http-listen off
	wait_agent 30 crun
	[[ $(sql "SELECT labels @> '{container,podman}' FROM railyard.agents WHERE name = 'crun'") == t ]] ||
		fail "the agent does not declare its runtime: $(sql "SELECT labels FROM railyard.agents WHERE name = 'crun'")"
	cat >"$RY_WORKDIR/p.yaml" <<YAML
name: in-a-container
tasks:
  - name: inside
    image: $IMAGE
    cpu: 1
    mem_mb: 96
    env: {GREETING: hello}
    command: |
      cat /etc/image-marker
      echo "pwd=\$(pwd) ws=\$RAILYARD_WORKSPACE"
      echo "env=\$GREETING \$TZ \$LC_ALL \$SOURCE_DATE_EPOCH \$RAILYARD_TASK_NAME"
      echo "ids=\$(id -u):\$(id -g)"
      echo "mem=\$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
      echo made > "\$RAILYARD_WORKSPACE/out.txt"
      echo shared > "\$RAILYARD_PIPELINE_DIR/from-container"
YAML
	id=$("$RY" submit "$RY_WORKDIR/p.yaml")
	[[ $(sql "SELECT image || ' ' || (requires @> '{container}') FROM railyard.tasks WHERE pipeline_id = $id") == "$IMAGE true" ]] ||
		fail "the task row lacks its image or the container requirement"
	wait_pipeline 90 "$id" succeeded >/dev/null
	local tail tid ws uid gid
	tail=$(sql "SELECT log_tail FROM railyard.task_attempts WHERE pipeline_id = $id")
	tid=$(task_get "$id" inside id)
	ws=$wd/pipelines/$id/$tid-inside
	[[ $tail == *railyard-test-image* ]] || fail "the task did not run in the image: $tail"
	[[ $tail == *"pwd=$ws ws=$ws"* ]] || fail "the tree is not the working directory: $tail"
	[[ $tail == *"env=hello UTC C "*" inside"* ]] || fail "the fixed environment did not reach the container: $tail"
	[[ $tail == *"mem=100663296"* ]] || fail "the memory limit (96 MB) was not passed: $tail"
	[[ $(cat "$ws/out.txt") == made ]] || fail "what the task wrote is not in its workspace"
	[[ -f $wd/pipelines/$id/shared/from-container ]] || fail "the pipeline directory is not shared"
	read -r uid gid < <(stat -c '%u %g' "$ws/out.txt")
	[[ $tail == *"ids=$uid:$gid"* && $uid != 0 ]] ||
		fail "the container did not run as the task user (file $uid:$gid): $tail"
	wait_for 30 container_gone "railyard-crun-$tid-1"
}

timeout_and_cancel_kill_the_container() {
	need_runtime
	ry_newdb kill
	local conf wd=$RY_WORKDIR/w-kill id tid1 tid2
	conf=$(worker_conf ckill)
	start_worker ckill --config "$conf" --workdir "$wd" --http-listen off
	id=$(ry_submit "(name) VALUES ('kill')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, image, requires, timeout_s, max_attempts)
		VALUES (:id, 'slow', 'echo started; sleep 300', '$IMAGE', '{container}', 3, 1),
		       (:id, 'cancelled', 'echo started; sleep 300', '$IMAGE', '{container}', 3600, 1);")
	tid1=$(task_get "$id" slow id)
	tid2=$(task_get "$id" cancelled id)
	# Both containers run.
	wait_for 60 bash -c "[[ -n \$('$RUNTIME' ps --filter name=^railyard-ckill-$tid2-1\$ --format '{{.Names}}') ]]"
	# The timeout ends the first: failed, and its container is gone.
	wait_for 60 sql_eq failed "SELECT state FROM railyard.tasks WHERE id = $tid1"
	[[ $(sql "SELECT reason FROM railyard.tasks WHERE id = $tid1") == *timeout* ]] ||
		fail "the timed-out task's reason: $(sql "SELECT reason FROM railyard.tasks WHERE id = $tid1")"
	wait_for 30 container_gone "railyard-ckill-$tid1-1"
	# Cancelling the pipeline ends the second and its container.
	sql "SELECT railyard.cancel_pipeline($id)" >/dev/null
	wait_for 60 container_gone "railyard-ckill-$tid2-1"
	wait_for 30 no_procs_in "$wd"
}

no_runtime_no_image_task() {
	ry_newdb none
	local id
	start_worker cnone --workdir "$RY_WORKDIR/w-none" --http-listen off --cgroup off
	printf 'container_runtime = off\n' >"$RY_WORKDIR/off.conf"
	stop_worker cnone
	start_worker cnone --config "$RY_WORKDIR/off.conf" --workdir "$RY_WORKDIR/w-none" --http-listen off --cgroup off
	wait_agent 30 cnone
	[[ $(sql "SELECT labels @> '{container}' FROM railyard.agents WHERE name = 'cnone'") == f ]] ||
		fail "an agent without a runtime claims the container label"
	id=$(ry_submit "(name) VALUES ('none')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, image, requires)
		VALUES (:id, 'c', 'true', 'debian:bookworm', '{container}');")
	wait_for 30 bash -c "$RY status $id 2>&1 | grep -q 'container'"
	[[ $(sql "SELECT state FROM railyard.tasks WHERE pipeline_id = $id") == ready ]] ||
		fail "a container task was taken by an agent without a runtime"
	local out
	out=$(printf 'name: x\ntasks:\n  - name: a\n    command: "true"\n    image: "bad image"\n' >"$RY_WORKDIR/bad.yaml"; "$RY" submit --check "$RY_WORKDIR/bad.yaml" 2>&1) &&
		fail "a bad image reference was accepted"
	[[ $out == *"bad.yaml:5"*"image \"bad image\" is invalid"* ]] || fail "unclear error for a bad image: $out"
}

# A worker killed with SIGKILL cannot remove its task's container, and the
# runtime's monitor runs outside the task's cgroup: the next start of the
# same agent removes it before it registers.
restart_removes_leftover_containers() {
	need_runtime
	ry_newdb left
	local conf wd=$RY_WORKDIR/w-left id tid name
	conf=$(worker_conf cleft)
	start_worker cleft --config "$conf" --workdir "$wd" --http-listen off --lease 60
	id=$(ry_submit "(name) VALUES ('left')" "
		INSERT INTO railyard.tasks (pipeline_id, name, command, image, requires)
		VALUES (:id, 'lingers', 'echo started; sleep 300', '$IMAGE', '{container}');")
	tid=$(task_get "$id" lingers id)
	name=railyard-cleft-$tid-1
	wait_for 60 bash -c "[[ -n \$('$RUNTIME' ps --filter name=^$name\$ --format '{{.Names}}') ]]"
	stop_worker cleft KILL
	container_gone "$name" && fail "the container went with its worker: nothing left to test"
	start_worker cleft --config "$conf" --workdir "$wd" --http-listen off --lease 60
	wait_for 60 container_gone "$name"
	grep -q "removed 1 container a previous run of agent cleft left running" "$RY_WORKDIR/worker-cleft.log" ||
		fail "the restarted worker did not say it removed the container"
	sql "SELECT railyard.cancel_pipeline($id)" >/dev/null
}

run_scenario "a task with an image runs in it: tree, environment, ids and limits" runs_in_the_image
run_scenario "a timeout and a cancel kill the container" timeout_and_cancel_kill_the_container
run_scenario "an agent without a runtime does not take container tasks; bad images are refused" no_runtime_no_image_task
run_scenario "a worker killed with -9 leaves its task's container; its restart removes it" restart_removes_leftover_containers
