package sessions

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ActivityInterval is how often, at most, verifying a session writes its
// last_active_at: the hot path stays a read for the rest of the minute.
// With an inactivity timeout of two minutes or less, activity is written
// every half timeout instead (see activityInterval), so a session in use
// never times out.
const ActivityInterval = time.Minute

// Limits of the inputs of a sign-in.
const (
	MaxMetadataBytes  = 4 << 10
	MaxUserAgentBytes = 1024
)

// List page sizes.
const (
	DefaultListLimit = 20
	MaxListLimit     = 100
)

// Config holds the settings the rules depend on.
type Config struct {
	Mode               Mode
	MaxSessionsPerUser int           // 0: no limit
	Lifetime           time.Duration // from creation
	InactivityTimeout  time.Duration // from last activity; 0: off
	Retention          time.Duration // how long ended sessions are kept
	// AllowedRedirectOrigins are normalised by ParseOrigin.
	AllowedRedirectOrigins []string
	// Now is the clock; tests inject their own.
	Now func() time.Time
}

// Service carries out sign-in, verification, sign-out and listing with
// sessiond's rules. It is safe for concurrent use, across replicas too:
// everything that must be atomic happens in one Store transaction.
type Service struct {
	store Store
	cfg   Config
}

// NewService returns a service over store. A nil cfg.Now means time.Now.
func NewService(store Store, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeSingle
	}
	return &Service{store: store, cfg: cfg}
}

// now is the service clock at the precision Postgres keeps, so a session
// reads back exactly as it was written.
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// activityInterval is how often verifying a session writes its
// last_active_at: ActivityInterval, or half the inactivity timeout when
// that is shorter, so a session used more often than its timeout always
// has a recent enough last_active_at.
func (s *Service) activityInterval() time.Duration {
	if t := s.cfg.InactivityTimeout; t > 0 && t/2 < ActivityInterval {
		return t / 2
	}
	return ActivityInterval
}

func (s *Service) expiry(now time.Time) Expiry {
	return Expiry{Now: now, IdleTimeout: s.cfg.InactivityTimeout}
}

// SignInInput is what a backend says about a new session.
type SignInInput struct {
	UserID    string
	ClientID  string // empty: a new client
	UserAgent string
	IPAddress string
	Metadata  json.RawMessage // a JSON object; empty means {}
}

// SignInResult is a new session, its token (shown only now), and the
// sessions the sign-in replaced or evicted.
type SignInResult struct {
	Session Session
	Token   string
	Ended   []Ended
}

