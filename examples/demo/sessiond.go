package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// sessiond is what the demo backend asks of sessiond: a session for a
// browser, on that browser's client when it already has one (so a second
// account joins the first in multi mode).
type sessiond struct {
	base, apiKey string
	http         *http.Client
}

func newSessiond(base, apiKey string) (*sessiond, error) {
	return &sessiond{base: base, apiKey: apiKey, http: &http.Client{Timeout: 10 * time.Second}}, nil
}

// signIn creates the session and forwards sessiond's Set-Cookie headers to
// the browser unchanged: the backend never spells a cookie attribute.
func (s *sessiond) signIn(ctx context.Context, w http.ResponseWriter, r *http.Request, user string) error {
	body := map[string]string{"user_id": user, "user_agent": r.UserAgent()}
	if clientID := s.clientOf(ctx, r); clientID != "" {
		body["client_id"] = clientID
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/sessions", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("sessiond unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("sessiond answered %d", resp.StatusCode)
	}
	for _, v := range resp.Header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", v)
	}
	return nil
}

// clientOf is the client of the browser's active session, or "".
func (s *sessiond) clientOf(ctx context.Context, r *http.Request) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/session", nil)
	if err != nil {
		return ""
	}
	for _, c := range r.Cookies() {
		req.AddCookie(c)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var me struct {
		ClientID string `json:"client_id"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&me) != nil {
		return ""
	}
	return me.ClientID
}
