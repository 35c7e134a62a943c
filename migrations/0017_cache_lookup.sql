-- 0017_cache_lookup: railyard.cache_lookup asks whether a key's runs ever
-- failed (flaky) or succeeded with another output (nondeterministic).  On
-- cache_runs (key) alone those questions read every run of the key, and a
-- hit is a run too: a key hit 10,000 times read 10,000 rows per lookup.
-- These partial indexes hold only the runs the questions are about, so
-- each is one probe whatever the key's history (issue 9, lookup latency).
CREATE INDEX IF NOT EXISTS cache_runs_failed ON railyard.cache_runs (key)
    WHERE outcome = 'failed';
CREATE INDEX IF NOT EXISTS cache_runs_succeeded ON railyard.cache_runs (key, output_digest)
    WHERE outcome = 'succeeded';
