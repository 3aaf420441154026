package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/internal/sessions"
)

// hangUpBound is a generous bound on waiting for the server to notice
// something (a request blocked, a client gone); it only catches hangs and
// is never a timing assertion.
const hangUpBound = 30 * time.Second

// lockedSession holds a row lock on one session, as another transaction
// would, so a request that writes that row waits for it.
type lockedSession struct {
	tx pgx.Tx
}

func lockSession(t *testing.T, e *testEnv, id string) *lockedSession {
	t.Helper()
	ctx := context.Background()
	tx, err := e.Store.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, `SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}
	return &lockedSession{tx: tx}
}

func (l *lockedSession) release(t *testing.T) {
	t.Helper()
	if err := l.tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitForLockWaiter returns the pid of the backend that waits on a row
// lock in e's database: the request that is now blocked.
func waitForLockWaiter(t *testing.T, e *testEnv) int {
	t.Helper()
	deadline := time.Now().Add(hangUpBound)
	for {
		var pid int
		err := e.Store.Pool().QueryRow(context.Background(), `
			SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' LIMIT 1`).Scan(&pid)
		if err == nil {
			return pid
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request waited on the row lock within %s", hangUpBound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitForBackendGone waits until the backend pid has ended: whatever it
// was doing is then committed or rolled back for good.
func waitForBackendGone(t *testing.T, e *testEnv, pid int) {
	t.Helper()
	deadline := time.Now().Add(hangUpBound)
	for {
		var n int
		if err := e.Store.Pool().QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %d still there after %s", pid, hangUpBound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitForMetric waits until /metrics holds line exactly.
func waitForMetric(t *testing.T, e *testEnv, line string) {
	t.Helper()
	deadline := time.Now().Add(hangUpBound)
	for {
		r := e.do(t, http.MethodGet, "/metrics", noCred, nil)
		if bytes.Contains(r.Body, []byte("\n"+line+"\n")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %s; they hold:\n%s", line, grepLines(r.Body, "sessiond_http_requests_total"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func grepLines(b []byte, substr string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "test-" + hex.EncodeToString(b)
}

// logRecord is the part of a JSON log line the tests read.
type logRecord struct {
	Level  string `json:"level"`
	Msg    string `json:"msg"`
	Status int    `json:"status"`
	Route  string `json:"route"`
}

func records(t *testing.T, lines []string) []logRecord {
	t.Helper()
	var out []logRecord
	for _, l := range lines {
		var r logRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("log line is not JSON: %s", l)
		}
		out = append(out, r)
	}
	return out
}

// abandon sends method path with the request ID, waits until it blocks on
// the row lock, then hangs up like a client that went away, and returns
// the pid of the database backend that was serving it.
func abandon(t *testing.T, e *testEnv, method, path string, c cred, requestID string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.bearer)
	req.Header.Set("X-Request-ID", requestID)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			err = fmt.Errorf("answered %d %s before the client hung up", resp.StatusCode, b)
		}
		done <- err
	}()
	pid := waitForLockWaiter(t, e)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("%s %s: %v, want the client's own cancellation", method, path, err)
	}
	return pid
}

// TestClientThatHungUpIsNotAServerError: a client that goes away while its
// request waits (here on a row lock another transaction holds) is counted
// and logged as 499, at info, never as a 500 internal or an ERROR line, and
// what the request would have changed stays unchanged. Our own request
// timeout stays 503 unavailable.
func TestClientThatHungUpIsNotAServerError(t *testing.T) {
	t.Parallel()
	t.Run("an ending request abandoned mid-flight is 499 and ends nothing", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := e.mustSignIn(t, "alice", "")
		eventsBefore := len(auditEvents(t, e))
		id := newRequestID()
		logged := logs.watch(id)

		lock := lockSession(t, e, s.ID)
		pid := abandon(t, e, http.MethodDelete, "/sessions/"+s.ID, backend, id)
		waitForMetric(t, e, `sessiond_http_requests_total{method="DELETE",route="/sessions/:id",status="499"} 1`)
		// Let the abandoned statement have the row, and wait until its
		// backend is gone, so whatever it did is final.
		lock.release(t)
		waitForBackendGone(t, e, pid)

		e.wantActive(t, s)
		if got := e.statusOf(t, s.ID); got != "active" {
			t.Errorf("status %q after an abandoned sign-out, want active", got)
		}
		if n := len(auditEvents(t, e)); n != eventsBefore {
			t.Errorf("%d audit rows after an abandoned sign-out, want %d (none added)", n, eventsBefore)
		}
		wantOnly499AtInfo(t, records(t, logged()), "/sessions/:id")
		r := e.do(t, http.MethodGet, "/metrics", noCred, nil)
		if bytes.Contains(r.Body, []byte(`route="/sessions/:id",status="500"`)) {
			t.Errorf("the abandoned request was counted as a 500:\n%s", grepLines(r.Body, "sessiond_http_requests_total"))
		}
	})
	t.Run("GET /session abandoned while its activity write waits is 499", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := e.mustSignIn(t, "alice", "")
		e.Clock.Advance(2 * time.Minute) // the once-a-minute activity write is due
		id := newRequestID()
		logged := logs.watch(id)

		lock := lockSession(t, e, s.ID)
		pid := abandon(t, e, http.MethodGet, "/session", bearer(s.Token), id)
		waitForMetric(t, e, `sessiond_http_requests_total{method="GET",route="/session",status="499"} 1`)
		lock.release(t)
		waitForBackendGone(t, e, pid)

		wantOnly499AtInfo(t, records(t, logged()), "/session")
		e.wantActive(t, s)
	})
	t.Run("our own request timeout is 503 unavailable that says it ran out of time", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(_ *sessions.Config, a *api.Config) { a.RequestTimeout = 300 * time.Millisecond })
		// Only the request under test goes through HTTP: on a loaded
		// machine any other may take longer than this short timeout.
		s := e.fuzzSignIn(t, "alice", "")
		lock := lockSession(t, e, s.ID)
		r := e.do(t, http.MethodDelete, "/sessions/"+s.ID, backend, nil)
		r.wantProblem(t, http.StatusServiceUnavailable, "unavailable")
		wantDetail(t, r, "The request ran out of time; try again.")
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
		lock.release(t)
		waitForMetric(t, e, `sessiond_http_requests_total{method="DELETE",route="/sessions/:id",status="503"} 1`)
		waitForMetric(t, e, `sessiond_http_unavailable_total{cause="deadline"} 1`)
		waitForMetric(t, e, `sessiond_http_unavailable_total{cause="database"} 0`)
		if st := storedRow(t, e, s.ID).Status; st != "active" {
			t.Errorf("the timed-out sign-out left the session %s, want active", st)
		}
	})
}

