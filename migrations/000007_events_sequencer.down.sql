-- Back to 000004: every commit numbers its own events under the
-- commit-order lock. What committed but is not numbered yet is numbered
-- first, so nothing is left behind; the numbers stay where they are.
-- SHARE waits for every transaction that has written events to end and
-- holds new ones off until this commits (they then fire 000004's
-- trigger): nothing can commit a pending row after the numbering below.
LOCK TABLE session_events IN SHARE MODE;
SELECT session_events_number();

CREATE OR REPLACE FUNCTION session_events_sequence() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    lowest  bigint;
    highest bigint;
    base    bigint;
BEGIN
    -- 7300118 is sessiond's key for "the commit order of session_events".
    PERFORM pg_advisory_xact_lock(7300118);
    SELECT min(id), max(id) INTO lowest, highest FROM session_events WHERE txn = NEW.txn;
    base := nextval('session_events_commit_seq');
    IF highest > lowest THEN
        PERFORM setval('session_events_commit_seq', base + highest - lowest);
    END IF;
    INSERT INTO session_event_commits (first_seq, last_seq, txn, first_id)
        VALUES (base, base + highest - lowest, NEW.txn, lowest);
    -- Rows written after this firing (only possible when SQL outside
    -- sessiond makes the trigger IMMEDIATE) get a key of their own and
    -- queue a firing of their own, which takes a higher range: they are
    -- never numbered inside another commit's range, nor left unnumbered.
    PERFORM set_config('sessiond.events_txn', '', true), set_config('sessiond.events_sequenced', '', true);
    PERFORM pg_notify('sessiond_session_events', '');
    RETURN NULL;
END
$$;

DROP FUNCTION session_events_number();
DROP TABLE session_event_pending;
