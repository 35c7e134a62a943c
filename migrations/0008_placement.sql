-- 0008_placement: farm-wide pools, teams (fair share and quotas), scarce
-- labels, aging, and each agent's adaptive concurrency limit (issue 7;
-- docs/ARCHITECTURE.md "Placement").  The functions are in
-- sql/25_placement.sql.

-- Farm-wide resource pools: a task naming a pool takes one unit of it
-- while it runs.  The claim locks the pool's row, so the cap holds across
-- every worker at once.
CREATE TABLE railyard.pools (
    name        text PRIMARY KEY,
    capacity    integer NOT NULL,
    description text,
    CONSTRAINT pool_name_valid CHECK (name ~ '^[A-Za-z0-9_][A-Za-z0-9_.:+=@/-]{0,63}$'),
    CONSTRAINT pool_capacity_range CHECK (capacity BETWEEN 0 AND 1000000)
);
COMMENT ON TABLE railyard.pools IS
    'Farm-wide resource pools (licences, a deploy target, a rate-limited API): a running task whose pool is P holds one of P''s capacity units; claims lock the row, so at most capacity tasks of the pool run at any instant across all workers. A task naming a pool not listed here is refused at COMMIT.';
COMMENT ON COLUMN railyard.pools.capacity IS 'how many tasks of the pool may run at once, farm-wide (0: none until raised)';

-- Existing tasks may name pools that were never enforced: list them with
-- a capacity that changes nothing, so the upgrade refuses nothing.
INSERT INTO railyard.pools (name, capacity, description)
SELECT DISTINCT pool, 1000000, 'listed by migration 0008 (was named by tasks before pools were enforced)'
  FROM railyard.tasks WHERE pool IS NOT NULL AND pool ~ '^[A-Za-z0-9_][A-Za-z0-9_.:+=@/-]{0,63}$';

-- Teams for fair share: weight and quota.  A pipeline's team need not be
-- listed: weight 1, no quota.
CREATE TABLE railyard.teams (
    name        text PRIMARY KEY,
    weight      numeric NOT NULL DEFAULT 1,
    max_running integer,
    CONSTRAINT team_name_valid CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    CONSTRAINT team_weight_range CHECK (weight > 0 AND weight <= 1000000),
    CONSTRAINT team_max_running_range CHECK (max_running IS NULL OR max_running >= 0)
);
COMMENT ON TABLE railyard.teams IS
    'Weighted fair share across teams: among ready tasks of equal effective priority the claim prefers the team with the smallest dominant share (running cpu or memory over the online farm''s, whichever is larger) divided by weight; max_running caps how many of the team''s tasks run at once. Teams not listed: weight 1, no cap.';
COMMENT ON COLUMN railyard.teams.weight IS 'relative share (a team of weight 3 gets three times the running share of a team of weight 1 when both have work)';
COMMENT ON COLUMN railyard.teams.max_running IS 'most tasks of the team running at once, farm-wide (NULL: no quota); enforced under a row lock in the claim';

-- Labels an operator marks scarce whatever their count (a label carried by
-- few online agents is scarce anyway: placement_settings.scarce_fraction).
CREATE TABLE railyard.scarce_labels (
    label   text PRIMARY KEY,
    note    text,
    CONSTRAINT scarce_label_valid CHECK (label ~ '^[A-Za-z0-9_][A-Za-z0-9_.:+=@/-]{0,63}$')
);
COMMENT ON TABLE railyard.scarce_labels IS
    'Labels marked scarce by an operator: an agent carrying one keeps capacity for ready tasks that require it and takes generic work only while no generic-capable agent has room.';

