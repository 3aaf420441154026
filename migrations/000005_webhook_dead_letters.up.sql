-- Webhook URLs may carry a secret (Slack's and Discord's capability URLs
-- hold it in the path, others in userinfo or the query), so the database
-- no longer stores them: webhook_positions is keyed by the hex SHA-256 of
-- the URL as configured, the same key sessiond computes. Existing
-- positions carry over: each row's key is computed from its stored URL,
-- and the URL column goes.
ALTER TABLE webhook_positions ADD COLUMN url_hash text;
UPDATE webhook_positions SET url_hash = encode(sha256(convert_to(url, 'UTF8')), 'hex');
ALTER TABLE webhook_positions DROP CONSTRAINT webhook_positions_pkey;
ALTER TABLE webhook_positions DROP COLUMN url;
ALTER TABLE webhook_positions ALTER COLUMN url_hash SET NOT NULL;
ALTER TABLE webhook_positions ADD PRIMARY KEY (url_hash);

-- Dead letters: events a receiver refused for good (a 4xx other than
-- 408, 425 and 429, several attempts in a row), parked here so the events
-- after them are delivered instead of waiting behind them. The payload is
-- kept as it was sent, so the event can be replayed after the audit rows
-- are swept. An operator replays an event by setting replay to true; the
-- replica delivering to the URL sends it once (with the same webhook-id),
-- deletes the row after a 2xx, and otherwise sets replay back to false.
CREATE TABLE webhook_dead_letters (
    url_hash    text        NOT NULL,
    seq         bigint      NOT NULL,
    webhook_id  text        NOT NULL,
    type        text        NOT NULL,
    payload     jsonb       NOT NULL,
    last_status integer     NOT NULL,
    attempts    integer     NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now(),
    replay      boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (url_hash, seq)
);

CREATE INDEX webhook_dead_letters_replay ON webhook_dead_letters (url_hash, seq) WHERE replay;
