-- The audit log is written by statement-level triggers with transition
-- tables: one INSERT per statement whatever its size, and no code path —
-- railyard's or a person's in psql — can change state without a record.
-- (A pipeline's state change is audited by a row trigger that only the
-- changed rows call: see audit_pipelines_update.)  Each row's actor is the
-- session's login role (railyard.actor()) and, for changes a worker
-- session caused, agent is the agent it named (railyard.audit_agent());
-- both are read once per statement (per row for pipelines).  The trigger
-- functions run as the owner (sql/90_roles.sql): nobody else may write the
-- audit log.

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

COMMENT ON FUNCTION railyard.audit_task_event(railyard.task_state, railyard.task_state, text) IS
    'the audit event a task''s state change is: ready, retry, claim, skip, cancel, lost or finish';

CREATE OR REPLACE FUNCTION railyard.audit_tasks_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    who text := railyard.actor();
    ag  text := railyard.audit_agent();
BEGIN
    INSERT INTO railyard.audit_log (at, actor, agent, object, object_id, pipeline_id, event,
                                    old_state, new_state, detail)
    SELECT coalesce(e.at, clock_timestamp()), who, ag, 'task', n.id, n.pipeline_id,
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
COMMENT ON FUNCTION railyard.audit_tasks_update() IS
    'trigger: one audit row per task state change (and process start), per statement';

CREATE OR REPLACE TRIGGER audit_tasks_update AFTER UPDATE ON railyard.tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION railyard.audit_tasks_update();

-- A task inserted ready (submit_pipeline's roots: nobody else may,
-- tasks_before_insert) is audited as it would have been had it been
-- inserted blocked and released at COMMIT.
CREATE OR REPLACE FUNCTION railyard.audit_tasks_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO railyard.audit_log (at, actor, agent, object, object_id, pipeline_id, event,
                                    old_state, new_state, detail)
    SELECT clock_timestamp(), railyard.actor(), railyard.audit_agent(), 'task', n.id,
           n.pipeline_id, railyard.audit_task_event('blocked', n.state, n.reason), 'blocked',
           n.state::text, jsonb_build_object('attempt', n.attempt)
      FROM new_rows n WHERE n.state <> 'blocked';
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.audit_tasks_insert() IS
    'trigger: audits the tasks inserted ready (a submission''s roots), per statement';

-- (Queued only inside railyard's functions: any other INSERT's tasks are
-- blocked, and its statement would plan the query for nothing.)
CREATE OR REPLACE TRIGGER audit_tasks_insert AFTER INSERT ON railyard.tasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT WHEN (railyard.in_railyard_function())
    EXECUTE FUNCTION railyard.audit_tasks_insert();

CREATE OR REPLACE FUNCTION railyard.audit_pipelines_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO railyard.audit_log (actor, agent, object, object_id, pipeline_id, event, new_state,
                                    detail)
    SELECT railyard.actor(), railyard.audit_agent(), 'pipeline', n.id, n.id, 'submit', n.state::text,
           jsonb_strip_nulls(jsonb_build_object('name', n.name, 'team', n.team,
               'priority', n.priority, 'revision', n.revision))
      FROM new_rows n;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.audit_pipelines_insert() IS
    'trigger: one audit row per submitted pipeline';

CREATE OR REPLACE TRIGGER audit_pipelines_insert AFTER INSERT ON railyard.pipelines
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION railyard.audit_pipelines_insert();

-- A pipeline's state changes are audited row by row, and only the rows
-- whose state changed call the function: most statements that update
-- pipelines change none (a claim starts a queued pipeline once, a
-- completion ends one once, validation only stamps validated_at), and a
-- statement trigger would run its query for every one of them.
CREATE OR REPLACE FUNCTION railyard.audit_pipelines_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO railyard.audit_log (actor, agent, object, object_id, pipeline_id, event, old_state,
                                    new_state)
    VALUES (railyard.actor(), railyard.audit_agent(), 'pipeline', NEW.id, NEW.id,
            CASE NEW.state WHEN 'running' THEN 'start' WHEN 'cancelled' THEN 'cancel' ELSE 'finish' END,
            OLD.state::text, NEW.state::text);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.audit_pipelines_update() IS
    'trigger: one audit row per pipeline state change';

CREATE OR REPLACE TRIGGER audit_pipelines_update AFTER UPDATE ON railyard.pipelines
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION railyard.audit_pipelines_update();

