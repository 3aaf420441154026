package sessions

import (
	"context"
	"time"
)

// Store is the storage the service needs. internal/db implements it on
// Postgres; every rule that must hold under concurrency is made to hold
// there, with row locks and constraints, never with in-process locks.
//
// Methods return ErrSessionNotFound, ErrClientNotFound, ErrUnavailable (the
// database is out of reach) or ErrTimedOut (the context's deadline passed,
// e.g. waiting on a row lock) as they say; any other error is internal.
type Store interface {
	// SessionByTokenHash returns the active session whose token hashes to
	// h, or ErrSessionNotFound: an ended token is not found, exactly like an
	// unknown one, so refusing either does the same work. It is the hot
	// path: one index lookup, no cache. (A session past a bound that no one
	// has recorded yet is still returned; the service refuses it.)
	SessionByTokenHash(ctx context.Context, h TokenHash) (Session, error)
	// TouchSession records activity: it sets last_active_at to at if the
	// session is still active and last_active_at is earlier.
	TouchSession(ctx context.Context, id string, at time.Time) error
	// InTx runs fn in one transaction, committed when fn returns nil and
	// rolled back otherwise. fn may run more than once when the database
	// asks for a retry (a deadlock or serialization failure), so it must
	// not have effects outside tx.
	InTx(ctx context.Context, fn func(tx Tx) error) error
}

// Tx is what the service does inside one transaction.
type Tx interface {
	// LockClient takes the client's row lock until the transaction ends,
	// serialising sign-ins on one client; ErrClientNotFound if none.
	LockClient(ctx context.Context, id string) error
	// ClientExists reports whether the client exists.
	ClientExists(ctx context.Context, id string) (bool, error)
	// LockUser takes the user's lock row until the transaction ends,
	// serialising sign-ins of one user; the row is made on first use.
	LockUser(ctx context.Context, userID string) error
	// LockSignIn takes, in one statement and in this order, what a
	// sign-in on an existing client locks: the client's row, the user's
	// lock row (made on first use) and the rows of the client's active
	// sessions; ErrClientNotFound, with nothing else locked, if the client
	// does not exist.
	LockSignIn(ctx context.Context, clientID, userID string) error
	// LockKnownUser takes the user's lock row if there is one. A user
	// without one has never signed in, and a first sign-in that makes it
	// concurrently is simply ordered after this transaction.
	LockKnownUser(ctx context.Context, userID string) error
	// LockSession returns the session as stored and holds its row lock
	// until the transaction ends, so no other transaction can end it in the
	// meantime; ErrSessionNotFound if none.
	LockSession(ctx context.Context, id string) (Session, error)
	// LockSessionByToken is SessionByTokenHash inside the transaction,
	// holding the row lock of the session it returns, as LockSession does.
	LockSessionByToken(ctx context.Context, h TokenHash) (Session, error)
	// LockClientOfToken takes, in one statement, the row lock of the
	// client of the token's active session and then the row locks of
	// every active session on that client (sign-in's order: LockSignIn),
	// and returns the token's session as stored; ErrSessionNotFound when
	// the token has no active session, or its session ended before its
	// lock was taken.
	LockClientOfToken(ctx context.Context, h TokenHash) (Session, error)
	// LockSessions takes the row locks of the active sessions sel selects,
	// in ID order, until the transaction ends.
	LockSessions(ctx context.Context, sel Selector) error
	// LockSessionsAndOwn is LockSessions and LockSession(ownID) in one
	// statement, every row in ID order: it returns the session ownID as
	// stored, whatever its status, or ErrSessionNotFound if none.
	LockSessionsAndOwn(ctx context.Context, sel Selector, ownID string) (Session, error)

	// Session returns one session as stored if scope sees it, or
	// ErrSessionNotFound: a session outside the scope is not found in the
	// same way and with the same work as one that does not exist.
	Session(ctx context.Context, id string, scope Scope) (Session, error)
	// ListSessions returns the sessions that f selects, newest first.
	ListSessions(ctx context.Context, f ListFilter) ([]Session, error)
	// InsertSession stores a new active session and its audit row.
	InsertSession(ctx context.Context, s Session, h TokenHash, actor string) error
	// InsertSessionOnNewClient is InsertSession that also creates
	// s.ClientID, created at s.CreatedAt, in the same statement.
	InsertSessionOnNewClient(ctx context.Context, s Session, h TokenHash, actor string) error

	// ExpireSessions marks the active sessions that sel selects and that
	// are past a bound (see Expiry) as expired, with audit rows, and
	// returns how many it marked. limit > 0 bounds the batch and skips rows
	// other transactions hold (the sweeper); limit 0 takes them all.
	ExpireSessions(ctx context.Context, sel Selector, e Expiry, limit int) (int, error)
	// EndSessions ends every active session that sel selects, in one
	// statement with its audit rows, and returns them as ended (see
	// Ending.Expiry for those already past a bound).
	EndSessions(ctx context.Context, sel Selector, e Ending) ([]Session, error)
	// EvictSessions ends the user's active sessions beyond the keep most
	// recently active ones, and returns them as ended.
	EvictSessions(ctx context.Context, userID string, keep int, e Ending) ([]Session, error)
	// CommitAfterNext makes the next statement the transaction's last: its
	// COMMIT goes out with it, in the same round trip, and it is not
	// cancelled with ctx (a COMMIT never is). The transaction is committed
	// if the statement succeeds in the database, whatever happens after, so
	// fn must return right after it, and only statements whose answer
	// cannot fail to be read (the store's own fixed ones) may follow it.
	CommitAfterNext()
	// DeleteEndedBefore deletes at most limit sessions that ended before t,
	// and clients left with no session that were created before t.
	DeleteEndedBefore(ctx context.Context, t time.Time, limit int) (int, error)
}

// Selector picks active sessions by the fields that are set; it must set
// at least one, except for the sweeper's ExpireSessions, where an empty
// Selector means every session.
type Selector struct {
	SessionID string
	UserID    string
	ClientID  string
	// ExceptSessionID keeps one session out of the selection.
	ExceptSessionID string
}

// Scope is the sessions a caller may see: those of UserID or on
// ClientID. The zero Scope sees every session (a backend).
type Scope struct {
	UserID   string
	ClientID string
}

// Ending says what the sessions a statement ends become.
type Ending struct {
	// Status is the new status of every ended session not on OwnClientID.
	Status Status
	// OwnClientID, when set, is the acting session's client: sessions on it
	// become StatusEnded (signed out from their own client).
	OwnClientID string
	At          time.Time
	Actor       string
	// ActiveID, when set, is the session whose use this ending is: its
	// last_active_at becomes At if that is later, as authenticating it
	// would have recorded.
	ActiveID string
	// Expiry folds expiry into the same statement: a selected session
	// already past a bound at Expiry.Now is marked expired (at that bound,
	// by the system actor, as ExpireSessions would) instead of ended, and
	// is not returned. A zero Expiry finds no session past a bound.
	Expiry Expiry
}

// Expiry describes the bounds of an active session at Now: it expires at
// its expires_at, or IdleTimeout after its last_active_at when IdleTimeout
// is positive, whichever comes first; ended_at is that moment.
type Expiry struct {
	Now         time.Time
	IdleTimeout time.Duration
}

// ListFilter selects sessions of one user or one client for a list page.
type ListFilter struct {
	UserID   string
	ClientID string
	Status   Status // empty: every status
	BeforeID string // empty: from the newest
	Limit    int
}
