-- Events numbered after their commit, by a sequencer, instead of at it.
--
-- Until now (000002-000004) the commit of every transaction that wrote
-- session_events took one advisory lock, reserved its numbers and held
-- the lock until the commit was flushed and visible: no two event-writing
-- commits (every sign-in, every sign-out) could share a WAL flush, and the
-- NOTIFY the trigger sent took Postgres' own notification lock, held the
-- same way. With a 1 ms flush the whole deployment's writes topped out
-- near 1,000/s.
--
-- Now the commit only records that it happened: the trigger (still fired
-- once per transaction, at commit) writes one row to
-- session_event_pending with the lowest and highest id of its events. No
-- lock, no number, no NOTIFY. Numbers are given afterwards by
-- session_events_number(), which any replica runs (sessiond runs it after
-- each of its own event-writing commits and on a tick): under the same
-- transaction-level advisory lock (so numberings never overlap), it takes
-- every pending row its snapshot sees, orders them by their highest id,
-- reserves each its range from session_events_commit_seq (the number
-- space of 000002-000004, continued: stored webhook positions and a
-- page's Last-Event-ID stay valid), writes them to session_event_commits
-- (unchanged: readers read it exactly as before), deletes them from
-- pending and NOTIFYs every replica once. One short commit per batch of
-- commits, not one long lock per commit.
--
-- Gap-free: numbers are only ever taken inside a numbering, numberings are
-- serialised by the lock, and each is visible before the next can take
-- the lock (a transaction lock is released after its commit is visible).
-- So a reader that has seen number N has seen every lower number that
-- will ever exist.
--
-- Causal order. If transaction B depends on transaction A (B waited for a
-- row lock A held, or read a row A wrote), A committed before B went on,
-- so:
--   1. A's pending row is visible to every snapshot that sees B's: A is
--      numbered in the same numbering as B or an earlier one, never later.
--   2. Within one numbering, B comes after A if B's highest event id is
--      above A's. Identities are handed out in time order, and A wrote all
--      of its events before it committed; so every event B writes after
--      it waited for (or read) A has a higher id than all of A's. It holds
--      when B writes an event after its last wait, which every sessiond
--      transaction does: each takes its row locks (client, user, sessions:
--      LockSignIn, LockUser, LockClient, LockSession*, LockKnownUser)
--      before its first audit row, and its audit rows are written by the
--      same statements that change the sessions, after the UPDATE in them
--      has taken its row locks (the audit CTE runs after the statement's
--      main query has read every changed row). The highest id, not the
--      lowest, so the order does not also depend on that: by its lowest
--      id, a transaction that wrote an audit row and then waited for a
--      lock would be numbered before the one it waited for.
--   So events of one session, one client and one user - whose writers
--   all lock that session, client or user - reach every reader in commit
--   order. Unrelated transactions are in numbering order and, within a
--   numbering, by highest id: a total order, not necessarily commit order.
--
-- Latency: a commit is numbered by the next numbering that starts after
-- it, one short transaction after the commit; for a commit sessiond did
-- not make itself (SQL outside sessiond, a replica still on the previous
-- binary during a rolling upgrade, a replica that died right after its
-- commit) by the next tick of any replica. A long-running transaction
-- elsewhere stalls nothing: it has no pending row until it commits, and
-- the numbering runs in READ COMMITTED (it only leaves dead pending rows
-- unvacuumed for a while).
--
-- Nothing in this relies on replication slots or on the transaction ids
-- of one server: every piece of state is a replicated table or sequence,
-- so a failover to a standby carries it unchanged.
--
-- The migration changes no existing row: it creates one small table, one
-- function, and replaces the trigger's function. Transactions that
-- queued the old trigger before this migration and commit after it run
-- the new function (a trigger calls its function by name at firing);
-- one that fired the old one already took its numbers under the same
-- advisory lock the numbering takes, so the two never interleave.

-- Rows live for milliseconds: each numbering deletes what the one
-- before it could see. A sequential scan would walk every dead row since
-- the last vacuum (at 1,000 commits/s and autovacuum's one-minute nap,
-- 60,000 of them, in every numbering); the numbering reads through the
-- index on last_id instead, which marks the entries of dead rows as it
-- passes them, and since keys only grow, every insert lands on the
-- rightmost leaf, which drops those marked entries before it would split:
-- the index stays a page or two however many rows died.
CREATE TABLE session_event_pending (
    txn      bigint NOT NULL,
    first_id bigint NOT NULL,
    last_id  bigint NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
        autovacuum_vacuum_cost_delay = 0);
CREATE INDEX session_event_pending_last_id_idx ON session_event_pending (last_id);

-- Still fired once per transaction at commit (000003's WHEN condition).
CREATE OR REPLACE FUNCTION session_events_sequence() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_event_pending (txn, first_id, last_id)
        SELECT NEW.txn, min(id), max(id) FROM session_events WHERE txn = NEW.txn;
    -- Rows written after this firing (only possible when SQL outside
    -- sessiond makes the trigger IMMEDIATE) get a key of their own and
    -- queue a firing of their own: never numbered inside another
    -- pending row's range, nor left without one.
    PERFORM set_config('sessiond.events_txn', '', true), set_config('sessiond.events_sequenced', '', true);
    RETURN NULL;
END
$$;

-- Numbers every committed transaction not numbered yet; returns how many
-- it numbered. Safe to call from any number of connections at once.
-- A plain index scan (see session_event_pending), whatever the table's
-- statistics say: neither a sequential nor a bitmap scan marks dead
-- entries.
CREATE FUNCTION session_events_number() RETURNS integer
LANGUAGE plpgsql SET enable_seqscan = off SET enable_bitmapscan = off AS $$
DECLARE
    numbered integer;
    highest  bigint;
BEGIN
    -- Each statement below must see what committed before the lock was
    -- granted, the previous numbering included: a snapshot taken earlier
    -- (REPEATABLE READ) could number a range twice.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'session_events_number() runs only in READ COMMITTED';
    END IF;
    -- 7300118 is sessiond's key for "the commit order of session_events".
    PERFORM pg_advisory_xact_lock(7300118);
    WITH taken AS (
        DELETE FROM session_event_pending WHERE last_id > 0 RETURNING txn, first_id, last_id
    ), ranked AS (
        -- upto: how many numbers this commit and those before it take.
        SELECT txn, first_id, last_id,
            sum(last_id - first_id + 1) OVER (ORDER BY last_id ROWS UNBOUNDED PRECEDING) AS upto
        FROM taken
    ), base AS MATERIALIZED (
        SELECT nextval('session_events_commit_seq') - 1 AS b WHERE EXISTS (SELECT FROM taken)
    ), numbered AS (
        INSERT INTO session_event_commits (first_seq, last_seq, txn, first_id)
        SELECT b + upto - (last_id - first_id), b + upto, txn, first_id FROM ranked, base
        RETURNING last_seq
    )
    SELECT count(*), max(last_seq) INTO numbered, highest FROM numbered;
    IF numbered > 0 THEN
        PERFORM setval('session_events_commit_seq', highest);
        PERFORM pg_notify('sessiond_session_events', '');
    END IF;
    RETURN numbered;
END
$$;
