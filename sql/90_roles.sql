-- Roles and least privilege.  Applied last by every migrate, so every
-- function of the other files exists (and CREATE OR REPLACE has just reset
-- their attributes); everything here is by name, so a changed signature
-- keeps its grant.  The roles themselves are made by
-- migrations/0002_hardening.sql; docs/operations.md ("Roles") says how a
-- farm gives each client a login role.
--
--   railyard_reader     SELECT on every table and view; EXECUTE on every
--                       function that cannot write (STABLE or IMMUTABLE).
--   railyard_submitter  the reader's rights, INSERT on pipelines, tasks and
--                       edges, and the functions classed 'submitter' below.
--   railyard_worker     the reader's rights and the functions classed
--                       'worker' below.  No direct writes at all.
--   (owner)             owns schema railyard; everything else, including
--                       the functions classed 'owner'.
--
-- Every function that can write (VOLATILE) runs as the owner (SECURITY
-- DEFINER) with a fixed search_path — pg_catalog, railyard, then pg_temp
-- last so a caller's temporary table can never stand in for one of ours —
-- and with railyard.internal = on, which is what lets it change tasks,
-- edges, pipelines, attempts and the audit log: statements outside
-- railyard's functions are refused (sql/30_audit.sql).  Functions called
-- once per inserted row and the guards themselves stay as they are
-- (invoker_functions below): they write nothing.

