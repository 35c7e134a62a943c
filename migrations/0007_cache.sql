-- 0007_cache: sources, declared outputs, artifacts and the build cache
-- (docs/cache.md).  Blobs live in the stores; the database keeps what
-- they are, who made them, which cache key maps to which output, and the
-- evidence of every keyed run.

-- A list of declared paths (inputs or outputs): relative, no empty, "."
-- or ".." component (one trailing slash is fine), no control characters.
-- with_dot: "." alone (the whole tree) is allowed too (inputs).
CREATE FUNCTION railyard.paths_valid(p text[], with_dot boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(bool_and(x IS NOT NULL AND length(x) BETWEEN 1 AND 4096
                             AND x !~ '[\x01-\x1f\x7f]'
                             AND ((with_dot AND x = '.')
                                  OR ('/' || regexp_replace(x, '/$', '') || '/') !~ '/(\.{1,2})?/')),
                    true)
      FROM unnest(p) x
$$;
COMMENT ON FUNCTION railyard.paths_valid(text[], boolean) IS
    'CHECK helper: every path relative, without empty, "." or ".." components (with_dot: "." alone allowed)';

ALTER TABLE railyard.pipelines
    ADD COLUMN source text,
    ADD COLUMN source_commit text,
    ADD CONSTRAINT pipeline_source_valid CHECK (source IS NULL OR
        (length(source) BETWEEN 1 AND 4096 AND source !~ '^-' AND source !~ '[\x01-\x1f\x7f]')),
    ADD CONSTRAINT pipeline_source_commit_valid CHECK (source_commit IS NULL OR
        source_commit ~ '^[0-9a-f]{40}([0-9a-f]{24})?$');
COMMENT ON COLUMN railyard.pipelines.source IS
    'git repository (path or URL git can fetch) or plain directory every task runs in; NULL: an empty workspace';
COMMENT ON COLUMN railyard.pipelines.source_commit IS
    'the commit revision resolved to, pinned by the first worker that resolved it (railyard.pin_source_commit)';

ALTER TABLE railyard.tasks
    ADD COLUMN outputs text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT task_outputs_valid CHECK (railyard.paths_valid(outputs, false));
-- Existing rows were never checked: enforce for new ones without failing the upgrade.
ALTER TABLE railyard.tasks
    ADD CONSTRAINT task_inputs_valid CHECK (railyard.paths_valid(inputs, true)) NOT VALID;
COMMENT ON COLUMN railyard.tasks.outputs IS
    'paths in the task''s tree archived on success, stored content-addressed and restored into downstream trees';

CREATE TABLE railyard.artifacts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest          text NOT NULL UNIQUE,
    size            bigint NOT NULL,
    entries         integer,
    content_bytes   bigint,
    manifest        jsonb,
    task_id         bigint,
    attempt         integer,
    agent_name      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz NOT NULL DEFAULT now(),
    uses            bigint NOT NULL DEFAULT 0,
    CONSTRAINT artifact_digest_valid CHECK (digest ~ '^[0-9a-f]{64}$'),
    CONSTRAINT artifact_size_valid CHECK (size >= 0)
);
COMMENT ON TABLE railyard.artifacts IS
    'one row per stored archive of outputs (the blob itself is in the stores, under cas/DIGEST)';
COMMENT ON COLUMN railyard.artifacts.digest IS 'SHA-256 of the archive bytes, lowercase hex';
COMMENT ON COLUMN railyard.artifacts.size IS 'archive bytes (zstd-compressed tar)';
COMMENT ON COLUMN railyard.artifacts.content_bytes IS 'bytes of regular files before compression';
COMMENT ON COLUMN railyard.artifacts.manifest IS
    'path -> "sha256:HEX" | "dir" | "symlink:TARGET": which outputs differ between two artifacts';
COMMENT ON COLUMN railyard.artifacts.task_id IS 'the task (and attempt, agent) that first produced it';
COMMENT ON COLUMN railyard.artifacts.last_used_at IS 'last production, lookup hit or restore: LRU for GC';
COMMENT ON COLUMN railyard.artifacts.uses IS 'restores served from it (cache hits and downstream restores)';

