package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/internal/db"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/internal/sessions"
)

// TestEndedSessionIsRefusedByTheOtherReplica: two sessiond replicas, each
// with its own pool and HTTP server, on one database. In every trial a
// session is read through one replica (so a cache there, if any, would
// hold it), ended through the other, and read again through the first at
// once: the very next answer must be 401. Trials alternate the direction
// and the ending request (the holder's sign-out, the backend's DELETE
// /sessions/{id}).
func TestEndedSessionIsRefusedByTheOtherReplica(t *testing.T) {
	t.Parallel()
	const (
		trials  = 10000
		workers = 16
	)
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	clock := &testClock{now: time.Now().UTC().Truncate(time.Second)}
	var replicas [2]*testEnv
	for i := range replicas {
		store, err := db.Open(ctx, url, 20)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(store.Close)
		replicas[i] = newEnvOn(t, store, func(s *sessions.Config, _ *api.Config) { s.Now = clock.Now })
		replicas[i].Clock = clock
	}

	// Plain clients: the contract check of e.do would dominate the time of
	// 40,000 requests, and other tests check the contract.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = workers
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	send := func(e *testEnv, method, path, credential, body string) (int, []byte, error) {
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, e.URL+path, r)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+credential)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}

	var failures atomic.Int64
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 10 {
			t.Errorf(format, args...)
		}
	}
	parallel := func(n int, fn func(i int)) {
		next := make(chan int)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := range next {
					fn(i)
				}
			})
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
	}

	// Sign in every trial's session as a backend, half through each
	// replica's service: the sign-ins only set the trials up, and through
	// HTTP they would take longer than the trials.
	started := time.Now()
	signedIns := make([]sessions.SignInResult, trials)
	backendCaller := sessions.Backend("replicas-test")
	parallel(trials, func(i int) {
		var err error
		signedIns[i], err = replicas[i%2].Svc.SignIn(ctx, backendCaller, sessions.SignInInput{UserID: fmt.Sprintf("replica-user-%d", i)})
		if err != nil {
			fail("sign-in %d: %v", i, err)
		}
	})
	signInTime := time.Since(started)
	if t.Failed() {
		t.FailNow()
	}

	var stale, done atomic.Int64
	started = time.Now()
	parallel(trials, func(i int) {
		s := signedIns[i]
		reader, ender := replicas[0], replicas[1]
		if (i/2)%2 == 1 {
			reader, ender = ender, reader
		}
		if status, body, err := send(reader, http.MethodGet, "/session", s.Token, ""); err != nil || status != http.StatusOK {
			fail("trial %d: GET /session before ending: %d %s %v", i, status, body, err)
			return
		}
		var status int
		var body []byte
		var err error
		if i%2 == 0 {
			status, body, err = send(ender, http.MethodDelete, "/session", s.Token, "")
		} else {
			status, body, err = send(ender, http.MethodDelete, "/sessions/"+s.Session.ID, apiKey, "")
		}
		var ended endAnswer
		if err != nil || status != http.StatusOK || json.Unmarshal(body, &ended) != nil ||
			len(ended.Ended) != 1 || ended.Ended[0].ID != s.Session.ID {
			fail("trial %d: ending: %d %s %v; want 200 ending %s", i, status, body, err, s.Session.ID)
			return
		}
		status, body, err = send(reader, http.MethodGet, "/session", s.Token, "")
		switch {
		case err != nil:
			fail("trial %d: GET /session after ending: %v", i, err)
			return
		case status == http.StatusOK:
			stale.Add(1)
			fail("trial %d: GET /session through the other replica right after the ending answered 200: %s", i, body)
		case status != http.StatusUnauthorized:
			fail("trial %d: GET /session after ending: %d %s; want 401", i, status, body)
			return
		}
		done.Add(1)
	})
	t.Logf("%d stale answers in %d trials (%d completed); sign-ins took %s, trials %s (%d workers)",
		stale.Load(), trials, done.Load(), signInTime.Round(time.Millisecond), time.Since(started).Round(time.Millisecond), workers)
	if stale.Load() != 0 {
		t.Errorf("%d of %d sessions were still served by the other replica after their ending answered 200", stale.Load(), trials)
	}
	if done.Load() != trials {
		t.Errorf("%d of %d trials completed", done.Load(), trials)
	}
}