// wantDetail checks the detail of a problem answer.
func wantDetail(t *testing.T, r response, want string) {
	t.Helper()
	var p struct{ Detail string }
	if err := json.Unmarshal(r.Body, &p); err != nil || p.Detail != want {
		t.Errorf("detail of %s, want %q", r.Body, want)
	}
}

func wantOnly499AtInfo(t *testing.T, recs []logRecord, route string) {
	t.Helper()
	var access int
	for _, r := range recs {
		if r.Level == "ERROR" || r.Level == "WARN" {
			t.Errorf("an abandoned request logged %s %q", r.Level, r.Msg)
		}
		if r.Msg == "request" {
			access++
			if r.Status != api.StatusClientClosedRequest || r.Level != "INFO" || r.Route != route {
				t.Errorf("access-log line %+v, want status 499 at INFO on %s", r, route)
			}
		}
	}
	if access != 1 {
		t.Errorf("%d access-log lines for the abandoned request, want 1: %+v", access, recs)
	}
}

// syncBuffer is a log destination a test reads while servers write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSuffix(s.b.String(), "\n"), "\n")
}

// accessLogTo sends e's access log to buf (and, for the secrets check, to
// the package's sink too) in the given mode.
func accessLogTo(buf *syncBuffer, mode api.AccessLog, slow time.Duration) option {
	return func(_ *sessions.Config, a *api.Config) {
		a.AccessLog = mode
		a.SlowRequest = slow
		a.AccessLogger = slog.New(slog.NewJSONHandler(io.MultiWriter(buf, logs), nil))
	}
}

// TestAccessLogSetting: what each SESSIOND_ACCESS_LOG mode writes, and
// that request IDs and metrics do not depend on it.
func TestAccessLogSetting(t *testing.T) {
	t.Parallel()
	// Each case sends a 200 (GET /session), a 401 (a bad token) and a 404
	// (an unknown route), and names the statuses that must be logged.
	for _, c := range []struct {
		name   string
		mode   api.AccessLog
		slow   time.Duration
		logged []int
	}{
		{"all logs every request", api.AccessLogAll, 0, []int{200, 401, 404}},
		{"errors logs 4xx and 5xx only", api.AccessLogErrors, time.Hour, []int{401, 404}},
		{"errors also logs slow requests", api.AccessLogErrors, time.Nanosecond, []int{200, 401, 404}},
		{"off logs none", api.AccessLogOff, 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var buf syncBuffer
			e := newEnv(t, accessLogTo(&buf, c.mode, c.slow))
			s := e.mustSignIn(t, "alice", "")
			buf.mu.Lock()
			buf.b.Reset() // only the three requests below
			buf.mu.Unlock()

			ids := map[int]string{200: newRequestID(), 401: newRequestID(), 404: newRequestID()}
			for status, path := range map[int]string{200: "/session", 401: "/session", 404: "/nope"} {
				token := s.Token
				if status == 401 {
					token = "st_" + strings.Repeat("A", 43)
				}
				r := e.doRaw(t, http.MethodGet, path, http.Header{"Authorization": {"Bearer " + token}, "X-Request-ID": {ids[status]}}, "")
				r.wantStatus(t, status)
				if got := r.Header.Get("X-Request-ID"); got != ids[status] {
					t.Errorf("X-Request-ID %q, want the caller's %q whatever the access log", got, ids[status])
				}
			}
			var got []int
			for _, l := range buf.lines() {
				if l == "" {
					continue
				}
				var r struct {
					Msg       string `json:"msg"`
					Status    int    `json:"status"`
					RequestID string `json:"request_id"`
				}
				if err := json.Unmarshal([]byte(l), &r); err != nil || r.Msg != "request" {
					t.Fatalf("not an access-log line: %s", l)
				}
				if r.RequestID != ids[r.Status] {
					t.Errorf("line for %d has request_id %q, want %q", r.Status, r.RequestID, ids[r.Status])
				}
				got = append(got, r.Status)
			}
			if !sameStatuses(got, c.logged) {
				t.Errorf("logged statuses %v, want %v", got, c.logged)
			}
			m := e.do(t, http.MethodGet, "/metrics", noCred, nil).Body
			for _, want := range []string{
				`sessiond_http_requests_total{method="GET",route="/session",status="200"} 1`,
				`sessiond_http_requests_total{method="GET",route="/session",status="401"} 1`,
				`sessiond_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
			} {
				if !bytes.Contains(m, []byte(want)) {
					t.Errorf("metrics lack %s whatever the access log", want)
				}
			}
		})
	}
}

func sameStatuses(got, want []int) bool {
	seen := map[int]int{}
	for _, s := range got {
		seen[s]++
	}
	for _, s := range want {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return len(got) == len(want)
}
