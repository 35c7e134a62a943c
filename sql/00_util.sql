-- Helpers shared by the other sql/ files.  Re-applied by every migrate.

-- Who is acting: workers and the CLI set railyard.actor per connection;
-- plain SQL users are recorded by their role name.
CREATE OR REPLACE FUNCTION railyard.actor() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('railyard.actor', true), ''), session_user::text)
$$;

-- A task that ended in a way its on_success dependents cannot build on.
CREATE OR REPLACE FUNCTION railyard.is_bad_outcome(s railyard.task_state, upstream_failed boolean)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT s IN ('failed', 'cancelled') OR (s = 'skipped' AND upstream_failed)
$$;
