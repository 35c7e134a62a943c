-- Views for people: what is running, why a task waits, how busy agents are.

-- One row per pipeline with its task counts by state.
CREATE OR REPLACE VIEW railyard.pipeline_summary AS
SELECT p.id, p.name, p.team, p.priority, p.state, p.created_at, p.started_at, p.finished_at,
       extract(epoch FROM coalesce(p.finished_at, now()) - coalesce(p.started_at, p.created_at))
           AS elapsed_s,
       count(t.id) AS tasks,
       count(t.id) FILTER (WHERE t.state = 'blocked') AS blocked,
       count(t.id) FILTER (WHERE t.state = 'ready') AS ready,
       count(t.id) FILTER (WHERE t.state = 'running') AS running,
       count(t.id) FILTER (WHERE t.state = 'succeeded') AS succeeded,
       count(t.id) FILTER (WHERE t.state = 'failed') AS failed,
       count(t.id) FILTER (WHERE t.state = 'cached') AS cached,
       count(t.id) FILTER (WHERE t.state = 'skipped') AS skipped,
       count(t.id) FILTER (WHERE t.state = 'cancelled') AS cancelled
  FROM railyard.pipelines p
  LEFT JOIN railyard.tasks t ON t.pipeline_id = p.id
 GROUP BY p.id;

