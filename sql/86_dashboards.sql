-- Views for a Grafana PostgreSQL data source (docs/operations.md,
-- "Dashboards").  Each has a `time` column where Grafana plots a series
-- (format "Time series") and plain columns otherwise ("Table"); a panel's
-- query is `SELECT * FROM railyard.dashboard_X WHERE $__timeFilter(time)`.
-- All read the run history and the live tables only: nothing is stored.

-- Finished attempts per minute and outcome, last 24 hours.
CREATE OR REPLACE VIEW railyard.dashboard_throughput AS
SELECT date_trunc('minute', h.finished_at) AS time,
       h.outcome,
       p.team,
       count(*) AS attempts,
       round(avg(h.duration_s)::numeric, 3) AS avg_duration_s
  FROM railyard.task_attempts h
  JOIN railyard.pipelines p ON p.id = h.pipeline_id
 WHERE h.finished_at > now() - interval '24 hours'
 GROUP BY 1, 2, 3;
COMMENT ON VIEW railyard.dashboard_throughput IS
    'Grafana: finished attempts per minute, outcome and team over the last 24 hours, with their mean run time';

-- What waits right now, per team: the queue depth.
CREATE OR REPLACE VIEW railyard.dashboard_queue_depth AS
SELECT now() AS time,
       p.team,
       count(*) FILTER (WHERE t.state = 'ready') AS ready,
       count(*) FILTER (WHERE t.state = 'blocked') AS blocked,
       count(*) FILTER (WHERE t.state = 'running') AS running,
       coalesce(extract(epoch FROM now() - min(t.ready_at) FILTER (WHERE t.state = 'ready')), 0)
           AS oldest_ready_s
  FROM railyard.tasks t
  JOIN railyard.pipelines p ON p.id = t.pipeline_id
 WHERE t.state IN ('blocked', 'ready', 'running')
 GROUP BY p.team;
COMMENT ON VIEW railyard.dashboard_queue_depth IS
    'Grafana: unfinished tasks per team now (ready, blocked, running) and how long the oldest ready one has waited';

-- How long tasks waited from ready to claimed, per minute and team.
CREATE OR REPLACE VIEW railyard.dashboard_waits AS
SELECT date_trunc('minute', t.claimed_at) AS time,
       p.team,
       count(*) AS claims,
       round(avg(extract(epoch FROM t.claimed_at - t.ready_at))::numeric, 3) AS avg_wait_s,
       round((percentile_cont(0.95) WITHIN GROUP (
                  ORDER BY extract(epoch FROM t.claimed_at - t.ready_at)))::numeric, 3)
           AS p95_wait_s,
       round(max(extract(epoch FROM t.claimed_at - t.ready_at))::numeric, 3) AS max_wait_s
  FROM railyard.tasks t
  JOIN railyard.pipelines p ON p.id = t.pipeline_id
 WHERE t.claimed_at > now() - interval '24 hours' AND t.ready_at IS NOT NULL
   AND t.claimed_at >= t.ready_at
 GROUP BY 1, 2;
COMMENT ON VIEW railyard.dashboard_waits IS
    'Grafana: ready-to-claimed wait per minute and team over the last 24 hours (mean, p95, max; the current attempt of each task)';

-- Busy slot-seconds over the last hour per agent and team, as a share of
-- the agent's slots: which team uses which machines.
CREATE OR REPLACE VIEW railyard.dashboard_utilization AS
SELECT now() AS time,
       a.name AS agent,
       p.team,
       a.slots,
       round(sum(extract(epoch FROM least(h.finished_at, now())
                 - greatest(h.started_at, now() - interval '1 hour')))::numeric, 3) AS busy_s_1h,
       round((100 * sum(extract(epoch FROM least(h.finished_at, now())
                 - greatest(h.started_at, now() - interval '1 hour')))
              / (3600.0 * a.slots))::numeric, 2) AS utilization_pct_1h
  FROM railyard.task_attempts h
  JOIN railyard.agents a ON a.id = h.agent_id
  JOIN railyard.pipelines p ON p.id = h.pipeline_id
 WHERE h.finished_at > now() - interval '1 hour' AND h.started_at IS NOT NULL
 GROUP BY a.id, a.name, a.slots, p.team;
COMMENT ON VIEW railyard.dashboard_utilization IS
    'Grafana: busy slot-seconds over the last hour per agent and team, and that as a percentage of the agent''s slots x 3600';
