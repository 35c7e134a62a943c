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
              FROM (SELECT abs(x) / sqrt(2) AS ax, 1 / (1 + 0.3275911 * abs(x) / sqrt(2)) AS t) a) b
$$;
COMMENT ON FUNCTION railyard.norm_cdf(float8) IS 'standard normal cumulative distribution function';

INSERT INTO railyard.normal_quantiles (id, z)
SELECT 1, array_agg(railyard.norm_ppf((k - 0.5) / 1024) ORDER BY k) FROM generate_series(1, 1024) k
ON CONFLICT (id) DO NOTHING;

-- What each task of a pipeline is expected to take: the centre (median)
-- and spread (sigma of ln duration) of its duration, and where they came
-- from.  The task's own history first; then, for a task without any:
--   other version   the same task in another version of its definition
--   estimate        the task's estimate_s
--   service+kind    tasks of the same service and kind (same family first)
--   kind            tasks of the same kind, in the family, then anywhere
--   default         60 s, wide
CREATE OR REPLACE FUNCTION railyard.task_estimates(p_pipeline bigint)
RETURNS TABLE (task_id bigint, name text, family text, task text, version text,
               center_s float8, sigma float8, runs bigint, source text)
LANGUAGE sql STABLE SET enable_nestloop = on SET jit = off AS $$
    WITH p AS (
        SELECT railyard.pipeline_family(name, family) AS fam FROM railyard.pipelines WHERE id = p_pipeline
    ), o AS (
        SELECT t.id, t.name, coalesce(t.forecast_key, t.name) AS task, t.version, t.service, t.kind,
               t.estimate_s, p.fam, own.c, own.s, own.runs, ver.c AS vc, ver.s AS vs
          FROM railyard.tasks t
         CROSS JOIN p
          LEFT JOIN LATERAL (
                -- small samples get a wider spread: sigma >= 0.25 before 5 runs
                SELECT exp(s.ewma_log) AS c,
                       greatest(1.4826 * coalesce(s.mad_log, 0), 0.03,
                                CASE WHEN s.runs < 5 THEN 0.25 ELSE 0 END) AS s,
                       s.runs
                  FROM railyard.duration_stats s
                 WHERE s.family = p.fam AND s.task = coalesce(t.forecast_key, t.name)
                   AND s.version = t.version AND s.agent_class = '*' AND s.runs > 0) own ON true
          LEFT JOIN LATERAL (
                SELECT exp(s.ewma_log) AS c, greatest(1.4826 * coalesce(s.mad_log, 0), 0.1) AS s
                  FROM railyard.duration_stats s
                 WHERE own.c IS NULL AND s.family = p.fam AND s.task = coalesce(t.forecast_key, t.name)
                   AND s.agent_class = '*' AND s.runs > 0
                 ORDER BY s.last_at DESC LIMIT 1) ver ON true
         WHERE t.pipeline_id = p_pipeline
    ), cold AS (
        -- borrowing is looked up once per service and kind, not per task
        SELECT DISTINCT o.service, o.kind, o.fam FROM o
         WHERE o.c IS NULL AND o.vc IS NULL AND o.estimate_s IS NULL
    ), sk AS (
        SELECT cold.service, cold.kind, b.c
          FROM cold CROSS JOIN LATERAL (
                SELECT exp(percentile_cont(0.5) WITHIN GROUP (ORDER BY x.l)) AS c
                  FROM (SELECT s.ewma_log AS l FROM railyard.duration_stats s
                         WHERE s.service = cold.service AND s.kind = cold.kind
                           AND s.agent_class = '*' AND s.runs > 0
                         ORDER BY s.family = cold.fam DESC, s.last_at DESC LIMIT 20) x
                HAVING count(*) > 0) b
    ), k AS (
        SELECT c2.kind, b.c
          FROM (SELECT DISTINCT cold.kind, cold.fam FROM cold) c2 CROSS JOIN LATERAL (
                SELECT exp(percentile_cont(0.5) WITHIN GROUP (ORDER BY x.l)) AS c
                  FROM (SELECT s.ewma_log AS l FROM railyard.duration_stats s
                         WHERE s.kind = c2.kind AND s.task <> '' AND s.agent_class = '*' AND s.runs > 0
                         ORDER BY s.family = c2.fam DESC, s.last_at DESC LIMIT 20) x
                HAVING count(*) > 0) b
    )
    SELECT o.id, o.name, o.fam, o.task, o.version,
           coalesce(o.c, o.vc, o.estimate_s, sk.c, k.c, 60),
           coalesce(o.s, o.vs, CASE WHEN o.estimate_s IS NOT NULL THEN 0.3 END,
                    CASE WHEN sk.c IS NOT NULL THEN 0.4 END, CASE WHEN k.c IS NOT NULL THEN 0.5 END, 0.6),
           coalesce(o.runs, 0),
           CASE WHEN o.c IS NOT NULL THEN 'history'
                WHEN o.vc IS NOT NULL THEN 'other version'
                WHEN o.estimate_s IS NOT NULL THEN 'estimate'
                WHEN sk.c IS NOT NULL THEN 'service+kind'
                WHEN k.c IS NOT NULL THEN 'kind'
                ELSE 'default' END
      FROM o
      LEFT JOIN sk ON o.c IS NULL AND o.vc IS NULL AND sk.service = o.service AND sk.kind = o.kind
      LEFT JOIN k ON o.c IS NULL AND o.vc IS NULL AND k.kind = o.kind
     ORDER BY o.id