-- Why each unfinished, unclaimed task of one pipeline is waiting, in
-- words.  Linear in the pipeline whatever the statistics say (right after
-- a 50,000-task submission there are none): its blocked tasks' unfinished
-- upstreams are found by one hash join over the pipeline's edges, not one
-- lookup per task, and nested loops are off so the planner cannot turn a
-- join into a scan per row.
CREATE OR REPLACE FUNCTION railyard.task_waits_of(p_pipeline bigint)
RETURNS TABLE (id bigint, pipeline_id bigint, name text, state railyard.task_state, why text)
LANGUAGE sql STABLE SET enable_nestloop = off SET jit = off AS $$
WITH scarce AS MATERIALIZED (
    SELECT coalesce(array_agg(s.label), '{}') AS labels FROM railyard.scarce_labels_now() s
), busy AS MATERIALIZED (
    SELECT t.agent_id, count(*)::int AS n
      FROM railyard.tasks t WHERE t.state = 'running' GROUP BY t.agent_id
), online AS MATERIALIZED (
    -- holds: a scarce agent keeping a free slot from generic work, as
    -- pkg/sched decides it (one of one slot only while protected work is ready)
    SELECT o.*, cardinality(o.scarce) > 0
                AND (o.lim > 1 OR EXISTS (SELECT 1 FROM railyard.tasks r
                                           WHERE r.state = 'ready' AND r.requires && o.scarce
                                             AND r.requires <@ o.labels)) AS holds
      FROM (SELECT a.name, a.labels, a.os, a.arch, coalesce(a.cpus, a.cores) AS cpus,
                   coalesce(a.offered_mem_mb, a.mem_mb) AS mem_mb, a.slots,
                   coalesce(a.concurrency_limit, a.slots) AS lim, coalesce(b.n, 0) AS running,
                   ARRAY(SELECT l FROM unnest(a.labels) l WHERE l = ANY (sc.labels) ORDER BY l) AS scarce
              FROM railyard.agents a LEFT JOIN busy b ON b.agent_id = a.id CROSS JOIN scarce sc
             WHERE a.state = 'online' AND a.lease_until > now() AND a.degraded IS NULL) o
), registered AS MATERIALIZED (
    SELECT a.labels FROM railyard.agents a
), pools AS MATERIALIZED (
    SELECT * FROM railyard.pool_usage()
), teams AS MATERIALIZED (
    SELECT m.name, m.max_running,
           (SELECT count(*) FROM railyard.tasks r WHERE r.state = 'running' AND r.team = m.name)::int AS running
      FROM railyard.teams m WHERE m.max_running IS NOT NULL
), open_upstreams AS (
    SELECT e.downstream, string_agg(u.name, ', ' ORDER BY u.name) AS names
      FROM railyard.edges e
      JOIN railyard.tasks u ON u.pipeline_id = e.pipeline_id AND u.name = e.upstream
     WHERE e.pipeline_id = p_pipeline AND u.pipeline_id = p_pipeline
       AND u.state IN ('blocked', 'ready', 'running')
     GROUP BY e.downstream
)
SELECT t.id, t.pipeline_id, t.name, t.state,
       CASE
         WHEN t.state = 'blocked' THEN 'waiting for ' || w.names
         WHEN NOT EXISTS (SELECT 1 FROM online) THEN 'no agent is online'
         WHEN NOT EXISTS (SELECT 1 FROM online a WHERE t.requires <@ a.labels) THEN
           'no online agent has label ' ||
           (SELECT string_agg(l, ', ') FROM unnest(t.requires) l
             WHERE NOT EXISTS (SELECT 1 FROM online a WHERE l = ANY (a.labels)))
           || CASE WHEN NOT EXISTS (SELECT 1 FROM registered a WHERE t.requires <@ a.labels)
                   THEN ', and no registered agent has it: none could ever run it' ELSE '' END
         WHEN NOT EXISTS (SELECT 1 FROM online a WHERE t.requires <@ a.labels
                            AND (t.os IS NULL OR a.os = t.os)) THEN
           'no online agent runs os ' || t.os
         WHEN NOT EXISTS (SELECT 1 FROM online a WHERE t.requires <@ a.labels
                            AND (t.os IS NULL OR a.os = t.os) AND (t.arch IS NULL OR a.arch = t.arch)) THEN
           'no online agent has arch ' || t.arch
         WHEN NOT EXISTS (SELECT 1 FROM online a WHERE t.requires <@ a.labels
                            AND (t.os IS NULL OR a.os = t.os) AND (t.arch IS NULL OR a.arch = t.arch)
                            AND a.cpus >= t.cpu AND a.mem_mb >= t.mem_mb) THEN
           format('no online agent has %s cpu and %s MB memory', t.cpu, t.mem_mb)
         WHEN t.pool IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pools p WHERE p.pool = t.pool) THEN
           format('pool %s does not exist', t.pool)
         WHEN EXISTS (SELECT 1 FROM pools p WHERE p.pool = t.pool AND p.running >= p.capacity) THEN
           (SELECT format('pool %s full (%s/%s, held by tasks %s)', p.pool, p.running, p.capacity,
                          coalesce(nullif(array_to_string(p.holders[1:5], ', '), ''), 'none')
                          || CASE WHEN cardinality(p.holders) > 5 THEN ', …' ELSE '' END)
              FROM pools p WHERE p.pool = t.pool)
         WHEN EXISTS (SELECT 1 FROM teams m WHERE m.name = t.team AND m.running >= m.max_running) THEN
           (SELECT format('team %s at quota (%s/%s running)', m.name, m.running, m.max_running)
              FROM teams m WHERE m.name = t.team)
         WHEN NOT EXISTS (SELECT 1 FROM online a WHERE t.requires <@ a.labels
                            AND (t.os IS NULL OR a.os = t.os) AND (t.arch IS NULL OR a.arch = t.arch)
                            AND a.cpus >= t.cpu AND a.mem_mb >= t.mem_mb AND a.running < a.slots) THEN
           'every agent that fits is busy'
         WHEN NOT EXISTS (SELECT 1 FROM online a WHERE t.requires <@ a.labels
                            AND (t.os IS NULL OR a.os = t.os) AND (t.arch IS NULL OR a.arch = t.arch)
                            AND a.cpus >= t.cpu AND a.mem_mb >= t.mem_mb AND a.running < a.lim) THEN
           (SELECT 'worker throttled by pressure: ' ||
                   string_agg(format('%s limit %s of %s', a.name, a.lim, a.slots), ', ' ORDER BY a.name)
              FROM online a WHERE t.requires <@ a.labels
               AND (t.os IS NULL OR a.os = t.os) AND (t.arch IS NULL OR a.arch = t.arch)
               AND a.cpus >= t.cpu AND a.mem_mb >= t.mem_mb AND a.running < a.slots)
         WHEN NOT (t.requires && (SELECT labels FROM scarce))
              AND NOT EXISTS (SELECT 1 FROM online a WHERE t.requires <@ a.labels AND NOT a.holds
                                AND (t.os IS NULL OR a.os = t.os) AND (t.arch IS NULL OR a.arch = t.arch)
                                AND a.cpus >= t.cpu AND a.mem_mb >= t.mem_mb AND a.running < a.lim) THEN
           (SELECT 'held for a scarce agent''s protected work: ' ||
                   string_agg(format('%s keeps its last free slot for tasks needing %s', a.name,
                                     array_to_string(a.scarce, ', ')), '; ' ORDER BY a.name)
              FROM online a WHERE t.requires <@ a.labels AND a.holds
               AND (t.os IS NULL OR a.os = t.os) AND (t.arch IS NULL OR a.arch = t.arch)
               AND a.cpus >= t.cpu AND a.mem_mb >= t.mem_mb AND a.running < a.lim)
         ELSE 'an agent has room: the next claim takes it'
       END || CASE WHEN t.state = 'ready'
                   THEN coalesce('; ' || railyard.inventory_hint(t.requires, t.os, t.arch, t.cpu, t.mem_mb), '')
                   ELSE '' END
  FROM railyard.tasks t
  LEFT JOIN open_upstreams w ON w.downstream = t.name
 WHERE t.pipeline_id = p_pipeline AND t.state IN ('blocked', 'ready')
