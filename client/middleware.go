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
)

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
// middleware's own when the request carries no credential at all. When
// sessiond cannot say (unreachable, a timeout, a 5xx) the answer is 503
// problem+json with Retry-After, never 401: an outage does not sign anyone
// out. Set-Cookie headers of a 200 (sessiond clearing a dead account
// cookie) are copied onto the response too.
func (c *Client) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		editor, ok := c.credentialOf(r)
		if !ok {
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

// credentialOf picks the request's credential as sessiond does: the
// Authorization header if there is one, else the session cookies.
func (c *Client) credentialOf(r *http.Request) (gen.RequestEditorFn, bool) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, token, ok := strings.Cut(auth, " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return nil, false
		}
		return bearer(token), true
	}
	var cookies []*http.Cookie
	hasActive := false
	for _, ck := range r.Cookies() {
		if ck.Name == c.cookieName || strings.HasPrefix(ck.Name, c.cookieName+"_") {
			cookies = append(cookies, ck)
			hasActive = hasActive || (ck.Name == c.cookieName && ck.Value != "")
		}
	}
	if !hasActive {
		return nil, false
	}
	return func(_ context.Context, req *http.Request) error {
		for _, ck := range cookies {
			req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		}
		return nil
	}, true
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
