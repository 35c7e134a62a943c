-- The task lifecycle after submission: claim, start, complete, settle
-- dependents, heartbeat, reap, cancel.  Workers call only these functions,
-- so every rule lives here once.

-- Called with tasks that just reached a final state: counts them off their
-- dependents, releases those with nothing left to wait for (or skips them
-- when their run_if cannot hold any more, which propagates), rolls finished
-- pipelines up and wakes workers once if anything became ready.
--
-- Generic plans (here, in claim_tasks and in complete_tasks): every statement looks rows
-- up by an id array, where a custom plan is no better, yet PostgreSQL
-- plans it afresh for each of a connection's first calls and keeps doing
-- so when the generic plan's estimate looks costlier: 1-2 ms of planning
-- per completion (complete_tasks 9.7 -> 6.2 ms per call in the short-task
-- DAG, docs/benchmarks.md).
CREATE OR REPLACE FUNCTION railyard.settle(finished bigint[]) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    frontier bigint[] := finished;
    pids     bigint[];
    above    boolean;
    skipped  bigint[];
    released int;
    woke     int := 0;
BEGIN
    SELECT array_agg(DISTINCT f.pipeline_id),
           bool_or(EXISTS (SELECT 1 FROM railyard.edges e
                            WHERE e.pipeline_id = f.pipeline_id AND e.upstream = f.name))
      INTO pids, above
      FROM railyard.tasks f WHERE f.id = ANY (finished);
    IF pids IS NULL THEN
        RETURN;
    END IF;
    -- Only leaves finished (nothing downstream): nobody to release, and
    -- no UPDATE of dependents (an empty one still runs the statement
    -- triggers of tasks).
    IF NOT above THEN
        frontier := NULL;
    END IF;

    WHILE coalesce(array_length(frontier, 1), 0) > 0 LOOP
        -- Lock dependents in id order so concurrent settles cannot deadlock.
        PERFORM 1 FROM railyard.tasks d
         WHERE d.id IN (SELECT d2.id
                          FROM railyard.tasks f
                          JOIN railyard.edges e ON e.pipeline_id = f.pipeline_id AND e.upstream = f.name
                          JOIN railyard.tasks d2 ON d2.pipeline_id = e.pipeline_id AND d2.name = e.downstream
                         WHERE f.id = ANY (frontier))
         ORDER BY d.id FOR UPDATE;

        WITH fin AS (
            SELECT f.pipeline_id, f.name, railyard.is_bad_outcome(f.state, f.upstream_failed) AS bad
              FROM railyard.tasks f WHERE f.id = ANY (frontier)
        ), agg AS (
            SELECT e.pipeline_id, e.downstream AS name, count(*)::int AS n, bool_or(fin.bad) AS bad
              FROM fin JOIN railyard.edges e ON e.pipeline_id = fin.pipeline_id AND e.upstream = fin.name
             GROUP BY 1, 2
        ), decided AS (
            SELECT d.id, d.waiting_on - agg.n AS waiting, d.upstream_failed OR agg.bad AS failed_above,
                   CASE WHEN d.waiting_on - agg.n > 0 THEN 'blocked'::railyard.task_state
                        WHEN d.run_if = 'always' THEN 'ready'
                        WHEN (d.upstream_failed OR agg.bad) = (d.run_if = 'on_failure') THEN 'ready'
                        ELSE 'skipped' END AS next
              FROM agg JOIN railyard.tasks d ON d.pipeline_id = agg.pipeline_id AND d.name = agg.name
             WHERE d.state = 'blocked'
        ), upd AS (
            UPDATE railyard.tasks t
               SET waiting_on = x.waiting,
                   upstream_failed = x.failed_above,
                   state = x.next,
                   ready_at = CASE WHEN x.next = 'ready' THEN now() END,
                   finished_at = CASE WHEN x.next = 'skipped' THEN now() END,
                   reason = CASE WHEN x.next <> 'skipped' THEN NULL
                                 WHEN t.run_if = 'on_failure' THEN 'condition: no upstream failed'
                                 ELSE 'upstream failed' END
              FROM decided x WHERE t.id = x.id
            RETURNING t.id, t.state
        )
        SELECT array_agg(id) FILTER (WHERE state = 'skipped'), count(*) FILTER (WHERE state = 'ready')
          INTO skipped, released FROM upd;
        woke := woke + released;
        frontier := skipped;
    END LOOP;

    -- Lock the pipelines first: the check below then sees every committed
    -- completion, so the last two tasks finishing at once cannot both miss it.
    -- Whether a pipeline is done is one probe of tasks_unfinished, not a
    -- count of all its tasks (a completion batch of a 20,000-task pipeline
    -- would read them all); its outcome is read once, when it is done.
    PERFORM 1 FROM railyard.pipelines WHERE id = ANY (pids) ORDER BY id FOR UPDATE;
    UPDATE railyard.pipelines p
       SET state = CASE WHEN EXISTS (SELECT 1 FROM railyard.tasks t
                                      WHERE t.pipeline_id = p.id
                                        AND railyard.is_bad_outcome(t.state, t.upstream_failed))
                        THEN 'failed'::railyard.pipeline_state ELSE 'succeeded' END,
           finished_at = now(),
           started_at = coalesce(p.started_at, now())
     WHERE p.id = ANY (pids) AND p.state IN ('queued', 'running')
       AND NOT EXISTS (SELECT 1 FROM railyard.tasks u
                        WHERE u.pipeline_id = p.id AND u.state IN ('blocked', 'ready', 'running'));
    IF FOUND THEN
        PERFORM pg_notify('railyard_pipeline', '');
    END IF;

    IF woke > 0 THEN
        PERFORM pg_notify('railyard_ready', '');
    END IF;
