/*
 * Internal to pkg/deps: the few libxml2 calls the Maven and .NET detectors
 * need, with network access and entity loading off.
 */
#ifndef RY_DEPS_XML_H
#define RY_DEPS_XML_H

#include "deps/detect.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

/* Parses data; NULL (with a warning naming path:line) when it is not XML. */
xmlDocPtr deps_xml_load(struct deps_ctx *c, const char *path, const char *data, size_t len);
/* The first element child of n named name (namespaces ignored), or NULL. */
xmlNodePtr deps_xml_child(xmlNodePtr n, const char *name);
/* The next element sibling after n with that name, or NULL. */
xmlNodePtr deps_xml_next(xmlNodePtr n, const char *name);
/* Trimmed text of an element (caller frees), or NULL when n is NULL or empty. */
char *deps_xml_text(xmlNodePtr n);
/* Text of the child element name, or NULL. */
char *deps_xml_child_text(xmlNodePtr n, const char *name);
/* The attribute name (caller frees), or NULL. */
char *deps_xml_attr(xmlNodePtr n, const char *name);
int deps_xml_line(xmlNodePtr n);

#endif
