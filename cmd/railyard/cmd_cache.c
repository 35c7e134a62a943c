/*
 * railyard cache gc|stats|explain|revoke — the artifact cache for people
 * (docs/cache.md).
 *
 *   gc       removes database records by age, size cap and value
 *            (railyard.cache_gc), then their blobs from this host's local
 *            store and from the remote store where it allows DELETE, then
 *            local blobs the database no longer knows.  Never what a
 *            queued or running pipeline pins, never anything used within
 *            --grace (a restore in flight keeps reading an open blob even
 *            after it is unlinked).
 *   stats    hit rate, bytes, time saved from railyard.cache_stats.
 *   explain  what changed in a task's key since the last entry of the same
 *            task (railyard.cache_explain, worded by pkg/cache).
 *   revoke   invalidates entries by provenance (railyard.cache_revoke).
 *
 * Exit 0 done; 1 the operation found nothing to act on (explain of a task
 * without a key); 2 usage, connection or store errors.
 */
#include "cmd.h"
#include "cache/cache.h"
#include "store/store.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_GRACE_S (15 * 60)	/* a restore in flight is never this slow */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: railyard cache gc [--max-size SIZE] [--max-age AGE] [--grace AGE] [--dry-run]\n"
		"                         [--config FILE] [--cache-dir DIR] [--workdir DIR]\n"
		"       railyard cache stats [--days N]\n"
		"       railyard cache explain TASK          TASK: a task id, or PIPELINE:NAME\n"
		"       railyard cache revoke [--agent NAME] [--since TIME] [--key KEY] [--reason TEXT]\n"
		"\n"
		"  SIZE: 500M, 20G, ...  AGE: 90s, 30m, 12h, 7d, 2w  TIME: a timestamp or an AGE ago\n"
		"  --config FILE   the worker's config: cache_dir, cache_remote_* (credentials from files)\n"
		"  --cache-dir DIR the local store (default WORKDIR/cache)\n"
		"  --workdir DIR   the worker's state directory (default $RAILYARD_HOME/work)\n");
}

static struct ry_res *query(struct ry_db *db, const char *what, const char *sql, int n,
			    const char *const *params)
{
	char *err = NULL;
	struct ry_res *r = ry_db_query(db, sql, n, params, &err);
	if (!r) {
		cmd_error("cannot %s: %s", what, err);
		free(err);
	}
	return r;
}

static int col(const struct ry_res *r, const char *name)
{
	for (int i = 0; i < ry_res_cols(r); i++)
		if (strcmp(ry_res_colname(r, i), name) == 0)
			return i;
	return -1;	/* a query and its reader disagree: a bug, shown as "" below */
}

static const char *get(const struct ry_res *r, int row, const char *name)
{
	int c = col(r, name);
	return c < 0 ? "" : ry_res_get(r, row, c);
}

static char *age_interval(int64_t seconds)
{
	return ry_asprintf("%lld seconds", (long long)seconds);
}

/* ---- gc ------------------------------------------------------------------ */

struct gc_opts {
	int64_t max_size;	/* -1: none */
	int64_t max_age;	/* -1: none */
	int64_t grace;
	bool dry_run;
	const char *config, *cache_dir, *workdir;
};

struct local_blob {
	struct ry_store_blob b;
	double score;
	bool known, pinned, gone;
};

static int by_score(const void *a, const void *b)
{
	const struct local_blob *x = a, *y = b;
	return (y->score > x->score) - (y->score < x->score);
}

static bool delete_blob(struct ry_store *s, const char *digest, bool *refused_remote)
{
	struct ry_store_req *r = ry_store_req_new(RY_STORE_DELETE, RY_STORE_CAS, digest, NULL);
	enum ry_store_status st = ry_store_run(s, r);
	if (r->warning && strstr(r->warning, "does not allow DELETE"))
		*refused_remote = true;
	else if (r->warning)
		fprintf(stderr, "railyard: warning: %s\n", r->warning);
	if (st != RY_STORE_OK && st != RY_STORE_MISS && r->error)
		fprintf(stderr, "railyard: warning: %s\n", r->error);
	ry_store_req_free(r);
	return st == RY_STORE_OK;
}