-- Which role may call which function that can write, by name.  A VOLATILE
-- function missing here is the owner's alone, and
-- tests/integration/test_roles.sh fails until it is classed: a new
-- function gets a conscious decision.
CREATE OR REPLACE VIEW railyard.function_access AS
SELECT * FROM (VALUES
    -- the worker's calls (pkg/worker)
    ('register_agent', 'worker', 'worker: registers (or re-registers) an agent; requeues what a previous incarnation held'),
    ('heartbeat', 'worker', 'worker: renews the agent''s lease and returns the tasks it runs that are no longer its own'),
    ('reap', 'worker', 'worker: marks agents whose lease ran out offline and requeues or fails their tasks (one caller at a time)'),
    ('claim_candidates', 'worker', 'worker: locks the best ready tasks an agent could run (FOR UPDATE SKIP LOCKED)'),
    ('claim_tasks', 'worker', 'worker: leases the chosen tasks to the agent (attempt + 1) and returns what it needs to run them'),
    ('start_tasks', 'worker', 'worker: records that the processes of claimed tasks started (fenced by attempt)'),
    ('complete_tasks', 'worker', 'worker: records results, fenced by agent and attempt, and settles dependents'),
    ('agent_offline', 'worker', 'worker: a worker leaving cleanly; what it held is requeued at once'),
    ('update_agent', 'worker', 'worker: new labels and capacity after a configuration reload'),
    ('release_tasks', 'worker', 'worker: hands back claimed tasks it never started, without using up an attempt'),
    ('work_remains', 'worker', 'worker: whether anything the agent could run is ready, running or blocked'),
    -- the worker's placement calls (sql/25_placement.sql)
    ('claim_placement', 'worker', 'worker: locks the ready tasks placement offers an agent, per team and for its scarce labels (FOR UPDATE SKIP LOCKED)'),
    ('set_concurrency_limit', 'worker', 'worker: records its adaptive concurrency limit; audited when the direction turns'),
    ('set_agent_limits', 'worker', 'worker: records how task resource limits are enforced (kernel or sampled)'),
    -- the worker's cache calls (sql/60_cache.sql)
    ('cache_context', 'worker', 'worker: source, definition and upstream artifacts of claimed tasks (stable: every role may read it)'),
    ('cache_lookup', 'worker', 'worker: cache hits for keys'),
    ('cache_record', 'worker', 'worker: records outputs and cache entries of its attempts'),
    ('cache_corruption', 'worker', 'worker: records a corrupt blob'),
    ('pin_source_commit', 'worker', 'worker: pins the commit a pipeline''s revision resolved to'),
    -- the worker's forecasting call (sql/51_forecast.sql)
    ('record_pending_forecasts', 'worker', 'worker: records the submission forecast of pipelines queued since their COMMIT'),
    ('observe_pending', 'worker', 'worker: applies the runs queued by the history triggers to the statistics and anomaly detectors'),
    -- the webhook sender (sql/85_outbox.sql)
    ('webhook_claim', 'worker', 'worker: takes the farm-wide webhook sender lease and the due outbox rows'),
    ('webhook_report', 'worker', 'worker: records webhook attempts (delivered, retry later, dead)'),
    -- people and CI jobs
    ('submit_pipeline', 'submitter', 'submits a pipeline with its tasks and edges in one call (railyard submit)'),
    ('cancel_pipeline', 'submitter', 'cancels a pipeline''s unfinished tasks'),
    ('record_forecast', 'submitter', 'railyard forecast --record: stores a forecast made on request'),
    -- railyard's internals and the owner's maintenance
    ('settle', 'owner', 'internal: counts finished tasks off their dependents, releases or skips them, rolls pipelines up'),
    ('requeue_tasks', 'owner', 'internal: returns running tasks to ready (or fails them after max_attempts) and records the lost attempt'),
    ('refund_tasks', 'owner', 'internal: gives back the attempt of tasks requeued without ever starting'),
    ('requeue_lost', 'owner', 'internal: requeues the running tasks of the given agents'),
    ('prune', 'owner', 'retention: deletes finished pipelines and old audit rows, audited'),
    ('cache_gc', 'owner', 'railyard cache gc'),
    ('cache_revoke', 'owner', 'railyard cache revoke'),
    ('inventory_replace', 'owner', 'railyard inventory import'),
    ('import_history', 'owner', 'railyard history import'),
    ('record_utilization_forecast', 'owner', 'records a utilisation forecast so its accuracy can be judged later'),
    ('forecast_at_submission', 'owner', 'trigger: queues a validated pipeline for its submission forecast'),
    ('history_capture_attempts', 'owner', 'trigger: records real executions into the run history'),
    ('history_capture_pipelines', 'owner', 'trigger: records finished pipelines into the pipeline history'),
    ('observe', 'owner', 'internal: updates duration statistics and runs the anomaly detectors for new runs'),
    ('observe_one', 'owner', 'internal: statistics and detectors for one task identity'),
    ('anomaly_open', 'owner', 'internal: opens an anomaly and notifies railyard_anomaly'),
    ('anomaly_close', 'owner', 'internal: closes an anomaly once the baseline has adapted'),
    ('webhook_redeliver', 'owner', 'puts webhook dead letters back in the queue'),
    ('webhook_enqueue', 'owner', 'internal: writes outbox rows for state changes'),
    ('webhook_tasks_update', 'owner', 'trigger: outbox rows for task state changes'),
    ('webhook_pipelines_update', 'owner', 'trigger: outbox rows for pipeline state changes'),
    ('store_scan', 'owner', 'railyard deps scan'),
    ('explicit_replaces_detected', 'owner', 'trigger: an explicit dependency row replaces the detected one'),
    ('pipelines_source_before_insert', 'owner', 'trigger: forces source_commit on INSERT'),
    ('audit_cache_corruptions', 'owner', 'trigger: audits quarantined blobs'),
    ('audit_cache_revocations', 'owner', 'trigger: audits cache revocations'),
    ('validate_pipeline', 'owner', 'trigger: validates a submitted pipeline at COMMIT'),
    ('pipelines_before_insert', 'owner', 'trigger: forces a new pipeline''s run state'),
    ('tasks_before_insert', 'owner', 'trigger: checks a new task and forces its run state'),
    ('tasks_after_insert', 'owner', 'trigger: refuses tasks for a submitted pipeline, once per statement'),
    ('edges_after_insert', 'owner', 'trigger: checks new edges, once per statement'),
    ('refuse_direct_write', 'owner', 'trigger: refuses writes that do not come from railyard''s functions'),
    ('audit_tasks_update', 'owner', 'trigger: audits task state changes'),
    ('audit_tasks_insert', 'owner', 'trigger: audits tasks inserted ready'),
    ('audit_pipelines_insert', 'owner', 'trigger: audits submissions'),
    ('audit_pipelines_update', 'owner', 'trigger: audits pipeline state changes'),
    ('audit_agents_change', 'owner', 'trigger: audits agent state changes'),
    ('tasks_placement_keys', 'owner', 'trigger: a task becoming ready gets its team and aging key'),
    ('tasks_pool_exists', 'owner', 'trigger: refuses at COMMIT a task naming an unknown pool'),
    ('claim_trim', 'owner', 'internal: the chosen tasks that fit a pool''s or team''s room (claim_tasks)')
) AS f (name, access, description);
COMMENT ON VIEW railyard.function_access IS
    'which role may call each railyard function that can write: worker, submitter or owner (sql/90_roles.sql); read-only functions are open to every railyard role';

