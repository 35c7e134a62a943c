-- 0018_stats_recency: cold-start estimates read 20 statistics rows, not
-- every row of a kind.  Applied once.
--
-- task_estimates borrows for a task without history the median of the 20
-- most recent identities of the same service and kind, or kind, its own
-- family first.  It ordered by (family = fam, last_at) over the kind's
-- rows: every row of the kind was read and sorted at every COMMIT that had
-- such a task.  The soak (bench/bench_soak.sh) showed it: at 1.1 million
-- statistics rows a 100-task pipeline's COMMIT took 0.7 s, all of it in
-- that sort, and the farm's statistics only grow.
--
-- The lookups are now two index walks that stop at 20 rows: the family's
-- own rows by the primary key, the others by recency.  Recency is
-- recent_at, not last_at: last_at changes at every run, and an indexed
-- column that changes makes every statistics update a non-HOT one (new
-- entries in every index).  recent_at is the last run or cache hit,
-- refreshed at most once an hour (railyard.recent_at_after), so "the 20
-- most recent" holds to within an hour and the updates in between stay
-- HOT.
ALTER TABLE railyard.duration_stats ADD COLUMN IF NOT EXISTS recent_at timestamptz;
COMMENT ON COLUMN railyard.duration_stats.recent_at IS
    'the last run or cache hit, refreshed at most once an hour: the recency the cold-start lookups walk by index and retention judges by (an indexed column that changes at every run would make every update non-HOT)';
UPDATE railyard.duration_stats SET recent_at = coalesce(last_at, updated_at) WHERE recent_at IS NULL;

DROP INDEX railyard.duration_stats_service_kind;
CREATE INDEX duration_stats_service_kind
    ON railyard.duration_stats (service, kind, recent_at DESC NULLS LAST)
    WHERE agent_class = '*' AND service IS NOT NULL;
COMMENT ON INDEX railyard.duration_stats_service_kind IS
    'cold-start estimates by service and kind, most recent first (task_estimates); never a candidate for a lookup by identity';
DROP INDEX railyard.duration_stats_kind;
CREATE INDEX duration_stats_kind
    ON railyard.duration_stats (kind, recent_at DESC NULLS LAST)
    WHERE agent_class = '*' AND kind IS NOT NULL;
COMMENT ON INDEX railyard.duration_stats_kind IS
    'cold-start estimates by kind, most recent first (task_estimates); never a candidate for a lookup by identity';

-- Retention: railyard.prune(before) also deletes the statistics of
-- identities not used since (a renamed task, an old version): a farm's
-- statistics grew without bound before.
CREATE INDEX duration_stats_recent ON railyard.duration_stats (recent_at);
COMMENT ON INDEX railyard.duration_stats_recent IS
    'retention: statistics rows of identities not used (run or cache hit) since a time (railyard.prune)';
