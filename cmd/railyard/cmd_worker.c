/*
 * railyard worker: flags and config file → pkg/worker.
 */
#include "cmd.h"
#include "config/config.h"
#include "exec/exec.h"
#include "lazylib/lazylib.h"
#include "worker/worker.h"

#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static void worker_usage(FILE *out)
{
	fprintf(out,
		"usage: railyard worker [--name N] [--labels a,b] [--slots N] [--exit-when-idle]\n"
		"                       [--dry-run] [--config FILE] [--cpus N] [--mem-mb N]\n"
		"                       [--heartbeat S] [--lease S] [--workdir DIR] [--drain-timeout S]\n"
		"                       [--stats FILE] [--cgroup auto|off] [--throttle on|off]\n"
		"                       [--min-slots N] [--pressure-dir DIR] [--http-listen HOST:PORT|off]\n"
		"                       [--claim-ahead N]\n"
		"\n"
		"  --name N           agent name (default: the hostname); unique per farm\n"
		"  --labels a,b       labels tasks may require; os and arch are always added\n"
		"  --slots N          most tasks at once (default 4)\n"
		"  --cpus N           cpu units offered (default: same as slots)\n"
		"  --mem-mb N         memory offered in MB (default: the host's)\n"
		"  --exit-when-idle   exit once nothing this agent could run is ready, running or blocked\n"
		"  --dry-run          claim and complete tasks without running them\n"
		"  --config FILE      key = value settings (db, name, labels, slots, cpus, mem_mb,\n"
		"                     heartbeat_s, lease_s, workdir, drain_timeout_s, cgroup,\n"
		"                     task_user, task_ids, db_passfile, secrets_dir, log_max_mb,\n"
		"                     claim_ahead, claim_ahead_hold_ms,\n"
		"                     match_limit, match_depth_limit, min_free_mb, retention_s,\n"
		"                     retention_mb, retention_min_s, retention_check_s,\n"
		"                     http_listen, webhooks, webhook_secrets_dir,\n"
		"                     container_runtime, container_options,\n"
		"                     throttle, min_slots, throttle_slow_start,\n"
		"                     throttle_start_slots,\n"
		"                     pressure_dir, meminfo_path, loadavg_path,\n"
		"                     memory_cgroup, throttle_interval_ms, throttle_decrease,\n"
		"                     pressure_{cpu,memory,io}_{high,low},\n"
		"                     mem_available_{low,ok}_pct, runnable_{high,low}; see\n"
		"                     docs/operations.md); flags win; SIGHUP re-reads it\n"
		"  --heartbeat S      heartbeat interval (default 2)\n"
		"  --lease S          lease: a silent agent loses its tasks after this (default 10)\n"
		"  --workdir DIR      workspaces and logs (default $RAILYARD_HOME/work)\n"
		"  --drain-timeout S  on SIGTERM, how long running tasks may finish (default 30)\n"
		"  --stats FILE       at exit, write claim latency percentiles and counts as JSON\n"
		"  --cgroup auto|off  one cgroup per task where the host allows (default auto);\n"
		"                     off: process groups only\n"
		"  --http-listen A    serve /metrics and /healthz on HOST:PORT (default\n"
		"                     127.0.0.1:9187; off: not at all)\n"
		"  --throttle on|off  adapt the concurrency limit to host pressure between\n"
		"                     min_slots and slots (AIMD; default on)\n"
		"  --min-slots N      the lowest the adaptive limit goes (default 1)\n"
		"  --pressure-dir DIR PSI files cpu, memory, io (default /proc/pressure)\n"
		"  --claim-ahead N    also claim up to N tasks beyond the free slots, started the\n"
		"                     moment one frees; handed back unstarted if none frees\n"
		"                     within claim_ahead_hold_ms (default 2000); 0: off (default)\n");
}

/* key=value added to a conninfo string or URL (later keys win in both). */
static char *conninfo_with(const char *conninfo, const char *key, const char *value)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, conninfo);
	if (strncmp(conninfo, "postgresql://", 13) == 0 || strncmp(conninfo, "postgres://", 11) == 0) {
		ry_buf_printf(&b, "%c%s=", strchr(conninfo, '?') ? '&' : '?', key);
		for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
			if (isalnum(*p) || strchr("-._~", *p))
				ry_buf_putc(&b, (char)*p);
			else
				ry_buf_printf(&b, "%%%02X", *p);
		}
	} else {
		ry_buf_printf(&b, "%s%s='", b.len ? " " : "", key);
		for (const char *p = value; *p; p++) {
			if (*p == '\\' || *p == '\'')
				ry_buf_putc(&b, '\\');
			ry_buf_putc(&b, *p);
		}
		ry_buf_putc(&b, '\'');
	}
	return ry_buf_detach(&b);
}

/*
 * The worker keeps no database credential in its environment: a task of
 * the same user could read /proc/PID/environ, which shows the environment
 * as the process started, so the bytes are overwritten, not only unset.
 */
static void scrub_env(const char *name)
{
	size_t n = strlen(name);
	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			memset(*e + n + 1, 0, strlen(*e + n + 1));
	unsetenv(name);
}

