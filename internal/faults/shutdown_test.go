package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/internal/testbed"
)

// exitSlack is what the process may take to exit once the grace period
// is over or its last request is answered: closing the pool, the runtime.
const exitSlack = 2 * time.Second

// buildSessiond builds cmd/sessiond into dir and returns the binary's path.
func buildSessiond(t *testing.T, dir string) string {
	t.Helper()
	started := time.Now()
	bin, err := testbed.BuildSessiond(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built cmd/sessiond in %s", time.Since(started).Round(time.Millisecond))
	return bin
}

// sessiondProcess is the real binary, started by a test.
type sessiondProcess = testbed.Process

// startSessiond runs the binary on a fresh pgtest database with the given
// settings on top of the test defaults, and returns once /readyz answers
// 200. A setting is an environment variable (NAME=value), or a flag when
// it starts with "--".
func startSessiond(t *testing.T, bin, dbURL string, settings ...string) *sessiondProcess {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	// Only these settings: nothing leaks in from the environment.
	cmd.Env = []string{
		"SESSIOND_DATABASE_URL=" + dbURL,
		"SESSIOND_ADDR=127.0.0.1:0",
		"SESSIOND_API_KEYS=" + apiKey,
	}
	for _, s := range settings {
		if strings.HasPrefix(s, "--") {
			cmd.Args = append(cmd.Args, s)
		} else {
			cmd.Env = append(cmd.Env, s)
		}
	}
	// The bound only catches a process that never gets ready.
	return testbed.StartForTest(t, testbed.Server{Name: "sessiond", Cmd: cmd, Ready: time.Minute}, 0)
}

// slowSignIn is a POST /sessions held open in the middle of its body: the
// server has accepted its connection and its handler is running (it asked
// for the body with 100 Continue) when the test lets it finish.
type slowSignIn struct {
	conn net.Conn
	r    *bufio.Reader
	rest string
}

// startSlowSignIn sends the head of a sign-in with Expect: 100-continue,
// waits for 100 Continue, and sends half of the body.
func startSlowSignIn(addr, userID string) (*slowSignIn, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	body := fmt.Sprintf(`{"user_id":%q}`, userID)
	head := "POST /sessions HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + apiKey +
		"\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body))
	s := &slowSignIn{conn: conn, r: bufio.NewReader(conn), rest: body[len(body)/2:]}
	if _, err := io.WriteString(conn, head); err != nil {
		conn.Close()
		return nil, err
	}
	line, err := s.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		conn.Close()
		return nil, fmt.Errorf("want 100 Continue, got %q (%v)", line, err)
	}
	if blank, err := s.r.ReadString('\n'); err != nil || blank != "\r\n" {
		conn.Close()
		return nil, fmt.Errorf("want the end of the 100 Continue, got %q (%v)", blank, err)
	}
	if _, err := io.WriteString(conn, body[:len(body)/2]); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// finish sends the rest of the body and returns the answer's status and
// token.
func (s *slowSignIn) finish() (int, string, error) {
	defer s.conn.Close()
	if _, err := io.WriteString(s.conn, s.rest); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(s.r, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var answer struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return resp.StatusCode, "", err
	}
	return resp.StatusCode, answer.Token, nil
}

// shutdownCall is one request of the load around the signal.
type shutdownCall struct {
	op         string
	start, end time.Time
	// accepted: the server began handling the request (it asked for the
	// body with 100 Continue, or it answered).
	accepted bool
	status   int
	token    string
	err      error
}

// TestGracefulShutdown sends SIGTERM to the real binary, built from
// cmd/sessiond, while it serves.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	bin := buildSessiond(t, t.TempDir())
	t.Run("in-flight requests finish", func(t *testing.T) {
		t.Parallel()
		shutdownUnderLoad(t, bin)
	})
	t.Run("grace period bounds the exit", func(t *testing.T) {
		t.Parallel()
		shutdownWithStuckRequest(t, bin)
	})
}

