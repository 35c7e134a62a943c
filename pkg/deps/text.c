/*
 * Small text helpers shared by the detectors: relative paths, globs,
 * variable expansion, address values, image references, line iteration
 * and the multi-document YAML loader over pkg/spec's tree.
 */
#include "deps/detect.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- paths ------------------------------------------------------------------ */

char *ry_deps_path_normalize(const char *path)
{
	if (!path || !*path || path[0] == '/')
		return NULL;
	size_t len = strlen(path);
	char *out = ry_malloc(len + 2);
	size_t n = 0;
	const char *p = path;

	while (*p) {
		const char *end = strchr(p, '/');
		size_t seg = end ? (size_t)(end - p) : strlen(p);
		if (seg == 0 || (seg == 1 && p[0] == '.')) {
			/* nothing */
		} else if (seg == 2 && p[0] == '.' && p[1] == '.') {
			if (n == 0) {
				free(out);
				return NULL;
			}
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;	/* the separator */
		} else {
			if (n > 0)
				out[n++] = '/';
			memcpy(out + n, p, seg);
			n += seg;
		}
		p += seg;
		if (*p == '/')
			p++;
	}
	if (n == 0)
		out[n++] = '.';
	out[n] = '\0';
	return out;
}

char *deps_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? ry_strndup(path, (size_t)(slash - path)) : ry_strdup(".");
}

const char *deps_basename(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

bool deps_each_parent(const char *path, bool (*fn)(void *arg, const char *dir), void *arg)
{
	if (strcmp(path, ".") == 0)
		return false;
	char *p = deps_dirname(path);
	bool hit = false;
	for (;;) {
		if ((hit = fn(arg, p)) || strcmp(p, ".") == 0)
			break;
		char *slash = strrchr(p, '/');
		if (slash)
			*slash = '\0';
		else
			strcpy(p, ".");
	}
	free(p);
	return hit;
}

char *deps_join(const char *dir, const char *rel)
{
	if (!rel || !*rel || rel[0] == '/')
		return NULL;
	if (!dir || strcmp(dir, ".") == 0)
		return ry_deps_path_normalize(rel);
	char *both = ry_asprintf("%s/%s", dir, rel);
	char *out = ry_deps_path_normalize(both);
	free(both);
	return out;
}

bool deps_path_in(const char *path, const char *dir)
{
	if (strcmp(dir, ".") == 0)
		return true;
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* ---- globs -------------------------------------------------------------------- */

char *ry_deps_prefix_regex(const char *prefix)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_putc(&b, '^');
	ry_regex_quote(&b, prefix);
	return ry_buf_detach(&b);
}

/* ---- lines -------------------------------------------------------------------- */

int deps_line_at(const char *data, size_t off)
{
	int line = 1;
	for (size_t i = 0; i < off; i++)
		if (data[i] == '\n')
			line++;
	return line;
}

char *deps_strip(const char *s, size_t n)
{
	while (n > 0 && isspace((unsigned char)*s))
		s++, n--;
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	return ry_strndup(s, n);
}

char *deps_span(const char *s, const struct ry_match_span *sp)
{
	if (sp->start < 0)
		return NULL;
	return ry_strndup(s + sp->start, (size_t)(sp->end - sp->start));
}

void deps_each_line(struct deps_ctx *c, void *arg, const char *data, size_t len,
		    void (*fn)(struct deps_ctx *c, void *arg, int line_no, const char *line,
			       size_t len))
{
	size_t i = 0;
	int no = 1;
	while (i < len) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - data) : len;
		size_t n = end - i;
		if (n > 0 && data[i + n - 1] == '\r')
			n--;
		fn(c, arg, no, data + i, n);
		i = end + 1;
		no++;
	}
}

struct ry_match *deps_regex(const char *pattern)
{
	char *err = NULL;
	struct ry_match *m = ry_match_compile(pattern, &err);
	if (!m) {
		ry_error("internal pattern %s does not compile: %s", pattern, err);
		abort();
	}
	return m;
}