CREATE OR REPLACE FUNCTION railyard.audit_agents_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    who text := railyard.actor();
    ag  text := railyard.audit_agent();
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO railyard.audit_log (actor, agent, object, object_id, event, new_state, detail)
        SELECT who, ag, 'agent', n.id, n.state::text, n.state::text,
               jsonb_build_object('name', n.name, 'hostname', n.hostname, 'labels', n.labels,
                                  'slots', n.slots)
          FROM new_rows n;
    ELSE
        INSERT INTO railyard.audit_log (actor, agent, object, object_id, event, old_state, new_state,
                                        detail)
        SELECT who, ag, 'agent', n.id,
               CASE WHEN n.started_at <> o.started_at AND n.state = o.state THEN 'online'
                    ELSE n.state::text END,
               o.state::text, n.state::text,
               jsonb_build_object('name', n.name, 'hostname', n.hostname, 'pid', n.pid)
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE o.state IS DISTINCT FROM n.state OR n.started_at <> o.started_at;
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.audit_agents_change() IS
    'trigger: one audit row per agent that registered or changed state';

CREATE OR REPLACE TRIGGER audit_agents_insert AFTER INSERT ON railyard.agents
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION railyard.audit_agents_change();
CREATE OR REPLACE TRIGGER audit_agents_update AFTER UPDATE ON railyard.agents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION railyard.audit_agents_change();

-- ---- guards: definitions immutable, state only through railyard ----------
--
-- After INSERT, pipelines, tasks, edges and their history change only
-- inside railyard's functions: submitted definitions are immutable, run
-- state moves only as the lifecycle functions move it (so dependents are
-- never left waiting on a hand-edited task, and every change has its audit
-- row), and rows go away only through railyard.prune().  The audit log is
-- append-only.  railyard's functions run with railyard.internal = on (set
-- on each by sql/90_roles.sql); a statement outside them is refused before
-- it touches a row.  Roles other than the owner lack the privileges for
-- these statements anyway; this stops the owner's hand edits too.  (The
-- owner can still set railyard.internal itself, or drop the triggers: it
-- owns the tables.  That is deliberate, never an accident.)
CREATE OR REPLACE FUNCTION railyard.refuse_direct_write() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('railyard.internal', true) = 'on' THEN
        RETURN NULL;    -- TRUNCATE triggers cannot say WHEN; they ask here
    END IF;
    RAISE EXCEPTION 'cannot % railyard.% by hand: %', TG_OP, TG_TABLE_NAME,
        CASE TG_TABLE_NAME
            WHEN 'audit_log' THEN 'the audit log is append-only'
            WHEN 'task_attempts' THEN 'the run history changes only through railyard''s functions'
            ELSE 'a submitted pipeline''s definition is immutable and its run state changes only '
                 'through railyard''s functions' END
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = CASE WHEN TG_OP IN ('DELETE', 'TRUNCATE')
                          THEN 'railyard.prune(before) deletes finished pipelines and old audit rows, audited'
                          ELSE 'railyard.cancel_pipeline(id) cancels a pipeline; submit a new pipeline to change what runs' END;
END $$;
COMMENT ON FUNCTION railyard.refuse_direct_write() IS
    'trigger: refuses UPDATE, DELETE and TRUNCATE of pipelines, tasks, edges, attempts and audit rows outside railyard''s functions';

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['pipelines', 'tasks', 'edges', 'task_attempts', 'audit_log'] LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I BEFORE UPDATE OR DELETE ON railyard.%I '
                       'FOR EACH STATEMENT '
                       'WHEN (current_setting(''railyard.internal'', true) IS DISTINCT FROM ''on'') '
                       'EXECUTE FUNCTION railyard.refuse_direct_write()', t || '_guard', t);
        EXECUTE format('CREATE OR REPLACE TRIGGER %I BEFORE TRUNCATE ON railyard.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION railyard.refuse_direct_write()',
                       t || '_guard_truncate', t);
    END LOOP;
END $$;

-- ---- retention ---------------------------------------------------------------
--
-- The one way rows leave: finished pipelines (succeeded, failed or
-- cancelled) that finished before p_before, with their tasks, edges,
-- attempts, audit rows, forecasts and pipeline history, at most p_batch
-- pipelines per call; audit rows of no pipeline (agent events) older than
-- p_before, task runs (run_history) that ended before it and the duration
-- statistics of identities not used (run or cache hit) since, at most
-- 100 x p_batch of each per call.  A pipeline that may still run is never touched.
-- Each call that deleted anything leaves one audit row (object
-- 'retention', event 'prune') saying what; those rows are kept.  Call it
-- until done is true:
--     SELECT * FROM railyard.prune(now() - interval '90 days');
CREATE OR REPLACE FUNCTION railyard.prune(p_before timestamptz, p_batch integer DEFAULT 500)
RETURNS TABLE (pipelines integer, tasks bigint, audit_rows bigint, done boolean)
LANGUAGE plpgsql AS $$
DECLARE
    pids   bigint[];
    n      bigint;
    runs   bigint;
    stats  bigint;
    stale  timestamptz := p_before - interval '1 hour';	-- recent_at lags last_at by < 1 h
