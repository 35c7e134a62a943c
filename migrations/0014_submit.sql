-- 0014_submit: cheaper CHECKs on every INSERT and UPDATE of a task
-- (issue 12, submission latency).  Applied once.  PostgreSQL evaluates
-- every CHECK of a table on every row an INSERT or UPDATE writes, whatever
-- columns changed; two kinds of them cost more than all the rest.
--
-- task_inputs_valid, task_outputs_valid and task_secrets_valid call a SQL
-- function for every row an INSERT or UPDATE of railyard.tasks writes,
-- whatever columns changed: four calls per task of a submission (its
-- INSERT, then the UPDATE at COMMIT that ranks and releases it), one more
-- at every claim and completion.  Each call runs a query over unnest() or
-- jsonb_each(), which neither PostgreSQL nor a fresh backend's caches make
-- cheap, and most tasks have no inputs, outputs or secrets at all.  With
-- the task name's pattern below: 12 % of the server's time for a 50-task
-- submission (perf, ExecConstraints).  The helpers are now one
-- expression each, which the planner inlines into the constraint, and the
-- expression asks for the query only when there is something to check.
-- Same names and signatures; the answers are the same for every value
-- (NULL included).

-- The former helpers keep their bodies under new names (a constraint
-- names its function by oid: renaming leaves the constraints on the old
-- bodies); the old names become the inlinable wrappers, and the
-- constraints are made again on them.
ALTER FUNCTION railyard.paths_valid(text[], boolean) RENAME TO paths_each_valid;
COMMENT ON FUNCTION railyard.paths_each_valid(text[], boolean) IS
    'paths_valid''s check of each element: every path relative, without empty, "." or ".." components (with_dot: "." alone allowed)';
CREATE FUNCTION railyard.paths_valid(p text[], with_dot boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT cardinality(p) = 0 OR railyard.paths_each_valid(p, with_dot)
$$;
COMMENT ON FUNCTION railyard.paths_valid(text[], boolean) IS
    'CHECK helper: every path relative, without empty, "." or ".." components (with_dot: "." alone allowed); an empty array asks nothing more (inlined into the constraint)';

ALTER FUNCTION railyard.secrets_valid(jsonb, jsonb) RENAME TO secrets_each_valid;
COMMENT ON FUNCTION railyard.secrets_each_valid(jsonb, jsonb) IS
    'secrets_valid''s check of each entry: NAME as env names, a relative file name under secrets_dir (no . or .. components, at most 255 characters), a NAME not also in env';
CREATE FUNCTION railyard.secrets_valid(p_secrets jsonb, p_env jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_secrets = '{}'::jsonb OR railyard.secrets_each_valid(p_secrets, p_env)
$$;
COMMENT ON FUNCTION railyard.secrets_valid(jsonb, jsonb) IS
    'tasks.secrets: an object of NAME (as env names) to a relative file name under the worker''s secrets_dir (no leading /, no . or .. components, at most 255 characters); a NAME may not also be in env; {} asks nothing more (inlined into the constraint)';

-- task_inputs_valid stays NOT VALID, as 0007 added it: rows from before
-- 0007 were never checked.
ALTER TABLE railyard.tasks
    DROP CONSTRAINT task_inputs_valid,
    ADD CONSTRAINT task_inputs_valid CHECK (railyard.paths_valid(inputs, true)) NOT VALID,
    DROP CONSTRAINT task_outputs_valid,
    ADD CONSTRAINT task_outputs_valid CHECK (railyard.paths_valid(outputs, false)),
    DROP CONSTRAINT task_secrets_valid,
    ADD CONSTRAINT task_secrets_valid CHECK (railyard.secrets_valid(secrets, env));

-- Bounded repetition is what PostgreSQL's regular expressions are slowest
-- at: task_name_valid's '^[A-Za-z0-9_][A-Za-z0-9_.:/@+=-]{0,199}$' takes
-- 1-2 ms to compile in every new backend and 25 us per row to match
-- (20,000 matches: 495 ms, against 27 ms for the same class with '*' and a
-- length test), and every INSERT and UPDATE of a task matches it: a
-- submission twice per task, a worker at each claim and completion.  The
-- same syntax, said as a class repeated with '*' and a length limit (the
-- class is ASCII, so characters are bytes): the constraints keep their
-- names, so errors read as before.
ALTER TABLE railyard.tasks DROP CONSTRAINT task_name_valid,
    ADD CONSTRAINT task_name_valid
        CHECK (length(name) <= 200 AND name ~ '^[A-Za-z0-9_][A-Za-z0-9_.:/@+=-]*$');
ALTER TABLE railyard.pipelines DROP CONSTRAINT pipeline_team_valid,
    ADD CONSTRAINT pipeline_team_valid
        CHECK (length(team) <= 63 AND team ~ '^[A-Za-z0-9][A-Za-z0-9_.-]*$');
