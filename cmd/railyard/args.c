/*
 * Argument helpers shared by the commands: getopt_long with railyard's one
 * error format, and pipeline ids.
 */
#include "cmd.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cmd_parse_id(const char *s, long *id)
{
	if (!ry_parse_long(s, 1, LONG_MAX, id)) {
		cmd_error("invalid pipeline id '%s': expected a positive integer", s);
		return false;
	}
	return true;
}

int cmd_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
	char spec[64];

	/* ':' first: a missing value comes back as ':' and is ours to report. */
	snprintf(spec, sizeof(spec), ":%s", shortopts);
	opterr = 0;
	int c = getopt_long(argc, argv, spec, longopts, NULL);
	if (c == '?') {
		if (optopt && optopt < 256)
			cmd_error("%s: unknown option '-%c'", argv[0], optopt);
		else
			cmd_error("%s: unknown option '%s'", argv[0], argv[optind - 1]);
	} else if (c == ':') {
		cmd_error("%s: option '%s' needs a value", argv[0], argv[optind - 1]);
		c = '?';
	}
	return c;
}

int cmd_only_help(int argc, char **argv, void (*usage)(FILE *out))
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c = cmd_getopt(argc, argv, "h", longopts);

	if (c == -1)
		return -1;
	usage(c == 'h' ? stdout : stderr);
	return c == 'h' ? RY_EXIT_OK : RY_EXIT_ERROR;
}
