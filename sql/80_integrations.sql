-- Integrations: the agent inventory (migrations/0006_integrations.sql holds
-- the table, and railyard.inventory_hint, which sql/40_views.sql needs).

-- One import: replaces every row of p_source in one statement, so readers see
-- the old inventory or the new one, never a mix, and a bad row stores nothing.
CREATE OR REPLACE FUNCTION railyard.inventory_replace(p_source text, p_tool text, p_file text,
                                                      p_agents jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    IF jsonb_typeof(p_agents) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'inventory of % must be a JSON array of agents', p_source
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM railyard.inventory WHERE source = p_source;
    INSERT INTO railyard.inventory (source, tool, name, labels, cpu, mem_mb, os, arch, origin, file)
    SELECT p_source, p_tool, x.name, coalesce(x.labels, '{}'), x.cpu, x.mem_mb, x.os, x.arch,
           x.origin, p_file
      FROM jsonb_to_recordset(p_agents)
           AS x(name text, labels text[], cpu numeric, mem_mb bigint, os text, arch text, origin text);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

COMMENT ON FUNCTION railyard.inventory_replace(text, text, text, jsonb) IS
    'Replaces the inventory rows of one source with p_agents (a JSON array of {name, labels, '
    'cpu, mem_mb, os, arch, origin}) in one statement; returns how many were stored. '
    'Used by `railyard inventory import`.';

-- Planned (inventory) against online (live agents) capacity, per label.
-- Labels include os and arch, as agents' labels do; '*' is every agent.
CREATE OR REPLACE VIEW railyard.capacity_plan AS
WITH planned AS (
    SELECT DISTINCT ON (name) name,
           labels || array_remove(ARRAY[os, arch], NULL) AS labels, cpu, mem_mb
      FROM railyard.inventory
     ORDER BY name, imported_at DESC
), online AS (
    SELECT name, labels, coalesce(cpus, cores)::numeric AS cpu,
           coalesce(offered_mem_mb, mem_mb) AS mem_mb
      FROM railyard.agents
     WHERE state = 'online' AND lease_until > now()
), classes AS (
    SELECT '*'::text AS label
    UNION SELECT unnest(labels) FROM planned
    UNION SELECT unnest(labels) FROM online
)
SELECT c.label,
       p.agents AS planned_agents, o.agents AS online_agents,
       p.cpu AS planned_cpu, o.cpu AS online_cpu,
       p.mem_mb AS planned_mem_mb, o.mem_mb AS online_mem_mb,
       coalesce(p.offline, '{}') AS planned_offline,
       coalesce(o.unplanned, '{}') AS online_unplanned
  FROM classes c
  CROSS JOIN LATERAL (
      SELECT count(*) AS agents, sum(x.cpu) AS cpu, sum(x.mem_mb) AS mem_mb,
             array_agg(x.name ORDER BY x.name)
                 FILTER (WHERE NOT EXISTS (SELECT 1 FROM online y WHERE y.name = x.name)) AS offline
        FROM planned x WHERE c.label = '*' OR c.label = ANY (x.labels)) p
  CROSS JOIN LATERAL (
      SELECT count(*) AS agents, sum(x.cpu) AS cpu, sum(x.mem_mb) AS mem_mb,
             array_agg(x.name ORDER BY x.name)
                 FILTER (WHERE NOT EXISTS (SELECT 1 FROM planned y WHERE y.name = x.name)) AS unplanned
        FROM online x WHERE c.label = '*' OR c.label = ANY (x.labels)) o;

COMMENT ON VIEW railyard.capacity_plan IS
    'Per label (os and arch included; * for all): planned agents, cpu and memory from '
    'railyard.inventory beside what online agents offer now, the planned agents that are not '
    'online, and online agents the inventory does not plan. Matched by agent name.';
COMMENT ON COLUMN railyard.capacity_plan.planned_cpu IS 'Sum of the planned cpu (unknown counts as nothing)';
COMMENT ON COLUMN railyard.capacity_plan.online_cpu IS 'Sum of what online agents offer: cpus, else cores';
COMMENT ON COLUMN railyard.capacity_plan.online_mem_mb IS 'Sum of what online agents offer: offered_mem_mb, else mem_mb';
COMMENT ON COLUMN railyard.capacity_plan.planned_offline IS 'Planned agents with that label that are not online';
COMMENT ON COLUMN railyard.capacity_plan.online_unplanned IS 'Online agents with that label that no inventory plans';
