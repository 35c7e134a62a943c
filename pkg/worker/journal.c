#include "worker/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COMPACT_BYTES (4u << 20)	/* rewrite past this ... */
#define COMPACT_PENDING 256		/* ... when at most this many are pending */

/* A pending result: its key, its record, kept in the order added (for a
 * rewrite) and in a hash (for acknowledgements). */
struct entry {
	int64_t task_id;
	int attempt;
	char *line;		/* its JSON line, newline included */
	struct entry *prev, *next;
	struct entry *hnext;
};

struct ry_journal {
	char *path;
	int fd;
	uint64_t size;
	bool dirty;		/* added since the last sync */
	int err;
	struct entry *head, *tail;	/* pending, in the order added */
	struct entry **buckets;
	size_t nbuckets;		/* a power of two */
	size_t nlive;
};

void ry_journal_result_release(struct ry_journal_result *r)
{
	free(r->name);
	free(r->outcome);
	free(r->reason);
	free(r->log_path);
	free(r->log_tail);
	free(r->cache);
	memset(r, 0, sizeof(*r));
}

/* ---- records ------------------------------------------------------------- */

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static char *encode(const struct ry_journal_result *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "result", json_integer(1));
	json_object_set_new(o, "agent", json_integer(r->agent_id));
	json_object_set_new(o, "task", json_integer(r->task_id));
	json_object_set_new(o, "attempt", json_integer(r->attempt));
	json_object_set_new(o, "pipeline", json_integer(r->pipeline_id));
	json_object_set_new(o, "name", jstr(r->name));
	json_object_set_new(o, "outcome", jstr(r->outcome));
	json_object_set_new(o, "exit_code", r->exit_code >= 0 ? json_integer(r->exit_code)
							       : json_null());
	json_object_set_new(o, "reason", jstr(r->reason));
	json_object_set_new(o, "started_us", json_integer(r->started_us));
	json_object_set_new(o, "finished_us", json_integer(r->finished_us));
	json_object_set_new(o, "duration_s", r->duration_s >= 0 ? json_real(r->duration_s)
								 : json_null());
	json_object_set_new(o, "log_path", jstr(r->log_path));
	json_object_set_new(o, "log_tail", jstr(r->log_tail));
	json_object_set_new(o, "cpu_s", r->cpu_s >= 0 ? json_real(r->cpu_s) : json_null());
	json_object_set_new(o, "mem_peak_bytes", r->mem_peak_bytes >= 0
						 ? json_integer(r->mem_peak_bytes) : json_null());
	json_object_set_new(o, "io_read_bytes", r->io_read_bytes >= 0
						? json_integer(r->io_read_bytes) : json_null());
	json_object_set_new(o, "io_write_bytes", r->io_write_bytes >= 0
						 ? json_integer(r->io_write_bytes) : json_null());
	json_t *cache = r->cache ? json_loads(r->cache, 0, NULL) : NULL;
	if (cache)
		json_object_set_new(o, "cache", cache);
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	char *line = ry_asprintf("%s\n", text ? text : "{}");
	free(text);
	return line;
}

static char *get_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? ry_strdup(s) : NULL;
}

static double get_real(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : -1;
}

static int64_t get_int(json_t *o, const char *key, int64_t absent)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : absent;
}

static bool decode(json_t *o, struct ry_journal_result *r)
{
	memset(r, 0, sizeof(*r));
	if (!json_is_integer(json_object_get(o, "task")) ||
	    !json_is_integer(json_object_get(o, "attempt")) ||
	    !json_is_string(json_object_get(o, "outcome")))
		return false;
	r->agent_id = get_int(o, "agent", 0);
	r->task_id = get_int(o, "task", 0);
	r->attempt = (int)get_int(o, "attempt", 0);
	r->pipeline_id = get_int(o, "pipeline", 0);
	r->name = get_str(o, "name");
	r->outcome = get_str(o, "outcome");
	r->exit_code = (int)get_int(o, "exit_code", -1);
	r->reason = get_str(o, "reason");
	r->started_us = get_int(o, "started_us", 0);
	r->finished_us = get_int(o, "finished_us", 0);
	r->duration_s = get_real(o, "duration_s");
	r->log_path = get_str(o, "log_path");
	r->log_tail = get_str(o, "log_tail");
	r->cpu_s = get_real(o, "cpu_s");
	r->mem_peak_bytes = get_int(o, "mem_peak_bytes", -1);
	r->io_read_bytes = get_int(o, "io_read_bytes", -1);
	r->io_write_bytes = get_int(o, "io_write_bytes", -1);
	json_t *cache = json_object_get(o, "cache");
	r->cache = json_is_object(cache) ? json_dumps(cache, JSON_COMPACT) : NULL;
	return true;
}