$$;
COMMENT ON FUNCTION railyard.task_estimates(bigint) IS
    'per task of a pipeline: expected duration (centre, seconds), spread (sigma of ln duration) and source: history, other version, estimate, service+kind, kind or default';

-- The weights of the upward rank computed at COMMIT (validate_pipeline):
-- each task's expected duration in seconds, in task id order.
CREATE OR REPLACE FUNCTION railyard.task_weights(p_pipeline bigint) RETURNS float8[]
LANGUAGE sql STABLE SET enable_nestloop = on SET jit = off AS $$
    SELECT array_agg(greatest(e.center_s, 0.001) ORDER BY e.task_id)
      FROM railyard.task_estimates(p_pipeline) e
$$;
COMMENT ON FUNCTION railyard.task_weights(bigint) IS
    'expected task durations (seconds) in task id order: the weights of the upward rank';

-- The Monte Carlo forecast of one pipeline (docs/forecasting.md):
-- durations drawn from each task's lognormal (centre, sigma), running tasks
-- conditioned on their elapsed time, finished ones fixed; each draw is
-- scheduled over the DAG (a list schedule in upward-rank order when the
-- farm has fewer slots than the pipeline has tasks left); the makespans'
-- quantiles are then calibrated against the family's past forecast errors.
-- Deterministic: a fixed-seed generator, so the same inputs give the same
-- answer.  p_budget bounds the work (inner-loop steps): the number of
-- draws is budget / steps per draw, rounded up to a prime between 31 and 401.
-- Times are seconds from the pipeline's first claim (now, if not started).
CREATE OR REPLACE FUNCTION railyard.forecast_run(
    p_id bigint, p_budget int,
    OUT method text, OUT samples int, OUT ntasks int, OUT elapsed_s float8,
    OUT p10_s float8, OUT p50_s float8, OUT p90_s float8, OUT p50_raw_s float8,
    OUT queue_wait_s float8, OUT critical_path text[], OUT uncertainty jsonb,
    OUT cold_tasks int, OUT capacity int)