END $$;

-- Claim, step 1 (in the worker's transaction): lock up to p_limit ready
-- tasks this agent could run, best first, skipping rows other workers hold.
-- The worker then chooses among them in C and calls claim_tasks.
-- The walk must follow tasks_ready in order and stop after p_limit rows;
-- right after a bulk submission the planner has no statistics for the new
-- rows and would rather sort every ready task (10x slower), so sorting and
-- bitmap scans are off here.
CREATE OR REPLACE FUNCTION railyard.claim_candidates(
    p_labels text[], p_os text, p_arch text, p_cpu int, p_mem_mb int, p_limit int)
RETURNS TABLE (id bigint, pipeline_id bigint, cpu int, mem_mb int, priority int,
               rank float8, pool text, requires text[])
LANGUAGE sql SET enable_sort = off SET enable_bitmapscan = off SET jit = off AS $$
    SELECT t.id, t.pipeline_id, t.cpu, t.mem_mb, t.priority, t.rank, t.pool, t.requires
      FROM railyard.tasks t
     WHERE t.state = 'ready'
       AND t.requires <@ p_labels
       AND (t.os IS NULL OR t.os = p_os)
       AND (t.arch IS NULL OR t.arch = p_arch)
       AND t.cpu <= p_cpu AND t.mem_mb <= p_mem_mb
     ORDER BY t.priority DESC, t.rank DESC, t.id
     LIMIT p_limit
       FOR UPDATE OF t SKIP LOCKED
$$;

-- The ids of p_ids that fit the room left in one pool (or one team's
-- quota), best aged priority first; the caller holds the pool's (team's)
-- row lock, and this statement's snapshot, taken after the lock was
-- granted, sees every claim committed before.
CREATE OR REPLACE FUNCTION railyard.claim_trim(p_ids bigint[], p_pool text, p_team text, p_capacity int)
RETURNS bigint[] LANGUAGE sql VOLATILE AS $$
    SELECT ARRAY(
        SELECT i FROM unnest(p_ids) i
         WHERE i NOT IN (
            SELECT t.id FROM railyard.tasks t
             WHERE t.id = ANY (p_ids) AND t.state = 'ready' AND (t.pool = p_pool OR t.team = p_team)
             ORDER BY t.age_key DESC NULLS LAST, t.id
            OFFSET greatest(p_capacity - (SELECT count(*) FROM railyard.tasks r
                                           WHERE r.state = 'running'
                                             AND (r.pool = p_pool OR r.team = p_team)), 0)))
$$;
COMMENT ON FUNCTION railyard.claim_trim(bigint[], text, text, int) IS
    'claim_tasks: the chosen ids that fit what is left of a pool''s capacity (or a team''s max_running), counted under the caller''s row lock';

-- Claim, step 2: lease the chosen tasks to the agent (attempt + 1) and hand
-- back what the worker needs to run them.  Pools and team quotas hold
-- farm-wide: the row of each pool (then each capped team) the tasks name is
-- locked, in name order, and what already runs is counted under that lock
-- (each statement of a READ COMMITTED transaction sees every claim
-- committed before the lock was granted); tasks beyond the room left stay
-- ready.  A task naming a pool that is no longer listed is never leased.
CREATE OR REPLACE FUNCTION railyard.claim_tasks(p_agent bigint, p_ids bigint[])
RETURNS TABLE (id bigint, attempt int, pipeline_id bigint, name text, command text,
               env text[], timeout_s int, cpu int, mem_mb int, only_if_changed text,
               changed_paths text[], revision text, service text, source_date_epoch bigint,
               secrets text[])
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    ids      bigint[] := p_ids;
    cap      record;
    pooled   boolean;
    starting boolean;
