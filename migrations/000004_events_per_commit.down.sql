-- Back to 000003: every row carries its commit_seq, numbered at commit.
ALTER TABLE session_events ADD COLUMN commit_seq bigint;
UPDATE session_events e SET commit_seq = c.first_seq + (e.id - c.first_id)
    FROM session_event_commits c WHERE c.txn = e.txn;
SELECT setval('session_events_commit_seq',
    GREATEST((SELECT COALESCE(max(commit_seq), 0) FROM session_events),
             (SELECT last_value FROM session_events_commit_seq)));

DROP INDEX session_events_client_id_idx;
DROP INDEX session_events_txn_idx;
CREATE UNIQUE INDEX session_events_commit_seq_key ON session_events (commit_seq);
CREATE INDEX session_events_client_id_idx ON session_events (client_id, commit_seq);
CREATE INDEX session_events_unsequenced_idx ON session_events (id) WHERE commit_seq IS NULL;

ALTER TABLE session_events DROP COLUMN txn;
DROP TABLE session_event_commits;
DROP FUNCTION session_events_txn();
DROP SEQUENCE session_events_txn;

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
