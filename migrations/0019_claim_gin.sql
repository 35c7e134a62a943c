-- 0019_claim_gin: the scarce-label count reads the index, not its pending
-- list (issue 7, claim latency).  Applied once.
--
-- tasks_ready_requires (0013) was built with GIN's default fastupdate:
-- each task that becomes ready goes to the index's pending list, which is
-- merged only by VACUUM or autoanalyze, and every search reads the whole
-- list first.  ready_needing runs at every claim of an agent with a
-- scarce label, so after a bulk submission each claim read the list of
-- every ready task with a requirement: 1.2 ms per call with 12,000 ready
-- tasks (0.2 ms without the list; pgbench on the latency benchmark's
-- data), 40 % of claim_placement.  Without fastupdate a task pays its few
-- label entries once, when it becomes ready.
ALTER INDEX railyard.tasks_ready_requires SET (fastupdate = off);
SELECT gin_clean_pending_list('railyard.tasks_ready_requires'::regclass);
COMMENT ON INDEX railyard.tasks_ready_requires IS
    'ready tasks by required label: how many need an agent''s scarce labels (railyard.ready_needing), without walking every labelled ready task; fastupdate off (0019): claims search it right after bulk submissions';