$$;
COMMENT ON FUNCTION railyard.task_waits_of(bigint) IS
    'why each blocked or ready task of one pipeline waits, in words: upstreams; no registered or online agent with its label, os, arch, cpu or memory; its pool missing or full (holders); its team at quota; agents throttled by pressure (limit of slots); held for a scarce agent''s protected work; all that fit busy. Linear in the pipeline (what railyard status ID shows)';

-- The same for every pipeline that can still have waiting tasks.
CREATE OR REPLACE VIEW railyard.task_waits AS
SELECT w.id, w.pipeline_id, w.name, w.state, w.why
  FROM railyard.pipelines p
 CROSS JOIN LATERAL railyard.task_waits_of(p.id) w
 WHERE p.state IN ('queued', 'running');

-- Busy slot-time per agent over the last hour, from the attempt history.
CREATE OR REPLACE VIEW railyard.agent_utilization AS
SELECT a.id, a.name, a.state, a.slots, a.running, a.labels,
       coalesce(sum(extract(epoch FROM least(h.finished_at, now())
                             - greatest(h.started_at, now() - interval '1 hour')))
                FILTER (WHERE h.task_id IS NOT NULL), 0) AS busy_s_1h,
       round((100 * coalesce(sum(extract(epoch FROM least(h.finished_at, now())
                             - greatest(h.started_at, now() - interval '1 hour')))
                FILTER (WHERE h.task_id IS NOT NULL), 0)
              / (3600.0 * a.slots))::numeric, 2) AS utilization_pct_1h,
       count(h.task_id) AS attempts_1h
  FROM railyard.agents a
  LEFT JOIN railyard.task_attempts h ON h.agent_id = a.id
        AND h.finished_at > now() - interval '1 hour' AND h.started_at IS NOT NULL
 GROUP BY a.id;

COMMENT ON VIEW railyard.pipeline_summary IS
    'one row per pipeline: state, elapsed seconds and its tasks counted by state';
COMMENT ON VIEW railyard.task_waits IS
    'every blocked or ready task and why it waits, in words (what railyard status shows)';
COMMENT ON VIEW railyard.agent_utilization IS
    'per agent: busy slot-seconds over the last hour from the attempt history, as a share of slots x 3600';
