package sessions

import (
	"cmp"
	"context"
	"errors"
	"iter"
	"slices"
	"strings"
	"time"
)

// Browser is what a request's cookies say about the accounts a browser
// holds: the token in the active cookie and, in multi mode, the account
// cookies (one per signed-in account, named after its session ID).
type Browser struct {
	// Active is the token of the active cookie; empty when there is none.
	Active string
	// Accounts maps the session ID of each account cookie to its token.
	Accounts map[string]string
}

// ErrDuplicateCookie is ReadBrowser's refusal of a request that carries
// one of sessiond's cookie names twice. A browser holds one cookie per
// name, Domain and Path, so two cookies of one name mean that another
// host of the site (a sibling setting Domain=<parent>) or another path
// planted one of them, and nothing tells which is the browser's own: the
// request is refused (401) and no cookie is changed or session ended on
// its word.
var ErrDuplicateCookie = errors.New("sessions: a sessiond cookie name appears twice in the request")

// ReadBrowser reads sessiond's cookies from a request's cookies, given as
// name/value pairs in the order the request carried them: the active
// cookie (name) and the account cookies (name + "_" + a well-formed
// session ID). Other cookies are ignored. A sessiond cookie name that
// appears twice is ErrDuplicateCookie. This is the one reader of
// sessiond's cookies: sessiond and its Go client both call it.
func ReadBrowser(name string, cookies iter.Seq2[string, string]) (Browser, error) {
	var b Browser
	hasActive := false
	prefix := name + "_"
	for n, v := range cookies {
		switch {
		case n == name:
			if hasActive {
				return Browser{}, ErrDuplicateCookie
			}
			hasActive = true
			b.Active = v
		case strings.HasPrefix(n, prefix) && ValidSessionID(n[len(prefix):]):
			id := n[len(prefix):]
			if _, seen := b.Accounts[id]; seen {
				return Browser{}, ErrDuplicateCookie
			}
			if b.Accounts == nil {
				b.Accounts = map[string]string{}
			}
			b.Accounts[id] = v
		}
	}
	return b, nil
}

// MaxAccountCookies bounds how many account cookies one answer looks up
// when it picks the next active account; the rest are left alone.
const MaxAccountCookies = 32

// IssuedCookie is a cookie to set: a session's token, kept by the browser
// for MaxAge (up to the session's expires_at).
type IssuedCookie struct {
	SessionID string
	Token     string
	MaxAge    time.Duration
}

// CookieChanges is what an answer does to the browser's cookies, as plain
// data: the transport turns it into Set-Cookie headers with the configured
// attributes. A cookie both cleared and set ends up set.
type CookieChanges struct {
	SetActive     *IssuedCookie
	ClearActive   bool
	SetAccounts   []IssuedCookie
	ClearAccounts []string // session IDs whose account cookies are cleared
}

func (ch *CookieChanges) clearAccount(id string) {
	if !slices.Contains(ch.ClearAccounts, id) {
		ch.ClearAccounts = append(ch.ClearAccounts, id)
	}
}

func (s *Service) issued(sess Session, token string) IssuedCookie {
	return IssuedCookie{SessionID: sess.ID, Token: token, MaxAge: sess.ExpiresAt.Sub(s.now())}
}

// SignInCookies is what a browser needs after a sign-in: the active
// cookie with the new token and, in multi mode, the new account's cookie,
// with the account cookies of the sessions the sign-in replaced on that
// client cleared.
func (s *Service) SignInCookies(r SignInResult) CookieChanges {
	issued := s.issued(r.Session, r.Token)
	ch := CookieChanges{SetActive: &issued}
	if s.cfg.Mode == ModeMulti {
		ch.SetAccounts = []IssuedCookie{issued}
		for _, e := range r.Ended {
			if e.Status == StatusReplaced {
				ch.clearAccount(e.ID)
			}
		}
	}
	return ch
}

// SwitchActive is POST /session/active: it makes the account whose cookie
// the browser carries for sessionID the active one. It is allowed when the
// request carries that account cookie and its session is active; otherwise
// it is ErrSessionNotFound, and a dead account cookie is cleared.
func (s *Service) SwitchActive(ctx context.Context, b Browser, sessionID string) (Session, CookieChanges, error) {
	if sessionID == "" {
		return Session{}, CookieChanges{}, invalidFields{"session_id": "is required"}.err()
	}
	if !ValidSessionID(sessionID) {
		return Session{}, CookieChanges{}, errInvalidSessionID
	}
	token, ok := b.Accounts[sessionID]
	if !ok {
		return Session{}, CookieChanges{}, ErrSessionNotFound
	}
	sess, err := s.Authenticate(ctx, token)
	if err == nil && sess.ID != sessionID {
		err = ErrUnauthenticated // another session's token in this cookie
	}
	if errors.Is(err, ErrUnauthenticated) {
		var ch CookieChanges
		ch.clearAccount(sessionID)
		if b.Active == token {
			ch.ClearActive = true
		}
		return Session{}, ch, ErrSessionNotFound
	}
	if err != nil {
		return Session{}, CookieChanges{}, err
	}
	// Only to an account of this browser's client: an account cookie that
	// a sibling host planted for the parent domain must not switch the
	// browser into someone else's account.
	if b.Active != "" {
		if active, err := s.liveSession(ctx, b.Active); err == nil && active.ClientID != sess.ClientID {
			return Session{}, CookieChanges{}, ErrSessionNotFound
		}
	}
	issued := s.issued(sess, token)
	return sess, CookieChanges{SetActive: &issued}, nil
}

