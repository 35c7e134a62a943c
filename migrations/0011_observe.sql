-- 0011_observe: the forecast statistics leave the completing transaction
-- (issue 12).  Applied once.
--
-- The history triggers (sql/50_forecast.sql) still write run_history and
-- pipeline_history in the transaction that finishes a run: that is the
-- record.  What they fed to railyard.observe() there (two wide
-- duration_stats rows updated per task, the anomaly detectors run) is
-- queued here instead, one narrow row per observation, and
-- railyard.observe_pending() applies the queue in batches, off the hot
-- path: the workers call it with their submission forecasts (after a
-- heartbeat, when idle), SQL users whenever they need fresh statistics.
--
-- A queue table rather than a high-water mark over run_history: ids are
-- taken before COMMIT, so a reader that remembers "everything up to id N"
-- skips a row with a smaller id whose transaction commits after it read;
-- DELETE ... RETURNING takes exactly what has committed, each row once.
-- And cache hits are observations with no run_history row.
CREATE TABLE railyard.observation_pending (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    o               railyard.observation NOT NULL
);
COMMENT ON TABLE railyard.observation_pending IS
    'finished runs (attempts, cache hits, pipelines) recorded by the history triggers and not yet fed to the statistics; railyard.observe_pending() applies them';
COMMENT ON COLUMN railyard.observation_pending.id IS
    'the order the runs were recorded in: completion order, and by finished_at within one completion; observe_pending applies one subject''s runs in this order';

-- Insert and delete only, small when the workers keep up: vacuumed after
-- 1,000 dead rows whatever its size, so its pages are reused at once.
ALTER TABLE railyard.observation_pending SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 1000);
