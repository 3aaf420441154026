-- Events numbered per commit, not per row.
--
-- 000002/000003 gave every audit row its commit_seq with an UPDATE at
-- commit: a second version of every row, with an entry in each of the
-- table's indexes. For a sign-out of 10,000 sessions that UPDATE took
-- 134 ms of about 470 ms of database time (the ending statement is the
-- rest); for a sign-in or a single sign-out one more row version.
--
-- Now a transaction's rows carry a key of their transaction (txn, from a
-- sequence, written by the column's default), and its commit writes one
-- row to session_event_commits: the range of numbers its events take,
-- first_seq to last_seq. An event's number (its seq, as GET
-- /session/events and the webhooks have always shown it) is
--
--     first_seq + (id - first_id)
--
-- where first_id is the lowest id of the transaction's events. Ids of
-- other transactions can fall between a transaction's own (identities
-- are taken at insert, by everyone), so a commit reserves the whole span
-- of ids and some numbers stay unused: readers only ever need the order
-- and "everything up to N", never contiguity. The number space is the
-- one commit_seq used, continued by the same sequence: stored webhook
-- positions and a page's Last-Event-ID stay valid across this migration.
--
-- The order guarantee is 000002's: the commit takes the commit-order
-- advisory lock before it reserves its range, and holds it until the
-- commit is visible; a reader that has seen number N has seen every
-- lower number that will ever exist. The range comes from the sequence
-- (nextval, then setval to its end, both under the lock), not from
-- max(last_seq), so a REPEATABLE READ snapshot cannot hand out a range
-- twice.
--
-- The key is not the transaction id: a dump restored into a new cluster
-- starts its transaction ids again, a sequence continues.
--
-- Every binary that shipped with 000002 also shipped 000003's statements,
-- which write client_id and the session snapshot with the row, so the
-- commit no longer fills them in; readers skip a row without a snapshot.
-- The migration rewrites session_events once (each row gets its txn) and
-- writes a commit row per existing event, under ACCESS EXCLUSIVE: sign-ins
-- and sign-outs wait for it. Measured on this project's 2-core machine:
-- about 15 s for 200,000 audit rows. A large audit table wants a
-- maintenance window.
--
-- During a rolling upgrade, replicas still on the previous binary read
-- commit_seq, which is gone: their streams and webhooks pause (and log)
-- until they are replaced; the positions they stored stay valid, so
-- nothing is lost or sent twice beyond at-least-once.

CREATE SEQUENCE session_events_txn AS bigint;

-- The transaction's key: drawn once, kept in a transaction-local setting.
-- A savepoint rolled back takes its rows and its setting back together.
CREATE FUNCTION session_events_txn() RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT COALESCE(NULLIF(current_setting('sessiond.events_txn', true), '')::bigint,
        set_config('sessiond.events_txn', nextval('session_events_txn')::text, true)::bigint)
$$;

CREATE TABLE session_event_commits (
    first_seq bigint PRIMARY KEY,
    last_seq  bigint NOT NULL UNIQUE,
    txn       bigint NOT NULL UNIQUE,
    first_id  bigint NOT NULL,
    CONSTRAINT session_event_commits_range CHECK (last_seq >= first_seq)
);

ALTER TABLE session_events ADD COLUMN txn bigint;

-- Rows numbered before this migration: each its own commit, keyed by a
-- negative txn (the sequence never gives one). Rows of transactions in
-- flight cannot exist here (ALTER TABLE above waited for them); rows
-- left unnumbered by SQL outside sessiond (000003 says how) get numbers
-- after the rest, so they are delivered rather than lost.
UPDATE session_events e SET commit_seq = n.seq
    FROM (SELECT id, nextval('session_events_commit_seq') AS seq
          FROM (SELECT id FROM session_events WHERE commit_seq IS NULL ORDER BY id) o) n
    WHERE e.id = n.id;
UPDATE session_events SET txn = -commit_seq;
INSERT INTO session_event_commits (first_seq, last_seq, txn, first_id)
    SELECT commit_seq, commit_seq, -commit_seq, id FROM session_events;

ALTER TABLE session_events ALTER COLUMN txn SET DEFAULT session_events_txn(),
    ALTER COLUMN txn SET NOT NULL;

DROP INDEX session_events_unsequenced_idx;
DROP INDEX session_events_client_id_idx;
ALTER TABLE session_events DROP COLUMN commit_seq;
-- A commit's rows, in id order (the commit's range, and readers).
CREATE INDEX session_events_txn_idx ON session_events (txn, id);
-- One client's events (a page resuming after Last-Event-ID), from the
-- lowest id a commit after the cursor has.
CREATE INDEX session_events_client_id_idx ON session_events (client_id, id);

-- Fires once per transaction (the WHEN condition of 000003), at commit.
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
