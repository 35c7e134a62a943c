/*
 * railyard history import FILE
 *
 * Loads past task runs (JSON lines, pkg/forecast/history.h and
 * docs/forecasting.md) so that forecasts work from the first day.  The
 * whole file is checked first; the first bad line is reported as
 * FILE:LINE and nothing is stored.  Then one statement stores it all
 * (railyard.import_history), so a file is imported whole or not at all;
 * importing the same file again stores nothing new.
 */
#include "cmd.h"
#include "forecast/history.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char import_sql[] =
	"SELECT runs, pipeline_runs FROM railyard.import_history("
	"$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
	"$8::text[], $9::float8[], $10::float8[], $11::float8[])";

enum { COL_FAMILY, COL_TASK, COL_VERSION, COL_SERVICE, COL_KIND, COL_CLASS, COL_RUN,
       COL_OUTCOME, COL_QUEUED, COL_STARTED, COL_FINISHED, NCOLS };

static char *read_file(const char *path, size_t *len, char **err)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	struct ry_buf b = RY_BUF_INIT;
	char chunk[65536];
	size_t n;

	if (!f) {
		*err = ry_asprintf("cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		ry_buf_add(&b, chunk, n);
	bool bad = ferror(f);
	if (f != stdin)
		fclose(f);
	if (bad) {
		*err = ry_asprintf("cannot read %s", path);
		ry_buf_release(&b);
		return NULL;
	}
	*len = b.len;
	return ry_buf_detach(&b);
}

static void add_num(struct ry_buf *b, bool has, double v)
{
	ry_buf_putc(b, b->len ? ',' : '{');
	if (has)
		ry_buf_printf(b, "%.6f", v);
	else
		ry_buf_puts(b, "NULL");
}

static int import(struct cmd_ctx *ctx, const char *path)
{
	struct ry_history h = { 0 };
	struct ry_buf cols[NCOLS];
	struct ry_db *db = NULL;
	struct ry_res *r = NULL;
	char *err = NULL, *data = NULL;
	size_t len = 0;
	int rc = RY_EXIT_ERROR;

	memset(cols, 0, sizeof(cols));
	data = read_file(path, &len, &err);
	if (!data) {
		fprintf(stderr, "error: %s\n", err);
		goto out;
	}
	if (!ry_history_parse(path, data, len, &h, &err)) {
		fprintf(stderr, "error: %s (nothing imported)\n", err);
		goto out;
	}
	if (h.n == 0) {
		fprintf(stderr, "error: %s holds no runs\n", path);
		goto out;
	}
	for (size_t i = 0; i < h.n; i++) {
		const struct ry_history_run *run = &h.runs[i];
		const char *text[] = { run->family, run->task, run->version,
			run->service ? run->service : "", run->kind ? run->kind : "",
			run->agent_class, run->run_ref ? run->run_ref : "", run->outcome };
		for (int c = COL_FAMILY; c <= COL_OUTCOME; c++) {
			ry_buf_putc(&cols[c], cols[c].len ? ',' : '{');
			ry_buf_add_pg_array_elem(&cols[c], text[c]);
		}
		add_num(&cols[COL_QUEUED], run->has_queued, run->queued);
		add_num(&cols[COL_STARTED], true, run->started);
		add_num(&cols[COL_FINISHED], true, run->finished);
	}
	const char *params[NCOLS];
	for (int c = 0; c < NCOLS; c++) {
		ry_buf_putc(&cols[c], '}');
		params[c] = cols[c].data;
	}
	db = cmd_connect(ctx, "cli:history");
	if (!db)
		goto out;
	r = ry_db_query(db, import_sql, NCOLS, params, &err);
	if (!r) {
		fprintf(stderr, "error: cannot import %s: %s (nothing imported)\n", path, err);
		goto out;
	}
	long runs = ry_res_get_long(r, 0, 0), pipelines = ry_res_get_long(r, 0, 1);
	printf("imported %ld task runs and %ld pipeline runs from %s (%zu lines read", runs,
	       pipelines, path, h.n);
	if ((size_t)runs < h.n)
		printf("; %zu were not durations or were imported before", h.n - (size_t)runs);
	printf(")\n");
	rc = RY_EXIT_OK;
out:
	ry_res_free(r);
	ry_db_close(db);
	for (int c = 0; c < NCOLS; c++)
		ry_buf_release(&cols[c]);
	ry_history_release(&h);
	free(data);
	free(err);
	return rc;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: railyard history import FILE\n"
		"  past task runs as JSON lines (FILE - reads stdin); format in docs/forecasting.md\n");
}

int cmd_history(struct cmd_ctx *ctx, int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return RY_EXIT_OK;
	}
	if (argc != 3 || strcmp(argv[1], "import") != 0) {
		usage(stderr);
		return RY_EXIT_ERROR;
	}
	return import(ctx, argv[2]);
}
