-- 0015_deal: railyard.claim_placement gains farm_free, the free slots of
-- the other online agents, which claim alongside this one (issue 7, fair
-- share under concurrent claims: pkg/sched's deal).  Applied once.  A
-- function's result columns cannot change in place, so the former one goes
-- here and sql/25_placement.sql creates the new one; workers that do not
-- read the column are unaffected (they look columns up by name).
DROP FUNCTION IF EXISTS railyard.claim_placement(bigint, text[], text, text, int, int, int, int);
