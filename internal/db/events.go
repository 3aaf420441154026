package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessiond/sessiond/internal/sessions"
	"github.com/sessiond/sessiond/internal/wire"
)

// EventsChannel is the channel every numbering of new events notifies
// (migrations/000007_events_sequencer.up.sql).
const EventsChannel = "sessiond_session_events"

// Numbered events in order. Each numbered transaction has one row in
// session_event_commits with the range of numbers its events take
// (migrations/000004_events_per_commit.up.sql), written by the numbering
// that follows its commit (000007); an event's Seq is its commit's
// first_seq plus its id's offset from the commit's first id.
// In these statements $1 is the position to read after and the last
// parameter the limit.
const (
	eventSeq     = `c.first_seq + (e.id - c.first_id)`
	eventColumns = eventSeq + `, e.session_id, e.old_status, e.at, e.actor, e.session`
	// The commits past $1 in order, each with its events past $1 in id
	// order. The LATERAL limit bounds what one large commit costs a read
	// of limit events; the ORDER BY then sorts at most that many per
	// commit.
	eventsAfter = ` FROM session_event_commits c, LATERAL (
		SELECT * FROM session_events e
		WHERE e.txn = c.txn AND e.id > c.first_id + ($1 - c.first_seq) AND e.session IS NOT NULL
		ORDER BY e.id LIMIT $%[1]d) e
	WHERE c.last_seq > $1 ORDER BY c.last_seq, e.id LIMIT $%[1]d`
	latestEventSeq = `SELECT COALESCE(max(last_seq), 0) FROM session_event_commits`
)

func collectEvents(rows pgx.Rows, err error) ([]sessions.Event, error) {
	if err != nil {
		return nil, mapError(err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sessions.Event, error) {
		var e sessions.Event
		var sessionID string
		var old *string
		var snap []byte
		if err := row.Scan(&e.Seq, &sessionID, &old, &e.At, &e.Actor, &snap); err != nil {
			return e, err
		}
		return e, fillEvent(&e, sessionID, old, snap)
	})
	return events, mapError(err)
}

// fillEvent completes an event scanned from its row.
func fillEvent(e *sessions.Event, sessionID string, old *string, snap []byte) error {
	e.At = e.At.UTC()
	if old != nil {
		e.OldStatus = sessions.Status(*old)
	}
	// The snapshot is the session object the writing statement built
	// (queries.go), read back through the one wire representation.
	var s wire.Session
	if err := json.Unmarshal(snap, &s); err != nil {
		return fmt.Errorf("event %d of %s: session snapshot: %w", e.Seq, sessionID, err)
	}
	e.Session = s.ToSession()
	return nil
}

// clientsEventsAfter is ClientsEventsAfter's statement: $1 after, $2 the
// clients, $3 whether every client is wanted, $4 the limit.
var clientsEventsAfter = `SELECT ` + eventSeq + `, $3 OR e.client_id = ANY($2), e.session_id, e.old_status, e.at, e.actor,
		CASE WHEN $3 OR e.client_id = ANY($2) THEN e.session END` + fmt.Sprintf(eventsAfter, 4)

