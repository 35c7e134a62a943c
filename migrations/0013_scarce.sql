-- 0013_scarce: ready tasks by what they require (issue 7, claim latency).
-- Applied once.
--
-- An agent with a scarce label asks at every claim how many ready tasks
-- need it (claim_context's protect).  Walking tasks_ready_labeled for
-- that reads every ready task with any requirement when none needs the
-- label, which is the usual case for a label that is scarce only because
-- few hosts have it (podman): 7,200 rows, 15 ms, at every claim of the
-- latency benchmark.  A GIN index answers "does any ready task require
-- one of these" from the label's posting list.  Only rows that are ready
-- and require something are in it: a task enters it once, when it
-- becomes ready (pending list: fastupdate), and leaves it at vacuum.
CREATE INDEX tasks_ready_requires ON railyard.tasks USING gin (requires)
    WHERE state = 'ready' AND requires <> '{}';
COMMENT ON INDEX railyard.tasks_ready_requires IS
    'ready tasks by required label: how many need an agent''s scarce labels (railyard.ready_needing), without walking every labelled ready task';
