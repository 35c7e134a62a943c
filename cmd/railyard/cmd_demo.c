/*
 * railyard demo: the whole product in one command.  It prepares the
 * database, writes the shop pipeline (pkg/demo) to a spec file, submits it,
 * starts three local workers with different labels, follows the pipeline
 * with `railyard wait --follow` and prints what the database recorded.
 *
 * Every step runs this same binary as a child (/proc/self/exe), exactly as a
 * user or a CI job would run it.  Workers get their own process group so that
 * Ctrl-C reaches the demo, which then cancels the pipeline and stops them in
 * order (SIGTERM drains; a second SIGTERM kills; SIGKILL last).
 */
#include "cmd.h"
#include "demo/demo.h"
#include "graph/graph.h"
#include "exec/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEMO_WORKERS_EXIT_MS	30000	/* idle workers notice the end within this */
#define DEMO_STUCK_MS		5000	/* every worker gone, pipeline unfinished */

struct demo_worker_def {
	const char *name;
	const char *labels;
	const char *slots;
};

static const struct demo_worker_def worker_defs[] = {
	{ "demo-linux-a", "linux", "4" },
	{ "demo-docker", "linux,docker", "3" },
	{ "demo-gpu", "linux,gpu", "2" },
};
#define DEMO_NWORKERS RY_ARRAY_SIZE(worker_defs)

struct demo_child {
	const char *name;	/* for messages: "demo-gpu", "wait" */
	char *log;		/* its log file, or NULL when it writes to our terminal */
	pid_t pid;		/* 0: never started */
	int status;		/* wait(2) status once exited */
	bool exited;
};

struct demo {
	const struct cmd_ctx *ctx;
	char *conninfo;		/* the resolved database */
	const char *db_arg;	/* --db for children, or NULL: they resolve it alike */
	struct ry_db *db;
	char *dir;		/* $RAILYARD_HOME/demo */
	char *spec_path;
	long pipeline_id;
	char id_text[24];
	struct demo_child workers[DEMO_NWORKERS];
	struct demo_child wait;
	sigset_t signals;	/* blocked and taken with sigtimedwait */
	sigset_t oldmask;	/* what children get back */
	int interrupts;		/* SIGINT/SIGTERM received */
	bool home_from_env;	/* the user set RAILYARD_HOME (we set it for children) */
	int64_t t0;
};

/* ---- SQL for the summary (one place) ---- */

static const char SQL_PIPELINE[] =
	"SELECT p.name, p.state, "
	"       extract(epoch FROM p.finished_at - p.started_at), "
	"       extract(epoch FROM p.finished_at - p.created_at), "
	"       (SELECT coalesce(sum(a.duration_s), 0) FROM railyard.task_attempts a "
	"         WHERE a.pipeline_id = p.id), "
	"       (SELECT count(*) FROM railyard.task_attempts a "
	"         WHERE a.pipeline_id = p.id AND a.duration_s IS NOT NULL), "
	"       (SELECT coalesce(sum(g.slots), 0) FROM railyard.agents g "
	"         WHERE g.name = ANY ($2::text[])) "
	"  FROM railyard.pipelines p WHERE p.id = $1";

static const char SQL_STATES[] =
	"SELECT state, count(*) FROM railyard.tasks WHERE pipeline_id = $1 "
	" GROUP BY state ORDER BY state";

static const char SQL_AGENTS[] =
	"SELECT g.name, array_to_string(g.labels, ','), g.slots, count(a.task_id), "
	"       coalesce(sum(a.duration_s), 0) "
	"  FROM railyard.agents g "
	"  LEFT JOIN railyard.task_attempts a ON a.agent_id = g.id AND a.pipeline_id = $1 "
	" WHERE g.name = ANY ($2::text[]) "
	" GROUP BY g.id ORDER BY array_position($2::text[], g.name)";

static const char SQL_PLACEMENT[] =
	"SELECT t.name, array_to_string(t.requires, ','), coalesce(a.agent_name, '-') "
	"  FROM railyard.tasks t "
	"  LEFT JOIN railyard.task_attempts a ON a.task_id = t.id AND a.attempt = t.attempt "
	" WHERE t.pipeline_id = $1 AND t.requires && ARRAY['docker', 'gpu'] "
	" ORDER BY t.id";