// SignIn creates a session. In one transaction, before the new session is
// visible: in single mode every active session on the client is replaced,
// in multi mode the same user's one; then, with a per-user limit N, the
// user's least recently active sessions beyond N-1 are evicted.
//
// Only backends may sign in (ErrForbidden); an unknown client is
// ErrClientNotFound.
func (s *Service) SignIn(ctx context.Context, c Caller, in SignInInput) (SignInResult, error) {
	if !c.IsBackend() {
		return SignInResult{}, ErrForbidden
	}
	in, err := validateSignIn(in)
	if err != nil {
		return SignInResult{}, err
	}
	token, err := newToken()
	if err != nil {
		return SignInResult{}, err
	}
	var sess Session
	var ended []Ended
	lock := func(tx Tx) error {
		// The client, the user, and the sessions this sign-in may replace
		// (so that an action one of them is taking commits before the
		// clock is read); on a new client only the user.
		l := Locks{UserID: in.UserID, NewUser: true}
		if in.ClientID != "" {
			l.ClientID, l.Sessions = in.ClientID, Selector{ClientID: in.ClientID}
		}
		if _, err := tx.Lock(ctx, l); err != nil {
			return err
		}
		// And those it may evict.
		if s.cfg.MaxSessionsPerUser > 0 {
			_, err := tx.Lock(ctx, Locks{Sessions: Selector{UserID: in.UserID}})
			return err
		}
		return nil
	}
	err = s.act(ctx, c, lock, func(tx Tx, now time.Time) error {
		sess = Session{
			ID:           newID(sessionIDPrefix, now),
			UserID:       in.UserID,
			ClientID:     in.ClientID,
			Status:       StatusActive,
			CreatedAt:    now,
			LastActiveAt: now,
			ExpiresAt:    now.Add(s.cfg.Lifetime),
			UserAgent:    in.UserAgent,
			IPAddress:    in.IPAddress,
			Metadata:     in.Metadata,
		}
		ended = ended[:0]
		if in.ClientID == "" {
			// A new client: no one else can know it yet, so it needs no
			// lock, and it has no sessions to replace. It is created with
			// its first session, below.
			sess.ClientID = newID(clientIDPrefix, now)
		}
		// Sessions already past a bound are expired, not replaced or
		// evicted (the replacing statement records them as expired), and
		// do not count against the limit.
		replace := Selector{ClientID: sess.ClientID}
		if s.cfg.Mode == ModeMulti {
			replace.UserID = in.UserID
		}
		ending := Ending{Status: StatusReplaced, At: now, Actor: c.actor()}
		if in.ClientID != "" {
			replacing := ending
			replacing.Expiry = s.expiry(now)
			replaced, err := tx.EndSessions(ctx, replace, replacing)
			if err != nil {
				return err
			}
			ended = appendEnded(ended, replaced)
		}
		if n := s.cfg.MaxSessionsPerUser; n > 0 {
			if _, err := tx.ExpireSessions(ctx, Selector{UserID: in.UserID}, s.expiry(now), 0); err != nil {
				return err
			}
			ending.Status = StatusEvicted
			evicted, err := tx.EvictSessions(ctx, in.UserID, n-1, ending)
			if err != nil {
				return err
			}
			ended = appendEnded(ended, evicted)
		}
		return tx.InsertSession(ctx, Insert{Session: sess, TokenHash: HashToken(token), Actor: c.actor(),
			NewClient: in.ClientID == "", Commit: true})
	})
	if err != nil {
		return SignInResult{}, err
	}
	return SignInResult{Session: sess, Token: token, Ended: ended}, nil
}

func appendEnded(dst []Ended, ss []Session) []Ended {
	for _, s := range ss {
		dst = append(dst, Ended{ID: s.ID, Status: s.Status})
	}
	return dst
}

func validateSignIn(in SignInInput) (SignInInput, error) {
	bad := invalidFields{}
	if !ValidUserID(in.UserID) {
		bad["user_id"] = "must be 1 to 255 bytes of printable UTF-8 without control characters"
	}
	if in.ClientID != "" && !ValidClientID(in.ClientID) {
		return in, &Error{Code: CodeInvalidID, Message: "client_id is not a client ID (client_ followed by 26 base32 characters).",
			Fields: map[string]string{"client_id": "malformed"}}
	}
	if len(in.UserAgent) > MaxUserAgentBytes || !utf8.ValidString(in.UserAgent) ||
		strings.ContainsFunc(in.UserAgent, unicode.IsControl) {
		bad["user_agent"] = "must be at most 1024 bytes of UTF-8 without control characters"
	}
	if in.IPAddress != "" {
		addr, err := netip.ParseAddr(in.IPAddress)
		if err != nil || addr.Zone() != "" {
			bad["ip_address"] = "must be an IPv4 or IPv6 address"
		} else {
			in.IPAddress = addr.Unmap().String()
		}
	}
	if len(in.Metadata) == 0 || string(in.Metadata) == "null" {
		in.Metadata = json.RawMessage(`{}`)
	}
	if len(in.Metadata) > MaxMetadataBytes {
		bad["metadata"] = "must be at most 4 KiB"
	} else if !isJSONObject(in.Metadata) {
		bad["metadata"] = "must be a JSON object"
	} else if problem := metadataProblem(in.Metadata); problem != "" {
		bad["metadata"] = problem
	}
	return in, bad.err()
}

