/*
 * forecast/history: the JSON-lines format of `railyard history import`
 * (docs/forecasting.md, "History import").  One past task run per line:
 *
 *   {"family": "shop", "task": "build:cart", "start": "2026-01-05T10:00:00Z",
 *    "end": "2026-01-05T10:03:12Z", "outcome": "succeeded",
 *    "agent_class": "linux/x86_64/8c/docker", "run": "1234"}
 *
 * Parsing checks every field and stops at the first bad line with
 * "FILE:LINE: ...", so that nothing of a bad file is stored.
 */
#ifndef RY_FORECAST_HISTORY_H
#define RY_FORECAST_HISTORY_H

#include "core/core.h"

struct ry_history_run {
	char *family;		/* pipeline family, e.g. "shop" */
	char *task;		/* task name within the family */
	char *version;		/* definition version, default "1" */
	char *service;		/* NULL: unknown */
	char *kind;		/* build test deploy package lint publish other, NULL: unknown */
	char *agent_class;	/* os/arch/<cores>c[/labels], "" when unknown */
	char *run_ref;		/* the pipeline run it belonged to, NULL: none */
	char *outcome;		/* succeeded, failed, cancelled, skipped or cached */
	bool has_queued;
	double queued;		/* epoch seconds it became ready, if has_queued */
	double started;		/* epoch seconds */
	double finished;	/* epoch seconds, >= started */
	int line;		/* in the file */
};

struct ry_history {
	struct ry_history_run *runs;
	size_t n;
	size_t cap;
};

/*
 * Parses JSON lines (blank lines and lines starting with # are skipped)
 * and appends the runs to h.  On the first bad line returns false with
 * *err = "NAME:LINE: what is wrong" (caller frees); h then holds only the
 * runs of earlier lines.
 */
bool ry_history_parse(const char *name, const char *data, size_t len, struct ry_history *h,
		      char **err) RY_MUST_CHECK;
void ry_history_release(struct ry_history *h);

/*
 * An RFC 3339 time ("2026-01-05T10:00:00Z", "...T10:00:00.25+02:00", a
 * space for the T) as epoch seconds.  False on anything else.
 */
bool ry_history_parse_time(const char *s, double *out) RY_MUST_CHECK;

/*
 * The agent class railyard derives from host facts (sql/50_forecast.sql,
 * railyard.agent_class): os/arch/<cores>c, then "/" and the labels sorted,
 * without duplicates, os and arch.  Caller frees.
 */
char *ry_history_agent_class(const char *os, const char *arch, long cores,
			     const struct ry_strlist *labels);

#endif
