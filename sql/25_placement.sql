-- Placement (issue 7; docs/ARCHITECTURE.md "Placement"): what a claim
-- offers a worker (its candidates, per team and for its scarce labels), the
-- facts the worker's pure chooser needs (pkg/sched), the keys that make
-- aging an index walk, pools checked at COMMIT, and each worker's
-- adaptive concurrency limit.  claim_tasks (sql/20_lifecycle.sql) enforces
-- pools and team quotas under row locks.

-- ---- keys set when a task becomes ready -----------------------------------

-- Minutes since 2020-01-01 UTC: the aging clock (a double keeps years of
-- sub-second precision).
CREATE OR REPLACE FUNCTION railyard.aging_minutes(p_at timestamptz) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT extract(epoch FROM p_at - timestamptz '2020-01-01 00:00:00+00') / 60.0
$$;
COMMENT ON FUNCTION railyard.aging_minutes(timestamptz) IS
    'minutes from 2020-01-01 UTC to p_at: the clock of tasks.age_key';

-- A ready task's key: priority - rate x ready minute.  At any instant t,
-- ordering by it (descending) is ordering by priority + rate x (t - ready),
-- the aged priority, and it never needs rewriting as time passes.  Set by
-- tasks_placement_keys, and for a new pipeline's roots by validate_pipeline.
CREATE OR REPLACE FUNCTION railyard.age_key(p_priority int, p_ready_at timestamptz)
RETURNS double precision LANGUAGE sql STABLE AS $$
    SELECT coalesce(p_priority, 0)
           - coalesce((SELECT s.aging_per_min FROM railyard.placement_settings s), 0)
             * railyard.aging_minutes(p_ready_at)
$$;
COMMENT ON FUNCTION railyard.age_key(int, timestamptz) IS
    'a ready task''s aging key: priority - aging_per_min x minutes at ready_at (tasks.age_key)';

CREATE OR REPLACE FUNCTION railyard.tasks_placement_keys() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.team := coalesce(NEW.team, (SELECT p.team FROM railyard.pipelines p WHERE p.id = NEW.pipeline_id),
                         'default');
    NEW.age_key := railyard.age_key(NEW.priority, coalesce(NEW.ready_at, now()));
    RETURN NEW;
END $$;
COMMENT ON FUNCTION railyard.tasks_placement_keys() IS
    'trigger: a task becoming ready gets its pipeline''s team and its aging key (priority - aging_per_min x minutes at ready_at)';

-- A statement that sets the keys itself (validate_pipeline, for a new
-- pipeline's roots: one UPDATE rather than a call and two lookups per
-- root) changes age_key, and the trigger leaves its row alone.
CREATE OR REPLACE TRIGGER tasks_placement_keys BEFORE UPDATE OF state ON railyard.tasks
    FOR EACH ROW WHEN (NEW.state = 'ready' AND OLD.state IS DISTINCT FROM 'ready'
                       AND NEW.age_key IS NOT DISTINCT FROM OLD.age_key)
    EXECUTE FUNCTION railyard.tasks_placement_keys();

-- A ready task's aged priority now (what the chooser and status compare).
CREATE OR REPLACE FUNCTION railyard.effective_priority(p_priority int, p_ready_at timestamptz)
RETURNS double precision LANGUAGE sql STABLE AS $$
    SELECT coalesce(p_priority, 0)
           + least(s.aging_cap,
                   s.aging_per_min * greatest(0, extract(epoch FROM now() - coalesce(p_ready_at, now())) / 60.0))
      FROM railyard.placement_settings s
$$;
COMMENT ON FUNCTION railyard.effective_priority(int, timestamptz) IS
    'a ready task''s priority plus what waiting added (aging_per_min per minute since ready_at, at most aging_cap)';

-- ---- pools: refused at COMMIT when unknown --------------------------------

CREATE OR REPLACE FUNCTION railyard.tasks_pool_exists() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM railyard.pools WHERE name = NEW.pool) THEN
        RAISE EXCEPTION 'task "%": pool "%" does not exist', NEW.name, NEW.pool
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('pipeline %s', NEW.pipeline_id),
                  HINT = 'railyard.pools lists the pools; an operator adds one with INSERT INTO railyard.pools (name, capacity)';
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.tasks_pool_exists() IS
    'deferred trigger: a task naming a pool that railyard.pools does not list is refused at COMMIT';