BEGIN
    -- Whether any task names a pool, and whether any pipeline is still
    -- queued (its first claim starts it): most claims need neither step.
    SELECT bool_or(t.pool IS NOT NULL), bool_or(p.state = 'queued') INTO pooled, starting
      FROM railyard.tasks t JOIN railyard.pipelines p ON p.id = t.pipeline_id
     WHERE t.id = ANY (ids);
    IF pooled THEN
        FOR cap IN SELECT p.name, p.capacity FROM railyard.pools p
                    WHERE p.name IN (SELECT t.pool FROM railyard.tasks t WHERE t.id = ANY (ids))
                    ORDER BY p.name FOR UPDATE OF p LOOP
            ids := railyard.claim_trim(ids, cap.name, NULL, cap.capacity);
        END LOOP;
        ids := ARRAY(SELECT t.id FROM railyard.tasks t WHERE t.id = ANY (ids)
                        AND (t.pool IS NULL OR EXISTS (SELECT 1 FROM railyard.pools p WHERE p.name = t.pool)));
    END IF;
    IF EXISTS (SELECT 1 FROM railyard.teams m WHERE m.max_running IS NOT NULL) THEN
        FOR cap IN SELECT m.name, m.max_running AS capacity FROM railyard.teams m
                    WHERE m.max_running IS NOT NULL
                      AND m.name IN (SELECT t.team FROM railyard.tasks t WHERE t.id = ANY (ids))
                    ORDER BY m.name FOR UPDATE OF m LOOP
            ids := railyard.claim_trim(ids, NULL, cap.name, cap.capacity);
        END LOOP;
    END IF;
    p_ids := ids;
    IF starting THEN
        UPDATE railyard.pipelines p SET state = 'running', started_at = now()
         WHERE p.state = 'queued'
           AND p.id IN (SELECT DISTINCT t.pipeline_id FROM railyard.tasks t WHERE t.id = ANY (p_ids));
    END IF;
    RETURN QUERY
    UPDATE railyard.tasks t
       SET state = 'running', attempt = t.attempt + 1, agent_id = p_agent,
           claimed_at = now(), started_at = NULL, exit_code = NULL, reason = NULL
      FROM railyard.pipelines p
     WHERE t.id = ANY (p_ids) AND t.state = 'ready' AND p.id = t.pipeline_id
    RETURNING t.id, t.attempt, t.pipeline_id, t.name, t.command,
              ARRAY(SELECT e.key || '=' || e.value FROM jsonb_each_text(t.env) e ORDER BY e.key),
              t.timeout_s, t.cpu, t.mem_mb, t.only_if_changed, p.changed_paths, p.revision,
              t.service, extract(epoch FROM p.created_at)::bigint,
              ARRAY(SELECT s.key || '=' || s.value FROM jsonb_each_text(t.secrets) s ORDER BY s.key);
END $$;

-- Batched "the process has started" notices, fenced like completions.
CREATE OR REPLACE FUNCTION railyard.start_tasks(
    p_agent bigint, p_ids bigint[], p_attempts int[], p_started timestamptz[])
RETURNS void LANGUAGE sql AS $$
    UPDATE railyard.tasks t SET started_at = r.started
      FROM unnest(p_ids, p_attempts, p_started) AS r(id, attempt, started)
     WHERE t.id = r.id AND t.attempt = r.attempt AND t.agent_id = p_agent
       AND t.state = 'running' AND t.started_at IS NULL
$$;

-- Batched completions.  Fenced: only the agent holding the current attempt
-- may finish a task; anything else is refused (accepted = false).  A repeat
-- of a completion already recorded (a retry after a lost reply, or a result
-- a restarted worker replays from its journal) is accepted.  Durations come
-- from the worker's monotonic clock; usage figures may be NULL (unknown).
CREATE OR REPLACE FUNCTION railyard.complete_tasks(
    p_agent bigint, p_ids bigint[], p_attempts int[], p_outcomes text[],
    p_exit_codes int[], p_reasons text[], p_started timestamptz[],
    p_finished timestamptz[], p_log_paths text[], p_log_tails text[],
    p_durations float8[] DEFAULT NULL, p_cpu_s float8[] DEFAULT NULL,
    p_mem_peak bigint[] DEFAULT NULL, p_io_read bigint[] DEFAULT NULL,
    p_io_write bigint[] DEFAULT NULL)
