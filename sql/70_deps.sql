-- Services and their dependencies (migrations/0005_deps.sql): storing a
-- scan, the effective graph, and what a change affects.  docs/deps.md
-- explains the rules; pkg/plan applies the same ones in C and the tests
-- check that both agree.

-- A row a person inserts replaces the row a scan (or railyard.yaml) wrote
-- for the same service or the same dependency: explicit wins.
CREATE OR REPLACE FUNCTION railyard.explicit_replaces_detected() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.origin <> 'explicit' THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'services' THEN
        DELETE FROM railyard.services s
         WHERE s.repository = NEW.repository AND s.name = NEW.name
           AND (s.origin = 'detected' OR (s.detector = 'railyard.yaml'
                                          AND NEW.detector IS DISTINCT FROM 'railyard.yaml'));
    ELSE
        DELETE FROM railyard.service_deps d
         WHERE d.repository = NEW.repository AND d.from_service = NEW.from_service
           AND d.to_service = NEW.to_service AND d.kind = NEW.kind
           AND (d.origin = 'detected' OR (d.detector = 'railyard.yaml'
                                          AND NEW.detector IS DISTINCT FROM 'railyard.yaml'));
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION railyard.explicit_replaces_detected() IS
    'Trigger: an explicit row replaces the detected row (or the railyard.yaml row, when a person inserts it) with the same key.';

CREATE OR REPLACE TRIGGER services_explicit BEFORE INSERT ON railyard.services
    FOR EACH ROW WHEN (NEW.origin = 'explicit')
    EXECUTE FUNCTION railyard.explicit_replaces_detected();
CREATE OR REPLACE TRIGGER service_deps_explicit BEFORE INSERT ON railyard.service_deps
    FOR EACH ROW WHEN (NEW.origin = 'explicit')
    EXECUTE FUNCTION railyard.explicit_replaces_detected();

-- Stores one scan of a repository (the JSON `railyard deps scan` sends:
-- {"services": [...], "edges": [...], "paths": [...], "warnings": [...]})
-- in one transaction, and returns what changed since the last scan.  Rows
-- people inserted are never touched; rows of the last scan (detected, or
-- from railyard.yaml) that this scan no longer has are removed.  Scans of
-- one repository take turns (an advisory lock).
CREATE OR REPLACE FUNCTION railyard.store_scan(p_repository text, p_path text, p_scan jsonb,
                                               p_duration_ms double precision DEFAULT NULL,
                                               p_revision text DEFAULT NULL,
                                               p_version text DEFAULT NULL)
RETURNS TABLE (change text, object text, item text, detail text)
LANGUAGE plpgsql
-- the anti-joins against the scan's rows must hash: a nested loop over a
-- thousand services reads the scan a thousand times
SET enable_nestloop = off
AS $$
DECLARE
    v_n integer;
    v_added integer := 0;
    v_removed integer := 0;