// ClientsEventsAfter reads the next limit committed events above after
// and returns those of the given clients (nil: of every client), how many
// it read and the Seq of the last one read (after when none). Only the wanted events' rows
// carry their session snapshot: a replica with no open stream on the
// clients of a sign-out of 10,000 sessions reads 10,000 numbers, not
// 10,000 sessions. It reads the commits past after by the index of
// last_seq and each one's events by the index of txn, so a read costs
// about limit events wherever after is (a page resuming with an old
// Last-Event-ID reads page by page, and the Hub bounds how far back).
func (s *Store) ClientsEventsAfter(ctx context.Context, clients []string, after int64, limit int) (events []sessions.Event, read int, last int64, err error) {
	rows, err := s.pool.Query(ctx, clientsEventsAfter, after, clients, clients == nil, limit)
	if err != nil {
		return nil, 0, after, mapError(err)
	}
	defer rows.Close()
	last = after
	for rows.Next() {
		var e sessions.Event
		var wanted bool
		var sessionID string
		var old *string
		var snap []byte
		if err := rows.Scan(&e.Seq, &wanted, &sessionID, &old, &e.At, &e.Actor, &snap); err != nil {
			return nil, 0, after, mapError(err)
		}
		read, last = read+1, e.Seq
		if !wanted {
			continue
		}
		if err := fillEvent(&e, sessionID, old, snap); err != nil {
			return nil, 0, after, err
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, after, mapError(err)
	}
	return events, read, last, nil
}

// NumberEvents numbers the events of every transaction that committed
// and is not numbered yet, and returns how many transactions it numbered
// (migrations/000007_events_sequencer.up.sql). Any number of replicas may
// call it at once: numberings take turns on an advisory lock, each one
// short transaction however many commits it numbers. When it numbered
// any, every replica's listener is notified.
//
// On a database not migrated to 000007 yet (or migrated back down) the
// function does not exist and every commit numbers itself: nothing to do,
// so this binary runs on it during a rolling upgrade or a rollback.
func (s *Store) NumberEvents(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT session_events_number()`).Scan(&n)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42883" { // undefined_function
		return 0, nil
	}
	return n, mapError(err)
}

// OnEventsCommitted sets fn to be called after each transaction of InTx
// that wrote events has committed (nil: none), so the process that made
// a commit can have it numbered at once instead of at the next tick. fn
// must not block: it runs on the request's path.
func (s *Store) OnEventsCommitted(fn func()) {
	if fn == nil {
		s.eventsCommitted.Store(nil)
		return
	}
	s.eventsCommitted.Store(&fn)
}

// LatestEventSeq returns the highest number a committed event has, or
// its commit has reserved, 0 when there is none: every event committed
// before the call has at most this Seq, every event committed later a
// higher one. It numbers what has committed first, so that "from now
// on" (a stream opened without Last-Event-ID) does not include an event
// committed before the call.
func (s *Store) LatestEventSeq(ctx context.Context) (int64, error) {
	if _, err := s.NumberEvents(ctx); err != nil {
		return 0, err
	}
	var seq int64
	err := s.pool.QueryRow(ctx, latestEventSeq).Scan(&seq)
	return seq, mapError(err)
}

// EventsAfter returns at most limit committed events with a Seq above
// after, in commit order. Rows of events whose snapshot is missing
// (written before the events migration, of sessions since deleted) are
// skipped.
func (s *Store) EventsAfter(ctx context.Context, after int64, limit int) ([]sessions.Event, error) {
	return collectEvents(s.pool.Query(ctx, `SELECT `+eventColumns+fmt.Sprintf(eventsAfter, 2), after, limit))
}

// dedicatedConn opens a connection outside the pool, to the direct URL
// (WithDirectURL; the pool's URL by default), with the given
// application_name, so operators (and tests) can tell it apart in
// pg_stat_activity.
func (s *Store) dedicatedConn(ctx context.Context, appName string) (*pgx.Conn, error) {
	cfg := s.direct.Copy()
	cfg.RuntimeParams["application_name"] = appName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	return conn, mapError(err)
}

// EventListener is one connection that LISTENs on EventsChannel.
type EventListener struct{ conn *pgx.Conn }

// ListenerAppName is the application_name of the listening connection.
const ListenerAppName = "sessiond-events-listener"

// ListenEvents opens a connection of its own and listens on EventsChannel.
// Close it when done.
func (s *Store) ListenEvents(ctx context.Context) (*EventListener, error) {
	conn, err := s.dedicatedConn(ctx, ListenerAppName)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+EventsChannel); err != nil {
		_ = conn.Close(context.Background())
		return nil, mapError(err)
	}
	return &EventListener{conn: conn}, nil
}

// Wait returns when a notification arrives (nil), ctx ends (its error), or
// the connection fails (an error wrapping sessions.ErrUnavailable).
func (l *EventListener) Wait(ctx context.Context) error {
	_, err := l.conn.WaitForNotification(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return mapError(err)
}

// Close closes the listening connection.
func (l *EventListener) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = l.conn.Close(ctx)
}

// WebhookAppName is the application_name of a webhook lease's connection.
const WebhookAppName = "sessiond-webhook"

// WebhookLease is the right to deliver to one webhook URL: a session-level
// advisory lock on a connection of its own. If the process dies, Postgres
// ends the connection and the lock goes with it, so another replica takes
// over at once. A URL is known here only by its key (the hex SHA-256 the
// events package computes): a URL may hold a secret, and the database
// never stores it.
type WebhookLease struct {
	conn *pgx.Conn
	key  string
}

// TryWebhookLease takes the lease of the URL with the given key if no one
// holds it; nil without error when another does. A URL seen for the first
// time starts at the newest event: webhooks deliver what happens after
// they are configured.
func (s *Store) TryWebhookLease(ctx context.Context, key string) (*WebhookLease, error) {
	conn, err := s.dedicatedConn(ctx, WebhookAppName)
	if err != nil {
		return nil, err
	}
	var ok bool
	err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended('sessiond.webhook:' || $1, 0))`, key).Scan(&ok)
	if err == nil && ok {
		_, err = conn.Exec(ctx, `INSERT INTO webhook_positions (url_hash, position)
			VALUES ($1, (`+latestEventSeq+`)) ON CONFLICT (url_hash) DO NOTHING`, key)
	}
	if err != nil || !ok {
		_ = conn.Close(context.Background())
		return nil, mapError(err)
	}
	return &WebhookLease{conn: conn, key: key}, nil
}

