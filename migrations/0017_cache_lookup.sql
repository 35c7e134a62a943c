-- 0017_cache_lookup: railyard.cache_lookup asks whether a key's runs ever
-- failed (flaky) or succeeded with another output (nondeterministic).  On
-- cache_runs (key) alone those questions read every run of the key, and a
-- hit is a run too, so a key's lookup grew with its hits.  These partial
-- indexes hold only the runs the questions are about: "failed" is one
-- probe, "succeeded with another output" reads the key's real runs (one,
-- unless nondeterminism is served no-cache), never its hits.
CREATE INDEX IF NOT EXISTS cache_runs_failed ON railyard.cache_runs (key)
    WHERE outcome = 'failed';
CREATE INDEX IF NOT EXISTS cache_runs_succeeded ON railyard.cache_runs (key, output_digest)
    WHERE outcome = 'succeeded';
