/*
 * Forecast pieces other commands show: the live ETA of `wait --follow` and
 * the open anomalies of `status` (cmd_forecast.c).
 */
#ifndef RY_FORECAST_CLI_H
#define RY_FORECAST_CLI_H

#include "core/core.h"
#include "db/db.h"

/* What the ETA line of `wait --follow` last showed. */
struct cmd_eta {
	long finished;		/* finished tasks when it was printed; -1: never */
	int64_t printed_ms;	/* monotonic time it was printed */
};
#define CMD_ETA_INIT { -1, 0 }

/*
 * Prints "HH:MM:SS  pipeline  eta  3m10s left (p10-p90 2m50s-3m40s), at 10:42:13"
 * (name column width w) when the pipeline's count of finished tasks changed
 * since the last line, at most every 2 s.  A forecast that cannot be made
 * prints nothing; false only when the connection failed (err set).
 */
bool cmd_eta_follow(struct ry_db *db, const char *id, int w, struct cmd_eta *st,
		    char **err) RY_MUST_CHECK;

/* Prints the open anomalies for `railyard status`; false on a query error. */
bool cmd_show_anomalies(struct ry_db *db);

#endif
