-- 0005_deps: services of repositories and the dependencies between them
-- (docs/deps.md, docs/sql.md).  Written by `railyard deps scan` (rows with
-- origin 'detected', and 'explicit' rows from railyard.yaml) and by people
-- (explicit rows inserted with SQL).  Functions and views: sql/70_deps.sql.

CREATE TYPE railyard.dep_origin AS ENUM ('explicit', 'detected');
COMMENT ON TYPE railyard.dep_origin IS
    'explicit: declared by a person (SQL, or railyard.yaml); detected: found in the repository''s files by a scan';

CREATE TABLE railyard.services (
    repository      text NOT NULL,
    name            text NOT NULL,
    root            text,                   -- NULL: no code in the repository (an image)
    ecosystem       text NOT NULL DEFAULT 'other',
    team            text,
    manifest        text,
    owns_root       boolean NOT NULL DEFAULT true,
    origin          railyard.dep_origin NOT NULL DEFAULT 'explicit',
    excluded        boolean NOT NULL DEFAULT false,
    detector        text,
    evidence_file   text,
    evidence_line   integer,
    deploy_file     text,
    deploy_name     text,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    changed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repository, name),
    CONSTRAINT service_repository_valid CHECK (repository ~ '^[A-Za-z0-9_][A-Za-z0-9_.@+=:/-]{0,199}$'),
    CONSTRAINT service_name_valid CHECK (name ~ '^[A-Za-z0-9_.:/@+=-]{1,150}$'),
    CONSTRAINT service_root_relative CHECK (root IS NULL OR (root <> '' AND root !~ '^/'
                                            AND root !~ '(^|/)\.\.(/|$)'))
);
COMMENT ON TABLE railyard.services IS
    'The services of each repository: detected by railyard deps scan, or declared (origin explicit). An explicit row replaces a detected one of the same name.';
COMMENT ON COLUMN railyard.services.repository IS 'the repository''s name (railyard deps scan --repo; default: the directory''s name)';
COMMENT ON COLUMN railyard.services.root IS 'directory relative to the repository (''.'' its top) whose files belong to the service; NULL: an image with no code here';
COMMENT ON COLUMN railyard.services.ecosystem IS 'go, node, maven, gradle, dotnet, python, proto, docker, image, or what a person declared';
COMMENT ON COLUMN railyard.services.manifest IS 'the file that made it a service (go.mod, pom.xml, ...)';
COMMENT ON COLUMN railyard.services.owns_root IS 'false: owns only its manifest (a Maven aggregator pom), not the files of its directory';
COMMENT ON COLUMN railyard.services.excluded IS 'an explicit row saying "not a service": it and its edges leave the graph';
COMMENT ON COLUMN railyard.services.detector IS 'what found it (go.mod, pom.xml, compose image, ...), railyard.yaml, or NULL for a row a person inserted';
COMMENT ON COLUMN railyard.services.evidence_file IS 'file (relative to the repository) that shows it, with evidence_line';
COMMENT ON COLUMN railyard.services.deploy_file IS 'the compose file or Kubernetes manifest that runs it';
COMMENT ON COLUMN railyard.services.deploy_name IS 'its name in deploy_file (the compose service or the Kubernetes workload)';
COMMENT ON COLUMN railyard.services.first_seen IS 'first scan (or insert) that had it';
COMMENT ON COLUMN railyard.services.changed_at IS 'when a scan (or a person) last changed the row; a scanned row is in the latest scan of its repository (railyard.dep_scans), or a scan would have removed it';

