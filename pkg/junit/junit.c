/*
 * JUnit XML through libxml2's xmlTextWriter (escaping, attribute quoting and
 * the encoding declaration are libxml2's job, not ours).
 */
#include "junit/junit.h"

#include <errno.h>
#include <libxml/xmlwriter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Length of the UTF-8 sequence at s (at most n bytes) and its code point; 0 if invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xE0) == 0xC0)
		len = 2, c = s[0] & 0x1F;
	else if ((s[0] & 0xF0) == 0xE0)
		len = 3, c = s[0] & 0x0F;
	else if ((s[0] & 0xF8) == 0xF0)
		len = 4, c = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (c < min[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;	/* overlong, out of range, or a surrogate */
	*cp = c;
	return len;
}

/* XML 1.0's Char production. */
static bool xml_char(uint32_t c)
{
	return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
	       (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

/* s with everything XML cannot carry replaced by U+FFFD; caller frees. */
static char *xml_clean(const char *s)
{
	struct ry_buf b = RY_BUF_INIT;
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	ry_buf_add(&b, "", 0);
	while (n > 0) {
		uint32_t cp = 0;
		size_t len = utf8_decode(p, n, &cp);
		if (len > 0 && xml_char(cp)) {
			ry_buf_add(&b, p, len);
		} else {
			ry_buf_puts(&b, "\xEF\xBF\xBD");
			len = len ? len : 1;
		}
		p += len;
		n -= len;
	}
	return ry_buf_detach(&b);
}

/* Each writer call returns < 0 on failure; one check per call keeps `out:` single. */
static bool attr(xmlTextWriterPtr w, const char *name, const char *value)
{
	char *clean = xml_clean(value ? value : "");
	int rc = xmlTextWriterWriteAttribute(w, BAD_CAST name, BAD_CAST clean);
	free(clean);
	return rc >= 0;
}

static bool attr_num(xmlTextWriterPtr w, const char *name, double v, bool integer)
{
	char buf[64];
	if (integer)
		snprintf(buf, sizeof(buf), "%.0f", v);
	else
		snprintf(buf, sizeof(buf), "%.3f", v < 0 ? 0.0 : v);
	return attr(w, name, buf);
}

static bool text(xmlTextWriterPtr w, const char *s)
{
	char *clean = xml_clean(s);
	int rc = xmlTextWriterWriteString(w, BAD_CAST clean);
	free(clean);
	return rc >= 0;
}

static bool start(xmlTextWriterPtr w, const char *element)
{
	return xmlTextWriterStartElement(w, BAD_CAST element) >= 0;
}

static bool end(xmlTextWriterPtr w)
{
	return xmlTextWriterEndElement(w) >= 0;
}

static bool write_case(xmlTextWriterPtr w, const struct ry_junit_case *c)
{
	bool ok = start(w, "testcase") && attr(w, "classname", c->classname) &&
		  attr(w, "name", c->name) && attr_num(w, "time", c->time_s, false);
	if (ok && c->outcome == RY_JUNIT_FAILED) {
		ok = start(w, "failure") && attr(w, "message", c->message ? c->message : "failed") &&
		     attr(w, "type", c->type ? c->type : "failure") &&
		     (!c->output || text(w, c->output)) && end(w);
	} else if (ok && c->outcome == RY_JUNIT_SKIPPED) {
		ok = start(w, "skipped") && (!c->message || attr(w, "message", c->message)) && end(w);
	}
	if (ok && c->output && *c->output)
		ok = start(w, "system-out") && text(w, c->output) && end(w);
	return ok && end(w);
}

static bool write_suite(xmlTextWriterPtr w, const struct ry_junit_suite *s)
{
	size_t failures = 0, skipped = 0;

	for (size_t i = 0; i < s->ncases; i++) {
		failures += s->cases[i].outcome == RY_JUNIT_FAILED;
		skipped += s->cases[i].outcome == RY_JUNIT_SKIPPED;
	}
	if (xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL) < 0 || !start(w, "testsuites") ||
	    !attr(w, "name", s->name) || !attr_num(w, "tests", (double)s->ncases, true) ||
	    !attr_num(w, "failures", (double)failures, true) || !attr_num(w, "errors", 0, true) ||
	    !attr_num(w, "skipped", (double)skipped, true) || !attr_num(w, "time", s->time_s, false))
		return false;
	if (!start(w, "testsuite") || !attr(w, "name", s->name) ||
	    !attr_num(w, "tests", (double)s->ncases, true) ||
	    !attr_num(w, "failures", (double)failures, true) || !attr_num(w, "errors", 0, true) ||
	    !attr_num(w, "skipped", (double)skipped, true) || !attr_num(w, "time", s->time_s, false) ||
	    (s->timestamp && !attr(w, "timestamp", s->timestamp)))
		return false;
	if (s->nprops > 0) {
		if (!start(w, "properties"))
			return false;
		for (size_t i = 0; i < s->nprops; i++)
			if (!start(w, "property") || !attr(w, "name", s->props[i].name) ||
			    !attr(w, "value", s->props[i].value) || !end(w))
				return false;
		if (!end(w))
			return false;
	}
	for (size_t i = 0; i < s->ncases; i++)
		if (!write_case(w, &s->cases[i]))
			return false;
	return xmlTextWriterEndDocument(w) >= 0;	/* closes every open element */
}

char *ry_junit_render(const struct ry_junit_suite *suite, char **err)
{
	char *out = NULL;
	xmlBufferPtr buf = xmlBufferCreate();
	xmlTextWriterPtr w = buf ? xmlNewTextWriterMemory(buf, 0) : NULL;

	if (!w) {
		*err = ry_strdup("cannot create an XML writer (out of memory)");
		goto out;
	}
	xmlTextWriterSetIndent(w, 1);
	xmlTextWriterSetIndentString(w, BAD_CAST "  ");
	if (!write_suite(w, suite)) {
		*err = ry_strdup("cannot render the JUnit report: libxml2's writer failed");
		goto out;
	}
	xmlFreeTextWriter(w);	/* flushes into buf */
	w = NULL;
	out = ry_strndup((const char *)xmlBufferContent(buf), (size_t)xmlBufferLength(buf));
out:
	if (w)
		xmlFreeTextWriter(w);
	if (buf)
		xmlBufferFree(buf);
	return out;
}

static bool write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		data += n;
		len -= (size_t)n;
	}
	return true;
}

bool ry_junit_write_file(const char *path, const struct ry_junit_suite *suite, char **err)
{
	char *xml = ry_junit_render(suite, err);
	char *tmp = ry_asprintf("%s.tmp.XXXXXX", path);
	bool ok = false, created = false;
	int fd = -1;

	if (!xml)
		goto out;
	fd = mkstemp(tmp);
	if (fd < 0) {
		*err = ry_asprintf("cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	created = true;
	/* mkstemp makes 0600; a report is for everyone who can read the directory. */
	if (fchmod(fd, 0644) != 0 || !write_all(fd, xml, strlen(xml)) || fsync(fd) != 0) {
		*err = ry_asprintf("cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		*err = ry_asprintf("cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		*err = ry_asprintf("cannot write %s: rename from %s: %s", path, tmp, strerror(errno));
		goto out;
	}
	ok = true;
out:
	if (fd >= 0)
		close(fd);
	if (!ok && created)
		unlink(tmp);
	free(tmp);
	free(xml);
	return ok;
}
