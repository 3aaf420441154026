DROP TABLE webhook_positions;
DROP TRIGGER session_events_sequence ON session_events;
DROP FUNCTION session_events_sequence();
DROP INDEX session_events_unsequenced_idx;
DROP INDEX session_events_client_id_idx;
DROP INDEX session_events_commit_seq_key;
DROP SEQUENCE session_events_commit_seq;
ALTER TABLE session_events DROP COLUMN session, DROP COLUMN client_id, DROP COLUMN commit_seq;