DROP TRIGGER IF EXISTS tasks_pool_exists ON railyard.tasks;
CREATE CONSTRAINT TRIGGER tasks_pool_exists AFTER INSERT ON railyard.tasks
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.pool IS NOT NULL)
    EXECUTE FUNCTION railyard.tasks_pool_exists();

-- ---- what placement knows of the farm ------------------------------------

-- Labels that are scarce now: marked by an operator, or carried by at most
-- scarce_fraction of the online agents (and not by all of them).
CREATE OR REPLACE FUNCTION railyard.scarce_labels_now()
RETURNS TABLE (label text, agents int, online int, marked boolean)
LANGUAGE sql STABLE AS $$
    WITH online AS MATERIALIZED (
        SELECT a.labels FROM railyard.agents a WHERE a.state = 'online' AND a.lease_until > now()
    ), n AS (SELECT count(*)::int AS n FROM online),
    counted AS (
        SELECT l AS label, count(*)::int AS agents FROM online, unnest(online.labels) l GROUP BY l
    )
    SELECT c.label, c.agents, n.n, s.label IS NOT NULL
      FROM counted c CROSS JOIN n
      LEFT JOIN railyard.scarce_labels s ON s.label = c.label
     WHERE s.label IS NOT NULL
        OR (c.agents < n.n AND c.agents <= (SELECT p.scarce_fraction FROM railyard.placement_settings p) * n.n)
$$;
COMMENT ON FUNCTION railyard.scarce_labels_now() IS
    'labels scarce now: marked in railyard.scarce_labels, or carried by at most placement_settings.scarce_fraction of the online agents (fewer than all); with how many online agents carry each';

-- What the chooser needs besides the candidates, for one agent:
--   scarce          its labels that are scarce;
--   protect         ready tasks needing one of them that it could run (at
--                   most p_slots): capacity it keeps for them;
--   generic_running its running tasks needing none of them;
--   generic_ready   ready tasks it could run needing none of them (counted
--                   up to others_free + p_slots: enough to decide);
--   others_free     free slots (limit - running) of the online, healthy
--                   agents without scarce labels: where generic work can go;
--   farm_cpu/mem    the online farm's capacity (dominant shares).
-- How many ready tasks (at most p_limit) need one of p_scarce and fit an
-- agent with p_labels, p_os and p_arch.  Order does not matter for a
-- count, so the GIN index tasks_ready_requires answers it (a bitmap scan,
-- which the claim functions turn off for their ordered walks).
CREATE OR REPLACE FUNCTION railyard.ready_needing(
    p_scarce text[], p_labels text[], p_os text, p_arch text, p_limit int)
RETURNS int
LANGUAGE sql STABLE SET enable_bitmapscan = on SET jit = off AS $$
    SELECT count(*)::int FROM (
        SELECT 1 FROM railyard.tasks t
         WHERE t.state = 'ready' AND t.requires <> '{}' AND t.requires && p_scarce
           AND t.requires <@ p_labels
           AND (t.os IS NULL OR t.os = p_os) AND (t.arch IS NULL OR t.arch = p_arch)
         LIMIT greatest(p_limit, 0)) x
$$;
COMMENT ON FUNCTION railyard.ready_needing(text[], text[], text, text, int) IS
    'claim_context: ready tasks (at most p_limit) that need one of an agent''s scarce labels and fit it (GIN index tasks_ready_requires)';

CREATE OR REPLACE FUNCTION railyard.claim_context(
    p_agent bigint, p_labels text[], p_os text, p_arch text, p_slots int)
RETURNS TABLE (scarce text[], protect int, generic_running int, generic_ready int,
               others_free int, farm_cpu bigint, farm_mem_mb bigint)
LANGUAGE plpgsql STABLE SET enable_sort = off SET enable_bitmapscan = off SET jit = off AS $$
DECLARE
    sc text[];
    all_scarce text[];