func isJSONObject(b json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil
}

// Authenticate returns the active session that token belongs to, and
// counts the call as activity (written at most once per ActivityInterval).
// A malformed token is refused without touching the store; a malformed,
// unknown, ended or expired one is ErrUnauthenticated.
//
// There is no cache: a session ended a moment ago is refused now, on every
// replica.
func (s *Service) Authenticate(ctx context.Context, token string) (Session, error) {
	sess, err := s.liveSession(ctx, token)
	if err != nil {
		return Session{}, err
	}
	if now := s.now(); now.Sub(sess.LastActiveAt) >= s.activityInterval() {
		if err := s.store.TouchSession(ctx, sess.ID, now); err != nil {
			return Session{}, err
		}
		sess.LastActiveAt = now
	}
	return sess, nil
}

// liveSession is the active session of token, without counting the look-up
// as activity; ErrUnauthenticated when there is none.
func (s *Service) liveSession(ctx context.Context, token string) (Session, error) {
	if !WellFormedToken(token) {
		return Session{}, ErrUnauthenticated
	}
	sess, err := s.store.SessionByTokenHash(ctx, HashToken(token))
	if errors.Is(err, ErrSessionNotFound) {
		return Session{}, ErrUnauthenticated
	}
	if err != nil {
		return Session{}, err
	}
	if sess = sess.asOf(s.now(), s.cfg.InactivityTimeout); sess.Status != StatusActive {
		return Session{}, ErrUnauthenticated
	}
	return sess, nil
}

// EndResult is the answer of every ending call: the sessions it ended
// (already-ended ones are left as they were and not listed) and the
// accepted redirect URL.
type EndResult struct {
	Ended       []Session
	RedirectURL string
	// CallerEnded reports whether the caller's own session is among Ended.
	CallerEnded bool
}

func (s *Service) endResult(c Caller, ended []Session, redirect string) EndResult {
	r := EndResult{Ended: ended, RedirectURL: redirect}
	for _, e := range ended {
		if !c.IsBackend() && e.ID == c.Session.ID {
			r.CallerEnded = true
		}
	}
	return r
}

// errHolderOnly answers a backend that calls an endpoint about "my" session.
var errHolderOnly = &Error{Code: CodeForbidden, Message: "This endpoint is only for session holders: present a session token."}

// EndSession ends exactly one session. Backends may end any; a holder those
// of its own user or on its own client, and any other is
// ErrSessionNotFound, exactly as if it did not exist.
func (s *Service) EndSession(ctx context.Context, c Caller, id, redirectURL string) (EndResult, error) {
	if !ValidSessionID(id) {
		return EndResult{}, errInvalidSessionID
	}
	redirect, err := checkRedirectURL(redirectURL, s.cfg.AllowedRedirectOrigins)
	if err != nil {
		return EndResult{}, err
	}
	return s.endSession(ctx, c, id, redirect)
}

// endSession is EndSession once id and the redirect URL are checked.
func (s *Service) endSession(ctx context.Context, c Caller, id, redirect string) (EndResult, error) {
	return s.end(ctx, c, Selector{SessionID: id}, redirect, func(tx Tx) error {
		_, err := tx.Session(ctx, id, c.scope())
		return err
	})
}

