-- 0004_forecast: run history, duration statistics, forecasts and anomalies
-- (docs/forecasting.md).  Functions, triggers and views: sql/5x_*.sql.

-- Identity overrides.  A task's identity across pipelines is (family, task,
-- version): family is the pipeline's name without its "@revision" suffix
-- unless pipelines.family says otherwise; task is the task's name unless
-- tasks.forecast_key says otherwise.
ALTER TABLE railyard.pipelines
    ADD COLUMN family text,
    ADD CONSTRAINT pipeline_family_valid CHECK (family <> '' AND length(family) <= 200);
COMMENT ON COLUMN railyard.pipelines.family IS
    'forecast family; NULL: the name without its @revision suffix (shop@9f3c2e1 -> shop)';

ALTER TABLE railyard.tasks
    ADD COLUMN forecast_key text,
    ADD COLUMN estimate_s double precision,
    ADD CONSTRAINT task_forecast_key_valid CHECK (forecast_key <> '' AND length(forecast_key) <= 200),
    ADD CONSTRAINT task_estimate_s_range CHECK (estimate_s > 0 AND estimate_s <= 604800);
COMMENT ON COLUMN railyard.tasks.forecast_key IS
    'forecast identity of the task within its family; NULL: the task name';
COMMENT ON COLUMN railyard.tasks.estimate_s IS
    'the submitter''s duration estimate, used while the task has no history of its own';

-- One row per real execution of a task (succeeded or failed after its
-- process started), from railyard's own attempts or from `history import`.
-- cached, skipped, lost and failed-before-start attempts are not here.
CREATE TABLE railyard.run_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source          text NOT NULL DEFAULT 'railyard',
    family          text NOT NULL,
    task            text NOT NULL,
    version         text NOT NULL DEFAULT '1',
    service         text,
    kind            text,
    agent_class     text NOT NULL DEFAULT '',
    pipeline_id     bigint,
    task_id         bigint,
    attempt         integer,
    run_ref         text,
    outcome         text NOT NULL,
    queued_at       timestamptz,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    duration_s      double precision NOT NULL,
    wait_s          double precision,
    CONSTRAINT run_history_outcome CHECK (outcome IN ('succeeded', 'failed')),
    CONSTRAINT run_history_source CHECK (source IN ('railyard', 'import')),
    CONSTRAINT run_history_duration CHECK (duration_s >= 0)
);
CREATE INDEX run_history_identity ON railyard.run_history (family, task, version, finished_at);
CREATE INDEX run_history_finished ON railyard.run_history (finished_at);
COMMENT ON TABLE railyard.run_history IS
    'task executions that have a duration (succeeded or failed after start), from railyard or history import';
COMMENT ON COLUMN railyard.run_history.source IS 'railyard (an attempt) or import (railyard history import)';
COMMENT ON COLUMN railyard.run_history.agent_class IS
    'os/arch/cores/labels of the agent that ran it, e.g. linux/x86_64/8c/docker';
COMMENT ON COLUMN railyard.run_history.run_ref IS 'imported: the run identifier from the file';
COMMENT ON COLUMN railyard.run_history.wait_s IS 'seconds from ready (queued) to claimed';

-- One row per finished pipeline run (railyard's own or imported).
CREATE TABLE railyard.pipeline_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source          text NOT NULL DEFAULT 'railyard',
    family          text NOT NULL,
    pipeline_id     bigint UNIQUE,
    run_ref         text,
    outcome         text NOT NULL,
    created_at      timestamptz,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    duration_s      double precision NOT NULL,
    queue_wait_s    double precision,
    CONSTRAINT pipeline_history_source CHECK (source IN ('railyard', 'import'))
);
CREATE INDEX pipeline_history_family ON railyard.pipeline_history (family, finished_at);
COMMENT ON TABLE railyard.pipeline_history IS
    'finished pipeline runs: duration from first claim to end, queue wait from submission to first claim';

