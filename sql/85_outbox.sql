-- Webhooks: a transactional outbox (docs/integrations.md, "Webhooks").
--
-- Triggers on tasks and pipelines write one outbox row per enabled
-- endpoint and state change, in the transaction that makes the change: a
-- change that commits has its rows, one that rolls back has none.  The
-- body is rendered here, in the endpoint's format, so what is sent is
-- exactly what SQL shows.
--
-- One worker sends at a time, farm-wide (webhooks = on in its config).
-- Election: each webhook_claim() takes a transaction-scoped advisory lock
-- with pg_try_advisory_xact_lock (a second caller does not wait: it
-- returns nothing at once) and, under it, takes or renews the lease in
-- railyard.webhook_sender.  The lease, not a session lock, carries the
-- role from one claim to the next, because the sender's connection may go
-- through PgBouncer in transaction mode or fail over to a new primary,
-- where a session-level lock would silently vanish or stay with a dead
-- backend; a sender that stops claiming loses the role when its lease
-- runs out.  FOR UPDATE SKIP LOCKED on the rows alone would let every
-- worker send at once, and rows of one pipeline could then arrive out of
-- order from two hosts.  Order per (endpoint, pipeline): only the oldest
-- pending row of each is ever handed out, and the next one only after it
-- is delivered or dead.

-- The commit status / event body for one change, in an endpoint's format.
CREATE OR REPLACE FUNCTION railyard.webhook_body(
    p_format text, p_event text, p_pipeline railyard.pipelines, p_task railyard.tasks,
    p_sha text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    WITH s AS (
        SELECT coalesce(p_task.state::text, p_pipeline.state::text) AS state,
               CASE WHEN p_task.id IS NULL THEN 'railyard'
                    ELSE 'railyard/' || p_task.name END AS context,
               left(CASE WHEN p_task.id IS NULL
                         THEN 'pipeline ' || p_pipeline.name || ' (' || p_pipeline.id || ') '
                              || p_pipeline.state::text
                         ELSE 'task ' || p_task.name || ' ' || p_task.state::text
                              || coalesce(': ' || p_task.reason, '') END, 140) AS description
    )
    SELECT CASE p_format
        WHEN 'github' THEN jsonb_build_object(
            'state', CASE s.state WHEN 'succeeded' THEN 'success' WHEN 'cached' THEN 'success'
                                  WHEN 'skipped' THEN 'success' WHEN 'failed' THEN 'failure'
                                  WHEN 'cancelled' THEN 'error' ELSE 'pending' END,
            'context', s.context,
            'description', s.description)
        WHEN 'gitlab' THEN jsonb_build_object(
            'state', CASE s.state WHEN 'succeeded' THEN 'success' WHEN 'cached' THEN 'success'
                                  WHEN 'skipped' THEN 'skipped' WHEN 'failed' THEN 'failed'
                                  WHEN 'cancelled' THEN 'canceled' WHEN 'running' THEN 'running'
                                  ELSE 'pending' END,
            'name', s.context,
            'description', s.description)
          || CASE WHEN p_pipeline.revision IS NOT NULL AND p_pipeline.revision !~ '^[0-9a-f]{7,64}$'
                  THEN jsonb_build_object('ref', p_pipeline.revision) ELSE '{}' END
        ELSE jsonb_strip_nulls(jsonb_build_object(
            'event', p_event,
            'at', now(),
            'pipeline', jsonb_build_object(
                'id', p_pipeline.id, 'name', p_pipeline.name, 'team', p_pipeline.team,
                'state', p_pipeline.state, 'revision', p_pipeline.revision, 'commit', p_sha),
            'task', CASE WHEN p_task.id IS NOT NULL THEN jsonb_strip_nulls(jsonb_build_object(
                'id', p_task.id, 'name', p_task.name, 'state', p_task.state,
                'attempt', p_task.attempt, 'reason', p_task.reason,
                'exit_code', p_task.exit_code)) END))
        END
      FROM s
$$;
COMMENT ON FUNCTION railyard.webhook_body(text, text, railyard.pipelines, railyard.tasks, text) IS
    'the JSON sent for one state change: generic (event, pipeline, task), GitHub commit status (state, context, description) or GitLab commit status (state, name, description, ref)';

-- Outbox rows for changes of the given pipelines/tasks, one per endpoint
-- that wants them.  kind is 'pipeline' or 'task'.
CREATE OR REPLACE FUNCTION railyard.webhook_enqueue(p_kind text, p_pipelines bigint[],
                                                    p_tasks bigint[])
RETURNS void LANGUAGE sql VOLATILE AS $$
    INSERT INTO railyard.webhook_outbox (endpoint_id, pipeline_id, task_id, event, body, url)
    SELECT e.id, p.id, t.id, x.event,
           railyard.webhook_body(e.format, x.event, p, t, x.sha),
           replace(e.url, '{sha}', coalesce(x.sha, ''))
      FROM unnest(p_pipelines, p_tasks) WITH ORDINALITY AS c (pipeline_id, task_id, ord)
      JOIN railyard.pipelines p ON p.id = c.pipeline_id
      LEFT JOIN railyard.tasks t ON t.id = c.task_id
     CROSS JOIN LATERAL (
        SELECT p_kind || '.' || coalesce(t.state::text, p.state::text) AS event,
               coalesce(p.source_commit, p.revision) AS sha) x
      JOIN railyard.webhook_endpoints e
        ON e.enabled AND p_kind = ANY (e.events) AND (e.team IS NULL OR e.team = p.team)
       AND (e.format = 'generic' OR x.sha IS NOT NULL)
     ORDER BY c.ord, e.id
$$;
COMMENT ON FUNCTION railyard.webhook_enqueue(text, bigint[], bigint[]) IS
    'internal: writes the outbox rows for state changes of the given pipelines (and tasks), one per endpoint that wants them';

CREATE OR REPLACE FUNCTION railyard.webhook_tasks_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p bigint[];
    t bigint[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM railyard.webhook_endpoints WHERE enabled) THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(n.pipeline_id ORDER BY n.id), array_agg(n.id ORDER BY n.id) INTO p, t
      FROM old_rows o JOIN new_rows n ON n.id = o.id
     WHERE o.state IS DISTINCT FROM n.state
       AND n.state IN ('running', 'succeeded', 'failed', 'cached', 'skipped', 'cancelled');
    IF p IS NOT NULL THEN
        PERFORM railyard.webhook_enqueue('task', p, t);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.webhook_tasks_update() IS
    'trigger: outbox rows for tasks that started running or finished, in the same transaction';

-- Row by row, called only for a pipeline whose state changed (as
-- audit_pipelines_update, sql/30_audit.sql, and for the same reason).
CREATE OR REPLACE FUNCTION railyard.webhook_pipelines_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM railyard.webhook_endpoints WHERE enabled) THEN
        PERFORM railyard.webhook_enqueue('pipeline', ARRAY[NEW.id], ARRAY[NULL::bigint]);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.webhook_pipelines_update() IS
    'trigger: outbox rows for pipelines whose state changed, in the same transaction';