// CookiesAfterAuthFailure is what an answer refusing a browser's active
// cookie (401) does: it clears the active cookie and the account cookie
// holding the same token, so the browser never keeps sending a dead token.
// It never makes another account active: the account cookies a refused
// request carries may have been planted by another host of the site, and
// with the active cookie dead nothing says which client the browser is
// on. The page offers the accounts instead (POST /session/active checks
// the one the user picks); only an explicit sign-out of the active
// account promotes another (CookiesAfterEnd).
func (s *Service) CookiesAfterAuthFailure(b Browser) CookieChanges {
	var ch CookieChanges
	if b.Active == "" {
		return ch
	}
	ch.ClearActive = true
	for id, token := range b.Accounts {
		if token == b.Active {
			ch.clearAccount(id)
		}
	}
	slices.Sort(ch.ClearAccounts)
	return ch
}

// SignOutRequest is a DELETE /session: signOut() as the client libraries
// call it, with the credential the request presented.
type SignOutRequest struct {
	// Token is the session token presented (a bearer token, or the
	// browser's active cookie); empty when there was none.
	Token string
	// Backend is set, instead of Token, when the request presented a valid
	// API key (the transport holds the keys): a backend holds no session
	// to sign out of and is refused with forbidden.
	Backend bool
	// Browser is the cookies the request carried (nil for a bearer
	// credential, whose answer sets no cookie).
	Browser *Browser
	// SessionID names the one session to end; NamesSession reports whether
	// the request named one at all. A named but empty ID is invalid_id,
	// never "sign out of all".
	SessionID    string
	NamesSession bool
	RedirectURL  string
}

// SignedOut is what SignOut did: the sessions it ended, the holder it
// authenticated (for the transport to record as it does after
// Authenticate) and what happens to the browser's cookies.
type SignedOut struct {
	EndResult
	Caller  Caller
	Cookies CookieChanges
}

// SignOut is DELETE /session, every form of it. Without SessionID it ends
// the holder's session (single mode) or every session on its client
// (multi mode: "sign out of all accounts", which also clears the active
// cookie and every account cookie the browser carried); with SessionID it
// ends exactly that session, if it is on the holder's client or of its
// user (otherwise ErrSessionNotFound), and the cookies follow
// CookiesAfterEnd.
//
// Its answers, in order: an unknown, ended, expired or malformed token is
// ErrUnauthenticated; a backend is forbidden; a bad session ID invalid_id;
// a bad redirect URL invalid_redirect_url. On any of them nothing ends.
func (s *Service) SignOut(ctx context.Context, r SignOutRequest) (SignedOut, error) {
	if r.Backend {
		if r.NamesSession && r.SessionID == "" {
			return SignedOut{}, EmptyIDParameter("session_id")
		}
		return SignedOut{}, errHolderOnly
	}
	redirect, err := s.signOutRedirect(ctx, r)
	if err != nil {
		return SignedOut{}, err
	}
	if !r.NamesSession {
		return s.signOutByToken(ctx, r.Token, r.Browser, redirect)
	}
	self, err := s.Authenticate(ctx, r.Token)
	if err != nil {
		return SignedOut{}, err
	}
	if err := checkNamedSession(r.SessionID); err != nil {
		return SignedOut{}, err
	}
	c := Holder(self)
	res, err := s.endSession(ctx, c, r.SessionID, redirect)
	if err != nil {
		return SignedOut{}, err
	}
	return SignedOut{EndResult: res, Caller: c, Cookies: s.CookiesAfterEnd(ctx, c, r.Browser, res)}, nil
}

// signOutRedirect is the one check of a sign-out's redirect URL, before
// anything is locked or ended. A bad one still answers after the faults
// that come before it on every route: a refused credential (found with a
// look-up that writes nothing; only this failing request pays for it),
// then a bad session ID.
func (s *Service) signOutRedirect(ctx context.Context, r SignOutRequest) (string, error) {
	redirect, err := checkRedirectURL(r.RedirectURL, s.cfg.AllowedRedirectOrigins)
	if err == nil {
		return redirect, nil
	}
	if _, authErr := s.liveSession(ctx, r.Token); authErr != nil {
		return "", authErr
	}
	if r.NamesSession {
		if idErr := checkNamedSession(r.SessionID); idErr != nil {
			return "", idErr
		}
	}
	return "", err
}

// checkNamedSession checks the session_id of a sign-out.
func checkNamedSession(id string) error {
	if id == "" {
		return EmptyIDParameter("session_id")
	}
	if !ValidSessionID(id) {
		return errInvalidSessionID
	}
	return nil
}

