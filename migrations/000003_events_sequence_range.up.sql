-- The commit-time trigger of 000002 found its transaction's rows as "every
-- row without a commit_seq". The partial index it read keeps an entry for
-- each row version that had none, and those entries stay until vacuum:
-- under a steady stream of commits every commit walked the dead entries of
-- all earlier ones while holding the commit-order lock, so commits slowed
-- in proportion to the events written since the last vacuum (10,000
-- sign-ins: 1.3 ms a commit at the start, 3.3 ms at the end, and timeouts
-- on a loaded machine).
--
-- The first firing of a transaction is for its first row (deferred
-- triggers fire in the order their rows were inserted), and an identity
-- column only grows, so every row of the transaction has an id at least
-- NEW.id: starting the scan there skips every entry of earlier commits.
-- Rows of later, concurrent transactions in that range are invisible or
-- already numbered, exactly as before.
CREATE OR REPLACE FUNCTION session_events_sequence() RETURNS trigger
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
        FROM (SELECT id FROM session_events WHERE commit_seq IS NULL AND id >= NEW.id ORDER BY id) o
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
