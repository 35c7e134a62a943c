/*
 * containers: tasks that name an image run under podman or docker
 * (pkg/container builds the command).  The runtime is found at start
 * (container_runtime = auto: podman, else docker, on PATH) and declared
 * in the agent's labels ("container" and "podman" or "docker"), which
 * is what a task with an image requires.
 */
#include "worker/internal.h"

#include "container/container.h"
#include "match/match.h"

#include <event2/event.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void ry_worker_containers_init(struct ry_worker *w)
{
	const char *want = w->cfg.container_runtime;
	if (want && strcmp(want, "off") == 0)
		return;
	const char *kind = NULL;
	w->container_path = ry_container_find(want, getenv("PATH"), &kind);
	if (!w->container_path) {
		if (want && strcmp(want, "auto") != 0)
			ry_warn("container_runtime %s not found: tasks with an image will not run here",
				want);
		return;
	}
	w->container_kind = kind;
	w->container_init = ry_container_has_init(kind);
	ry_info("tasks with an image run under %s (%s)%s", kind, w->container_path,
		w->container_init ? "" : "; without --init (catatonit is not installed)");
}

char **ry_worker_container_argv(struct ry_worker *w, struct ry_task *t, char *const *envp,
				const char *ws, const char *shared, char **err)
{
	if (!w->container_path) {
		*err = ry_asprintf("task needs image %s but this agent has no container runtime "
				   "(podman or docker)", t->image);
		return NULL;
	}
	free(t->container);
	t->container = ry_container_name(w->cfg.name, t->id, t->attempt);
	t->container_killed = false;
	const char *mounts[] = { shared };
	struct ry_container_spec spec = {
		.runtime = w->container_path,
		.name = t->container,
		.image = t->image,
		.command = t->command,
		.workdir = ws,
		.mounts = mounts,
		.nmounts = 1,
		.env = envp,
		.set_user = w->ids != RY_IDS_WORKER,
		.uid = t->uid,
		.gid = t->gid,
		.cpus = t->cpu,
		.mem_mb = t->mem_mb,
		.init = w->container_init,
		.options = &w->container_options,
	};
	return ry_container_argv(&spec);
}

/*
 * A container being removed.  "rm --force" fails while the runtime is still
 * stopping the container (the SIGTERM the client passed on, or a monitor
 * killed with its client, leaves it "Stopping" for a moment; under load
 * for seconds), so a failed removal is tried again once a second.
 */
struct ry_worker_container_rm {
	struct ry_worker *w;
	char *name;
	pid_t pid;				/* the runtime's rm; 0 between tries */
	int tries;
	struct event *retry;
	struct ry_worker_container_rm *next;
};

#define RM_TRIES 30

static char *const runtime_env[] = {
	(char *)"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL
};

static void rm_free(struct ry_worker_container_rm *r)
{
	struct ry_worker_container_rm **p = &r->w->container_rms;
	while (*p != r)
		p = &(*p)->next;
	*p = r->next;
	if (r->retry)
		event_free(r->retry);
	free(r->name);
	free(r);
}

static void rm_spawn(struct ry_worker_container_rm *r)
{
	struct ry_worker *w = r->w;
	char **argv = ry_container_kill_argv(w->container_path, w->container_kind, r->name);
	struct ry_exec_spec spec = { .argv = argv, .cwd = "/", .env = runtime_env, .out_fd = -1 };
	char *err = NULL;
	r->tries++;
	if (!ry_exec_spawn(&spec, &r->pid, &err)) {
		ry_warn("cannot remove container %s: %s", r->name, err);
		free(err);
		rm_free(r);
	}
	ry_container_argv_free(argv);
}

static void rm_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rm_spawn(arg);
}

void ry_worker_container_kill(struct ry_worker *w, struct ry_task *t)
{
	if (t->container_killed || !w->container_path)
		return;
	t->container_killed = true;
	struct ry_worker_container_rm *r = ry_calloc(1, sizeof(*r));
	r->w = w;
	r->name = ry_strdup(t->container);
	r->next = w->container_rms;
	w->container_rms = r;
	rm_spawn(r);
}

bool ry_worker_container_reaped(struct ry_worker *w, pid_t pid, int status)
{
	struct ry_worker_container_rm *r = w->container_rms;
	while (r && r->pid != pid)
		r = r->next;
	if (!r)
		return false;
	r->pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		rm_free(r);
	} else if (r->tries >= RM_TRIES) {
		ry_warn("cannot remove container %s after %d tries; the agent's next start "
			"removes it", r->name, r->tries);
		rm_free(r);
	} else {
		if (!r->retry)
			r->retry = evtimer_new(w->base, rm_retry_cb, r);
		struct timeval tv = { 1, 0 };
		evtimer_add(r->retry, &tv);
	}
	return true;
}

void ry_worker_containers_release(struct ry_worker *w)
{
	while (w->container_rms)
		rm_free(w->container_rms);
}

/* Runs argv to its end, its stdout and stderr into out; its exit status,
 * or -1 when it could not start.  Only before the loop: it blocks. */
static int run_blocking(char **argv, struct ry_buf *out)
{
	int status = ry_exec_capture(argv[0], argv, runtime_env, NULL, out, NULL);
	return status < 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Removes one container, retrying while the runtime is still stopping it
 * (the monitor killed with the worker leaves it "Stopping" for a moment). */
static bool remove_container(struct ry_worker *w, const char *name)
{
	char **kill = ry_container_kill_argv(w->container_path, w->container_kind, name);
	struct ry_buf out = RY_BUF_INIT;
	bool ok = false;
	for (int i = 0; i < RM_TRIES && !ok; i++) {
		if (i)
			sleep(1);
		ry_buf_reset(&out);
		ok = run_blocking(kill, &out) == 0;
	}
	if (!ok)
		ry_warn("cannot remove container %s left by a previous run: %s", name,
			out.len ? out.data : "no output");
	ry_buf_release(&out);
	ry_container_argv_free(kill);
	return ok;
}

void ry_worker_containers_kill_leftovers(struct ry_worker *w)
{
	if (!w->container_path)
		return;
	/* "railyard-AGENT-" as ry_container_name spells it for this agent. */
	char *sample = ry_container_name(w->cfg.name, 0, 0);
	size_t plen = strlen(sample) - strlen("0-0");
	sample[plen] = '\0';
	struct ry_buf filter = RY_BUF_INIT, out = RY_BUF_INIT;
	ry_buf_puts(&filter, "name=^");
	ry_regex_quote(&filter, sample);
	ry_buf_puts(&filter, "[0-9]+-[0-9]+$");
	/* timeout(1): a runtime stuck on its storage lock must not keep the
	 * worker from starting. */
	char *ps[] = { (char *)"timeout", (char *)"60", w->container_path, (char *)"ps", (char *)"-a",
		       (char *)"--filter", filter.data, (char *)"--format", (char *)"{{.Names}}", NULL };
	size_t killed = 0;
	if (run_blocking(ps, &out) != 0) {
		ry_warn("cannot list the containers a previous run of agent %s may have left: %s",
			w->cfg.name, out.len ? out.data : "ps failed");
		goto out;
	}
	for (char *line = out.data, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, sample, plen) != 0)
			continue;	/* the runtime's filter is a regex: check it */
		killed += remove_container(w, line);
	}
	if (killed)
		ry_warn("removed %zu container%s a previous run of agent %s left running", killed,
			killed == 1 ? "" : "s", w->cfg.name);
out:
	ry_buf_release(&filter);
	ry_buf_release(&out);
	free(sample);
}
