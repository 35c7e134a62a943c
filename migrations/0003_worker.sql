-- 0003_worker: what the hardened worker records (issue 6, the worker's
-- half).  Applied once; the functions using these columns are in sql/.

-- How an agent contains its tasks, and whether it is fit to take work.
ALTER TABLE railyard.agents
    ADD COLUMN isolation text,
    ADD COLUMN task_identity text,
    ADD COLUMN degraded text,
    ADD COLUMN degraded_since timestamptz;
COMMENT ON COLUMN railyard.agents.degraded IS
    'Why the agent takes no new work although it is online (e.g. "no space left on device: workdir /var/lib/railyard/work has 12 MB free, min_free_mb is 64"); NULL when healthy. Set and cleared by the worker with every heartbeat.';
COMMENT ON COLUMN railyard.agents.degraded_since IS
    'When the agent became degraded (NULL when healthy)';
COMMENT ON COLUMN railyard.agents.disk_mb IS
    'Free space on the agent''s workdir, in MB, as of its last heartbeat';
COMMENT ON COLUMN railyard.agents.isolation IS
    'How the agent contains its tasks: cgroup2, cgroup1+2 (v2 membership, v1 memory), cgroup1, or pgroup (process groups only: no kernel memory limit, a daemon that leaves its session survives until the worker hunts it down)';

COMMENT ON COLUMN railyard.agents.task_identity IS
    'Who the agent''s tasks run as: a uid per task and a gid per pipeline (the task user''s subordinate ids), the task user, or the worker''s own user (a worker not run as root)';

-- Secrets: a task's env values read by the worker from files on the agent
-- ({"NAME": "file under the worker's secrets_dir"}).  Only names and file
-- names are stored here, never a value.
CREATE FUNCTION railyard.secrets_valid(p_secrets jsonb, p_env jsonb) RETURNS boolean
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
COMMENT ON FUNCTION railyard.secrets_valid(jsonb, jsonb) IS
    'tasks.secrets: an object of NAME (as env names) to a relative file name under the worker''s secrets_dir (no leading /, no . or .. components, at most 255 characters); a NAME may not also be in env';

ALTER TABLE railyard.tasks
    ADD COLUMN secrets jsonb NOT NULL DEFAULT '{}',
    ADD CONSTRAINT task_secrets_valid CHECK (railyard.secrets_valid(secrets, env));
COMMENT ON COLUMN railyard.tasks.secrets IS
    'Env values the worker reads from files on the agent: {"NAME": "file"}, the file looked up under the worker''s secrets_dir; values are masked (***) in logs and stored tails and never reach the database';

-- What each attempt used, measured for the whole process tree (cgroup) or,
-- without cgroups, for the processes the task waited for (wait4 rusage).
ALTER TABLE railyard.task_attempts
    ADD COLUMN cpu_s double precision,
    ADD COLUMN mem_peak_bytes bigint,
    ADD COLUMN io_read_bytes bigint,
    ADD COLUMN io_write_bytes bigint;
COMMENT ON COLUMN railyard.task_attempts.cpu_s IS
    'CPU seconds (user + system) the attempt used; NULL when not measured';
COMMENT ON COLUMN railyard.task_attempts.mem_peak_bytes IS
    'Peak memory of the attempt: the cgroup''s high-water mark, or the largest process''s RSS without cgroups';
COMMENT ON COLUMN railyard.task_attempts.io_read_bytes IS
    'Bytes the attempt read from block devices (page-cache hits are not counted)';
COMMENT ON COLUMN railyard.task_attempts.io_write_bytes IS
    'Bytes the attempt wrote to block devices';
COMMENT ON COLUMN railyard.task_attempts.duration_s IS
    'Process run time measured by the worker''s monotonic clock (not the difference of wall-clock timestamps)';

-- Functions whose signatures changed: drop the old ones so that sql/
-- creates the new ones instead of overloads next to them.
DROP FUNCTION IF EXISTS railyard.complete_tasks(bigint, bigint[], int[], text[], int[], text[],
                                                timestamptz[], timestamptz[], text[], text[]);
DROP FUNCTION IF EXISTS railyard.register_agent(text, text, text, text, int, bigint, bigint,
                                                text[], int, int, bigint, int, text, int, boolean);
DROP FUNCTION IF EXISTS railyard.update_agent(bigint, text[], int, int, bigint);
DROP FUNCTION IF EXISTS railyard.heartbeat(bigint, bigint[], int[], int);
-- claim_tasks returns the secrets' names and files too (a new row type).
DROP FUNCTION IF EXISTS railyard.claim_tasks(bigint, bigint[]);