BEGIN
    SELECT coalesce(array_agg(s.label), '{}') INTO all_scarce FROM railyard.scarce_labels_now() s;
    sc := ARRAY(SELECT l FROM unnest(p_labels) l WHERE l = ANY (all_scarce) ORDER BY l);
    scarce := sc;
    IF cardinality(sc) > 0 THEN
        protect := railyard.ready_needing(sc, p_labels, p_os, p_arch, p_slots);
        SELECT count(*)::int INTO generic_running FROM railyard.tasks t
         WHERE t.state = 'running' AND t.agent_id = p_agent AND NOT (t.requires && sc);
    ELSE
        protect := 0;
        generic_running := 0;
    END IF;
    SELECT coalesce(sum(greatest(0, coalesce(a.concurrency_limit, a.slots) - coalesce(r.n, 0)))
                    FILTER (WHERE a.id <> p_agent AND a.degraded IS NULL
                              AND NOT (a.labels && all_scarce)), 0)::int,
           coalesce(sum(coalesce(a.cpus, a.cores)), 0),
           coalesce(sum(coalesce(a.offered_mem_mb, a.mem_mb)), 0)
      INTO others_free, farm_cpu, farm_mem_mb
      FROM railyard.agents a
      LEFT JOIN (SELECT t.agent_id, count(*) AS n FROM railyard.tasks t
                  WHERE t.state = 'running' GROUP BY t.agent_id) r ON r.agent_id = a.id
     WHERE a.state = 'online' AND a.lease_until > now();
    generic_ready := 0;
    IF cardinality(sc) > 0 THEN
        SELECT count(*)::int INTO generic_ready FROM (
            SELECT 1 FROM railyard.tasks t
             WHERE t.state = 'ready' AND NOT (t.requires && sc) AND t.requires <@ p_labels
               AND (t.os IS NULL OR t.os = p_os) AND (t.arch IS NULL OR t.arch = p_arch)
             ORDER BY t.priority DESC, t.rank DESC, t.id
             LIMIT greatest(others_free + p_slots, 0)) x;
    END IF;
    RETURN NEXT;
END $$;
COMMENT ON FUNCTION railyard.claim_context(bigint, text[], text, text, int) IS
    'Worker, claim: the agent''s scarce labels, how many ready tasks need them (capacity it protects), its running and ready generic tasks, free slots of agents without scarce labels, and the online farm''s cpu and memory';

-- Running usage per team: count, cpu, memory, and its dominant share of
-- the farm divided by its weight (fair share), with its quota.
CREATE OR REPLACE FUNCTION railyard.team_shares(p_farm_cpu bigint, p_farm_mem_mb bigint)
RETURNS TABLE (team text, weight numeric, max_running int, running int, cpu bigint, mem_mb bigint,
               share double precision)
LANGUAGE sql STABLE AS $$
    WITH used AS (
        SELECT t.team, count(*)::int AS n, sum(t.cpu)::bigint AS cpu, sum(t.mem_mb)::bigint AS mem
          FROM railyard.tasks t WHERE t.state = 'running' GROUP BY t.team
    ), names AS (
        SELECT u.team FROM used u UNION SELECT m.name FROM railyard.teams m
    )
    SELECT n.team, coalesce(m.weight, 1), m.max_running, coalesce(u.n, 0),
           coalesce(u.cpu, 0), coalesce(u.mem, 0),
           greatest(coalesce(u.cpu, 0)::float8 / greatest(p_farm_cpu, 1),
                    coalesce(u.mem, 0)::float8 / greatest(p_farm_mem_mb, 1)) / coalesce(m.weight, 1)::float8
      FROM names n
      LEFT JOIN used u ON u.team IS NOT DISTINCT FROM n.team
      LEFT JOIN railyard.teams m ON m.name = n.team
     WHERE n.team IS NOT NULL
$$;
COMMENT ON FUNCTION railyard.team_shares(bigint, bigint) IS
    'per team with running tasks or listed in railyard.teams: weight, quota, running count, cpu, memory and dominant share / weight (fair share)';

-- Running tasks per pool against its capacity.
CREATE OR REPLACE FUNCTION railyard.pool_usage()
RETURNS TABLE (pool text, capacity int, running int, holders bigint[])
LANGUAGE sql STABLE AS $$
    SELECT p.name, p.capacity, count(t.id)::int,
           coalesce(array_agg(t.id ORDER BY t.id) FILTER (WHERE t.id IS NOT NULL), '{}')
      FROM railyard.pools p
      LEFT JOIN railyard.tasks t ON t.state = 'running' AND t.pool = p.name
     GROUP BY p.name, p.capacity
