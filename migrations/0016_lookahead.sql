-- 0016_lookahead: railyard.claim_placement gains cacheable, so a worker
-- with a build cache can take cacheable tasks beyond its free slots to look
-- them up (issue 9, the no-op run: pkg/sched's ry_sched_place_ahead).
-- Applied once.  A function's result columns cannot change in place, so
-- the former one goes here and sql/25_placement.sql creates the new one;
-- workers that do not read the column are unaffected (they look columns
-- up by name).
DROP FUNCTION IF EXISTS railyard.claim_placement(bigint, text[], text, text, int, int, int, int);
