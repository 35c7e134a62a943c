-- 0006_integrations: the planned agents imported from infrastructure tools
-- (`railyard inventory import terraform|pulumi|kubernetes FILE`).

CREATE TABLE railyard.inventory (
    source          text NOT NULL,                  -- what one import replaces
    tool            text NOT NULL,
    name            text NOT NULL,                  -- the agent name a worker will register
    labels          text[] NOT NULL DEFAULT '{}',
    cpu             numeric,                        -- NULL: unknown
    mem_mb          bigint,                         -- NULL: unknown
    os              text,
    arch            text,
    origin          text NOT NULL,                  -- where in the file (JSON path or address)
    file            text NOT NULL,
    imported_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, name),
    CONSTRAINT inventory_tool_known CHECK (tool IN ('terraform', 'pulumi', 'kubernetes')),
    CONSTRAINT inventory_source_valid CHECK (source ~ '^[A-Za-z0-9][A-Za-z0-9_.:/@+=-]{0,99}$'),
    CONSTRAINT inventory_name_valid CHECK (name <> '' AND length(name) <= 200),
    CONSTRAINT inventory_cpu_positive CHECK (cpu IS NULL OR cpu > 0),
    CONSTRAINT inventory_mem_positive CHECK (mem_mb IS NULL OR mem_mb > 0)
);

COMMENT ON TABLE railyard.inventory IS
    'Planned agents from infrastructure tools (Terraform, Pulumi, Kubernetes node lists); '
    'one import replaces every row of its source in one transaction. Compared with '
    'railyard.agents by name (see railyard.capacity_plan, railyard.inventory_hint).';
COMMENT ON COLUMN railyard.inventory.source IS
    'The import this row came from: the tool name unless `railyard inventory import --source` named it; a re-import of the source replaces its rows';
COMMENT ON COLUMN railyard.inventory.tool IS 'terraform, pulumi or kubernetes';
COMMENT ON COLUMN railyard.inventory.name IS 'The agent name a worker on that machine registers (worker --name, default the host name)';
COMMENT ON COLUMN railyard.inventory.labels IS 'Labels the agent is planned to offer (without os and arch)';
COMMENT ON COLUMN railyard.inventory.cpu IS 'Planned cpu units (Kubernetes 3800m is 3.8); NULL when the file does not say';
COMMENT ON COLUMN railyard.inventory.mem_mb IS 'Planned memory in MB (MiB); NULL when the file does not say';
COMMENT ON COLUMN railyard.inventory.os IS 'Planned os as workers report it (linux)';
COMMENT ON COLUMN railyard.inventory.arch IS 'Planned architecture as workers report it (x86_64, aarch64)';
COMMENT ON COLUMN railyard.inventory.origin IS 'Where in the imported file: a JSON path such as $.agents.value[2], or a Terraform resource address';
COMMENT ON COLUMN railyard.inventory.file IS 'The file the import read';

-- Here rather than in sql/80_integrations.sql: sql/40_views.sql (task_waits)
-- calls it, and sql/ files are applied in name order.
CREATE FUNCTION railyard.inventory_hint(p_requires text[], p_os text, p_arch text,
                                        p_cpu integer DEFAULT 1, p_mem_mb bigint DEFAULT 0)
RETURNS text
LANGUAGE sql STABLE AS $$
    WITH fit AS (
        SELECT DISTINCT i.name
          FROM railyard.inventory i
         WHERE coalesce(p_requires, '{}') <@ (i.labels || array_remove(ARRAY[i.os, i.arch], NULL))
           AND (p_os IS NULL OR i.os IS NULL OR i.os = p_os)
           AND (p_arch IS NULL OR i.arch IS NULL OR i.arch = p_arch)
           AND (i.cpu IS NULL OR i.cpu >= coalesce(p_cpu, 1))
           AND (i.mem_mb IS NULL OR i.mem_mb >= coalesce(p_mem_mb, 0))
    ), offline AS (
        SELECT f.name FROM fit f
         WHERE NOT EXISTS (SELECT 1 FROM railyard.agents a
                            WHERE a.name = f.name AND a.state = 'online' AND a.lease_until > now())
    ), listed AS (
        SELECT array_agg(name ORDER BY name) AS names FROM offline
    )
    SELECT format('%s in the inventory %s offline: %s%s',
                  cardinality(names), CASE WHEN cardinality(names) = 1 THEN 'is' ELSE 'are' END,
                  array_to_string(names[1:5], ', '),
                  CASE WHEN cardinality(names) > 5 THEN format(' and %s more', cardinality(names) - 5) ELSE '' END)
      FROM listed
     WHERE cardinality(names) > 0
$$;

COMMENT ON FUNCTION railyard.inventory_hint(text[], text, text, integer, bigint) IS
    'For a task''s requirements (labels, os, arch, cpu, mem_mb): the planned agents of the '
    'inventory that would fit it but are not online, as "2 in the inventory are offline: gpu-01, '
    'gpu-02"; NULL when there are none. task_waits appends it to why a ready task waits.';