CREATE TABLE railyard.service_deps (
    repository      text NOT NULL,
    from_service    text NOT NULL,
    to_service      text NOT NULL,
    kind            railyard.edge_kind NOT NULL DEFAULT 'build',
    origin          railyard.dep_origin NOT NULL DEFAULT 'explicit',
    suppressed      boolean NOT NULL DEFAULT false,
    detector        text,
    evidence_file   text,
    evidence_line   integer,
    more_evidence   text[] NOT NULL DEFAULT '{}',
    first_seen      timestamptz NOT NULL DEFAULT now(),
    changed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repository, from_service, to_service, kind),
    CONSTRAINT service_dep_not_self CHECK (from_service <> to_service),
    CONSTRAINT service_dep_suppress_explicit CHECK (NOT suppressed OR origin = 'explicit')
);
CREATE INDEX service_deps_to ON railyard.service_deps (repository, to_service);
COMMENT ON TABLE railyard.service_deps IS
    'Dependencies between services: from_service needs to_service (build: its build output; test: to run its tests; runtime: running). An explicit row replaces a detected one with the same ends and kind; an explicit row with suppressed removes a false one.';
COMMENT ON COLUMN railyard.service_deps.kind IS 'build, test or runtime (docs/deps.md)';
COMMENT ON COLUMN railyard.service_deps.suppressed IS 'explicit only: this edge is false; it is no part of railyard.service_graph';
COMMENT ON COLUMN railyard.service_deps.detector IS 'what found it (go.mod require, compose depends_on, ...), railyard.yaml, or NULL for a row a person inserted';
COMMENT ON COLUMN railyard.service_deps.evidence_file IS 'file (relative to the repository) where the dependency is written, with evidence_line';
COMMENT ON COLUMN railyard.service_deps.more_evidence IS 'other places ("file:line") that show the same dependency';
COMMENT ON COLUMN railyard.service_deps.first_seen IS 'first scan (or insert) that had it';
COMMENT ON COLUMN railyard.service_deps.changed_at IS 'when a scan (or a person) last changed the row (railyard.service_graph gives last_seen)';

CREATE TABLE railyard.service_paths (
    repository      text NOT NULL,
    service         text NOT NULL,
    glob            text NOT NULL,
    regex           text NOT NULL,
    why             text,
    origin          railyard.dep_origin NOT NULL DEFAULT 'detected',
    deploy          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (repository, service, glob)
);
COMMENT ON TABLE railyard.service_paths IS
    'Paths outside a service''s root whose change affects it: shared build files (go.work, a workspace''s lock file, Directory.Build.props), the compose file or Kubernetes manifest that runs it, railyard.yaml "shared" entries. Written by scans.';
COMMENT ON COLUMN railyard.service_paths.glob IS 'a glob over repository paths (docs/deps.md)';
COMMENT ON COLUMN railyard.service_paths.deploy IS 'the file runs the service (compose, Kubernetes): a change redeploys it without rebuilding it or its dependents';
COMMENT ON COLUMN railyard.service_paths.regex IS 'the glob as an anchored regular expression (PostgreSQL and PCRE2 read it alike)';

CREATE TABLE railyard.dep_scans (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository      text NOT NULL,
    path            text,
    scanned_at      timestamptz NOT NULL DEFAULT now(),
    scanned_by      text NOT NULL DEFAULT session_user,
    services        integer NOT NULL,
    dependencies    integer NOT NULL,
    added           integer NOT NULL,
    removed         integer NOT NULL,
    files_read      integer,
    duration_ms     double precision,
    warnings        text[] NOT NULL DEFAULT '{}',
    revision        text,
    railyard_version text
);
CREATE INDEX dep_scans_repository ON railyard.dep_scans (repository, id);
COMMENT ON TABLE railyard.dep_scans IS 'One row per stored scan: what it found and what changed since the one before.';
COMMENT ON COLUMN railyard.dep_scans.path IS 'the directory scanned, on the host that scanned it';
COMMENT ON COLUMN railyard.dep_scans.added IS 'services and dependencies the scan added';
COMMENT ON COLUMN railyard.dep_scans.removed IS 'services and dependencies the scan removed (no longer found)';
COMMENT ON COLUMN railyard.dep_scans.revision IS 'the git commit scanned when its manifests had no uncommitted change, else NULL: railyard plan reuses the stored graph while the manifests have not changed since';
COMMENT ON COLUMN railyard.dep_scans.railyard_version IS 'the version of railyard (its detectors) that scanned';
COMMENT ON COLUMN railyard.dep_scans.warnings IS 'input the scan could not use ("file:line: message")';
