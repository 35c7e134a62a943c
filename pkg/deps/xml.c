/*
 * libxml2 for pom.xml and project files: no network, no external entities
 * (XML_PARSE_NOENT is not set), no DTD loading; errors become one warning.
 */
#include "deps/xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

xmlDocPtr deps_xml_load(struct deps_ctx *c, const char *path, const char *data, size_t len)
{
	xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
	if (!ctxt) {
		deps_warn(c, path, 0, "cannot parse: out of memory");
		return NULL;
	}
	int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_BIG_LINES;
	xmlDocPtr doc = len > (size_t)2147483647 ? NULL
				: xmlCtxtReadMemory(ctxt, data, (int)len, path, NULL, opts);
	if (!doc || !xmlDocGetRootElement(doc)) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);
		char msg[256] = "not an XML document";
		int line = 1;
		if (e && e->message) {
			snprintf(msg, sizeof(msg), "%s", e->message);
			msg[strcspn(msg, "\n")] = '\0';
			line = e->line > 0 ? e->line : 1;
		}
		deps_warn(c, path, line, "invalid XML: %s", msg);
		xmlFreeDoc(doc);
		doc = NULL;
	}
	xmlFreeParserCtxt(ctxt);
	return doc;
}

static bool named(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

xmlNodePtr deps_xml_child(xmlNodePtr n, const char *name)
{
	if (!n)
		return NULL;
	for (xmlNodePtr k = n->children; k; k = k->next)
		if (named(k, name))
			return k;
	return NULL;
}

xmlNodePtr deps_xml_next(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr k = n ? n->next : NULL; k; k = k->next)
		if (named(k, name))
			return k;
	return NULL;
}

char *deps_xml_text(xmlNodePtr n)
{
	if (!n)
		return NULL;
	xmlChar *t = xmlNodeGetContent(n);
	if (!t)
		return NULL;
	char *s = deps_strip((const char *)t, strlen((const char *)t));
	xmlFree(t);
	if (!*s) {
		free(s);
		return NULL;
	}
	return s;
}

char *deps_xml_child_text(xmlNodePtr n, const char *name)
{
	return deps_xml_text(deps_xml_child(n, name));
}

char *deps_xml_attr(xmlNodePtr n, const char *name)
{
	xmlChar *v = n ? xmlGetProp(n, (const xmlChar *)name) : NULL;
	if (!v)
		return NULL;
	char *s = ry_strdup((const char *)v);
	xmlFree(v);
	return s;
}

int deps_xml_line(xmlNodePtr n)
{
	long l = n ? xmlGetLineNo(n) : 0;
	return l > 0 && l < 2147483647 ? (int)l : 0;
}