/* Database records first, then their blobs. */
static bool gc_database(struct ry_db *db, struct ry_store *store, const struct gc_opts *o,
			int64_t *n_out, int64_t *bytes_out, int64_t *entries_out)
{
	char size[32], *age = o->max_age >= 0 ? age_interval(o->max_age) : NULL;
	char *grace = age_interval(o->grace);
	snprintf(size, sizeof(size), "%lld", (long long)o->max_size);
	const char *p[] = { o->max_size >= 0 ? size : NULL, age, grace, o->dry_run ? "true" : "false" };
	struct ry_res *r = query(db, "collect garbage in the database",
		"SELECT digest, size, entries, why FROM railyard.cache_gc($1::bigint, $2::interval, "
		"$3::interval, $4::boolean)", 4, p);
	struct ry_buf victims = RY_BUF_INIT;
	bool refused = false;

	free(age);
	free(grace);
	if (!r)
		return false;
	ry_buf_putc(&victims, '{');
	for (int i = 0; i < ry_res_rows(r); i++) {
		const char *d = get(r, i, "digest");
		*entries_out += strtol(get(r, i, "entries"), NULL, 10);
		if (!*d) {
			printf("  %s: %s entries\n", get(r, i, "why"), get(r, i, "entries"));
			continue;
		}
		(*n_out)++;
		*bytes_out += strtoll(get(r, i, "size"), NULL, 10);
		if (o->dry_run)
			printf("  would remove %.12s… (%s bytes, %s entries): %s\n", d, get(r, i, "size"),
			       get(r, i, "entries"), get(r, i, "why"));
		ry_buf_printf(&victims, "%s%s", victims.len > 1 ? "," : "", d);
	}
	ry_buf_putc(&victims, '}');
	ry_res_free(r);
	if (!o->dry_run && victims.len > 2) {
		/* A digest recorded again since (a worker just made it) stays. */
		const char *vp[] = { victims.data };
		struct ry_res *back = query(db, "check removed artifacts",
			"SELECT v FROM unnest($1::text[]) v WHERE NOT EXISTS "
			"(SELECT 1 FROM railyard.artifacts a WHERE a.digest = v)", 1, vp);
		for (int i = 0; back && i < ry_res_rows(back); i++)
			delete_blob(store, ry_res_get(back, i, 0), &refused);
		ry_res_free(back);
	}
	if (refused)
		printf("  the remote store does not allow DELETE: its blobs follow its own retention\n");
	ry_buf_release(&victims);
	return true;
}