/* Flags that set a config key (so SIGHUP can re-apply them). */
static const struct {
	const char *flag;
	const char *key;
} flag_keys[] = {
	{ "name", "name" }, { "labels", "labels" }, { "slots", "slots" },
	{ "cpus", "cpus" }, { "mem-mb", "mem_mb" }, { "heartbeat", "heartbeat_s" },
	{ "lease", "lease_s" }, { "workdir", "workdir" },
	{ "drain-timeout", "drain_timeout_s" }, { "cgroup", "cgroup" },
	{ "http-listen", "http_listen" },
	{ "throttle", "throttle" }, { "min-slots", "min_slots" },
	{ "pressure-dir", "pressure_dir" }, { "claim-ahead", "claim_ahead" },
};

enum { OPT_KEY = 1000 };	/* OPT_KEY + i: flag_keys[i] */

/* The flag that sets key, for messages ("--min-slots", not "min_slots"). */
static const char *flag_of(const char *key)
{
	for (size_t i = 0; i < RY_ARRAY_SIZE(flag_keys); i++)
		if (strcmp(flag_keys[i].key, key) == 0)
			return flag_keys[i].flag;
	return key;
}

int cmd_worker(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct ry_worker_config cfg;
	struct ry_strlist flags = { 0 };
	const char *config_path = NULL, *stats_path = NULL;
	char *err = NULL, *conninfo = NULL;
	struct ry_worker *w = NULL;
	int rc = RY_EXIT_ERROR, c;
	bool exit_when_idle = false, dry_run = false;
	struct option opts[RY_ARRAY_SIZE(flag_keys) + 6] = {
		{ "help", no_argument, NULL, 'h' },
		{ "exit-when-idle", no_argument, NULL, 'x' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "stats", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
	};
	for (size_t k = 0; k < RY_ARRAY_SIZE(flag_keys); k++)
		opts[5 + k] = (struct option){ flag_keys[k].flag, required_argument, NULL, OPT_KEY + (int)k };

	ry_config_init(&cfg);
	while ((c = cmd_getopt(argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'h':
			worker_usage(stdout);
			rc = RY_EXIT_OK;
			goto out;
		case 'x':
			exit_when_idle = true;
			break;
		case 'n':
			dry_run = true;
			break;
		case 's':
			stats_path = optarg;
			break;
		case 'c':
			config_path = optarg;
			break;
		default:
			if (c < OPT_KEY || c >= OPT_KEY + (int)RY_ARRAY_SIZE(flag_keys)) {
				worker_usage(stderr);
				goto out;
			}
			ry_strlist_add(&flags, flag_keys[c - OPT_KEY].key);
			ry_strlist_add(&flags, optarg);
			break;
		}
	}
	if (optind < argc) {
		cmd_error("worker takes no arguments, got '%s'", argv[optind]);
		goto out;
	}
	/* A broken install fails here, not at the first webhook or artifact. */
	ry_lazylib_load_all();

	if (config_path && !ry_config_load_file(&cfg, config_path, &err))
		goto fail;
	for (size_t i = 0; i + 1 < flags.n; i += 2) {
		char *where = ry_asprintf("option --%s", flag_of(flags.items[i]));
		bool ok = ry_config_set(&cfg, flags.items[i], flags.items[i + 1], where, &err);
		free(where);
		if (!ok)
			goto fail;
	}
	if (!ry_config_check(&cfg, &err))
		goto fail;
	cfg.exit_when_idle = exit_when_idle;
	cfg.dry_run = dry_run;
	cfg.stats_path = stats_path ? ry_strdup(stats_path) : NULL;
	if (!cfg.name) {
		char host[256] = "worker";
		gethostname(host, sizeof(host) - 1);
		cfg.name = ry_strdup(host);
	}
	if (!cfg.workdir)
		cfg.workdir = ry_asprintf("%s/work", ctx->home);
	if (!ry_exec_mkdirs(cfg.workdir, &err))
		goto fail;
	char abs[PATH_MAX];
	if (!realpath(cfg.workdir, abs)) {
		err = ry_asprintf("cannot resolve workdir %s", cfg.workdir);
		goto fail;
	}
	free(cfg.workdir);
	cfg.workdir = ry_strdup(abs);

	/* --db beats the file's db, which beats the usual resolution. */
	if (ctx->db_url || !cfg.db) {
		if (!(conninfo = cmd_conninfo(ctx, &err))) {
			cmd_error("worker: cannot start the embedded database: %s", err);
			goto out;
		}
	} else {
		conninfo = ry_strdup(cfg.db);
	}
	/* Credentials live in the connection string (memory) or a file, not in
	 * the environment: libpq's PGPASSWORD is read once, here. */
	const char *pw = getenv("PGPASSWORD");
	if (pw && *pw) {
		char *with = conninfo_with(conninfo, "password", pw);
		free(conninfo);
		conninfo = with;
	}
	if (cfg.db_passfile) {
		char *with = conninfo_with(conninfo, "passfile", cfg.db_passfile);
		free(conninfo);
		conninfo = with;
	}
	scrub_env("RAILYARD_DB");
	scrub_env("PGPASSWORD");
	{
		char *prefix = ry_asprintf("railyard worker %s", cfg.name);
		ry_log_set_prefix(prefix);
		w = ry_worker_new(&cfg, conninfo, config_path, &flags);
		rc = ry_worker_run(w) == 0 ? RY_EXIT_OK : RY_EXIT_FAIL;
		ry_worker_free(w);
		ry_log_set_prefix(NULL);
		free(prefix);
	}
	goto out;
fail:
	cmd_error("worker: %s", err);
out:
	free(err);
	free(conninfo);
	ry_strlist_release(&flags);
	ry_config_release(&cfg);
	return rc;
}
