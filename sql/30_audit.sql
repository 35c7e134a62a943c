-- The audit log is written by statement-level triggers with transition
-- tables: one INSERT per statement whatever its size, and no code path —
-- railyard's or a person's in psql — can change state without a record.

CREATE OR REPLACE FUNCTION railyard.audit_task_event(o railyard.task_state, n railyard.task_state, reason text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN n = 'ready' AND o = 'blocked' THEN 'ready'
        WHEN n = 'ready' THEN 'retry'
        WHEN n = 'running' THEN 'claim'
        WHEN n = 'skipped' THEN 'skip'
        WHEN n = 'cancelled' THEN 'cancel'
        WHEN n = 'failed' AND reason = 'agent lost' THEN 'lost'
        ELSE 'finish' END
$$;

CREATE OR REPLACE FUNCTION railyard.audit_tasks_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO railyard.audit_log (at, actor, object, object_id, pipeline_id, event,
                                    old_state, new_state, detail)
    SELECT coalesce(e.at, clock_timestamp()), railyard.actor(), 'task', n.id, n.pipeline_id,
           e.event, e.old_state, e.new_state, e.detail
      FROM old_rows o JOIN new_rows n ON n.id = o.id
     CROSS JOIN LATERAL (
        SELECT n.started_at AS at, 'start' AS event, 'running' AS old_state,
               'running' AS new_state,
               jsonb_build_object('attempt', n.attempt, 'agent_id', n.agent_id) AS detail
         WHERE o.started_at IS NULL AND n.started_at IS NOT NULL
        UNION ALL
        SELECT NULL, railyard.audit_task_event(o.state, n.state, n.reason), o.state::text,
               n.state::text,
               jsonb_strip_nulls(jsonb_build_object('attempt', n.attempt,
                   'agent_id', coalesce(n.agent_id, o.agent_id), 'reason', n.reason,
                   'exit_code', n.exit_code))
         WHERE o.state IS DISTINCT FROM n.state
     ) e;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER audit_tasks_update AFTER UPDATE ON railyard.tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION railyard.audit_tasks_update();

CREATE OR REPLACE FUNCTION railyard.audit_pipelines_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO railyard.audit_log (actor, object, object_id, pipeline_id, event, new_state, detail)
    SELECT railyard.actor(), 'pipeline', n.id, n.id, 'submit', n.state::text,
           jsonb_strip_nulls(jsonb_build_object('name', n.name, 'team', n.team,
               'priority', n.priority, 'revision', n.revision))
      FROM new_rows n;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER audit_pipelines_insert AFTER INSERT ON railyard.pipelines
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION railyard.audit_pipelines_insert();

CREATE OR REPLACE FUNCTION railyard.audit_pipelines_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO railyard.audit_log (actor, object, object_id, pipeline_id, event, old_state, new_state)
    SELECT railyard.actor(), 'pipeline', n.id, n.id,
           CASE n.state WHEN 'running' THEN 'start' WHEN 'cancelled' THEN 'cancel' ELSE 'finish' END,
           o.state::text, n.state::text
      FROM old_rows o JOIN new_rows n ON n.id = o.id
     WHERE o.state IS DISTINCT FROM n.state;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER audit_pipelines_update AFTER UPDATE ON railyard.pipelines
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION railyard.audit_pipelines_update();

CREATE OR REPLACE FUNCTION railyard.audit_agents_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO railyard.audit_log (actor, object, object_id, event, new_state, detail)
        SELECT railyard.actor(), 'agent', n.id, n.state::text, n.state::text,
               jsonb_build_object('name', n.name, 'hostname', n.hostname, 'labels', n.labels,
                                  'slots', n.slots)
          FROM new_rows n;
    ELSE
        INSERT INTO railyard.audit_log (actor, object, object_id, event, old_state, new_state, detail)
        SELECT railyard.actor(), 'agent', n.id,
               CASE WHEN n.started_at <> o.started_at AND n.state = o.state THEN 'online'
                    ELSE n.state::text END,
               o.state::text, n.state::text,
               jsonb_build_object('name', n.name, 'hostname', n.hostname, 'pid', n.pid)
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE o.state IS DISTINCT FROM n.state OR n.started_at <> o.started_at;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER audit_agents_insert AFTER INSERT ON railyard.agents
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION railyard.audit_agents_change();
CREATE OR REPLACE TRIGGER audit_agents_update AFTER UPDATE ON railyard.agents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION railyard.audit_agents_change();