-- Farm-wide placement settings: one row.
CREATE TABLE railyard.placement_settings (
    one             boolean PRIMARY KEY DEFAULT true CHECK (one),
    aging_per_min   double precision NOT NULL DEFAULT 1,
    aging_cap       double precision NOT NULL DEFAULT 1000,
    scarce_fraction double precision NOT NULL DEFAULT 0.25,
    CONSTRAINT aging_per_min_range CHECK (aging_per_min >= 0 AND aging_per_min <= 1000),
    CONSTRAINT aging_cap_range CHECK (aging_cap >= 0 AND aging_cap <= 100000),
    CONSTRAINT scarce_fraction_range CHECK (scarce_fraction >= 0 AND scarce_fraction < 1)
);
INSERT INTO railyard.placement_settings DEFAULT VALUES;
COMMENT ON TABLE railyard.placement_settings IS
    'Farm-wide placement settings (one row): aging and when a label counts as scarce.';
COMMENT ON COLUMN railyard.placement_settings.aging_per_min IS
    'priority points a ready task gains per minute it waits (0: no aging); applies to tasks that become ready after a change';
COMMENT ON COLUMN railyard.placement_settings.aging_cap IS
    'most priority points waiting can add';
COMMENT ON COLUMN railyard.placement_settings.scarce_fraction IS
    'a label carried by at most this share of the online agents (and by fewer than all of them) is scarce';

-- Per task: its pipeline's team (copied when it becomes ready, for the
-- per-team ready index) and its effective-priority key.
ALTER TABLE railyard.tasks
    ADD COLUMN team text,
    ADD COLUMN age_key double precision;
COMMENT ON COLUMN railyard.tasks.team IS
    'the pipeline''s team, copied when the task becomes ready (fair share walks a per-team ready index)';
COMMENT ON COLUMN railyard.tasks.age_key IS
    'effective-priority key set when the task becomes ready: priority - aging_per_min x (minutes since 2020-01-01 at ready_at); ordering by it descending is ordering by priority + aging_per_min x minutes waited, without rewriting rows as time passes';

UPDATE railyard.tasks t
   SET team = p.team,
       age_key = coalesce(t.priority, 0)
                 - extract(epoch FROM coalesce(t.ready_at, now()) - timestamptz '2020-01-01 UTC') / 60.0
  FROM railyard.pipelines p
 WHERE p.id = t.pipeline_id AND t.state = 'ready';

-- The claim's walks: per team, by effective priority; the tasks that need
-- labels at all (scarce agents look there for their protected work); the
-- running tasks of each pool and team (counted under the row lock).
CREATE INDEX tasks_ready_team ON railyard.tasks (team, age_key DESC, rank DESC, id)
    WHERE state = 'ready';
CREATE INDEX tasks_ready_labeled ON railyard.tasks (age_key DESC, rank DESC, id)
    WHERE state = 'ready' AND requires <> '{}';
CREATE INDEX tasks_running_pool ON railyard.tasks (pool) WHERE state = 'running' AND pool IS NOT NULL;
CREATE INDEX tasks_running_team ON railyard.tasks (team) WHERE state = 'running';

-- Each worker's adaptive concurrency limit and what its host reports.
ALTER TABLE railyard.agents
    ADD COLUMN concurrency_limit integer,
    ADD COLUMN min_slots integer,
    ADD COLUMN pressure text,
    ADD COLUMN limits text;
COMMENT ON COLUMN railyard.agents.concurrency_limit IS
    'tasks the worker admits now, between min_slots and slots: lowered multiplicatively under host pressure (PSI, MemAvailable, runnable count), raised by one while pressure is low and the limit is in use (NULL: slots)';
COMMENT ON COLUMN railyard.agents.min_slots IS 'the lowest the worker''s concurrency limit goes';
COMMENT ON COLUMN railyard.agents.pressure IS
    'the host pressure behind the last limit change, in words (e.g. "cpu some avg10 82.0 > 60")';
COMMENT ON COLUMN railyard.agents.limits IS
    'how task resource limits are enforced: kernel (cgroup memory.max/cpu.max or v1 memory/cpu controllers, oom read from the cgroup''s events) or sampled (/proc, a short spike can slip through)';
