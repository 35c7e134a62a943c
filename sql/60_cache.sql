-- The build cache and artifact passing (docs/cache.md): what a worker
-- asks before running a task, what it records after, and what people read.
-- Blobs are never in the database: only digests, sizes and provenance.

-- Run state belongs to railyard: a submitter cannot pin a commit.
CREATE OR REPLACE FUNCTION railyard.pipelines_source_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.source_commit := NULL;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION railyard.pipelines_source_before_insert() IS
    'forces pipelines.source_commit to NULL on INSERT: only workers pin it';
CREATE OR REPLACE TRIGGER pipelines_source_before_insert BEFORE INSERT ON railyard.pipelines
    FOR EACH ROW EXECUTE FUNCTION railyard.pipelines_source_before_insert();

-- Pins the commit a pipeline's revision resolved to; the first worker wins
-- and every task of the pipeline then builds that commit.
CREATE OR REPLACE FUNCTION railyard.pin_source_commit(p_pipeline bigint, p_commit text)
RETURNS text LANGUAGE sql AS $$
    UPDATE railyard.pipelines SET source_commit = coalesce(source_commit, p_commit)
     WHERE id = p_pipeline
    RETURNING source_commit
$$;
COMMENT ON FUNCTION railyard.pin_source_commit(bigint, text) IS
    'worker: records the commit the pipeline''s revision resolved to (first caller wins) and returns the pinned one';

-- What a worker needs to prepare claimed tasks: the source and revision,
-- the definition (for the cache key), declared inputs and outputs, the
-- output digests of build-time upstreams (key components), and the
-- artifacts to restore from build and test upstreams.  Only tasks running
-- under p_agent are returned.  PL/pgSQL with a generic plan, planned once
-- per session: as an inlined SQL function it was planned at every claim
-- (0.64 of its 0.95 ms per claim of 32 tasks, docs/benchmarks.md).
CREATE OR REPLACE FUNCTION railyard.cache_context(p_agent bigint, p_ids bigint[])
RETURNS TABLE (task_id bigint, attempt int, pipeline_id bigint, name text, source text,
               revision text, source_commit text, cacheable boolean, inputs text[],
               outputs text[], command text, env text[], version text, kind text,
               service text, team text, build_upstreams text[], build_upstream_digests text[],
               restore_from text[], restore_digests text[])
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT t.id, t.attempt, t.pipeline_id, t.name, p.source, p.revision, p.source_commit,
           t.cacheable, t.inputs, t.outputs, t.command,
           ARRAY(SELECT e.key || '=' || e.value FROM jsonb_each_text(t.env) e ORDER BY e.key),
           t.version, t.kind, t.service, p.team,
           coalesce(b.names, '{}'), coalesce(b.digests, '{}'),
           coalesce(r.names, '{}'), coalesce(r.digests, '{}')
      FROM railyard.tasks t
      JOIN railyard.pipelines p ON p.id = t.pipeline_id
      LEFT JOIN LATERAL (
          SELECT array_agg(e.upstream ORDER BY e.upstream) AS names,
                 -- '' (not NULL) for an upstream without outputs: text[]
                 -- readers that drop NULLs keep the two arrays aligned
                 array_agg(coalesce(o.digest, '') ORDER BY e.upstream) AS digests
            FROM railyard.edges e
            JOIN railyard.tasks u ON u.pipeline_id = e.pipeline_id AND u.name = e.upstream
            LEFT JOIN railyard.task_outputs o ON o.task_id = u.id
           WHERE e.pipeline_id = t.pipeline_id AND e.downstream = t.name AND e.kind = 'build'
      ) b ON true
      LEFT JOIN LATERAL (
          SELECT array_agg(e.upstream ORDER BY e.upstream) AS names,
                 array_agg(o.digest ORDER BY e.upstream) AS digests
            FROM railyard.edges e
            JOIN railyard.tasks u ON u.pipeline_id = e.pipeline_id AND u.name = e.upstream
            JOIN railyard.task_outputs o ON o.task_id = u.id
           WHERE e.pipeline_id = t.pipeline_id AND e.downstream = t.name
             AND e.kind IN ('build', 'test')
      ) r ON true
     WHERE t.id = ANY (p_ids) AND t.agent_id = p_agent AND t.state = 'running'
     ORDER BY t.id;
