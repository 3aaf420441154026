-- Session events: the audit table session_events is the outbox that
-- GET /session/events and the webhooks deliver from.
--
-- Its identity id is assigned when a row is inserted, not when its
-- transaction commits: under concurrency a row with a lower id can become
-- visible after one with a higher id, so a reader that moved past id N
-- could miss it. commit_seq is the order readers use instead. A deferred
-- trigger assigns it at commit, under a transaction-level advisory lock
-- that is held until the commit is complete: a transaction can take the
-- next number only after every transaction that took a lower one is
-- visible. A reader that has seen commit_seq N has therefore seen every
-- row below N that will ever exist (a rolled-back transaction leaves a
-- gap, never a late row).
--
-- The same trigger copies the session as it is at commit into the row
-- (the event payload, so an event still says what it was after the
-- sweeper deleted the session), records its client (streams select by
-- client) and wakes every replica with NOTIFY (identical notifications of
-- one transaction are folded into one). Postgres' own NOTIFY also
-- serialises commits on a global lock, so the advisory lock costs little
-- on top of it.
ALTER TABLE session_events
    ADD COLUMN commit_seq bigint,
    ADD COLUMN client_id text,
    ADD COLUMN session jsonb;

CREATE SEQUENCE session_events_commit_seq AS bigint;

-- Rows written before this migration: commit order is unknown, id order
-- is the best there is; they are long committed.
UPDATE session_events e SET commit_seq = e.id, client_id = s.client_id,
    session = jsonb_build_object('id', s.id, 'user_id', s.user_id, 'client_id', s.client_id,
        'status', e.new_status, 'created_at', s.created_at, 'last_active_at', s.last_active_at,
        'expires_at', s.expires_at, 'ended_at', CASE WHEN e.new_status = 'active' THEN NULL ELSE s.ended_at END,
        'user_agent', s.user_agent, 'ip_address', s.ip_address, 'metadata', s.metadata)
FROM sessions s WHERE s.id = e.session_id;
UPDATE session_events SET commit_seq = id WHERE commit_seq IS NULL;
SELECT setval('session_events_commit_seq', COALESCE((SELECT max(id) FROM session_events), 0) + 1, false);

CREATE UNIQUE INDEX session_events_commit_seq_key ON session_events (commit_seq);
CREATE INDEX session_events_client_id_idx ON session_events (client_id, commit_seq);

-- The rows of the committing transaction are the only ones without a
-- commit_seq: every committed row got one before its commit, and other
-- transactions' rows are invisible. This index finds them at once.
CREATE INDEX session_events_unsequenced_idx ON session_events (id) WHERE commit_seq IS NULL;

-- Fires for each row at commit (a constraint trigger cannot be
-- statement-level); the first firing of a transaction numbers all of its
-- rows in one statement and the others return at once, so a sign-out of
-- 10,000 sessions costs one UPDATE, not 10,000.
CREATE FUNCTION session_events_sequence() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('sessiond.events_sequenced', true) = 'yes' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('sessiond.events_sequenced', 'yes', true); -- for this transaction
    -- 7300118 is sessiond's key for "the commit order of session_events".
    PERFORM pg_advisory_xact_lock(7300118);
    WITH mine AS (
        SELECT o.id, nextval('session_events_commit_seq') AS seq
        FROM (SELECT id FROM session_events WHERE commit_seq IS NULL ORDER BY id) o
    )
    UPDATE session_events e SET commit_seq = mine.seq, client_id = s.client_id,
        session = CASE WHEN s.id IS NOT NULL THEN jsonb_build_object('id', s.id, 'user_id', s.user_id, 'client_id', s.client_id,
            'status', e.new_status, 'created_at', s.created_at, 'last_active_at', s.last_active_at,
            'expires_at', s.expires_at, 'ended_at', CASE WHEN e.new_status = 'active' THEN NULL ELSE s.ended_at END,
            'user_agent', s.user_agent, 'ip_address', s.ip_address, 'metadata', s.metadata) END
    FROM mine LEFT JOIN session_events me ON me.id = mine.id LEFT JOIN sessions s ON s.id = me.session_id
    WHERE e.id = mine.id;
    PERFORM pg_notify('sessiond_session_events', '');
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER session_events_sequence
    AFTER INSERT ON session_events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION session_events_sequence();

-- Where each webhook URL's delivery stands: every event with a commit_seq
-- up to position has been answered 2xx (or dropped as too old). Written
-- only by the replica holding the URL's advisory lock.
CREATE TABLE webhook_positions (
    url        text PRIMARY KEY,
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