-- Duration statistics per identity and agent class ('*': every class), and
-- per family (task = '': whole pipelines), kept up to date as runs finish.
-- The window holds the log durations of the recent runs at the current
-- level: after a confirmed shift it is replaced by the runs since.
CREATE TABLE railyard.duration_stats (
    family          text NOT NULL,
    task            text NOT NULL,
    version         text NOT NULL,
    agent_class     text NOT NULL,
    service         text,
    kind            text,
    runs            bigint NOT NULL DEFAULT 0,
    failures        bigint NOT NULL DEFAULT 0,
    win             double precision[] NOT NULL DEFAULT '{}',
    pending         double precision[],
    ewma_log        double precision,
    median_s        double precision,
    mad_log         double precision,
    scale_log       double precision,
    last_s          double precision,
    last_at         timestamptz,
    cusum_hi        double precision NOT NULL DEFAULT 0,
    cusum_lo        double precision NOT NULL DEFAULT 0,
    cusum_hi_since  timestamptz,
    cusum_lo_since  timestamptz,
    adapt_left      integer,
    fails           boolean[] NOT NULL DEFAULT '{}',
    fail_rate       double precision,
    waits           double precision[] NOT NULL DEFAULT '{}',
    classes         text[] NOT NULL DEFAULT '{}',
    cached          bigint NOT NULL DEFAULT 0,
    cache_rate      double precision NOT NULL DEFAULT 0,
    mix_offset      double precision NOT NULL DEFAULT 0,
    ref_class       text,
    class_offsets   jsonb NOT NULL DEFAULT '{}',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (family, task, version, agent_class)
);
CREATE INDEX duration_stats_service_kind ON railyard.duration_stats (service, kind) WHERE agent_class = '*';
CREATE INDEX duration_stats_kind ON railyard.duration_stats (kind) WHERE agent_class = '*';
COMMENT ON TABLE railyard.duration_stats IS
    'running duration statistics per task identity x agent class (''*'' = all) and per family (task = ''''; agent_class ''forecast error'': ln(run time / forecast), what the family''s duration detectors judge); read through railyard.task_duration_stats';
COMMENT ON COLUMN railyard.duration_stats.win IS
    'ln(duration) of the recent runs at the current level, oldest first (at most 30)';
COMMENT ON COLUMN railyard.duration_stats.pending IS
    'after a confirmed shift: ln(duration) of the runs since, until they replace the window';
COMMENT ON COLUMN railyard.duration_stats.ewma_log IS
    'robust EWMA of ln(duration) (alpha 0.25, steps clipped to 2.5 sigma): the forecast centre';
COMMENT ON COLUMN railyard.duration_stats.mad_log IS 'median absolute deviation of the window (log scale)';
COMMENT ON COLUMN railyard.duration_stats.scale_log IS
    'robust sigma of the window (log scale): 1.4826 MAD, or the SD of the window winsorised at its 5th and 95th percentiles if larger (a MAD of few runs often falls short)';
COMMENT ON COLUMN railyard.duration_stats.cusum_hi IS 'upper CUSUM of standardised log durations (k = 0.5)';
COMMENT ON COLUMN railyard.duration_stats.cusum_lo IS 'lower CUSUM of standardised log durations (k = 0.5)';
COMMENT ON COLUMN railyard.duration_stats.cusum_hi_since IS 'the first run over a sigma slow since the upper CUSUM left 0 (where a slowdown began)';
COMMENT ON COLUMN railyard.duration_stats.cusum_lo_since IS 'the first run over a sigma fast since the lower CUSUM left 0 (where a speed-up began)';
COMMENT ON COLUMN railyard.duration_stats.adapt_left IS
    'after a confirmed shift: runs still to see before the new level becomes the baseline';
COMMENT ON COLUMN railyard.duration_stats.fails IS 'outcomes of the last 20 runs, true = failed';
COMMENT ON COLUMN railyard.duration_stats.fail_rate IS 'long-run failure rate (EWMA, alpha 0.02)';
COMMENT ON COLUMN railyard.duration_stats.waits IS 'ln(1 + queue wait seconds) of the last 30 runs';
COMMENT ON COLUMN railyard.duration_stats.classes IS
    'all-class rows: the agent classes of the last 20 runs, oldest first: where the task is placed';
COMMENT ON COLUMN railyard.duration_stats.cached IS 'runs answered from the cache (no duration)';
COMMENT ON COLUMN railyard.duration_stats.cache_rate IS
    'share of runs answered from the cache (a running mean, then EWMA alpha 0.05): the forecast draws a cache hit that often';
COMMENT ON COLUMN railyard.duration_stats.ref_class IS
    '''*'' rows: the reference class (the first the task ran on) whose speed the window, median and EWMA are at';