/* This host's local store: blobs the database dropped, then age and size. */
static bool gc_local(struct ry_db *db, struct ry_store *store, const struct gc_opts *o,
		     int64_t *n_out, int64_t *bytes_out, int64_t *kept_pinned)
{
	struct ry_store *local = strcmp(store->ops->kind, "tiered") == 0 ? ry_store_tiered_local(store)
									 : store;
	struct ry_store_blob *blobs = NULL;
	struct local_blob *lb = NULL;
	size_t n = 0;
	char *err = NULL;
	int64_t total = 0, now = (int64_t)time(NULL);
	struct ry_buf keys = RY_BUF_INIT;
	bool ok = false;

	if (!ry_store_local_list(local, RY_STORE_CAS, &blobs, &n, &err)) {
		cmd_error("%s", err);
		free(err);
		return false;
	}
	lb = ry_calloc(n + 1, sizeof(*lb));
	ry_buf_putc(&keys, '{');
	for (size_t i = 0; i < n; i++) {
		lb[i].b = blobs[i];
		total += blobs[i].size;
		ry_buf_printf(&keys, "%s%s", i ? "," : "", blobs[i].key);
	}
	ry_buf_putc(&keys, '}');
	const char *kp[] = { keys.data };
	struct ry_res *r = query(db, "read artifact values",
		"SELECT o.digest, o.score, extract(epoch FROM o.last_used_at)::bigint AS used_s, "
		"  EXISTS (SELECT 1 FROM railyard.cache_pins() p WHERE p.digest = o.digest) AS pinned "
		"FROM railyard.cache_gc_order o WHERE o.digest = ANY ($1::text[])", 1, kp);
	if (!r)
		goto out;
	for (int i = 0; i < ry_res_rows(r); i++) {
		const char *d = get(r, i, "digest");
		for (size_t k = 0; k < n; k++) {
			if (strcmp(lb[k].b.key, d) != 0)
				continue;
			lb[k].known = true;
			lb[k].score = strtod(get(r, i, "score"), NULL);
			lb[k].pinned = strcmp(get(r, i, "pinned"), "t") == 0;
			/* last use anywhere (another host's hit counts too) */
			int64_t used = strtoll(get(r, i, "used_s"), NULL, 10);
			if (used > lb[k].b.used_s)
				lb[k].b.used_s = used;
		}
	}
	ry_res_free(r);
	for (size_t k = 0; k < n; k++) {
		struct local_blob *b = &lb[k];
		int64_t idle = now - b->b.used_s;
		if (!b->known)
			b->score = (double)idle * (double)b->b.size;
		if (b->pinned) {
			(*kept_pinned)++;
			continue;
		}
		if (idle < o->grace)
			continue;
		const char *why = !b->known ? "the database no longer records it"
			: (o->max_age >= 0 && idle > o->max_age) ? "unused longer than --max-age" : NULL;
		if (!why)
			continue;
		if (o->dry_run)
			printf("  would remove local %.12s… (%lld bytes): %s\n", b->b.key,
			       (long long)b->b.size, why);
		else
			delete_blob(local, b->b.key, &(bool){ false });
		b->gone = true;
		total -= b->b.size;
		(*n_out)++;
		*bytes_out += b->b.size;
	}
	if (o->max_size >= 0 && total > o->max_size) {
		if (n)
			qsort(lb, n, sizeof(*lb), by_score);
		for (size_t k = 0; k < n && total > o->max_size; k++) {
			struct local_blob *b = &lb[k];
			if (b->gone || b->pinned || now - b->b.used_s < o->grace)
				continue;
			if (o->dry_run)
				printf("  would remove local %.12s… (%lld bytes): over --max-size\n",
				       b->b.key, (long long)b->b.size);
			else
				delete_blob(local, b->b.key, &(bool){ false });
			total -= b->b.size;
			(*n_out)++;
			*bytes_out += b->b.size;
		}
	}
	if (!o->dry_run)
		ry_store_local_clean_tmp(local, 86400);
	ok = true;
out:
	ry_buf_release(&keys);
	free(blobs);
	free(lb);
	return ok;
}