BEGIN
    IF p_repository IS NULL OR p_repository !~ '^[A-Za-z0-9_][A-Za-z0-9_.@+=:/-]{0,199}$' THEN
        RAISE EXCEPTION 'repository name "%" is invalid: letters, digits and _ . @ + = : / -, at most 200',
            p_repository USING ERRCODE = '22023';
    END IF;
    IF p_scan IS NULL OR jsonb_typeof(p_scan -> 'services') IS DISTINCT FROM 'array'
       OR jsonb_typeof(p_scan -> 'edges') IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'a scan is an object with "services" and "edges" arrays'
            USING ERRCODE = '22023';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('railyard.store_scan'), hashtext(p_repository));

    -- services
    RETURN QUERY
    SELECT 'added', 'service', x.name, coalesce(x.root, '(no root)') || ' ' || coalesce(x.ecosystem, 'other')
      FROM jsonb_to_recordset(p_scan -> 'services') AS x(name text, root text, ecosystem text)
     WHERE NOT EXISTS (SELECT 1 FROM railyard.services s
                        WHERE s.repository = p_repository AND s.name = x.name)
     ORDER BY x.name COLLATE "C";
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_added := v_added + v_n;

    RETURN QUERY
    WITH gone AS (
        DELETE FROM railyard.services s
         WHERE s.repository = p_repository
           AND (s.origin = 'detected' OR s.detector = 'railyard.yaml')
           AND NOT EXISTS (SELECT 1 FROM jsonb_to_recordset(p_scan -> 'services') AS x(name text)
                            WHERE x.name = s.name)
        RETURNING s.name, s.root, s.ecosystem)
    SELECT 'removed', 'service', g.name, coalesce(g.root, '(no root)') || ' ' || g.ecosystem
      FROM gone g ORDER BY g.name COLLATE "C";
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_removed := v_removed + v_n;

    INSERT INTO railyard.services AS s (repository, name, root, ecosystem, team, manifest,
                                        owns_root, origin, excluded, detector, evidence_file,
                                        evidence_line, deploy_file, deploy_name, first_seen,
                                        changed_at)
    SELECT p_repository, x.name, x.root, coalesce(x.ecosystem, 'other'), x.team, x.manifest,
           coalesce(x.owns_root, true), coalesce(x.origin, 'detected'), coalesce(x.excluded, false),
           CASE WHEN x.origin = 'explicit' THEN 'railyard.yaml' ELSE x.detector END,
           x.evidence_file, x.evidence_line, x.deploy_file, x.deploy_name, now(), now()
      FROM jsonb_to_recordset(p_scan -> 'services') AS x(name text, root text, ecosystem text,
           team text, manifest text, owns_root boolean, origin railyard.dep_origin,
           excluded boolean, detector text, evidence_file text, evidence_line integer,
           deploy_file text, deploy_name text)
    ON CONFLICT (repository, name) DO UPDATE
       SET root = EXCLUDED.root, ecosystem = EXCLUDED.ecosystem, team = EXCLUDED.team,
           manifest = EXCLUDED.manifest, owns_root = EXCLUDED.owns_root, origin = EXCLUDED.origin,
           excluded = EXCLUDED.excluded, detector = EXCLUDED.detector,
           evidence_file = EXCLUDED.evidence_file, evidence_line = EXCLUDED.evidence_line,
           deploy_file = EXCLUDED.deploy_file, deploy_name = EXCLUDED.deploy_name,
           changed_at = now()
     WHERE (s.origin = 'detected' OR s.detector = 'railyard.yaml')
       AND (s.root, s.ecosystem, s.team, s.manifest, s.owns_root, s.origin, s.excluded, s.detector,
            s.evidence_file, s.evidence_line, s.deploy_file, s.deploy_name)
           IS DISTINCT FROM
           (EXCLUDED.root, EXCLUDED.ecosystem, EXCLUDED.team, EXCLUDED.manifest, EXCLUDED.owns_root,
            EXCLUDED.origin, EXCLUDED.excluded, EXCLUDED.detector, EXCLUDED.evidence_file,
            EXCLUDED.evidence_line, EXCLUDED.deploy_file, EXCLUDED.deploy_name);

    -- dependencies
    RETURN QUERY
    SELECT 'added', 'dependency', x."from" || ' -> ' || x."to",
           x.kind || coalesce(', ' || x.evidence_file || ':' || x.evidence_line, '')
      FROM jsonb_to_recordset(p_scan -> 'edges')
           AS x("from" text, "to" text, kind text, evidence_file text, evidence_line integer)
     WHERE NOT EXISTS (SELECT 1 FROM railyard.service_deps d
                        WHERE d.repository = p_repository AND d.from_service = x."from"
                          AND d.to_service = x."to" AND d.kind::text = x.kind)
     ORDER BY x."from" COLLATE "C", x."to" COLLATE "C", x.kind;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_added := v_added + v_n;

    RETURN QUERY
    WITH gone AS (
        DELETE FROM railyard.service_deps d
         WHERE d.repository = p_repository
           AND (d.origin = 'detected' OR d.detector = 'railyard.yaml')
           AND NOT EXISTS (SELECT 1 FROM jsonb_to_recordset(p_scan -> 'edges')
                                      AS x("from" text, "to" text, kind text)
                            WHERE x."from" = d.from_service AND x."to" = d.to_service
                              AND x.kind = d.kind::text)
        RETURNING d.from_service, d.to_service, d.kind)
    SELECT 'removed', 'dependency', g.from_service || ' -> ' || g.to_service, g.kind::text
      FROM gone g ORDER BY g.from_service COLLATE "C", g.to_service COLLATE "C", g.kind;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_removed := v_removed + v_n;

    INSERT INTO railyard.service_deps AS d (repository, from_service, to_service, kind, origin,
                                            suppressed, detector, evidence_file, evidence_line,
                                            more_evidence, first_seen, changed_at)
    SELECT p_repository, x."from", x."to", x.kind, coalesce(x.origin, 'detected'),
           coalesce(x.suppressed, false),
           CASE WHEN x.origin = 'explicit' THEN 'railyard.yaml' ELSE x.detector END,
           x.evidence_file, x.evidence_line,
           coalesce(ARRAY(SELECT jsonb_array_elements_text(x.more_evidence)), '{}'), now(), now()
      FROM jsonb_to_recordset(p_scan -> 'edges') AS x("from" text, "to" text,
           kind railyard.edge_kind, origin railyard.dep_origin, suppressed boolean,
           detector text, evidence_file text, evidence_line integer, more_evidence jsonb)
    ON CONFLICT (repository, from_service, to_service, kind) DO UPDATE
       SET origin = EXCLUDED.origin, suppressed = EXCLUDED.suppressed,
           detector = EXCLUDED.detector, evidence_file = EXCLUDED.evidence_file,
           evidence_line = EXCLUDED.evidence_line, more_evidence = EXCLUDED.more_evidence,
           changed_at = now()
     WHERE (d.origin = 'detected' OR d.detector = 'railyard.yaml')
       AND (d.origin, d.suppressed, d.detector, d.evidence_file, d.evidence_line, d.more_evidence)
           IS DISTINCT FROM
           (EXCLUDED.origin, EXCLUDED.suppressed, EXCLUDED.detector, EXCLUDED.evidence_file,
            EXCLUDED.evidence_line, EXCLUDED.more_evidence);

    -- paths: written by scans only; unchanged rows stay as they are
    DELETE FROM railyard.service_paths sp
     WHERE sp.repository = p_repository
       AND NOT EXISTS (SELECT 1 FROM jsonb_to_recordset(coalesce(p_scan -> 'paths', '[]'))
                                  AS x(service text, glob text)
                        WHERE x.service = sp.service AND x.glob = sp.glob);
    IF jsonb_typeof(p_scan -> 'paths') = 'array' THEN
        INSERT INTO railyard.service_paths AS sp (repository, service, glob, regex, why, origin,
                                                  deploy)
        SELECT DISTINCT ON (x.service, x.glob) p_repository, x.service, x.glob, x.regex, x.why,
               coalesce(x.origin, 'detected'), coalesce(x.deploy, false)
          FROM jsonb_to_recordset(p_scan -> 'paths') AS x(service text, glob text, regex text,
               why text, origin railyard.dep_origin, deploy boolean)
         WHERE x.service IS NOT NULL AND x.glob IS NOT NULL AND x.regex IS NOT NULL
        ON CONFLICT (repository, service, glob) DO UPDATE
           SET regex = EXCLUDED.regex, why = EXCLUDED.why, origin = EXCLUDED.origin,
               deploy = EXCLUDED.deploy
         WHERE (sp.regex, sp.why, sp.origin, sp.deploy)
               IS DISTINCT FROM (EXCLUDED.regex, EXCLUDED.why, EXCLUDED.origin, EXCLUDED.deploy);
    END IF;

    INSERT INTO railyard.dep_scans (repository, path, services, dependencies, added, removed,
                                    files_read, duration_ms, warnings, revision, railyard_version)
    VALUES (p_repository, p_path, jsonb_array_length(p_scan -> 'services'),
            jsonb_array_length(p_scan -> 'edges'), v_added, v_removed,
            (p_scan ->> 'files_read')::integer, p_duration_ms,
            coalesce(ARRAY(SELECT jsonb_array_elements_text(
                CASE WHEN jsonb_typeof(p_scan -> 'warnings') = 'array'
                     THEN p_scan -> 'warnings' ELSE '[]' END)), '{}'),
            p_revision, p_version);
