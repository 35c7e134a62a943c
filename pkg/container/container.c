#include "container/container.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void add(struct ry_strlist *l, const char *s)
{
	ry_strlist_add(l, s);
}

static void addf(struct ry_strlist *l, const char *fmt, long long a, long long b, bool two)
{
	char buf[64];
	if (two)
		snprintf(buf, sizeof(buf), fmt, a, b);
	else
		snprintf(buf, sizeof(buf), fmt, a);
	ry_strlist_add(l, buf);
}

static char **detach(struct ry_strlist *l)
{
	char **argv = ry_calloc(l->n + 1, sizeof(*argv));
	for (size_t i = 0; i < l->n; i++)
		argv[i] = ry_strdup(l->items[i]);
	ry_strlist_release(l);
	return argv;
}

char **ry_container_argv(const struct ry_container_spec *s)
{
	struct ry_strlist l = { 0 };
	add(&l, s->runtime);
	add(&l, "run");
	add(&l, "--rm");
	if (s->init)
		add(&l, "--init");
	add(&l, "--name");
	add(&l, s->name);
	/* The container's stdin is the task's: /dev/null, never a terminal. */
	add(&l, "--interactive=false");
	add(&l, "--tty=false");
	if (s->set_user) {
		add(&l, "--user");
		addf(&l, "%lld:%lld", (long long)s->uid, (long long)s->gid, true);
	}
	if (s->mem_mb > 0) {
		add(&l, "--memory");
		addf(&l, "%lldm", s->mem_mb, 0, false);
		/* No swap beyond it: the limit means what the task row says. */
		add(&l, "--memory-swap");
		addf(&l, "%lldm", s->mem_mb, 0, false);
	}
	if (s->cpus > 0) {
		add(&l, "--cpus");
		addf(&l, "%lld", s->cpus, 0, false);
	}
	add(&l, "--workdir");
	add(&l, s->workdir);
	char *v = ry_asprintf("%s:%s", s->workdir, s->workdir);
	add(&l, "--volume");
	add(&l, v);
	free(v);
	for (size_t i = 0; i < s->nmounts; i++) {
		v = ry_asprintf("%s:%s", s->mounts[i], s->mounts[i]);
		add(&l, "--volume");
		add(&l, v);
		free(v);
	}
	for (char *const *e = s->env; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq || eq == *e)
			continue;
		char *key = ry_strndup(*e, (size_t)(eq - *e));
		add(&l, "--env");
		add(&l, key);
		free(key);
	}
	for (size_t i = 0; s->options && i < s->options->n; i++)
		add(&l, s->options->items[i]);
	add(&l, s->image);
	add(&l, "/bin/sh");
	add(&l, "-c");
	add(&l, s->command);
	return detach(&l);
}

char **ry_container_kill_argv(const char *runtime, const char *kind, const char *name)
{
	struct ry_strlist l = { 0 };
	add(&l, runtime);
	add(&l, "rm");
	add(&l, "--force");
	if (strcmp(kind, "podman") == 0) {
		add(&l, "--time");
		add(&l, "0");
	}
	add(&l, name);
	return detach(&l);
}

void ry_container_argv_free(char **argv)
{
	for (char **a = argv; a && *a; a++)
		free(*a);
	free(argv);
}

char *ry_container_name(const char *agent, int64_t task_id, int attempt)
{
	char *n = ry_asprintf("railyard-%s-%lld-%d", agent, (long long)task_id, attempt);
	for (char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'))
			*p = '_';
	return n;
}

static char *search_path(const char *name, const char *path_env)
{
	struct ry_strlist dirs = { 0 };
	char *found = NULL;
	ry_strlist_split(&dirs, path_env ? path_env : "/usr/local/bin:/usr/bin:/bin", ':');
	for (size_t i = 0; i < dirs.n && !found; i++) {
		char *p = ry_asprintf("%s/%s", dirs.items[i], name);
		if (dirs.items[i][0] == '/' && access(p, X_OK) == 0)
			found = p;
		else
			free(p);
	}
	ry_strlist_release(&dirs);
	return found;
}

char *ry_container_find(const char *want, const char *path_env, const char **kind)
{
	char *path = NULL;
	if (!want || strcmp(want, "auto") == 0) {
		if (!(path = search_path("podman", path_env)))
			path = search_path("docker", path_env);
	} else if (want[0] == '/') {
		path = access(want, X_OK) == 0 ? ry_strdup(want) : NULL;
	} else if (strcmp(want, "podman") == 0 || strcmp(want, "docker") == 0) {
		path = search_path(want, path_env);
	}
	if (path) {
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		*kind = strstr(base, "docker") ? "docker" : "podman";
	}
	return path;
}

bool ry_container_has_init(const char *kind)
{
	static const char *const podman_inits[] = {
		"/usr/libexec/podman/catatonit", "/usr/libexec/catatonit/catatonit",
		"/usr/bin/catatonit", "/usr/local/libexec/podman/catatonit",
	};
	if (strcmp(kind, "docker") == 0)
		return true;
	for (size_t i = 0; i < RY_ARRAY_SIZE(podman_inits); i++)
		if (access(podman_inits[i], X_OK) == 0)
			return true;
	return false;
}