BEGIN
    IF p_before IS NULL OR p_batch IS NULL OR p_batch < 1 THEN
        RAISE EXCEPTION 'railyard.prune(before, batch): before must be a time and batch at least 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(array_agg(p.id ORDER BY p.id), '{}') INTO pids
      FROM (SELECT id FROM railyard.pipelines
             WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at < p_before
             ORDER BY id LIMIT p_batch FOR UPDATE SKIP LOCKED) p;
    pipelines := cardinality(pids);
    SELECT count(*) INTO tasks FROM railyard.tasks t WHERE t.pipeline_id = ANY (pids);
    DELETE FROM railyard.audit_log l WHERE l.pipeline_id = ANY (pids);
    GET DIAGNOSTICS audit_rows = ROW_COUNT;
    -- Edges and tasks name their pipeline without a foreign key (migrations/
    -- 0021_pipeline_fks.sql): one statement each.  Attempts go with their
    -- task, forecasts with their pipeline (ON DELETE CASCADE).
    DELETE FROM railyard.edges e WHERE e.pipeline_id = ANY (pids);
    DELETE FROM railyard.tasks t WHERE t.pipeline_id = ANY (pids);
    DELETE FROM railyard.pipelines p WHERE p.id = ANY (pids);
    DELETE FROM railyard.audit_log l
     WHERE l.id IN (SELECT u.id FROM railyard.audit_log u
                     WHERE u.pipeline_id IS NULL AND u.at < p_before AND u.event <> 'prune'
                     ORDER BY u.id LIMIT 100 * p_batch);
    GET DIAGNOSTICS n = ROW_COUNT;
    audit_rows := audit_rows + n;
    -- The forecast history: runs that ended before the time (the
    -- statistics hold what forecasts need of them), the pruned pipelines'
    -- own history rows, and the statistics of identities neither run nor
    -- a cache hit since (their next run starts cold).
    DELETE FROM railyard.run_history h
     WHERE h.id IN (SELECT r.id FROM railyard.run_history r WHERE r.finished_at < p_before
                     ORDER BY r.finished_at LIMIT 100 * p_batch);
    GET DIAGNOSTICS runs = ROW_COUNT;
    DELETE FROM railyard.pipeline_history h WHERE h.pipeline_id = ANY (pids);
    -- observe() reads a statistics row, then updates it, under this lock
    -- and no row lock: without it a run applied meanwhile would update
    -- nothing and be lost.
    PERFORM pg_advisory_xact_lock(hashtext('railyard.observe_pending'));
    DELETE FROM railyard.duration_stats d
     WHERE (d.family, d.task, d.version, d.agent_class) IN
           (SELECT s.family, s.task, s.version, s.agent_class FROM railyard.duration_stats s
             WHERE s.recent_at < stale ORDER BY s.recent_at LIMIT 100 * p_batch);
    GET DIAGNOSTICS stats = ROW_COUNT;
    IF pipelines > 0 OR audit_rows > 0 OR runs > 0 OR stats > 0 THEN
        INSERT INTO railyard.audit_log (actor, agent, object, object_id, event, detail)
        VALUES (railyard.actor(), NULL, 'retention', coalesce(pids[cardinality(pids)], 0), 'prune',
                jsonb_build_object('before', p_before, 'pipelines', pipelines, 'tasks', tasks,
                                   'audit_rows', audit_rows, 'first_pipeline', pids[1],
                                   'last_pipeline', pids[cardinality(pids)],
                                   'run_history', runs, 'duration_stats', stats));
    END IF;
    done := NOT EXISTS (SELECT 1 FROM railyard.pipelines p
                         WHERE p.state IN ('succeeded', 'failed', 'cancelled') AND p.finished_at < p_before)
            AND NOT EXISTS (SELECT 1 FROM railyard.audit_log u
                             WHERE u.pipeline_id IS NULL AND u.at < p_before AND u.event <> 'prune')
            AND NOT EXISTS (SELECT 1 FROM railyard.run_history r WHERE r.finished_at < p_before)
            AND NOT EXISTS (SELECT 1 FROM railyard.duration_stats s WHERE s.recent_at < stale);
    RETURN NEXT;
END $$;
COMMENT ON FUNCTION railyard.prune(timestamptz, integer) IS
    'retention: deletes up to batch finished pipelines (with tasks, edges, attempts, audit rows, forecasts, history) finished before the time, old audit rows of no pipeline, task runs that ended before it and the statistics of identities not used (run or cache hit) since; audited; call until done';