// shutdownUnderLoad sends SIGTERM while sign-ins are held open in the
// middle of their bodies and workers keep signing in and asking who they
// are. Every request the server had accepted must be answered, none with
// a 5xx; the listener must close at once; and the process must exit 0
// within the grace period.
func shutdownUnderLoad(t *testing.T, bin string) {
	const (
		grace   = 10 * time.Second
		held    = 16  // sign-ins held open across the signal
		workers = 8   // load workers
		perWork = 300 // at most so many iterations each
	)
	dbURL := pgtest.NewDatabase(t)
	p := startSessiond(t, bin, dbURL, "SESSIOND_SHUTDOWN_TIMEOUT="+grace.String())

	var slow []*slowSignIn
	for i := range held {
		s, err := startSlowSignIn(p.Addr, fmt.Sprintf("held-%d", i))
		if err != nil {
			t.Fatalf("hold a sign-in open: %v", err)
		}
		slow = append(slow, s)
	}

	transport := &http.Transport{MaxIdleConnsPerHost: workers, ExpectContinueTimeout: 5 * time.Second}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	var (
		mu       sync.Mutex
		calls    []shutdownCall
		signaled = make(chan struct{})
	)
	send := func(op, method, path, credential, body string) shutdownCall {
		c := shutdownCall{op: op, start: time.Now()}
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		var continued atomic.Bool // set by the transport's goroutine
		trace := &httptrace.ClientTrace{Got100Continue: func() { continued.Store(true) }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, "http://"+p.Addr+path, r)
		if err != nil {
			panic(err)
		}
		req.Header.Set("Authorization", "Bearer "+credential)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Expect", "100-continue")
		}
		resp, err := client.Do(req)
		c.accepted = continued.Load()
		if err == nil {
			c.accepted = true
			c.status = resp.StatusCode
			var answer struct{ Token string }
			err = json.NewDecoder(resp.Body).Decode(&answer)
			c.token = answer.Token
			resp.Body.Close()
		}
		c.err, c.end = err, time.Now()
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		return c
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for n := range perWork {
				c := send("POST /sessions", http.MethodPost, "/sessions", apiKey, fmt.Sprintf(`{"user_id":"load-%d-%d"}`, w, n))
				if c.err == nil && c.status == http.StatusCreated {
					c = send("GET /session", http.MethodGet, "/session", c.token, "")
				}
				if c.err != nil {
					select {
					case <-signaled:
						return // the server is going away: not a failure by itself
					default:
					}
				}
			}
		})
	}

	time.Sleep(500 * time.Millisecond)
	signalAt := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	close(signaled)

	// The listener closes at once, while the held requests keep the
	// process alive.
	var refusedAt time.Time
	for deadline := signalAt.Add(exitSlack); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err != nil {
			refusedAt = time.Now()
			break
		}
		conn.Close()
	}
	if refusedAt.IsZero() {
		t.Errorf("new connections were still accepted %s after SIGTERM", exitSlack)
	} else {
		t.Logf("new connections refused %s after SIGTERM", refusedAt.Sub(signalAt).Round(time.Microsecond))
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case <-p.Exited:
		t.Errorf("sessiond exited (%v) %s after SIGTERM with %d requests still in flight",
			p.Err, p.ExitAt.Sub(signalAt).Round(time.Millisecond), held)
	default:
	}
	if conn, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("a new connection was accepted after SIGTERM, while draining")
	}

	// The held sign-ins finish: each must be a 201 with a token.
	answered := map[string]bool{}
	for i, s := range slow {
		status, token, err := s.finish()
		if err != nil || status != http.StatusCreated || token == "" {
			t.Errorf("sign-in %d held open across SIGTERM: %d %v; want 201 with a token", i, status, err)
			continue
		}
		answered[token] = true
	}
	wg.Wait()

	select {
	case <-p.Exited:
	case <-time.After(grace + exitSlack):
		t.Fatalf("sessiond still running %s after SIGTERM (grace period %s)", time.Since(signalAt).Round(time.Millisecond), grace)
	}
	exitAfter := p.ExitAt.Sub(signalAt)
	if p.Err != nil {
		t.Errorf("sessiond exited with %v, want 0", p.Err)
	}
	if exitAfter > grace {
		t.Errorf("sessiond exited %s after SIGTERM, beyond its grace period %s", exitAfter.Round(time.Millisecond), grace)
	}

	// Every request the server had accepted was answered, none with 5xx;
	// a request may fail only after the signal and only if the server
	// never began handling it.
	inFlight, accepted, notAccepted := 0, 0, 0
	for _, c := range calls {
		if c.start.Before(signalAt) && c.end.After(signalAt) {
			inFlight++
		}
		switch {
		case c.err != nil && (c.accepted || c.end.Before(signalAt)):
			t.Errorf("%s (started %s from SIGTERM) failed: %v", c.op, c.start.Sub(signalAt).Round(time.Microsecond), c.err)
		case c.err != nil:
			notAccepted++
			if c.start.Before(signalAt) {
				t.Logf("not accepted: %s sent %s before SIGTERM, failed %s after it: %v",
					c.op, signalAt.Sub(c.start).Round(time.Microsecond), c.end.Sub(signalAt).Round(time.Microsecond), c.err)
			}
		case c.status >= 500:
			t.Errorf("%s (started %s from SIGTERM) answered %d", c.op, c.start.Sub(signalAt).Round(time.Microsecond), c.status)
		default:
			accepted++
			if c.op == "POST /sessions" && c.status == http.StatusCreated {
				answered[c.token] = true
			}
		}
	}

	// What the database holds agrees: every sign-in it recorded was
	// answered 201 to its caller, so none was done and then dropped.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var stored int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM sessions").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(answered) {
		t.Errorf("the database holds %d sessions but %d sign-ins were answered 201", stored, len(answered))
	}
	t.Logf("SIGTERM with %d held sign-ins and %d load requests in flight: %d requests answered (%d after the signal), %d not accepted (refused after the signal); exit status %s %s after SIGTERM (grace %s); %d sessions stored, %d answered 201",
		held, inFlight, accepted, countAfter(calls, signalAt), notAccepted, exitCode(p.Err), exitAfter.Round(time.Millisecond), grace, stored, len(answered))
	if inFlight == 0 {
		t.Errorf("no load request was in flight at SIGTERM: the load did not overlap the signal")
	}
}