END $$;
COMMENT ON FUNCTION railyard.cache_context(bigint, bigint[]) IS
    'worker: source, definition, inputs/outputs, build-upstream output digests ('''' for none) and artifacts to restore, per claimed task';

-- Whether a key is served.  Policies for keys whose runs disagree:
-- 'keep-first' serves the first entry, 'no-cache' never serves it.
-- A generic plan (as claim_tasks'): the keys are probed by index whatever
-- they are, and a custom plan per call cost more than the lookup itself
-- (pgbench, one key: 1.1 -> 0.5 ms per call; docs/benchmarks.md).
CREATE OR REPLACE FUNCTION railyard.cache_lookup(p_keys text[],
    p_nondeterministic text DEFAULT 'keep-first', p_flaky text DEFAULT 'no-cache')
RETURNS TABLE (key text, hit boolean, output_digest text, output_size bigint,
               duration_s double precision, reason text)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    IF p_nondeterministic NOT IN ('keep-first', 'no-cache') OR p_flaky NOT IN ('keep-first', 'no-cache') THEN
        RAISE EXCEPTION 'cache_lookup: policies are keep-first or no-cache, not % / %',
                        p_nondeterministic, p_flaky USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One index probe per key and question (LIMIT 1 keeps each a
    -- parameterized subquery): the generic plan would otherwise hash-join
    -- a seq scan of cache_entries and hash every failed run, which costs
    -- more than the probes on a small cache and far more on a big one
    -- (0.95 ms per lookup with 144 entries and 840 runs, against 0.4).
    RETURN QUERY
    WITH k AS (SELECT DISTINCT x AS key FROM unnest(p_keys) x),
    v AS (
        SELECT k.key, e.key IS NOT NULL AS found, e.revoked_at IS NOT NULL AS revoked,
               e.output_digest, e.output_size, e.duration_s,
               n.x IS NOT NULL AS nondet, f.x IS NOT NULL AS flaky
          FROM k
          LEFT JOIN LATERAL (SELECT e.* FROM railyard.cache_entries e
                              WHERE e.key = k.key LIMIT 1) e ON true
          LEFT JOIN LATERAL (SELECT 1 AS x FROM railyard.cache_runs r
                              WHERE r.key = k.key AND r.outcome = 'succeeded'
                                AND r.output_digest IS DISTINCT FROM e.output_digest
                              LIMIT 1) n ON true
          LEFT JOIN LATERAL (SELECT 1 AS x FROM railyard.cache_runs r
                              WHERE r.key = k.key AND r.outcome = 'failed' LIMIT 1) f ON true
    ), d AS (
        SELECT v.*, CASE
                 WHEN NOT v.found THEN 'no entry'
                 WHEN v.revoked THEN 'revoked'
                 WHEN v.nondet AND p_nondeterministic = 'no-cache' THEN 'nondeterministic: its runs produced different outputs'
                 WHEN v.flaky AND p_flaky = 'no-cache' THEN 'flaky: its runs both succeeded and failed'
               END AS why
          FROM v
    ), touched AS (
        -- Only when the last use is older than a minute: a hot entry's
        -- lookup writes nothing (no WAL, no dead tuple per hit).  GC's
        -- grace (default 15 minutes) is far longer; cache_record marks
        -- the use again when the hit completes.
        UPDATE railyard.artifacts a SET last_used_at = now()
          FROM d WHERE d.why IS NULL AND a.digest = d.output_digest
                   AND a.last_used_at < now() - interval '1 minute'
        RETURNING a.digest
    )
    SELECT d.key, d.why IS NULL, CASE WHEN d.why IS NULL THEN d.output_digest END,
           CASE WHEN d.why IS NULL THEN d.output_size END,
           CASE WHEN d.why IS NULL THEN d.duration_s END, d.why
      FROM d;   -- "touched" runs regardless: data-modifying CTEs always do
END $$;
COMMENT ON FUNCTION railyard.cache_lookup(text[], text, text) IS
    'worker: for each key, hit (and the output digest) or why not; a hit refreshes the artifact''s last use (GC grace) when older than a minute';

-- cache_record's input, one row per result, with what the tables need
-- from tasks and pipelines and whether the agent holds the attempt (ok).
-- A function, not a temporary table: no catalog churn per completion.
CREATE OR REPLACE FUNCTION railyard.cache_record_input(p_agent bigint, p_results jsonb)
RETURNS TABLE (task_id bigint, attempt int, key text, components jsonb, outcome text,
               output_digest text, output_size bigint, entries int, content_bytes bigint,
               manifest jsonb, duration_s float8, restored_bytes bigint, pipeline_id bigint,
               task_name text, service text, kind text, team text, source text,
               cacheable boolean, ok boolean)
LANGUAGE sql STABLE AS $$
    SELECT r.task_id, r.attempt, r.key, coalesce(r.components, '{}'), r.outcome, r.output_digest,
           r.output_size, r.entries, r.content_bytes, r.manifest, r.duration_s,
           coalesce(r.restored_bytes, 0), t.pipeline_id, t.name, t.service, t.kind, p.team,
           p.source, t.cacheable,
           coalesce(t.attempt = r.attempt AND t.agent_id = p_agent AND t.state = 'running', false)
      FROM jsonb_to_recordset(p_results) AS r(task_id bigint, attempt int, key text,
               components jsonb, outcome text, output_digest text, output_size bigint,
               entries int, content_bytes bigint, manifest jsonb, duration_s float8,
               restored_bytes bigint)
      LEFT JOIN railyard.tasks t ON t.id = r.task_id
      LEFT JOIN railyard.pipelines p ON p.id = t.pipeline_id
$$;
COMMENT ON FUNCTION railyard.cache_record_input(bigint, jsonb) IS
    'cache_record''s results as rows, with task, pipeline and fencing (ok) columns';

-- After a keyed or output-producing task: records its artifact, its
-- outputs for downstream tasks, the run (evidence), and — for a cacheable
-- success — the cache entry (first writer keeps the key; a different
-- output later is reported as nondeterministic).  Fenced like
-- complete_tasks: only the agent holding the attempt may record; send it
-- before complete_tasks in the same transaction.
-- p_results: [{"task_id", "attempt", "key", "components", "outcome"
-- (succeeded|failed|cached), "output_digest", "output_size", "entries",
-- "content_bytes", "manifest", "duration_s", "restored_bytes"}]
CREATE OR REPLACE FUNCTION railyard.cache_record(p_agent bigint, p_results jsonb)
RETURNS TABLE (task_id bigint, attempt int, accepted boolean, conflict text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    agent text;
BEGIN
    SELECT name INTO agent FROM railyard.agents WHERE id = p_agent;
    IF EXISTS (SELECT 1 FROM railyard.cache_record_input(p_agent, p_results) i
                WHERE i.outcome IS NULL OR i.outcome NOT IN ('succeeded', 'failed', 'cached')
                   OR (i.key IS NOT NULL AND i.key !~ '^[0-9a-f]{64}$')
                   OR (i.output_digest IS NOT NULL AND (i.output_digest !~ '^[0-9a-f]{64}$'
                                                        OR i.output_size IS NULL))) THEN
        RAISE EXCEPTION 'cache_record: each result needs outcome succeeded|failed|cached, a 64-hex key and digest, and a size with the digest'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO railyard.artifacts AS a (digest, size, entries, content_bytes, manifest, task_id,
                                         attempt, agent_name, uses)
    SELECT DISTINCT ON (i.output_digest) i.output_digest, i.output_size, i.entries,
           i.content_bytes, i.manifest, i.task_id, i.attempt, agent,
           (i.outcome = 'cached')::int
      FROM railyard.cache_record_input(p_agent, p_results) i
     WHERE i.ok AND i.output_digest IS NOT NULL AND i.outcome IN ('succeeded', 'cached')
     ORDER BY i.output_digest, i.task_id
    ON CONFLICT (digest) DO UPDATE
       SET last_used_at = now(), uses = a.uses + EXCLUDED.uses,
           manifest = coalesce(a.manifest, EXCLUDED.manifest);

    INSERT INTO railyard.task_outputs AS o (task_id, attempt, pipeline_id, digest, size, cached)
    SELECT i.task_id, i.attempt, i.pipeline_id, i.output_digest, i.output_size, i.outcome = 'cached'
      FROM railyard.cache_record_input(p_agent, p_results) i
     WHERE i.ok AND i.output_digest IS NOT NULL AND i.outcome IN ('succeeded', 'cached')
    ON CONFLICT (task_id) DO UPDATE
       SET attempt = EXCLUDED.attempt, digest = EXCLUDED.digest, size = EXCLUDED.size,
           cached = EXCLUDED.cached, recorded_at = now();

    INSERT INTO railyard.cache_runs AS c (task_id, attempt, pipeline_id, key, components, outcome,
                                          output_digest, output_size, agent_name, duration_s,
                                          restored_bytes)
    SELECT i.task_id, i.attempt, i.pipeline_id, i.key, i.components, i.outcome, i.output_digest,
           i.output_size, agent,
           CASE WHEN i.outcome = 'cached' THEN e.duration_s ELSE i.duration_s END,
           i.restored_bytes
      FROM railyard.cache_record_input(p_agent, p_results) i
      LEFT JOIN railyard.cache_entries e ON e.key = i.key
     WHERE i.ok AND i.key IS NOT NULL
    ON CONFLICT ON CONSTRAINT cache_runs_pkey DO NOTHING;

    UPDATE railyard.tasks t SET cache_key = i.key
      FROM railyard.cache_record_input(p_agent, p_results) i
     WHERE i.ok AND i.key IS NOT NULL AND t.id = i.task_id;

    -- First writer keeps the key (two workers racing both succeed); a
    -- revoked entry is replaced by a fresh run.
    INSERT INTO railyard.cache_entries AS e (key, output_digest, output_size, components, source,
                                             task_name, service, kind, team, task_id, attempt,
                                             agent_name, duration_s)
    SELECT DISTINCT ON (i.key) i.key, i.output_digest, i.output_size, i.components, i.source,
           i.task_name, i.service, i.kind, i.team, i.task_id, i.attempt, agent, i.duration_s
      FROM railyard.cache_record_input(p_agent, p_results) i
     WHERE i.ok AND i.key IS NOT NULL AND i.cacheable AND i.outcome = 'succeeded'
     ORDER BY i.key, i.task_id
    ON CONFLICT (key) DO UPDATE
       SET output_digest = EXCLUDED.output_digest, output_size = EXCLUDED.output_size,
           components = EXCLUDED.components, task_id = EXCLUDED.task_id,
           attempt = EXCLUDED.attempt, agent_name = EXCLUDED.agent_name,
           duration_s = EXCLUDED.duration_s, created_at = now(), hits = 0, last_hit_at = NULL,
           revoked_at = NULL, revocation_id = NULL
     WHERE e.revoked_at IS NOT NULL;

    UPDATE railyard.cache_entries e SET hits = e.hits + n.hits, last_hit_at = now()
      FROM (SELECT i.key, count(*) AS hits FROM railyard.cache_record_input(p_agent, p_results) i
             WHERE i.ok AND i.outcome = 'cached' AND i.key IS NOT NULL GROUP BY i.key) n
     WHERE e.key = n.key;

    RETURN QUERY
    SELECT i.task_id, i.attempt, i.ok,
           CASE WHEN i.ok AND i.outcome = 'succeeded' AND e.key IS NOT NULL
                     AND e.output_digest IS DISTINCT FROM i.output_digest
                THEN 'nondeterministic: key ' || left(i.key, 12) || ' produced ' ||
                     coalesce(left(e.output_digest, 12), 'no outputs') || ' before, now ' ||
                     coalesce(left(i.output_digest, 12), 'no outputs')
                WHEN NOT i.ok THEN 'not recorded: the task is not running under this agent with this attempt'
           END
      FROM railyard.cache_record_input(p_agent, p_results) i
      LEFT JOIN railyard.cache_entries e ON e.key = i.key
     ORDER BY i.task_id;
END $$;
COMMENT ON FUNCTION railyard.cache_record(bigint, jsonb) IS
    'worker: records outputs, keyed runs and cache entries of its running attempts (fenced by agent and attempt)';

-- A blob found corrupt on restore; the trigger below writes the audit log.
CREATE OR REPLACE FUNCTION railyard.cache_corruption(p_agent bigint, p_digest text,
    p_store text, p_detail text)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO railyard.cache_corruptions (agent_name, digest, store, detail)
    VALUES ((SELECT name FROM railyard.agents WHERE id = p_agent), p_digest, p_store, p_detail)
    RETURNING id
$$;
COMMENT ON FUNCTION railyard.cache_corruption(bigint, text, text, text) IS
    'worker: records a blob that did not match its digest (quarantined); logged as audit event quarantine';

CREATE OR REPLACE FUNCTION railyard.audit_cache_corruptions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO railyard.audit_log (actor, object, object_id, event, detail)
    SELECT railyard.actor(), 'artifact', coalesce(a.id, n.id), 'quarantine',
           jsonb_strip_nulls(jsonb_build_object('digest', n.digest, 'store', n.store,
               'agent', n.agent_name, 'detail', n.detail, 'corruption_id', n.id))
      FROM new_rows n LEFT JOIN railyard.artifacts a ON a.digest = n.digest;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.audit_cache_corruptions() IS 'audit log: event quarantine per corrupt blob';
CREATE OR REPLACE TRIGGER audit_cache_corruptions AFTER INSERT ON railyard.cache_corruptions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION railyard.audit_cache_corruptions();

CREATE OR REPLACE FUNCTION railyard.audit_cache_revocations() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO railyard.audit_log (actor, object, object_id, event, detail)
    SELECT railyard.actor(), 'cache', n.id, 'revoke',
           jsonb_strip_nulls(jsonb_build_object('agent', n.agent_name, 'since', n.since,
               'key', n.key, 'reason', n.reason, 'entries', n.entries))
      FROM new_rows n;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.audit_cache_revocations() IS 'audit log: event revoke per railyard cache revoke';
CREATE OR REPLACE TRIGGER audit_cache_revocations AFTER INSERT ON railyard.cache_revocations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION railyard.audit_cache_revocations();

-- Invalidates entries by provenance: those made by agent p_agent, at or
-- after p_since, or with key p_key (criteria given together must all hold).
CREATE OR REPLACE FUNCTION railyard.cache_revoke(p_agent text, p_since timestamptz,
    p_key text, p_reason text)
RETURNS TABLE (revocation_id bigint, entries int)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    rid bigint;
    n int;
BEGIN
    IF p_agent IS NULL AND p_since IS NULL AND p_key IS NULL THEN
        RAISE EXCEPTION 'cache_revoke: give an agent, a time or a key'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_key IS NOT NULL AND p_key !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'cache_revoke: key "%" is not 64 lowercase hex digits', p_key
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO railyard.cache_revocations (revoked_by, agent_name, since, key, reason)
    VALUES (railyard.actor(), p_agent, p_since, p_key, p_reason) RETURNING id INTO rid;
    UPDATE railyard.cache_entries e SET revoked_at = now(), revocation_id = rid
     WHERE e.revoked_at IS NULL
       AND (p_agent IS NULL OR e.agent_name = p_agent)
       AND (p_since IS NULL OR e.created_at >= p_since)
       AND (p_key IS NULL OR e.key = p_key);
    GET DIAGNOSTICS n = ROW_COUNT;
    -- The audit row is written at INSERT; the count follows in its own row.
    UPDATE railyard.cache_revocations SET entries = n WHERE id = rid;
    UPDATE railyard.audit_log SET detail = detail || jsonb_build_object('entries', n)
     WHERE object = 'cache' AND object_id = rid AND event = 'revoke';
    RETURN QUERY SELECT rid, n;
END $$;
COMMENT ON FUNCTION railyard.cache_revoke(text, timestamptz, text, text) IS
    'railyard cache revoke: invalidates entries by agent, time and/or key; recorded and audited';

-- What a queued or running pipeline still needs: outputs already recorded
-- for its tasks (downstream restores), and the newest entry of every
-- cacheable task of it that has not finished (its likely hit).
CREATE OR REPLACE FUNCTION railyard.cache_pins()
RETURNS TABLE (digest text, pipeline_id bigint, why text)
LANGUAGE sql STABLE AS $$
    SELECT o.digest, o.pipeline_id, 'outputs of task ' || o.task_id
      FROM railyard.task_outputs o
      JOIN railyard.pipelines p ON p.id = o.pipeline_id
     WHERE p.state IN ('queued', 'running')
    UNION ALL
    SELECT e.output_digest, t.pipeline_id, 'likely hit of task ' || t.id
      FROM railyard.tasks t
      JOIN railyard.pipelines p ON p.id = t.pipeline_id
      CROSS JOIN LATERAL (
          SELECT e.output_digest FROM railyard.cache_entries e
           WHERE e.task_name = t.name AND e.source IS NOT DISTINCT FROM p.source
             AND e.revoked_at IS NULL AND e.output_digest IS NOT NULL
           ORDER BY e.created_at DESC LIMIT 1) e
     WHERE p.state IN ('queued', 'running') AND t.cacheable
       AND t.state IN ('blocked', 'ready', 'running')
$$;
COMMENT ON FUNCTION railyard.cache_pins() IS
    'artifacts GC must keep: outputs recorded in active pipelines and the latest entry of their unfinished cacheable tasks';

-- The GC's value order (largest first goes first): idle time x size over
-- (rebuild time + 1 s) x (uses + 1).  A big, cold, rarely used artifact
-- that is cheap to rebuild leads; a small hot expensive one comes last.
CREATE OR REPLACE VIEW railyard.cache_gc_order AS
SELECT a.digest, a.size, a.uses, a.last_used_at,
       coalesce(r.rebuild_s, 0) AS rebuild_s,
       r.digest IS NOT NULL AS cached,
       extract(epoch FROM now() - a.last_used_at) * a.size
           / ((coalesce(r.rebuild_s, 0) + 1) * (a.uses + 1)) AS score
  FROM railyard.artifacts a
  LEFT JOIN (SELECT e.output_digest AS digest, max(e.duration_s) AS rebuild_s
               FROM railyard.cache_entries e WHERE e.output_digest IS NOT NULL GROUP BY 1) r
         ON r.digest = a.digest;
COMMENT ON VIEW railyard.cache_gc_order IS
    'artifacts with their eviction score: idle_s x size / ((rebuild_s + 1) x (uses + 1)); higher goes first';
COMMENT ON COLUMN railyard.cache_gc_order.cached IS 'true: a cache entry maps a key to it';

-- Garbage collection of the database records.  Never touches pins or
-- anything used within p_grace (a restore in flight).  Removes: artifacts
-- no entry maps to (pipeline transfers of finished pipelines); entries
-- and artifacts idle longer than p_max_age; then, while the recorded
-- artifacts exceed p_max_bytes, the highest scores of cache_gc_order.
-- Returns what was (p_dry_run: would be) removed; the caller deletes the
-- blobs from the stores.  One GC at a time.
CREATE OR REPLACE FUNCTION railyard.cache_gc(p_max_bytes bigint, p_max_age interval,
    p_grace interval DEFAULT '15 minutes', p_dry_run boolean DEFAULT false)
RETURNS TABLE (digest text, size bigint, entries int, why text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('railyard.cache_gc'));
    CREATE TEMP TABLE IF NOT EXISTS cache_gc_victims (digest text PRIMARY KEY, size bigint,
                                                      why text) ON COMMIT DROP;
    TRUNCATE cache_gc_victims;
    CREATE TEMP TABLE IF NOT EXISTS cache_gc_pinned (digest text PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE cache_gc_pinned;
    INSERT INTO cache_gc_pinned SELECT DISTINCT p.digest FROM railyard.cache_pins() p
     WHERE p.digest IS NOT NULL;

    INSERT INTO cache_gc_victims
    SELECT o.digest, o.size, CASE WHEN NOT o.cached THEN 'not a cache entry, no active pipeline needs it'
                                  ELSE format('unused for %s', date_trunc('second', now() - o.last_used_at)) END
      FROM railyard.cache_gc_order o
     WHERE o.last_used_at < now() - p_grace
       AND NOT EXISTS (SELECT 1 FROM cache_gc_pinned p WHERE p.digest = o.digest)
       AND (NOT o.cached OR (p_max_age IS NOT NULL AND o.last_used_at < now() - p_max_age));

    IF p_max_bytes IS NOT NULL THEN
        INSERT INTO cache_gc_victims
        SELECT s.digest, s.size, format('over the size cap (score %s)', round(s.score::numeric))
          FROM (SELECT o.digest, o.size, o.score,
                       sum(o.size) OVER (ORDER BY o.score DESC, o.digest) - o.size AS before
                  FROM railyard.cache_gc_order o
                 WHERE o.last_used_at < now() - p_grace
                   AND NOT EXISTS (SELECT 1 FROM cache_gc_pinned p WHERE p.digest = o.digest)
                   AND NOT EXISTS (SELECT 1 FROM cache_gc_victims v WHERE v.digest = o.digest)) s
         WHERE s.before < (SELECT sum(a.size) FROM railyard.artifacts a)
                          - coalesce((SELECT sum(v.size) FROM cache_gc_victims v), 0) - p_max_bytes;
    END IF;

    RETURN QUERY
    SELECT v.digest, v.size,
           (SELECT count(*)::int FROM railyard.cache_entries e WHERE e.output_digest = v.digest),
           v.why
      FROM cache_gc_victims v ORDER BY v.digest;
    -- Entries without outputs weigh nothing but still age out.
    RETURN QUERY
    SELECT NULL::text, 0::bigint, count(*)::int, 'entries without outputs unused longer than the age limit'
      FROM railyard.cache_entries e
     WHERE p_max_age IS NOT NULL AND e.output_digest IS NULL
       AND coalesce(e.last_hit_at, e.created_at) < now() - p_max_age
    HAVING count(*) > 0;
    IF p_dry_run THEN
        RETURN;
    END IF;
    DELETE FROM railyard.cache_entries e USING cache_gc_victims v WHERE e.output_digest = v.digest;
    DELETE FROM railyard.cache_entries e
     WHERE p_max_age IS NOT NULL AND e.output_digest IS NULL
       AND coalesce(e.last_hit_at, e.created_at) < now() - p_max_age;
    DELETE FROM railyard.artifacts a USING cache_gc_victims v WHERE a.digest = v.digest;
END $$;
COMMENT ON FUNCTION railyard.cache_gc(bigint, interval, interval, boolean) IS
    'railyard cache gc: removes artifact and entry records by age, size cap and value, never pins or recent uses';

-- The task's key components beside the last entry of the same identity
-- (task name and source) made before its run: what railyard cache explain diffs.
CREATE OR REPLACE FUNCTION railyard.cache_explain(p_task bigint)
RETURNS TABLE (task_id bigint, task_name text, attempt int, outcome text, key text,
               components jsonb, recorded_at timestamptz, prev_key text,
               prev_components jsonb, prev_task_id bigint, prev_created_at timestamptz,
               prev_revoked boolean)
LANGUAGE sql STABLE AS $$
    SELECT t.id, t.name, r.attempt, r.outcome, r.key, r.components, r.recorded_at,
           e.key, e.components, e.task_id, e.created_at, e.revoked_at IS NOT NULL
      FROM railyard.tasks t
      JOIN railyard.pipelines p ON p.id = t.pipeline_id
      LEFT JOIN LATERAL (SELECT * FROM railyard.cache_runs r WHERE r.task_id = t.id
                          ORDER BY r.attempt DESC LIMIT 1) r ON true
      LEFT JOIN LATERAL (SELECT * FROM railyard.cache_entries e
                          WHERE e.task_name = t.name AND e.source IS NOT DISTINCT FROM p.source
                            AND e.task_id IS DISTINCT FROM t.id
                            AND e.created_at <= coalesce(r.recorded_at, now())
                          ORDER BY e.created_at DESC LIMIT 1) e ON true
     WHERE t.id = p_task
$$;
COMMENT ON FUNCTION railyard.cache_explain(bigint) IS
    'railyard cache explain: a task''s key components and those of the previous entry of the same task identity';

-- Hit rate, bytes and time saved, by day, team and service.
CREATE OR REPLACE VIEW railyard.cache_stats AS
SELECT date_trunc('day', r.recorded_at) AS day, p.team, t.service,
       count(*) AS lookups,
       count(*) FILTER (WHERE r.outcome = 'cached') AS hits,
       count(*) FILTER (WHERE r.outcome <> 'cached') AS misses,
       round(100.0 * count(*) FILTER (WHERE r.outcome = 'cached') / count(*), 1) AS hit_rate_pct,
       coalesce(sum(r.output_size) FILTER (WHERE r.outcome = 'succeeded'), 0) AS bytes_stored,
       coalesce(sum(r.restored_bytes), 0) AS bytes_restored,
       round(coalesce(sum(r.duration_s) FILTER (WHERE r.outcome = 'cached'), 0)::numeric, 1)
           AS time_saved_s
  FROM railyard.cache_runs r
  JOIN railyard.tasks t ON t.id = r.task_id
  JOIN railyard.pipelines p ON p.id = r.pipeline_id
 GROUP BY 1, 2, 3;
COMMENT ON VIEW railyard.cache_stats IS
    'cache lookups, hits, misses, hit rate, bytes stored and restored, time saved (run time of the entries hit), by day, team, service';
COMMENT ON COLUMN railyard.cache_stats.time_saved_s IS 'sum of the original run times of the entries served';

-- Keys whose successful runs produced different outputs: not reproducible.
CREATE OR REPLACE VIEW railyard.nondeterministic_tasks AS
SELECT r.key, min(t.name) AS task_name, min(p.source) AS source,
       array_agg(DISTINCT r.output_digest) AS output_digests,
       array_agg(DISTINCT r.agent_name) AS agents,
       count(*) AS runs, min(r.recorded_at) AS first_seen, max(r.recorded_at) AS last_seen,
       (SELECT array_agg(x.path ORDER BY x.path)
          FROM (SELECT d.path
                  FROM (SELECT a.digest, m.key AS path, m.value
                          FROM railyard.artifacts a, jsonb_each_text(a.manifest) m
                         WHERE a.digest IN (SELECT r2.output_digest FROM railyard.cache_runs r2
                                             WHERE r2.key = r.key AND r2.outcome = 'succeeded')) d
                 GROUP BY d.path
                HAVING count(DISTINCT d.value) > 1
                    OR count(*) < (SELECT count(DISTINCT r3.output_digest) FROM railyard.cache_runs r3
                                    WHERE r3.key = r.key AND r3.outcome = 'succeeded')) x)
           AS differing_paths
  FROM railyard.cache_runs r
  JOIN railyard.tasks t ON t.id = r.task_id
  JOIN railyard.pipelines p ON p.id = r.pipeline_id
 WHERE r.outcome = 'succeeded'
 GROUP BY r.key
HAVING count(DISTINCT r.output_digest) > 1
    OR (count(r.output_digest) > 0 AND count(r.output_digest) < count(*));
COMMENT ON VIEW railyard.nondeterministic_tasks IS
    'cache keys whose successful runs produced different outputs: which outputs differ, on which agents';
COMMENT ON COLUMN railyard.nondeterministic_tasks.differing_paths IS
    'output paths whose content (or presence) differs between the artifacts';

-- Keys that both succeeded and failed: flaky tasks, proven by their keys.
CREATE OR REPLACE VIEW railyard.flaky_tasks AS
SELECT r.key, min(t.name) AS task_name, min(p.source) AS source,
       count(*) FILTER (WHERE r.outcome = 'succeeded') AS successes,
       count(*) FILTER (WHERE r.outcome = 'failed') AS failures,
       array_agg(DISTINCT r.agent_name) FILTER (WHERE r.outcome = 'failed') AS failed_on,
       array_agg(DISTINCT r.agent_name) FILTER (WHERE r.outcome = 'succeeded') AS succeeded_on,
       max(r.recorded_at) FILTER (WHERE r.outcome = 'failed') AS last_failure
  FROM railyard.cache_runs r
  JOIN railyard.tasks t ON t.id = r.task_id
  JOIN railyard.pipelines p ON p.id = r.pipeline_id
 WHERE r.outcome IN ('succeeded', 'failed')
 GROUP BY r.key
HAVING count(*) FILTER (WHERE r.outcome = 'succeeded') > 0
   AND count(*) FILTER (WHERE r.outcome = 'failed') > 0;
COMMENT ON VIEW railyard.flaky_tasks IS
    'cache keys that both succeeded and failed: the same inputs, different verdicts';