// signOutByToken is the sign-out without a session ID for the holder of
// token, who has not been authenticated yet: it ends the token's session
// (single mode) or every session on its client (multi mode) in one
// transaction that also authenticates. Its first statement finds and
// row-locks the token's active session — in multi mode after the
// client's row and with every other session on the client, in sign-in's
// lock order — so the sign-out takes two round trips to the database
// (that one with its BEGIN, then the ending with its COMMIT) instead of a
// lookup before the transaction and the locks one by one. What it decides
// is what Authenticate followed by ending the session decide: an unknown,
// ended, expired or malformed token is ErrUnauthenticated and nothing ends.
// redirect is the accepted redirect URL (signOutRedirect).
func (s *Service) signOutByToken(ctx context.Context, token string, b *Browser, redirect string) (SignedOut, error) {
	if !WellFormedToken(token) {
		return SignedOut{}, ErrUnauthenticated
	}
	multi := s.cfg.Mode == ModeMulti
	var c Caller
	var ended []Session
	err := s.store.InTx(ctx, func(tx Tx) error {
		self, now, err := s.stillLive(tx.Lock(ctx, Locks{OwnToken: HashToken(token), OwnClient: multi}))
		if err != nil {
			return err
		}
		c = Holder(self)
		ending := c.ending(Ending{At: now, Expiry: s.expiry(now)})
		if now.Sub(self.LastActiveAt) >= s.activityInterval() {
			// The activity Authenticate would have written first.
			ending.ActiveID = self.ID
		}
		sel := Selector{SessionID: self.ID}
		if multi {
			sel = Selector{ClientID: self.ClientID}
		}
		ending.Commit = true
		ended, err = tx.EndSessions(ctx, sel, ending)
		return err
	})
	if err != nil {
		return SignedOut{}, err
	}
	out := SignedOut{EndResult: s.endResult(c, ended, redirect), Caller: c}
	if multi {
		out.Cookies = signedOutOfAll(b)
	} else {
		out.Cookies = s.CookiesAfterEnd(ctx, c, b, out.EndResult)
	}
	return out, nil
}

// signedOutOfAll clears the active cookie and every account cookie b
// carried.
func signedOutOfAll(b *Browser) CookieChanges {
	if b == nil {
		return CookieChanges{}
	}
	ch := CookieChanges{ClearActive: true}
	for id := range b.Accounts {
		ch.clearAccount(id)
	}
	slices.Sort(ch.ClearAccounts)
	return ch
}

// CookiesAfterEnd is what an ending answer does to the cookies of a caller
// that came with them (b; nil: nothing): every ended account's cookie is
// cleared; when the caller's own (active) session ended, another live
// account the browser holds becomes active (multi mode), or the active
// cookie is cleared.
func (s *Service) CookiesAfterEnd(ctx context.Context, c Caller, b *Browser, res EndResult) CookieChanges {
	var ch CookieChanges
	if b == nil || c.IsBackend() {
		return ch
	}
	exclude := map[string]bool{c.Session.ID: true}
	for _, e := range res.Ended {
		exclude[e.ID] = true
		if _, ok := b.Accounts[e.ID]; ok {
			ch.clearAccount(e.ID)
		}
	}
	if !res.CallerEnded {
		return ch
	}
	ch.ClearActive = true
	if s.cfg.Mode == ModeMulti {
		s.promote(ctx, *b, exclude, c.Session.ClientID, &ch)
	}
	return ch
}

// promote makes the most recently active live account of the browser,
// other than those in exclude, the active one, and clears the cookies of
// the dead accounts it finds. Only an account on clientID (the client of
// the active account that just signed out) is promoted: accounts a browser
// signed in share its client, and one elsewhere was planted. When the
// store fails it leaves the active cookie as ch says (cleared): the
// browser can still switch later.
func (s *Service) promote(ctx context.Context, b Browser, exclude map[string]bool, clientID string, ch *CookieChanges) {
	ids := make([]string, 0, len(b.Accounts))
	for id := range b.Accounts {
		if !exclude[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	slices.Reverse(ids) // newest sign-in first
	if len(ids) > MaxAccountCookies {
		ids = ids[:MaxAccountCookies]
	}
	var best *Session
	var bestToken string
	for _, id := range ids {
		token := b.Accounts[id]
		sess, err := s.liveSession(ctx, token)
		if errors.Is(err, ErrUnauthenticated) || err == nil && sess.ID != id {
			ch.clearAccount(id)
			continue
		}
		if err != nil {
			return
		}
		if sess.ClientID != clientID {
			continue
		}
		if best == nil || cmp.Compare(sess.LastActiveAt.UnixMicro(), best.LastActiveAt.UnixMicro()) > 0 {
			best, bestToken = &sess, token
		}
	}
	if best != nil {
		issued := s.issued(*best, bestToken)
		ch.SetActive = &issued
		ch.ClearActive = false
	}
}