DO $$
DECLARE
    -- VOLATILE but left as the caller: per-row checks and the guards.
    invoker_functions constant text[] :=
        ARRAY['pipelines_before_insert', 'tasks_before_insert', 'refuse_direct_write'];
    f record;
BEGIN
    REVOKE ALL ON SCHEMA railyard FROM PUBLIC;
    GRANT USAGE ON SCHEMA railyard TO railyard_submitter, railyard_worker, railyard_reader;

    REVOKE ALL ON ALL TABLES IN SCHEMA railyard
        FROM PUBLIC, railyard_submitter, railyard_worker, railyard_reader;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA railyard
        FROM PUBLIC, railyard_submitter, railyard_worker, railyard_reader;
    GRANT SELECT ON ALL TABLES IN SCHEMA railyard
        TO railyard_submitter, railyard_worker, railyard_reader;
    GRANT INSERT ON railyard.pipelines, railyard.tasks, railyard.edges TO railyard_submitter;

    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA railyard
        FROM PUBLIC, railyard_submitter, railyard_worker, railyard_reader;
    ALTER DEFAULT PRIVILEGES IN SCHEMA railyard REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

    FOR f IN
        SELECT p.oid::regprocedure AS sig, p.proname, p.provolatile, a.access, a.description,
               obj_description(p.oid, 'pg_proc') IS NULL AS undocumented
          FROM pg_catalog.pg_proc p
          LEFT JOIN railyard.function_access a ON a.name = p.proname
         WHERE p.pronamespace = 'railyard'::regnamespace AND p.prokind = 'f'
    LOOP
        -- A function's own COMMENT wins; the list documents the others.
        IF f.undocumented AND f.description IS NOT NULL THEN
            EXECUTE format('COMMENT ON FUNCTION %s IS %L', f.sig, f.description);
        END IF;
        IF f.provolatile = 'v' AND NOT f.proname = ANY (invoker_functions) THEN
            EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER '
                           'SET search_path = pg_catalog, railyard, pg_temp '
                           'SET railyard.internal = on', f.sig);
        END IF;
        IF f.provolatile <> 'v' THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO railyard_submitter, railyard_worker, '
                           'railyard_reader', f.sig);
        ELSIF f.access = 'worker' THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO railyard_worker', f.sig);
        ELSIF f.access = 'submitter' THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO railyard_submitter', f.sig);
        END IF;
    END LOOP;
END $$;

-- Optional row-level security by team (docs/operations.md, "Roles"):
-- inactive until the owner runs
--     ALTER TABLE railyard.pipelines ENABLE ROW LEVEL SECURITY;
-- Then a submitter may insert a pipeline only for a team that
-- railyard.team_roles maps to one of its roles (and cancel only those);
-- every role still reads every pipeline.  The owner and railyard's own
-- functions are not subject to it.
DROP POLICY IF EXISTS pipelines_read ON railyard.pipelines;
CREATE POLICY pipelines_read ON railyard.pipelines FOR SELECT USING (true);
COMMENT ON POLICY pipelines_read ON railyard.pipelines IS 'with row-level security on, every role still reads every pipeline';
DROP POLICY IF EXISTS pipelines_submit_by_team ON railyard.pipelines;
CREATE POLICY pipelines_submit_by_team ON railyard.pipelines FOR INSERT TO railyard_submitter
    WITH CHECK (railyard.may_act_for_team(team));
COMMENT ON POLICY pipelines_submit_by_team ON railyard.pipelines IS
    'with row-level security on, submitters insert pipelines only for teams railyard.team_roles gives their roles';
