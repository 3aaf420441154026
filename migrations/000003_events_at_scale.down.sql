-- Back to 000002's trigger: every row fires, the function numbers every
-- unnumbered row and builds every payload.
DROP TRIGGER session_events_sequence ON session_events;
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
