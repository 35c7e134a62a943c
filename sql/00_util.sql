-- Helpers shared by the other sql/ files.  Re-applied by every migrate.

-- Who is acting, for the audit log: the session's login role.  Not a
-- setting a session can change: SET ROLE and SECURITY DEFINER functions
-- change current_user, never session_user.
CREATE OR REPLACE FUNCTION railyard.actor() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT session_user::text
$$;
COMMENT ON FUNCTION railyard.actor() IS
    'the audit log''s actor: the session''s login role (session_user), which no SET can change';

-- The worker agent the session names, for audit rows its calls cause.
-- Workers connect with railyard.actor = 'worker:<agent name>'; that is
-- believed only from sessions that may act as workers (members of
-- railyard_worker, superusers included) — from anyone else it is ignored,
-- so a submitter cannot pass its changes off as a worker's.  A worker
-- session could name another agent, as it could pass another agent's id to
-- the worker functions: the actor column says which role really acted.
CREATE OR REPLACE FUNCTION railyard.audit_agent() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN current_setting('railyard.actor', true) LIKE 'worker:_%'
                 AND pg_has_role(session_user, 'railyard_worker', 'USAGE')
                THEN substr(current_setting('railyard.actor', true), 8) END
$$;
COMMENT ON FUNCTION railyard.audit_agent() IS
    'the audit log''s agent: the worker agent a worker session names (railyard.actor = worker:NAME), NULL for other sessions';

-- Whether the session may submit or cancel for a team when row-level
-- security is on: the owner of schema railyard (and superusers) always,
-- others when a railyard.team_roles row for the team names a role they are
-- a member of.
CREATE OR REPLACE FUNCTION railyard.may_act_for_team(p_team text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT pg_has_role(session_user, n.nspowner, 'MEMBER')
        OR EXISTS (SELECT 1 FROM railyard.team_roles tr
                    WHERE tr.team = p_team AND pg_has_role(session_user, tr.role, 'MEMBER'))
      FROM pg_catalog.pg_namespace n WHERE n.nspname = 'railyard'
$$;
COMMENT ON FUNCTION railyard.may_act_for_team(text) IS
    'whether the session''s role may submit or cancel for the team (row-level security; railyard.team_roles)';

-- Whether the statement runs inside one of railyard's own functions: as
-- their owner (the role that ran this migrate, named here as a constant)
-- with railyard.internal on, which each of them sets (sql/90_roles.sql).
-- Any role can SET railyard.internal, none but the owner's members can be
-- the owner: a submitter's INSERT never passes for submit_pipeline's.
-- (Functions left to an older owner do not pass either: their pipelines
-- are then validated at COMMIT like one inserted by hand.)
DO $do$
BEGIN
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION railyard.in_railyard_function() RETURNS boolean
        LANGUAGE sql STABLE AS $b$
            SELECT current_user = %L::name
               AND coalesce(current_setting('railyard.internal', true) = 'on', false)
        $b$$f$, current_user);
END $do$;
COMMENT ON FUNCTION railyard.in_railyard_function() IS
    'whether the statement runs inside railyard''s own functions (their owner, railyard.internal on): submit_pipeline''s inserts';

-- Whether row-level security by team is turned on (docs/operations.md, "Roles").
-- PL/pgSQL, not SQL: a SQL function with a FROM cannot be inlined, and
-- each new session's planner parsed its body trying to, then parsed and
-- planned it again to run it (0.5 ms of every `railyard submit`).
CREATE OR REPLACE FUNCTION railyard.team_rls_enabled() RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT c.relrowsecurity FROM pg_catalog.pg_class c
             WHERE c.oid = 'railyard.pipelines'::regclass);
END $$;
COMMENT ON FUNCTION railyard.team_rls_enabled() IS
    'whether row-level security is enabled on railyard.pipelines (submit and cancel only for one''s teams)';

-- A task that ended in a way its on_success dependents cannot build on.
CREATE OR REPLACE FUNCTION railyard.is_bad_outcome(s railyard.task_state, upstream_failed boolean)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT s IN ('failed', 'cancelled') OR (s = 'skipped' AND upstream_failed)
$$;
COMMENT ON FUNCTION railyard.is_bad_outcome(railyard.task_state, boolean) IS
    'whether a finished task counts as a failure for its dependents (failed, cancelled, or skipped because an upstream failed)';