// EndUserSessions ends every active session of the user on every client,
// except exceptID when it is set ("sign out other devices"). Backends may
// call it for any user, a holder for its own. An exceptID that is not one
// of the user's sessions is ErrSessionNotFound and nothing ends.
func (s *Service) EndUserSessions(ctx context.Context, c Caller, userID, exceptID, redirectURL string) (EndResult, error) {
	if err := s.checkUserAccess(c, userID); err != nil {
		return EndResult{}, err
	}
	if exceptID != "" && !ValidSessionID(exceptID) {
		return EndResult{}, errInvalidSessionID
	}
	redirect, err := checkRedirectURL(redirectURL, s.cfg.AllowedRedirectOrigins)
	if err != nil {
		return EndResult{}, err
	}
	return s.end(ctx, c, Selector{UserID: userID, ExceptSessionID: exceptID}, redirect, func(tx Tx) error {
		if _, err := tx.Lock(ctx, Locks{UserID: userID}); err != nil {
			return err
		}
		if exceptID == "" {
			return nil
		}
		// The session to keep must be one of the user's: an ID that names
		// none would keep nothing and widen "sign out other devices" into
		// "sign out everywhere".
		_, err := tx.Session(ctx, exceptID, Scope{UserID: userID})
		return err
	})
}

// EndClientSessions ends every active session on the client ("sign out of
// all accounts" on one device). Backends may call it for any client, a
// holder for its own; any other client is ErrClientNotFound.
func (s *Service) EndClientSessions(ctx context.Context, c Caller, clientID, redirectURL string) (EndResult, error) {
	if err := checkClientID(clientID); err != nil {
		return EndResult{}, err
	}
	if !c.IsBackend() && c.Session.ClientID != clientID {
		return EndResult{}, ErrClientNotFound
	}
	redirect, err := checkRedirectURL(redirectURL, s.cfg.AllowedRedirectOrigins)
	if err != nil {
		return EndResult{}, err
	}
	// The client's lock is also the existence check: ErrClientNotFound if
	// none.
	return s.end(ctx, c, Selector{ClientID: clientID}, redirect, func(tx Tx) error {
		_, err := tx.Lock(ctx, Locks{ClientID: clientID})
		return err
	})
}

// end is every ending call once its caller has checked the redirect URL
// (redirect is the accepted one; nothing ends on a bad one): in one
// transaction (see act) check access and take the scope's lock, record
// what has expired, and end the selected active sessions with the
// caller's statuses.
func (s *Service) end(ctx context.Context, c Caller, sel Selector, redirect string, lock func(Tx) error) (EndResult, error) {
	var ended []Session
	err := s.actOn(ctx, c, lock, &sel, func(tx Tx, now time.Time) error {
		// Sessions already past a bound are recorded as expired by the
		// same statement, not ended.
		var err error
		ended, err = tx.EndSessions(ctx, sel, c.ending(Ending{At: now, Expiry: s.expiry(now), Commit: true}))
		return err
	})
	if err != nil {
		return EndResult{}, err
	}
	return s.endResult(c, ended, redirect), nil
}

// act runs fn in one transaction on behalf of c. First lock, if set,
// checks access and takes the locks of what the action touches — the
// client row, then the user row, in the order sign-in takes them, so an
// action on a device or a user and a sign-in there are serialised (and,
// for a sign-in, the rows it may evict). Then, for a session holder, the
// caller's own session is read again and row-locked: an action whose
// session was ended while the request waited is ErrUnauthenticated, and
// its session cannot end until the action commits. (An exclusive row lock,
// not a share lock: holders of share locks that then update the row
// deadlock, and a stream of overlapping share locks would starve a
// revocation.) Only then is the clock read, so the timestamps of actions
// that wait on one another follow their commit order.
func (s *Service) act(ctx context.Context, c Caller, lock func(Tx) error, fn func(tx Tx, now time.Time) error) error {
	return s.actOn(ctx, c, lock, nil, fn)
}

