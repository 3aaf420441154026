package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/sessions"
)

// sessionColumns are the columns scanSession reads, in its order.
const sessionColumns = `id, user_id, client_id, status, created_at, last_active_at, expires_at, ended_at, user_agent, ip_address, metadata`

const (
	// Only active sessions: an ended token is "no row", exactly like an
	// unknown one.
	selectSessionByTokenHash = `SELECT ` + sessionColumns + ` FROM sessions WHERE token_hash = $1 AND status = 'active'`
	selectSessionByID        = `SELECT ` + sessionColumns + ` FROM sessions WHERE id = $1`
	// A holder's view: a session outside its scope is "no row", exactly
	// like an unknown ID.
	selectSessionInScope = `SELECT ` + sessionColumns + ` FROM sessions WHERE id = $1 AND (user_id = $2 OR client_id = $3)`
	// FOR NO KEY UPDATE, the lock an UPDATE of the row takes: lockers queue
	// instead of deadlocking when they go on to update it.
	lockSessionByID        = selectSessionByID + ` FOR NO KEY UPDATE`
	lockSessionByTokenHash = selectSessionByTokenHash + ` FOR NO KEY UPDATE`
	touchSession           = `UPDATE sessions SET last_active_at = $2 WHERE id = $1 AND status = 'active' AND last_active_at < $2`
)

// auditColumns are the columns every audit row is written with, and
// snapshot the session object its event carries, built from the row the
// same statement has just written (a session's terminal row is what it
// still is at commit). The commit only records that the transaction's
// events exist; a numbering after it gives them their order
// (migrations/000007_events_sequencer.up.sql), which relies on every
// transaction here taking its row locks before it writes its first audit
// row, and on each statement below writing its audit rows after its
// UPDATE has locked every row it changes. Keep it so.
const (
	auditColumns = `session_id, old_status, new_status, at, actor, client_id, session`
	snapshot     = `jsonb_build_object('id', id, 'user_id', user_id, 'client_id', client_id, 'status', status,
		'created_at', created_at, 'last_active_at', last_active_at, 'expires_at', expires_at, 'ended_at', ended_at,
		'user_agent', user_agent, 'ip_address', ip_address, 'metadata', metadata)`
)

func scanSession(row pgx.Row) (sessions.Session, error) {
	var s sessions.Session
	var status string
	err := row.Scan(&s.ID, &s.UserID, &s.ClientID, &status, &s.CreatedAt, &s.LastActiveAt,
		&s.ExpiresAt, &s.EndedAt, &s.UserAgent, &s.IPAddress, &s.Metadata)
	s.Status = sessions.Status(status)
	s.CreatedAt, s.LastActiveAt, s.ExpiresAt = s.CreatedAt.UTC(), s.LastActiveAt.UTC(), s.ExpiresAt.UTC()
	if s.EndedAt != nil {
		t := s.EndedAt.UTC()
		s.EndedAt = &t
	}
	return s, err
}

func collectSessions(rows pgx.Rows, err error) ([]sessions.Session, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (sessions.Session, error) { return scanSession(row) })
}

// txStore implements sessions.Tx inside one transaction. Its errors are
// mapped by Store.InTx.
type txStore struct{ tx *pipelinedTx }

// Lock implements sessions.Tx. It takes l's locks in as few statements
// as it has for their shape: a sign-in's client, user and client sessions
// in one (lockSignIn); the own session by token, with its client and the
// client's sessions or alone, in one; selected sessions and the own one in
// one; anything else one statement per kind of lock, in the order
// sessions.Tx.Lock gives.
func (t txStore) Lock(ctx context.Context, l sessions.Locks) (sessions.Session, error) {
	if l.OwnToken != (sessions.TokenHash{}) {
		if l != (sessions.Locks{OwnToken: l.OwnToken, OwnClient: l.OwnClient}) {
			return sessions.Session{}, errors.New("db: Locks.OwnToken combines with OwnClient only")
		}
		if l.OwnClient {
			return t.lockClientOfToken(ctx, l.OwnToken)
		}
		return sessionRow(t.tx.QueryRow(ctx, lockSessionByTokenHash, l.OwnToken[:]))
	}
	if l.OwnClient {
		return sessions.Session{}, errors.New("db: Locks.OwnClient without OwnToken")
	}
	if l.ClientID != "" && l.UserID != "" && l.NewUser && l.Sessions == (sessions.Selector{ClientID: l.ClientID}) && l.OwnID == "" {
		return sessions.Session{}, t.lockSignIn(ctx, l.ClientID, l.UserID)
	}
	if l.ClientID != "" {
		if err := t.lockClient(ctx, l.ClientID); err != nil {
			return sessions.Session{}, err
		}
	}
	if l.UserID != "" {
		lock := t.lockKnownUser
		if l.NewUser {
			lock = t.lockUser
		}
		if err := lock(ctx, l.UserID); err != nil {
			return sessions.Session{}, err
		}
	}
	switch {
	case l.Sessions != (sessions.Selector{}) && l.OwnID != "":
		return t.lockSessionsAndOwn(ctx, l.Sessions, l.OwnID)
	case l.Sessions != (sessions.Selector{}):
		return sessions.Session{}, t.lockSessions(ctx, l.Sessions)
	case l.OwnID != "":
		return sessionRow(t.tx.QueryRow(ctx, lockSessionByID, l.OwnID))
	}
	return sessions.Session{}, nil
}

