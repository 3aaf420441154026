// Package client is the Go client of sessiond for backends: sign a browser
// in and forward its cookies, protect handlers with a middleware that
// asks sessiond who the caller is, and end sessions.
//
// The HTTP calls and the types come from the client generated from
// openapi.yaml by oapi-codegen (package gen, never edited by hand); this
// package is the small hand-written layer on top: API-key and token
// authentication, Set-Cookie forwarding, the middleware, and errors as
// *Problem.
//
//	sd, err := client.New("http://sessiond:8080", os.Getenv("SESSIOND_API_KEY"))
//	res, err := sd.SignIn(ctx, client.SignInParams{UserID: "user_123"})
//	client.ForwardCookies(w, res)
//
//	http.Handle("/me", sd.Middleware(me)) // me reads client.SessionFrom(r.Context())
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/sessiond/sessiond/client/gen"
)

// Session is a session object of sessiond.
type Session = gen.Session

// SessionStatus is a session's status: active, ended, revoked, replaced,
// evicted or expired.
type SessionStatus = gen.SessionStatus

// EndedBySignIn is a session a sign-in replaced or evicted.
type EndedBySignIn = gen.SignInEndedSession

// Client calls one sessiond. It is safe for concurrent use.
type Client struct {
	raw        *gen.Client
	apiKey     string
	cookieName string
}

// Option configures a Client.
type Option func(*options)

type options struct {
	httpClient *http.Client
	cookieName string
}

// WithHTTPClient makes the client send its requests with hc instead of a
// client with a 10 s timeout.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.httpClient = hc } }

// WithCookieName sets the name of the session cookie the middleware reads
// (SESSIOND_COOKIE_NAME of the server); the default is __session.
func WithCookieName(name string) Option { return func(o *options) { o.cookieName = name } }

// New returns a client of the sessiond at baseURL ("http://sessiond:8080")
// that calls backend endpoints with apiKey (sk_...). The key is sent only
// to baseURL and never appears in an error.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	o := options{httpClient: &http.Client{Timeout: 10 * time.Second}, cookieName: "__session"}
	for _, opt := range opts {
		opt(&o)
	}
	if baseURL == "" {
		return nil, errors.New("client: the base URL of sessiond is empty")
	}
	if o.cookieName == "" {
		return nil, errors.New("client: the cookie name is empty")
	}
	raw, err := gen.NewClient(baseURL, gen.WithHTTPClient(o.httpClient))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Client{raw: raw, apiKey: apiKey, cookieName: o.cookieName}, nil
}

// Raw returns the generated client, for operations this package does not
// wrap. Its calls carry no credential unless given a request editor.
func (c *Client) Raw() gen.ClientInterface { return c.raw }

// SignInParams is what a backend knows when a person has proved who they
// are. Only UserID is required; an empty ClientID signs in on a new client.
type SignInParams struct {
	UserID    string
	ClientID  string
	UserAgent string
	IPAddress string
	Metadata  map[string]any
}

// SignInResult is a new session, its token (shown only once) and the
// Set-Cookie headers of sessiond's answer, which ForwardCookies copies to
// the browser.
type SignInResult struct {
	Session Session
	Token   string
	// Ended lists the sessions the sign-in replaced or evicted.
	Ended []EndedBySignIn
	// SetCookies are the Set-Cookie header values of the answer, in order
	// and unchanged.
	SetCookies []string
}