/* ---- variables -------------------------------------------------------------- */

static bool var_char(char ch, bool first)
{
	return ch == '_' || isalpha((unsigned char)ch) || (!first && isdigit((unsigned char)ch));
}

char *deps_expand(const char *s, const char *(*lookup)(void *arg, const char *name), void *arg)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "");
	for (const char *p = s; *p;) {
		if (p[0] != '$') {
			ry_buf_putc(&b, *p++);
			continue;
		}
		if (p[1] == '$') {
			ry_buf_putc(&b, '$');
			p += 2;
			continue;
		}
		if (p[1] == '{') {
			/* ${a.b} (Maven properties have dots), ${A:-d}, ${A-d} */
			const char *q = p + 2, *name = q;
			while (var_char(*q, q == name) || (q > name && *q == '.'))
				q++;
			const char *close = strchr(q, '}');
			if (q == name || !close || (*q != '}' && *q != ':' && *q != '-')) {
				ry_buf_putc(&b, *p++);
				continue;
			}
			char *var = ry_strndup(name, (size_t)(q - name));
			const char *val = lookup(arg, var);
			/* ${V:-d} and ${V-d}: d when unset (":-": also when empty). */
			if (q[0] == ':' && q[1] == '-' && (!val || !*val))
				val = NULL, ry_buf_add(&b, q + 2, (size_t)(close - q - 2));
			else if (q[0] == '-' && !val)
				ry_buf_add(&b, q + 1, (size_t)(close - q - 1));
			if (val)
				ry_buf_puts(&b, val);
			free(var);
			p = close + 1;
			continue;
		}
		if (var_char(p[1], true)) {
			const char *q = p + 1;
			while (var_char(*q, q == p + 1))
				q++;
			char *var = ry_strndup(p + 1, (size_t)(q - p - 1));
			const char *val = lookup(arg, var);
			if (val)
				ry_buf_puts(&b, val);
			free(var);
			p = q;
			continue;
		}
		ry_buf_putc(&b, *p++);
	}
	return ry_buf_detach(&b);
}

bool deps_is_address_var(const char *name)
{
	static const char *const suffixes[] = { "_ADDR", "_ADDRS", "_ADDRESS", "_ADDRESSES",
		"_HOST", "_HOSTS", "_HOSTNAME", "_URL", "_URLS", "_URI", "_ENDPOINT", "_ENDPOINTS",
		"_SERVER", "_SERVERS", "_BROKERS", "_DSN", "_SERVICE_ADDR", NULL };
	size_t n = strlen(name);
	for (const char *const *s = suffixes; *s; s++) {
		size_t k = strlen(*s);
		if (n > k && strcasecmp(name + n - k, *s) == 0)
			return true;
	}
	return false;
}

static bool host_chars(const char *h)
{
	bool alpha = false;
	for (const char *p = h; *p; p++) {
		if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.' || *p == '_'))
			return false;
		alpha |= isalpha((unsigned char)*p) != 0;
	}
	return *h && alpha;	/* "10.0.0.1" is no service name */
}

/* Adds host, and its first label when the rest is a Kubernetes suffix. */
static void add_host(struct ry_strlist *hosts, char *h)
{
	for (char *p = h; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!host_chars(h) || strcmp(h, "localhost") == 0)
		return;
	if (!ry_strlist_has(hosts, h))
		ry_strlist_add(hosts, h);
	char *dot = strchr(h, '.');
	if (!dot)
		return;
	const char *rest = dot + 1;
	const char *svc = strstr(rest, "svc");
	bool k8s = strchr(rest, '.') == NULL ||	/* name.namespace */
		   (svc && (strcmp(svc, "svc") == 0 || strcmp(svc, "svc.cluster.local") == 0) &&
		    (svc == rest || svc[-1] == '.'));
	if (k8s) {
		*dot = '\0';
		if (*h && !ry_strlist_has(hosts, h))
			ry_strlist_add(hosts, h);
	}
}

