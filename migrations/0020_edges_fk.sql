-- 0020_edges_fk: an edge belongs to its pipeline, not to its two tasks
-- (issue 12, submission).  Applied once.
--
-- Each edge had two foreign keys to tasks (pipeline_id, upstream) and
-- (pipeline_id, downstream), checked at COMMIT: two index probes of
-- tasks per edge, 130 for the 50-task benchmark pipeline, planned afresh
-- by every new session (0.5 ms of a `railyard submit`).  What they
-- guarded is guarded already: the graph check (pipeline_graph, at
-- submission or at COMMIT) refuses an edge naming a task the pipeline
-- lacks, edges_after_insert refuses edges for a pipeline already
-- submitted, and tasks leave only with their pipeline (railyard.prune;
-- the guards refuse DELETE otherwise).  One key to the pipeline keeps the
-- cascade that prune relies on.
ALTER TABLE railyard.edges
    DROP CONSTRAINT edges_pipeline_id_upstream_fkey,
    DROP CONSTRAINT edges_pipeline_id_downstream_fkey,
    ADD CONSTRAINT edges_pipeline_id_fkey FOREIGN KEY (pipeline_id)
        REFERENCES railyard.pipelines (id) ON DELETE CASCADE;
