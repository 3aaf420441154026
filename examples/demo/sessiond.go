package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/sessiond/sessiond/client"
)

// sessiond is what the demo backend asks of sessiond, through the Go
// client: a session for a browser, on that browser's client when it
// already has one (so a second account joins the first in multi mode).
type sessiond struct {
	c *client.Client
}

func newSessiond(base, apiKey string) (*sessiond, error) {
	c, err := client.New(base, apiKey)
	if err != nil {
		return nil, err
	}
	return &sessiond{c: c}, nil
}

// signIn creates the session and forwards sessiond's Set-Cookie headers to
// the browser unchanged: the backend never spells a cookie attribute.
//
// A second account joins the browser's client only when sessiond has
// confirmed the browser's session cookie (client.BrowserSession, which
// sends the browser's cookies as they are); a request that carries a
// session cookie twice (one planted by another host of the site) is
// client.ErrDuplicateCookie and signs nobody in. Without a confirmed
// session the sign-in starts a new client.
func (s *sessiond) signIn(ctx context.Context, w http.ResponseWriter, r *http.Request, user string) error {
	p := client.SignInParams{UserID: user, UserAgent: r.UserAgent()}
	me, err := s.c.BrowserSession(ctx, r)
	if errors.Is(err, client.ErrDuplicateCookie) {
		return err
	}
	if err == nil {
		p.ClientID = me.ClientID
	}
	res, err := s.c.SignIn(ctx, p)
	if err != nil {
		return err
	}
	client.ForwardCookies(w, res)
	return nil
}

// me is a handler behind the client's middleware: what the backend itself
// knows of the caller (401 when signed out, 503 when sessiond cannot say).
func (s *sessiond) me() http.Handler {
	return s.c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		me, _ := client.SessionFrom(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"user_id": me.UserID, "session_id": me.ID})
	}))
}
