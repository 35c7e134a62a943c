-- 0002_hardening: roles for least privilege, ids only from railyard,
-- an audit log that says which worker agent acted, and the team map for
-- optional row-level security.  Applied exactly once by `railyard migrate`;
-- grants, SECURITY DEFINER settings and policies live in sql/90_roles.sql
-- (re-applied by every migrate, after every function exists).

-- The three group roles (NOLOGIN): people and programs log in as their own
-- roles and are made members of one of these.  Roles belong to the whole
-- cluster, so another database's migrate may have made them already (or be
-- making them right now).  Creating them needs CREATEROLE: a managed
-- database's admin can create them beforehand instead.
DO $$
DECLARE
    r text;
    what text;
BEGIN
    FOR r, what IN VALUES
        ('railyard_submitter', 'may insert pipelines, tasks and edges, cancel pipelines (its team''s, '
                               'with row-level security on) and read everything'),
        ('railyard_worker', 'may call the worker functions (register, heartbeat, claim, start, '
                            'complete, offline) and read; no direct writes'),
        ('railyard_reader', 'may read every table and view and call the read-only functions')
    LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXECUTE format('COMMENT ON ROLE %I IS %L', r, 'railyard: ' || what);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;   -- a concurrent migrate of another database made it
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'cannot create role %: role % (running railyard migrate) lacks CREATEROLE',
                                r, current_user
                    USING HINT = 'as a superuser run: CREATE ROLE railyard_submitter NOLOGIN; '
                                 'CREATE ROLE railyard_worker NOLOGIN; CREATE ROLE railyard_reader NOLOGIN; '
                                 'then railyard migrate again (docs/operations.md, "Roles")';
        END;
    END LOOP;
END $$;

-- Ids come from railyard only: an explicit id would make a later
-- submission collide on the primary key (audit_log already was ALWAYS).
ALTER TABLE railyard.pipelines ALTER COLUMN id SET GENERATED ALWAYS;
ALTER TABLE railyard.tasks ALTER COLUMN id SET GENERATED ALWAYS;
ALTER TABLE railyard.agents ALTER COLUMN id SET GENERATED ALWAYS;

-- The actor of an audit row is the session's login role; the agent is the
-- worker agent its connection names, recorded only for sessions that may
-- act as workers (sql/00_util.sql, railyard.audit_agent()).
ALTER TABLE railyard.audit_log ADD COLUMN agent text;

