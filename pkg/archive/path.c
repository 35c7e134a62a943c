/*
 * Declared paths (outputs, inputs): the rule shared by pkg/archive, the
 * spec parser and the CHECK constraints of migrations/0007_cache.sql.
 * Apart from archive.c so that users of the rule need no libarchive.
 */
#include "archive/archive.h"

#include <stdlib.h>
#include <string.h>

char *ry_archive_check_path(const char *path)
{
	size_t len = strlen(path);
	if (len == 0)
		return ry_strdup("path is empty");
	if (len > 4096)
		return ry_strdup("path is longer than 4096 bytes");
	if (path[0] == '/')
		return ry_asprintf("\"%s\" is absolute: give a path relative to the tree", path);
	for (const char *p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return ry_asprintf("\"%s\" contains a control character", path);
	/* Components: "a/b/" is fine (a trailing slash), "a//b", ".", ".." are not. */
	const char *p = path;
	while (*p) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == 0)
			return ry_asprintf("\"%s\" has an empty component", path);
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return ry_asprintf("\"%s\" has a \"%.*s\" component", path, (int)n, p);
		if (!end)
			break;
		p = end + 1;
	}
	return NULL;
}

char *ry_archive_clean_path(const char *path)
{
	char *c = ry_strdup(path);
	size_t n = strlen(c);
	if (n > 1 && c[n - 1] == '/')
		c[n - 1] = '\0';
	return c;
}
