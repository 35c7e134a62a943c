#include "worker/pump.h"

#include <string.h>

enum ry_pump_action ry_pump_decide(const struct ry_pump_state *s)
{
	if (!s->idle)
		return RY_PUMP_NONE;
	if (!s->registered)
		return s->registering || s->backoff ? RY_PUMP_NONE : RY_PUMP_REGISTER;
	if (s->heartbeat_due)
		return RY_PUMP_HEARTBEAT;
	if (s->results && !s->backoff)
		return RY_PUMP_COMPLETE;
	if (s->releases && !s->backoff)
		return RY_PUMP_RELEASE;
	if (s->limit_due && !s->backoff)
		return RY_PUMP_LIMIT;
	if (s->draining)
		return s->tasks == 0 && !s->offline_sent ? RY_PUMP_OFFLINE : RY_PUMP_NONE;
	if (s->want_claim && !s->degraded && !s->claim_backoff &&
	    ((s->free.slots > 0 && s->free.cpu > 0 && s->free.mem_mb > 0) || s->queue_room > 0))
		return RY_PUMP_CLAIM;
	if (s->retention_due)
		return RY_PUMP_RETENTION;
	if (s->forecasts_due && s->background_ok)
		return RY_PUMP_FORECASTS;
	if (s->exit_when_idle && s->idle_check_due && s->tasks == 0)
		return RY_PUMP_IDLE_CHECK;
	return RY_PUMP_NONE;
}

int64_t ry_pump_background_wait_ms(int64_t now_ms, int64_t hot_ms, int64_t background_ms,
				   int64_t backlog)
{
	int64_t quiet = hot_ms + RY_PUMP_QUIET_MS - now_ms;
	int64_t spaced = background_ms + RY_PUMP_BUSY_EVERY_MS - now_ms;
	if (!hot_ms || quiet <= 0 || !background_ms || spaced <= 0 ||
	    backlog >= RY_PUMP_BACKLOG_HIGH)
		return 0;
	return quiet < spaced ? quiet : spaced;
}

bool ry_pump_claim_follows(const struct ry_pump_state *s, size_t remaining)
{
	struct ry_pump_state after = *s;
	after.idle = true;
	after.results = remaining;
	return ry_pump_decide(&after) == RY_PUMP_CLAIM;
}

const char *ry_pump_action_name(enum ry_pump_action a)
{
	static const char *const names[] = {
		[RY_PUMP_NONE] = "none", [RY_PUMP_REGISTER] = "register",
		[RY_PUMP_HEARTBEAT] = "heartbeat", [RY_PUMP_COMPLETE] = "complete",
		[RY_PUMP_RELEASE] = "release", [RY_PUMP_OFFLINE] = "offline",
		[RY_PUMP_CLAIM] = "claim", [RY_PUMP_RETENTION] = "retention",
		[RY_PUMP_FORECASTS] = "forecasts",
		[RY_PUMP_IDLE_CHECK] = "idle check", [RY_PUMP_LIMIT] = "limit",
	};
	return (unsigned)a < RY_ARRAY_SIZE(names) && names[a] ? names[a] : "?";
}

enum ry_job_error ry_pump_classify(const char *sqlstate)
{
	static const char *const transient[] = {
		"53",		/* insufficient resources: disk full, out of memory, too many connections */
		"08",		/* connection exceptions */
		"57P",		/* admin / crash shutdown, cannot connect now */
		"25006",	/* read-only transaction (a standby, a read-only switch) */
		"40001",	/* serialization failure */
		"40P01",	/* deadlock detected */
		"55P03",	/* lock not available */
		"58",		/* system errors: I/O */
		"XX001",	/* data corrupted: another try may read a good copy */
	};
	if (!sqlstate || !*sqlstate)
		return RY_ERR_TRANSIENT;	/* not from the server: the connection */
	for (size_t i = 0; i < RY_ARRAY_SIZE(transient); i++)
		if (strncmp(sqlstate, transient[i], strlen(transient[i])) == 0)
			return RY_ERR_TRANSIENT;
	if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0)
		return RY_ERR_RESULT;
	return RY_ERR_OTHER;
}