/* ---- the live set -------------------------------------------------------- */

static size_t bucket(const struct ry_journal *j, int64_t id, int attempt)
{
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uint32_t)attempt;
	return (size_t)((h ^ (h >> 31)) & (j->nbuckets - 1));
}

static struct entry *find_live(const struct ry_journal *j, int64_t id, int attempt)
{
	struct entry *e = j->buckets[bucket(j, id, attempt)];
	while (e && !(e->task_id == id && e->attempt == attempt))
		e = e->hnext;
	return e;
}

static void grow(struct ry_journal *j)
{
	size_t old_n = j->nbuckets;
	struct entry **old = j->buckets;
	j->nbuckets = old_n ? old_n * 2 : 256;
	j->buckets = ry_calloc(j->nbuckets, sizeof(*j->buckets));
	for (size_t i = 0; i < old_n; i++) {
		for (struct entry *e = old[i], *next; e; e = next) {
			next = e->hnext;
			size_t b = bucket(j, e->task_id, e->attempt);
			e->hnext = j->buckets[b];
			j->buckets[b] = e;
		}
	}
	free(old);
}

static void live_put(struct ry_journal *j, int64_t id, int attempt, char *line)
{
	struct entry *e = find_live(j, id, attempt);
	if (e) {
		/* A newer version of the same result (rewritten as failed). */
		free(e->line);
		e->line = line;
		return;
	}
	if (j->nlive + 1 > j->nbuckets)
		grow(j);
	e = ry_calloc(1, sizeof(*e));
	e->task_id = id;
	e->attempt = attempt;
	e->line = line;
	size_t b = bucket(j, id, attempt);
	e->hnext = j->buckets[b];
	j->buckets[b] = e;
	e->prev = j->tail;
	if (j->tail)
		j->tail->next = e;
	else
		j->head = e;
	j->tail = e;
	j->nlive++;
}

static void live_drop(struct ry_journal *j, int64_t id, int attempt)
{
	struct entry **pp = &j->buckets[bucket(j, id, attempt)];
	while (*pp && !((*pp)->task_id == id && (*pp)->attempt == attempt))
		pp = &(*pp)->hnext;
	struct entry *e = *pp;
	if (!e)
		return;
	*pp = e->hnext;
	if (e->prev)
		e->prev->next = e->next;
	else
		j->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		j->tail = e->prev;
	free(e->line);
	free(e);
	j->nlive--;
}

/* ---- file ---------------------------------------------------------------- */