static const char SQL_NOT_SUCCEEDED[] =
	"SELECT t.name, t.state, coalesce(t.reason, ''), coalesce(a.log_path, ''), "
	"       count(*) OVER () "
	"  FROM railyard.tasks t "
	"  LEFT JOIN railyard.task_attempts a ON a.task_id = t.id AND a.attempt = t.attempt "
	" WHERE t.pipeline_id = $1 AND t.state NOT IN ('succeeded', 'cached') "
	" ORDER BY t.state = 'failed' DESC, t.id LIMIT 12";

static const char SQL_CP_TASKS[] =
	"SELECT name, coalesce(extract(epoch FROM finished_at - started_at), 0) "
	"  FROM railyard.tasks WHERE pipeline_id = $1 ORDER BY id";

static const char SQL_CP_EDGES[] =
	"WITH t AS (SELECT name, row_number() OVER (ORDER BY id) - 1 AS i "
	"             FROM railyard.tasks WHERE pipeline_id = $1) "
	"SELECT u.i, d.i FROM railyard.edges e "
	"  JOIN t u ON u.name = e.upstream JOIN t d ON d.name = e.downstream "
	" WHERE e.pipeline_id = $1";

static const char SQL_CANCEL[] = "SELECT railyard.cancel_pipeline($1)";

/* ---- children ---- */

static void on_sigchld(int sig)
{
	(void)sig;	/* only there so SIGCHLD is delivered to sigtimedwait */
}

static double elapsed_s(const struct demo *d)
{
	return (double)(ry_now_ms() - d->t0) / 1000.0;
}

/*
 * Starts `railyard [--db X] args...` as a child.  out_fd, when >= 0, becomes
 * its stdout (and its stderr too when the child has a log file).
 */