// SignIn creates a session (POST /sessions) with the API key. An error
// from sessiond is a *Problem: invalid_request, invalid_id,
// client_not_found (an unknown ClientID), unauthenticated (a wrong key), ...
func (c *Client) SignIn(ctx context.Context, p SignInParams) (SignInResult, error) {
	body := gen.SignInRequest{UserID: p.UserID}
	if p.ClientID != "" {
		body.ClientID = &p.ClientID
	}
	if p.UserAgent != "" {
		body.UserAgent = &p.UserAgent
	}
	if p.IPAddress != "" {
		body.IPAddress = &p.IPAddress
	}
	if p.Metadata != nil {
		body.Metadata = &p.Metadata
	}
	resp, err := c.raw.CreateSession(ctx, body, c.withAPIKey)
	var out gen.SignInResponse
	if err := decode(resp, err, http.StatusCreated, &out); err != nil {
		return SignInResult{}, err
	}
	return SignInResult{Session: out.Session, Token: out.Token, Ended: out.Ended, SetCookies: resp.Header.Values("Set-Cookie")}, nil
}

// Session is "who am I" (GET /session) for a session token: the session
// if it is active, else a *Problem with code unauthenticated (401).
func (c *Client) Session(ctx context.Context, token string) (Session, error) {
	resp, err := c.raw.GetCurrentSession(ctx, bearer(token))
	var out Session
	return out, decode(resp, err, http.StatusOK, &out)
}

// GetSession reads any session by ID with the API key; an unknown one is
// a *Problem with code session_not_found.
func (c *Client) GetSession(ctx context.Context, id string) (Session, error) {
	resp, err := c.raw.GetSession(ctx, id, c.withAPIKey)
	var out Session
	return out, decode(resp, err, http.StatusOK, &out)
}

// EndResult is what an ending call ended; sessions that had already ended
// are not listed.
type EndResult struct {
	Ended []Session
	// SetCookies are the Set-Cookie header values of the answer.
	SetCookies []string
}

// SignOut is the holder's signOut() (DELETE /session) for a session token:
// in single mode it ends that session, in multi mode every session on its
// client. A non-empty sessionID ends exactly that session instead.
func (c *Client) SignOut(ctx context.Context, token, sessionID string) (EndResult, error) {
	params := &gen.SignOutParams{}
	if sessionID != "" {
		params.SessionID = &sessionID
	}
	resp, err := c.raw.SignOut(ctx, params, bearer(token))
	return decodeEnded(resp, err)
}

// EndSession ends exactly one session with the API key; it becomes
// revoked. Ending a session that has already ended is no error.
func (c *Client) EndSession(ctx context.Context, id string) (EndResult, error) {
	resp, err := c.raw.EndSession(ctx, id, nil, c.withAPIKey)
	return decodeEnded(resp, err)
}

// EndUserSessions ends every active session of a user on every client
// with the API key ("sign out everywhere"); a non-empty except keeps that
// session ("sign out other devices").
func (c *Client) EndUserSessions(ctx context.Context, userID, except string) (EndResult, error) {
	params := &gen.EndUserSessionsParams{}
	if except != "" {
		params.Except = &except
	}
	resp, err := c.raw.EndUserSessions(ctx, userID, params, c.withAPIKey)
	return decodeEnded(resp, err)
}

// EndClientSessions ends every session on a client with the API key.
func (c *Client) EndClientSessions(ctx context.Context, clientID string) (EndResult, error) {
	resp, err := c.raw.EndClientSessions(ctx, clientID, nil, c.withAPIKey)
	return decodeEnded(resp, err)
}

// ListOptions selects a page of a list. Zero values mean sessiond's
// defaults: active sessions, 20 per page, the first page.
type ListOptions struct {
	Status string // active, ended, revoked, replaced, evicted, expired or all
	Limit  int    // 1 to 100
	Cursor string // the NextCursor of the previous page
}

// Page is one page of sessions, newest first. NextCursor is empty on the
// last page.
type Page struct {
	Sessions   []Session
	NextCursor string
}

// ListUserSessions lists a user's sessions with the API key.
func (c *Client) ListUserSessions(ctx context.Context, userID string, o ListOptions) (Page, error) {
	p := gen.ListUserSessionsParams{}
	p.Status, p.Limit, p.Cursor = o.params()
	resp, err := c.raw.ListUserSessions(ctx, userID, &p, c.withAPIKey)
	return decodePage(resp, err)
}