END $$;
COMMENT ON FUNCTION railyard.store_scan(text, text, jsonb, double precision, text, text) IS
    'Stores one scan of a repository (what railyard deps scan sends) and returns what was added and removed since the last one. Rows people inserted are never touched.';

-- The graph as analysts and `railyard plan` see it: dependencies that are
-- not suppressed, between services that are not excluded.  A scanned edge
-- was last seen by the repository's latest scan (a scan removes what it no
-- longer finds); a person's row when it was last written.
CREATE OR REPLACE VIEW railyard.service_graph AS
SELECT d.repository, d.from_service, d.to_service, d.kind, d.origin, d.detector,
       d.evidence_file || ':' || d.evidence_line AS evidence,
       d.evidence_file, d.evidence_line, d.more_evidence, d.first_seen,
       CASE WHEN d.origin = 'detected' OR d.detector = 'railyard.yaml'
            THEN coalesce((SELECT max(sc.scanned_at) FROM railyard.dep_scans sc
                            WHERE sc.repository = d.repository), d.changed_at)
            ELSE d.changed_at END AS last_seen
  FROM railyard.service_deps d
 WHERE NOT d.suppressed
   AND NOT EXISTS (SELECT 1 FROM railyard.services s
                    WHERE s.repository = d.repository AND s.excluded
                      AND s.name IN (d.from_service, d.to_service));
