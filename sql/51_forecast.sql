-- Forecasting, part 2: what each task is expected to take (with cold-start
-- fallbacks), the Monte Carlo pipeline forecast, forecasts recorded at
-- submission and judged against what happened.  docs/forecasting.md.

-- Standard normal quantile (Acklam's rational approximation, relative
-- error < 1.2e-9).
CREATE OR REPLACE FUNCTION railyard.norm_ppf(p float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    q float8;
    r float8;
BEGIN
    IF p <= 0 THEN
        RETURN -8.3;
    ELSIF p >= 1 THEN
        RETURN 8.3;
    ELSIF p < 0.02425 THEN
        q := sqrt(-2 * ln(p));
        RETURN (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e+00) * q
                 - 2.549732539343734e+00) * q + 4.374664141464968e+00) * q + 2.938163982698783e+00)
             / ((((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e+00) * q
                 + 3.754408661907416e+00) * q + 1);
    ELSIF p <= 1 - 0.02425 THEN
        q := p - 0.5;
        r := q * q;
        RETURN (((((-3.969683028665376e+01 * r + 2.209460984245205e+02) * r - 2.759285104469687e+02) * r
                  + 1.383577518672690e+02) * r - 3.066479806614716e+01) * r + 2.506628277459239e+00) * q
             / (((((-5.447609879822406e+01 * r + 1.615858368580409e+02) * r - 1.556989798598866e+02) * r
                  + 6.680131188771972e+01) * r - 1.328068155288572e+01) * r + 1);
    END IF;
    q := sqrt(-2 * ln(1 - p));
    RETURN -(((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e+00) * q
               - 2.549732539343734e+00) * q + 4.374664141464968e+00) * q + 2.938163982698783e+00)
           / ((((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e+00) * q
               + 3.754408661907416e+00) * q + 1);
END $$;
COMMENT ON FUNCTION railyard.norm_ppf(float8) IS 'standard normal quantile function (inverse CDF)';

-- Standard normal CDF (Abramowitz & Stegun 7.1.26, error < 1.5e-7).
CREATE OR REPLACE FUNCTION railyard.norm_cdf(x float8) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN x >= 0 THEN 1 - e ELSE e END
      FROM (SELECT 0.5 * (((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t
                           + 0.254829592) * t) * exp(-ax * ax) AS e
              FROM (SELECT y / sqrt(2) AS ax, 1 / (1 + 0.3275911 * y / sqrt(2)) AS t
                      -- beyond 8 sigmas the tail is 0 to double precision, and
                      -- exp() of a larger square would underflow (an error)
                      FROM (SELECT least(abs(x), 8) AS y) c) a) b
$$;
COMMENT ON FUNCTION railyard.norm_cdf(float8) IS 'standard normal cumulative distribution function';

INSERT INTO railyard.normal_quantiles (id, z)
SELECT 1, array_agg(railyard.norm_ppf((k - 0.5) / 1024) ORDER BY k) FROM generate_series(1, 1024) k
ON CONFLICT (id) DO NOTHING;


-- What each of a pipeline's tasks is expected to take: the centre (median)
-- and spread (sigma of ln duration) of its duration, and where they came
-- from.  The task's own history first; then, for a task without any:
--   other version   the same task in another version of its definition
--   estimate        the task's estimate_s
--   service+kind    tasks of the same service and kind (same family first)
--   kind            tasks of the same kind, in the family, then anywhere
--   default         60 s, wide
-- With its own history also how often it is a cache hit and the agent
-- classes its last runs were placed on (forecast_run mixes their
-- statistics).  Rows come in no particular order.  PL/pgSQL so that the
-- plans are cached: this runs at every submission (task_weights_of).  The
-- tasks are rows of railyard.tasks, stored or not yet (submit_pipeline
-- ranks a spec's tasks before it inserts them: they have no id yet).  The family is a parameter, so every lookup is an index
-- range of one family even before ANALYZE has seen the rows; borrowing
-- runs only when a task needs it.
CREATE OR REPLACE FUNCTION railyard.task_estimates_of(p_family text, p_tasks railyard.tasks[])
RETURNS TABLE (pos bigint, task_id bigint, name text, family text, task text, version text,
               center_s float8, sigma float8, runs bigint, source text,
               cache_rate float8, classes text[])
LANGUAGE plpgsql STABLE SET jit = off AS $$
#variable_conflict use_column
DECLARE
    fam  text := p_family;
    ntasks bigint := coalesce(cardinality(p_tasks), 0);
    done bigint;
BEGIN
    -- Tasks with history of their own (sigma >= 0.25 before 5 runs: small
    -- samples get a wider spread).
    RETURN QUERY
    SELECT t.ordinality, t.id, t.name, fam, s.task, t.version, exp(s.ewma_log + s.mix_offset),
           greatest(coalesce(s.scale_log, 0), 0.03, CASE WHEN s.runs < 5 THEN 0.25 ELSE 0 END),
           s.runs, 'history', s.cache_rate, s.classes
      FROM unnest(p_tasks) WITH ORDINALITY t
      JOIN railyard.duration_stats s
        ON s.family = fam AND s.task = coalesce(t.forecast_key, t.name) AND s.version = t.version
       AND s.agent_class = '*'
     WHERE s.ewma_log IS NOT NULL;
    GET DIAGNOSTICS done = ROW_COUNT;
    IF done = ntasks THEN
        RETURN;
    END IF;
    -- Nothing to borrow from: the family has no statistics and no other
    -- family has a duration for these tasks' kinds (a farm's first
    -- pipelines).  Each task takes its estimate_s, else the default, as
    -- the borrowing statement below would say, without its parse and plan:
    -- about 2 ms of a new session's COMMIT (every `railyard submit` is one).
    -- The values are that statement's 'estimate' and 'default' cases:
    -- change both together (test_forecast checks each path).
    -- One probe of duration_stats_kind per kind, as the borrowing does it
    -- (ORDER BY its order, LIMIT): a semi-join would rather scan the whole
    -- table, which finds a match at once or, for a kind nobody ran yet,
    -- reads every row.
    IF NOT EXISTS (SELECT 1 FROM railyard.duration_stats s
                    WHERE s.family = fam AND s.agent_class = '*')
       AND NOT EXISTS (SELECT 1
                         FROM (SELECT DISTINCT t.kind FROM unnest(p_tasks) t
                                WHERE t.estimate_s IS NULL) k
                        CROSS JOIN LATERAL (
                              SELECT 1 FROM railyard.duration_stats s
                               WHERE s.agent_class = '*' AND s.kind = k.kind AND s.kind IS NOT NULL
                                 AND s.ewma_log IS NOT NULL
                               ORDER BY s.recent_at DESC NULLS LAST LIMIT 1) b) THEN
        RETURN QUERY
        SELECT t.ordinality, t.id, t.name, fam, coalesce(t.forecast_key, t.name), t.version, coalesce(t.estimate_s, 60),
               CASE WHEN t.estimate_s IS NOT NULL THEN 0.3 ELSE 0.6 END::float8, 0::bigint,
               CASE WHEN t.estimate_s IS NOT NULL THEN 'estimate' ELSE 'default' END,
               0::float8, '{}'::text[]
          FROM unnest(p_tasks) WITH ORDINALITY t;
        RETURN;
    END IF;
    -- The others borrow.
    RETURN QUERY
    WITH o AS (
        SELECT t.ordinality AS pos, t.id, t.name, coalesce(t.forecast_key, t.name) AS key, t.version, t.service,
               t.kind, t.estimate_s, coalesce(s.cache_rate, 0) AS cache_rate
          FROM unnest(p_tasks) WITH ORDINALITY t
          LEFT JOIN railyard.duration_stats s
                 ON s.family = fam AND s.task = coalesce(t.forecast_key, t.name)
                AND s.version = t.version AND s.agent_class = '*'
         WHERE s.ewma_log IS NULL
    ), ver AS (
        -- the same task in its most recent other version
        SELECT DISTINCT ON (s.task) s.task, s.ewma_log + s.mix_offset AS ewma_log, s.scale_log
          FROM railyard.duration_stats s
         WHERE s.family = fam AND s.agent_class = '*' AND s.ewma_log IS NOT NULL
           AND s.task IN (SELECT o.key FROM o)
         ORDER BY s.task, s.last_at DESC
    ), cold AS MATERIALIZED (
        SELECT DISTINCT o.service, o.kind FROM o
         WHERE o.estimate_s IS NULL AND NOT EXISTS (SELECT 1 FROM ver WHERE ver.task = o.key)
    ), near AS MATERIALIZED (      -- the family's own identities, by its key
        SELECT s.service, s.kind, s.task, s.last_at, s.ewma_log + s.mix_offset AS l
          FROM railyard.duration_stats s
         WHERE s.family = fam AND s.agent_class = '*' AND s.kind IS NOT NULL
           AND s.ewma_log IS NOT NULL
    ), sk AS MATERIALIZED (       -- once per service and kind, not per task
        -- the 20 nearest: the family's own, most recent first, then the
        -- others most recent (to the hour) first: an index walk of
        -- duration_stats_service_kind that stops at 20
        SELECT cold.service, cold.kind, b.c
          FROM cold CROSS JOIN LATERAL (
                SELECT exp(percentile_cont(0.5) WITHIN GROUP (ORDER BY x.l)) AS c
                  FROM (SELECT y.l FROM (
                          (SELECT 0 AS far, n.last_at AS at, n.l FROM near n
                            WHERE n.service = cold.service AND n.kind = cold.kind
                            ORDER BY n.last_at DESC NULLS LAST LIMIT 20)
                          UNION ALL
                          (SELECT 1, s.recent_at, s.ewma_log + s.mix_offset FROM railyard.duration_stats s
                            WHERE s.service = cold.service AND s.kind = cold.kind AND s.family <> fam
                              AND s.agent_class = '*' AND s.ewma_log IS NOT NULL
                            ORDER BY s.recent_at DESC NULLS LAST LIMIT 20)) y
                         ORDER BY y.far, y.at DESC NULLS LAST LIMIT 20) x
                HAVING count(*) > 0) b
    ), k AS MATERIALIZED (        -- likewise by kind (duration_stats_kind)
        SELECT c2.kind, b.c
          FROM (SELECT DISTINCT cold.kind FROM cold) c2 CROSS JOIN LATERAL (
                SELECT exp(percentile_cont(0.5) WITHIN GROUP (ORDER BY x.l)) AS c
                  FROM (SELECT y.l FROM (
                          (SELECT 0 AS far, n.last_at AS at, n.l FROM near n
                            WHERE n.kind = c2.kind AND n.task <> ''
                            ORDER BY n.last_at DESC NULLS LAST LIMIT 20)
                          UNION ALL
                          (SELECT 1, s.recent_at, s.ewma_log + s.mix_offset FROM railyard.duration_stats s
                            WHERE s.kind = c2.kind AND s.family <> fam AND s.task <> ''
                              AND s.agent_class = '*' AND s.ewma_log IS NOT NULL
                            ORDER BY s.recent_at DESC NULLS LAST LIMIT 20)) y
                         ORDER BY y.far, y.at DESC NULLS LAST LIMIT 20) x
                HAVING count(*) > 0) b
    )
    SELECT o.pos, o.id, o.name, fam, o.key, o.version,
           coalesce(exp(ver.ewma_log), o.estimate_s, sk.c, k.c, 60),
           CASE WHEN ver.ewma_log IS NOT NULL THEN greatest(coalesce(ver.scale_log, 0), 0.1)
                WHEN o.estimate_s IS NOT NULL THEN 0.3
                WHEN sk.c IS NOT NULL THEN 0.4
                WHEN k.c IS NOT NULL THEN 0.5
                ELSE 0.6 END,
           0::bigint,
           CASE WHEN ver.ewma_log IS NOT NULL THEN 'other version'
                WHEN o.estimate_s IS NOT NULL THEN 'estimate'
                WHEN sk.c IS NOT NULL THEN 'service+kind'
                WHEN k.c IS NOT NULL THEN 'kind'
                ELSE 'default' END,
           o.cache_rate, '{}'::text[]
      FROM o
      LEFT JOIN ver ON ver.task = o.key
      LEFT JOIN sk ON sk.service = o.service AND sk.kind = o.kind
      LEFT JOIN k ON k.kind = o.kind;
END $$;
COMMENT ON FUNCTION railyard.task_estimates_of(text, railyard.tasks[]) IS
    'per task given (rows of railyard.tasks, in a family; pos: its position among them): expected duration (centre, seconds), spread (sigma of ln duration), source (history, other version, estimate, service+kind, kind or default), cache hit rate and the agent classes of its last runs';

-- The same for a stored pipeline's tasks.
CREATE OR REPLACE FUNCTION railyard.task_estimates(p_pipeline bigint)
RETURNS TABLE (task_id bigint, name text, family text, task text, version text,
               center_s float8, sigma float8, runs bigint, source text,
               cache_rate float8, classes text[])
LANGUAGE sql STABLE AS $$
    SELECT e.task_id, e.name, e.family, e.task, e.version, e.center_s, e.sigma, e.runs, e.source,
           e.cache_rate, e.classes
      FROM railyard.pipelines p
     CROSS JOIN LATERAL railyard.task_estimates_of(
               railyard.pipeline_family(p.name, p.family),
               ARRAY(SELECT t FROM railyard.tasks t WHERE t.pipeline_id = p.id)) e
     WHERE p.id = p_pipeline
$$;
COMMENT ON FUNCTION railyard.task_estimates(bigint) IS
    'per task of a pipeline: expected duration (centre, seconds), spread (sigma of ln duration), source (history, other version, estimate, service+kind, kind or default), cache hit rate and the agent classes of its last runs';

-- The weights of the upward rank (validate_pipeline, submit_pipeline):
-- each task's expected duration in seconds, in the tasks' order; at least
-- 1 ms, so that an upstream always ranks strictly above its downstreams
-- and rank order is a topological order (forecast_run relies on it).
CREATE OR REPLACE FUNCTION railyard.task_weights_of(p_family text, p_tasks railyard.tasks[])
RETURNS float8[] LANGUAGE plpgsql STABLE SET jit = off AS $$
BEGIN
    RETURN (SELECT array_agg(greatest(e.center_s, 0.001) ORDER BY e.pos)
              FROM railyard.task_estimates_of(p_family, p_tasks) e);
END $$;
COMMENT ON FUNCTION railyard.task_weights_of(text, railyard.tasks[]) IS
    'expected durations (seconds, >= 0.001) of the tasks given, in their order: the weights of the upward rank';
DROP FUNCTION IF EXISTS railyard.task_weights(bigint);

-- The Monte Carlo forecast of one pipeline (docs/forecasting.md).  Each
-- draw gives every task a duration from its distribution: a cache hit as
-- often as the task is one, else a lognormal of the agent class it lands
-- on, classes mixed as its recent runs were placed (among the classes the
-- farm still has); running tasks conditioned on their elapsed time,
-- finished ones fixed.  Each draw is then one pass over the tasks in
-- upward-rank order (a topological order: every weight is positive): a
-- task starts when its last upstream ends and, when capacity is short, on
-- the earliest free slot (a list schedule).  A pipeline not started yet
-- waits behind the load at forecast time: the other pipelines' running
-- tasks and the ready tasks claims would take first occupy the slots
-- (their expected durations), which gives the queue wait.  The run
-- times' interval is then stretched to fit the family's past errors.
-- Deterministic: stratified draws from a fixed generator, so the same
-- inputs give the same answer.  p_budget bounds the work: the number of
-- draws is budget / cost of a draw, a prime between 17 and 211.
-- p_as_submitted: as if nothing had started (the forecast at submission,
-- recorded after COMMIT).  Times are seconds from the pipeline's first
-- claim (from now, when it has not started).
DROP FUNCTION IF EXISTS railyard.forecast_run(bigint, int);
CREATE OR REPLACE FUNCTION railyard.forecast_run(
    p_id bigint, p_budget int, p_as_submitted boolean DEFAULT false,
    OUT method text, OUT samples int, OUT ntasks int, OUT elapsed_s float8,
    OUT p10_s float8, OUT p50_s float8, OUT p90_s float8, OUT p50_raw_s float8,
    OUT queue_wait_s float8, OUT critical_path text[], OUT uncertainty jsonb,
    OUT cold_tasks int, OUT capacity int, OUT spread_raw float8)
LANGUAGE plpgsql STABLE SET jit = off SET enable_nestloop = off AS $$
DECLARE
    pl      railyard.pipelines;
    fam     text;
    t0      timestamptz;
    e0      float8 := 0;    -- now, in seconds from t0
    started boolean;
    -- Tasks are numbered 1..n: first the load ahead (nb, a pipeline not
    -- started only), then the pipeline's: nf finished, nr running, the rest
    -- by upward rank (np in all).  Arrays without a b prefix hold the
    -- pipeline's tasks from 1; those indexed by v hold all n.
    nb      int := 0;
    nf      int;
    nr      int;
    np      int;
    n       int;
    m       int;
    names   text[];
    ctr     float8[];       -- centre (s)
    sg      float8[];       -- sigma of ln duration
    kindv   int[];          -- 0 finished, 1 running, 2 not started
    so      float8[];       -- running: start, finished: end (s from t0)
    pe      float8[];       -- running: P(duration <= elapsed)
    hr      float8[];       -- cache hit rate
    keys    text[];         -- identity (task, version)
    vers    text[];
    clst    text[];         -- the classes of the last runs, joined by U+001F
    mixed   boolean[];      -- draws from a mixture: cache hits or classes
    c_i     int[];          -- mixture components, one each: task,
    c_lo    float8[];       -- its share [lo, hi) of the unit interval,
    c_hi    float8[];
    c_mu    float8[];       -- log centre (NULL: a cache hit, 0 s)
    c_sg    float8[];
    bmu     float8[];       -- the load ahead: ln duration
    busy    float8[];       -- other pipelines' running tasks: remaining (s)
    pu      int[];          -- upstreams by downstream: pu[pbeg[v] .. pbeg[v + 1] - 1]
    pd      int[];
    pbeg    int[];
    p1      int[];          -- by v: the first three upstreams (0: none), and
    p2      int[];          -- where the fourth on starts in pu (0: none)
    p3      int[];
    pm      int[];
    mu      float8[];       -- by v: a lognormal's log centre and sigma,
    sgv     float8[];
    qb      int[];          -- or (> 0) where its S + 1 values start in qt
    qt      float8[];
    av      int[];          -- by v: its strata in the draws
    bv      int[];
    zt      float8[];       -- standard normal quantiles, 1024
    zs      float8[];       -- at the S strata, then 0
    s1      int;
    md      int;
    ad      int;
    fin     float8[];       -- by v: when it ends in this draw
    sl      float8[];
    slots   float8[];       -- the slots' free times, ascending
    slots0  float8[];
    crit    float8[];       -- by v: draws it was on the critical path of
    ms      float8[];       -- run time of each draw
    q       float8[];
    errs    float8[];
    sps     float8[];
    stretch float8;
    limited boolean := false;
    any_mix boolean;
    top     record;
    s       int;
    v       int;
    c       int;
    lo      int;
    hi      int;
    pos     int;
    last    int;
    r       float8;
    f       float8;
    mx      float8;
    qw      float8 := 0;
    nres    int;
BEGIN
    SELECT * INTO pl FROM railyard.pipelines WHERE id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pipeline % does not exist', p_id USING ERRCODE = 'no_data_found';
    END IF;
    IF pl.validated_at IS NULL THEN
        RAISE EXCEPTION 'pipeline % is not submitted yet: it is forecast once its transaction commits', p_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    fam := railyard.pipeline_family(pl.name, pl.family);
    started := pl.started_at IS NOT NULL AND NOT p_as_submitted;
    t0 := CASE WHEN started THEN pl.started_at ELSE now() END;
    e0 := CASE WHEN started THEN greatest(extract(epoch FROM now() - t0), 0) ELSE 0 END;
    elapsed_s := e0;
    SELECT z INTO zt FROM railyard.normal_quantiles WHERE id = 1;

    -- Capacity: slots of online agents, else of those seen in the last
    -- day; none known: unlimited.
    SELECT coalesce(sum(a.slots) FILTER (WHERE a.state = 'online' AND a.lease_until > now()), 0),
           coalesce(sum(a.slots) FILTER (WHERE a.last_seen > now() - interval '1 day'), 0)
      INTO capacity, c FROM railyard.agents a;
    IF capacity = 0 THEN
        capacity := CASE WHEN c > 0 THEN c ELSE NULL END;
    END IF;

    -- The pipeline's tasks in draw order: finished, running, then by
    -- upward rank, which is a topological order (validate_pipeline weighs
    -- every task > 0, so an upstream always ranks above its downstreams).
    SELECT array_agg(e.name ORDER BY e.i), array_agg(e.center_s ORDER BY e.i),
           array_agg(e.sigma ORDER BY e.i), array_agg(e.kv ORDER BY e.i), array_agg(e.so ORDER BY e.i),
           array_agg(e.h ORDER BY e.i), array_agg(e.task ORDER BY e.i), array_agg(e.version ORDER BY e.i),
           array_agg(array_to_string(e.classes, U&'\001F') ORDER BY e.i),
           array_agg(e.kv = 2 AND (e.h > 0 OR e.classes <> array_fill(e.classes[1], ARRAY[cardinality(e.classes)]))
                     ORDER BY e.i),
           count(*) FILTER (WHERE e.source <> 'history')
      INTO names, ctr, sg, kindv, so, hr, keys, vers, clst, mixed, cold_tasks
      FROM (SELECT row_number() OVER (ORDER BY w.kv, t.rank DESC, t.id) AS i, t.name, w.kv, x.center_s,
                   x.sigma, x.source, x.task, x.version, x.classes,
                   CASE WHEN x.cache_rate >= 0.01 AND w.kv = 2 THEN x.cache_rate ELSE 0 END AS h,
                   CASE w.kv WHEN 1 THEN least(greatest(extract(epoch FROM coalesce(t.started_at, t.claimed_at, now()) - t0), 0), e0)
                             WHEN 0 THEN least(greatest(extract(epoch FROM coalesce(t.finished_at, now()) - t0), 0), e0)
                             END AS so
              FROM railyard.tasks t
              JOIN railyard.task_estimates(p_id) x ON x.task_id = t.id
             CROSS JOIN LATERAL (SELECT CASE WHEN NOT started OR t.state IN ('blocked', 'ready') THEN 2
                                             WHEN t.state = 'running' THEN 1 ELSE 0 END AS kv) w
             WHERE t.pipeline_id = p_id) e;
    np := coalesce(cardinality(names), 0);
    ntasks := np;
    IF np = 0 THEN
        RAISE EXCEPTION 'pipeline % has no tasks', p_id USING ERRCODE = 'no_data_found';
    END IF;
    nf := (SELECT count(*) FROM unnest(kindv) x WHERE x = 0);
    nr := (SELECT count(*) FROM unnest(kindv) x WHERE x = 1);
    any_mix := true = ANY (mixed);
    -- running: the chance that the task would already have ended
    SELECT array_agg(CASE WHEN x.kv = 1 AND e0 > x.so
                          THEN least(railyard.norm_cdf((ln(e0 - x.so) - ln(x.c)) / x.sg), 0.999)
                          ELSE 0 END ORDER BY x.i)
      INTO pe FROM unnest(kindv, so, ctr, sg) WITH ORDINALITY AS x(kv, so, c, sg, i);

    -- A task that mixes: a share of cache hits, then its classes by how
    -- often its last runs were placed there (among the classes the farm
    -- still has, unless it has none of them), each with its own statistics.
    IF any_mix THEN
        WITH mt AS (
            SELECT x.i::int AS i, x.c, x.sg, x.h, x.key, x.ver,
                   string_to_array(x.cls, U&'\001F') AS classes
              FROM unnest(mixed, ctr, sg, hr, keys, vers, clst) WITH ORDINALITY AS x(mx, c, sg, h, key, ver, cls, i)
             WHERE x.mx
        ), placed AS (
            SELECT mt.i, pc.cls, count(*)::float8 AS cnt
              FROM mt CROSS JOIN LATERAL unnest(mt.classes) pc(cls)
             GROUP BY mt.i, pc.cls
        ), up AS (
            SELECT DISTINCT railyard.agent_class(a.os, a.arch, a.cores, a.labels) AS cls
              FROM railyard.agents a
             WHERE (a.state = 'online' AND a.lease_until > now()) OR a.last_seen > now() - interval '1 day'
        ), av AS (
            SELECT p.*, u.cls IS NOT NULL AS avail,
                   bool_or(u.cls IS NOT NULL) OVER (PARTITION BY p.i) AS any_avail
              FROM placed p LEFT JOIN up u ON u.cls = p.cls
        ), comp AS (
            -- the identity's level (its '*' row, at the reference class's
            -- speed) moved by the class's offset (unknown: the typical
            -- mix's); the class's own spread once it has 5 runs
            SELECT p.i, p.cnt / sum(p.cnt) OVER (PARTITION BY p.i) AS w,
                   st.ewma_log + coalesce((st.class_offsets ->> p.cls)::float8,
                                          CASE WHEN st.ref_class = p.cls THEN 0 END, st.mix_offset) AS mu,
                   CASE WHEN s.runs >= 5 THEN greatest(coalesce(s.scale_log, 0), 0.03)
                        ELSE mt.sg END AS sg,
                   p.cls
              FROM av p
              JOIN mt ON mt.i = p.i
              LEFT JOIN railyard.duration_stats s
                     ON s.family = fam AND s.task = mt.key AND s.version = mt.ver AND s.agent_class = p.cls
              LEFT JOIN railyard.duration_stats st
                     ON st.family = fam AND st.task = mt.key AND st.version = mt.ver AND st.agent_class = '*'
             WHERE p.avail OR NOT p.any_avail
            UNION ALL
            SELECT mt.i, 1, ln(mt.c), mt.sg, '' FROM mt WHERE cardinality(mt.classes) = 0
        ), units AS (
            SELECT c.i, mt.h + (1 - mt.h) * (sum(c.w) OVER w - c.w) AS lo,
                   mt.h + (1 - mt.h) * sum(c.w) OVER w AS hi, c.mu, c.sg
              FROM comp c JOIN mt ON mt.i = c.i
            WINDOW w AS (PARTITION BY c.i ORDER BY c.cls ROWS UNBOUNDED PRECEDING)
            UNION ALL
            SELECT mt.i, 0, mt.h, NULL, 0 FROM mt WHERE mt.h > 0
        )
        SELECT array_agg(u.i ORDER BY u.i, u.lo), array_agg(u.lo ORDER BY u.i, u.lo),
               array_agg(CASE WHEN u.hi > 0.999999 THEN 1 ELSE u.hi END ORDER BY u.i, u.lo),
               array_agg(u.mu ORDER BY u.i, u.lo), array_agg(u.sg ORDER BY u.i, u.lo)
          INTO c_i, c_lo, c_hi, c_mu, c_sg FROM units u;
    END IF;

    -- The load a pipeline not started yet waits behind: other pipelines'
    -- running tasks hold slots until their expected end; the ready tasks
    -- that claims take first (higher priority, or the same and a higher
    -- rank) fill them in claim order, at most 5,000 of them.
    IF NOT started AND capacity IS NOT NULL THEN
        SELECT t.priority, t.rank INTO top FROM railyard.tasks t
         WHERE t.pipeline_id = p_id ORDER BY t.priority DESC, t.rank DESC, t.id LIMIT 1;
        WITH load AS (
            SELECT t.state, t.priority, t.rank, t.id, t.started_at, t.claimed_at, t.estimate_s,
                   coalesce(t.forecast_key, t.name) AS key, t.version, t.pipeline_id
              FROM railyard.tasks t
             WHERE t.state = 'running' AND t.pipeline_id <> p_id
            UNION ALL
            (SELECT t.state, t.priority, t.rank, t.id, t.started_at, t.claimed_at, t.estimate_s,
                    coalesce(t.forecast_key, t.name), t.version, t.pipeline_id
               FROM railyard.tasks t
              WHERE t.state = 'ready' AND t.priority > top.priority AND t.pipeline_id <> p_id
              ORDER BY t.priority DESC, t.rank DESC, t.id LIMIT 5000)
            UNION ALL
            (SELECT t.state, t.priority, t.rank, t.id, t.started_at, t.claimed_at, t.estimate_s,
                    coalesce(t.forecast_key, t.name), t.version, t.pipeline_id
               FROM railyard.tasks t
              WHERE t.state = 'ready' AND t.priority = top.priority AND t.rank > top.rank
                AND t.pipeline_id <> p_id
              ORDER BY t.priority DESC, t.rank DESC, t.id LIMIT 5000)
        ), w AS (
            SELECT l.state, l.priority, l.rank, l.id,
                   coalesce(exp(s.ewma_log + s.mix_offset), l.estimate_s, 60) AS c,
                   extract(epoch FROM now() - coalesce(l.started_at, l.claimed_at, now())) AS el
              FROM load l
              JOIN railyard.pipelines p ON p.id = l.pipeline_id
              LEFT JOIN railyard.duration_stats s
                     ON s.family = railyard.pipeline_family(p.name, p.family) AND s.task = l.key
                    AND s.version = l.version AND s.agent_class = '*'
        )
        SELECT (SELECT array_agg(x.rem ORDER BY x.rem)
                  FROM (SELECT greatest(w.c - w.el, 0.1 * w.c) AS rem FROM w
                         WHERE w.state = 'running' ORDER BY 1 LIMIT capacity) x),
               (SELECT array_agg(ln(greatest(x.c, 0.001)) ORDER BY x.priority DESC, x.rank DESC, x.id)
                  FROM (SELECT * FROM w WHERE w.state = 'ready'
                         ORDER BY w.priority DESC, w.rank DESC, w.id LIMIT 5000) x)
          INTO busy, bmu;
        nb := coalesce(cardinality(bmu), 0);
    END IF;
    n := nb + np;
    -- Slots matter when the pipeline waits behind other work; else draw 0
    -- tells whether it would ever run more tasks at once than there are.
    limited := capacity IS NOT NULL AND (nb > 0 OR coalesce(cardinality(busy), 0) > 0);

    -- Upstreams, by downstream: CSR, and the first three inline.
    WITH idx AS (SELECT x.nm, nb + x.i::int AS i FROM unnest(names) WITH ORDINALITY AS x(nm, i))
    SELECT coalesce(array_agg(u.i ORDER BY d.i, u.i), '{}'), coalesce(array_agg(d.i ORDER BY d.i, u.i), '{}')
      INTO pu, pd
      FROM railyard.edges e
      JOIN idx u ON u.nm = e.upstream
      JOIN idx d ON d.nm = e.downstream
     WHERE e.pipeline_id = p_id;
    m := cardinality(pu);
    SELECT array_agg(z.b ORDER BY z.v) INTO pbeg
      FROM (SELECT g.v, 1 + coalesce(sum(x.cnt) OVER (ORDER BY g.v ROWS BETWEEN UNBOUNDED PRECEDING
                                                                         AND 1 PRECEDING), 0)::int AS b
              FROM generate_series(1, n + 1) g(v)
              LEFT JOIN (SELECT y.d, count(*) AS cnt FROM unnest(pd) y(d) GROUP BY y.d) x ON x.d = g.v) z;
    SELECT array_agg(CASE WHEN x.cnt >= 1 THEN pu[x.b] ELSE 0 END ORDER BY x.v),
           array_agg(CASE WHEN x.cnt >= 2 THEN pu[x.b + 1] ELSE 0 END ORDER BY x.v),
           array_agg(CASE WHEN x.cnt >= 3 THEN pu[x.b + 2] ELSE 0 END ORDER BY x.v),
           array_agg(CASE WHEN x.cnt >= 4 THEN x.b + 3 ELSE 0 END ORDER BY x.v)
      INTO p1, p2, p3, pm
      FROM (SELECT g.v, pbeg[g.v] AS b, pbeg[g.v + 1] - pbeg[g.v] AS cnt FROM generate_series(1, n) g(v)) x;

    -- How many draws the budget buys: each costs a pass over the tasks,
    -- four times more when slots may be short.
    samples := least(211, greatest(17, floor(p_budget
                    / greatest((np - nf) * CASE WHEN limited OR capacity < np - nf THEN 4 ELSE 1 END
                               + (m + 9) / 10, 1))::int));
    samples := (SELECT min(x) FROM unnest(ARRAY[17, 19, 23, 29, 31, 37, 41, 47, 53, 59, 67, 79, 89, 101, 127,
                                                151, 179, 211]) x WHERE x >= samples);
    s1 := samples + 1;
    method := CASE WHEN limited THEN format('monte carlo, list schedule on %s slots', capacity)
                   ELSE 'monte carlo over the DAG' END
              || CASE WHEN nb > 0 THEN format(' behind %s queued tasks', nb) ELSE '' END;

    -- Stratified draws: in draw s task v takes stratum (s * av[v] + bv[v])
    -- mod S + 1 of its distribution; with S prime every task visits each
    -- stratum exactly once (a Latin hypercube).  Stratum S + 1 is the
    -- centre (draws -1 and 0).  A lognormal task draws exp(mu + sg zs) in
    -- the loop; a task that mixes or already runs has its S + 1 values in
    -- qt: a cache hit (0 s), a class and a quantile within that class by
    -- where the stratum lies in its unit interval; a running task draws
    -- from beyond its elapsed time, as time left from now.
    zs := ARRAY(SELECT zt[1 + floor((g - 0.5) / samples * 1024)::int] FROM generate_series(1, samples) g)
          || 0::float8;
    SELECT array_agg((1 + ((g * 1103515245 + 12345) % 2147483647) % (samples - 1))::int ORDER BY g),
           array_agg((((g * 69069 + 907) % 2147483647) % samples)::int ORDER BY g)
      INTO av, bv FROM generate_series(1::bigint, n) g;
    SELECT coalesce(bmu, '{}') || array_agg(CASE WHEN x.kv = 2 AND NOT x.mx THEN ln(x.c) END ORDER BY x.i),
           array_fill(0::float8, ARRAY[nb]) || array_agg(CASE WHEN x.kv = 2 AND NOT x.mx THEN x.sg END ORDER BY x.i),
           array_fill(0, ARRAY[nb])
           || array_agg(CASE WHEN x.q THEN 1 + s1 * (x.qn - 1) ELSE 0 END::int ORDER BY x.i)
      INTO mu, sgv, qb
      FROM (SELECT y.*, count(*) FILTER (WHERE y.kv = 1 OR y.mx) OVER (ORDER BY y.i) AS qn,
                   y.kv = 1 OR y.mx AS q
              FROM unnest(kindv, mixed, ctr, sg) WITH ORDINALITY AS y(kv, mx, c, sg, i)) x;
    IF any_mix OR nr > 0 THEN
        WITH t AS (
            SELECT x.i::int AS i, x.kv, x.c, x.sg, x.so, x.pe, x.h, qb[nb + x.i::int] AS b
              FROM unnest(kindv, ctr, sg, so, pe, hr) WITH ORDINALITY AS x(kv, c, sg, so, pe, h, i)
             WHERE qb[nb + x.i::int] > 0
        ), cp AS (
            SELECT * FROM unnest(c_i, c_lo, c_hi, c_mu, c_sg) AS y(i, lo, hi, mu, sg)
        ), cell AS (
            SELECT t.*, g.j, (g.j - 0.5) / samples AS u FROM t CROSS JOIN generate_series(1, s1) g(j)
        )
        SELECT '{0}'::float8[] || array_agg(z.val ORDER BY z.b, z.j) INTO qt FROM (
            SELECT cell.b, cell.j,
                   CASE WHEN cell.kv = 1 THEN
                             greatest(cell.so - e0 + cell.c * CASE WHEN cell.j = s1 THEN 1 ELSE
                                      exp(cell.sg * zt[1 + floor((cell.pe + (1 - cell.pe) * cell.u) * 1024)::int]) END, 0)
                        WHEN cell.j = s1 THEN cell.c * (1 - cell.h)
                        WHEN cp.mu IS NULL THEN 0
                        ELSE exp(cp.mu + cp.sg * zt[1 + floor((cell.u - cp.lo) / (cp.hi - cp.lo) * 1024)::int]) END AS val
              FROM cell LEFT JOIN cp ON cell.kv = 2 AND cell.j <= samples AND cp.i = cell.i
                                    AND cell.u >= cp.lo AND cell.u < cp.hi
        ) z;
    END IF;

    fin := array_fill(0::float8, ARRAY[n]);
    crit := array_fill(0::float8, ARRAY[n]);
    ms := array_fill(0::float8, ARRAY[samples]);
    FOR v IN nb + 1..nb + nf LOOP
        fin[v] := so[v - nb];
    END LOOP;
    -- The slots' free times, ascending: free ones, then those other
    -- pipelines' running tasks hold.  With capacity to spare a single
    -- -Infinity: nothing waits for a slot.
    IF limited THEN
        slots := array_fill(e0, ARRAY[capacity - coalesce(cardinality(busy), 0)])
                 || ARRAY(SELECT e0 + b FROM unnest(busy) b ORDER BY b);
    ELSE
        slots := ARRAY['-Infinity'::float8];
    END IF;
    slots0 := slots;
    IF limited THEN
        qw := greatest(slots0[1] - e0, 0);
    END IF;

    -- Draw -1 places the load ahead (once, it is the same in every draw),
    -- draw 0 the centres, then the draws.  In draw s task v takes stratum
    -- (s * av[v] + bv[v]) mod md + ad: md = S, ad = 1 in the draws, and
    -- stratum S + 1 (the centre) in draws -1 and 0.
    s := CASE WHEN nb > 0 THEN -1 ELSE 0 END;
    WHILE s <= samples LOOP
        IF s < 0 THEN
            lo := 1;
            hi := nb;
        ELSE
            lo := nb + nf + 1;
            hi := n;
            slots := slots0;
        END IF;
        md := CASE WHEN s < 1 THEN 1 ELSE samples END;
        ad := CASE WHEN s < 1 THEN s1 ELSE 1 END;
        FOR v IN lo..hi LOOP
            r := greatest(e0, fin[p1[v]], fin[p2[v]], fin[p3[v]]);
            IF pm[v] > 0 THEN
                FOR k IN pm[v]..pbeg[v + 1] - 1 LOOP
                    IF fin[pu[k]] > r THEN
                        r := fin[pu[k]];
                    END IF;
                END LOOP;
            END IF;
            -- it starts once its upstreams ended and a slot is free
            f := greatest(r, slots[1])
                 + CASE WHEN qb[v] = 0 THEN exp(mu[v] + sgv[v] * zs[(s * av[v] + bv[v]) % md + ad])
                        ELSE qt[qb[v] + (s * av[v] + bv[v]) % md + ad] END;
            fin[v] := f;
            IF limited THEN
                -- the earliest free slot is taken until f: a sorted insert
                pos := width_bucket(f, slots);
                slots := slots[2:pos] || f || slots[pos + 1:capacity];
            END IF;
        END LOOP;
        IF s < 0 THEN
            slots0 := slots;
            qw := greatest(slots0[1] - e0, 0);
            s := s + 1;
            CONTINUE;
        END IF;
        -- Draw 0 without slots: if more tasks than the farm has slots
        -- ever run at once, capacity binds: schedule every draw on slots.
        IF s = 0 AND NOT limited AND capacity IS NOT NULL AND np - nf - nr > capacity THEN
            SELECT max(x.c) > capacity INTO limited
              FROM (SELECT sum(y.d) OVER (ORDER BY y.t, y.d ROWS UNBOUNDED PRECEDING) AS c
                      FROM (SELECT z.f AS t, -1 AS d FROM unnest(fin[nb + nf + 1:n]) z(f)
                            UNION ALL
                            SELECT z.f - CASE WHEN z.b = 0 THEN exp(z.mu) ELSE qt[z.b + s1] END, 1
                              FROM unnest(fin[nb + nf + 1:n], qb[nb + nf + 1:n], mu[nb + nf + 1:n])
                                   AS z(f, b, mu)) y) x;
            IF limited THEN
                slots := array_fill(e0, ARRAY[capacity]);
                slots0 := slots;
                method := replace(method, 'monte carlo over the DAG',
                                  format('monte carlo, list schedule on %s slots', capacity));
                CONTINUE;       -- draw 0 again, on the slots
            END IF;
        END IF;
        sl := fin[nb + 1:n];
        mx := (SELECT max(x) FROM unnest(sl) x);
        last := nb + array_position(sl, mx);
        IF s > 0 THEN
            ms[s] := mx - qw;
        ELSE
            critical_path := '{}';
        END IF;
        -- back along the latest upstreams: the chain that ended last
        v := last;
        WHILE v > 0 LOOP
            IF s = 0 THEN
                critical_path := names[v - nb] || critical_path;
            ELSE
                crit[v] := crit[v] + 1;
            END IF;
            EXIT WHEN v <= nb + nf + nr;
            last := 0;
            r := -1;
            FOR k IN pbeg[v]..pbeg[v + 1] - 1 LOOP
                IF fin[pu[k]] > r THEN
                    r := fin[pu[k]];
                    last := pu[k];
                END IF;
            END LOOP;
            v := last;
        END LOOP;
        s := s + 1;
    END LOOP;

    SELECT coalesce(jsonb_agg(jsonb_build_object('task', x.name, 'share_pct', round(x.share::numeric, 1),
                                                 'critical_pct', round(x.critpct::numeric, 1),
                                                 'median_s', round(x.c::numeric, 3))
                              ORDER BY x.share DESC, x.name), '[]')
      INTO uncertainty
      FROM (SELECT y.name, y.c, 100 * y.u / nullif(sum(y.u) OVER (), 0) AS share,
                   100 * y.cr / samples AS critpct
              FROM unnest(names, crit[nb + 1:n], ctr, sg, kindv) AS y0(name, cr, c, sg, kv)
             CROSS JOIN LATERAL (SELECT y0.name, y0.c, y0.cr,
                                        y0.cr * y0.c * sqrt(exp(y0.sg * y0.sg) - 1) AS u) y
             WHERE y0.kv > 0 AND y0.cr > 0
             ORDER BY y.u DESC, y.name LIMIT 5) x;

    -- Calibration against the past forecasts of the family (else of the
    -- farm): their errors e = ln(actual / p50_raw) measured in their own
    -- spread, |e| / spread_raw, give how far this forecast's spread must
    -- stretch (or shrink) for 80 % of them to have fallen inside p10-p90
    -- (a conformal calibration: it holds whatever the shape of the errors,
    -- cache hits' bimodal ones included).  The centre is not moved: past
    -- errors are mostly regressions the statistics have caught up with
    -- since, and correcting for them made forecasts worse
    -- (docs/forecasting.md, "Calibration").
    SELECT array_agg(x.e), array_agg(x.sp) INTO errs, sps
      FROM (SELECT ln(h.duration_s / f.p50_raw_s) AS e, f.spread_raw AS sp
              FROM railyard.pipeline_forecasts f
              JOIN railyard.pipeline_history h ON h.pipeline_id = f.pipeline_id
             WHERE f.family = fam AND f.kind = 'submit' AND h.outcome = 'succeeded'
               AND h.duration_s > 0 AND f.p50_raw_s > 0 AND f.spread_raw > 0 AND f.pipeline_id <> p_id
             ORDER BY f.made_at DESC LIMIT 20) x;
    nres := coalesce(cardinality(errs), 0);
    IF nres < 5 THEN
        SELECT array_agg(x.e), array_agg(x.sp) INTO errs, sps
          FROM (SELECT ln(h.duration_s / f.p50_raw_s) AS e, f.spread_raw AS sp
                  FROM railyard.pipeline_forecasts f
                  JOIN railyard.pipeline_history h ON h.pipeline_id = f.pipeline_id
                 WHERE f.kind = 'submit' AND h.outcome = 'succeeded'
                   AND h.duration_s > 0 AND f.p50_raw_s > 0 AND f.spread_raw > 0 AND f.pipeline_id <> p_id
                 ORDER BY f.made_at DESC LIMIT 50) x;
        nres := coalesce(cardinality(errs), 0);
        IF nres < 10 THEN
            nres := 0;
        END IF;
    END IF;

    SELECT percentile_cont(ARRAY[0.1, 0.5, 0.9]) WITHIN GROUP (ORDER BY x) INTO q FROM unnest(ms) x;
    p50_raw_s := q[2];
    spread_raw := greatest(ln(greatest(q[3] - e0, 1e-3)) - ln(greatest(q[1] - e0, 1e-3)), 0) / 2.5631;
    IF nres > 0 THEN
        stretch := (SELECT percentile_cont(0.8) WITHIN GROUP (ORDER BY abs(x.e) / greatest(x.sp, 0.01))
                      FROM unnest(errs, sps) AS x(e, sp)) / 1.2816;
        r := ln(greatest(q[2] - e0, 1e-3));
        FOR s IN 1..samples LOOP
            ms[s] := e0 + exp(r + (ln(greatest(ms[s] - e0, 1e-3)) - r) * stretch);
        END LOOP;
        SELECT percentile_cont(ARRAY[0.1, 0.5, 0.9]) WITHIN GROUP (ORDER BY x) INTO q FROM unnest(ms) x;
        method := method || format(', calibrated on %s past forecasts', nres);
    END IF;
    p10_s := q[1];
    p50_s := q[2];
    p90_s := q[3];
    queue_wait_s := qw;
END $$;
COMMENT ON FUNCTION railyard.forecast_run(bigint, int, boolean) IS
    'the Monte Carlo forecast of a pipeline (seconds from its first claim); p_budget bounds the work; p_as_submitted: as if nothing had started';

-- Records a forecast of the pipeline: kind submit (as if nothing had
-- started yet: the forecast at submission) or request.
CREATE OR REPLACE FUNCTION railyard.record_forecast(p_id bigint, p_kind text DEFAULT 'request')
RETURNS bigint LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    f   record;
    fam text;
    fid bigint;
BEGIN
    IF p_kind NOT IN ('submit', 'request') THEN
        RAISE EXCEPTION 'record_forecast: kind must be submit or request, not "%"', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    f := railyard.forecast_run(p_id, 18000, p_kind = 'submit');
    SELECT railyard.pipeline_family(name, family) INTO fam FROM railyard.pipelines WHERE id = p_id;
    INSERT INTO railyard.pipeline_forecasts
        (pipeline_id, family, kind, method, samples, tasks, p10_s, p50_s, p90_s, p50_raw_s, spread_raw,
         queue_wait_s, baseline_s, critical_path, uncertainty, cold_tasks)
    VALUES (p_id, fam, p_kind, f.method, f.samples, f.ntasks, f.p10_s, f.p50_s, f.p90_s, f.p50_raw_s, f.spread_raw,
            f.queue_wait_s,
            (SELECT avg(h.duration_s)
               FROM (SELECT duration_s FROM railyard.pipeline_history
                      WHERE family = fam AND outcome = 'succeeded' AND pipeline_id IS DISTINCT FROM p_id
                      ORDER BY finished_at DESC LIMIT 3) h),
            f.critical_path, f.uncertainty, f.cold_tasks)
    RETURNING id INTO fid;
    RETURN fid;
END $$;
COMMENT ON FUNCTION railyard.record_forecast(bigint, text) IS
    'computes and stores a forecast of the pipeline in pipeline_forecasts (kind submit: as at submission, or request); returns its id';

-- At COMMIT, after validation (trigger names fire in order): the pipeline
-- joins forecast_pending.  The Monte Carlo itself runs later, in
-- record_pending_forecasts, so that it costs submission nothing.
CREATE OR REPLACE FUNCTION railyard.forecast_at_submission() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO railyard.forecast_pending (pipeline_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.forecast_at_submission() IS
    'trigger: queues a submitted pipeline for its forecast at submission (record_pending_forecasts)';

DROP TRIGGER IF EXISTS pipelines_validate_forecast ON railyard.pipelines;
CREATE CONSTRAINT TRIGGER pipelines_validate_forecast AFTER INSERT ON railyard.pipelines
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION railyard.forecast_at_submission();

-- Records the forecast at submission of queued pipelines, oldest first,
-- as if none of their tasks had started: at most p_limit of them and no
-- new one after p_max_ms, so that the caller (the workers' heartbeat, on
-- the connection they claim with) is never held up for long.  Concurrent
-- callers take different pipelines (SKIP LOCKED).  A pipeline that already
-- finished is dropped unforecast (its own runs are in the statistics by
-- now); one whose forecast fails is dropped with a WARNING, so one bad
-- pipeline cannot stall the rest.  Returns how many were recorded.
DROP FUNCTION IF EXISTS railyard.record_pending_forecasts(int);
CREATE OR REPLACE FUNCTION railyard.record_pending_forecasts(p_limit int DEFAULT 20, p_max_ms int DEFAULT 100)
RETURNS int LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    pid   bigint;
    done  int := 0;
    t0    timestamptz := clock_timestamp();
BEGIN
    FOR pid IN
        SELECT x.pipeline_id FROM railyard.forecast_pending x
         ORDER BY x.pipeline_id LIMIT p_limit FOR UPDATE SKIP LOCKED
    LOOP
        EXIT WHEN clock_timestamp() > t0 + make_interval(secs => p_max_ms / 1000.0);
        DELETE FROM railyard.forecast_pending WHERE pipeline_id = pid;
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM railyard.pipelines p
                                   WHERE p.id = pid AND p.state IN ('queued', 'running'));
        BEGIN
            PERFORM railyard.record_forecast(pid, 'submit');
            done := done + 1;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'cannot forecast pipeline %: %', pid, SQLERRM;
        END;
    END LOOP;
    RETURN done;
END $$;
COMMENT ON FUNCTION railyard.record_pending_forecasts(int, int) IS
    'records the forecast at submission of up to p_limit pipelines queued by COMMIT, none started after p_max_ms (for the workers'' heartbeat); returns how many';

-- How long a pipeline will take.  Not started: queue wait plus run time;
-- running: what remains, from the running tasks' elapsed times; finished:
-- the forecast made at submission next to what happened.
CREATE OR REPLACE FUNCTION railyard.pipeline_forecast(p_id bigint)
RETURNS TABLE (pipeline_id bigint, state railyard.pipeline_state, method text, samples int,
               tasks int, cold_tasks int, made_at timestamptz, queue_wait_s float8,
               p10_s float8, p50_s float8, p90_s float8, elapsed_s float8,
               remaining_s float8, eta timestamptz, eta_p10 timestamptz, eta_p90 timestamptz,
               critical_path text[], uncertainty jsonb, actual_s float8, baseline_s float8)
LANGUAGE plpgsql STABLE SET jit = off AS $$
#variable_conflict use_column
DECLARE
    pl  railyard.pipelines;
    f   record;
    rec railyard.pipeline_forecasts;
    w   float8;
BEGIN
    SELECT * INTO pl FROM railyard.pipelines p WHERE p.id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pipeline % does not exist', p_id USING ERRCODE = 'no_data_found';
    END IF;
    IF pl.state NOT IN ('queued', 'running') THEN
        SELECT * INTO rec FROM railyard.pipeline_forecasts x
         WHERE x.pipeline_id = p_id ORDER BY x.kind = 'submit' DESC, x.id LIMIT 1;
        -- the run time as judged: first process start to last end
        w := (SELECT h.duration_s FROM railyard.pipeline_history h WHERE h.pipeline_id = p_id);
        RETURN QUERY SELECT pl.id, pl.state, rec.method, rec.samples, rec.tasks, rec.cold_tasks,
               rec.made_at, rec.queue_wait_s, rec.p10_s, rec.p50_s, rec.p90_s,
               coalesce(w, extract(epoch FROM pl.finished_at - coalesce(pl.started_at, pl.created_at))::float8),
               0::float8, pl.finished_at, pl.finished_at, pl.finished_at,
               rec.critical_path, rec.uncertainty,
               coalesce(w, extract(epoch FROM pl.finished_at - coalesce(pl.started_at, pl.finished_at))::float8),
               rec.baseline_s;
        RETURN;
    END IF;
    f := railyard.forecast_run(p_id, 18000);
    w := f.queue_wait_s;
    RETURN QUERY SELECT pl.id, pl.state, f.method, f.samples, f.ntasks, f.cold_tasks, now(), w,
           f.p10_s, f.p50_s, f.p90_s, f.elapsed_s, f.p50_s - f.elapsed_s,
           now() + make_interval(secs => w + f.p50_s - f.elapsed_s),
           now() + make_interval(secs => w + f.p10_s - f.elapsed_s),
           now() + make_interval(secs => w + f.p90_s - f.elapsed_s),
           f.critical_path, f.uncertainty, NULL::float8,
           (SELECT avg(h.duration_s)
              FROM (SELECT x.duration_s FROM railyard.pipeline_history x
                     WHERE x.family = railyard.pipeline_family(pl.name, pl.family)
                       AND x.outcome = 'succeeded'
                     ORDER BY x.finished_at DESC LIMIT 3) h);
END $$;
COMMENT ON FUNCTION railyard.pipeline_forecast(bigint) IS
    'forecast of a pipeline: run time p10/p50/p90 (seconds from first claim), queue wait, remaining time and ETA, critical path, tasks dominating the uncertainty; finished: the forecast at submission and the actual run time';

-- Forecasts judged: the forecast at submission against the run time (first
-- claim to end) of succeeded pipelines, per family and overall ('*'), next
-- to the naive baseline (mean of the family's last 3 runs, Jenkins').
CREATE OR REPLACE VIEW railyard.forecast_accuracy AS
WITH j AS (
    SELECT f.family, h.duration_s AS actual, f.p50_s, f.p10_s, f.p90_s, f.baseline_s,
           abs(f.p50_s - h.duration_s) / nullif(h.duration_s, 0) AS err,
           abs(f.baseline_s - h.duration_s) / nullif(h.duration_s, 0) AS berr
      FROM railyard.pipeline_forecasts f
      JOIN railyard.pipeline_history h ON h.pipeline_id = f.pipeline_id
     WHERE f.kind = 'submit' AND h.outcome = 'succeeded' AND h.duration_s > 0
), g AS (
    SELECT family, actual, p50_s, p10_s, p90_s, baseline_s, err, berr FROM j
    UNION ALL
    SELECT '*', actual, p50_s, p10_s, p90_s, baseline_s, err, berr FROM j
)
SELECT family,
       count(*) AS pipelines,
       round(100.0 * avg((err <= 0.10)::int), 1) AS within_10_pct,
       round(100.0 * avg((err <= 0.15)::int), 1) AS within_15_pct,
       round((100 * percentile_cont(0.5) WITHIN GROUP (ORDER BY err))::numeric, 2) AS mdape_pct,
       round(100.0 * avg((actual BETWEEN p10_s AND p90_s)::int), 1) AS interval_coverage_pct,
       count(baseline_s) AS baseline_pipelines,
       round(100.0 * avg((berr <= 0.10)::int) FILTER (WHERE baseline_s IS NOT NULL), 1) AS baseline_within_10_pct,
       round(100.0 * avg((berr <= 0.15)::int) FILTER (WHERE baseline_s IS NOT NULL), 1) AS baseline_within_15_pct,
       round((100 * percentile_cont(0.5) WITHIN GROUP (ORDER BY berr))::numeric, 2) AS baseline_mdape_pct
  FROM g
 GROUP BY family;
COMMENT ON VIEW railyard.forecast_accuracy IS
    'forecasts at submission against actual run times, per family and overall (*), beside the mean-of-last-3 baseline';