LANGUAGE plpgsql STABLE SET jit = off SET enable_nestloop = off AS $$
DECLARE
    pl      railyard.pipelines;
    fam     text;
    t0      timestamptz;
    e0      float8;
    names   text[];
    mu      float8[];
    sg      float8[];
    ctr     float8[];
    kindv   int[];          -- 0 finished, 1 running, 2 not started
    fixs    float8[];       -- running: start offset; else earliest start
    fin0    float8[];       -- finished: finish offset
    pe      float8[];       -- running: P(duration <= elapsed)
    pu      int[];          -- predecessor lists (CSR by downstream)
    pd      int[];
    su      int[];          -- successor lists (CSR by upstream)
    sd      int[];
    pbeg    int[];
    sbeg    int[];
    n       int;
    m       int;
    indeg   int[];
    topo    int[];
    rank    float8[];
    ord     int[];
    nord    int;
    head    int := 0;
    tail    int := 0;
    fin     float8[];
    arg     int[];
    arg0    int[];
    crit    float8[];
    ms      float8[];
    heap    float8[];
    zt      float8[];
    zs      float8[];       -- the standard normal at each draw's stratum
    av      int[];
    bv      int[];
    nrun    int;
    seed    bigint := 20240607;
    limited boolean;
    s       int;
    j       int;
    k       int;
    v       int;
    a       int;
    c       int;
    i       int;
    r       float8;
    f       float8;
    d       float8;
    mx      float8;
    last    int;
    last0   int;
    fixmax  float8 := 0;
    stepc   float8;
    nres    int;
    bias    float8 := 0;
    s_emp   float8;
    s_mc    float8;
    s_extra float8 := 0;
    q       float8[];
    running_n int;
    ready_ahead int;
    avg_dur float8;