static int cache_gc(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "max-size", required_argument, NULL, 's' }, { "max-age", required_argument, NULL, 'a' },
		{ "grace", required_argument, NULL, 'g' }, { "dry-run", no_argument, NULL, 'n' },
		{ "config", required_argument, NULL, 'c' }, { "cache-dir", required_argument, NULL, 'd' },
		{ "workdir", required_argument, NULL, 'w' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gc_opts o = { -1, -1, 0, false, NULL, NULL, NULL };
	struct ry_cache_config cfg;
	struct ry_store *store = NULL;
	struct ry_db *db = NULL;
	char *err = NULL, *workdir = NULL;
	int c, rc = RY_EXIT_ERROR;

	ry_cache_config_init(&cfg);
	o.grace = DEFAULT_GRACE_S;
	optind = 1;
	while ((c = cmd_getopt(argc, argv, "h", longopts)) != -1) {
		switch (c) {
		case 's':
			if (!ry_cache_parse_size(optarg, &o.max_size)) {
				cmd_error("--max-size: \"%s\" is not a size (500M, 20G, ...)", optarg);
				goto out;
			}
			break;
		case 'a':
		case 'g':
			if (!ry_cache_parse_age(optarg, c == 'a' ? &o.max_age : &o.grace)) {
				cmd_error("--%s: \"%s\" is not an age (90s, 30m, 12h, 7d, 2w)",
					 c == 'a' ? "max-age" : "grace", optarg);
				goto out;
			}
			break;
		case 'n':
			o.dry_run = true;
			break;
		case 'c':
			o.config = optarg;
			break;
		case 'd':
			o.cache_dir = optarg;
			break;
		case 'w':
			o.workdir = optarg;
			break;
		case 'h':
			usage(stdout);
			rc = RY_EXIT_OK;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (optind < argc) {
		cmd_error("cache gc takes no arguments, got \"%s\"", argv[optind]);
		goto out;
	}
	if (o.config && !ry_cache_config_load_file(&cfg, o.config, &err))
		goto fail;
	if (o.cache_dir) {
		free(cfg.dir);
		cfg.dir = ry_strdup(o.cache_dir);
	}
	workdir = o.workdir ? ry_strdup(o.workdir) : ry_asprintf("%s/work", ctx->home);
	if (!(store = ry_cache_config_open_store(&cfg, NULL, workdir, &err)))
		goto fail;
	if (!(db = cmd_connect(ctx, "cli:cache-gc")))
		goto out;

	int64_t n_db = 0, b_db = 0, entries = 0, n_local = 0, b_local = 0, pinned = 0;
	printf("%s\n", o.dry_run ? "dry run: nothing is removed" : "collecting garbage");
	if (!gc_database(db, store, &o, &n_db, &b_db, &entries) ||
	    !gc_local(db, store, &o, &n_local, &b_local, &pinned))
		goto out;
	char s1[32], s2[32];
	ry_cache_format_size(s1, sizeof(s1), b_db);
	ry_cache_format_size(s2, sizeof(s2), b_local);
	printf("database: %s %lld artifacts (%s) and %lld cache entries\n",
	       o.dry_run ? "would remove" : "removed", (long long)n_db, s1, (long long)entries);
	printf("%s: %s %lld blobs (%s); kept %lld pinned by queued or running pipelines\n",
	       store->name, o.dry_run ? "would remove" : "removed", (long long)n_local, s2,
	       (long long)pinned);
	rc = RY_EXIT_OK;
	goto out;
fail:
	cmd_error("cache gc: %s", err);
out:
	free(err);
	free(workdir);
	ry_store_free(store);
	ry_db_close(db);
	ry_cache_config_release(&cfg);
	return rc;
}

/* ---- stats --------------------------------------------------------------- */

static void print_rows(struct ry_res *r, const char *title, const char *key)
{
	printf("\n%-24s %8s %8s %8s %10s %10s %12s\n", title, "lookups", "hits", "hit %",
	       "stored", "restored", "time saved");
	for (int i = 0; i < ry_res_rows(r); i++) {
		char st[32], re[32], saved[32];
		ry_cache_format_size(st, sizeof(st), strtoll(get(r, i, "bytes_stored"), NULL, 10));
		ry_cache_format_size(re, sizeof(re), strtoll(get(r, i, "bytes_restored"), NULL, 10));
		ry_format_duration(saved, sizeof(saved), strtod(get(r, i, "time_saved_s"), NULL));
		const char *k = get(r, i, key);
		printf("%-24.24s %8s %8s %8s %10s %10s %12s\n", *k ? k : "(none)", get(r, i, "lookups"),
		       get(r, i, "hits"), get(r, i, "hit_rate_pct"), st, re, saved);
	}
}

static int cache_stats(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "days", required_argument, NULL, 'd' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long days = 7;
	int c;
	optind = 1;
	while ((c = cmd_getopt(argc, argv, "h", longopts)) != -1) {
		if (c == 'd' && ry_parse_long(optarg, 1, 36500, &days))
			continue;
		if (c == 'h') {
			usage(stdout);
			return RY_EXIT_OK;
		}
		if (c == 'd')
			cmd_error("--days: \"%s\" is not a whole number from 1 to 36500", optarg);
		else
			usage(stderr);
		return RY_EXIT_ERROR;
	}
	if (optind < argc) {
		cmd_error("cache stats takes no arguments, got \"%s\"", argv[optind]);
		return RY_EXIT_ERROR;
	}
	struct ry_db *db = cmd_connect(ctx, "cli:cache-stats");
	if (!db)
		return RY_EXIT_ERROR;
	char d[16];
	snprintf(d, sizeof(d), "%ld", days);
	const char *p[] = { d };
	static const char *const groupings[][2] = {
		{ "'all'", "total" }, { "coalesce(team, '')", "team" },
		{ "coalesce(service, '')", "service" }, { "to_char(day, 'YYYY-MM-DD')", "day" },
	};
	int rc = RY_EXIT_OK;
	printf("cache, last %ld days (railyard.cache_stats)\n", days);
	for (size_t g = 0; g < RY_ARRAY_SIZE(groupings); g++) {
		char *sql = ry_asprintf(
			"SELECT %s AS k, sum(lookups) AS lookups, sum(hits) AS hits, "
			"  round(100.0 * sum(hits) / nullif(sum(lookups), 0), 1) AS hit_rate_pct, "
			"  sum(bytes_stored) AS bytes_stored, sum(bytes_restored) AS bytes_restored, "
			"  sum(time_saved_s) AS time_saved_s "
			"FROM railyard.cache_stats WHERE day > now() - make_interval(days => $1::int) "
			"GROUP BY 1 ORDER BY %s LIMIT 30", groupings[g][0],
			g == 3 ? "1 DESC" : "sum(lookups) DESC, 1");
		struct ry_res *r = query(db, "read railyard.cache_stats", sql, 1, p);
		free(sql);
		if (!r) {
			rc = RY_EXIT_ERROR;
			break;
		}
		if (g == 0 && ry_res_rows(r) == 0)
			printf("\nno keyed task ran in that time\n");
		if (ry_res_rows(r) > 0)
			print_rows(r, groupings[g][1], "k");
		ry_res_free(r);
	}
	ry_db_close(db);
	return rc;
}

/* ---- explain -------------------------------------------------------------- */

static int cache_explain(struct cmd_ctx *ctx, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		usage(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
		return argc == 2 && strcmp(argv[1], "--help") == 0 ? RY_EXIT_OK : RY_EXIT_ERROR;
	}
	const char *spec = argv[1], *colon = strchr(spec, ':');
	long id = 0;
	char *pid = NULL;
	if (colon) {
		pid = ry_strndup(spec, (size_t)(colon - spec));
		long p;
		if (!ry_parse_long(pid, 1, LONG_MAX, &p) || !colon[1]) {
			cmd_error("cache explain: \"%s\" is neither a task id nor PIPELINE:NAME", spec);
			free(pid);
			return RY_EXIT_ERROR;
		}
	} else if (!ry_parse_long(spec, 1, LONG_MAX, &id)) {
		cmd_error("cache explain: \"%s\" is neither a task id nor PIPELINE:NAME", spec);
		return RY_EXIT_ERROR;
	}
	struct ry_db *db = cmd_connect(ctx, "cli:cache-explain");
	int rc = RY_EXIT_ERROR;
	struct ry_res *r = NULL;
	struct ry_cache_key before = { 0 }, now = { 0 };
	struct ry_strlist lines = { 0 };
	char *err = NULL, *idtext = NULL;
	if (!db)
		goto out;
	if (colon) {
		const char *p[] = { pid, colon + 1 };
		r = query(db, "find the task", "SELECT id FROM railyard.tasks WHERE pipeline_id = "
			  "$1::bigint AND name = $2", 2, p);
		if (!r)
			goto out;
		if (ry_res_rows(r) == 0) {
			cmd_error("cache explain: pipeline %s has no task \"%s\"", pid, colon + 1);
			goto out;
		}
		id = ry_res_get_long(r, 0, 0);
		ry_res_free(r);
	}
	idtext = ry_asprintf("%ld", id);
	const char *p[] = { idtext };
	r = query(db, "explain the key", "SELECT * FROM railyard.cache_explain($1::bigint)", 1, p);
	if (!r)
		goto out;
	if (ry_res_rows(r) == 0) {
		cmd_error("cache explain: task %ld does not exist", id);
		goto out;
	}
	const char *name = get(r, 0, "task_name");
	if (!*get(r, 0, "key")) {
		printf("task %ld (%s) has no cache key: it has not run yet, or it is not cacheable and "
		       "declares no inputs\n", id, name);
		rc = RY_EXIT_FAIL;
		goto out;
	}
	const char *outcome = get(r, 0, "outcome");
	printf("task %ld %s: key %.12s… %s\n", id, name, get(r, 0, "key"),
	       strcmp(outcome, "cached") == 0 ? "hit (served from the cache)"
	       : strcmp(outcome, "failed") == 0 ? "miss (ran, failed)" : "miss (ran, succeeded)");
	if (!*get(r, 0, "prev_key")) {
		printf("no earlier entry of %s from this source: a first build, nothing to compare\n",
		       name);
		rc = RY_EXIT_OK;
		goto out;
	}
	printf("compared with entry %.12s… (task %s, %s%s):\n", get(r, 0, "prev_key"),
	       get(r, 0, "prev_task_id"), get(r, 0, "prev_created_at"),
	       strcmp(get(r, 0, "prev_revoked"), "t") == 0 ? ", revoked" : "");
	if (!ry_cache_key_from_json(&before, get(r, 0, "prev_components"), &err) ||
	    !ry_cache_key_from_json(&now, get(r, 0, "components"), &err)) {
		cmd_error("cache explain: %s", err);
		goto out;
	}
	if (strcmp(get(r, 0, "key"), get(r, 0, "prev_key")) == 0)
		printf("  the same key: every component unchanged\n");
	else {
		ry_cache_explain(&before, &now, &lines);
		for (size_t i = 0; i < lines.n; i++)
			printf("  %s\n", lines.items[i]);
	}
	rc = RY_EXIT_OK;
out:
	free(err);
	free(pid);
	free(idtext);
	ry_strlist_release(&lines);
	ry_cache_key_release(&before);
	ry_cache_key_release(&now);
	ry_res_free(r);
	ry_db_close(db);
	return rc;
}

/* ---- revoke ------------------------------------------------------------------ */

static int cache_revoke(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "agent", required_argument, NULL, 'a' }, { "since", required_argument, NULL, 's' },
		{ "key", required_argument, NULL, 'k' }, { "reason", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	const char *agent = NULL, *since = NULL, *key = NULL, *reason = NULL;
	int c;
	optind = 1;
	while ((c = cmd_getopt(argc, argv, "h", longopts)) != -1) {
		switch (c) {
		case 'a': agent = optarg; break;
		case 's': since = optarg; break;
		case 'k': key = optarg; break;
		case 'r': reason = optarg; break;
		case 'h':
			usage(stdout);
			return RY_EXIT_OK;
		default:
			usage(stderr);
			return RY_EXIT_ERROR;
		}
	}
	if (optind < argc || (!agent && !since && !key)) {
		cmd_error("cache revoke needs --agent NAME, --since TIME or --key KEY");
		return RY_EXIT_ERROR;
	}
	if (key && !ry_hash_is_hex(key)) {
		cmd_error("--key: \"%s\" is not a cache key (64 lowercase hex digits)", key);
		return RY_EXIT_ERROR;
	}
	/* --since 2h: two hours ago; anything else is PostgreSQL's timestamp */
	int64_t ago;
	char *age = since && ry_cache_parse_age(since, &ago) ? age_interval(ago) : NULL;
	struct ry_db *db = cmd_connect(ctx, "cli:cache-revoke");
	int rc = RY_EXIT_ERROR;
	if (db) {
		const char *sql = "SELECT revocation_id, entries FROM railyard.cache_revoke($1, "
				  "coalesce($2::timestamptz, now() - $5::interval), $3, $4)";
		const char *p[] = { agent, age ? NULL : since, key, reason, age };
		char *err = NULL;
		struct ry_res *r = ry_db_query(db, sql, 5, p, &err);
		if (!r) {
			if (since && strstr(err, "timestamp"))
				cmd_error("--since: \"%s\" is neither a time nor an age (2h, 1d): %s", since, err);
			else
				cmd_error("cannot revoke: %s", err);
			free(err);
		} else {
			long n = ry_res_get_long(r, 0, 1);
			printf("revoked %ld cache entr%s (revocation %s)%s\n", n, n == 1 ? "y" : "ies",
			       ry_res_get(r, 0, 0), n == 0 ? ": nothing matched" : "");
			rc = RY_EXIT_OK;
		}
		ry_res_free(r);
		ry_db_close(db);
	}
	free(age);
	return rc;
}

int cmd_cache(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct cmd_ctx *, int, char **);
	} subs[] = {
		{ "gc", cache_gc }, { "stats", cache_stats }, { "explain", cache_explain },
		{ "revoke", cache_revoke },
	};
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? RY_EXIT_ERROR : RY_EXIT_OK;
	}
	for (size_t i = 0; i < RY_ARRAY_SIZE(subs); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].fn(ctx, argc - 1, argv + 1);
	cmd_error("unknown cache command \"%s\" (gc, stats, explain, revoke)", argv[1]);
	return RY_EXIT_ERROR;
}
