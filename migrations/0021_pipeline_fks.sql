-- 0021_pipeline_fks: tasks and edges name their pipeline without a
-- foreign key (issue 12, submission).  Applied once.
--
-- The keys were checked row by row: one query per task and one per edge
-- (116 for the 50-task benchmark pipeline, planned afresh and run through
-- the executor each time by every new session), 4.7 million of the 59
-- million instructions a cold `railyard submit` costs the server
-- (callgrind, docs/benchmarks.md).  Once per INSERT statement instead:
-- tasks_after_insert and edges_after_insert refuse rows naming a
-- pipeline that does not exist (SQLSTATE 23503, as the key did) or that
-- was submitted already; submit_pipeline inserts the rows of the pipeline
-- it has just inserted and needs no check.  The cascade goes too:
-- railyard.prune deletes a pipeline's edges and tasks itself (one
-- statement each, not one per row), and the guards refuse any other
-- DELETE of these tables.
ALTER TABLE railyard.tasks DROP CONSTRAINT tasks_pipeline_id_fkey;
ALTER TABLE railyard.edges DROP CONSTRAINT edges_pipeline_id_fkey;
