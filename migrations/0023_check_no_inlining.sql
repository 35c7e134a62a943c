-- 0023_check_no_inlining: the CHECKs on railyard.tasks call no SQL
-- function (issue 12, the hot path).  Applied once.
--
-- 0014 made paths_valid and secrets_valid one-expression SQL functions so
-- that the planner would inline them into task_inputs_valid,
-- task_outputs_valid and task_secrets_valid.  It does, but not once: the
-- executor prepares a table's CHECK expressions for every statement that
-- writes it, and inlining a SQL function parses and analyses its body
-- each time; the *_each_valid bodies it then meets (SQL functions with a
-- FROM, never inlinable) are parsed to find that out.  Every claim and
-- every completion (an UPDATE of tasks each) paid for it: 8 % of a
-- server backend's time in a loop of one-task claims and completions
-- (perf: ExecConstraints -> eval_const_expressions -> raw_parser).
--
-- The constraints now hold the short test themselves (nothing to check
-- for an empty list or {}), and the per-element checks are PL/pgSQL,
-- which the planner never tries to inline and whose query plans a
-- session keeps.  Same names, so errors read as before, and the same
-- expressions, so the same answer for every value, NULL included.
-- task_inputs_valid stays NOT VALID, as 0007 added it.

CREATE OR REPLACE FUNCTION railyard.paths_each_valid(p text[], with_dot boolean) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN (SELECT coalesce(bool_and(x IS NOT NULL AND length(x) BETWEEN 1 AND 4096
                                     AND x !~ '[\x01-\x1f\x7f]'
                                     AND ((with_dot AND x = '.')
                                          OR ('/' || regexp_replace(x, '/$', '') || '/') !~ '/(\.{1,2})?/')),
                            true)
              FROM unnest(p) x);
END $$;

CREATE OR REPLACE FUNCTION railyard.secrets_each_valid(p_secrets jsonb, p_env jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN jsonb_typeof(p_secrets) = 'object'
       AND NOT EXISTS (
           SELECT 1 FROM jsonb_each(p_secrets) s
            WHERE s.key !~ '^[A-Za-z_][A-Za-z0-9_]*$'
               OR jsonb_typeof(s.value) <> 'string'
               OR length(s.value #>> '{}') > 255
               -- relative, no empty, "." or ".." components: stays in secrets_dir
               OR (s.value #>> '{}') !~ '^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$'
               OR (jsonb_typeof(p_env) = 'object' AND p_env ? s.key));
END $$;

ALTER TABLE railyard.tasks
    DROP CONSTRAINT task_inputs_valid,
    ADD CONSTRAINT task_inputs_valid
        CHECK (cardinality(inputs) = 0 OR railyard.paths_each_valid(inputs, true)) NOT VALID,
    DROP CONSTRAINT task_outputs_valid,
    ADD CONSTRAINT task_outputs_valid
        CHECK (cardinality(outputs) = 0 OR railyard.paths_each_valid(outputs, false)),
    DROP CONSTRAINT task_secrets_valid,
    ADD CONSTRAINT task_secrets_valid
        CHECK (secrets = '{}'::jsonb OR railyard.secrets_each_valid(secrets, env));

COMMENT ON FUNCTION railyard.paths_valid(text[], boolean) IS
    'every path relative, without empty, "." or ".." components (with_dot: "." alone allowed); an empty array asks nothing more (task_inputs_valid and task_outputs_valid say the same inline)';
COMMENT ON FUNCTION railyard.secrets_valid(jsonb, jsonb) IS
    'tasks.secrets: an object of NAME (as env names) to a relative file name under the worker''s secrets_dir (no leading /, no . or .. components, at most 255 characters); a NAME may not also be in env; {} asks nothing more (task_secrets_valid says the same inline)';
