-- Forecasting, part 1: task identity, the run history, duration statistics
-- and the anomaly detectors that run as each run finishes.
-- docs/forecasting.md explains the rules and their thresholds.

-- A pipeline's family: the explicit one, else its name without the
-- "@revision" suffix (shop@9f3c2e1 -> shop).
CREATE OR REPLACE FUNCTION railyard.pipeline_family(p_name text, p_family text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(p_family, nullif(regexp_replace(p_name, '@[^@]*$', ''), ''), p_name)
$$;
COMMENT ON FUNCTION railyard.pipeline_family(text, text) IS
    'forecast family of a pipeline: pipelines.family, else the name without its @revision suffix';

-- A statistics row's recent_at after a use at p_at (a run or a cache
-- hit): refreshed at most once an hour, because it is indexed (0018) and
-- an indexed column that changes at every run makes every update non-HOT.
CREATE OR REPLACE FUNCTION railyard.recent_at_after(p_recent timestamptz, p_at timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_recent IS NULL OR p_at > p_recent + interval '1 hour' THEN p_at ELSE p_recent END
$$;
COMMENT ON FUNCTION railyard.recent_at_after(timestamptz, timestamptz) IS
    'duration_stats.recent_at after a use at a time: that time, unless the last refresh is less than an hour older';

-- An agent class: agents that should run a task equally fast.
-- PL/pgSQL, not SQL: with its subquery a SQL function cannot be inlined,
-- and every statement calling it (the history trigger, at each
-- completion) planned its body again (0.13 ms a completion).
CREATE OR REPLACE FUNCTION railyard.agent_class(p_os text, p_arch text, p_cores int, p_labels text[])
RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN p_os || '/' || p_arch || '/' || p_cores || 'c'
           || coalesce('/' || (SELECT string_agg(DISTINCT l COLLATE "C", ',' ORDER BY l COLLATE "C") FROM unnest(p_labels) l
                                WHERE l IS DISTINCT FROM p_os AND l IS DISTINCT FROM p_arch), '');
END $$;
COMMENT ON FUNCTION railyard.agent_class(text, text, int, text[]) IS
    'agent class os/arch/<cores>c/<labels, sorted, without os and arch>, e.g. linux/x86_64/8c/docker';

-- Median and median absolute deviation of a set of numbers.
CREATE OR REPLACE FUNCTION railyard.median_mad(p_values float8[], OUT median float8, OUT mad float8)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH m AS (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) AS med FROM unnest(p_values) v)
    SELECT m.med, (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(v - m.med))
                     FROM unnest(p_values) v)
      FROM m
$$;
COMMENT ON FUNCTION railyard.median_mad(float8[]) IS 'median and median absolute deviation';

-- The sigma the detectors and forecasts use: 1.4826 MAD (robust), or,
-- when larger, the standard deviation of the values winsorised at their
-- 5th and 95th percentiles.  The MAD of 10-20 runs is noisy and falls
-- short of the real spread often enough to raise false alarms on its own,
-- and it is 0 when most runs agree and the rest (a slower class, a cache
-- hit) differ.
CREATE OR REPLACE FUNCTION railyard.robust_scale(p_values float8[], p_mad float8)
RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT greatest(1.4826 * p_mad, coalesce(stddev_samp(least(greatest(v, q[1]), q[2])), 0))
      FROM unnest(p_values) v,
           (SELECT percentile_cont(ARRAY[0.05, 0.95]) WITHIN GROUP (ORDER BY w) AS q FROM unnest(p_values) w) b
$$;
COMMENT ON FUNCTION railyard.robust_scale(float8[], float8) IS
    'robust sigma: max(1.4826 MAD, SD of the values winsorised at their 5th and 95th percentiles)';

-- The tail of an array: its last n elements.
CREATE OR REPLACE FUNCTION railyard.array_tail(p anyarray, n int)
RETURNS anyarray LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN coalesce(cardinality(p), 0) <= n THEN p
                ELSE p[cardinality(p) - n + 1 : cardinality(p)] END
$$;
COMMENT ON FUNCTION railyard.array_tail(anyarray, int) IS 'the last n elements of an array';