static bool write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Rewrites the file with only the pending results (temp, fsync, rename). */
static bool rewrite(struct ry_journal *j)
{
	char *tmp = ry_asprintf("%s.tmp", j->path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0;
	uint64_t size = 0;
	for (struct entry *e = j->head; ok && e; e = e->next) {
		size_t len = strlen(e->line);
		ok = write_all(fd, e->line, len);
		size += len;
	}
	ok = ok && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	ok = ok && rename(tmp, j->path) == 0;
	if (!ok) {
		j->err = errno;
		(void)unlink(tmp);
		free(tmp);
		return false;
	}
	free(tmp);
	int nfd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (nfd < 0) {
		j->err = errno;
		return false;
	}
	close(j->fd);
	j->fd = nfd;
	j->size = size;
	j->dirty = false;
	return true;
}

static void replay(struct ry_journal *j, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int lineno = 0;
	while ((len = getline(&line, &cap, f)) > 0) {
		lineno++;
		json_error_t e;
		json_t *o = json_loadb(line, (size_t)len, 0, &e);
		json_t *acks = o ? json_object_get(o, "ack") : NULL;
		if (o && json_is_array(acks)) {
			size_t i;
			json_t *pair;
			json_array_foreach(acks, i, pair)
				live_drop(j, (int64_t)json_integer_value(json_array_get(pair, 0)),
					  (int)json_integer_value(json_array_get(pair, 1)));
		} else if (o && json_object_get(o, "result")) {
			int64_t id = get_int(o, "task", 0);
			int attempt = (int)get_int(o, "attempt", 0);
			if (id > 0)
				live_put(j, id, attempt, ry_strndup(line, (size_t)len));
			else
				ry_warn("%s:%d: a result without a task id: skipped", j->path, lineno);
		} else if (line[len - 1] == '\n') {
			/* A torn last line (the crash came mid-write) is expected. */
			ry_warn("%s:%d: cannot read the record (%s): skipped", j->path, lineno,
				o ? "not a result or an acknowledgement" : e.text);
		}
		json_decref(o);
	}
	free(line);
}

struct ry_journal *ry_journal_open(const char *path, struct ry_journal_result **pending,
				   size_t *n, char **err)
{
	struct ry_journal *j = ry_calloc(1, sizeof(*j));
	j->path = ry_strdup(path);
	grow(j);
	j->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	*pending = NULL;
	*n = 0;
	if (j->fd < 0) {
		*err = ry_asprintf("cannot open the journal %s: %s", path, strerror(errno));
		free(j->buckets);
		free(j->path);
		free(j);
		return NULL;
	}
	FILE *f = fopen(path, "r");
	if (f) {
		replay(j, f);
		fclose(f);
	}
	if (!rewrite(j)) {
		*err = ry_asprintf("cannot rewrite the journal %s: %s", path, strerror(j->err));
		ry_journal_close(j);
		return NULL;
	}
	if (j->nlive) {
		*pending = ry_calloc(j->nlive, sizeof(**pending));
		for (struct entry *e = j->head; e; e = e->next) {
			json_t *o = json_loads(e->line, 0, NULL);
			if (o && decode(o, &(*pending)[*n]))
				(*n)++;
			json_decref(o);
		}
	}
	return j;
}

bool ry_journal_add(struct ry_journal *j, const struct ry_journal_result *r)
{
	char *line = encode(r);
	size_t len = strlen(line);
	if (!write_all(j->fd, line, len)) {
		j->err = errno;
		/* A partial line would be torn: the next record starts afresh. */
		(void)write_all(j->fd, "\n", 1);
		live_put(j, r->task_id, r->attempt, line);
		return false;
	}
	j->size += len;
	j->dirty = true;
	live_put(j, r->task_id, r->attempt, line);
	return true;
}

bool ry_journal_sync(struct ry_journal *j)
{
	if (!j->dirty)
		return j->err == 0;
	if (fdatasync(j->fd) < 0) {
		j->err = errno;
		return false;
	}
	j->dirty = false;
	j->err = 0;
	return true;
}

void ry_journal_ack(struct ry_journal *j, const int64_t *task_ids, const int *attempts, size_t n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n; i++)
		live_drop(j, task_ids[i], attempts[i]);
	if (!j->nlive) {
		/* Nothing pending: an empty journal says it all. */
		if (ftruncate(j->fd, 0) == 0) {
			j->size = 0;
			j->dirty = false;
			return;
		}
	} else if (j->size > COMPACT_BYTES && j->nlive <= COMPACT_PENDING && rewrite(j)) {
		return;
	}
	json_t *acks = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(acks, json_pack("[I, i]", (json_int_t)task_ids[i], attempts[i]));
	json_t *o = json_pack("{s:o}", "ack", acks);
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	char *line = ry_asprintf("%s\n", text);
	free(text);
	/* Not synced: a lost acknowledgement only means a result is sent again,
	 * and the database recognises a repeat. */
	if (write_all(j->fd, line, strlen(line)))
		j->size += strlen(line);
	free(line);
}

int ry_journal_error(const struct ry_journal *j)
{
	return j->err;
}

size_t ry_journal_pending(const struct ry_journal *j)
{
	return j->nlive;
}

uint64_t ry_journal_size(const struct ry_journal *j)
{
	return j->size;
}

void ry_journal_close(struct ry_journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	while (j->head)
		live_drop(j, j->head->task_id, j->head->attempt);
	free(j->buckets);
	free(j->path);
	free(j);
}