void deps_value_hosts(const char *value, struct ry_strlist *hosts)
{
	const char *p = value;
	while (*p) {
		while (*p && (*p == ',' || *p == ';' || isspace((unsigned char)*p)))
			p++;
		const char *end = p;
		while (*end && *end != ',' && *end != ';' && !isspace((unsigned char)*end))
			end++;
		if (end == p)
			break;
		char *item = ry_strndup(p, (size_t)(end - p));
		char *h = item;
		h += strspn(h, "\"'");
		char *scheme = strstr(h, "://");
		if (scheme)
			h = scheme + 3;
		char *slash = strpbrk(h, "/?#");
		char *at = strrchr(h, '@');
		if (at && (!slash || at < slash))
			h = at + 1;
		if (*h == '[') {	/* IPv6 literal */
			free(item);
			p = end;
			continue;
		}
		h[strcspn(h, ":/?#\"'")] = '\0';
		add_host(hosts, h);
		free(item);
		p = end;
	}
}

char *deps_image_repo(const char *image)
{
	if (!image || !*image || strchr(image, '$'))
		return NULL;
	char *s = ry_strdup(image);
	char *at = strchr(s, '@');
	if (at)
		*at = '\0';	/* digest */
	char *slash = strrchr(s, '/');
	char *colon = strrchr(slash ? slash : s, ':');
	if (colon)
		*colon = '\0';	/* tag */
	char *repo = s;
	char *first = strchr(s, '/');
	if (first) {
		*first = '\0';
		bool registry = strchr(s, '.') || strchr(s, ':') || strcmp(s, "localhost") == 0;
		*first = '/';
		if (registry)
			repo = first + 1;
	}
	if (strncmp(repo, "library/", 8) == 0)
		repo += 8;
	for (char *p = repo; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	char *out = *repo ? ry_strdup(repo) : NULL;
	free(s);
	return out;
}

/* ---- YAML documents ------------------------------------------------------------ */

const char *deps_node_text(const struct spec_node *n)
{
	if (!n || n->type == SPEC_MAP || n->type == SPEC_SEQ || n->type == SPEC_NULL)
		return NULL;
	return n->text;
}

const char *deps_map_text(const struct spec_node *map, const char *key)
{
	return deps_node_text(spec_map_get(map, key));
}

/* Whether the line at p (length n) starts a new YAML document. */
static bool doc_marker(const char *p, size_t n)
{
	return n >= 3 && memcmp(p, "---", 3) == 0 && (n == 3 || p[3] == ' ' || p[3] == '\t' ||
						      p[3] == '\r');
}

static void load_piece(struct deps_ctx *c, const char *path, const char *data, size_t len,
		       int first_line, void *arg,
		       void (*fn)(struct deps_ctx *c, void *arg, const char *path,
				  const struct spec_node *root))
{
	struct spec_doc doc = { 0 };
	int line = 1;
	char *err = NULL;
	if (!spec_load_yaml(&doc, data, len, &line, &err)) {
		deps_warn(c, path, first_line + line - 1, "%s", err);
		free(err);
	} else {
		for (size_t i = 0; i < doc.n; i++)
			doc.all[i]->line += first_line - 1;
		if (doc.root)
			fn(c, arg, path, doc.root);
	}
	spec_doc_release(&doc);
}

void deps_yaml_each(struct deps_ctx *c, const char *path, const char *data, size_t len,
		    void *arg,
		    void (*fn)(struct deps_ctx *c, void *arg, const char *path,
			       const struct spec_node *root))
{
	size_t start = 0, i = 0;
	int line = 1, start_line = 1;
	while (i <= len) {
		const char *nl = i < len ? memchr(data + i, '\n', len - i) : NULL;
		size_t end = nl ? (size_t)(nl - data) : len;
		if (i < len && i > start && doc_marker(data + i, end - i)) {
			load_piece(c, path, data + start, i - start, start_line, arg, fn);
			start = i;
			start_line = line;
		}
		if (!nl)
			break;
		i = end + 1;
		line++;
	}
	if (start < len)
		load_piece(c, path, data + start, len - start, start_line, arg, fn);
}