// EnsureWebhookPositions records a position for every URL key that has
// none, at the newest event: a URL receives what commits after it is
// first configured. sessiond calls it before it serves, so every event its
// requests commit reaches every URL it is configured with.
func (s *Store) EnsureWebhookPositions(ctx context.Context, keys []string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO webhook_positions (url_hash, position)
		SELECT k, (`+latestEventSeq+`) FROM unnest($1::text[]) k
		ON CONFLICT (url_hash) DO NOTHING`, keys)
	return mapError(err)
}

// Position returns the stored position of the lease's URL.
func (l *WebhookLease) Position(ctx context.Context) (int64, error) {
	var pos int64
	err := l.conn.QueryRow(ctx, `SELECT position FROM webhook_positions WHERE url_hash = $1`, l.key).Scan(&pos)
	return pos, mapError(err)
}

// Advance moves the URL's position forward to pos (never back). It runs
// on the lease's own connection, so it fails once the lease is lost.
func (l *WebhookLease) Advance(ctx context.Context, pos int64) error {
	_, err := l.conn.Exec(ctx, `UPDATE webhook_positions SET position = $2, updated_at = now()
		WHERE url_hash = $1 AND position < $2`, l.key, pos)
	return mapError(err)
}

// Park stores e as a dead letter of the lease's URL (again: a replayed
// event refused once more keeps its row).
func (l *WebhookLease) Park(ctx context.Context, e sessions.ParkedEvent) error {
	_, err := l.conn.Exec(ctx, `INSERT INTO webhook_dead_letters
			(url_hash, seq, webhook_id, type, payload, last_status, attempts)
		VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
		ON CONFLICT (url_hash, seq) DO UPDATE SET last_status = EXCLUDED.last_status,
			attempts = webhook_dead_letters.attempts + EXCLUDED.attempts, replay = false`,
		l.key, e.Seq, e.WebhookID, e.Type, string(e.Payload), e.Status, e.Attempts)
	return mapError(err)
}

// ReplayRequested lists the dead letters of the lease's URL an operator
// asked to replay, oldest first, at most limit.
func (l *WebhookLease) ReplayRequested(ctx context.Context, limit int) ([]sessions.ParkedEvent, error) {
	rows, _ := l.conn.Query(ctx, `SELECT seq, webhook_id, type, payload::text, last_status, attempts
		FROM webhook_dead_letters WHERE url_hash = $1 AND replay ORDER BY seq LIMIT $2`, l.key, limit)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sessions.ParkedEvent, error) {
		var e sessions.ParkedEvent
		var payload string
		err := r.Scan(&e.Seq, &e.WebhookID, &e.Type, &payload, &e.Status, &e.Attempts)
		e.Payload = []byte(payload)
		return e, err
	})
	return out, mapError(err)
}

// Replayed removes a dead letter that was delivered.
func (l *WebhookLease) Replayed(ctx context.Context, seq int64) error {
	_, err := l.conn.Exec(ctx, `DELETE FROM webhook_dead_letters WHERE url_hash = $1 AND seq = $2`, l.key, seq)
	return mapError(err)
}

// Close releases the lease by closing its connection.
func (l *WebhookLease) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = l.conn.Close(ctx)
}