// actOn is act for an action that changes the sessions changes selects
// (nil: none beyond what lock covers): their row locks are taken after
// lock's, and for a holder in the same statement as its own row's, every
// row in ID order.
func (s *Service) actOn(ctx context.Context, c Caller, lock func(Tx) error, changes *Selector, fn func(tx Tx, now time.Time) error) error {
	return s.store.InTx(ctx, func(tx Tx) error {
		if lock != nil {
			if err := lock(tx); err != nil {
				return err
			}
		}
		if c.IsBackend() {
			if changes != nil {
				if _, err := tx.Lock(ctx, Locks{Sessions: *changes}); err != nil {
					return err
				}
			}
			return fn(tx, s.now())
		}
		l := Locks{OwnID: c.Session.ID}
		if changes != nil && *changes != (Selector{SessionID: c.Session.ID}) {
			l.Sessions = *changes
		}
		_, now, err := s.stillLive(tx.Lock(ctx, l))
		if err != nil {
			return err
		}
		return fn(tx, now)
	})
}

// stillLive takes what locking the holder's own session in the
// transaction returned, and reads the clock — after the lock, so that the
// action's times follow commit order. A session that is gone, ended or
// past a bound by then is ErrUnauthenticated.
func (s *Service) stillLive(self Session, err error) (Session, time.Time, error) {
	if errors.Is(err, ErrSessionNotFound) {
		return Session{}, time.Time{}, ErrUnauthenticated
	}
	if err != nil {
		return Session{}, time.Time{}, err
	}
	now := s.now()
	if self.asOf(now, s.cfg.InactivityTimeout).Status != StatusActive {
		return Session{}, time.Time{}, ErrUnauthenticated
	}
	return self, now, nil
}

var errInvalidSessionID = &Error{Code: CodeInvalidID, Message: "Not a session ID (sess_ followed by 26 base32 characters)."}

func checkClientID(id string) error {
	if !ValidClientID(id) {
		return &Error{Code: CodeInvalidID, Message: "Not a client ID (client_ followed by 26 base32 characters)."}
	}
	return nil
}

// checkUserAccess lets backends act on any user and holders on their own.
// For any other user a holder gets forbidden: the answer is the same
// whether or not the user has sessions, so it reveals nothing.
func (s *Service) checkUserAccess(c Caller, userID string) error {
	if !ValidUserID(userID) {
		return &Error{Code: CodeInvalidID, Message: "Not a user ID (1 to 255 bytes of printable UTF-8)."}
	}
	if !c.IsBackend() && c.Session.UserID != userID {
		return &Error{Code: CodeForbidden, Message: "A session holder may only act on its own user's sessions."}
	}
	return nil
}

// checkClientAccess lets backends act on any existing client and holders
// on their own; any other client is ErrClientNotFound.
func (s *Service) checkClientAccess(ctx context.Context, tx Tx, c Caller, clientID string) error {
	if !c.IsBackend() {
		if c.Session.ClientID != clientID {
			return ErrClientNotFound
		}
		return nil
	}
	ok, err := tx.ClientExists(ctx, clientID)
	if err != nil {
		return err
	}
	if !ok {
		return ErrClientNotFound
	}
	return nil
}

// GetSession returns one session as of now. Backends may read any; a
// holder those of its own user or on its own client.
func (s *Service) GetSession(ctx context.Context, c Caller, id string) (Session, error) {
	if !ValidSessionID(id) {
		return Session{}, errInvalidSessionID
	}
	var sess Session
	err := s.act(ctx, c, nil, func(tx Tx, now time.Time) error {
		var err error
		sess, err = tx.Session(ctx, id, c.scope())
		sess = sess.asOf(now, s.cfg.InactivityTimeout)
		return err
	})
	if err != nil {
		return Session{}, err
	}
	return sess, nil
}

// ListQuery is a request for one page of a list.
type ListQuery struct {
	Status string // a status, "all", or empty for active
	Limit  int    // 0: DefaultListLimit
	Cursor string // empty: the first page
}

// Page is one page of a list, newest first. NextCursor is empty on the
// last page.
type Page struct {
	Sessions   []Session
	NextCursor string
}

// ListUserSessions lists the user's sessions. Backends may list any user,
// a holder its own.
func (s *Service) ListUserSessions(ctx context.Context, c Caller, userID string, q ListQuery) (Page, error) {
	if err := s.checkUserAccess(c, userID); err != nil {
		return Page{}, err
	}
	return s.list(ctx, c, ListFilter{UserID: userID}, q, nil)
}

