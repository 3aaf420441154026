package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// refusalResult is one kind of refusal the refusals measurement timed.
// Four refusals must cost the same (SECURITY.md, "Fail closed", finding 8): an ended token
// and an unknown one are both "no row" in the database, and so are a
// session ID the caller may not see and an unknown one. The test suite
// proves they do the same work (internal/db TestRefusalsLookTheSame);
// this only reports what that looks like in wall-clock time on this
// machine.
type refusalResult struct {
	Kind     string  `json:"kind"`
	Requests int     `json:"requests"`
	MedianMS float64 `json:"median_ms"`
	P90MS    float64 `json:"p90_ms"`
}

// refusalRounds is how many of each refusal measureRefusals sends.
const refusalRounds = 1000

// measureRefusals signs in three users, ends one of their sessions, and
// sends the four refusals interleaved, one at a time on one keep-alive
// connection, so that the machine's noise falls on all four alike.
func measureRefusals(ctx context.Context, addr string, logf func(string, ...any)) ([]refusalResult, error) {
	c := &httpConn{addr: addr}
	defer c.close()
	signIn := func(user string) (id, token string, err error) {
		var buf bytesBuffer
		body := fmt.Appendf(nil, `{"user_id":%q}`, user)
		if err := c.do(request(http.MethodPost, "/sessions", addr, benchAPIKey, body), http.StatusCreated, &buf); err != nil {
			return "", "", err
		}
		var res struct {
			Session struct {
				ID string `json:"id"`
			} `json:"session"`
			Token string `json:"token"`
		}
		if err := json.Unmarshal(buf.b, &res); err != nil || res.Token == "" {
			return "", "", fmt.Errorf("POST /sessions: no session in the answer")
		}
		return res.Session.ID, res.Token, nil
	}
	_, viewer, err := signIn("bench_refusals_viewer")
	if err != nil {
		return nil, err
	}
	endedID, ended, err := signIn("bench_refusals_ended")
	if err != nil {
		return nil, err
	}
	if err := c.do(request(http.MethodDelete, "/sessions/"+endedID, addr, benchAPIKey, nil), http.StatusOK, nil); err != nil {
		return nil, err
	}
	invisibleID, _, err := signIn("bench_refusals_other")
	if err != nil {
		return nil, err
	}
	kinds := []struct {
		name, path, auth string
		want             int
	}{
		{"ended token", "/session", ended, http.StatusUnauthorized},
		{"unknown token", "/session", "st_" + strings.Repeat("A", 43), http.StatusUnauthorized},
		{"invisible session ID", "/sessions/" + invisibleID, viewer, http.StatusNotFound},
		{"unknown session ID", "/sessions/sess_01J00000000000000000000000", viewer, http.StatusNotFound},
	}
	logf("refusals: %d of each of %d kinds, interleaved, one connection", refusalRounds, len(kinds))
	took := make([][]time.Duration, len(kinds))
	for range refusalRounds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for i, k := range kinds {
			start := time.Now()
			if err := c.do(request(http.MethodGet, k.path, addr, k.auth, nil), k.want, nil); err != nil {
				return nil, fmt.Errorf("refusals, %s: %w", k.name, err)
			}
			took[i] = append(took[i], time.Since(start))
		}
	}
	out := make([]refusalResult, len(kinds))
	for i, k := range kinds {
		slices.Sort(took[i])
		out[i] = refusalResult{Kind: k.name, Requests: len(took[i]),
			MedianMS: ms(took[i][len(took[i])/2]), P90MS: ms(took[i][len(took[i])*9/10])}
	}
	return out, nil
}
