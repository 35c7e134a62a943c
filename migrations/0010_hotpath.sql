-- 0010_hotpath: storage settings for the tables every task writes (issue
-- 12).  Applied once.  What each costs per task is measured by
-- bench/profile_hotpath.sh; docs/benchmarks.md ("Where the time goes")
-- has the figures before and after.

-- ---- plans that stay right while a table is young ---------------------------
--
-- observe() looks a task identity's '*' row up by its primary key for every
-- attempt that completes.  A worker's session plans that lookup once, at
-- its first completion, when duration_stats is still empty: both partial
-- indexes below (WHERE agent_class = '*') then cost the same as the key,
-- and the planner took one of them, which filters every '*' row.  The
-- completion paid 2.3 ms per task at 4,000 identities, growing with the
-- table (a farm's statistics only grow).  Their predicates now also say
-- what the queries that use them say (service = …, kind = … imply NOT
-- NULL), so a lookup by key cannot pick them.  Both columns are set once
-- at insert: updates stay HOT.
DROP INDEX railyard.duration_stats_service_kind;
CREATE INDEX duration_stats_service_kind ON railyard.duration_stats (service, kind)
    WHERE agent_class = '*' AND service IS NOT NULL;
COMMENT ON INDEX railyard.duration_stats_service_kind IS
    'cold-start estimates by service and kind (task_estimates); never a candidate for a lookup by identity';
DROP INDEX railyard.duration_stats_kind;
CREATE INDEX duration_stats_kind ON railyard.duration_stats (kind)
    WHERE agent_class = '*' AND kind IS NOT NULL;
COMMENT ON INDEX railyard.duration_stats_kind IS
    'cold-start estimates by kind (task_estimates); never a candidate for a lookup by identity';

-- ---- fewer index entries per task -------------------------------------------
--
-- Every task writes 3 audit rows (claim, start, finish), each into 3
-- indexes.  A task's rows always carry its pipeline, and audit_log_pipeline
-- (pipeline_id, id) finds them (wait --follow, prune and "one task's
-- history" in docs/operations.md go through it), so audit_log_object keeps
-- the other objects only: agents, pipelines, the cache, retention.  One
-- index entry (about 270 bytes of WAL) less per audit row of a task.
DROP INDEX railyard.audit_log_object;
CREATE INDEX audit_log_object ON railyard.audit_log (object, object_id) WHERE object <> 'task';
COMMENT ON INDEX railyard.audit_log_object IS
    'audit rows of agents, pipelines, the cache and retention by object; a task''s rows are found by its pipeline (audit_log_pipeline)';

-- ---- room for HOT updates -----------------------------------------------------
--
-- A HOT update writes no index entry, but needs free space on the row's
-- own page.  Rows that are updated after insert get it:
--   tasks:          the process-start notice (started_at, no index) and
--                   settle's count of unfinished upstreams (waiting_on)
--                   land beside the row; a state change cannot be HOT
--                   (state is in the partial indexes' predicates);
--   agents:         a heartbeat every few seconds per agent;
--   duration_stats: two updates per completed attempt, none to an indexed
--                   column.
-- Existing pages keep their fill until rewritten; new pages follow.
ALTER TABLE railyard.tasks SET (fillfactor = 85);
ALTER TABLE railyard.pipelines SET (fillfactor = 85);
ALTER TABLE railyard.agents SET (fillfactor = 50);
ALTER TABLE railyard.duration_stats SET (fillfactor = 80);

-- ---- autovacuum for the hot tables ------------------------------------------
--
-- PostgreSQL's defaults vacuum a table once 20 % of it is dead and analyze
-- it once 10 % changed: on a farm with millions of finished tasks that is
-- hundreds of thousands of dead ready/running index entries that every
-- claim walks past, and statistics days old.  The tables that churn get
-- thresholds in rows, not shares:
--   tasks, pipelines: vacuum after 2 % dead (+ 1,000 rows), analyze after
--       1 % changed, so the claim's partial index (tasks_ready) stays
--       short and plans see the current ready count;
--   agents, duration_stats: updated in place all the time; small: vacuum
--       after 5 % (+ 200);
--   task_attempts, audit_log, run_history: append-only; insert-triggered
--       vacuum after 5 % new rows keeps their visibility map set (index-only
--       scans, a cheap anti-wraparound freeze) and analyze after 2 %.
-- No cost limit is raised: on a shared 2-core machine autovacuum must stay
-- in the background.  railyard.prune() keeps the tables bounded; these
-- settings keep what remains compact.
ALTER TABLE railyard.tasks SET (autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.01,
    autovacuum_analyze_threshold = 1000);
ALTER TABLE railyard.pipelines SET (autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 200, autovacuum_analyze_scale_factor = 0.01,
    autovacuum_analyze_threshold = 200);
ALTER TABLE railyard.agents SET (autovacuum_vacuum_scale_factor = 0.05,
    autovacuum_vacuum_threshold = 200);
ALTER TABLE railyard.duration_stats SET (autovacuum_vacuum_scale_factor = 0.05,
    autovacuum_vacuum_threshold = 200, autovacuum_analyze_scale_factor = 0.02,
    autovacuum_analyze_threshold = 200);
ALTER TABLE railyard.task_attempts SET (autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE railyard.audit_log SET (autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE railyard.run_history SET (autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02);