static bool spawn(struct demo *d, struct demo_child *c, const char *const *args, int out_fd,
		  bool own_group)
{
	const char *argv[24];
	size_t n = 0;
	pid_t parent = getpid();

	argv[n++] = "railyard";
	if (d->db_arg) {
		argv[n++] = "--db";
		argv[n++] = d->db_arg;
	}
	for (; *args && n + 1 < RY_ARRAY_SIZE(argv); args++)
		argv[n++] = *args;
	argv[n] = NULL;

	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		cmd_error("cannot start %s: %s", c->name, strerror(errno));
		return false;
	}
	if (pid == 0) {
		if (own_group)
			setpgid(0, 0);
		/* Nothing the demo started outlives it. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		if (out_fd >= 0 && (dup2(out_fd, STDOUT_FILENO) < 0 ||
				    (c->log && dup2(out_fd, STDERR_FILENO) < 0)))
			_exit(127);
		sigprocmask(SIG_SETMASK, &d->oldmask, NULL);
		execv("/proc/self/exe", (char *const *)argv);
		cmd_error("cannot run /proc/self/exe: %s", strerror(errno));
		_exit(127);
	}
	c->pid = pid;
	c->exited = false;
	return true;
}

static void describe_exit(const struct demo_child *c, char *buf, size_t len)
{
	if (WIFEXITED(c->status))
		snprintf(buf, len, "exit %d", WEXITSTATUS(c->status));
	else if (WIFSIGNALED(c->status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(c->status));
	else
		snprintf(buf, len, "status %d", c->status);
}

static void reap_one(struct demo_child *c, bool is_worker)
{
	int status;
	if (c->pid <= 0 || c->exited)
		return;
	if (waitpid(c->pid, &status, WNOHANG) != c->pid)
		return;
	c->exited = true;
	c->status = status;
	if (is_worker && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		char how[64];
		describe_exit(c, how, sizeof(how));
		ry_warn("worker %s ended (%s); its log: %s", c->name, how, c->log);
	}
}

static void reap(struct demo *d)
{
	for (size_t i = 0; i < DEMO_NWORKERS; i++)
		reap_one(&d->workers[i], true);
	reap_one(&d->wait, false);
}

static size_t workers_alive(const struct demo *d)
{
	size_t n = 0;
	for (size_t i = 0; i < DEMO_NWORKERS; i++)
		if (d->workers[i].pid > 0 && !d->workers[i].exited)
			n++;
	return n;
}

/* Sleeps until a signal or timeout_ms; counts SIGINT/SIGTERM. */
static void pause_for_signal(struct demo *d, int timeout_ms)
{
	struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
	int sig = sigtimedwait(&d->signals, NULL, &ts);
	if (sig == SIGINT || sig == SIGTERM)
		d->interrupts++;
}

static void signal_workers(struct demo *d, int sig)
{
	for (size_t i = 0; i < DEMO_NWORKERS; i++)
		if (d->workers[i].pid > 0 && !d->workers[i].exited)
			kill(d->workers[i].pid, sig);
}

/*
 * Stops the workers as their contract asks: SIGTERM lets running tasks
 * finish, a second SIGTERM kills them now, SIGKILL when even that hangs.
 * Another Ctrl-C skips ahead to the next step.
 */
static void stop_workers(struct demo *d)
{
	static const int sigs[] = { SIGTERM, SIGTERM, SIGKILL };
	static const int grace_ms[] = { 10000, 3000, 3000 };

	for (size_t round = 0; round < RY_ARRAY_SIZE(sigs); round++) {
		int seen = d->interrupts;
		int64_t until = ry_now_ms() + grace_ms[round];
		reap(d);
		signal_workers(d, sigs[round]);
		while (workers_alive(d) && ry_now_ms() < until && d->interrupts == seen) {
			pause_for_signal(d, 200);
			reap(d);
		}
		if (!workers_alive(d))
			return;
	}
}

/* Runs `railyard submit FILE`; its stdout is the new pipeline's id. */
static bool submit(struct demo *d)
{
	struct demo_child c = { .name = "submit" };
	const char *args[] = { "submit", d->spec_path, NULL };
	struct ry_buf out = RY_BUF_INIT;
	int fds[2];
	bool ok = false;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		cmd_error("cannot create a pipe for submit: %s", strerror(errno));
		return false;
	}
	if (!spawn(d, &c, args, fds[1], false)) {
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	close(fds[1]);
	for (;;) {
		char buf[256];
		ssize_t n = read(fds[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		ry_buf_add(&out, buf, (size_t)n);
	}
	close(fds[0]);
	while (waitpid(c.pid, &c.status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
		char how[64];
		describe_exit(&c, how, sizeof(how));
		cmd_error("cannot submit %s: railyard submit ended with %s",
			d->spec_path, how);
		goto out;
	}
	while (out.len && (out.data[out.len - 1] == '\n' || out.data[out.len - 1] == ' '))
		out.data[--out.len] = '\0';
	if (!out.len || !ry_parse_long(out.data, 1, (long)(~0UL >> 1), &d->pipeline_id)) {
		cmd_error("cannot submit %s: expected a pipeline id from railyard "
			"submit, got '%s'", d->spec_path, out.len ? out.data : "");
		goto out;
	}
	snprintf(d->id_text, sizeof(d->id_text), "%ld", d->pipeline_id);
	ok = true;
out:
	ry_buf_release(&out);
	return ok;
}

static bool start_workers(struct demo *d)
{
	for (size_t i = 0; i < DEMO_NWORKERS; i++) {
		const struct demo_worker_def *w = &worker_defs[i];
		struct demo_child *c = &d->workers[i];
		const char *args[] = { "worker", "--name", w->name, "--labels", w->labels,
				       "--slots", w->slots, "--exit-when-idle", NULL };
		c->name = w->name;
		c->log = ry_asprintf("%s/%s.log", d->dir, w->name);
		int fd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			cmd_error("cannot create %s: %s", c->log, strerror(errno));
			return false;
		}
		bool ok = spawn(d, c, args, fd, true);
		close(fd);
		if (!ok)
			return false;
	}
	return true;
}

static void cancel_pipeline(struct demo *d)
{
	const char *params[] = { d->id_text };
	char *err = NULL;
	if (!d->pipeline_id)
		return;
	if (!ry_db_exec(d->db, SQL_CANCEL, 1, params, &err)) {
		cmd_error("cannot cancel pipeline %ld: %s", d->pipeline_id, err);
		free(err);
	}
}

/*
 * Follows the pipeline until `wait` exits.  Returns false when interrupted
 * or when every worker is gone while the pipeline still has work.
 */
static bool follow(struct demo *d)
{
	const char *args[] = { "wait", d->id_text, "--follow", NULL };
	int64_t all_gone = 0;

	d->wait.name = "wait";
	if (!spawn(d, &d->wait, args, -1, false))
		return false;
	for (;;) {
		reap(d);
		if (d->wait.exited)
			return true;
		if (d->interrupts)
			return false;
		if (workers_alive(d) == 0) {
			if (!all_gone)
				all_gone = ry_now_ms();
			if (ry_now_ms() - all_gone > DEMO_STUCK_MS) {
				cmd_error("every worker has exited but pipeline %ld is not "
					"finished; see the logs in %s", d->pipeline_id, d->dir);
				return false;
			}
		}
		pause_for_signal(d, 250);
	}
}

/* Waits for the --exit-when-idle workers to notice that the work is done. */
static void wait_workers_idle(struct demo *d)
{
	int64_t until = ry_now_ms() + DEMO_WORKERS_EXIT_MS;
	for (;;) {
		reap(d);
		if (!workers_alive(d))
			return;
		if (d->interrupts || ry_now_ms() >= until)
			break;
		pause_for_signal(d, 250);
	}
	if (!d->interrupts)
		ry_warn("%zu worker(s) still running %d s after the pipeline "
			"ended; stopping them", workers_alive(d), DEMO_WORKERS_EXIT_MS / 1000);
	stop_workers(d);
}

/* ---- summary ---- */

static struct ry_res *query(struct demo *d, const char *sql, int nparams, const char *const *params)
{
	char *err = NULL;
	struct ry_res *r = ry_db_query(d->db, sql, nparams, params, &err);
	if (!r) {
		cmd_error("cannot read the demo's results: %s", err);
		free(err);
	} else {
		ry_res_make_printable(r, false);
	}
	return r;
}

struct demo_cp {
	struct ry_res *tasks;	/* name, run time; row i is task index i */
	double *dur;
	size_t *path;		/* task indexes, first to last */
	size_t npath;
	double length;		/* seconds of run time along the path */
};

/* The longest chain of run time through the pipeline, from the database. */
static bool critical_path(struct demo *d, struct demo_cp *cp)
{
	const char *params[] = { d->id_text };
	struct ry_res *edges = NULL;
	size_t n, m, *up = NULL, *down = NULL;
	bool ok = false;

	memset(cp, 0, sizeof(*cp));
	if (!(cp->tasks = query(d, SQL_CP_TASKS, 1, params)) ||
	    !(edges = query(d, SQL_CP_EDGES, 1, params)))
		goto out;
	n = (size_t)ry_res_rows(cp->tasks);
	m = (size_t)ry_res_rows(edges);
	cp->dur = ry_calloc(n, sizeof(double));
	up = ry_calloc(m, sizeof(size_t));
	down = ry_calloc(m, sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		cp->dur[i] = ry_res_get_double(cp->tasks, (int)i, 1);
	for (size_t k = 0; k < m; k++) {
		up[k] = (size_t)ry_res_get_long(edges, (int)k, 0);
		down[k] = (size_t)ry_res_get_long(edges, (int)k, 1);
	}
	struct ry_graph g;
	if (!ry_graph_init(&g, n, m, up, down))
		goto out;
	ok = ry_graph_critical_path(&g, cp->dur, &cp->path, &cp->npath, &cp->length) &&
	     cp->npath > 0;
	ry_graph_release(&g);
out:
	free(down);
	free(up);
	ry_res_free(edges);
	return ok;
}

static void print_critical_path(const struct demo_cp *cp)
{
	size_t col = 2;

	printf("\ncritical path: %zu tasks, %.1f s of run time\n  ", cp->npath, cp->length);
	for (size_t i = 0; i < cp->npath; i++) {
		char step[160];
		int len = snprintf(step, sizeof(step), "%s%s %.1fs", i ? " -> " : "",
				   ry_res_get(cp->tasks, (int)cp->path[i], 0), cp->dur[cp->path[i]]);
		if (col + (size_t)len > 96) {
			printf("\n  ");
			col = 2;
		}
		fputs(step, stdout);
		col += (size_t)len;
	}
	putchar('\n');
}

static void demo_cp_release(struct demo_cp *cp)
{
	free(cp->path);
	free(cp->dur);
	ry_res_free(cp->tasks);
}

/* Prints the summary; returns the exit code the pipeline's state implies. */
static int print_summary(struct demo *d)
{
	const char *params[2] = { d->id_text, NULL };
	struct ry_strlist names = { 0 };
	struct ry_res *r = NULL;
	struct demo_cp cp;
	int rc = RY_EXIT_ERROR;
	bool have_cp = critical_path(d, &cp);

	for (size_t i = 0; i < DEMO_NWORKERS; i++)
		ry_strlist_add(&names, worker_defs[i].name);
	char *names_array = ry_strlist_to_pg_array(&names);
	params[1] = names_array;

	printf("\n[6/6] summary      what the database recorded (%.1f s after start)\n\n",
	       elapsed_s(d));
	if (!(r = query(d, SQL_PIPELINE, 2, params)) || ry_res_rows(r) != 1)
		goto out;
	const char *state = ry_res_get(r, 0, 1);
	double makespan = ry_res_get_double(r, 0, 2);
	double total = ry_res_get_double(r, 0, 3);
	double work = ry_res_get_double(r, 0, 4);
	long runs = ry_res_get_long(r, 0, 5);
	long slots = ry_res_get_long(r, 0, 6);
	bool finished = !ry_res_isnull(r, 0, 2);

	rc = strcmp(state, "succeeded") == 0 ? RY_EXIT_OK
	   : strcmp(state, "failed") == 0 ? RY_EXIT_FAIL : RY_EXIT_ERROR;
	printf("pipeline %ld %s: %s\n", d->pipeline_id, ry_res_get(r, 0, 0), state);
	if (finished && makespan > 0) {
		printf("  makespan      %6.1f s   first task claimed -> last task finished "
		       "(%.1f s from submit)\n", makespan, total);
		printf("  work          %6.1f s   run time of %ld task attempts, end to end\n",
		       work, runs);
		printf("  speedup       %6.1fx    over running the tasks one after another\n",
		       work / makespan);
		double bound = slots > 0 ? work / (double)slots : 0;
		if (have_cp && cp.length > bound)
			bound = cp.length;
		if (slots > 0 && have_cp)
			printf("  lower bound   %6.1f s   max(critical path %.1f s, work / %ld slots "
			       "%.1f s): makespan is %.2fx it\n", bound, cp.length, slots,
			       work / (double)slots, makespan / bound);
	}
	ry_res_free(r);

	if (!(r = query(d, SQL_STATES, 1, params)))
		goto out;
	printf("  tasks         ");
	for (int i = 0; i < ry_res_rows(r); i++)
		printf("%s%s %s", i ? ", " : "", ry_res_get(r, i, 0), ry_res_get(r, i, 1));
	putchar('\n');
	ry_res_free(r);

	if (!(r = query(d, SQL_AGENTS, 2, params)))
		goto out;
	printf("\nagent          labels                slots  tasks     busy  utilisation\n");
	for (int i = 0; i < ry_res_rows(r); i++) {
		double busy = ry_res_get_double(r, i, 4);
		long s = ry_res_get_long(r, i, 2);
		printf("  %-12s %-21s %5ld  %5ld  %5.1f s", ry_res_get(r, i, 0),
		       ry_res_get(r, i, 1), s, ry_res_get_long(r, i, 3), busy);
		if (finished && makespan > 0 && s > 0)
			printf("  %5.1f %%", 100.0 * busy / ((double)s * makespan));
		putchar('\n');
	}
	ry_res_free(r);

	if (!(r = query(d, SQL_PLACEMENT, 1, params)))
		goto out;
	printf("\nplacement (tasks that need a special agent)\n");
	for (int i = 0; i < ry_res_rows(r); i++)
		printf("  %-20s needs %-13s ran on %s\n", ry_res_get(r, i, 0), ry_res_get(r, i, 1),
		       ry_res_get(r, i, 2));
	ry_res_free(r);

	if (!(r = query(d, SQL_NOT_SUCCEEDED, 1, params)))
		goto out;
	if (ry_res_rows(r) > 0) {
		printf("\nnot succeeded\n");
		for (int i = 0; i < ry_res_rows(r); i++) {
			printf("  %-20s %-9s %s\n", ry_res_get(r, i, 0), ry_res_get(r, i, 1),
			       ry_res_get(r, i, 2));
			if (strcmp(ry_res_get(r, i, 1), "failed") == 0 && *ry_res_get(r, i, 3))
				printf("  %-20s log: %s\n", "", ry_res_get(r, i, 3));
		}
		long more = ry_res_get_long(r, 0, 4) - ry_res_rows(r);
		if (more > 0)
			printf("  ... and %ld more (railyard status %ld)\n", more, d->pipeline_id);
	}
	ry_res_free(r);
	r = NULL;

	if (have_cp)
		print_critical_path(&cp);
out:
	demo_cp_release(&cp);
	ry_res_free(r);
	free(names_array);
	ry_strlist_release(&names);
	return rc;
}

static void print_explore(const struct demo *d)
{
	bool embedded = cmd_uses_embedded(d->ctx);

	printf("\nexplore");
	if (d->ctx->db_url)
		printf(" (add --db URL to each command)");
	else if (d->home_from_env && embedded)
		printf(" (with RAILYARD_HOME=%s)", d->ctx->home);
	printf("\n");
	printf("  railyard status %-8ld   tasks, agents, and why anything waits\n",
	       d->pipeline_id);
	printf("  railyard db psql           SQL on the same database, for example:\n");
	printf("      SELECT * FROM railyard.pipeline_summary WHERE id = %ld;\n", d->pipeline_id);
	printf("      SELECT at, actor, object, object_id, event, new_state, detail\n"
	       "        FROM railyard.audit_log WHERE pipeline_id = %ld ORDER BY id;\n",
	       d->pipeline_id);
	printf("      SELECT * FROM railyard.agent_utilization;\n");
	printf("  the spec:     %s\n", d->spec_path);
	printf("  worker logs:  %s/<worker>.log\n", d->dir);
	if (!embedded)
		return;
	printf("\nthe embedded database under %s is still running; stop it with\n", d->ctx->home);
	if (d->home_from_env)
		printf("  RAILYARD_HOME=%s railyard db stop\n", d->ctx->home);
	else
		printf("  railyard db stop     (here or in a directory below, as git finds .git)\n");
}

/* ---- the command ---- */

static int usage(FILE *out)
{
	fprintf(out, "usage: railyard demo [--fail SERVICE]\n\n"
		"Runs a pipeline for an imaginary shop of microservices (build, test, package\n"
		"and deploy tasks with typed dependencies) on three local workers and prints\n"
		"what the database recorded.\n"
		"  --fail SERVICE   make SERVICE's tests fail, to show failure handling\n");
	return out == stdout ? RY_EXIT_OK : RY_EXIT_ERROR;
}

static char *make_revision(void)
{
	/* A fresh commit-like id per run, so runs are told apart. */
	uint64_t x = (uint64_t)ry_wall_us() ^ ((uint64_t)getpid() << 32);
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 32;
	return ry_asprintf("%07llx", (unsigned long long)(x & 0xfffffff));
}

static bool write_spec(struct demo *d, const char *fail, size_t *ntasks, size_t *nedges,
		       size_t *nservices)
{
	struct ry_demo_pipeline p = { 0 };
	char *revision = make_revision();
	char *err = NULL, *json = NULL;
	bool ok = false;
	FILE *f = NULL;

	if (!ry_demo_generate(&p, revision, fail, &err)) {
		cmd_error("cannot generate the demo pipeline: %s", err);
		goto out;
	}
	*ntasks = p.ntasks;
	*nservices = p.nservices;
	*nedges = 0;
	for (size_t i = 0; i < p.ntasks; i++)
		*nedges += p.tasks[i].nneeds;
	json = ry_demo_to_json(&p);
	if (!ry_exec_mkdirs(d->dir, &err)) {
		cmd_error("cannot create the demo directory: %s", err);
		goto out;
	}
	f = fopen(d->spec_path, "w");
	if (!f || fputs(json, f) == EOF || fflush(f) == EOF) {
		cmd_error("cannot write %s: %s", d->spec_path, strerror(errno));
		goto out;
	}
	ok = true;
out:
	if (f && fclose(f) == EOF && ok) {
		cmd_error("cannot write %s: %s", d->spec_path, strerror(errno));
		ok = false;
	}
	free(err);
	free(json);
	free(revision);
	ry_demo_release(&p);
	return ok;
}

static void block_signals(struct demo *d)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigchld;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&d->signals);
	sigaddset(&d->signals, SIGINT);
	sigaddset(&d->signals, SIGTERM);
	sigaddset(&d->signals, SIGCHLD);
	sigprocmask(SIG_BLOCK, &d->signals, &d->oldmask);
}

int cmd_demo(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct demo d = { .ctx = ctx, .t0 = ry_now_ms() };
	const char *fail = NULL;
	char *err = NULL;
	size_t ntasks = 0, nedges = 0, nservices = 0;
	int rc = RY_EXIT_ERROR;

	static const struct option longopts[] = {
		{ "fail", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = cmd_getopt(argc, argv, "h", longopts)) != -1) {
		if (c == 'f')
			fail = optarg;
		else if (c == 'h')
			return usage(stdout);
		else
			return usage(stderr);
	}
	if (optind < argc) {
		cmd_error("demo takes no arguments, got '%s'", argv[optind]);
		return usage(stderr);
	}
	d.home_from_env = getenv("RAILYARD_HOME") && *getenv("RAILYARD_HOME");
	d.dir = ry_asprintf("%s/demo", ctx->home);
	d.spec_path = ry_asprintf("%s/pipeline.json", d.dir);
	/* Before the database: a bad --fail is reported without waiting for it. */
	if (!write_spec(&d, fail, &ntasks, &nedges, &nservices))
		goto out;

	printf("railyard demo: the microservices of an imaginary shop, built, tested and\n"
	       "deployed by three local workers, with PostgreSQL as the only coordinator.\n\n");
	bool embedded = cmd_uses_embedded(ctx);
	printf("[1/6] database     %s%s\n", embedded ? "embedded PostgreSQL under " : "",
	       embedded ? ctx->home
	       : ctx->db_url ? "the one given with --db"
	       : getenv("RAILYARD_DB") && *getenv("RAILYARD_DB") ? "$RAILYARD_DB"
	       : "from libpq's environment (PGHOST/PGDATABASE)");
	fflush(stdout);
	d.conninfo = cmd_conninfo(ctx, &err);
	if (!d.conninfo) {
		cmd_error("cannot start the database: %s", err);
		goto out;
	}
	struct ry_db_options opt = ctx->dbopt;
	opt.actor = "cli:demo";
	d.db = ry_db_connect(d.conninfo, &opt, &err);
	if (!d.db) {
		cmd_error("cannot connect to the database: %s", err);
		goto out;
	}
	/* Children resolve the same --db or environment we did; with the
	 * embedded cluster, the same home, each as the role its command needs
	 * (submit as a submitter, the workers as workers, wait as a reader). */
	d.db_arg = ctx->db_url;
	if (embedded && setenv("RAILYARD_HOME", ctx->home, 1) != 0) {
		cmd_error("cannot set RAILYARD_HOME for the demo's commands: %s", strerror(errno));
		goto out;
	}
	printf("                   ready after %.1f s\n", elapsed_s(&d));

	printf("[2/6] pipeline     %zu services, %zu tasks, %zu typed edges -> %s\n",
	       nservices, ntasks, nedges, d.spec_path);
	if (fail)
		printf("                   (the tests of %s will fail)\n", fail);

	block_signals(&d);
	printf("[3/6] submit       railyard submit %s -> ", d.spec_path);
	fflush(stdout);
	if (!submit(&d)) {
		printf("\n");
		goto out;
	}
	printf("pipeline %ld\n", d.pipeline_id);

	printf("[4/6] workers     ");
	for (size_t i = 0; i < DEMO_NWORKERS; i++)
		printf(" %s [%s] %s slots%s", worker_defs[i].name, worker_defs[i].labels,
		       worker_defs[i].slots, i + 1 < DEMO_NWORKERS ? "," : "\n");
	printf("                   --exit-when-idle, logs in %s/<name>.log\n", d.dir);
	if (!start_workers(&d)) {
		cancel_pipeline(&d);
		stop_workers(&d);
		goto out;
	}
	printf("[5/6] progress     railyard wait %ld --follow\n\n", d.pipeline_id);
	pause_for_signal(&d, 0);	/* a Ctrl-C during submit */
	if (d.interrupts || !follow(&d)) {
		if (d.interrupts)
			fprintf(stderr, "\ninterrupted: cancelling pipeline %ld and stopping the "
				"workers\n", d.pipeline_id);
		cancel_pipeline(&d);
		if (d.wait.pid > 0 && !d.wait.exited)
			kill(d.wait.pid, SIGTERM);
		stop_workers(&d);
		while (d.wait.pid > 0 && !d.wait.exited &&
		       waitpid(d.wait.pid, &d.wait.status, 0) < 0 && errno == EINTR)
			;
		if (d.interrupts)
			goto out;
		print_summary(&d);
		print_explore(&d);
		goto out;
	}
	wait_workers_idle(&d);
	if (d.interrupts)
		goto out;
	rc = print_summary(&d);
	print_explore(&d);
out:
	for (size_t i = 0; i < DEMO_NWORKERS; i++)
		free(d.workers[i].log);
	ry_db_close(d.db);
	free(d.conninfo);
	free(d.spec_path);
	free(d.dir);
	free(err);
	return rc;
}