RETURNS TABLE (task_id bigint, attempt int, accepted boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    done bigint[];
BEGIN
    IF EXISTS (SELECT 1 FROM unnest(p_outcomes) o
                WHERE o NOT IN ('succeeded', 'failed', 'skipped', 'cached')) THEN
        RAISE EXCEPTION 'complete_tasks: outcome must be succeeded, failed, skipped or cached'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH r AS (
        SELECT * FROM unnest(p_ids, p_attempts, p_outcomes, p_exit_codes, p_reasons,
                             p_started, p_finished, p_log_paths, p_log_tails, p_durations,
                             p_cpu_s, p_mem_peak, p_io_read, p_io_write)
               AS r(id, attempt, outcome, exit_code, reason, started, finished, log_path,
                    log_tail, duration, cpu_s, mem_peak, io_read, io_write)
    ), upd AS (
        UPDATE railyard.tasks t
           SET state = r.outcome::railyard.task_state, reason = r.reason,
               exit_code = r.exit_code, started_at = coalesce(t.started_at, r.started),
               finished_at = r.finished
          FROM r
         WHERE t.id = r.id AND t.attempt = r.attempt AND t.agent_id = p_agent
           AND t.state = 'running'
        RETURNING t.id, t.attempt, t.pipeline_id, t.claimed_at, t.started_at, r.outcome,
                  r.reason, r.exit_code, r.finished, r.log_path, r.log_tail, r.duration,
                  r.cpu_s, r.mem_peak, r.io_read, r.io_write
    ), hist AS (
        INSERT INTO railyard.task_attempts
            (task_id, attempt, pipeline_id, agent_id, agent_name, outcome, reason, exit_code,
             claimed_at, started_at, finished_at, duration_s, log_path, log_tail,
             cpu_s, mem_peak_bytes, io_read_bytes, io_write_bytes)
        SELECT u.id, u.attempt, u.pipeline_id, p_agent, a.name, u.outcome, u.reason, u.exit_code,
               u.claimed_at, u.started_at, u.finished,
               coalesce(u.duration, extract(epoch FROM u.finished - u.started_at)),
               u.log_path, u.log_tail, u.cpu_s, u.mem_peak, u.io_read, u.io_write
          FROM upd u LEFT JOIN railyard.agents a ON a.id = p_agent
        RETURNING task_id
    )
    SELECT array_agg(h.task_id) INTO done FROM hist h;

    IF done IS NOT NULL THEN
        PERFORM railyard.settle(done);
    END IF;
    RETURN QUERY
    SELECT r.id, r.attempt,
           r.id = ANY (coalesce(done, '{}'))
           OR EXISTS (SELECT 1 FROM railyard.task_attempts h
                       WHERE h.task_id = r.id AND h.attempt = r.attempt AND h.agent_id = p_agent
                         AND h.outcome = r.outcome)
      FROM unnest(p_ids, p_attempts, p_outcomes) AS r(id, attempt, outcome);
END $$;

-- Registers (or re-registers) a worker's agent row.  A name held by a live
-- agent elsewhere is refused, unless p_takeover says the caller checked that
-- the holder's process on this same host is gone (a restart).  Tasks a
-- previous incarnation left running died with it and go back to ready.
CREATE OR REPLACE FUNCTION railyard.register_agent(
    p_name text, p_hostname text, p_os text, p_arch text, p_cores int, p_mem_mb bigint,
    p_disk_mb bigint, p_labels text[], p_slots int, p_cpus int, p_offered_mem_mb bigint,
    p_pid int, p_version text, p_lease_s int, p_takeover boolean DEFAULT false,
    p_isolation text DEFAULT NULL, p_task_identity text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    old railyard.agents;
    aid bigint;
BEGIN
    IF p_name !~ '^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,99}$' THEN
        RAISE EXCEPTION 'invalid agent name "%"', p_name USING ERRCODE = 'invalid_parameter_value',
            HINT = 'letters, digits and _ . @ : - only, starting with a letter or digit';
    END IF;
    SELECT * INTO old FROM railyard.agents WHERE name = p_name FOR UPDATE;
    IF FOUND AND old.state <> 'offline' AND old.lease_until > now()
       AND (old.hostname, old.pid) IS DISTINCT FROM (p_hostname, p_pid)
       AND NOT (p_takeover AND old.hostname = p_hostname) THEN
        RAISE EXCEPTION 'agent name "%" is in use by pid % on %', p_name, old.pid, old.hostname
            USING ERRCODE = 'unique_violation',
                  HINT = 'give each worker its own --name, or stop the other one first';
    END IF;
    INSERT INTO railyard.agents AS a (name, hostname, os, arch, cores, mem_mb, disk_mb, labels,
                                      slots, cpus, offered_mem_mb, pid, version, state, running,
                                      started_at, last_seen, lease_s, lease_until, isolation,
                                      task_identity)
    VALUES (p_name, p_hostname, p_os, p_arch, p_cores, p_mem_mb, p_disk_mb, p_labels, p_slots,
            p_cpus, p_offered_mem_mb, p_pid, p_version, 'online', 0, now(), now(), p_lease_s,
            now() + make_interval(secs => p_lease_s), p_isolation, p_task_identity)
    ON CONFLICT (name) DO UPDATE
       SET hostname = EXCLUDED.hostname, os = EXCLUDED.os, arch = EXCLUDED.arch,
           cores = EXCLUDED.cores, mem_mb = EXCLUDED.mem_mb, disk_mb = EXCLUDED.disk_mb,
           labels = EXCLUDED.labels, slots = EXCLUDED.slots, cpus = EXCLUDED.cpus,
           offered_mem_mb = EXCLUDED.offered_mem_mb, pid = EXCLUDED.pid,
           version = EXCLUDED.version, state = 'online', running = 0,
           started_at = now(), last_seen = now(), lease_s = EXCLUDED.lease_s,
           lease_until = EXCLUDED.lease_until, isolation = EXCLUDED.isolation,
           task_identity = EXCLUDED.task_identity
    RETURNING a.id INTO aid;
    PERFORM railyard.requeue_lost(ARRAY[aid], 'agent restarted');
    RETURN aid;
END $$;

-- Returns running tasks to ready (attempt + 1 on the next claim), or fails
-- them with reason 'agent lost' once max_attempts is used up; records the
-- lost attempt in the history either way.
CREATE OR REPLACE FUNCTION railyard.requeue_tasks(p_ids bigint[], p_why text)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    failed bigint[];
    retried int;
BEGIN
    WITH lost AS (
        SELECT t.id, t.agent_id FROM railyard.tasks t
         WHERE t.state = 'running' AND t.id = ANY (p_ids)
         ORDER BY t.id FOR UPDATE
    ), upd AS (
        UPDATE railyard.tasks t
           SET state = CASE WHEN t.attempt < t.max_attempts THEN 'ready'::railyard.task_state
                            ELSE 'failed' END,
               -- a retried task keeps why (shown by status and the audit
               -- log's retry event) until its next claim clears it
               reason = CASE WHEN t.attempt < t.max_attempts THEN p_why ELSE 'agent lost' END,
               ready_at = now(),
               finished_at = CASE WHEN t.attempt < t.max_attempts THEN NULL ELSE now() END,
               agent_id = NULL
          FROM lost WHERE t.id = lost.id
        RETURNING t.id, t.state, t.attempt, t.pipeline_id, t.claimed_at, t.started_at,
                  lost.agent_id AS old_agent
    ), hist AS (
        INSERT INTO railyard.task_attempts
            (task_id, attempt, pipeline_id, agent_id, agent_name, outcome, reason,
             claimed_at, started_at, finished_at)
        SELECT u.id, u.attempt, u.pipeline_id, u.old_agent, a.name, 'lost', p_why,
               u.claimed_at, u.started_at, now()
          FROM upd u LEFT JOIN railyard.agents a ON a.id = u.old_agent
        ON CONFLICT DO NOTHING
        RETURNING task_id
    )
    SELECT array_agg(u.id) FILTER (WHERE u.state = 'failed'),
           count(*) FILTER (WHERE u.state = 'ready')
      INTO failed, retried
      FROM upd u;
    IF failed IS NOT NULL THEN
        PERFORM railyard.settle(failed);
    END IF;
    IF retried > 0 THEN
        PERFORM pg_notify('railyard_ready', '');
    END IF;
    RETURN coalesce(array_length(failed, 1), 0) + retried;
END $$;

-- The running tasks of the given agents, requeued as above.
CREATE OR REPLACE FUNCTION railyard.requeue_lost(p_agents bigint[], p_why text)
RETURNS int LANGUAGE sql AS $$
    SELECT railyard.requeue_tasks(
        ARRAY(SELECT id FROM railyard.tasks WHERE state = 'running' AND agent_id = ANY (p_agents)),
        p_why)
$$;

-- Claims handed back unstarted: ready again with the attempt they were
-- claimed as given back (attempt - 1), no history row (nothing ran), so a
-- max_attempts 1 task is not lost by a worker that never started it.
CREATE OR REPLACE FUNCTION railyard.refund_tasks(p_ids bigint[], p_why text)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    n int;
BEGIN
    WITH back AS (
        SELECT t.id FROM railyard.tasks t
         WHERE t.state = 'running' AND t.id = ANY (p_ids) AND t.started_at IS NULL
         ORDER BY t.id FOR UPDATE
    )
    UPDATE railyard.tasks t
       SET state = 'ready', attempt = t.attempt - 1, agent_id = NULL, claimed_at = NULL,
           reason = p_why, ready_at = coalesce(t.ready_at, now())
      FROM back WHERE t.id = back.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('railyard_ready', '');
    END IF;
    RETURN n;
END $$;
COMMENT ON FUNCTION railyard.refund_tasks(bigint[], text) IS
    'Returns claimed tasks that never started to ready, giving their attempt back (attempt - 1); no history row. Used by heartbeat and release_tasks.';

-- A worker hands back tasks it holds but will not report a result for,
-- fenced like completions (agent + attempt; anything else is ignored):
--   p_refund: claimed, never started (draining, lost lease before start):
--             ready again without using up an attempt;
--   else:     started and stopped by the worker itself (its lease ran out
--             by its own clock while cut off from the database): the attempt
--             is lost, as the reaper would have recorded it.
CREATE OR REPLACE FUNCTION railyard.release_tasks(
    p_agent bigint, p_ids bigint[], p_attempts int[], p_why text, p_refund boolean)
RETURNS TABLE (task_id bigint, attempt int)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    mine bigint[];
BEGIN
    SELECT array_agg(t.id ORDER BY t.id) INTO mine
      FROM (SELECT t.id FROM railyard.tasks t
              JOIN unnest(p_ids, p_attempts) AS r(id, attempt)
                ON t.id = r.id AND t.attempt = r.attempt
             WHERE t.agent_id = p_agent AND t.state = 'running'
             ORDER BY t.id FOR UPDATE OF t) t;
    IF mine IS NOT NULL THEN
        IF p_refund THEN
            PERFORM railyard.refund_tasks(mine, p_why);
        ELSE
            PERFORM railyard.requeue_tasks(mine, p_why);
        END IF;
    END IF;
    RETURN QUERY SELECT r.id, r.attempt FROM unnest(p_ids, p_attempts) AS r(id, attempt);
END $$;
COMMENT ON FUNCTION railyard.release_tasks(bigint, bigint[], int[], text, boolean) IS
    'Worker: hands back tasks it will not report a result for, fenced by agent and attempt; p_refund gives an unstarted claim its attempt back, else the attempt is recorded lost (ready again, or failed once max_attempts is used).';

-- Heartbeat: renews the agent's lease (which is its tasks' lease) and
-- returns the tasks it reported that are no longer its own — cancelled, or
-- re-leased after it was presumed dead — so the worker kills them.
-- It also carries the agent's health: p_degraded says why it takes no new
-- work (NULL: healthy) and p_disk_mb the free space on its workdir.
CREATE OR REPLACE FUNCTION railyard.heartbeat(
    p_agent bigint, p_ids bigint[], p_attempts int[], p_running int,
    p_degraded text DEFAULT NULL, p_disk_mb bigint DEFAULT NULL)
RETURNS TABLE (task_id bigint, attempt int)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    UPDATE railyard.agents a
       SET last_seen = now(), running = p_running,
           lease_until = now() + make_interval(secs => a.lease_s),
           state = CASE WHEN a.state = 'offline' THEN 'online' ELSE a.state END,
           degraded = p_degraded,
           degraded_since = CASE WHEN p_degraded IS NULL THEN NULL
                                 ELSE coalesce(a.degraded_since, now()) END,
           disk_mb = coalesce(p_disk_mb, a.disk_mb)
     WHERE a.id = p_agent;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'agent % is not registered', p_agent USING ERRCODE = 'no_data_found';
    END IF;
    -- Tasks leased to this agent that it does not hold.  Never started (a
    -- claim whose reply was lost with the connection): back to ready without
    -- using up an attempt.  Started: the worker lost track of a run, which
    -- counts as a lost attempt.
    PERFORM railyard.refund_tasks(
        ARRAY(SELECT t.id FROM railyard.tasks t
               WHERE t.agent_id = p_agent AND t.state = 'running' AND t.started_at IS NULL
                 AND t.id NOT IN (SELECT unnest(p_ids))),   -- hashed: O(n)
        'claimed but not started by its agent');
    PERFORM railyard.requeue_tasks(
        ARRAY(SELECT t.id FROM railyard.tasks t
               WHERE t.agent_id = p_agent AND t.state = 'running'
                 AND t.id NOT IN (SELECT unnest(p_ids))),
        'no longer held by its agent');
    RETURN QUERY
    SELECT r.id, r.attempt
      FROM unnest(p_ids, p_attempts) AS r(id, attempt)
     WHERE NOT EXISTS (SELECT 1 FROM railyard.tasks t
                        WHERE t.id = r.id AND t.attempt = r.attempt
                          AND t.agent_id = p_agent AND t.state = 'running');
END $$;

-- The reaper: one caller at a time (transaction-scoped advisory lock, safe
-- behind PgBouncer) marks agents whose lease ran out offline and requeues
-- or fails their tasks.  Any worker may call it; the others skip.
CREATE OR REPLACE FUNCTION railyard.reap() RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    dead bigint[];
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('railyard.reaper')) THEN
        RETURN 0;
    END IF;
    -- A lease that ran out while the server itself was down says nothing
    -- about the agent: give everyone one lease after a restart to call in.
    WITH d AS (
        UPDATE railyard.agents SET state = 'offline'
         WHERE state <> 'offline' AND lease_until < now()
           AND pg_postmaster_start_time() + make_interval(secs => lease_s) < now()
        RETURNING id
    )
    SELECT array_agg(id) INTO dead FROM d;
    -- Tasks held by agents already offline (or unknown) are lost too.
    SELECT array_agg(DISTINCT t.agent_id) INTO dead
      FROM railyard.tasks t JOIN railyard.agents a ON a.id = t.agent_id
     WHERE t.state = 'running' AND a.state = 'offline';
    IF dead IS NULL THEN
        RETURN 0;
    END IF;
    RETURN railyard.requeue_lost(dead, 'agent lost');
END $$;

-- A worker leaving cleanly: offline now, and anything it still held is
-- requeued at once instead of after the lease.
CREATE OR REPLACE FUNCTION railyard.agent_offline(p_agent bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE railyard.agents SET state = 'offline', running = 0 WHERE id = p_agent;
    PERFORM railyard.requeue_lost(ARRAY[p_agent], 'agent stopped');
END $$;

-- Cancels a pipeline: unfinished tasks become 'cancelled' (workers kill the
-- running ones at their next heartbeat, or at once on the NOTIFY).  Locks
-- the unfinished tasks first and the pipeline last, as settle() does, so
-- the two cannot deadlock; the final UPDATE is guarded by state, so a
-- pipeline that settle() finished meanwhile keeps its result, which is
-- returned.  With row-level security on, only a member of one of the
-- pipeline's team roles (railyard.team_roles) may cancel it.
CREATE OR REPLACE FUNCTION railyard.cancel_pipeline(p_id bigint) RETURNS railyard.pipeline_state
LANGUAGE plpgsql AS $$
DECLARE
    st railyard.pipeline_state;
    tm text;
BEGIN
    SELECT state, team INTO st, tm FROM railyard.pipelines WHERE id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pipeline % does not exist', p_id USING ERRCODE = 'no_data_found';
    END IF;
    IF railyard.team_rls_enabled() AND NOT railyard.may_act_for_team(tm) THEN
        RAISE EXCEPTION 'cannot cancel pipeline %: role % may not act for team "%"', p_id, session_user, tm
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'railyard.team_roles lists the roles that may submit and cancel for each team';
    END IF;
    IF st NOT IN ('queued', 'running') THEN
        RETURN st;
    END IF;
    PERFORM 1 FROM railyard.tasks WHERE pipeline_id = p_id
        AND state IN ('blocked', 'ready', 'running') ORDER BY id FOR UPDATE;
    UPDATE railyard.tasks SET state = 'cancelled', reason = 'pipeline cancelled', finished_at = now()
     WHERE pipeline_id = p_id AND state IN ('blocked', 'ready', 'running');
    UPDATE railyard.pipelines SET state = 'cancelled', finished_at = now()
     WHERE id = p_id AND state IN ('queued', 'running')
    RETURNING state INTO st;
    IF NOT FOUND THEN
        -- settle() finished it between our first look and this UPDATE.
        SELECT state INTO st FROM railyard.pipelines WHERE id = p_id;
        RETURN st;
    END IF;
    PERFORM pg_notify('railyard_cancel', p_id::text);
    PERFORM pg_notify('railyard_pipeline', p_id::text);
    RETURN st;
END $$;
COMMENT ON FUNCTION railyard.cancel_pipeline(bigint) IS
    'cancels a pipeline''s unfinished tasks (workers kill running ones) and returns its state; a pipeline already finished keeps its state';

-- A running worker's new labels, capacity and lease after a configuration
-- reload.  The lease is renewed with its new length at once, so other
-- workers' reapers judge the agent by the lease it now keeps.
CREATE OR REPLACE FUNCTION railyard.update_agent(
    p_agent bigint, p_labels text[], p_slots int, p_cpus int, p_offered_mem_mb bigint,
    p_lease_s int DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
    UPDATE railyard.agents
       SET labels = p_labels, slots = p_slots, cpus = p_cpus, offered_mem_mb = p_offered_mem_mb,
           lease_s = coalesce(p_lease_s, lease_s),
           lease_until = now() + make_interval(secs => coalesce(p_lease_s, lease_s)),
           last_seen = now()
     WHERE id = p_agent
$$;

-- Retention: of the pipelines a worker keeps directories for, which exist
-- and how long ago each finished (NULL while it may still run).  The worker
-- removes only what is finished, and long enough ago.
CREATE OR REPLACE FUNCTION railyard.pipelines_finished(p_ids bigint[])
RETURNS TABLE (pipeline_id bigint, known boolean, finished_s_ago float8)
LANGUAGE sql STABLE AS $$
    SELECT r.id, p.id IS NOT NULL,
           CASE WHEN p.state IN ('succeeded', 'failed', 'cancelled')
                THEN extract(epoch FROM now() - coalesce(p.finished_at, p.created_at)) END
      FROM unnest(p_ids) AS r(id)
      LEFT JOIN railyard.pipelines p ON p.id = r.id
$$;
COMMENT ON FUNCTION railyard.pipelines_finished(bigint[]) IS
    'Worker retention: for each given pipeline id, whether it exists and how many seconds ago it finished (NULL while queued or running).';

-- Whether anything this agent could run is still ready, running (maybe on a
-- dead agent, to be requeued) or blocked anywhere: --exit-when-idle asks.
CREATE OR REPLACE FUNCTION railyard.work_remains(
    p_labels text[], p_os text, p_arch text, p_cpu int, p_mem_mb int)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM railyard.tasks t
         WHERE t.state IN ('blocked', 'ready', 'running')
           AND t.requires <@ p_labels
           AND (t.os IS NULL OR t.os = p_os)
           AND (t.arch IS NULL OR t.arch = p_arch)
           AND t.cpu <= p_cpu AND t.mem_mb <= p_mem_mb)
$$;

-- What \df+ says about the lifecycle (pg_cron style: the schema documents
-- itself).  release_tasks, refund_tasks and pipelines_finished carry theirs
-- above.
COMMENT ON FUNCTION railyard.settle(bigint[]) IS
    'Counts finished tasks off their dependents, releases or skips those with nothing left to wait for, rolls finished pipelines up; NOTIFY railyard_ready once if anything became ready.';
COMMENT ON FUNCTION railyard.claim_candidates(text[], text, text, int, int, int) IS
    'Worker, claim step 1: locks (FOR UPDATE SKIP LOCKED) up to p_limit ready tasks the agent could run, best first (priority, rank, id).';
COMMENT ON FUNCTION railyard.claim_tasks(bigint, bigint[]) IS
    'Worker, claim step 2: leases the chosen tasks to the agent (attempt + 1) and returns what it needs to run them: command, env, limits, conditions, the names and files of its secrets (never their values).';
COMMENT ON FUNCTION railyard.start_tasks(bigint, bigint[], int[], timestamptz[]) IS
    'Worker: batched "the process has started" notices, fenced by agent and attempt.';
COMMENT ON FUNCTION railyard.complete_tasks(bigint, bigint[], int[], text[], int[], text[], timestamptz[], timestamptz[], text[], text[], float8[], float8[], bigint[], bigint[], bigint[]) IS
    'Worker: batched results, fenced by agent and attempt (refused ones come back accepted = false; a repeat of a stored result is accepted); each adds a task_attempts row with duration (monotonic), cpu, peak memory and I/O, then settles.';
COMMENT ON FUNCTION railyard.register_agent(text, text, text, text, int, bigint, bigint, text[], int, int, bigint, int, text, int, boolean, text, text) IS
    'Worker: registers (or re-registers) its agent row; a live holder of the name elsewhere is refused unless p_takeover says its process on this host is gone; what a previous incarnation still held is requeued.';
COMMENT ON FUNCTION railyard.requeue_tasks(bigint[], text) IS
    'Running tasks back to ready (the next claim is attempt + 1), or failed with agent lost once max_attempts is used; each lost attempt recorded.';
COMMENT ON FUNCTION railyard.requeue_lost(bigint[], text) IS
    'requeue_tasks for every running task of the given agents.';
COMMENT ON FUNCTION railyard.heartbeat(bigint, bigint[], int[], int, text, bigint) IS
    'Worker: renews the agent''s lease (its tasks'' lease), records whether it is degraded and its free disk, hands back tasks leased to it that it does not hold (unstarted: attempt given back), and returns the tasks it reported that are no longer its own.';
COMMENT ON FUNCTION railyard.reap() IS
    'Marks agents whose lease ran out offline and requeues their tasks; one caller at a time (transaction-scoped advisory lock), never within one lease of the server''s start.';
COMMENT ON FUNCTION railyard.agent_offline(bigint) IS
    'Worker leaving cleanly: offline now, whatever it still held requeued at once.';
COMMENT ON FUNCTION railyard.update_agent(bigint, text[], int, int, bigint, int) IS
    'Worker after a reload: new labels, capacity and lease length; the lease is renewed with the new length at once.';
COMMENT ON FUNCTION railyard.work_remains(text[], text, text, int, int) IS
    'Whether anything the agent could run is still blocked, ready or running anywhere (--exit-when-idle).';
