-- Submission: plain INSERTs into pipelines, tasks and edges, validated as a
-- whole at COMMIT by a deferred constraint trigger.  Until then every task
-- is 'blocked', and an aborted transaction leaves nothing behind.

-- Run state and provenance belong to railyard, whatever the INSERT said:
-- a pipeline starts queued, submitted by the session's login role.  With
-- row-level security on (docs/operations.md, "Roles"), a role may submit
-- only for its teams; saying so here gives a clearer message than the
-- policy's.
CREATE OR REPLACE FUNCTION railyard.pipelines_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- (Two IFs: one condition would plan both functions in every new
    -- session.)
    IF railyard.team_rls_enabled() THEN
        IF NOT railyard.may_act_for_team(NEW.team) THEN
            RAISE EXCEPTION 'cannot submit pipeline "%" for team "%": role % may not act for that team',
                            NEW.name, NEW.team, session_user
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'railyard.team_roles lists the roles that may submit and cancel for each team';
        END IF;
    END IF;
    NEW.state := 'queued';
    NEW.submitted_by := session_user;
    NEW.created_at := now();
    -- submit_pipeline checks the graph in the same call, before COMMIT: its
    -- pipeline is stored validated, once; any other waits for
    -- validate_pipeline at COMMIT.
    NEW.validated_at := CASE WHEN railyard.in_railyard_function() THEN now() END;
    NEW.started_at := NULL;
    NEW.finished_at := NULL;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION railyard.pipelines_before_insert() IS
    'trigger: a new pipeline is queued and submitted by the session''s role, whatever the INSERT said; refuses other teams under row-level security';

CREATE OR REPLACE TRIGGER pipelines_before_insert BEFORE INSERT ON railyard.pipelines
    FOR EACH ROW EXECUTE FUNCTION railyard.pipelines_before_insert();

-- What exec would reject, refused at INSERT instead of failing at run time
-- with a misleading message.  The kernel takes at most MAX_ARG_STRLEN
-- (131072) bytes per argument or environment string, NUL included, and
-- ARG_MAX (2 MB with the usual 8 MB stack) for all of them together; the
-- worker adds its own environment and secrets, so a task's command and env
-- get half of that.  pkg/spec checks the same limits (RY_SPEC_MAX_*).
CREATE OR REPLACE FUNCTION railyard.max_arg_bytes() RETURNS integer
LANGUAGE sql IMMUTABLE AS 'SELECT 131071';
COMMENT ON FUNCTION railyard.max_arg_bytes() IS
    'limit max_arg_bytes: most bytes of a task''s command, and of each NAME=value of its env (the kernel''s MAX_ARG_STRLEN less the NUL)';
CREATE OR REPLACE FUNCTION railyard.max_exec_bytes() RETURNS integer
LANGUAGE sql IMMUTABLE AS 'SELECT 1048576';
COMMENT ON FUNCTION railyard.max_exec_bytes() IS
    'limit max_exec_bytes: most bytes of a task''s command and env together (half of the usual 2 MB ARG_MAX; the worker adds its own)';