// ListClientSessions lists the sessions on a client (the account
// switcher). Backends may list any client, a holder its own.
func (s *Service) ListClientSessions(ctx context.Context, c Caller, clientID string, q ListQuery) (Page, error) {
	if err := checkClientID(clientID); err != nil {
		return Page{}, err
	}
	return s.list(ctx, c, ListFilter{ClientID: clientID}, q, func(tx Tx) error {
		return s.checkClientAccess(ctx, tx, c, clientID)
	})
}

func (s *Service) list(ctx context.Context, c Caller, f ListFilter, q ListQuery, check func(Tx) error) (Page, error) {
	if err := parseListQuery(&f, q); err != nil {
		return Page{}, err
	}
	limit := f.Limit
	f.Limit++ // one more tells whether there is a next page
	var page []Session
	err := s.act(ctx, c, check, func(tx Tx, now time.Time) error {
		// Record expiry first, so the status filter sees it.
		if _, err := tx.ExpireSessions(ctx, Selector{UserID: f.UserID, ClientID: f.ClientID}, s.expiry(now), 0); err != nil {
			return err
		}
		var err error
		page, err = tx.ListSessions(ctx, f)
		return err
	})
	if err != nil {
		return Page{}, err
	}
	var next string
	if len(page) > limit {
		page = page[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(page[limit-1].ID))
	}
	return Page{Sessions: page, NextCursor: next}, nil
}

func parseListQuery(f *ListFilter, q ListQuery) error {
	bad := invalidFields{}
	switch q.Status {
	case "":
		f.Status = StatusActive
	case "all":
		f.Status = ""
	default:
		st, ok := ParseStatus(q.Status)
		if !ok {
			bad["status"] = "must be one of active, ended, revoked, replaced, evicted, expired, all"
		}
		f.Status = st
	}
	switch {
	case q.Limit == 0:
		f.Limit = DefaultListLimit
	case q.Limit < 1 || q.Limit > MaxListLimit:
		bad["limit"] = "must be from 1 to 100"
	default:
		f.Limit = q.Limit
	}
	if q.Cursor != "" {
		id, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || !ValidSessionID(string(id)) {
			bad["cursor"] = "is not a cursor this service returned"
		}
		f.BeforeID = string(id)
	}
	return bad.err()
}

// SweepResult counts what one sweep did.
type SweepResult struct {
	Expired int
	Deleted int
}

// sweepBatch bounds each sweeper statement, so it never holds many locks.
const sweepBatch = 1000

// Sweep records the status of sessions past a bound as expired and
// deletes sessions that ended more than the retention ago, in batches.
func (s *Service) Sweep(ctx context.Context) (SweepResult, error) {
	var r SweepResult
	now := s.now()
	for {
		var n int
		err := s.store.InTx(ctx, func(tx Tx) error {
			var err error
			n, err = tx.ExpireSessions(ctx, Selector{}, s.expiry(now), sweepBatch)
			return err
		})
		if err != nil {
			return r, err
		}
		if r.Expired += n; n < sweepBatch {
			break
		}
	}
	for {
		var n int
		err := s.store.InTx(ctx, func(tx Tx) error {
			var err error
			n, err = tx.DeleteEndedBefore(ctx, now.Add(-s.cfg.Retention), sweepBatch)
			return err
		})
		if err != nil {
			return r, err
		}
		if r.Deleted += n; n < sweepBatch {
			break
		}
	}
	return r, nil
}

// CurrentSession is "who am I": the holder's own session, already
// verified by Authenticate. A backend has no session of its own.
func (s *Service) CurrentSession(c Caller) (Session, error) {
	if c.IsBackend() {
		return Session{}, errHolderOnly
	}
	return *c.Session, nil
}
