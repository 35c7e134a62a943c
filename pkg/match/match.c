#define PCRE2_CODE_UNIT_WIDTH 8
#include "match/match.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

struct ry_match {
	pcre2_code *code;
	pcre2_match_data *md;		/* reused: one match at a time per pattern */
	pcre2_match_context *ctx;	/* the limits */
};

struct ry_match *ry_match_compile(const char *pattern, char **err)
{
	int errcode;
	PCRE2_SIZE erroff;
	pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
					 PCRE2_UTF, &errcode, &erroff, NULL);
	if (!code) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		*err = ry_asprintf("%s at offset %zu", (const char *)msg, (size_t)erroff);
		return NULL;
	}
	/* JIT is an optimisation only; without it matching still works (and
	 * the limits still apply). */
	(void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
	struct ry_match *m = ry_malloc(sizeof(*m));
	m->code = code;
	m->md = pcre2_match_data_create_from_pattern(code, NULL);
	m->ctx = pcre2_match_context_create(NULL);
	if (!m->md || !m->ctx) {
		ry_match_free(m);
		*err = ry_strdup("out of memory");
		return NULL;
	}
	ry_match_set_limits(m, RY_MATCH_LIMIT_DEFAULT, RY_MATCH_DEPTH_DEFAULT);
	return m;
}

void ry_match_set_limits(struct ry_match *m, unsigned long match_limit, unsigned long depth_limit)
{
	pcre2_set_match_limit(m->ctx, (uint32_t)(match_limit > UINT32_MAX ? UINT32_MAX : match_limit));
	pcre2_set_depth_limit(m->ctx, (uint32_t)(depth_limit > UINT32_MAX ? UINT32_MAX : depth_limit));
}

int ry_match_run(const struct ry_match *m, const char *s, char **err)
{
	int rc = pcre2_match(m->code, (PCRE2_SPTR)s, strlen(s), 0, 0, m->md, m->ctx);
	if (rc >= 0)
		return 1;
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	PCRE2_UCHAR msg[256];
	pcre2_get_error_message(rc, msg, sizeof(msg));
	*err = ry_strdup((const char *)msg);
	return -1;
}

bool ry_match_test(const struct ry_match *m, const char *s)
{
	char *err = NULL;
	int rc = ry_match_run(m, s, &err);
	free(err);
	return rc == 1;
}

bool ry_match_any(const struct ry_match *m, char *const *paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ry_match_test(m, paths[i]))
			return true;
	return false;
}

void ry_match_free(struct ry_match *m)
{
	if (!m)
		return;
	pcre2_match_context_free(m->ctx);
	pcre2_match_data_free(m->md);
	pcre2_code_free(m->code);
	free(m);
}

/* Bounds for untrusted subjects: a pathological line fails, never stalls. */
#define FIND_MATCH_LIMIT 1000000
#define FIND_DEPTH_LIMIT 10000

bool ry_match_find(const struct ry_match *m, const char *s, size_t len, size_t from,
		   struct ry_match_span *spans, size_t nspans)
{
	static pcre2_match_context *limits;

	if (from > len)
		return false;
	if (!limits) {
		limits = pcre2_match_context_create(NULL);
		if (!limits)
			return false;
		pcre2_set_match_limit(limits, FIND_MATCH_LIMIT);
		pcre2_set_depth_limit(limits, FIND_DEPTH_LIMIT);
	}
	int rc = pcre2_match(m->code, (PCRE2_SPTR)s, len, from, 0, m->md, limits);
	if (rc < 0)
		return false;
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
	uint32_t npairs = pcre2_get_ovector_count(m->md);
	for (size_t i = 0; i < nspans; i++) {
		bool set = i < (size_t)rc && i < npairs && ov[2 * i] != PCRE2_UNSET;
		spans[i].start = set ? (long)ov[2 * i] : -1;
		spans[i].end = set ? (long)ov[2 * i + 1] : -1;
	}
	return true;
}