-- Labels, os, arch and pool names: what survives a PostgreSQL array, a
-- comma-separated --labels flag and a terminal unquoted.  Said as a class
-- with '*' and a length limit, not '{0,63}': bounded repetition is slow to
-- compile and to match (migrations/0014_submit.sql).
CREATE OR REPLACE FUNCTION railyard.valid_label(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT length(p) <= 64 AND p ~ '^[A-Za-z0-9_][A-Za-z0-9_.:+=@/-]*$'
$$;
COMMENT ON FUNCTION railyard.valid_label(text) IS
    'label syntax (requires, os, arch, pool): [A-Za-z0-9_][A-Za-z0-9_.:+=@/-]{0,63}; no comma, blank, brace or quote';

-- only_if_changed is PCRE2, matched by the worker; PostgreSQL's regular
-- expressions are a different dialect.  A pattern PostgreSQL cannot compile
-- is refused unless it uses syntax only PCRE2 has (named groups, atomic
-- groups, possessive quantifiers, inline flags, \K, \p{...}, ...): what
-- compiles in neither is refused here, and the rare pattern only PCRE2
-- rejects fails its task, naming the pattern, when the worker compiles it.
-- railyard submit checks patterns with PCRE2 itself.
CREATE OR REPLACE FUNCTION railyard.uses_pcre2_only_syntax(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p ~ '\(\?(P?<[A-Za-z_]|P[=>]|''|>|\||R\)|[+-]?[0-9]+\)|&|\(|[A-Za-z^]*-?[A-Za-z]*[):])'
        OR p ~ '[*+?}]\+'
        OR p ~ '\\[KpPQEhHvVRXNzGgkoN]'
$$;
COMMENT ON FUNCTION railyard.uses_pcre2_only_syntax(text) IS
    'whether a pattern uses syntax PCRE2 has and PostgreSQL''s regular expressions lack (only_if_changed validation)';

-- A task's own fields, as exec and the worker would judge them.  Only
-- tasks_before_insert calls it, and only for a task that sets one of the
-- fields checked here: a check on a new field needs that field in the
-- trigger's test too.
CREATE OR REPLACE FUNCTION railyard.check_task_fields(t railyard.tasks) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    bad_key  text;
    bad_len  integer;
    total    bigint;
    bad      text;
BEGIN
    IF octet_length(t.command) > railyard.max_arg_bytes() THEN
        RAISE EXCEPTION 'task "%": command is % bytes; max_arg_bytes is % (the kernel''s limit for one argument)',
                        t.name, octet_length(t.command), railyard.max_arg_bytes()
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    total := coalesce(octet_length(t.command), 0);
    IF t.env <> '{}'::jsonb AND jsonb_typeof(t.env) = 'object' THEN
        SELECT key INTO bad_key FROM jsonb_each(t.env)
        WHERE jsonb_typeof(value) <> 'string' OR key !~ '^[A-Za-z_][A-Za-z0-9_]*$' LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'task "%": env entry "%" must be a NAME with a string value', t.name, bad_key
                USING ERRCODE = 'check_violation';
        END IF;
        SELECT e.key, octet_length(e.key) + 1 + octet_length(e.value) INTO bad_key, bad_len
          FROM jsonb_each_text(t.env) e
         WHERE octet_length(e.key) + 1 + octet_length(e.value) > railyard.max_arg_bytes() LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'task "%": env entry "%" is % bytes as NAME=value; max_arg_bytes is % (the kernel''s limit for one string)',
                            t.name, bad_key, bad_len, railyard.max_arg_bytes()
                USING ERRCODE = 'program_limit_exceeded';
        END IF;
        total := total + (SELECT coalesce(sum(octet_length(e.key) + 2 + octet_length(e.value)), 0)
                            FROM jsonb_each_text(t.env) e);
    END IF;
    IF total > railyard.max_exec_bytes() THEN
        RAISE EXCEPTION 'task "%": command and env are % bytes together; max_exec_bytes is %',
                        t.name, total, railyard.max_exec_bytes()
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF cardinality(t.requires) > 0 THEN
        SELECT l INTO bad FROM unnest(t.requires) l WHERE NOT railyard.valid_label(l) LIMIT 1;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'task "%": label "%" in requires is invalid: use letters, digits and _ . : + = @ / - (at most 64, no comma, blank, brace or quote)',
                        t.name, bad
            USING ERRCODE = 'check_violation';
    END IF;
    IF t.os IS NOT NULL AND NOT railyard.valid_label(t.os) THEN
        RAISE EXCEPTION 'task "%": os "%" is invalid: give an os name such as linux (NULL: any)', t.name, t.os
            USING ERRCODE = 'check_violation';
    END IF;
    IF t.arch IS NOT NULL AND NOT railyard.valid_label(t.arch) THEN
        RAISE EXCEPTION 'task "%": arch "%" is invalid: give an architecture such as x86_64 (NULL: any)',
                        t.name, t.arch
            USING ERRCODE = 'check_violation';
    END IF;
    IF t.pool IS NOT NULL AND NOT railyard.valid_label(t.pool) THEN
        RAISE EXCEPTION 'task "%": pool "%" is invalid: use letters, digits and _ . : + = @ / - (NULL: none)',
                        t.name, t.pool
            USING ERRCODE = 'check_violation';
    END IF;
    IF t.only_if_changed IS NOT NULL THEN
        IF t.only_if_changed = '' THEN
            RAISE EXCEPTION 'task "%": only_if_changed must not be empty (NULL: the task always runs)', t.name
                USING ERRCODE = 'check_violation';
        END IF;
        BEGIN
            PERFORM '' ~ t.only_if_changed;
        EXCEPTION WHEN invalid_regular_expression THEN
            IF NOT railyard.uses_pcre2_only_syntax(t.only_if_changed) THEN
                RAISE EXCEPTION 'task "%": only_if_changed "%" is not a valid pattern: %',
                                t.name, t.only_if_changed, SQLERRM
                    USING ERRCODE = 'invalid_regular_expression';
            END IF;
        END;
    END IF;
END $$;
COMMENT ON FUNCTION railyard.check_task_fields(railyard.tasks) IS
    'refuses a task whose command, env, labels or only_if_changed pattern exec or the worker would reject (tasks_before_insert)';

CREATE OR REPLACE FUNCTION railyard.tasks_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- One expression for a task with nothing but a short command: the
    -- checks (and their parse and plan in a new session) only for a task
    -- that sets a field check_task_fields looks at (keep the two lists
    -- alike).  A command within max_arg_bytes and no env is within
    -- max_exec_bytes too.  Whether the
    -- pipeline exists and was already submitted is asked once per
    -- statement (tasks_after_insert).
    IF octet_length(NEW.command) > railyard.max_arg_bytes() OR NEW.env <> '{}'::jsonb
       OR cardinality(NEW.requires) > 0 OR NEW.os IS NOT NULL OR NEW.arch IS NOT NULL
       OR NEW.pool IS NOT NULL OR NEW.only_if_changed IS NOT NULL THEN
        PERFORM railyard.check_task_fields(NEW);
    END IF;
    -- Run state belongs to railyard, whatever the INSERT said.  Only
    -- submit_pipeline, which has checked and ranked the graph already,
    -- inserts a task ready or with its count of upstreams (and leaves the
    -- other run columns to their defaults); any other task starts blocked
    -- and validate_pipeline sets them at COMMIT.
    IF railyard.in_railyard_function() AND NEW.state IN ('blocked', 'ready') THEN
        RETURN NEW;
    END IF;
    NEW.state := 'blocked';
    NEW.waiting_on := 0;
    NEW.ready_at := NULL;
    NEW.reason := NULL;
    NEW.upstream_failed := false;
    NEW.attempt := 0;
    NEW.agent_id := NULL;
    NEW.exit_code := NULL;
    NEW.claimed_at := NULL;
    NEW.started_at := NULL;
    NEW.finished_at := NULL;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION railyard.tasks_before_insert() IS
    'trigger: refuses tasks for an already submitted pipeline and what exec would reject (sizes, labels, patterns); forces the run state';

CREATE OR REPLACE TRIGGER tasks_before_insert BEFORE INSERT ON railyard.tasks
    FOR EACH ROW EXECUTE FUNCTION railyard.tasks_before_insert();

-- Once per INSERT statement, however many tasks it adds: a task names a
-- pipeline that exists (no foreign key checked row by row: migrations/
-- 0021_pipeline_fks.sql), and a pipeline already submitted (validated at
-- its COMMIT) takes no more tasks.  The statement fails as a whole,
-- naming its first such task.
CREATE OR REPLACE FUNCTION railyard.tasks_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.name, n.pipeline_id, p.id IS NULL AS missing INTO bad
      FROM (SELECT DISTINCT pipeline_id FROM new_rows) x
      LEFT JOIN railyard.pipelines p ON p.id = x.pipeline_id
      JOIN new_rows n ON n.pipeline_id = x.pipeline_id
     WHERE p.id IS NULL OR p.validated_at IS NOT NULL
     ORDER BY n.id LIMIT 1;
    IF FOUND AND bad.missing THEN
        RAISE EXCEPTION 'cannot add task "%" to pipeline %: no such pipeline', bad.name, bad.pipeline_id
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'insert the pipeline first, in the same transaction';
    ELSIF FOUND THEN
        RAISE EXCEPTION 'cannot add task "%" to pipeline %: the pipeline was already submitted',
                        bad.name, bad.pipeline_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'insert a pipeline with all its tasks and edges in one transaction';
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.tasks_after_insert() IS
    'trigger: once per INSERT statement, refuses tasks for a missing or already submitted pipeline';

-- (submit_pipeline inserts the tasks of the pipeline it has just inserted.)
CREATE OR REPLACE TRIGGER tasks_after_insert AFTER INSERT ON railyard.tasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT WHEN (NOT railyard.in_railyard_function())
    EXECUTE FUNCTION railyard.tasks_after_insert();

-- Edges are checked once per INSERT statement too: self-edges, then edges
-- for a pipeline that does not exist or was already submitted, the first
-- offending row named.
CREATE OR REPLACE FUNCTION railyard.edges_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.upstream, n.downstream INTO bad FROM new_rows n WHERE n.upstream = n.downstream LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cycle: % -> %', bad.upstream, bad.downstream
            USING ERRCODE = 'invalid_object_definition';
    END IF;
    SELECT n.upstream, n.downstream, n.pipeline_id, p.id IS NULL AS missing INTO bad
      FROM (SELECT DISTINCT pipeline_id FROM new_rows) x
      LEFT JOIN railyard.pipelines p ON p.id = x.pipeline_id
      JOIN new_rows n ON n.pipeline_id = x.pipeline_id
     WHERE p.id IS NULL OR p.validated_at IS NOT NULL
     LIMIT 1;
    IF FOUND AND bad.missing THEN
        RAISE EXCEPTION 'cannot add edge % -> % to pipeline %: no such pipeline',
                        bad.upstream, bad.downstream, bad.pipeline_id
            USING ERRCODE = 'foreign_key_violation';
    ELSIF FOUND THEN
        RAISE EXCEPTION 'cannot add edge % -> % to pipeline %: the pipeline was already submitted',
                        bad.upstream, bad.downstream, bad.pipeline_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION railyard.edges_after_insert() IS
    'trigger: once per INSERT statement, refuses self-edges and edges for a missing or already submitted pipeline';

-- Replaced by edges_after_insert (one call per statement, not per edge).
DROP TRIGGER IF EXISTS edges_before_insert ON railyard.edges;
DROP FUNCTION IF EXISTS railyard.edges_before_insert();
-- (submit_pipeline's edges: its pipeline is new, and pipeline_graph has
-- refused self-edges as cycles before they are inserted.)
CREATE OR REPLACE TRIGGER edges_after_insert AFTER INSERT ON railyard.edges
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT WHEN (NOT railyard.in_railyard_function())
    EXECUTE FUNCTION railyard.edges_after_insert();

-- A cycle as "a -> b -> c -> a", shortened as pkg/graph's
-- ry_graph_format_cycle does it: a cycle of more than 8 tasks keeps its
-- first 4 and last 3 names and says how long it is, "a -> b -> c -> d ->
-- ... -> x -> y -> z -> a (20000 tasks)", so a huge ring gives a short
-- message.  cyc lists indexes into names along the edges.
CREATE OR REPLACE FUNCTION railyard.cycle_text(names text[], cyc integer[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    len  integer := cardinality(cyc);
    head integer := len;
    tail integer := 0;
    t    text := '';
BEGIN
    IF len > 8 THEN
        head := 4;
        tail := 3;
    END IF;
    FOR i IN 1..head LOOP
        t := t || names[cyc[i]] || ' -> ';
    END LOOP;
    IF head < len THEN
        t := t || '... -> ';
        FOR i IN len - tail + 1..len LOOP
            t := t || names[cyc[i]] || ' -> ';
        END LOOP;
    END IF;
    t := t || names[cyc[1]];
    IF head < len THEN
        t := t || format(' (%s tasks)', len);
    END IF;
    RETURN t;
END $$;
COMMENT ON FUNCTION railyard.cycle_text(text[], integer[]) IS
    'a cycle as "a -> b -> a"; longer than 8 tasks: first 4 and last 3 names and the length (as pkg/graph prints it)';

-- A pipeline's graph, checked and ranked: its tasks exist, its edges name
-- known tasks, it has no cycle; then each task's count of upstreams
-- (waiting) and upward rank (HEFT: its weight plus the heaviest path
-- below it).  names and weights are per task, in one order; the edges are
-- pairs of names.  Both ways in use it: validate_pipeline (a pipeline
-- inserted by hand, at COMMIT) and submit_pipeline (before it inserts the
-- tasks).  Kahn's algorithm over arrays: O(tasks + edges) and no
-- temporary tables.  The edges are matched to the tasks by hash joins:
-- nested loops over every task would make a 20,000-task pipeline take
-- minutes, and with them off plan costs look huge and would trigger JIT
-- compilation (half a second): off too.
CREATE OR REPLACE FUNCTION railyard.pipeline_graph(pid bigint, pname text, names text[],
                                                   edge_ups text[], edge_downs text[],
                                                   weights float8[],
                                                   OUT waiting int[], OUT ranks float8[])
LANGUAGE plpgsql IMMUTABLE SET enable_nestloop = off SET jit = off AS $$
DECLARE
    ups      int[];     -- edge k: ups[k] -> downs[k], as indexes into names, sorted by upstream
    downs    int[];
    n        int := coalesce(cardinality(names), 0);
    m        int;
    indeg    int[];
    first    int[];     -- first[v]: first edge index whose upstream is v
    queue    int[];
    head     int := 0;
    tail     int := 0;
    v        int;
    w        int;
    k        int;
    r        float8;
    bad_up   text;      -- an edge naming an unknown task, and that name
    bad_down text;
    bad_missing text;
    path     int[];
    pos      int[];
    len      int := 0;
    rups     int[];     -- the edges again, sorted by downstream: rups[k] -> rdowns[k]
    rdowns   int[];
    first_in int[];     -- first_in[v]: first edge index (in rups/rdowns) whose downstream is v
    cyc      int[];
BEGIN
    IF n = 0 THEN
        RAISE EXCEPTION 'pipeline % ("%") has no tasks', pid, pname
            USING ERRCODE = 'check_violation',
                  HINT = 'insert its tasks in the same transaction as the pipeline';
    END IF;
    -- One statement, one aggregate over the edges: the edges as pairs of
    -- indexes, sorted by upstream, and the first edge naming an unknown
    -- task.  (Each subquery more would cost every new session its plan.)
    SELECT coalesce(array_agg(u.i::int ORDER BY u.i, d.i) FILTER (WHERE u.i IS NOT NULL AND d.i IS NOT NULL), '{}'),
           coalesce(array_agg(d.i::int ORDER BY u.i, d.i) FILTER (WHERE u.i IS NOT NULL AND d.i IS NOT NULL), '{}'),
           (min(e.k) FILTER (WHERE u.i IS NULL OR d.i IS NULL))::int
      INTO ups, downs, k
      FROM unnest(edge_ups, edge_downs) WITH ORDINALITY AS e(upstream, downstream, k)
      LEFT JOIN unnest(names) WITH ORDINALITY AS u(name, i) ON u.name = e.upstream
      LEFT JOIN unnest(names) WITH ORDINALITY AS d(name, i) ON d.name = e.downstream;
    IF k IS NOT NULL THEN
        bad_up := edge_ups[k];
        bad_down := edge_downs[k];
        -- (An edge without a name is not an unknown task: NOT NULL
        -- refuses it when the edges are stored.)
        bad_missing := CASE WHEN bad_up IS NULL OR NOT bad_up = ANY (names) THEN bad_up ELSE bad_down END;
    END IF;
    IF bad_missing IS NOT NULL THEN
        RAISE EXCEPTION 'edge % -> % in pipeline %: unknown task "%"',
                        bad_up, bad_down, pid, bad_missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    m := coalesce(array_length(ups, 1), 0);

    indeg := array_fill(0, ARRAY[n]);
    first := array_fill(m + 1, ARRAY[n]);
    FOR k IN 1..m LOOP
        indeg[downs[k]] := indeg[downs[k]] + 1;
    END LOOP;
    FOR k IN REVERSE m..1 LOOP
        first[ups[k]] := k;
    END LOOP;
    waiting := indeg;
    queue := array_fill(0, ARRAY[n]);
    FOR v IN 1..n LOOP
        IF indeg[v] = 0 THEN
            tail := tail + 1;
            queue[tail] := v;
        END IF;
    END LOOP;
    WHILE head < tail LOOP
        head := head + 1;
        v := queue[head];
        k := first[v];
        WHILE k <= m AND ups[k] = v LOOP
            w := downs[k];
            indeg[w] := indeg[w] - 1;
            IF indeg[w] = 0 THEN
                tail := tail + 1;
                queue[tail] := w;
            END IF;
            k := k + 1;
        END LOOP;
    END LOOP;

    IF tail < n THEN
        -- Every task left has an upstream that is left too: walk upstream
        -- from the first of them, to its first upstream still left, until a
        -- task repeats; the walk's tail is a cycle.  pkg/graph walks the
        -- same way (ry_graph_find_cycle), so C and SQL name the same cycle.
        -- Each edge is looked at once at most: linear in the pipeline.
        SELECT coalesce(array_agg(x.u ORDER BY x.d, x.u), '{}'), coalesce(array_agg(x.d ORDER BY x.d, x.u), '{}')
          INTO rups, rdowns FROM unnest(ups, downs) AS x(u, d);
        first_in := array_fill(m + 1, ARRAY[n]);
        FOR k IN REVERSE m..1 LOOP
            first_in[rdowns[k]] := k;
        END LOOP;
        v := 1;
        WHILE indeg[v] = 0 LOOP
            v := v + 1;
        END LOOP;
        pos := array_fill(0, ARRAY[n]);
        path := array_fill(0, ARRAY[n]);
        WHILE pos[v] = 0 LOOP
            len := len + 1;
            path[len] := v;
            pos[v] := len;
            k := first_in[v];
            WHILE indeg[rups[k]] = 0 LOOP
                k := k + 1;
            END LOOP;
            v := rups[k];
        END LOOP;
        -- path[pos[v] .. len] runs upstream from v; reversed it reads forward.
        cyc := ARRAY[v];
        FOR k IN REVERSE len..pos[v] + 1 LOOP
            cyc := cyc || path[k];
        END LOOP;
        RAISE EXCEPTION 'cycle: %', railyard.cycle_text(names, cyc)
            USING ERRCODE = 'invalid_object_definition',
                  DETAIL = format('pipeline %s ("%s")', pid, pname);
    END IF;

    -- Upward rank, from the last task in topological order up.
    ranks := array_fill(0::float8, ARRAY[n]);
    FOR head IN REVERSE n..1 LOOP
        v := queue[head];
        r := 0;
        k := first[v];
        WHILE k <= m AND ups[k] = v LOOP
            r := greatest(r, ranks[downs[k]]);
            k := k + 1;
        END LOOP;
        ranks[v] := weights[v] + r;
    END LOOP;
END $$;

COMMENT ON FUNCTION railyard.pipeline_graph(bigint, text, text[], text[], text[], float8[]) IS
    'checks a pipeline''s graph (tasks, edges naming known tasks, no cycle) and returns each task''s count of upstreams and upward rank';

-- Runs at COMMIT once per pipeline inserted by hand (plain INSERTs; a
-- pipeline submit_pipeline stored is checked already and never queues
-- this trigger): checks and ranks the graph (pipeline_graph), releases
-- the roots and wakes the workers once.  Rows inserted in this very
-- transaction have no statistics yet (the planner guesses one row), hence
-- hash joins, as in pipeline_graph; every query names the pipeline so
-- they never scan other pipelines.
CREATE OR REPLACE FUNCTION railyard.validate_pipeline() RETURNS trigger
LANGUAGE plpgsql SET enable_nestloop = off SET jit = off AS $$
DECLARE
    pid      bigint := NEW.id;
    ids      bigint[];
    names    text[];
    tasks    railyard.tasks[];
    ups      text[];
    downs    text[];
    waiting  int[];
    ranks    float8[];
BEGIN
    -- One statement reads the pipeline's tasks, in id order, and its
    -- edges, each table once.  (In a new session each statement costs its
    -- parse and plan.)
    SELECT t.ids, t.names, t.tasks, e.ups, e.downs
      INTO ids, names, tasks, ups, downs
      FROM (SELECT array_agg(x.id ORDER BY x.id) AS ids, array_agg(x.name ORDER BY x.id) AS names,
                   array_agg(x ORDER BY x.id) AS tasks
              FROM railyard.tasks x WHERE x.pipeline_id = pid) t,
           (SELECT coalesce(array_agg(y.upstream), '{}') AS ups,
                   coalesce(array_agg(y.downstream), '{}') AS downs
              FROM railyard.edges y WHERE y.pipeline_id = pid) e;
    SELECT g.waiting, g.ranks INTO waiting, ranks
      FROM railyard.pipeline_graph(pid, NEW.name, names, ups, downs,
               railyard.task_weights_of(railyard.pipeline_family(NEW.name, NEW.family), tasks)) g;

    -- The roots' placement keys are set here, for all of them at once
    -- (tasks_placement_keys skips a row whose age_key the statement set):
    -- the pipeline's team, whatever the INSERT said, and the aging key.
    UPDATE railyard.tasks t
       SET waiting_on = x.waiting,
           rank = x.rank,
           priority = coalesce(t.priority, NEW.priority),
           state = CASE WHEN x.waiting = 0 THEN 'ready'::railyard.task_state ELSE 'blocked' END,
           ready_at = CASE WHEN x.waiting = 0 THEN now() END,
           team = NEW.team,
           age_key = CASE WHEN x.waiting = 0
                          THEN railyard.age_key(coalesce(t.priority, NEW.priority), now()) END
      FROM unnest(ids, waiting, ranks) AS x(id, waiting, rank)
     WHERE t.pipeline_id = pid AND t.id = x.id;   -- pipeline_id: no scan of history
    UPDATE railyard.pipelines SET validated_at = now() WHERE id = pid;
    PERFORM pg_notify('railyard_ready', '');
    RETURN NULL;
END $$;

COMMENT ON FUNCTION railyard.validate_pipeline() IS
    'deferred trigger: validates a pipeline inserted by hand at COMMIT (tasks, edges, cycle), ranks its tasks and releases the roots';

-- Not for submit_pipeline's own pipelines (in_railyard_function(), below): it
-- has done all of this before it inserted the tasks.
DROP TRIGGER IF EXISTS pipelines_validate ON railyard.pipelines;
CREATE CONSTRAINT TRIGGER pipelines_validate AFTER INSERT ON railyard.pipelines
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NOT railyard.in_railyard_function())
    EXECUTE FUNCTION railyard.validate_pipeline();

-- A whole pipeline in one call, as `railyard submit` sends it: the
-- pipeline, then its tasks and edges from JSON arrays of objects (the
-- columns of railyard.tasks and railyard.edges by name; docs/sql.md).
-- What validate_pipeline would do at COMMIT is done before the tasks are
-- stored, so they are inserted once with their final run state — waiting
-- count, rank, the roots ready with their team and aging key — and never
-- updated, nor is the pipeline (stored validated: pipelines_before_insert):
-- a new session (every `railyard submit` is one) pays for no UPDATE and
-- its triggers.  The same checks apply: the
-- INSERT triggers (tasks_before_insert keeps the run state only from
-- here: in_railyard_function()), the constraints, pipeline_graph.  Returns
-- the pipeline's id; the transaction's COMMIT publishes it.
CREATE OR REPLACE FUNCTION railyard.submit_pipeline(p_name text, p_team text, p_priority integer,
                                                    p_revision text, p_changed_paths text[],
                                                    p_source text, p_tasks jsonb,
                                                    p_edges jsonb DEFAULT '[]')
RETURNS bigint
LANGUAGE plpgsql SET enable_nestloop = off SET jit = off AS $$
DECLARE
    pid      bigint;
    fam      text;
    pteam    text;
    prio     integer;
    tasks    railyard.tasks[];
    names    text[];
    twice    text;
    ups      text[];
    downs    text[];
    waiting  int[];
    ranks    float8[];
BEGIN
    IF jsonb_typeof(p_tasks) IS DISTINCT FROM 'array' OR jsonb_typeof(coalesce(p_edges, '[]')) <> 'array' THEN
        RAISE EXCEPTION 'submit_pipeline: tasks and edges must be JSON arrays of objects'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO railyard.pipelines AS p (name, team, priority, revision, changed_paths, source)
    VALUES (p_name, p_team, p_priority, p_revision, p_changed_paths, p_source)
    RETURNING p.id, railyard.pipeline_family(p.name, p.family), p.team, p.priority
         INTO pid, fam, pteam, prio;
    -- The tasks as rows of railyard.tasks (no id yet), their names, a
    -- name given twice, and the edges' names: one statement.
    SELECT array_agg(jsonb_populate_record(NULL::railyard.tasks, x.t) ORDER BY x.i),
           array_agg(x.t->>'name' ORDER BY x.i),
           (SELECT y.t->>'name' FROM jsonb_array_elements(p_tasks) y(t)
             GROUP BY 1 HAVING count(*) > 1 LIMIT 1),
           (SELECT coalesce(array_agg(e.e->>'upstream'), '{}') FROM jsonb_array_elements(coalesce(p_edges, '[]')) e(e)),
           (SELECT coalesce(array_agg(e.e->>'downstream'), '{}') FROM jsonb_array_elements(coalesce(p_edges, '[]')) e(e))
      INTO tasks, names, twice, ups, downs
      FROM jsonb_array_elements(p_tasks) WITH ORDINALITY AS x(t, i);
    IF twice IS NOT NULL THEN
        RAISE EXCEPTION 'pipeline % ("%"): task "%" is given twice', pid, p_name, twice
            USING ERRCODE = 'unique_violation';
    END IF;
    SELECT g.waiting, g.ranks INTO waiting, ranks
      FROM railyard.pipeline_graph(pid, p_name, names, ups, downs,
                                   railyard.task_weights_of(fam, tasks)) g;

    -- The run state is validate_pipeline's, column for column.
    INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command, env, requires, os,
                                arch, cpu, mem_mb, pool, priority, version, cacheable, inputs,
                                run_if, only_if_changed, max_attempts, timeout_s, outputs,
                                secrets, image, forecast_key, estimate_s,
                                state, waiting_on, rank, ready_at, team, age_key)
    SELECT pid, t.name, t.service, t.kind, t.command, t.env, t.requires, t.os,
           t.arch, t.cpu, t.mem_mb, t.pool, coalesce(t.priority, prio), t.version, t.cacheable,
           t.inputs, t.run_if, t.only_if_changed, t.max_attempts, t.timeout_s, t.outputs,
           coalesce(t.secrets, '{}'), t.image, t.forecast_key, t.estimate_s,
           CASE WHEN waiting[t.ordinality] = 0 THEN 'ready'::railyard.task_state ELSE 'blocked' END,
           waiting[t.ordinality], ranks[t.ordinality],
           CASE WHEN waiting[t.ordinality] = 0 THEN now() END, pteam,
           CASE WHEN waiting[t.ordinality] = 0 THEN railyard.age_key(coalesce(t.priority, prio), now()) END
      FROM unnest(tasks) WITH ORDINALITY t
     ORDER BY t.ordinality;
    INSERT INTO railyard.edges (pipeline_id, upstream, downstream, kind)
    SELECT pid, e.upstream, e.downstream, e.kind
      FROM jsonb_populate_recordset(NULL::railyard.edges, coalesce(p_edges, '[]')) e;
    PERFORM pg_notify('railyard_ready', '');
    RETURN pid;
END $$;

COMMENT ON FUNCTION railyard.submit_pipeline(text, text, integer, text, text[], text, jsonb, jsonb) IS
    'submits a pipeline with its tasks and edges (JSON arrays) in one call, checked and ranked before the tasks are stored; returns its id';