// ListClientSessions lists the sessions on a client with the API key.
func (c *Client) ListClientSessions(ctx context.Context, clientID string, o ListOptions) (Page, error) {
	p := gen.ListClientSessionsParams{}
	p.Status, p.Limit, p.Cursor = o.params()
	resp, err := c.raw.ListClientSessions(ctx, clientID, &p, c.withAPIKey)
	return decodePage(resp, err)
}

func (o ListOptions) params() (*gen.ListStatus, *gen.ListLimit, *gen.ListCursor) {
	var (
		status *gen.ListStatus
		limit  *gen.ListLimit
		cursor *gen.ListCursor
	)
	if o.Status != "" {
		s := gen.ListStatus(o.Status)
		status = &s
	}
	if o.Limit != 0 {
		limit = &o.Limit
	}
	if o.Cursor != "" {
		cursor = &o.Cursor
	}
	return status, limit, cursor
}

func (c *Client) withAPIKey(_ context.Context, req *http.Request) error {
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	return nil
}

func bearer(token string) gen.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}

func decodeEnded(resp *http.Response, err error) (EndResult, error) {
	var out gen.EndResponse
	if err := decode(resp, err, http.StatusOK, &out); err != nil {
		return EndResult{}, err
	}
	return EndResult{Ended: out.Ended, SetCookies: resp.Header.Values("Set-Cookie")}, nil
}

func decodePage(resp *http.Response, err error) (Page, error) {
	var out gen.ListResponse
	if err := decode(resp, err, http.StatusOK, &out); err != nil {
		return Page{}, err
	}
	p := Page{Sessions: out.Data}
	if out.NextCursor != nil {
		p.NextCursor = *out.NextCursor
	}
	return p, nil
}

// maxAnswerBytes bounds what the client reads of one answer.
const maxAnswerBytes = 4 << 20

// decode reads an answer: with status want, its JSON into v; with any
// other, a *Problem. It closes the body. A transport error is returned
// wrapped, so errors.Is(err, context.DeadlineExceeded) works.
func decode(resp *http.Response, err error, want int, v any) error {
	if err != nil {
		return fmt.Errorf("sessiond: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("sessiond: reading the answer: %w", err)
	}
	if resp.StatusCode != want {
		return problemOf(resp, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("sessiond: answered %d with a body that is not the expected JSON: %w", resp.StatusCode, err)
	}
	return nil
}

// Problem is an error answer of sessiond (RFC 9457 problem details).
// Code is one of the stable codes of openapi.yaml (session_not_found,
// unauthenticated, unavailable, ...). An answer that is not problem+json,
// such as a proxy's 502 page, is a Problem with an empty Code.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Code      string            `json:"code"`
	Detail    string            `json:"detail"`
	Errors    map[string]string `json:"errors,omitempty"`
	RequestID string            `json:"request_id"`
	// Header is the header of the answer (Retry-After, WWW-Authenticate,
	// Set-Cookie, ...).
	Header http.Header `json:"-"`
	// body is the answer as sessiond sent it, for the middleware to pass on.
	body []byte
}

func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sessiond: %d", p.Status)
	if p.Code != "" {
		fmt.Fprintf(&b, " %s", p.Code)
	}
	if p.Detail != "" {
		fmt.Fprintf(&b, ": %s", p.Detail)
	}
	if p.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", p.RequestID)
	}
	return b.String()
}

// problemOf decodes an error answer.
func problemOf(resp *http.Response, body []byte) *Problem {
	p := &Problem{}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mediaType == "application/problem+json" && json.Unmarshal(body, p) == nil {
		p.body = body
	} else {
		p = &Problem{Title: http.StatusText(resp.StatusCode), Detail: "sessiond's answer is not problem+json"}
	}
	p.Status = resp.StatusCode
	p.Header = resp.Header
	if p.RequestID == "" {
		p.RequestID = resp.Header.Get("X-Request-ID")
	}
	return p
}