-- Which roles may submit and cancel for which team when row-level security
-- is turned on for railyard.pipelines (docs/operations.md, "Roles").
CREATE TABLE railyard.team_roles (
    team    text NOT NULL,
    role    regrole NOT NULL,
    PRIMARY KEY (team, role),
    CONSTRAINT team_roles_team_valid CHECK (team ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$')
);

-- ---- what \d+ shows ---------------------------------------------------------

COMMENT ON SCHEMA railyard IS 'Railyard: pipelines, tasks, edges, agents, run history and audit log (docs/sql.md)';

COMMENT ON TABLE railyard.pipelines IS
    'One row per submitted pipeline. Insert it with its tasks and edges in one transaction; validated at COMMIT.';
COMMENT ON COLUMN railyard.pipelines.team IS 'owning team: [A-Za-z0-9][A-Za-z0-9_.-]{0,62}; with row-level security on, only members of railyard.team_roles for it may submit or cancel';
COMMENT ON COLUMN railyard.pipelines.priority IS '-1000..1000, higher first; tasks without their own priority inherit it';
COMMENT ON COLUMN railyard.pipelines.revision IS 'the revision the tasks build, given to them as RAILYARD_REVISION';
COMMENT ON COLUMN railyard.pipelines.changed_paths IS 'paths the change touched, for only_if_changed; NULL: unknown, every task runs';
COMMENT ON COLUMN railyard.pipelines.state IS 'queued, running, succeeded, failed or cancelled; set by railyard only';
COMMENT ON COLUMN railyard.pipelines.submitted_by IS 'login role that inserted it (forced, not settable)';
COMMENT ON COLUMN railyard.pipelines.validated_at IS 'when COMMIT validated it; after this its tasks and edges are immutable';
COMMENT ON COLUMN railyard.pipelines.started_at IS 'first claim of one of its tasks';

COMMENT ON TABLE railyard.tasks IS
    'One row per task: its definition (set at submission, immutable after) and its run state (owned by railyard).';
COMMENT ON COLUMN railyard.tasks.name IS 'unique in its pipeline; [A-Za-z0-9_][A-Za-z0-9_.:/@+=-]{0,199}';
COMMENT ON COLUMN railyard.tasks.command IS 'run as /bin/sh -c command; at most 131071 bytes (the kernel''s per-argument limit)';
COMMENT ON COLUMN railyard.tasks.env IS 'object of NAME -> string added to the fixed task environment; each NAME=value at most 131071 bytes';
COMMENT ON COLUMN railyard.tasks.requires IS 'labels the agent must all have (subset test); label syntax [A-Za-z0-9_][A-Za-z0-9_.:+=@/-]{0,63}';
COMMENT ON COLUMN railyard.tasks.os IS 'NULL: any; else must equal the agent''s os';
COMMENT ON COLUMN railyard.tasks.arch IS 'NULL: any; else must equal the agent''s arch';
COMMENT ON COLUMN railyard.tasks.cpu IS 'cpu units the task needs from the agent (1..1024)';
COMMENT ON COLUMN railyard.tasks.mem_mb IS 'memory in MB; the task is killed (oom) above it';
COMMENT ON COLUMN railyard.tasks.pool IS 'named resource pool limiting farm-wide concurrency';
COMMENT ON COLUMN railyard.tasks.priority IS 'NULL at insert: the pipeline''s priority (filled at COMMIT)';
COMMENT ON COLUMN railyard.tasks.version IS 'definition version: part of cache keys and forecast identity';
COMMENT ON COLUMN railyard.tasks.inputs IS 'declared input paths or globs (cache keys)';
COMMENT ON COLUMN railyard.tasks.cache_key IS 'computed by railyard for cacheable tasks';
COMMENT ON COLUMN railyard.tasks.run_if IS 'on_success (default), on_failure or always: when the task runs once its upstreams finished';
COMMENT ON COLUMN railyard.tasks.only_if_changed IS 'PCRE2 pattern over the pipeline''s changed_paths; no match: skipped';
COMMENT ON COLUMN railyard.tasks.max_attempts IS 'attempts before a task whose agent keeps getting lost fails';
COMMENT ON COLUMN railyard.tasks.timeout_s IS 'killed and failed with reason timeout past this many seconds';
COMMENT ON COLUMN railyard.tasks.state IS 'blocked, ready, running, succeeded, failed, cached, skipped or cancelled; railyard''s only';
COMMENT ON COLUMN railyard.tasks.reason IS 'why it failed, was skipped or cancelled, or why it was last retried';
COMMENT ON COLUMN railyard.tasks.waiting_on IS 'upstream tasks not finished yet';
COMMENT ON COLUMN railyard.tasks.upstream_failed IS 'some upstream failed (directly or through skips): on_failure tasks run, on_success ones skip';
COMMENT ON COLUMN railyard.tasks.rank IS 'upward rank: its weight plus the heaviest chain below it (claim order after priority)';
COMMENT ON COLUMN railyard.tasks.attempt IS 'attempt number of the current or last lease; completions are fenced by it';
COMMENT ON COLUMN railyard.tasks.agent_id IS 'agent holding the lease while running (the lease is the agent''s)';
COMMENT ON COLUMN railyard.tasks.started_at IS 'when the process started (reported by the worker)';

COMMENT ON TABLE railyard.edges IS
    'Dependencies: downstream waits for upstream. kind (build, test, runtime) says why; every kind orders execution.';

COMMENT ON TABLE railyard.agents IS 'One row per worker (agent): host facts, labels, capacity and lease.';
COMMENT ON COLUMN railyard.agents.labels IS 'configured labels plus its os and arch; a task runs here only if its requires are a subset';
COMMENT ON COLUMN railyard.agents.cpus IS 'cpu units offered to tasks (NULL: cores)';
COMMENT ON COLUMN railyard.agents.offered_mem_mb IS 'memory offered to tasks in MB (NULL: mem_mb)';
COMMENT ON COLUMN railyard.agents.running IS 'tasks running at its last heartbeat';
COMMENT ON COLUMN railyard.agents.lease_s IS 'lease length in seconds: silent longer than this, it is presumed dead';
COMMENT ON COLUMN railyard.agents.lease_until IS 'lease of the agent and of every task it holds; renewed by heartbeats';

COMMENT ON TABLE railyard.task_attempts IS 'Run history: one row per attempt of a task, kept after the task ends.';
COMMENT ON COLUMN railyard.task_attempts.outcome IS 'succeeded, failed, cancelled, lost or skipped';
COMMENT ON COLUMN railyard.task_attempts.duration_s IS 'process run time in seconds';
COMMENT ON COLUMN railyard.task_attempts.log_path IS 'the attempt''s log file on the agent''s host';
COMMENT ON COLUMN railyard.task_attempts.log_tail IS 'the end of the attempt''s output';

COMMENT ON TABLE railyard.audit_log IS
    'Every state change, written by triggers; append-only (only railyard.prune() removes old rows).';
COMMENT ON COLUMN railyard.audit_log.actor IS 'the session''s login role (session_user): who acted; cannot be set by the session';
COMMENT ON COLUMN railyard.audit_log.agent IS 'the worker agent a worker session named, for events caused by worker calls; NULL otherwise';
COMMENT ON COLUMN railyard.audit_log.object IS 'pipeline, task, agent, retention, artifact or cache';
COMMENT ON COLUMN railyard.audit_log.event IS 'submit, ready, claim, start, finish, retry, lost, skip, cancel, online, offline, draining, prune, quarantine or revoke';
COMMENT ON COLUMN railyard.audit_log.detail IS 'attempt, agent_id, reason, exit_code, ... as the event has them';

COMMENT ON TABLE railyard.schema_migrations IS 'migrations/ files applied to this database, once each';
COMMENT ON TABLE railyard.team_roles IS
    'Members of role may submit and cancel pipelines of team, once row-level security is enabled on railyard.pipelines.';

-- railyard.prune() finds old audit rows of no pipeline (agent events)
-- oldest first without reading the rest of the log.
CREATE INDEX audit_log_unowned ON railyard.audit_log (id) WHERE pipeline_id IS NULL;