BEGIN
    SELECT * INTO pl FROM railyard.pipelines WHERE id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pipeline % does not exist', p_id USING ERRCODE = 'no_data_found';
    END IF;
    fam := railyard.pipeline_family(pl.name, pl.family);
    t0 := coalesce(pl.started_at, now());
    e0 := greatest(extract(epoch FROM now() - t0), 0);
    elapsed_s := e0;
    SELECT z INTO zt FROM railyard.normal_quantiles WHERE id = 1;

    SELECT array_agg(t.name ORDER BY t.id),
           array_agg(ln(greatest(e.center_s, 0.001)) ORDER BY t.id),
           array_agg(e.sigma ORDER BY t.id),
           array_agg(e.center_s ORDER BY t.id),
           array_agg(CASE WHEN t.state = 'running' THEN 1
                          WHEN t.state IN ('blocked', 'ready') THEN 2 ELSE 0 END ORDER BY t.id),
           array_agg(CASE WHEN t.state = 'running'
                          THEN least(greatest(extract(epoch FROM coalesce(t.started_at, t.claimed_at, now()) - t0), 0), e0)
                          ELSE e0 END ORDER BY t.id),
           array_agg(CASE WHEN t.state NOT IN ('running', 'blocked', 'ready')
                          THEN least(greatest(extract(epoch FROM coalesce(t.finished_at, now()) - t0), 0), e0) END
                     ORDER BY t.id),
           count(*) FILTER (WHERE e.source <> 'history')
      INTO names, mu, sg, ctr, kindv, fixs, fin0, cold_tasks
      FROM railyard.tasks t JOIN railyard.task_estimates(p_id) e ON e.task_id = t.id
     WHERE t.pipeline_id = p_id;
    n := coalesce(cardinality(names), 0);
    ntasks := n;
    IF n = 0 THEN
        RAISE EXCEPTION 'pipeline % has no tasks', p_id USING ERRCODE = 'no_data_found';
    END IF;

    WITH idx AS (SELECT t.name, row_number() OVER (ORDER BY t.id)::int AS i
                   FROM railyard.tasks t WHERE t.pipeline_id = p_id)
    SELECT coalesce(array_agg(u.i ORDER BY d.i, u.i), '{}'), coalesce(array_agg(d.i ORDER BY d.i, u.i), '{}'),
           coalesce(array_agg(u.i ORDER BY u.i, d.i), '{}'), coalesce(array_agg(d.i ORDER BY u.i, d.i), '{}')
      INTO pu, pd, su, sd
      FROM railyard.edges e
      JOIN idx u ON u.name = e.upstream
      JOIN idx d ON d.name = e.downstream
     WHERE e.pipeline_id = p_id;
    m := coalesce(cardinality(pu), 0);

    -- CSR offsets: predecessors of v are pu[pbeg[v] .. pbeg[v+1]-1].
    pbeg := array_fill(0, ARRAY[n + 1]);
    sbeg := array_fill(0, ARRAY[n + 1]);
    FOR k IN 1..m LOOP
        pbeg[pd[k] + 1] := pbeg[pd[k] + 1] + 1;
        sbeg[su[k] + 1] := sbeg[su[k] + 1] + 1;
    END LOOP;
    pbeg[1] := 1;
    sbeg[1] := 1;
    FOR v IN 1..n LOOP
        pbeg[v + 1] := pbeg[v + 1] + pbeg[v];
        sbeg[v + 1] := sbeg[v + 1] + sbeg[v];
    END LOOP;

    -- Kahn's order, then the upward rank from the centres.
    indeg := array_fill(0, ARRAY[n]);
    FOR k IN 1..m LOOP
        indeg[sd[k]] := indeg[sd[k]] + 1;
    END LOOP;
    topo := array_fill(0, ARRAY[n]);
    FOR v IN 1..n LOOP
        IF indeg[v] = 0 THEN
            tail := tail + 1;
            topo[tail] := v;
        END IF;
    END LOOP;
    WHILE head < tail LOOP
        head := head + 1;
        v := topo[head];
        FOR k IN sbeg[v]..sbeg[v + 1] - 1 LOOP
            indeg[sd[k]] := indeg[sd[k]] - 1;
            IF indeg[sd[k]] = 0 THEN
                tail := tail + 1;
                topo[tail] := sd[k];
            END IF;
        END LOOP;
    END LOOP;
    IF tail < n THEN
        RAISE EXCEPTION 'pipeline % has a cycle', p_id USING ERRCODE = 'invalid_object_definition';
    END IF;
    rank := array_fill(0::float8, ARRAY[n]);
    FOR head IN REVERSE n..1 LOOP
        v := topo[head];
        r := 0;
        FOR k IN sbeg[v]..sbeg[v + 1] - 1 LOOP
            r := greatest(r, rank[sd[k]]);
        END LOOP;
        rank[v] := ctr[v] + r;
    END LOOP;
    -- Draw order: running tasks, then the rest by upward rank (a
    -- topological order, since every weight is positive).
    SELECT coalesce(array_agg(x.i ORDER BY x.kv, x.r DESC, x.i), '{}') INTO ord
      FROM unnest(kindv, rank) WITH ORDINALITY AS x(kv, r, i) WHERE x.kv > 0;
    nord := cardinality(ord);

    -- Capacity: slots of online agents, else of those seen in the last
    -- day; none known: unlimited.
    SELECT coalesce(sum(slots) FILTER (WHERE state = 'online' AND lease_until > now()), 0),
           coalesce(sum(slots) FILTER (WHERE last_seen > now() - interval '1 day'), 0)
      INTO capacity, c FROM railyard.agents;
    IF capacity = 0 THEN
        capacity := CASE WHEN c > 0 THEN c ELSE NULL END;
    END IF;
    limited := capacity IS NOT NULL AND capacity < nord;

    -- Fixed parts: finished tasks; running ones' chance of having ended.
    fin := array_fill(0::float8, ARRAY[n]);
    pe := array_fill(0::float8, ARRAY[n]);
    arg := array_fill(0, ARRAY[n]);
    crit := array_fill(0::float8, ARRAY[n]);
    FOR v IN 1..n LOOP
        IF kindv[v] = 0 THEN
            fin[v] := fin0[v];
            fixmax := greatest(fixmax, fin0[v]);
        ELSIF kindv[v] = 1 THEN
            r := e0 - fixs[v];
            IF r > 0 THEN
                pe[v] := least(railyard.norm_cdf((ln(r) - mu[v]) / sg[v]), 0.999);
            END IF;
        END IF;
    END LOOP;

    stepc := 6 * nord + 3 * m + CASE WHEN limited THEN 4 * nord * (1 + ln(capacity) / ln(2)) ELSE 0 END;
    samples := least(401, greatest(31, floor(p_budget / greatest(stepc, 1))::int));
    method := CASE WHEN limited THEN format('monte carlo, list schedule on %s slots', capacity)
                   ELSE 'monte carlo over the DAG' END;
    -- Latin hypercube draws: task v takes stratum (s * av[v] + bv[v]) mod
    -- samples in draw s; with a prime number of draws every task visits
    -- each stratum of its distribution exactly once.
    samples := (SELECT min(x) FROM unnest(ARRAY[31, 37, 41, 47, 53, 59, 67, 79, 89, 101, 127, 151, 179,
                                                211, 251, 307, 359, 401]) x WHERE x >= samples);
    ms := array_fill(0::float8, ARRAY[samples]);
    zs := ARRAY(SELECT zt[1 + floor((g + 0.5) * 1024 / samples)::int] FROM generate_series(0, samples - 1) g);
    av := array_fill(1, ARRAY[n]);
    bv := array_fill(0, ARRAY[n]);
    FOR v IN 1..n LOOP
        seed := seed * 48271 % 2147483647;
        av[v] := 1 + (seed % (samples - 1))::int;
        seed := seed * 48271 % 2147483647;
        bv[v] := (seed % samples)::int;
    END LOOP;
    nrun := (SELECT count(*) FROM unnest(kindv) x WHERE x = 1);

    -- Draw 0 uses the centres: it gives the critical path.
    FOR s IN 0..samples LOOP
        IF limited THEN
            heap := array_fill(e0, ARRAY[capacity]);
        END IF;
        mx := greatest(fixmax, e0);
        last := 0;
        FOR j IN 1..nord LOOP
            v := ord[j];
            IF j <= nrun THEN
                IF s = 0 THEN
                    f := fixs[v] + exp(mu[v]);
                ELSE
                    f := fixs[v] + exp(mu[v] + sg[v] * zt[1 + floor((pe[v] + (1 - pe[v])
                              * ((s * av[v] + bv[v]) % samples + 0.5) / samples) * 1024)::int]);
                END IF;
                f := greatest(f, e0);
                a := 0;
            ELSE
                r := fixs[v];
                a := 0;
                FOR k IN pbeg[v]..pbeg[v + 1] - 1 LOOP
                    IF fin[pu[k]] > r THEN
                        r := fin[pu[k]];
                        a := pu[k];
                    END IF;
                END LOOP;
                IF limited AND heap[1] > r THEN
                    r := heap[1];
                END IF;
                IF s = 0 THEN
                    f := r + exp(mu[v]);
                ELSE
                    f := r + exp(mu[v] + sg[v] * zs[1 + (s * av[v] + bv[v]) % samples]);
                END IF;
            END IF;
            fin[v] := f;
            arg[v] := a;
            IF f > mx THEN
                mx := f;
                last := v;
            END IF;
            IF limited THEN
                -- the earliest-free slot is taken until f: sift down
                i := 1;
                LOOP
                    c := 2 * i;
                    EXIT WHEN c > capacity;
                    IF c < capacity AND heap[c + 1] < heap[c] THEN
                        c := c + 1;
                    END IF;
                    EXIT WHEN heap[c] >= f;
                    heap[i] := heap[c];
                    i := c;
                END LOOP;
                heap[i] := f;
            END IF;
        END LOOP;
        IF s = 0 THEN
            arg0 := arg;
            last0 := last;
        ELSE
            ms[s] := mx;
            v := last;
            WHILE v > 0 LOOP
                crit[v] := crit[v] + 1;
                v := arg[v];
            END LOOP;
        END IF;
    END LOOP;

    critical_path := '{}';
    v := last0;
    WHILE v > 0 LOOP
        critical_path := names[v] || critical_path;
        v := arg0[v];
    END LOOP;

    SELECT coalesce(jsonb_agg(jsonb_build_object('task', x.name, 'share_pct', round(x.share::numeric, 1),
                                                 'critical_pct', round(x.critpct::numeric, 1),
                                                 'median_s', round(x.c::numeric, 3))
                              ORDER BY x.share DESC, x.name), '[]')
      INTO uncertainty
      FROM (SELECT y.name, y.c, 100 * y.u / nullif(sum(y.u) OVER (), 0) AS share,
                   100 * y.cr / samples AS critpct
              FROM unnest(names, crit, ctr, sg, kindv) AS y0(name, cr, c, sg, kv)
             CROSS JOIN LATERAL (SELECT y0.name, y0.c, y0.cr,
                                        y0.cr * y0.c * sqrt(exp(y0.sg * y0.sg) - 1) AS u) y
             WHERE y0.kv > 0 AND y0.cr > 0
             ORDER BY y.u DESC, y.name LIMIT 5) x;

    -- Calibration against the family's past errors (else the farm's).
    SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY r.e)
      INTO nres, bias
      FROM (SELECT ln(h.duration_s / f.p50_raw_s) AS e
              FROM railyard.pipeline_forecasts f
              JOIN railyard.pipeline_history h ON h.pipeline_id = f.pipeline_id
             WHERE f.family = fam AND f.kind = 'submit' AND h.outcome = 'succeeded'
               AND h.duration_s > 0 AND f.p50_raw_s > 0 AND f.pipeline_id <> p_id
             ORDER BY f.id DESC LIMIT 20) r;
    IF nres < 5 THEN
        SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY r.e)
          INTO nres, bias
          FROM (SELECT ln(h.duration_s / f.p50_raw_s) AS e
                  FROM railyard.pipeline_forecasts f
                  JOIN railyard.pipeline_history h ON h.pipeline_id = f.pipeline_id
                 WHERE f.kind = 'submit' AND h.outcome = 'succeeded'
                   AND h.duration_s > 0 AND f.p50_raw_s > 0 AND f.pipeline_id <> p_id
                 ORDER BY f.id DESC LIMIT 50) r;
        IF nres < 10 THEN
            nres := 0;
        END IF;
    END IF;

    SELECT percentile_cont(ARRAY[0.1, 0.5, 0.9]) WITHIN GROUP (ORDER BY x) INTO q FROM unnest(ms) x;
    p50_raw_s := q[2];
    IF nres > 0 THEN
        SELECT 1.4826 * percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(r.e - bias))
          INTO s_emp
          FROM (SELECT ln(h.duration_s / f.p50_raw_s) AS e
                  FROM railyard.pipeline_forecasts f
                  JOIN railyard.pipeline_history h ON h.pipeline_id = f.pipeline_id
                 WHERE (f.family = fam OR nres >= 10) AND f.kind = 'submit' AND h.outcome = 'succeeded'
                   AND h.duration_s > 0 AND f.p50_raw_s > 0 AND f.pipeline_id <> p_id
                 ORDER BY f.family = fam DESC, f.id DESC LIMIT nres) r;
        bias := bias * nres / (nres + 5.0);
        s_mc := (ln(greatest(q[3] - e0, 1e-3)) - ln(greatest(q[1] - e0, 1e-3))) / 2.5631;
        s_extra := sqrt(greatest(coalesce(s_emp, 0) ^ 2 - s_mc ^ 2, 0));
        FOR s IN 1..samples LOOP
            seed := seed * 48271 % 2147483647;
            ms[s] := e0 + (ms[s] - e0) * exp(bias + s_extra * zt[1 + (seed >> 21)::int]);
        END LOOP;
        SELECT percentile_cont(ARRAY[0.1, 0.5, 0.9]) WITHIN GROUP (ORDER BY x) INTO q FROM unnest(ms) x;
        method := method || format(', calibrated on %s past forecasts', nres);
    END IF;
    p10_s := q[1];
    p50_s := q[2];
    p90_s := q[3];

    -- Queue wait, for a pipeline nobody has claimed from yet: the ready
    -- tasks ahead of it and the running ones against the slots.
    queue_wait_s := 0;
    IF pl.state = 'queued' AND capacity IS NOT NULL THEN
        SELECT count(*) FILTER (WHERE t.state = 'running'),
               count(*) FILTER (WHERE t.state = 'ready'
                                  AND (t.priority > pl.priority
                                       OR (t.priority = pl.priority AND t.pipeline_id < p_id)))
          INTO running_n, ready_ahead
          FROM railyard.tasks t
         WHERE t.state IN ('ready', 'running') AND t.pipeline_id <> p_id;
        SELECT avg(h.duration_s) INTO avg_dur
          FROM (SELECT duration_s FROM railyard.run_history ORDER BY finished_at DESC LIMIT 200) h;
        queue_wait_s := greatest(0, ready_ahead + running_n - capacity + 1)
                        * coalesce(avg_dur, 60) / capacity;
    END IF;