-- Opens an anomaly unless one of that kind is open for the same subject
-- (then it is refreshed).  Returns whether a new one was opened.
CREATE OR REPLACE FUNCTION railyard.anomaly_open(
    p_kind text, p_family text, p_task text, p_version text, p_class text, p_since timestamptz,
    p_expected float8, p_observed float8, p_score float8, p_severity text, p_pipeline bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    UPDATE railyard.anomaly_log
       SET last_seen_at = now(), observed = p_observed, score = p_score, runs = runs + 1,
           severity = CASE WHEN p_severity = 'critical' THEN 'critical' ELSE severity END
     WHERE state = 'open' AND family = p_family AND task = p_task AND version = p_version
       AND agent_class = p_class AND kind = p_kind;
    IF FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO railyard.anomaly_log (kind, family, task, version, agent_class, since, expected,
                                      observed, score, severity, pipeline_id)
    VALUES (p_kind, p_family, p_task, p_version, p_class, p_since, p_expected, p_observed,
            p_score, p_severity, p_pipeline);
    RETURN true;
END $$;
COMMENT ON FUNCTION railyard.anomaly_open(text, text, text, text, text, timestamptz, float8, float8, float8, text, bigint) IS
    'opens an anomaly, or refreshes the open one of the same kind and subject; true when new';

-- PL/pgSQL, not SQL: called for nearly every run the detectors judge,
-- and a SQL function that is not inlined plans its UPDATE at every call
-- (0.18 ms of the 0.88 ms an observation cost, where the UPDATE itself
-- took 0.006 ms: bench/profile_hotpath.sh, drain phase).
CREATE OR REPLACE FUNCTION railyard.anomaly_close(
    p_kinds text[], p_family text, p_task text, p_version text, p_class text, p_why text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE railyard.anomaly_log
       SET state = 'closed', closed_at = now(), closed_reason = p_why
     WHERE state = 'open' AND family = p_family AND task = p_task AND version = p_version
       AND agent_class = p_class AND kind = ANY (p_kinds);
END $$;
COMMENT ON FUNCTION railyard.anomaly_close(text[], text, text, text, text, text) IS
    'closes the open anomalies of these kinds for one subject, with the reason';

-- Feeds one run to the statistics row of one subject (identity x class,
-- '*' for every class, or a family's pipeline row) and returns what
-- happened (opened: anomalies opened; shift: the level change it
-- confirmed, log scale, or NULL).  p_mode:
--   detect  the detectors judge the run and open or close anomalies
--   events  failure-rate and queue-wait detectors only (a family's row:
--           its runs' durations are judged against their forecasts in
--           its 'forecast error' row)
--   quiet   they only adapt the baseline (imported history)
--   stats   no detectors: window, median, MAD and EWMA only (class rows;
--           the identity's '*' row judges, on class-normalised runs)
-- p_offset: ln(duration) is compared as ln(duration) - p_offset, so that a
-- run on a slower agent class is judged at the speed of the identity's
-- reference class.  p_timed false: the run executed, but its duration
-- cannot be compared yet (its class's offset is unknown): it counts for
-- the cache rate and the placements only.  Rules and thresholds:
-- docs/forecasting.md.
DROP FUNCTION IF EXISTS railyard.observe_one(railyard.observation, text, boolean);
DROP FUNCTION IF EXISTS railyard.observe_one(railyard.observation, text, text, float8);
CREATE OR REPLACE FUNCTION railyard.observe_one(o railyard.observation, p_class text, p_mode text,
                                                p_offset float8 DEFAULT 0, p_timed boolean DEFAULT true,
                                                OUT opened int, OUT shift float8)
LANGUAGE plpgsql AS $$
DECLARE
    st      railyard.duration_stats;
    detect  boolean := p_mode IN ('detect', 'events');     -- failures, queue waits
    judge   boolean := p_mode <> 'stats';
    dur_judge  boolean := p_mode IN ('detect', 'quiet');   -- durations
    dur_detect boolean := p_mode = 'detect';
    residual   boolean := p_class = 'forecast error';      -- ln(actual / forecast)
    x       float8;
    med     float8;
    sig     float8;
    z       float8;
    s       float8;
    n10     int;
    nfail   int;
    p       float8;
    mm      record;
    akind   text;
    window_size constant int := 20;     -- baseline runs kept
    min_base    constant int := 10;     -- runs before any duration alarm
    sigma_floor constant float8 := 0.05;    -- 5 %: timing jitter is no anomaly
    z_alarm     constant float8 := 3.5;     -- robust z of a single run
    cusum_k     constant float8 := 0.5;     -- CUSUM allowance (sigmas)
    cusum_h     constant float8 := 5;       -- CUSUM decision limit (sigmas)
BEGIN
    opened := 0;
    -- No row lock (one WAL record less per row): observe() holds the
    -- statistics' writer lock.
    SELECT * INTO st FROM railyard.duration_stats
     WHERE family = o.family AND task = o.task AND version = o.version AND agent_class = p_class;
    IF NOT FOUND THEN
        INSERT INTO railyard.duration_stats (family, task, version, agent_class, service, kind)
        VALUES (o.family, o.task, o.version, p_class, o.service, o.kind)
        RETURNING * INTO st;
    END IF;

    -- A cache hit is no duration: it only counts towards the cache rate
    -- (a running mean, then an EWMA with alpha 0.05).
    IF o.cached THEN
        UPDATE railyard.duration_stats
           SET cached = cached + 1,
               cache_rate = cache_rate + greatest(1.0 / (runs + cached + 1), 0.05) * (1 - cache_rate),
               recent_at = railyard.recent_at_after(recent_at, o.at),
               updated_at = now()
         WHERE family = o.family AND task = o.task AND version = o.version AND agent_class = p_class;
        RETURN;
    END IF;

    -- Failure rate: the last 10 outcomes against the long-run rate.
    p := greatest(coalesce(st.fail_rate, 0), 0.02);
    st.fails := railyard.array_tail(st.fails || o.failed, 20);
    n10 := least(cardinality(st.fails), 10);
    SELECT count(*) FILTER (WHERE f) INTO nfail FROM unnest(railyard.array_tail(st.fails, 10)) f;
    IF detect AND o.failed AND nfail >= 3 AND n10 >= 5
       AND nfail::float8 / n10 > greatest(3 * p, p + 3 * sqrt(p * (1 - p) / n10)) THEN
        IF railyard.anomaly_open('failure_rate', o.family, o.task, o.version, p_class, o.at, p,
                                 nfail::float8 / n10, (nfail::float8 / n10 - p) / sqrt(p * (1 - p) / n10),
                                 CASE WHEN nfail >= 5 THEN 'critical' ELSE 'warning' END,
                                 o.pipeline_id) THEN
            opened := opened + 1;
        END IF;
    ELSIF judge AND NOT o.failed AND nfail <= 1 THEN
        PERFORM railyard.anomaly_close(ARRAY['failure_rate'], o.family, o.task, o.version, p_class,
                                       'failures back to normal');
    END IF;
    st.fail_rate := coalesce(st.fail_rate + 0.02 * (o.failed::int - st.fail_rate), o.failed::int);

    -- Queue waits (pipeline level: the wait from submission to first claim).
    IF o.wait_s IS NOT NULL AND o.task = '' THEN
        x := ln(1 + greatest(o.wait_s, 0));
        IF cardinality(st.waits) >= 10 THEN
            mm := railyard.median_mad(st.waits);
            z := 0.6745 * (x - mm.median) / greatest(mm.mad, 0.1);
            IF detect AND z > 3.5 AND o.wait_s > 30 THEN
                IF railyard.anomaly_open('queue_wait', o.family, o.task, o.version, p_class, o.at,
                                         exp(mm.median) - 1, o.wait_s, z,
                                         CASE WHEN z > 7 THEN 'critical' ELSE 'warning' END,
                                         o.pipeline_id) THEN
                    opened := opened + 1;
                END IF;
            ELSIF judge AND z < 2 THEN
                PERFORM railyard.anomaly_close(ARRAY['queue_wait'], o.family, o.task, o.version,
                                               p_class, 'queue wait back to normal');
            END IF;
        END IF;
        st.waits := railyard.array_tail(st.waits || x, 30);
    END IF;

    IF NOT o.failed AND o.duration_s IS NOT NULL THEN
        -- an execution: no cache hit, and where it was placed
        st.cache_rate := st.cache_rate * (1 - greatest(1.0 / (st.runs + st.cached + 1), 0.05));
        IF p_class = '*' AND coalesce(o.agent_class, '') NOT IN ('', '*') THEN
            st.classes := railyard.array_tail(st.classes || o.agent_class, 20);
        END IF;
    END IF;
    IF o.failed OR o.duration_s IS NULL OR NOT p_timed THEN
        st.failures := st.failures + o.failed::int;
        UPDATE railyard.duration_stats SET failures = st.failures, fails = st.fails,
               fail_rate = st.fail_rate, waits = st.waits, cache_rate = st.cache_rate,
               classes = st.classes, updated_at = now()
         WHERE family = o.family AND task = o.task AND version = o.version AND agent_class = p_class;
        RETURN;
    END IF;

    x := ln(greatest(o.duration_s, 0.01)) - p_offset;
    IF NOT dur_judge THEN
        st.win := railyard.array_tail(st.win || x, window_size);
    ELSIF st.adapt_left IS NOT NULL THEN
        -- After a confirmed shift: collect the new level, then adopt it.
        st.pending := st.pending || x;
        st.adapt_left := st.adapt_left - 1;
        IF st.adapt_left <= 0 THEN
            st.win := railyard.array_tail(st.pending, window_size);
            st.pending := NULL;
            st.adapt_left := NULL;
            PERFORM railyard.anomaly_close(ARRAY['slower', 'faster'], o.family, o.task, o.version,
                                           p_class, 'baseline adapted to the new level');
        END IF;
    ELSIF cardinality(st.win) >= min_base THEN
        med := ln(st.median_s);
        sig := greatest(st.scale_log, sigma_floor);
        z := (x - med) / sig;           -- = 0.6745 (x - median) / MAD
        IF abs(z) > z_alarm THEN
            akind := CASE WHEN z > 0 THEN 'slow_run' ELSE 'fast_run' END;
            IF dur_detect AND railyard.anomaly_open(akind, o.family, o.task, o.version, p_class, o.at,
                                                st.median_s * exp(p_offset), o.duration_s, z,
                                                CASE WHEN abs(z) > 2 * z_alarm THEN 'critical' ELSE 'warning' END,
                                                o.pipeline_id) THEN
                opened := opened + 1;
            END IF;
        ELSE
            PERFORM railyard.anomaly_close(ARRAY['slow_run', 'fast_run'], o.family, o.task, o.version,
                                           p_class, 'next run within the usual range');
        END IF;
        -- CUSUM on standardised log durations, each step clipped so that a
        -- single outlier cannot confirm a shift on its own.
        s := greatest(least(z, 4), -4);
        st.cusum_hi := greatest(0, st.cusum_hi + s - cusum_k);
        st.cusum_lo := greatest(0, st.cusum_lo - s - cusum_k);
        -- an excursion begins with its first run more than a sigma off
        st.cusum_hi_since := CASE WHEN st.cusum_hi = 0 THEN NULL
                                  WHEN st.cusum_hi_since IS NULL AND s > 1 THEN o.at
                                  ELSE st.cusum_hi_since END;
        st.cusum_lo_since := CASE WHEN st.cusum_lo = 0 THEN NULL
                                  WHEN st.cusum_lo_since IS NULL AND s < -1 THEN o.at
                                  ELSE st.cusum_lo_since END;
        IF st.cusum_hi > cusum_h OR st.cusum_lo > cusum_h THEN
            akind := CASE WHEN st.cusum_hi > cusum_h THEN 'slower' ELSE 'faster' END;
            -- The new level: the two runs that confirmed it (a step clipped
            -- at 4 sigmas cannot pass the limit alone; older runs of the
            -- excursion may predate the change).
            st.pending := railyard.array_tail(st.win || x, 2);
            mm := railyard.median_mad(st.pending);
            IF dur_detect AND railyard.anomaly_open(akind, o.family, o.task, o.version, p_class,
                                                coalesce(CASE WHEN akind = 'slower' THEN st.cusum_hi_since
                                                              ELSE st.cusum_lo_since END, o.at),
                                                st.median_s * exp(p_offset),
                                                exp(mm.median + p_offset),
                                                greatest(st.cusum_hi, st.cusum_lo),
                                                CASE WHEN abs(mm.median - med) > ln(1.5)
                                                     THEN 'critical' ELSE 'warning' END,
                                                o.pipeline_id) THEN
                opened := opened + 1;
            END IF;
            st.cusum_hi := 0;
            st.cusum_lo := 0;
            IF residual THEN
                -- forecasts off: they are the ones to adapt, not this baseline
                st.pending := NULL;
                st.win := railyard.array_tail(st.win || x, window_size);
            ELSE
                -- The level has moved: forecasts follow it now, the window
                -- after three more runs confirm it.
                shift := mm.median - coalesce(st.ewma_log, med);
                st.ewma_log := mm.median;
                st.adapt_left := 3;
            END IF;
        ELSE
            st.win := railyard.array_tail(st.win || x, window_size);
            IF residual AND st.cusum_hi = 0 AND st.cusum_lo = 0 THEN
                PERFORM railyard.anomaly_close(ARRAY['slower', 'faster'], o.family, o.task, o.version,
                                               p_class, 'forecasts caught up');
            END IF;
        END IF;
    ELSE
        st.win := st.win || x;
    END IF;

    IF st.adapt_left IS NULL OR st.median_s IS NULL THEN
        mm := railyard.median_mad(st.win);
        st.median_s := exp(mm.median);
        st.mad_log := mm.mad;
        st.scale_log := railyard.robust_scale(st.win, mm.mad);
    END IF;
    sig := greatest(coalesce(st.scale_log, 0), 0.03);
    st.ewma_log := CASE WHEN st.ewma_log IS NULL THEN x
                        WHEN st.adapt_left IS NOT NULL THEN st.ewma_log + 0.25 * (x - st.ewma_log)
                        ELSE st.ewma_log + 0.25 * greatest(least(x - st.ewma_log, 2.5 * sig), -2.5 * sig) END;
    UPDATE railyard.duration_stats
       SET service = coalesce(o.service, service), kind = coalesce(o.kind, kind),
           runs = st.runs + 1, win = st.win, pending = st.pending, ewma_log = st.ewma_log,
           median_s = st.median_s, mad_log = st.mad_log, scale_log = st.scale_log,
           last_s = o.duration_s, last_at = o.at,
           recent_at = railyard.recent_at_after(recent_at, o.at),
           cusum_hi = st.cusum_hi, cusum_lo = st.cusum_lo, cusum_hi_since = st.cusum_hi_since,
           cusum_lo_since = st.cusum_lo_since, adapt_left = st.adapt_left, fails = st.fails,
           fail_rate = st.fail_rate, waits = st.waits, classes = st.classes,
           cache_rate = st.cache_rate,
           mix_offset = CASE WHEN p_class = '*' THEN mix_offset + 0.1 * (p_offset - mix_offset) ELSE 0 END,
           ref_class = coalesce(ref_class, CASE WHEN p_class = '*' AND o.agent_class NOT IN ('', '*')
                                                THEN o.agent_class END),
           updated_at = now()
     WHERE family = o.family AND task = o.task AND version = o.version AND agent_class = p_class;
END $$;
COMMENT ON FUNCTION railyard.observe_one(railyard.observation, text, text, float8, boolean) IS
    'feeds one run to one statistics row; mode detect (anomalies), events (failures and queue waits only), quiet (baseline adapts only) or stats (no detectors); the offset normalises the run to the reference class';

-- Feeds finished runs to the statistics.  A run with an agent class
-- updates its identity's row for that class (statistics only) and the
-- identity's '*' row, which judges every run at the speed of the
-- identity's reference class (the first class it ran on): the run's log
-- duration minus the class's offset, ln of the ratio of the two classes'
-- medians.  Until both classes have 3 runs the offset is unknown and the
-- '*' row counts the run without its duration.  When the '*' row confirms a shift, the class
-- rows move by the same amount: a regression is one change of the task,
-- not one per class.  Pipelines feed their family's row and its 'forecast
-- error' row: ln(run time / forecast p50), what their durations are judged
-- by.  One NOTIFY
-- railyard_anomaly when anything new was opened.  p_detect false: the
-- detectors only adapt (imported history).  One subject's runs apply in
-- finished_at order, or, p_in_order, in the array's order (the queue's:
-- the order they were recorded in, observe_pending).
DROP FUNCTION IF EXISTS railyard.observe(railyard.observation[], boolean);
CREATE OR REPLACE FUNCTION railyard.observe(p_obs railyard.observation[], p_detect boolean DEFAULT true,
                                            p_in_order boolean DEFAULT false)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    o      railyard.observation;
    r      record;
    star   record;
    m      record;
    off    float8;
    cur    float8;
    known  float8;
    skip   boolean;
    opened int := 0;
    mode   text := CASE WHEN p_detect THEN 'detect' ELSE 'quiet' END;
BEGIN
    -- The statistics' writer lock: one writer of duration_stats at a time
    -- (observe_pending takes it first; import_history waits for it here),
    -- so observe_one reads its rows without locking them.
    PERFORM pg_advisory_xact_lock(hashtext('railyard.observe_pending'));
    FOR o IN SELECT u.family, u.task, u.version, u.agent_class, u.service, u.kind, u.failed, u.cached,
                    u.duration_s, u.wait_s, u.at, u.pipeline_id, u.expected_s
               FROM unnest(p_obs) WITH ORDINALITY u
              ORDER BY u.family, u.task, u.version, CASE WHEN NOT p_in_order THEN u.at END, u.ordinality LOOP
        off := 0;
        skip := false;
        IF coalesce(o.agent_class, '') NOT IN ('', '*') AND NOT o.cached THEN
            star := NULL;
            SELECT s.ref_class, s.class_offsets INTO star FROM railyard.duration_stats s
             WHERE s.family = o.family AND s.task = o.task AND s.version = o.version AND s.agent_class = '*';
            IF star.ref_class IS NOT NULL AND star.ref_class <> o.agent_class
               AND NOT o.failed AND o.duration_s IS NOT NULL THEN
                -- the class's offset: set once both classes have 3 runs,
                -- then it follows their medians slowly (a regression moves
                -- every class alike and must not vanish into it)
                SELECT min(s.median_s) FILTER (WHERE s.agent_class = o.agent_class) AS own_s,
                       min(s.runs) FILTER (WHERE s.agent_class = o.agent_class) AS own_n,
                       min(s.median_s) FILTER (WHERE s.agent_class = star.ref_class) AS ref_s,
                       min(s.runs) FILTER (WHERE s.agent_class = star.ref_class) AS ref_n
                  INTO m FROM railyard.duration_stats s
                 WHERE s.family = o.family AND s.task = o.task AND s.version = o.version
                   AND s.agent_class IN (o.agent_class, star.ref_class);
                cur := CASE WHEN m.own_n >= 3 AND m.ref_n >= 3 AND m.own_s > 0 AND m.ref_s > 0
                            THEN ln(m.own_s / m.ref_s) END;
                known := (star.class_offsets ->> o.agent_class)::float8;
                off := coalesce(known, cur);
                skip := off IS NULL;
                IF cur IS NOT NULL THEN
                    -- the first time, the class's earlier runs join the
                    -- '*' window too, at the reference speed
                    UPDATE railyard.duration_stats s
                       SET class_offsets = s.class_offsets
                                           || jsonb_build_object(o.agent_class, coalesce(known + 0.05 * (cur - known), cur)),
                           win = CASE WHEN known IS NOT NULL OR s.adapt_left IS NOT NULL THEN s.win
                                      ELSE railyard.array_tail(s.win || ARRAY(
                                               SELECT w - cur FROM railyard.duration_stats c, unnest(c.win) w
                                                WHERE c.family = o.family AND c.task = o.task
                                                  AND c.version = o.version AND c.agent_class = o.agent_class), 20) END
                     WHERE s.family = o.family AND s.task = o.task AND s.version = o.version
                       AND s.agent_class = '*';
                END IF;
            END IF;
            r := railyard.observe_one(o, o.agent_class, 'stats');
        END IF;
        IF o.task = '' THEN
            -- a pipeline run: its family's statistics, and how far it was
            -- from its forecast at submission is what the duration
            -- detectors judge (agent classes, cache hits and load are in
            -- the forecast, so they raise no alarm)
            r := railyard.observe_one(o, '*', CASE WHEN p_detect THEN 'events' ELSE 'stats' END);
            opened := opened + r.opened;
            CONTINUE WHEN o.failed OR o.duration_s IS NULL OR coalesce(o.expected_s, 0) <= 0;
            o.wait_s := NULL;
            r := railyard.observe_one(o, 'forecast error', mode, ln(o.expected_s));
            opened := opened + r.opened;
            CONTINUE;
        END IF;
        r := railyard.observe_one(o, '*', mode, coalesce(off, 0), NOT skip);
        opened := opened + r.opened;
        IF r.shift IS NOT NULL AND o.task <> '' THEN
            UPDATE railyard.duration_stats s
               SET ewma_log = s.ewma_log + r.shift, median_s = s.median_s * exp(r.shift),
                   win = ARRAY(SELECT w + r.shift FROM unnest(s.win) w), cusum_hi = 0, cusum_lo = 0,
                   updated_at = now()
             WHERE s.family = o.family AND s.task = o.task AND s.version = o.version
               AND s.agent_class NOT IN ('*', '');
        END IF;
    END LOOP;
    IF opened > 0 THEN
        PERFORM pg_notify('railyard_anomaly', opened::text);
    END IF;
    RETURN opened;
END $$;
COMMENT ON FUNCTION railyard.observe(railyard.observation[], boolean, boolean) IS
    'feeds finished runs to duration_stats and (p_detect) the anomaly detectors, one subject''s in finished_at order (p_in_order: in array order); NOTIFY railyard_anomaly on new anomalies';

-- Applies the observations the history triggers queued
-- (observation_pending), oldest first, in batches of up to 500: each
-- batch is one observe() call, one subject's runs in the order they were
-- recorded (what calling observe() in each completing transaction did).
-- One caller at a time (an advisory lock): a second caller waits for it
-- (p_wait), or returns 0 at once (the workers: the first one drains).  At
-- most p_limit observations (NULL: all), no new batch after p_max_ms,
-- whose batches are then sized to end near it (NULL: no limit).  A batch
-- that fails is applied one observation at a time, and one that still
-- fails is dropped with a WARNING, so one bad row cannot stall the
-- statistics.  Returns how many it took from the queue
-- (applied or dropped).  The
-- workers call it with their submission forecasts (first, so that those
-- see fresh statistics); call it before reading duration_stats,
-- task_duration_stats or anomalies right after runs finished.
CREATE OR REPLACE FUNCTION railyard.observe_pending(p_limit int DEFAULT NULL, p_max_ms int DEFAULT NULL,
                                                    p_wait boolean DEFAULT true)
RETURNS int LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    -- With a time budget the first batch is small and the next ones are
    -- sized by the time per observation measured so far, so the call
    -- ends near p_max_ms (a worker's connection waits for it) instead of
    -- up to a whole batch of 500 after it.
    batch int := CASE WHEN p_max_ms IS NULL THEN 500 ELSE 20 END;
    t0    timestamptz := clock_timestamp();
    tb    timestamptz;
    per   float8;
    done  int := 0;
    got   int;
    obs   railyard.observation[];
    o     railyard.observation;
BEGIN
    IF p_limit IS NOT NULL AND p_limit < 1 THEN
        RAISE EXCEPTION 'cannot apply pending observations: limit % is not positive', p_limit
            USING ERRCODE = '22023';
    END IF;
    IF p_wait THEN
        PERFORM pg_advisory_xact_lock(hashtext('railyard.observe_pending'));
    ELSIF NOT pg_try_advisory_xact_lock(hashtext('railyard.observe_pending')) THEN
        RETURN 0;
    END IF;
    LOOP
        EXIT WHEN p_limit IS NOT NULL AND done >= p_limit;
        -- The first batch goes whatever the clock says: a call that found
        -- its budget spent on the lock (or on a new session's first plans)
        -- would otherwise apply nothing, and a worker's queue not move.
        EXIT WHEN p_max_ms IS NOT NULL AND done > 0
                  AND clock_timestamp() > t0 + make_interval(secs => p_max_ms / 1000.0);
        tb := clock_timestamp();
        WITH d AS (
            DELETE FROM railyard.observation_pending q
             WHERE q.id IN (SELECT x.id FROM railyard.observation_pending x ORDER BY x.id
                             LIMIT least(batch, coalesce(p_limit - done, batch)))
            RETURNING q.id, q.o
        )
        SELECT array_agg(d.o ORDER BY d.id), count(*) INTO obs, got FROM d;
        EXIT WHEN got = 0;
        BEGIN
            PERFORM railyard.observe(obs, true, true);
        EXCEPTION WHEN OTHERS THEN
            FOREACH o IN ARRAY obs LOOP
                BEGIN
                    PERFORM railyard.observe(ARRAY[o], true, true);
                EXCEPTION WHEN OTHERS THEN
                    RAISE WARNING 'cannot apply the observation of % % v% finished at %: %',
                        o.family, coalesce(nullif(o.task, ''), '(pipeline)'), o.version, o.at, SQLERRM;
                END;
            END LOOP;
        END;
        done := done + got;
        IF p_max_ms IS NOT NULL THEN
            per := greatest(1000 * extract(epoch FROM clock_timestamp() - tb) / got, 0.001);
            batch := least(500, greatest(1, floor((p_max_ms - 1000 * extract(epoch FROM clock_timestamp() - t0)) / per)::int));
        END IF;
    END LOOP;
    RETURN done;
END $$;
COMMENT ON FUNCTION railyard.observe_pending(int, int, boolean) IS
    'applies the queued observations (observation_pending) to duration_stats and the anomaly detectors, oldest first: at most p_limit (NULL: all), in batches of 500, or with p_max_ms in batches sized to end near it (the first, of 20, whatever the time); p_wait false: 0 at once when another caller is at it; returns how many it took from the queue';

-- Every attempt that ran becomes history: its identity, agent class,
-- duration and queue wait.  cached, skipped, lost and failed-before-start
-- attempts are no durations and are left out.  The statistics are not
-- updated here, in the completing transaction: the runs (and cache hits)
-- are queued in observation_pending for observe_pending().
CREATE OR REPLACE FUNCTION railyard.history_capture_attempts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH ins AS (
        INSERT INTO railyard.run_history
            (family, task, version, service, kind, agent_class, pipeline_id, task_id, attempt,
             outcome, queued_at, started_at, finished_at, duration_s, wait_s)
        SELECT railyard.pipeline_family(p.name, p.family), coalesce(t.forecast_key, t.name),
               t.version, t.service, t.kind,
               coalesce(railyard.agent_class(a.os, a.arch, a.cores, a.labels), ''),
               n.pipeline_id, n.task_id, n.attempt, n.outcome, t.ready_at, n.started_at,
               n.finished_at,
               greatest(coalesce(n.duration_s, extract(epoch FROM n.finished_at - n.started_at)), 0),
               greatest(extract(epoch FROM n.claimed_at - t.ready_at), 0)
          FROM new_rows n
          JOIN railyard.tasks t ON t.id = n.task_id
          JOIN railyard.pipelines p ON p.id = t.pipeline_id
          LEFT JOIN railyard.agents a ON a.id = n.agent_id
         WHERE n.outcome IN ('succeeded', 'failed') AND n.started_at IS NOT NULL
        RETURNING *
    )
    INSERT INTO railyard.observation_pending (o)
    SELECT x.o FROM (
        SELECT ROW(family, task, version, agent_class, service, kind, outcome = 'failed', false,
                   CASE WHEN outcome = 'succeeded' THEN duration_s END, wait_s,
                   finished_at, pipeline_id, NULL)::railyard.observation
          FROM ins
        UNION ALL
        -- cache hits: no duration, but how often a task is one shapes its forecast
        SELECT ROW(railyard.pipeline_family(p.name, p.family), coalesce(t.forecast_key, t.name),
                   t.version, '*', t.service, t.kind, false, true, NULL, NULL, n.finished_at,
                   n.pipeline_id, NULL)::railyard.observation
          FROM new_rows n
          JOIN railyard.tasks t ON t.id = n.task_id
          JOIN railyard.pipelines p ON p.id = t.pipeline_id
         WHERE n.outcome = 'cached') x(o)
     ORDER BY (x.o).at;     -- one completion's runs queue in finished_at order
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.history_capture_attempts() IS
    'trigger: records attempts that ran into run_history and queues them (and cache hits) for the statistics (observation_pending)';

CREATE OR REPLACE TRIGGER history_capture AFTER INSERT ON railyard.task_attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION railyard.history_capture_attempts();

-- Finished pipelines become family-level history: the run time from the
-- first task's start to the last task's end (as the attempts recorded
-- them), the queue wait from submission to the first claim.  A row trigger
-- with a WHEN clause: the many other updates of pipelines (validation,
-- every first claim) do not even call it.  Its statistics wait in
-- observation_pending, like the tasks'.
CREATE OR REPLACE FUNCTION railyard.history_capture_pipelines() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH ins AS (
        INSERT INTO railyard.pipeline_history
            (family, pipeline_id, outcome, created_at, started_at, finished_at, duration_s, queue_wait_s)
        SELECT railyard.pipeline_family(NEW.name, NEW.family), NEW.id, NEW.state::text, NEW.created_at,
               coalesce(r.first_start, NEW.started_at), coalesce(r.last_end, NEW.finished_at),
               greatest(extract(epoch FROM coalesce(r.last_end, NEW.finished_at)
                                           - coalesce(r.first_start, NEW.started_at)), 0),
               greatest(extract(epoch FROM NEW.started_at - NEW.created_at), 0)
          FROM (-- the run time as the attempts recorded it: first process
                -- start to last end
                SELECT min(h.started_at) AS first_start, max(h.finished_at) AS last_end
                  FROM railyard.tasks t
                  JOIN railyard.task_attempts h ON h.task_id = t.id
                 WHERE t.pipeline_id = NEW.id AND h.started_at IS NOT NULL) r
         WHERE NEW.started_at IS NOT NULL AND NEW.finished_at IS NOT NULL
        ON CONFLICT (pipeline_id) DO NOTHING
        RETURNING *
    )
    INSERT INTO railyard.observation_pending (o)
    SELECT ROW(ins.family, '', '', '*', NULL, NULL, ins.outcome = 'failed', false,
               CASE WHEN ins.outcome = 'succeeded' THEN ins.duration_s END, ins.queue_wait_s,
               ins.finished_at, ins.pipeline_id,
               (SELECT f.p50_raw_s FROM railyard.pipeline_forecasts f
                 WHERE f.pipeline_id = ins.pipeline_id AND f.kind = 'submit'
                 ORDER BY f.id LIMIT 1))::railyard.observation
      FROM ins;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.history_capture_pipelines() IS
    'trigger: records a finished pipeline into pipeline_history and queues it for the family statistics (observation_pending)';

CREATE OR REPLACE TRIGGER history_capture_pipelines AFTER UPDATE OF state ON railyard.pipelines
    FOR EACH ROW
    WHEN (NEW.state IN ('succeeded', 'failed') AND OLD.state IN ('queued', 'running'))
    EXECUTE FUNCTION railyard.history_capture_pipelines();

-- Duration statistics for people: per identity and agent class ('*' =
-- every class) and per family (task = '': whole pipeline runs).  The
-- window is the recent runs at the current level (at most 20).  A '*' row
-- keeps its runs at the speed of its reference class; shown here scaled to
-- the typical mix of classes the task runs on.
CREATE OR REPLACE VIEW railyard.task_duration_stats AS
SELECT s.family, s.task, s.version, s.agent_class, s.service, s.kind,
       s.runs, s.failures,
       round((s.median_s * exp(s.mix_offset))::numeric, 3) AS median_s,
       round((s.median_s * exp(s.mix_offset) * (exp(s.mad_log) - 1))::numeric, 3) AS mad_s,
       round(exp(q.p10 + s.mix_offset)::numeric, 3) AS p10_s,
       round(exp(q.p90 + s.mix_offset)::numeric, 3) AS p90_s,
       round(exp(s.ewma_log + s.mix_offset)::numeric, 3) AS ewma_s,
       round(s.last_s::numeric, 3) AS last_s,
       s.last_at,
       round((100 * (exp(q.slope) - 1))::numeric, 2) AS trend_pct_per_run,
       cardinality(s.win) AS window_runs,
       s.adapt_left IS NOT NULL AS adapting,
       round((100 * s.fail_rate)::numeric, 1) AS failure_pct,
       round((100 * s.cache_rate)::numeric, 1) AS cache_hit_pct,
       s.ref_class AS reference_class
  FROM railyard.duration_stats s
 CROSS JOIN LATERAL (
        SELECT percentile_cont(0.1) WITHIN GROUP (ORDER BY v) AS p10,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY v) AS p90,
               regr_slope(v, i) AS slope
          FROM unnest(s.win) WITH ORDINALITY AS w(v, i)) q
 WHERE (s.runs > 0 OR s.cached > 0) AND s.agent_class <> 'forecast error';
COMMENT ON VIEW railyard.task_duration_stats IS
    'duration statistics per task identity (family, task, version) x agent class (''*'' = all) and per family (task = '''')';
COMMENT ON COLUMN railyard.task_duration_stats.mad_s IS 'median absolute deviation, in seconds above the median';
COMMENT ON COLUMN railyard.task_duration_stats.ewma_s IS 'robust EWMA: what the next run is forecast to take';
COMMENT ON COLUMN railyard.task_duration_stats.trend_pct_per_run IS 'least-squares trend over the window, % per run';
COMMENT ON COLUMN railyard.task_duration_stats.adapting IS 'a shift was confirmed; the baseline is moving to the new level';
COMMENT ON COLUMN railyard.task_duration_stats.cache_hit_pct IS 'share of runs answered from the cache (recent)';
COMMENT ON COLUMN railyard.task_duration_stats.reference_class IS
    '''*'' rows: the class whose speed runs are judged at (a run elsewhere is scaled by the two classes'' medians)';

-- `railyard history import`: past runs from another CI system, one array
-- element per run (times in epoch seconds; '' for an unknown service, kind
-- or run).  One statement, so a file is stored whole or not at all.  Runs
-- that are no durations (cancelled, skipped, cached) only shape their
-- pipeline run.  The detectors do not judge the past: imported runs build
-- baselines but open no anomaly.  Returns what was stored.
CREATE OR REPLACE FUNCTION railyard.import_history(
    p_family text[], p_task text[], p_version text[], p_service text[], p_kind text[],
    p_class text[], p_run text[], p_outcome text[], p_queued float8[], p_started float8[],
    p_finished float8[], OUT runs int, OUT pipeline_runs int)
LANGUAGE plpgsql AS $$
DECLARE
    obs railyard.observation[];
BEGIN
    WITH src AS (
        SELECT * FROM unnest(p_family, p_task, p_version, p_service, p_kind, p_class, p_run,
                             p_outcome, p_queued, p_started, p_finished)
               AS u(family, task, version, service, kind, agent_class, run_ref, outcome,
                    queued, started, finished)
    ), ins AS (
        INSERT INTO railyard.run_history AS h
            (source, family, task, version, service, kind, agent_class, run_ref, outcome,
             queued_at, started_at, finished_at, duration_s, wait_s)
        SELECT 'import', family, task, version, nullif(service, ''), nullif(kind, ''), agent_class,
               nullif(run_ref, ''), outcome, to_timestamp(queued), to_timestamp(started),
               to_timestamp(finished), finished - started, started - queued
          FROM src WHERE outcome IN ('succeeded', 'failed')
        ON CONFLICT DO NOTHING
        RETURNING h.*
    )
    SELECT count(*), array_agg(ROW(family, task, version, agent_class, service, kind,
                                   outcome = 'failed', false,
                                   CASE WHEN outcome = 'succeeded' THEN duration_s END, NULL,
                                   finished_at, NULL, NULL)::railyard.observation ORDER BY finished_at)
      INTO runs, obs FROM ins;
    IF obs IS NOT NULL THEN
        PERFORM railyard.observe(obs, false);
    END IF;

    WITH src AS (
        SELECT * FROM unnest(p_family, p_run, p_outcome, p_queued, p_started, p_finished)
               AS u(family, run_ref, outcome, queued, started, finished)
         WHERE run_ref <> ''
    ), ins AS (
        INSERT INTO railyard.pipeline_history AS h
            (source, family, run_ref, outcome, started_at, finished_at, duration_s, queue_wait_s)
        SELECT 'import', family, run_ref,
               CASE WHEN bool_or(outcome IN ('failed', 'cancelled')) THEN 'failed' ELSE 'succeeded' END,
               to_timestamp(min(started)), to_timestamp(max(finished)), max(finished) - min(started),
               min(started) - min(queued)
          FROM src GROUP BY family, run_ref
        ON CONFLICT DO NOTHING
        RETURNING h.*
    )
    SELECT count(*), array_agg(ROW(family, '', '', '*', NULL, NULL, outcome = 'failed', false,
                                   CASE WHEN outcome = 'succeeded' THEN duration_s END,
                                   queue_wait_s, finished_at, NULL, NULL)::railyard.observation
                               ORDER BY finished_at)
      INTO pipeline_runs, obs FROM ins;
    IF obs IS NOT NULL THEN
        PERFORM railyard.observe(obs, false);
    END IF;
END $$;
COMMENT ON FUNCTION railyard.import_history(text[], text[], text[], text[], text[], text[], text[], text[], float8[], float8[], float8[]) IS
    'stores past runs (railyard history import) in run_history and pipeline_history and builds their statistics';
