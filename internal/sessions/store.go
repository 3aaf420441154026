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

// Tx is what the service does inside one transaction. It says what the
// transaction locks, reads and writes; the store decides how, and in how
// many statements (several locks of one Lock call may go out as one).
type Tx interface {
	// Lock takes the locks l names until the transaction ends, in the one
	// order every transaction keeps — the client's row, the user's lock
	// row, then session rows in ID order — so transactions that lock the
	// same things queue instead of deadlocking. When l names the caller's
	// own session (OwnID or OwnToken) it returns that session as stored;
	// otherwise the zero Session. Errors: ErrClientNotFound for
	// l.ClientID, ErrSessionNotFound for the own session, as Locks says.
	Lock(ctx context.Context, l Locks) (Session, error)
	// ClientExists reports whether the client exists.
	ClientExists(ctx context.Context, id string) (bool, error)

	// Session returns one session as stored if scope sees it, or
	// ErrSessionNotFound: a session outside the scope is not found in the
	// same way and with the same work as one that does not exist.
	Session(ctx context.Context, id string, scope Scope) (Session, error)
	// ListSessions returns the sessions that f selects, newest first.
	ListSessions(ctx context.Context, f ListFilter) ([]Session, error)
	// InsertSession stores a new active session and its audit row (and,
	// with in.NewClient, its client) in one statement.
	InsertSession(ctx context.Context, in Insert) error

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
	// DeleteEndedBefore deletes at most limit sessions that ended before t,
	// and clients left with no session that were created before t.
	DeleteEndedBefore(ctx context.Context, t time.Time, limit int) (int, error)
}

// Locks names what a transaction locks before it acts; the zero value of
// a field locks nothing. Tx.Lock takes them in the order it gives.
type Locks struct {
	// ClientID is a client whose row is locked, serialising sign-ins on
	// it; ErrClientNotFound, with nothing else locked, if it does not
	// exist.
	ClientID string
	// UserID is a user whose lock row is locked, serialising sign-ins of
	// the user. Without NewUser a user with no lock row is not locked: it
	// has never signed in, and a first sign-in that makes the row
	// concurrently is simply ordered after this transaction.
	UserID string
	// NewUser makes UserID's lock row if there is none (a sign-in).
	NewUser bool
	// Sessions selects active sessions whose rows are locked; the zero
	// Selector selects none here.
	Sessions Selector
	// OwnID is the caller's own session: its row is locked and Lock
	// returns it as stored, whatever its status, or ErrSessionNotFound
	// if there is none.
	OwnID string
	// OwnToken finds the caller's own session by its token's hash
	// instead: Lock returns it while it is active and ErrSessionNotFound
	// otherwise (also when it ended while its lock was awaited). It
	// combines with OwnClient only.
	OwnToken TokenHash
	// OwnClient, with OwnToken, also locks the own session's client row,
	// first, and then every active session on that client, in sign-in's
	// order.
	OwnClient bool
}

// Insert is a new session InsertSession stores.
type Insert struct {
	Session   Session
	TokenHash TokenHash
	Actor     string
	// NewClient creates Session.ClientID too, created at
	// Session.CreatedAt.
	NewClient bool
	// Commit makes this write the transaction's last statement (see
	// Ending.Commit).
	Commit bool
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
	// Commit makes this write the transaction's last statement: its
	// COMMIT goes out with it, in the same round trip, and it is not
	// cancelled with ctx (a COMMIT never is). The transaction is committed
	// if the statement succeeds in the database, whatever happens after;
	// the store refuses any statement after it.
	Commit bool
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
