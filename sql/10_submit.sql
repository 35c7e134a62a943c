-- Submission: plain INSERTs into pipelines, tasks and edges, validated as a
-- whole at COMMIT by a deferred constraint trigger.  Until then every task
-- is 'blocked', and an aborted transaction leaves nothing behind.

CREATE OR REPLACE FUNCTION railyard.tasks_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad_key text;
BEGIN
    IF EXISTS (SELECT 1 FROM railyard.pipelines
               WHERE id = NEW.pipeline_id AND validated_at IS NOT NULL) THEN
        RAISE EXCEPTION 'cannot add task "%" to pipeline %: the pipeline was already submitted',
                        NEW.name, NEW.pipeline_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'insert a pipeline with all its tasks and edges in one transaction';
    END IF;
    IF jsonb_typeof(NEW.env) = 'object' THEN
        SELECT key INTO bad_key FROM jsonb_each(NEW.env)
        WHERE jsonb_typeof(value) <> 'string' OR key !~ '^[A-Za-z_][A-Za-z0-9_]*$' LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'task "%": env entry "%" must be a NAME with a string value', NEW.name, bad_key
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    -- Run state belongs to railyard, whatever the INSERT said.
    NEW.state := 'blocked';
    NEW.reason := NULL;
    NEW.waiting_on := 0;
    NEW.upstream_failed := false;
    NEW.attempt := 0;
    NEW.agent_id := NULL;
    NEW.exit_code := NULL;
    NEW.ready_at := NULL;
    NEW.claimed_at := NULL;
    NEW.started_at := NULL;
    NEW.finished_at := NULL;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER tasks_before_insert BEFORE INSERT ON railyard.tasks
    FOR EACH ROW EXECUTE FUNCTION railyard.tasks_before_insert();

CREATE OR REPLACE FUNCTION railyard.edges_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.upstream = NEW.downstream THEN
        RAISE EXCEPTION 'cycle: % -> %', NEW.upstream, NEW.downstream
            USING ERRCODE = 'invalid_object_definition';
    END IF;
    IF EXISTS (SELECT 1 FROM railyard.pipelines
               WHERE id = NEW.pipeline_id AND validated_at IS NOT NULL) THEN
        RAISE EXCEPTION 'cannot add edge % -> % to pipeline %: the pipeline was already submitted',
                        NEW.upstream, NEW.downstream, NEW.pipeline_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER edges_before_insert BEFORE INSERT ON railyard.edges
    FOR EACH ROW EXECUTE FUNCTION railyard.edges_before_insert();

-- Runs at COMMIT once per new pipeline: checks the graph (tasks exist,
-- edges name known tasks, no cycle), computes each task's count of upstreams
-- and its upward rank, releases the roots and wakes the workers once.
-- Kahn's algorithm over arrays: O(tasks + edges) and no temporary tables.
-- Rows inserted in this very transaction have no statistics yet (the
-- planner guesses one row), so nested loops over every task would make a
-- 20,000-task pipeline take minutes; hash joins keep it linear.  Every
-- query names the pipeline so hash joins never scan other pipelines.  With
-- nested loops off, plan costs look huge and would trigger JIT compilation
-- (half a second per COMMIT): off too.
CREATE OR REPLACE FUNCTION railyard.validate_pipeline() RETURNS trigger
LANGUAGE plpgsql SET enable_nestloop = off SET jit = off AS $$
DECLARE
    pid      bigint := NEW.id;
    ids      bigint[];
    names    text[];
    ups      int[];     -- edge k: ups[k] -> downs[k], sorted by upstream
    downs    int[];
    n        int;
    m        int;
    indeg    int[];
    waiting  int[];
    first    int[];     -- first[v]: first edge index whose upstream is v
    queue    int[];
    head     int := 0;
    tail     int := 0;
    ranks    float8[];
    weights  float8[];  -- expected durations, in id order like ids
    v        int;
    w        int;
    k        int;
    r        float8;
    bad      record;
    path     int[];
    pos      int[];
    cyc      text;