$$;
COMMENT ON FUNCTION railyard.pool_usage() IS
    'per pool: capacity, running tasks and their ids';

-- ---- the claim's candidates -----------------------------------------------

-- Generic plans: a connection's first calls (and every call whose generic
-- estimate looks costlier) re-planned each statement, the per-team walk
-- once per team: 4.2 -> 2.0 ms per call warm with 7 teams, 2,560 ready
-- tasks and 101 agents (pgbench, one connection); the walks keep their
-- index (tasks_ready_team, team = $n).  claim_tasks likewise: 2.8 -> 1.9 ms.
-- Claim, step 1 with placement (in the worker's transaction; p_slots is the
-- agent's concurrency limit): locks (FOR
-- UPDATE SKIP LOCKED) up to p_limit ready tasks per team with ready work
-- (teams at quota skipped, walking tasks_ready_team: never a sort of every
-- ready row) and, for an agent with scarce labels, up to p_limit ready
-- tasks needing them (tasks_ready_labeled); tasks of full pools are
-- skipped.  Each row carries what pkg/sched compares: aged priority, rank,
-- its team's share and room, its pool's room, whether it needs a scarce
-- label, whether it is cacheable (the worker's cache lookahead).  The chooser (C) picks; claim_tasks leases, under pool and team
-- row locks.
CREATE OR REPLACE FUNCTION railyard.claim_placement(
    p_agent bigint, p_labels text[], p_os text, p_arch text, p_cpu int, p_mem_mb int,
    p_limit int, p_slots int)
RETURNS TABLE (id bigint, cpu int, mem_mb int, team text, eprio float8, rank float8,
               pool text, pool_room int, scarce boolean, team_share float8, team_weight float8,
               team_room int, scarce_agent boolean, protect int, generic_running int, generic_ready int,
               others_free int, farm_cpu bigint, farm_mem_mb bigint, farm_free int,
               cacheable boolean)
LANGUAGE plpgsql SET enable_sort = off SET enable_bitmapscan = off SET jit = off
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    pnames text[];
    prooms int[];
    tnames text[];
    tshares float8[];
    tweights float8[];
    trooms int[];
    f_free int := 0;
    rate float8;
    cap float8;
    nteams int := 0;
    ctx record;
    p_scarce text[];
    frac float8;
    n_online int;
    f_cpu bigint;
    f_mem bigint;
BEGIN
    SELECT s.aging_per_min, s.aging_cap, s.scarce_fraction INTO rate, cap, frac
      FROM railyard.placement_settings s;
    rate := coalesce(rate, 0);
    cap := coalesce(cap, 0);
    -- The common case stays cheap: one pass over the online agents for the
    -- farm's size, a count per label of this agent for scarcity (as
    -- scarce_labels_now() judges it); the rest of claim_context only for an
    -- agent that has scarce labels.
    SELECT count(*)::int, coalesce(sum(coalesce(a.cpus, a.cores)), 0),
           coalesce(sum(coalesce(a.offered_mem_mb, a.mem_mb)), 0)
      INTO n_online, f_cpu, f_mem
      FROM railyard.agents a WHERE a.state = 'online' AND a.lease_until > now();
    p_scarce := ARRAY(
        SELECT l FROM unnest(p_labels) l
         WHERE EXISTS (SELECT 1 FROM railyard.scarce_labels s WHERE s.label = l)
            OR (SELECT count(*) FROM railyard.agents a
                 WHERE a.state = 'online' AND a.lease_until > now() AND l = ANY (a.labels))
               BETWEEN 1 AND least(n_online - 1, coalesce(frac, 0) * n_online)
         ORDER BY l);
    IF cardinality(p_scarce) > 0 THEN
        SELECT * INTO ctx FROM railyard.claim_context(p_agent, p_labels, p_os, p_arch, p_slots);
    ELSE
        SELECT '{}'::text[] AS scarce, 0 AS protect, 0 AS generic_running, 0 AS generic_ready,
               0 AS others_free, f_cpu AS farm_cpu, f_mem AS farm_mem_mb INTO ctx;
    END IF;
    -- Room left in each pool (a pool no longer listed has none).
    pnames := '{}';
    prooms := '{}';
    IF EXISTS (SELECT 1 FROM railyard.pools) THEN
        SELECT coalesce(array_agg(u.pool), '{}'), coalesce(array_agg(greatest(u.capacity - u.running, 0)), '{}')
          INTO pnames, prooms FROM railyard.pool_usage() u;
    END IF;

    -- The walk for protected work only when some is ready: with none, it
    -- would read every ready task with a requirement to find nothing.
    IF cardinality(p_scarce) > 0 AND ctx.protect > 0 THEN
        RETURN QUERY
        SELECT t.id, t.cpu, t.mem_mb, t.team,
               coalesce(t.priority, 0) + least(cap, rate * greatest(0, extract(epoch FROM now() - t.ready_at) / 60.0)),
               t.rank, t.pool, prooms[array_position(pnames, t.pool)], true, 0::float8, 1::float8, NULL::int,
               cardinality(p_scarce) > 0, ctx.protect, ctx.generic_running, ctx.generic_ready, ctx.others_free, ctx.farm_cpu,
               ctx.farm_mem_mb, 0, t.cacheable
          FROM railyard.tasks t
         WHERE t.state = 'ready' AND t.requires <> '{}' AND t.requires && p_scarce
           AND t.requires <@ p_labels
           AND (t.os IS NULL OR t.os = p_os) AND (t.arch IS NULL OR t.arch = p_arch)
           AND t.cpu <= p_cpu AND t.mem_mb <= p_mem_mb
           AND (t.pool IS NULL OR prooms[array_position(pnames, t.pool)] > 0)
         ORDER BY t.age_key DESC, t.rank DESC, t.id
         LIMIT p_limit
           FOR UPDATE OF t SKIP LOCKED;
    END IF;

    -- Teams with ready work; a skip scan of tasks_ready_team finds them in
    -- one index probe each.
    SELECT array_agg(r.team), array_agg(coalesce(s.share, 0)), array_agg(coalesce(s.weight, 1)::float8),
           array_agg(CASE WHEN s.max_running IS NOT NULL THEN greatest(s.max_running - s.running, 0) END)
      INTO tnames, tshares, tweights, trooms
      FROM (
        WITH RECURSIVE r AS (
            (SELECT t.team FROM railyard.tasks t WHERE t.state = 'ready' AND t.team IS NOT NULL
              ORDER BY t.team LIMIT 1)
            UNION ALL
            SELECT (SELECT t.team FROM railyard.tasks t
                     WHERE t.state = 'ready' AND t.team > r.team ORDER BY t.team LIMIT 1)
              FROM r WHERE r.team IS NOT NULL
        )
        SELECT r.team FROM r WHERE r.team IS NOT NULL) r
      LEFT JOIN railyard.team_shares(ctx.farm_cpu, ctx.farm_mem_mb) s ON s.team = r.team;
    -- Two or more teams: the free slots of the other online agents, which
    -- claim at the same time from the same shares (pkg/sched deals this
    -- agent's slots over the farm's plan, so they do not all pick alike).
    IF cardinality(tnames) >= 2 THEN
        SELECT coalesce(sum(greatest(0, coalesce(a.concurrency_limit, a.slots) - coalesce(r.n, 0))), 0)::int
          INTO f_free
          FROM railyard.agents a
          LEFT JOIN (SELECT t.agent_id, count(*) AS n FROM railyard.tasks t
                      WHERE t.state = 'running' GROUP BY t.agent_id) r ON r.agent_id = a.id
         WHERE a.state = 'online' AND a.lease_until > now() AND a.degraded IS NULL AND a.id <> p_agent;
    END IF;
    FOR i IN 1 .. coalesce(cardinality(tnames), 0) LOOP
        CONTINUE WHEN trooms[i] = 0;
        nteams := nteams + 1;
        EXIT WHEN nteams > 64;
        RETURN QUERY
        SELECT t.id, t.cpu, t.mem_mb, t.team,
               coalesce(t.priority, 0) + least(cap, rate * greatest(0, extract(epoch FROM now() - t.ready_at) / 60.0)),
               t.rank, t.pool, prooms[array_position(pnames, t.pool)], false, tshares[i], tweights[i], trooms[i],
               cardinality(p_scarce) > 0, ctx.protect, ctx.generic_running, ctx.generic_ready, ctx.others_free, ctx.farm_cpu,
               ctx.farm_mem_mb, f_free, t.cacheable
          FROM railyard.tasks t
         WHERE t.state = 'ready' AND t.team = tnames[i]
           AND t.requires <@ p_labels
           AND (t.os IS NULL OR t.os = p_os) AND (t.arch IS NULL OR t.arch = p_arch)
           AND t.cpu <= p_cpu AND t.mem_mb <= p_mem_mb
           AND (t.pool IS NULL OR prooms[array_position(pnames, t.pool)] > 0)
           AND NOT (cardinality(p_scarce) > 0 AND t.requires && p_scarce)
         ORDER BY t.team, t.age_key DESC, t.rank DESC, t.id
         LIMIT p_limit
           FOR UPDATE OF t SKIP LOCKED;
    END LOOP;