CREATE OR REPLACE TRIGGER webhook_tasks_update AFTER UPDATE ON railyard.tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION railyard.webhook_tasks_update();
CREATE OR REPLACE TRIGGER webhook_pipelines_update AFTER UPDATE ON railyard.pipelines
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION railyard.webhook_pipelines_update();

-- The sender's turn: elects (see the top of this file), then hands out
-- the due head row of up to p_limit (endpoint, pipeline) queues, held
-- for the endpoint's timeout plus a margin.  Empty when another worker
-- holds the role.
CREATE OR REPLACE FUNCTION railyard.webhook_claim(p_agent bigint, p_lease_s integer,
                                                  p_limit integer)
RETURNS TABLE (id bigint, url text, format text, secret_file text, auth_header text,
               auth_file text, timeout_ms integer, body text, idempotency_key uuid,
               event text, attempts integer, max_attempts integer)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('railyard.webhook_sender')) THEN
        RETURN;
    END IF;
    UPDATE railyard.webhook_sender s
       SET agent_id = p_agent,
           agent_name = (SELECT a.name FROM railyard.agents a WHERE a.id = p_agent),
           lease_until = now() + make_interval(secs => greatest(p_lease_s, 1))
     WHERE s.agent_id = p_agent OR s.agent_id IS NULL OR s.lease_until < now();
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH heads AS (
        SELECT DISTINCT ON (o.endpoint_id, o.pipeline_id) o.id, o.next_attempt_at, o.sending_until
          FROM railyard.webhook_outbox o
         WHERE o.state = 'pending'
         ORDER BY o.endpoint_id, o.pipeline_id, o.id
    ), due AS (
        SELECT h.id FROM heads h
         WHERE h.next_attempt_at <= now()
           AND (h.sending_until IS NULL OR h.sending_until < now())
         ORDER BY h.next_attempt_at, h.id
         LIMIT p_limit
    )
    UPDATE railyard.webhook_outbox o
       SET sending_until = now() + make_interval(secs => e.timeout_ms / 1000.0 + 30)
      FROM due, railyard.webhook_endpoints e
     WHERE o.id = due.id AND e.id = o.endpoint_id
    RETURNING o.id, o.url, e.format, e.secret_file, e.auth_header, e.auth_file, e.timeout_ms,
              o.body::text, o.idempotency_key, o.event, o.attempts, e.max_attempts;