COMMENT ON VIEW railyard.service_graph IS
    'The effective dependency graph: from_service needs to_service (kind build, test or runtime), with the evidence (file:line), first and last seen; suppressed edges and excluded services left out.';

-- The services a change touches directly: a changed path lies in the
-- service's root (the deepest root holding it; a Maven aggregator owns
-- only its pom.xml) or matches one of its service_paths (a shared build
-- file; or the compose file or manifest that runs it: deploy_only when
-- that is all that changed).  One row per service with the first such path
-- (in byte order, files it is built from first) and how many more.
CREATE OR REPLACE FUNCTION railyard.affected_seeds(p_repository text, p_changed_paths text[])
RETURNS TABLE (service text, reason text, deploy_only boolean)
LANGUAGE sql STABLE AS $$
    WITH paths AS (
        SELECT DISTINCT p FROM unnest(p_changed_paths) p WHERE p IS NOT NULL AND p <> ''
    ), owners AS (
        SELECT DISTINCT ON (pa.p) pa.p, s.name
          FROM paths pa
          JOIN railyard.services s ON s.repository = p_repository AND NOT s.excluded
           AND s.root IS NOT NULL
           AND ((s.owns_root AND (s.root = '.' OR pa.p = s.root
                                  OR left(pa.p, length(s.root) + 1) = s.root || '/'))
                OR (NOT s.owns_root AND pa.p = s.manifest))
         ORDER BY pa.p, CASE WHEN s.root = '.' THEN 0 ELSE length(s.root) END DESC, s.name
    ), hits AS (
        SELECT o.name, 'changed: ' || o.p AS why, o.p, false AS deploy FROM owners o
        UNION ALL
        SELECT sp.service, sp.why || ': ' || pa.p, pa.p, sp.deploy
          FROM paths pa
          JOIN railyard.service_paths sp ON sp.repository = p_repository AND pa.p ~ sp.regex
         WHERE NOT EXISTS (SELECT 1 FROM railyard.services s WHERE s.repository = p_repository
                             AND s.name = sp.service AND s.excluded)
    ), counted AS (
        SELECT h.name, h.why, h.p, h.deploy, count(*) OVER (PARTITION BY h.name) AS n,
               bool_and(h.deploy) OVER (PARTITION BY h.name) AS deploy_only
          FROM hits h
    )
    SELECT DISTINCT ON (c.name) c.name,
           c.why || CASE WHEN c.n > 1 THEN ' (+' || (c.n - 1) || ' more)' ELSE '' END,
           c.deploy_only
      FROM counted c
     ORDER BY c.name, c.deploy, c.p COLLATE "C"
$$;
COMMENT ON FUNCTION railyard.affected_seeds(text, text[]) IS
    'The services whose files a change touches (kind "changed" of railyard.affected), with the first path and how many more; deploy_only when only the file that runs it changed.';