COMMENT ON COLUMN railyard.duration_stats.class_offsets IS
    '''*'' rows: per other class, ln(its median / the reference class''s median), set once both have 3 runs, then following them slowly';
COMMENT ON COLUMN railyard.duration_stats.mix_offset IS
    '''*'' rows: ln(typical / reference) over the classes its runs were placed on (EWMA): centre = exp(ewma_log + mix_offset)';

-- Every forecast made: at submission (kind submit) and on request (kind
-- request, only when asked to record).
CREATE TABLE railyard.pipeline_forecasts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pipeline_id     bigint NOT NULL REFERENCES railyard.pipelines (id) ON DELETE CASCADE,
    family          text NOT NULL,
    kind            text NOT NULL DEFAULT 'submit',
    made_at         timestamptz NOT NULL DEFAULT now(),
    method          text NOT NULL,
    samples         integer NOT NULL,
    tasks           integer NOT NULL,
    p10_s           double precision NOT NULL,
    p50_s           double precision NOT NULL,
    p90_s           double precision NOT NULL,
    p50_raw_s       double precision NOT NULL,
    spread_raw      double precision,
    queue_wait_s    double precision NOT NULL,
    baseline_s      double precision,
    critical_path   text[] NOT NULL,
    uncertainty     jsonb NOT NULL DEFAULT '[]',
    cold_tasks      integer NOT NULL DEFAULT 0,
    CONSTRAINT pipeline_forecast_kind CHECK (kind IN ('submit', 'request'))
);
CREATE INDEX pipeline_forecasts_pipeline ON railyard.pipeline_forecasts (pipeline_id, id);
CREATE INDEX pipeline_forecasts_family ON railyard.pipeline_forecasts (family, made_at);
COMMENT ON TABLE railyard.pipeline_forecasts IS
    'every pipeline forecast made (one at submission, kind submit), judged by railyard.forecast_accuracy';
COMMENT ON COLUMN railyard.pipeline_forecasts.p50_s IS 'forecast run time (first claim to end), median';
COMMENT ON COLUMN railyard.pipeline_forecasts.p50_raw_s IS
    'median of the Monte Carlo before calibration (calibration stretches the interval around it, so it equals p50_s)';
COMMENT ON COLUMN railyard.pipeline_forecasts.spread_raw IS
    'spread of the Monte Carlo before calibration: ln(p90 / p10) of the time left / 2.5631 (a sigma)';
COMMENT ON COLUMN railyard.pipeline_forecasts.baseline_s IS
    'naive baseline: mean run time of the family''s last 3 succeeded runs (Jenkins); NULL without history';
COMMENT ON COLUMN railyard.pipeline_forecasts.cold_tasks IS 'tasks without history of their own';

-- Anomalies: opened by the detectors as runs finish, closed when they no
-- longer hold (or the baseline adapted to a deliberate change).
CREATE TABLE railyard.anomaly_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL,
    family          text NOT NULL,
    task            text NOT NULL,
    version         text NOT NULL,
    agent_class     text NOT NULL,
    state           text NOT NULL DEFAULT 'open',
    since           timestamptz NOT NULL,
    detected_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    closed_at       timestamptz,
    closed_reason   text,
    expected        double precision,
    observed        double precision,
    score           double precision NOT NULL,
    severity        text NOT NULL,
    runs            integer NOT NULL DEFAULT 1,
    pipeline_id     bigint,
    CONSTRAINT anomaly_kind CHECK (kind IN ('slow_run', 'fast_run', 'slower', 'faster',
                                            'failure_rate', 'queue_wait')),
    CONSTRAINT anomaly_state CHECK (state IN ('open', 'closed')),
    CONSTRAINT anomaly_severity CHECK (severity IN ('warning', 'critical'))
);
CREATE UNIQUE INDEX anomaly_log_open ON railyard.anomaly_log (family, task, version, agent_class, kind)
    WHERE state = 'open';
