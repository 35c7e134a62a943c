/* libxml2 on first use (lazylib.h).  The functions pkg/deps and pkg/junit
 * call. */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "lazylib/wrap.h"

#define XML_SYMBOLS(F, V, H) \
	H(xmlFree) \
	F(xmlParserCtxtPtr, xmlNewParserCtxt, (void), ()) \
	V(xmlFreeParserCtxt, (xmlParserCtxtPtr c), (c)) \
	F(xmlDocPtr, xmlCtxtReadMemory, (xmlParserCtxtPtr c, const char *buf, int size, \
					 const char *url, const char *encoding, int options), \
	  (c, buf, size, url, encoding, options)) \
	F(xmlErrorPtr, xmlCtxtGetLastError, (void *c), (c)) \
	V(xmlFreeDoc, (xmlDocPtr d), (d)) \
	F(xmlNodePtr, xmlDocGetRootElement, (const xmlDoc *d), (d)) \
	F(long, xmlGetLineNo, (const xmlNode *n), (n)) \
	F(xmlChar *, xmlGetProp, (const xmlNode *n, const xmlChar *name), (n, name)) \
	F(xmlChar *, xmlNodeGetContent, (const xmlNode *n), (n)) \
	F(xmlBufferPtr, xmlBufferCreate, (void), ()) \
	V(xmlBufferFree, (xmlBufferPtr b), (b)) \
	F(const xmlChar *, xmlBufferContent, (const xmlBuffer *b), (b)) \
	F(int, xmlBufferLength, (const xmlBuffer *b), (b)) \
	F(xmlTextWriterPtr, xmlNewTextWriterMemory, (xmlBufferPtr b, int compression), \
	  (b, compression)) \
	V(xmlFreeTextWriter, (xmlTextWriterPtr w), (w)) \
	F(int, xmlTextWriterSetIndent, (xmlTextWriterPtr w, int indent), (w, indent)) \
	F(int, xmlTextWriterSetIndentString, (xmlTextWriterPtr w, const xmlChar *s), (w, s)) \
	F(int, xmlTextWriterStartDocument, (xmlTextWriterPtr w, const char *version, \
					    const char *encoding, const char *standalone), \
	  (w, version, encoding, standalone)) \
	F(int, xmlTextWriterEndDocument, (xmlTextWriterPtr w), (w)) \
	F(int, xmlTextWriterStartElement, (xmlTextWriterPtr w, const xmlChar *name), (w, name)) \
	F(int, xmlTextWriterEndElement, (xmlTextWriterPtr w), (w)) \
	F(int, xmlTextWriterWriteAttribute, (xmlTextWriterPtr w, const xmlChar *name, \
					     const xmlChar *content), (w, name, content)) \
	F(int, xmlTextWriterWriteString, (xmlTextWriterPtr w, const xmlChar *content), (w, content))

RY_LAZYLIB(xml, XML_SYMBOLS, "libxml2.so.2", "libxml2")

/*
 * xmlFree is a variable (the deallocator libxml2's strings need), which
 * code reads to call.  Ours calls whatever libxml2's holds at the time.
 */
static void free_with_libxml2(void *p)
{
	load();
	(*real.xmlFree)(p);
}

xmlFreeFunc xmlFree = free_with_libxml2;
