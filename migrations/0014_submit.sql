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
-- cheap: 12 % of the server's time for a 50-task submission, most tasks
-- having no inputs, outputs or secrets at all.  The helpers are now one
-- expression each, which the planner inlines into the constraint, and the
-- expression asks for the query only when there is something to check.
-- Same names and signatures, so the constraints stay as they are; the
-- answers are the same for every value (NULL included).

-- The former paths_valid, under a new name: the per-element check.
CREATE FUNCTION railyard.paths_each_valid(p text[], with_dot boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(bool_and(x IS NOT NULL AND length(x) BETWEEN 1 AND 4096
                             AND x !~ '[\x01-\x1f\x7f]'
                             AND ((with_dot AND x = '.')
                                  OR ('/' || regexp_replace(x, '/$', '') || '/') !~ '/(\.{1,2})?/')),
                    true)
      FROM unnest(p) x
$$;
COMMENT ON FUNCTION railyard.paths_each_valid(text[], boolean) IS
    'paths_valid''s check of each element: every path relative, without empty, "." or ".." components (with_dot: "." alone allowed)';

CREATE OR REPLACE FUNCTION railyard.paths_valid(p text[], with_dot boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT cardinality(p) = 0 OR railyard.paths_each_valid(p, with_dot)
$$;
COMMENT ON FUNCTION railyard.paths_valid(text[], boolean) IS
    'CHECK helper: every path relative, without empty, "." or ".." components (with_dot: "." alone allowed); an empty array asks nothing more (inlined into the constraint)';

-- The former secrets_valid, under a new name: the per-entry check.
CREATE FUNCTION railyard.secrets_each_valid(p_secrets jsonb, p_env jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_typeof(p_secrets) = 'object'
       AND NOT EXISTS (
           SELECT 1 FROM jsonb_each(p_secrets) s
            WHERE s.key !~ '^[A-Za-z_][A-Za-z0-9_]*$'
               OR jsonb_typeof(s.value) <> 'string'
               OR length(s.value #>> '{}') > 255
               -- relative, no empty, "." or ".." components: stays in secrets_dir
               OR (s.value #>> '{}') !~ '^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$'
               OR (jsonb_typeof(p_env) = 'object' AND p_env ? s.key))
$$;
COMMENT ON FUNCTION railyard.secrets_each_valid(jsonb, jsonb) IS
    'secrets_valid''s check of each entry: NAME as env names, a relative file name under secrets_dir (no . or .. components, at most 255 characters), a NAME not also in env';

CREATE OR REPLACE FUNCTION railyard.secrets_valid(p_secrets jsonb, p_env jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_secrets = '{}'::jsonb OR railyard.secrets_each_valid(p_secrets, p_env)
$$;
COMMENT ON FUNCTION railyard.secrets_valid(jsonb, jsonb) IS
    'tasks.secrets: an object of NAME (as env names) to a relative file name under the worker''s secrets_dir (no leading /, no . or .. components, at most 255 characters); a NAME may not also be in env; {} asks nothing more (inlined into the constraint)';

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
