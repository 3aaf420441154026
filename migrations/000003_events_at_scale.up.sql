-- Events at scale: what 000002's commit-time trigger cost, per event, in a
-- sign-out of 10,000 sessions (about as much again as ending them), and a
-- scan that grew with every commit.
--
-- 1. The scan. 000002 found its transaction's rows as "every row without a
--    commit_seq" through a partial index that keeps an entry for each row
--    version that had none until vacuum: under a steady stream of commits
--    each commit walked the dead entries of all earlier ones while holding
--    the commit-order lock (10,000 sign-ins: 1.3 ms a commit at the start,
--    3.3 ms at the end, and timeouts on a loaded machine). Now the scan
--    starts at the transaction's first row: deferred triggers fire in the
--    order their rows were inserted and an identity only grows, so every
--    row of the transaction has an id at least that one's. Rows of later,
--    concurrent transactions in that range are invisible or already
--    numbered, exactly as before. (The partial index stays: with it the
--    planner knows the scan is small, and the range keeps it so.)
-- 2. One firing per transaction. A constraint trigger is per row; 000002
--    queued 10,000 firings for 10,000 rows and all but the first returned
--    at once. The WHEN condition now queues only the first (it is
--    evaluated at insert, not at commit, and CASE fixes the order of its
--    two calls).
-- 3. The payload. sessiond's own statements now write client_id and the
--    session snapshot with the row, from the row they have just changed
--    (a session's ending row is what it still is at commit: a terminal
--    status never changes). The trigger fills them in only for rows
--    written without (older binaries during a rolling upgrade).
--
-- What this relies on, and sessiond never does: a transaction that makes
-- the trigger IMMEDIATE (SET CONSTRAINTS ... IMMEDIATE) or sets
-- sessiond.events_sequenced itself gets only its first statement's rows
-- numbered, and the rest would never reach a stream or a webhook (000002
-- numbered such stragglers at the next commit). Write session_events
-- only through sessiond.
DROP TRIGGER session_events_sequence ON session_events;

CREATE OR REPLACE FUNCTION session_events_sequence() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- 7300118 is sessiond's key for "the commit order of session_events".
    PERFORM pg_advisory_xact_lock(7300118);
    WITH mine AS (
        SELECT o.id, nextval('session_events_commit_seq') AS seq
        FROM (SELECT id FROM session_events WHERE id >= NEW.id AND commit_seq IS NULL ORDER BY id) o
    )
    UPDATE session_events e SET commit_seq = mine.seq,
        client_id = COALESCE(e.client_id, (SELECT s.client_id FROM sessions s WHERE s.id = e.session_id)),
        session = COALESCE(e.session, (SELECT jsonb_build_object('id', s.id, 'user_id', s.user_id, 'client_id', s.client_id,
            'status', e.new_status, 'created_at', s.created_at, 'last_active_at', s.last_active_at,
            'expires_at', s.expires_at, 'ended_at', CASE WHEN e.new_status = 'active' THEN NULL ELSE s.ended_at END,
            'user_agent', s.user_agent, 'ip_address', s.ip_address, 'metadata', s.metadata)
            FROM sessions s WHERE s.id = e.session_id))
    FROM mine
    WHERE e.id = mine.id;
    PERFORM pg_notify('sessiond_session_events', '');
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER session_events_sequence
    AFTER INSERT ON session_events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (CASE WHEN current_setting('sessiond.events_sequenced', true) = 'yes' THEN false
          ELSE set_config('sessiond.events_sequenced', 'yes', true) = 'yes' END)
    EXECUTE FUNCTION session_events_sequence();