CREATE TABLE railyard.task_outputs (
    task_id         bigint PRIMARY KEY REFERENCES railyard.tasks (id) ON DELETE CASCADE,
    attempt         integer NOT NULL,
    pipeline_id     bigint NOT NULL,
    digest          text NOT NULL,
    size            bigint NOT NULL,
    cached          boolean NOT NULL DEFAULT false,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_outputs_pipeline ON railyard.task_outputs (pipeline_id);
COMMENT ON TABLE railyard.task_outputs IS
    'the artifact holding a finished task''s outputs: what its downstream tasks restore, on any host';
COMMENT ON COLUMN railyard.task_outputs.cached IS 'true: served from the cache, not built by this task';

CREATE TABLE railyard.cache_entries (
    key             text PRIMARY KEY,
    output_digest   text,
    output_size     bigint,
    components      jsonb NOT NULL,
    source          text,
    task_name       text NOT NULL,
    service         text,
    kind            text,
    team            text,
    task_id         bigint,
    attempt         integer,
    agent_name      text,
    duration_s      double precision,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_hit_at     timestamptz,
    hits            bigint NOT NULL DEFAULT 0,
    revoked_at      timestamptz,
    revocation_id   bigint,
    CONSTRAINT cache_key_valid CHECK (key ~ '^[0-9a-f]{64}$'),
    CONSTRAINT cache_output_digest_valid CHECK (output_digest IS NULL OR output_digest ~ '^[0-9a-f]{64}$')
);
CREATE INDEX cache_entries_identity ON railyard.cache_entries (task_name, source, created_at DESC);
CREATE INDEX cache_entries_agent ON railyard.cache_entries (agent_name, created_at);
CREATE INDEX cache_entries_created ON railyard.cache_entries (created_at);
CREATE INDEX cache_entries_output ON railyard.cache_entries (output_digest);
COMMENT ON TABLE railyard.cache_entries IS
    'cache key -> output digest, with the key''s components so that a miss can be explained';
COMMENT ON COLUMN railyard.cache_entries.key IS
    'SHA-256 of the canonical encoding of components (docs/cache.md, "The key")';
COMMENT ON COLUMN railyard.cache_entries.output_digest IS 'artifact of the outputs; NULL: the task declares none';
COMMENT ON COLUMN railyard.cache_entries.components IS
    'name -> value: def.command, def.env.NAME, platform.os, input:PATH, upstream:TASK, ...';
COMMENT ON COLUMN railyard.cache_entries.duration_s IS 'run time of the attempt that made it: time saved per hit';
COMMENT ON COLUMN railyard.cache_entries.revoked_at IS 'set by railyard cache revoke: never served again';

CREATE TABLE railyard.cache_runs (
    task_id         bigint NOT NULL REFERENCES railyard.tasks (id) ON DELETE CASCADE,
    attempt         integer NOT NULL,
    pipeline_id     bigint NOT NULL,
    key             text NOT NULL,
    components      jsonb NOT NULL,
    outcome         text NOT NULL,
    output_digest   text,
    output_size     bigint,
    agent_name      text,
    duration_s      double precision,
    restored_bytes  bigint NOT NULL DEFAULT 0,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, attempt),
    CONSTRAINT cache_run_outcome_valid CHECK (outcome IN ('succeeded', 'failed', 'cached'))
);
CREATE INDEX cache_runs_key ON railyard.cache_runs (key);
CREATE INDEX cache_runs_recorded ON railyard.cache_runs (recorded_at);
COMMENT ON TABLE railyard.cache_runs IS
    'every run of a keyed task: the evidence behind cache_stats, nondeterministic_tasks and flaky_tasks';
COMMENT ON COLUMN railyard.cache_runs.outcome IS
    'succeeded or failed (ran), cached (served from the cache entry with this key)';
COMMENT ON COLUMN railyard.cache_runs.duration_s IS 'run time; for cached: the entry''s run time (time saved)';

CREATE TABLE railyard.cache_corruptions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    agent_name      text,
    digest          text NOT NULL,
    store           text NOT NULL,
    detail          text
);
CREATE INDEX cache_corruptions_digest ON railyard.cache_corruptions (digest);
COMMENT ON TABLE railyard.cache_corruptions IS
    'blobs found not to match their digest on restore (each also in audit_log as event quarantine)';
COMMENT ON COLUMN railyard.cache_corruptions.store IS 'which store held the bad copy, and where it was moved';

CREATE TABLE railyard.cache_revocations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    revoked_by      text NOT NULL,
    agent_name      text,
    since           timestamptz,
    key             text,
    reason          text,
    entries         integer NOT NULL DEFAULT 0,
    CONSTRAINT cache_revocation_criteria CHECK (agent_name IS NOT NULL OR since IS NOT NULL OR key IS NOT NULL)
);
COMMENT ON TABLE railyard.cache_revocations IS
    'railyard cache revoke: entries invalidated by provenance (agent, time, key); also in audit_log';