END $$;
COMMENT ON FUNCTION railyard.forecast_run(bigint, int) IS
    'the Monte Carlo forecast of a pipeline (seconds from its first claim); p_budget bounds the work';

-- Records a forecast of the pipeline (kind submit at COMMIT, or request).
CREATE OR REPLACE FUNCTION railyard.record_forecast(p_id bigint, p_kind text DEFAULT 'request')
RETURNS bigint LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    f   record;
    fam text;
    fid bigint;
BEGIN
    f := railyard.forecast_run(p_id, CASE WHEN p_kind = 'submit' THEN 15000 ELSE 130000 END);
    SELECT railyard.pipeline_family(name, family) INTO fam FROM railyard.pipelines WHERE id = p_id;
    INSERT INTO railyard.pipeline_forecasts
        (pipeline_id, family, kind, method, samples, tasks, p10_s, p50_s, p90_s, p50_raw_s,
         queue_wait_s, baseline_s, critical_path, uncertainty, cold_tasks)
    VALUES (p_id, fam, p_kind, f.method, f.samples, f.ntasks, f.p10_s, f.p50_s, f.p90_s, f.p50_raw_s,
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
    'computes and stores a forecast of the pipeline in pipeline_forecasts (kind submit or request); returns its id';

-- At COMMIT, after validation (trigger names fire in order): the forecast
-- at submission, which forecast_accuracy judges.
CREATE OR REPLACE FUNCTION railyard.forecast_at_submission() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM railyard.record_forecast(NEW.id, 'submit');
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.forecast_at_submission() IS
    'trigger: records the forecast of a pipeline when its submission commits';

DROP TRIGGER IF EXISTS pipelines_validate_forecast ON railyard.pipelines;
CREATE CONSTRAINT TRIGGER pipelines_validate_forecast AFTER INSERT ON railyard.pipelines
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION railyard.forecast_at_submission();

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
        RETURN QUERY SELECT pl.id, pl.state, rec.method, rec.samples, rec.tasks, rec.cold_tasks,
               rec.made_at, rec.queue_wait_s, rec.p10_s, rec.p50_s, rec.p90_s,
               extract(epoch FROM pl.finished_at - coalesce(pl.started_at, pl.created_at))::float8,
               0::float8, pl.finished_at, pl.finished_at, pl.finished_at,
               rec.critical_path, rec.uncertainty,
               extract(epoch FROM pl.finished_at - coalesce(pl.started_at, pl.finished_at))::float8,
               rec.baseline_s;
        RETURN;
    END IF;
    f := railyard.forecast_run(p_id, 130000);
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