END $$;
COMMENT ON FUNCTION railyard.webhook_claim(bigint, integer, integer) IS
    'worker: takes or renews the farm-wide webhook sender lease and hands out the due head row of each endpoint-and-pipeline queue; empty for any other worker';

-- What became of the attempts: delivered, or retried after p_retry_ms
-- (the sender's backoff with jitter), or dead once max_attempts is used.
CREATE OR REPLACE FUNCTION railyard.webhook_report(p_agent bigint, p_ids bigint[],
                                                   p_ok boolean[], p_status integer[],
                                                   p_error text[], p_retry_ms bigint[])
RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n integer;
BEGIN
    UPDATE railyard.webhook_outbox o
       SET state = CASE WHEN r.ok THEN 'delivered'
                        WHEN o.attempts + 1 >= e.max_attempts THEN 'dead'
                        ELSE 'pending' END::railyard.delivery_state,
           attempts = o.attempts + 1,
           last_status = r.status,
           last_error = CASE WHEN r.ok THEN NULL ELSE left(r.error, 1000) END,
           delivered_at = CASE WHEN r.ok THEN now() END,
           next_attempt_at = CASE WHEN r.ok THEN o.next_attempt_at
                                  ELSE now() + make_interval(secs => greatest(r.retry_ms, 0) / 1000.0) END,
           sending_until = NULL
      FROM unnest(p_ids, p_ok, p_status, p_error, p_retry_ms) AS r (id, ok, status, error, retry_ms),
           railyard.webhook_endpoints e
     WHERE o.id = r.id AND e.id = o.endpoint_id AND o.state = 'pending';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION railyard.webhook_report(bigint, bigint[], boolean[], integer[], text[], bigint[]) IS
    'worker: records webhook attempts: delivered, pending again after the given backoff, or dead after the endpoint''s max_attempts';

-- An operator sends dead letters again (e.g. after fixing a token).
CREATE OR REPLACE FUNCTION railyard.webhook_redeliver(p_ids bigint[])
RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n integer;
BEGIN
    UPDATE railyard.webhook_outbox o
       SET state = 'pending', attempts = 0, next_attempt_at = now(), sending_until = NULL
     WHERE o.id = ANY (p_ids) AND o.state = 'dead';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION railyard.webhook_redeliver(bigint[]) IS
    'owner: puts dead letters back in the queue, attempts reset';

-- What an operator looks at: per endpoint, what waits, what died.
CREATE OR REPLACE VIEW railyard.webhook_status AS
SELECT e.name AS endpoint, e.format, e.enabled,
       count(*) FILTER (WHERE o.state = 'pending') AS pending,
       count(*) FILTER (WHERE o.state = 'delivered') AS delivered,
       count(*) FILTER (WHERE o.state = 'dead') AS dead,
       min(o.created_at) FILTER (WHERE o.state = 'pending') AS oldest_pending,
       (array_agg(o.last_error ORDER BY o.id DESC) FILTER (WHERE o.last_error IS NOT NULL))[1]
           AS last_error,
       (SELECT s.agent_name FROM railyard.webhook_sender s WHERE s.lease_until > now()) AS sender
  FROM railyard.webhook_endpoints e
  LEFT JOIN railyard.webhook_outbox o ON o.endpoint_id = e.id
 GROUP BY e.id;
COMMENT ON VIEW railyard.webhook_status IS
    'per webhook endpoint: deliveries pending, delivered and dead (the dead letters), the oldest waiting, the last error, and which worker sends now';