-- The services a change affects, and why (docs/deps.md, "How plan decides"):
--   changed  railyard.affected_seeds: rebuilt, retested and redeployed (only
--            redeployed when only the file that runs it changed)
--   build    it has a build dependency on a rebuilt service (transitively)
--   test     it has a test dependency on a rebuilt service: its tests run
--            again; this goes no further
--   runtime  it has a runtime dependency on a redeployed service: its
--            integration tests run
-- Each service appears once, in the first of: changed (its files), build,
-- changed (deploy only), test, runtime.
CREATE OR REPLACE FUNCTION railyard.affected(p_repository text, p_changed_paths text[])
RETURNS TABLE (service text, kind text, via text, evidence text, reason text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_done text[];
    v_deploy_only text[];
    v_deployed text[];
    v_frontier text[];
    v_next text[];
    v_depth integer := 0;
BEGIN
    RETURN QUERY
    SELECT a.service, 'changed'::text, NULL::text, NULL::text, a.reason
      FROM railyard.affected_seeds(p_repository, p_changed_paths) a WHERE NOT a.deploy_only;

    SELECT coalesce(array_agg(a.service) FILTER (WHERE NOT a.deploy_only), '{}'),
           coalesce(array_agg(a.service) FILTER (WHERE a.deploy_only), '{}')
      INTO v_done, v_deploy_only
      FROM railyard.affected_seeds(p_repository, p_changed_paths) a;
    v_frontier := v_done;
    LOOP
        v_depth := v_depth + 1;
        SELECT array_agg(DISTINCT g.from_service) INTO v_next
          FROM railyard.service_graph g
         WHERE g.repository = p_repository AND g.kind = 'build'
           AND g.to_service = ANY (v_frontier) AND NOT g.from_service = ANY (v_done);
        EXIT WHEN v_next IS NULL OR v_depth > 100000;
        RETURN QUERY
        SELECT DISTINCT ON (g.from_service) g.from_service, 'build'::text, g.to_service, g.evidence,
               'build dependency on ' || g.to_service || coalesce(' (' || g.evidence || ')', '')
          FROM railyard.service_graph g
         WHERE g.repository = p_repository AND g.kind = 'build'
           AND g.from_service = ANY (v_next) AND g.to_service = ANY (v_frontier)
         ORDER BY g.from_service, g.to_service COLLATE "C";
        v_done := v_done || v_next;
        v_frontier := v_next;
    END LOOP;

    RETURN QUERY
    SELECT a.service, 'changed'::text, NULL::text, NULL::text, a.reason
      FROM railyard.affected_seeds(p_repository, p_changed_paths) a
     WHERE a.deploy_only AND NOT a.service = ANY (v_done);
    v_deploy_only := ARRAY(SELECT unnest(v_deploy_only) EXCEPT SELECT unnest(v_done));
    v_deployed := v_done || v_deploy_only;

    RETURN QUERY
    SELECT DISTINCT ON (g.from_service) g.from_service, 'test'::text, g.to_service, g.evidence,
           'test dependency on ' || g.to_service || coalesce(' (' || g.evidence || ')', '')
      FROM railyard.service_graph g
     WHERE g.repository = p_repository AND g.kind = 'test'
       AND g.to_service = ANY (v_done) AND NOT g.from_service = ANY (v_deployed)
     ORDER BY g.from_service, g.to_service COLLATE "C";

    RETURN QUERY
    SELECT DISTINCT ON (g.from_service) g.from_service, 'runtime'::text, g.to_service, g.evidence,
           'runtime dependency on ' || g.to_service || coalesce(' (' || g.evidence || ')', '') ||
           ': integration tests'
      FROM railyard.service_graph g
     WHERE g.repository = p_repository AND g.kind = 'runtime'
       AND g.to_service = ANY (v_deployed) AND NOT g.from_service = ANY (v_deployed)
       AND NOT EXISTS (SELECT 1 FROM railyard.service_graph t
                        WHERE t.repository = p_repository AND t.kind = 'test'
                          AND t.from_service = g.from_service AND t.to_service = ANY (v_done))
     ORDER BY g.from_service, g.to_service COLLATE "C";
END $$;
COMMENT ON FUNCTION railyard.affected(text, text[]) IS
    'The services of a repository a change (its changed paths) affects: kind changed, build (reverse closure over build edges), test (a test dependency on one of those) or runtime (a runtime dependency: integration tests), with the edge and evidence that pulled each one in.';