// lockClient takes the client's row lock; ErrClientNotFound if none.
func (t txStore) lockClient(ctx context.Context, id string) error {
	var one int
	err := t.tx.QueryRow(ctx, `SELECT 1 FROM clients WHERE id = $1 FOR UPDATE`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return sessions.ErrClientNotFound
	}
	return err
}

func (t txStore) ClientExists(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM clients WHERE id = $1)`, id).Scan(&ok)
	return ok, err
}

// lockUser takes the user's lock row, made on first use.
func (t txStore) lockUser(ctx context.Context, userID string) error {
	// ON CONFLICT DO UPDATE locks the existing row, or the one it inserts,
	// until the transaction ends.
	_, err := t.tx.Exec(ctx, `INSERT INTO session_users (user_id) VALUES ($1)
		ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id`, userID)
	return err
}

// lockSignIn takes, in one statement and in this order, what a sign-in on
// an existing client locks: the client's row, the user's lock row (made on
// first use) and the rows of the client's active sessions;
// ErrClientNotFound, with nothing else locked, if the client does not
// exist.
func (t txStore) lockSignIn(ctx context.Context, clientID, userID string) error {
	// Each lock's CTE reads the one before it, so Postgres takes them in
	// lockClient, lockUser, lockSessions order, as separate statements
	// would: the user's row only once the client's is held, the
	// sessions' only once both are. The sessions' CTE is read to its end
	// (a CTE no one reads is never run), which takes every row lock.
	var clients, locked int
	err := t.tx.QueryRow(ctx, `WITH client AS (
		SELECT id FROM clients WHERE id = $1 FOR UPDATE
	), lock_user AS (
		INSERT INTO session_users (user_id) SELECT $2 FROM client
		ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id
		RETURNING user_id
	), client_sessions AS (
		SELECT id FROM sessions WHERE client_id = $1 AND status = 'active' AND EXISTS (SELECT 1 FROM lock_user)
		ORDER BY id FOR NO KEY UPDATE
	)
	SELECT (SELECT count(*) FROM client), (SELECT count(*) FROM client_sessions)`, clientID, userID).Scan(&clients, &locked)
	if err == nil && clients == 0 {
		return sessions.ErrClientNotFound
	}
	return err
}

// lockKnownUser takes the user's lock row if there is one.
func (t txStore) lockKnownUser(ctx context.Context, userID string) error {
	var one int
	err := t.tx.QueryRow(ctx, `SELECT 1 FROM session_users WHERE user_id = $1 FOR UPDATE`, userID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	return err
}

// lockClientOfToken takes, in one statement, the row lock of the client of
// the token's active session and then the row locks of every active
// session on that client, and returns the token's session as stored;
// ErrSessionNotFound when the token has no active session, or its session
// ended before its lock was taken.
func (t txStore) lockClientOfToken(ctx context.Context, h sessions.TokenHash) (sessions.Session, error) {
	// The token's session is read first without a lock, for its client;
	// then the client's row is locked, then every active session on the
	// client in ID order (each a one-time condition of the next scan, so
	// in that order, as lockSignIn takes them). A session that ended
	// while its lock was awaited is re-checked and left out, so the
	// token's own is among the rows only if it is still active.
	rows, err := t.tx.Query(ctx, `WITH token AS (
		SELECT client_id FROM sessions WHERE token_hash = $1 AND status = 'active'
	), client AS (
		SELECT id FROM clients WHERE id = (SELECT client_id FROM token) FOR UPDATE
	)
	SELECT token_hash = $1, `+sessionColumns+` FROM sessions
	WHERE client_id = (SELECT id FROM client) AND status = 'active' ORDER BY id FOR NO KEY UPDATE`, h[:])
	if err != nil {
		return sessions.Session{}, err
	}
	return ownRow(rows)
}

// lockSessions takes the row locks of the active sessions sel selects, in
// ID order.
func (t txStore) lockSessions(ctx context.Context, sel sessions.Selector) error {
	var w where
	w.addSelector(sel)
	_, err := t.tx.Exec(ctx, fmt.Sprintf(`SELECT 1 FROM sessions WHERE %s ORDER BY id FOR NO KEY UPDATE`, w), w.args...)
	return err
}

// lockSessionsAndOwn is lockSessions and the own session's lock in one
// statement, every row in ID order: it returns the session ownID as
// stored, whatever its status, or ErrSessionNotFound if none.
func (t txStore) lockSessionsAndOwn(ctx context.Context, sel sessions.Selector, ownID string) (sessions.Session, error) {
	var w where
	w.addSelector(sel)
	w.args = append(w.args, ownID)
	own := len(w.args)
	// The own row whatever its status (as lockSessionByID answers); the
	// others while active (lockSessions'). A row updated while its lock was
	// awaited is re-checked against the same condition.
	rows, err := t.tx.Query(ctx, fmt.Sprintf(`SELECT id = $%[2]d, `+sessionColumns+` FROM sessions
		WHERE (%[1]s) OR id = $%[2]d ORDER BY id FOR NO KEY UPDATE`, w, own), w.args...)
	if err != nil {
		return sessions.Session{}, err
	}
	return ownRow(rows)
}

// ownRow reads rows whose first column says which one is the caller's
// own session and returns that one, or ErrSessionNotFound; the rest are
// read to their end (each holds its lock from then on).
func ownRow(rows pgx.Rows) (sessions.Session, error) {
	defer rows.Close()
	own, found := sessions.Session{}, false
	for rows.Next() {
		var isOwn bool
		s, err := scanSession(prefixedRow{rows, &isOwn})
		if err != nil {
			return sessions.Session{}, err
		}
		if isOwn {
			own, found = s, true
		}
	}
	if err := rows.Err(); err != nil {
		return sessions.Session{}, err
	}
	if !found {
		return sessions.Session{}, sessions.ErrSessionNotFound
	}
	return own, nil
}

func (t txStore) Session(ctx context.Context, id string, scope sessions.Scope) (sessions.Session, error) {
	if scope == (sessions.Scope{}) {
		return sessionRow(t.tx.QueryRow(ctx, selectSessionByID, id))
	}
	return sessionRow(t.tx.QueryRow(ctx, selectSessionInScope, id, scope.UserID, scope.ClientID))
}

// sessionRow scans one session, with no row as ErrSessionNotFound.
func sessionRow(row pgx.Row) (sessions.Session, error) {
	s, err := scanSession(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, sessions.ErrSessionNotFound
	}
	return s, err
}

func (t txStore) ListSessions(ctx context.Context, f sessions.ListFilter) ([]sessions.Session, error) {
	var w where
	if f.UserID != "" {
		w.add("user_id = $%d", f.UserID)
	}
	if f.ClientID != "" {
		w.add("client_id = $%d", f.ClientID)
	}
	if f.Status != "" {
		w.add("status = $%d", string(f.Status))
	}
	if f.BeforeID != "" {
		w.add("id < $%d", f.BeforeID)
	}
	w.args = append(w.args, f.Limit)
	sql := fmt.Sprintf(`SELECT %s FROM sessions WHERE %s ORDER BY id DESC LIMIT $%d`, sessionColumns, w, len(w.args))
	return collectSessions(t.tx.Query(ctx, sql, w.args...))
}

func (t txStore) InsertSession(ctx context.Context, in sessions.Insert) error {
	t.tx.wroteEvents = true
	t.tx.commitWithNext(in.Commit)
	before := ""
	if in.NewClient {
		// The client's row comes first: the session's foreign key is
		// checked at the end of the statement, when both exist.
		before = `client AS (INSERT INTO clients (id, created_at) VALUES ($4, $5)), `
	}
	_, err := t.tx.Exec(ctx, insertSession(before), sessionInsertArgs(in.Session, in.TokenHash, in.Actor)...)
	return err
}

// insertSession inserts a session and its audit row in one statement,
// after the CTE before (if any), with sessionInsertArgs' arguments.
func insertSession(before string) string {
	return `WITH ` + before + `created AS (
		INSERT INTO sessions (id, token_hash, user_id, client_id, status, created_at, last_active_at, expires_at, user_agent, ip_address, metadata)
		VALUES ($1, $2, $3, $4, 'active', $5, $5, $6, $7, $8, $9)
		RETURNING ` + sessionColumns + `
	)
	INSERT INTO session_events (` + auditColumns + `)
	SELECT id, NULL, 'active', $5, $10, client_id, ` + snapshot + ` FROM created`
}

func sessionInsertArgs(s sessions.Session, h sessions.TokenHash, actor string) []any {
	return []any{s.ID, h[:], s.UserID, s.ClientID, s.CreatedAt, s.ExpiresAt, s.UserAgent, s.IPAddress, []byte(s.Metadata), actor}
}

// endAndAudit wraps an UPDATE ... RETURNING of sessions that leave
// 'active' so that one statement also writes their audit rows, with the
// actor in the last argument.
func endAndAudit(update string, actorArg int) string {
	return fmt.Sprintf(`WITH ended AS (%s RETURNING %s),
	audit AS (
		INSERT INTO session_events (%s)
		SELECT id, 'active', status, ended_at, $%d, client_id, %s FROM ended
	)
	SELECT %s FROM ended ORDER BY id DESC`, update, sessionColumns, auditColumns, actorArg, snapshot, sessionColumns)
}

func (t txStore) EndSessions(ctx context.Context, sel sessions.Selector, e sessions.Ending) ([]sessions.Session, error) {
	t.tx.wroteEvents = true
	t.tx.commitWithNext(e.Commit)
	w := where{args: []any{e.OwnClientID, string(e.Status), e.At}}
	w.addSelector(sel)
	touch := ""
	if e.ActiveID != "" {
		w.args = append(w.args, e.ActiveID)
		touch = fmt.Sprintf(`, last_active_at = CASE WHEN id = $%d THEN GREATEST(last_active_at, $3) ELSE last_active_at END`, len(w.args))
	}
	// Expiry folded in: one statement decides, row by row, whether the
	// session is past a bound (expired, by the system) or ends now. With
	// a zero Expiry no session is past one. (RETURNING sees the new row,
	// whose bounds are the old ones: only last_active_at may move, and
	// only forward, on the caller's own session, which is not past one.)
	endedAt, past, now := w.expiryTerms(e.Expiry)
	w.args = append(w.args, e.Actor, sessions.SystemActor)
	actor, system := len(w.args)-1, len(w.args)
	return collectSessions(t.tx.Query(ctx, fmt.Sprintf(`WITH ended AS (
		UPDATE sessions
		SET status = CASE WHEN %[2]s THEN 'expired' WHEN client_id = $1 THEN 'ended' ELSE $2::text END,
			ended_at = CASE WHEN %[2]s THEN %[3]s ELSE $3 END%[10]s
		WHERE %[1]s
		RETURNING %[4]s, %[2]s AS expired
	), audit AS (
		INSERT INTO session_events (%[8]s)
		SELECT id, 'active', status, CASE WHEN expired THEN %[7]s ELSE ended_at END,
			CASE WHEN expired THEN $%[6]d ELSE $%[5]d END, client_id, %[9]s FROM ended
	)
	SELECT %[4]s FROM ended WHERE NOT expired ORDER BY id DESC`, w, past, endedAt, sessionColumns, actor, system, now, auditColumns, snapshot, touch), w.args...))
}

func (t txStore) EvictSessions(ctx context.Context, userID string, keep int, e sessions.Ending) ([]sessions.Session, error) {
	t.tx.wroteEvents = true
	t.tx.commitWithNext(e.Commit)
	update := `UPDATE sessions SET status = $2, ended_at = $3
		WHERE status = 'active' AND id IN (
			SELECT id FROM sessions WHERE user_id = $1 AND status = 'active'
			ORDER BY last_active_at DESC, id DESC OFFSET $4)`
	return collectSessions(t.tx.Query(ctx, endAndAudit(update, 5), userID, string(e.Status), e.At, keep, e.Actor))
}

func (t txStore) ExpireSessions(ctx context.Context, sel sessions.Selector, e sessions.Expiry, limit int) (int, error) {
	t.tx.wroteEvents = true
	var w where
	w.addSelector(sel)
	endedAt, past, now := w.expiryTerms(e)
	w.conds = append(w.conds, past)
	target, batch := w.String(), ""
	if limit > 0 {
		// The batch is a materialized CTE: as an IN (subquery) the planner
		// may rescan it for every row, and each rescan skips the rows this
		// statement has just updated and takes the next ones, so the LIMIT
		// would not bound the batch.
		w.args = append(w.args, limit)
		batch = fmt.Sprintf(`batch AS MATERIALIZED (SELECT id FROM sessions WHERE %s LIMIT $%d FOR UPDATE SKIP LOCKED), `, target, len(w.args))
		target = `status = 'active' AND id IN (SELECT id FROM batch)`
	}
	w.args = append(w.args, sessions.SystemActor)
	var n int
	err := t.tx.QueryRow(ctx, fmt.Sprintf(`WITH %sexpired AS (
		UPDATE sessions SET status = 'expired', ended_at = %s WHERE %s RETURNING %s
	), audit AS (
		INSERT INTO session_events (%s)
		SELECT id, 'active', 'expired', %s, $%d, client_id, %s FROM expired
	)
	SELECT count(*) FROM expired`, batch, endedAt, target, sessionColumns, auditColumns, now, len(w.args), snapshot), w.args...).Scan(&n)
	return n, err
}

func (t txStore) DeleteEndedBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	// A materialized batch, for the reason ExpireSessions gives.
	// The session's events go with it as far as they describe it: their
	// snapshots (user agent, IP address, metadata) are removed, so no
	// stream or webhook replays a deleted session; the audit facts (which
	// session, statuses, when, who) stay. Readers skip events without a
	// snapshot.
	rows, err := t.tx.Query(ctx, `WITH batch AS MATERIALIZED (
		SELECT id FROM sessions WHERE status <> 'active' AND ended_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED
	), deleted AS (
		DELETE FROM sessions WHERE id IN (SELECT id FROM batch) RETURNING id, client_id
	), forgotten AS (
		UPDATE session_events SET session = NULL
		WHERE session_id IN (SELECT id FROM deleted) AND session IS NOT NULL
	)
	SELECT client_id FROM deleted`, before, limit)
	if err != nil {
		return 0, err
	}
	clients, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(clients) == 0 {
		return 0, err
	}
	// A client goes with its last session. One that a sign-in holds right
	// now is skipped: it is about to have a session again.
	_, err = t.tx.Exec(ctx, `DELETE FROM clients WHERE id IN (
		SELECT c.id FROM clients c WHERE c.id = ANY($1)
		AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.client_id = c.id)
		FOR UPDATE SKIP LOCKED)`, clients)
	return len(clients), err
}

// where builds the conditions of a query shaped by what is set, so each
// shape gets its own prepared plan that uses the right index (a generic
// plan for "user_id = $1 or $1 is empty" would use none).
type where struct {
	conds []string
	args  []any
}

// add appends a condition whose %d is the placeholder number of v.
func (w *where) add(cond string, v any) {
	w.args = append(w.args, v)
	w.conds = append(w.conds, fmt.Sprintf(cond, len(w.args)))
}

// expiryTerms adds e's bounds to the arguments and returns the SQL of the
// moment an active session expires, of "it is past that moment at e.Now",
// and of e.Now itself (when the expiry is recorded). A session expires at expires_at, or idle after its last activity
// if that comes first; the idle term is left out when it is off, so the
// plan can use the expires_at index.
func (w *where) expiryTerms(e sessions.Expiry) (endedAt, past, now string) {
	w.args = append(w.args, e.Now)
	now = fmt.Sprintf("$%d", len(w.args))
	endedAt, past = "expires_at", "expires_at <= "+now
	if e.IdleTimeout > 0 {
		w.args = append(w.args, e.IdleTimeout.Microseconds())
		idle := fmt.Sprintf("$%d * interval '1 microsecond'", len(w.args))
		endedAt = fmt.Sprintf("LEAST(expires_at, last_active_at + %s)", idle)
		past = fmt.Sprintf("(expires_at <= %s OR last_active_at + %s <= %s)", now, idle, now)
	}
	return endedAt, past, now
}

// addSelector adds the active sessions that sel selects.
func (w *where) addSelector(sel sessions.Selector) {
	w.conds = append(w.conds, "status = 'active'")
	if sel.SessionID != "" {
		w.add("id = $%d", sel.SessionID)
	}
	if sel.UserID != "" {
		w.add("user_id = $%d", sel.UserID)
	}
	if sel.ClientID != "" {
		w.add("client_id = $%d", sel.ClientID)
	}
	if sel.ExceptSessionID != "" {
		w.add("id <> $%d", sel.ExceptSessionID)
	}
}

func (w where) String() string {
	if len(w.conds) == 0 {
		return "true"
	}
	return strings.Join(w.conds, " AND ")
}
