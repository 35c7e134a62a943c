#include "db/pgarray.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void sep(struct ry_pgarray *a)
{
	ry_buf_putc(&a->b, a->n++ ? ',' : '{');
}

void ry_buf_add_pg_array_elem(struct ry_buf *b, const char *s)
{
	ry_buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			ry_buf_putc(b, '\\');
		ry_buf_putc(b, *s);
	}
	ry_buf_putc(b, '"');
}

void ry_pgarray_add_str(struct ry_pgarray *a, const char *s)
{
	if (!s) {
		ry_pgarray_add_null(a);
		return;
	}
	sep(a);
	ry_buf_add_pg_array_elem(&a->b, s);
}

void ry_pgarray_add_int(struct ry_pgarray *a, int64_t v)
{
	sep(a);
	ry_buf_printf(&a->b, "%" PRId64, v);
}

void ry_pgarray_add_double(struct ry_pgarray *a, double v)
{
	sep(a);
	ry_buf_printf(&a->b, "%.17g", v);
}

void ry_pgarray_add_null(struct ry_pgarray *a)
{
	sep(a);
	ry_buf_puts(&a->b, "NULL");
}

char *ry_pgarray_finish(struct ry_pgarray *a)
{
	if (!a->n)
		ry_buf_putc(&a->b, '{');
	ry_buf_putc(&a->b, '}');
	a->n = 0;
	return ry_buf_detach(&a->b);
}

char *ry_strlist_to_pg_array(const struct ry_strlist *l)
{
	struct ry_pgarray a = { RY_BUF_INIT, 0 };
	for (size_t i = 0; i < l->n; i++)
		ry_pgarray_add_str(&a, l->items[i]);
	return ry_pgarray_finish(&a);
}

bool ry_db_parse_text_array(const char *s, struct ry_strlist *out)
{
	struct ry_buf item = RY_BUF_INIT;
	bool ok = false;

	if (*s++ != '{')
		goto out;
	while (*s && *s != '}') {
		bool quoted = *s == '"';
		ry_buf_reset(&item);
		ry_buf_puts(&item, "");
		if (quoted) {
			for (s++; *s && *s != '"'; s++) {
				if (*s == '\\' && s[1])
					s++;
				ry_buf_putc(&item, *s);
			}
			if (*s++ != '"')
				goto out;
		} else {
			for (; *s && *s != ',' && *s != '}'; s++)
				ry_buf_putc(&item, *s);
		}
		if (quoted || strcmp(item.data, "NULL") != 0)
			ry_strlist_add(out, item.data);
		if (*s == ',')
			s++;
	}
	ok = *s == '}';
out:
	ry_buf_release(&item);
	return ok;
}
