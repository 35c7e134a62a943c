-- 0009_outbox: commit-status webhooks through a transactional outbox
-- (docs/integrations.md, "Webhooks"), and the container image a task may
-- run in (docs/integrations.md, "Container executor").

-- Where state changes are sent.  The secrets are NOT here: secret_file and
-- auth_file name files under the sending worker's webhook_secrets_dir.
CREATE TABLE railyard.webhook_endpoints (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    url             text NOT NULL,
    format          text NOT NULL DEFAULT 'generic',
    secret_file     text,
    auth_header     text,
    auth_file       text,
    events          text[] NOT NULL DEFAULT '{pipeline,task}',
    team            text,
    enabled         boolean NOT NULL DEFAULT true,
    max_attempts    integer NOT NULL DEFAULT 12,
    timeout_ms      integer NOT NULL DEFAULT 10000,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_name_valid CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    CONSTRAINT webhook_url_valid CHECK (url ~ '^https?://[^\s]+$' AND length(url) <= 2000),
    CONSTRAINT webhook_format_valid CHECK (format IN ('generic', 'github', 'gitlab')),
    CONSTRAINT webhook_files_valid CHECK (
        (secret_file IS NULL OR secret_file ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$') AND
        (auth_file IS NULL OR auth_file ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$')),
    CONSTRAINT webhook_auth_pair CHECK ((auth_header IS NULL) = (auth_file IS NULL)),
    CONSTRAINT webhook_auth_header_valid CHECK (auth_header IS NULL OR auth_header ~ '^[A-Za-z0-9-]{1,64}$'),
    CONSTRAINT webhook_events_valid CHECK (events <@ '{pipeline,task}' AND cardinality(events) > 0),
    CONSTRAINT webhook_max_attempts_range CHECK (max_attempts BETWEEN 1 AND 100),
    CONSTRAINT webhook_timeout_range CHECK (timeout_ms BETWEEN 100 AND 120000)
);
COMMENT ON TABLE railyard.webhook_endpoints IS
    'where pipeline and task state changes are sent (generic JSON, GitHub or GitLab commit status); secrets live in files on the sending worker, never here';
COMMENT ON COLUMN railyard.webhook_endpoints.url IS
    'POST target; {sha} is replaced by the pipeline''s commit (source_commit, else revision); github/gitlab endpoints only get pipelines that have one';
COMMENT ON COLUMN railyard.webhook_endpoints.secret_file IS
    'file name under the worker''s webhook_secrets_dir whose content keys the HMAC-SHA256 signature header; NULL: unsigned';
COMMENT ON COLUMN railyard.webhook_endpoints.auth_header IS
    'header sent with auth_file''s content as its value (Authorization for GitHub "Bearer TOKEN", PRIVATE-TOKEN for GitLab)';
COMMENT ON COLUMN railyard.webhook_endpoints.events IS
    'which changes are sent: pipeline (queued, running, finished) and/or task (running, finished)';
COMMENT ON COLUMN railyard.webhook_endpoints.team IS
    'only pipelines of this team; NULL: every team';
COMMENT ON COLUMN railyard.webhook_endpoints.max_attempts IS
    'attempts before a delivery becomes a dead letter (state dead)';

CREATE TYPE railyard.delivery_state AS ENUM ('pending', 'delivered', 'dead');

-- One row per (endpoint, state change), written by triggers in the
-- transaction of the change itself: committed together or not at all.
CREATE TABLE railyard.webhook_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id     bigint NOT NULL REFERENCES railyard.webhook_endpoints (id) ON DELETE CASCADE,
    pipeline_id     bigint NOT NULL,
    task_id         bigint,
    event           text NOT NULL,
    body            jsonb NOT NULL,
    url             text NOT NULL,
    idempotency_key uuid NOT NULL DEFAULT gen_random_uuid(),
    state           railyard.delivery_state NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sending_until   timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
-- The sender reads the head of each (endpoint, pipeline) queue.
CREATE INDEX webhook_outbox_pending ON railyard.webhook_outbox (endpoint_id, pipeline_id, id)
    WHERE state = 'pending';
COMMENT ON TABLE railyard.webhook_outbox IS
    'transactional outbox: one row per endpoint and state change, delivered at least once, in id order per endpoint and pipeline; state dead is the dead letter';
COMMENT ON COLUMN railyard.webhook_outbox.body IS
    'the exact JSON POSTed, already in the endpoint''s format';
COMMENT ON COLUMN railyard.webhook_outbox.url IS
    'the endpoint''s url with {sha} filled in when the row was written';
COMMENT ON COLUMN railyard.webhook_outbox.idempotency_key IS
    'sent as Idempotency-Key (and X-Railyard-Delivery) on every attempt: a receiver drops repeats by it';
COMMENT ON COLUMN railyard.webhook_outbox.sending_until IS
    'a sender holds the row until then (a sender that dies lets it go)';
COMMENT ON COLUMN railyard.webhook_outbox.next_attempt_at IS
    'not sent before then: exponential backoff with jitter after a failure';

-- Who sends: one worker at a time, farm-wide (sql/85_outbox.sql).
CREATE TABLE railyard.webhook_sender (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    agent_id        bigint,
    agent_name      text,
    lease_until     timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO railyard.webhook_sender DEFAULT VALUES;
COMMENT ON TABLE railyard.webhook_sender IS
    'the one worker that sends webhooks now, and until when its lease holds';

ALTER TABLE railyard.tasks
    ADD COLUMN image text,
    ADD CONSTRAINT task_image_valid CHECK (image IS NULL OR
        (length(image) <= 500 AND image ~ '^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$'));
COMMENT ON COLUMN railyard.tasks.image IS
    'container image the task runs in (podman or docker on an agent labelled so); NULL: on the host';
