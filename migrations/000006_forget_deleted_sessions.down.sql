-- Nothing to undo: the removed snapshots described sessions that no
-- longer exist, and 000004's readers skip events without one.
SELECT 1;