END $$;
COMMENT ON FUNCTION railyard.claim_placement(bigint, text[], text, text, int, int, int, int) IS
    'Worker, claim step 1 with placement: locks (FOR UPDATE SKIP LOCKED) up to p_limit ready tasks per team with room and, for the agent''s scarce labels, up to p_limit tasks needing them; each with aged priority, rank, team share and room, pool room, whether it needs a scarce label, the agent''s claim_context, and with two or more teams the other online agents'' free slots (farm_free: pkg/sched deals) and whether the task is cacheable (the cache lookahead); pkg/sched chooses';

-- ---- the adaptive concurrency limit ---------------------------------------

-- A worker's new limit.  The audit log gets a row only when the direction
-- of change differs from the last audited one (down after up, up after
-- down), so a limit creeping up by one per interval is one row, not many.
CREATE OR REPLACE FUNCTION railyard.set_concurrency_limit(
    p_agent bigint, p_limit int, p_min_slots int, p_pressure text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    old_limit int;
    slots int;
    last_dir text;
    dir text;
BEGIN
    SELECT a.concurrency_limit, a.slots INTO old_limit, slots FROM railyard.agents a
     WHERE a.id = p_agent FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF p_limit < 0 OR p_limit > slots THEN
        RAISE EXCEPTION 'set_concurrency_limit: limit % is outside 0..% (the agent''s slots)', p_limit, slots
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE railyard.agents SET concurrency_limit = p_limit, min_slots = p_min_slots,
                               pressure = p_pressure
     WHERE id = p_agent;
    dir := CASE WHEN p_limit < coalesce(old_limit, slots) THEN 'down'
                WHEN p_limit > coalesce(old_limit, slots) THEN 'up' END;
    IF dir IS NULL THEN
        RETURN;
    END IF;
    SELECT l.detail->>'direction' INTO last_dir FROM railyard.audit_log l
     WHERE l.object = 'agent' AND l.object_id = p_agent AND l.event = 'limit'
     ORDER BY l.id DESC LIMIT 1;
    IF last_dir IS DISTINCT FROM dir THEN
        INSERT INTO railyard.audit_log (actor, agent, object, object_id, event, old_state, new_state, detail)
        VALUES (railyard.actor(), railyard.audit_agent(), 'agent', p_agent, 'limit',
                coalesce(old_limit, slots)::text, p_limit::text,
                jsonb_build_object('direction', dir, 'slots', slots, 'min_slots', p_min_slots,
                                   'pressure', p_pressure));
    END IF;
END $$;
COMMENT ON FUNCTION railyard.set_concurrency_limit(bigint, int, int, text) IS
    'Worker: records its adaptive concurrency limit (between min_slots and slots) and the pressure behind it; an audit row (event limit) only when the direction of change turns';

-- How the worker enforces task limits (kernel or sampled), with the agent row.
CREATE OR REPLACE FUNCTION railyard.set_agent_limits(p_agent bigint, p_limits text)
RETURNS void LANGUAGE sql AS $$
    UPDATE railyard.agents SET limits = p_limits WHERE id = p_agent AND limits IS DISTINCT FROM p_limits
$$;
COMMENT ON FUNCTION railyard.set_agent_limits(bigint, text) IS
    'Worker: says how task resource limits are enforced on the agent (kernel or sampled)';
