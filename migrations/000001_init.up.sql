-- A client is one device, browser or app install. It exists so that a
-- sign-in can name it and so that sign-ins on one client can be serialised
-- with a row lock (SELECT ... FOR UPDATE), whatever replica serves them.
CREATE TABLE clients (
    id         text PRIMARY KEY,
    created_at timestamptz NOT NULL
);

-- One row per user that ever signed in. Its only job is to be locked:
-- sign-ins of one user take this row lock so the per-user session limit
-- holds across replicas.
CREATE TABLE session_users (
    user_id text PRIMARY KEY
);

CREATE TABLE sessions (
    id             text PRIMARY KEY,
    token_hash     bytea NOT NULL,
    user_id        text NOT NULL,
    client_id      text NOT NULL REFERENCES clients (id),
    status         text NOT NULL DEFAULT 'active',
    created_at     timestamptz NOT NULL,
    last_active_at timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    user_agent     text NOT NULL DEFAULT '',
    ip_address     text NOT NULL DEFAULT '',
    metadata       jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT sessions_status_check CHECK (status IN ('active', 'ended', 'revoked', 'replaced', 'evicted', 'expired')),
    -- ended_at is set exactly when the session leaves 'active'.
    CONSTRAINT sessions_ended_at_check CHECK ((status = 'active') = (ended_at IS NULL)),
    CONSTRAINT sessions_token_hash_length CHECK (octet_length(token_hash) = 32)
);

-- GET /session: one index lookup by the SHA-256 of the token.
CREATE UNIQUE INDEX sessions_token_hash_key ON sessions (token_hash);
-- Per-user and per-client lists and sign-outs, newest first (IDs are ULIDs,
-- so they sort by creation time).
CREATE INDEX sessions_user_id_idx ON sessions (user_id, id);
CREATE INDEX sessions_client_id_idx ON sessions (client_id, id);
-- Invariant 2: at most one active session per (client, user).
CREATE UNIQUE INDEX sessions_one_active_per_client_user ON sessions (client_id, user_id) WHERE status = 'active';
-- The sweeper: active sessions by their bounds, ended ones by age.
CREATE INDEX sessions_active_expires_at_idx ON sessions (expires_at) WHERE status = 'active';
CREATE INDEX sessions_active_last_active_at_idx ON sessions (last_active_at) WHERE status = 'active';
CREATE INDEX sessions_ended_at_idx ON sessions (ended_at) WHERE status <> 'active';

-- Invariant 4, enforced by the database itself: a terminal status never
-- changes and ended_at is written once.
CREATE FUNCTION sessions_keep_terminal() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'active' THEN
        RAISE EXCEPTION 'session % is already %', OLD.id, OLD.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'sessions_terminal_status';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER sessions_keep_terminal
    BEFORE UPDATE OF status, ended_at ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessions_keep_terminal();

-- Invariant 6: every change of a session's status, written in the same
-- transaction as the change. old_status is NULL when the session was created.
-- No foreign key: the audit trail outlives the sessions the sweeper deletes.
CREATE TABLE session_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id text NOT NULL,
    old_status text,
    new_status text NOT NULL,
    at         timestamptz NOT NULL,
    actor      text NOT NULL
);

CREATE INDEX session_events_session_id_idx ON session_events (session_id, id);