// shutdownWithStuckRequest holds a request open past the grace period:
// the process must exit once the grace period is over, not wait for the
// request (which its 10 s read timeout would end much later).
func shutdownWithStuckRequest(t *testing.T, bin string) {
	const grace = time.Second
	p := startSessiond(t, bin, pgtest.NewDatabase(t), "SESSIOND_SHUTDOWN_TIMEOUT="+grace.String())
	s, err := startSlowSignIn(p.Addr, "never-finishes")
	if err != nil {
		t.Fatal(err)
	}
	defer s.conn.Close()
	signalAt := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited:
	case <-time.After(grace + exitSlack):
		t.Fatalf("sessiond still running %s after SIGTERM with a grace period of %s", time.Since(signalAt).Round(time.Millisecond), grace)
	}
	exitAfter := p.ExitAt.Sub(signalAt)
	t.Logf("with a request held open: exit status %s %s after SIGTERM (grace %s)", exitCode(p.Err), exitAfter.Round(time.Millisecond), grace)
	if exitAfter < grace {
		t.Errorf("sessiond exited %s after SIGTERM, before its grace period %s was over, with a request in flight", exitAfter.Round(time.Millisecond), grace)
	}
}

func countAfter(calls []shutdownCall, at time.Time) int {
	n := 0
	for _, c := range calls {
		if c.err == nil && c.start.After(at) {
			n++
		}
	}
	return n
}

func exitCode(err error) string {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return "0"
	case errors.As(err, &exit):
		return strconv.Itoa(exit.ExitCode())
	default:
		return err.Error()
	}
}
