-- Forecasting, part 3: anomalies for people (rules: docs/forecasting.md,
-- detectors: railyard.observe_one in sql/50_forecast.sql).

-- Every anomaly, open or closed, with what it is in words.
CREATE OR REPLACE VIEW railyard.anomalies AS
SELECT a.id, a.kind, a.state, a.severity,
       CASE WHEN a.task = '' THEN 'pipeline ' || a.family
            ELSE a.task || ' (' || a.family || CASE WHEN a.version <> '1' THEN ' v' || a.version ELSE '' END
                 || ')' END
       || CASE WHEN a.agent_class = 'forecast error' THEN ' against its forecast'
               WHEN a.agent_class NOT IN ('*', '') THEN ' on ' || a.agent_class ELSE '' END
       || CASE a.kind
            WHEN 'slow_run' THEN format(': one run took %ss, %s× the usual %ss',
                                        round(a.observed::numeric, 1),
                                        round((a.observed / nullif(a.expected, 0))::numeric, 2),
                                        round(a.expected::numeric, 1))
            WHEN 'fast_run' THEN format(': one run took %ss, %s× the usual %ss',
                                        round(a.observed::numeric, 1),
                                        round((a.observed / nullif(a.expected, 0))::numeric, 2),
                                        round(a.expected::numeric, 1))
            WHEN 'slower' THEN format(': runs got slower, %ss instead of %ss (%s%%)',
                                      round(a.observed::numeric, 1), round(a.expected::numeric, 1),
                                      to_char(100 * (a.observed / nullif(a.expected, 0) - 1), 'SG990'))
            WHEN 'faster' THEN format(': runs got faster, %ss instead of %ss (%s%%)',
                                      round(a.observed::numeric, 1), round(a.expected::numeric, 1),
                                      to_char(100 * (a.observed / nullif(a.expected, 0) - 1), 'SG990'))
            WHEN 'failure_rate' THEN format(': %s%% of the last runs failed, usually %s%%',
                                            round((100 * a.observed)::numeric), round((100 * a.expected)::numeric, 1))
            WHEN 'queue_wait' THEN format(': waited %ss in the queue, usually %ss',
                                          round(a.observed::numeric), round(a.expected::numeric, 1))
          END AS what,
       a.family, nullif(a.task, '') AS task, a.version, a.agent_class,
       a.since, a.detected_at, a.last_seen_at, a.closed_at, a.closed_reason,
       a.expected, a.observed, round(a.score::numeric, 2) AS score, a.runs, a.pipeline_id
  FROM railyard.anomaly_log a;
COMMENT ON VIEW railyard.anomalies IS
    'anomalies (open and closed): slow/fast single runs (robust z > 3.5), sustained shifts (CUSUM), failure-rate spikes, queue waits';
COMMENT ON COLUMN railyard.anomalies.what IS 'the anomaly in words';
COMMENT ON COLUMN railyard.anomalies.since IS 'the first run that showed it (a shift: where the CUSUM excursion began)';
COMMENT ON COLUMN railyard.anomalies.runs IS 'runs that showed it while it was open';