CREATE INDEX anomaly_log_detected ON railyard.anomaly_log (detected_at);
COMMENT ON TABLE railyard.anomaly_log IS
    'every anomaly detected, open or closed; railyard.anomalies reads it';
COMMENT ON COLUMN railyard.anomaly_log.kind IS
    'slow_run/fast_run (robust z > 3.5), slower/faster (CUSUM shift), failure_rate, queue_wait';
COMMENT ON COLUMN railyard.anomaly_log.expected IS 'seconds (failure_rate: rate 0-1) the baseline expected';
COMMENT ON COLUMN railyard.anomaly_log.observed IS 'seconds (failure_rate: rate 0-1) observed';
COMMENT ON COLUMN railyard.anomaly_log.score IS 'robust z-score, CUSUM value, or binomial z of the failures';

-- Forecasts of farm utilisation, recorded so that they can be judged.
CREATE TABLE railyard.utilization_forecasts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    made_at         timestamptz NOT NULL DEFAULT now(),
    label           text NOT NULL,
    hour_start      timestamptz NOT NULL,
    capacity_slots  integer NOT NULL,
    demand_slot_s   double precision NOT NULL,
    utilization     double precision NOT NULL,
    queue_wait_s    double precision NOT NULL
);
CREATE INDEX utilization_forecasts_hour ON railyard.utilization_forecasts (hour_start, label);
COMMENT ON TABLE railyard.utilization_forecasts IS
    'recorded utilisation forecasts (railyard.record_utilization_forecast), judged by railyard.utilization_accuracy';

-- One finished run as the detectors and statistics see it.
CREATE TYPE railyard.observation AS (
    family          text,
    task            text,
    version         text,
    agent_class     text,
    service         text,
    kind            text,
    failed          boolean,
    cached          boolean,
    duration_s      double precision,
    wait_s          double precision,
    at              timestamptz,
    pipeline_id     bigint,
    expected_s      double precision
);
COMMENT ON TYPE railyard.observation IS
    'one finished run fed to railyard.observe(); cached: answered from the cache (no duration); expected_s: a pipeline run''s forecast at submission';

-- Pipelines whose forecast at submission is still to be recorded: COMMIT
-- only queues them, railyard.record_pending_forecasts() (called by the
-- workers' heartbeat) computes and stores the forecasts.
CREATE TABLE railyard.forecast_pending (
    pipeline_id     bigint PRIMARY KEY REFERENCES railyard.pipelines (id) ON DELETE CASCADE,
    queued_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE railyard.forecast_pending IS
    'pipelines submitted whose forecast at submission railyard.record_pending_forecasts() has not recorded yet';

-- Standard normal quantiles at (k - 0.5) / 1024, k = 1..1024: the Monte
-- Carlo draws from this table (filled by sql/51_forecast.sql).
CREATE TABLE railyard.normal_quantiles (
    id              integer PRIMARY KEY CHECK (id = 1),
    z               double precision[] NOT NULL
);
COMMENT ON TABLE railyard.normal_quantiles IS
    'one row: standard normal quantiles at (k - 0.5)/1024, the Monte Carlo''s draws';

-- Importing the same file twice stores it once.
CREATE UNIQUE INDEX run_history_imported ON railyard.run_history
    (family, task, version, agent_class, started_at, finished_at) WHERE source = 'import';
CREATE UNIQUE INDEX pipeline_history_imported ON railyard.pipeline_history (family, run_ref)
    WHERE source = 'import';