BEGIN
    SELECT array_agg(id ORDER BY id), array_agg(name ORDER BY id)
      INTO ids, names FROM railyard.tasks WHERE pipeline_id = pid;
    n := coalesce(array_length(ids, 1), 0);
    IF n = 0 THEN
        RAISE EXCEPTION 'pipeline % ("%") has no tasks', pid, NEW.name
            USING ERRCODE = 'check_violation',
                  HINT = 'insert its tasks in the same transaction as the pipeline';
    END IF;

    SELECT e.upstream, e.downstream,
           CASE WHEN u.id IS NULL THEN e.upstream ELSE e.downstream END AS missing
      INTO bad
      FROM railyard.edges e
      LEFT JOIN railyard.tasks u ON u.pipeline_id = pid AND u.name = e.upstream
      LEFT JOIN railyard.tasks d ON d.pipeline_id = pid AND d.name = e.downstream
     WHERE e.pipeline_id = pid AND (u.id IS NULL OR d.id IS NULL)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'edge % -> % in pipeline %: unknown task "%"',
                        bad.upstream, bad.downstream, pid, bad.missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    WITH idx AS (SELECT name, row_number() OVER (ORDER BY id)::int AS i
                   FROM railyard.tasks WHERE pipeline_id = pid)
    SELECT coalesce(array_agg(u.i ORDER BY u.i, d.i), '{}'),
           coalesce(array_agg(d.i ORDER BY u.i, d.i), '{}')
      INTO ups, downs
      FROM railyard.edges e
      JOIN idx u ON u.name = e.upstream
      JOIN idx d ON d.name = e.downstream
     WHERE e.pipeline_id = pid;
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
        -- from one of them until a task repeats; the walk's tail is a cycle.
        SELECT min(i) INTO v FROM generate_subscripts(indeg, 1) i WHERE indeg[i] > 0;
        pos := array_fill(0, ARRAY[n]);
        path := '{}';
        WHILE pos[v] = 0 LOOP
            path := path || v;
            pos[v] := array_length(path, 1);
            SELECT ups[j] INTO v FROM generate_subscripts(downs, 1) j
             WHERE downs[j] = v AND indeg[ups[j]] > 0 ORDER BY ups[j] LIMIT 1;
        END LOOP;
        cyc := names[v];
        FOR k IN REVERSE array_length(path, 1)..pos[v] LOOP
            cyc := cyc || ' -> ' || names[path[k]];
        END LOOP;
        -- path runs downstream-to-upstream; printed reversed it reads forward.
        RAISE EXCEPTION 'cycle: %', cyc
            USING ERRCODE = 'invalid_object_definition',
                  DETAIL = format('pipeline %s ("%s")', pid, NEW.name);
    END IF;

    -- Upward rank (HEFT): own weight plus the heaviest path below it.  A
    -- task weighs its expected duration in seconds (sql/51_forecast.sql).
    weights := railyard.task_weights(pid);
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

    UPDATE railyard.tasks t
       SET waiting_on = x.waiting,
           rank = x.rank,
           priority = coalesce(t.priority, NEW.priority),
           state = CASE WHEN x.waiting = 0 THEN 'ready'::railyard.task_state ELSE 'blocked' END,
           ready_at = CASE WHEN x.waiting = 0 THEN now() END
      FROM unnest(ids, waiting, ranks) AS x(id, waiting, rank)
     WHERE t.pipeline_id = pid AND t.id = x.id;   -- pipeline_id: no scan of history
    UPDATE railyard.pipelines SET validated_at = now() WHERE id = pid;
    PERFORM pg_notify('railyard_ready', '');
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS pipelines_validate ON railyard.pipelines;
CREATE CONSTRAINT TRIGGER pipelines_validate AFTER INSERT ON railyard.pipelines
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION railyard.validate_pipeline();
