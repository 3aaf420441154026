package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/sessiond/sessiond/client/gen"
	"github.com/sessiond/sessiond/internal/sessions"
)

// ErrDuplicateCookie is the refusal of a request that carries one of
// sessiond's cookie names (the session cookie or an account cookie) twice.
// A browser holds one cookie per name, Domain and Path, so two of one name
// mean another host of the site, or another path, planted one, and nothing
// tells which is the browser's own: sessiond answers 401 to such a
// request, and the middleware and BrowserSession refuse it before asking.
var ErrDuplicateCookie = sessions.ErrDuplicateCookie

// ErrNoSessionCookie is BrowserSession's answer for a request without a
// session cookie.
var ErrNoSessionCookie = errors.New("client: the request carries no session cookie")

// RedirectPath returns raw when it is a path sessiond itself accepts as a
// relative redirect_url ("/", "/settings?tab=2"; never "//host", "/\host",
// "/.//host", a control character or a space), else fallback. Use it for
// an app's own "return to" parameter, so the app and sessiond follow one
// rule.
func RedirectPath(raw, fallback string) string {
	if sessions.ValidRedirectPath(raw) {
		return raw
	}
	return fallback
}

// ForwardCookies copies the Set-Cookie headers of a sign-in answer onto
// the browser's response, unchanged, so the browser holds exactly the
// cookies sessiond issued (name, Domain, Path, SameSite, Secure, HttpOnly,
// Max-Age) and a later sign-out clears them. Call it before writing the
// status.
func ForwardCookies(w http.ResponseWriter, res SignInResult) {
	for _, c := range res.SetCookies {
		w.Header().Add("Set-Cookie", c)
	}
}

type sessionKey struct{}

// SessionFrom returns the session the middleware put in ctx, and whether
// there is one.
func SessionFrom(ctx context.Context) (Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(Session)
	return s, ok
}

// Middleware authenticates each request through sessiond's GET /session
// before next runs: with its bearer token (Authorization: Bearer st_...)
// or, without an Authorization header, its session cookies (the cookie
// named WithCookieName and the account cookies that start with that name
// and "_"; no other cookie is sent to sessiond). next finds the session
// with SessionFrom.
//
// A request that is not signed in gets 401 problem+json: sessiond's answer
// as it is, Set-Cookie headers that clear dead cookies included, or the
// middleware's own when the request carries no credential at all or one
// of sessiond's cookie names twice (ErrDuplicateCookie; sessiond is not
// asked, and no cookie is changed). When
// sessiond cannot say (unreachable, a timeout, a 5xx) the answer is 503
// problem+json with Retry-After, never 401: an outage does not sign anyone
// out. Set-Cookie headers of a 200 (sessiond clearing a dead account
// cookie) are copied onto the response too.
func (c *Client) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		editor, err := c.credentialOf(r)
		if errors.Is(err, ErrDuplicateCookie) {
			writeOwnProblem(w, r, http.StatusUnauthorized, "unauthenticated", "The request carries a session cookie twice; sign in again.")
			return
		}
		if err != nil {
			writeOwnProblem(w, r, http.StatusUnauthorized, "unauthenticated", "Sign in first: the request has no session token or session cookie.")
			return
		}
		resp, err := c.raw.GetCurrentSession(r.Context(), editor, forwardRequestID(r))
		var sess Session
		err = decode(resp, err, http.StatusOK, &sess)
		var p *Problem
		switch {
		case err == nil:
			copySetCookies(w, resp.Header)
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)))
		case errors.As(err, &p) && p.Status < 500 && p.body != nil:
			// 401 (or 403: an API key presented by a browser) is
			// sessiond's own answer: pass it on.
			copySetCookies(w, p.Header)
			if v := p.Header.Get("WWW-Authenticate"); v != "" {
				w.Header().Set("WWW-Authenticate", v)
			}
			if v := p.Header.Get("X-Request-ID"); v != "" {
				w.Header().Set("X-Request-ID", v)
			}
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(p.Status)
			_, _ = w.Write(p.body)
		case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
			// The caller went away; nobody reads an answer.
		default:
			retryAfter := "2"
			if errors.As(err, &p) && p.Header.Get("Retry-After") != "" {
				retryAfter = p.Header.Get("Retry-After")
			}
			w.Header().Set("Retry-After", retryAfter)
			writeOwnProblem(w, r, http.StatusServiceUnavailable, "unavailable",
				"The session service does not answer; try again shortly. You are not signed out.")
		}
	})
}

// BrowserSession is "who am I" for a browser's request, as sessiond
// confirms it with the request's session cookies (GET /session): what a
// sign-in handler reads to add an account to the browser's client in
// multi mode (SignInParams.ClientID). A request carrying one of sessiond's
// cookie names twice is ErrDuplicateCookie and is not sent; one without a
// session cookie is ErrNoSessionCookie; a dead cookie is sessiond's
// *Problem (401).
func (c *Client) BrowserSession(ctx context.Context, r *http.Request) (Session, error) {
	cookies, err := c.cookiesOf(r)
	if err != nil {
		return Session{}, err
	}
	resp, err := c.raw.GetCurrentSession(ctx, cookies, forwardRequestID(r))
	var out Session
	return out, decode(resp, err, http.StatusOK, &out)
}

// credentialOf picks the request's credential as sessiond does: the
// Authorization header if there is one, else the session cookies.
func (c *Client) credentialOf(r *http.Request) (gen.RequestEditorFn, error) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, token, ok := strings.Cut(auth, " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return nil, ErrNoSessionCookie
		}
		return bearer(token), nil
	}
	return c.cookiesOf(r)
}

// cookiesOf reads sessiond's cookies from the request with sessiond's own
// reader (sessions.ReadBrowser: a duplicated name is ErrDuplicateCookie)
// and returns an editor that sends exactly those to sessiond, no other
// cookie of the app.
func (c *Client) cookiesOf(r *http.Request) (gen.RequestEditorFn, error) {
	b, err := sessions.ReadBrowser(c.cookieName, func(yield func(string, string) bool) {
		for _, ck := range r.Cookies() {
			if !yield(ck.Name, ck.Value) {
				return
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if b.Active == "" {
		return nil, ErrNoSessionCookie
	}
	return func(_ context.Context, req *http.Request) error {
		req.AddCookie(&http.Cookie{Name: c.cookieName, Value: b.Active})
		for id, token := range b.Accounts {
			req.AddCookie(&http.Cookie{Name: c.cookieName + "_" + id, Value: token})
		}
		return nil
	}, nil
}

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// forwardRequestID passes the caller's X-Request-ID on to sessiond, so one
// ID names the request in both logs.
func forwardRequestID(r *http.Request) gen.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		if id := r.Header.Get("X-Request-ID"); validRequestID.MatchString(id) {
			req.Header.Set("X-Request-ID", id)
		}
		return nil
	}
}

func copySetCookies(w http.ResponseWriter, h http.Header) {
	for _, v := range h.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", v)
	}
}

// writeOwnProblem answers with a problem the middleware made, in
// sessiond's format.
func writeOwnProblem(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	id := r.Header.Get("X-Request-ID")
	if !validRequestID.MatchString(id) {
		b := make([]byte, 12)
		_, _ = io.ReadFull(rand.Reader, b)
		id = hex.EncodeToString(b)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sessiond"`)
	}
	w.Header().Set("X-Request-ID", id)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Problem{
		Type: "urn:sessiond:error:" + code, Title: http.StatusText(status), Status: status,
		Code: code, Detail: detail, RequestID: id,
	})
}
