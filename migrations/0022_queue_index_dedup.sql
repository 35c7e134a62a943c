-- 0022_queue_index_dedup: no B-tree deduplication in the partial indexes
-- whose keys many tasks share and whose rows leave them at every state
-- change (issue 12, the hot path).  Applied once.
--
-- tasks_unfinished (pipeline_id), tasks_running (agent_id),
-- tasks_running_team (team) and tasks_running_pool (pool) hold one key
-- for many tasks: every task of a pipeline, every task an agent or a team
-- runs.  Deduplication packs their entries into posting lists, and a
-- posting list is marked dead only when every entry in it is, so the
-- entries of finished tasks stay live-looking and each probe fetches
-- their heap tuples again: settle's "is anything of this pipeline left"
-- (one probe of tasks_unfinished per completion) and the fair share's
-- count of running tasks per team (a scan of tasks_running_team per
-- claim) read every finished task's old versions until VACUUM.  Entries
-- of their own are marked dead at the first probe that finds them so and
-- removed when their page fills.  2 dry-run workers moved 20,000 tasks at
-- 6,753-6,973 tasks/s with deduplication and 7,425-7,717 without, three
-- runs each, back to back (docs/benchmarks.md, "2026-12-02 (late
-- morning)").  The keys repeat, so the indexes hold a few bytes more per
-- live entry; they index unfinished or running tasks only.
--
-- The setting applies to entries inserted from now on; posting lists
-- already built go as their tasks finish.
ALTER INDEX railyard.tasks_unfinished SET (deduplicate_items = off);
ALTER INDEX railyard.tasks_running SET (deduplicate_items = off);
ALTER INDEX railyard.tasks_running_team SET (deduplicate_items = off);
ALTER INDEX railyard.tasks_running_pool SET (deduplicate_items = off);
