package faults

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/pgtest"
)

// The review's findings 9 and 10, against the real binary.

// Finding 10: the grace period bounds the exit even when a request waits
// in the database (closing the pool used to wait for it), and a second
// signal ends the process at once.
func TestShutdownGraceIsHonoured(t *testing.T) {
	t.Parallel()
	bin := buildSessiond(t, t.TempDir())
	t.Run("a request waiting in the database does not hold the exit", func(t *testing.T) {
		t.Parallel()
		const grace = time.Second
		p, release := startWithRequestInDatabase(t, bin, "SESSIOND_SHUTDOWN_TIMEOUT="+grace.String())
		defer release()
		signalAt := time.Now()
		if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.Exited:
		case <-time.After(grace + exitSlack):
			t.Fatalf("sessiond still running %s after SIGTERM with a grace period of %s", time.Since(signalAt).Round(time.Millisecond), grace)
		}
		t.Logf("with a request waiting on a row lock: exit status %s %s after SIGTERM (grace %s)",
			exitCode(p.Err), p.ExitAt.Sub(signalAt).Round(time.Millisecond), grace)
		if exitCode(p.Err) != "1" {
			t.Errorf("exit status %s, want 1 (requests were cut off)", exitCode(p.Err))
		}
	})
	t.Run("a second signal exits at once", func(t *testing.T) {
		t.Parallel()
		const grace = time.Minute
		p, release := startWithRequestInDatabase(t, bin, "SESSIOND_SHUTDOWN_TIMEOUT="+grace.String())
		defer release()
		if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// Still draining: the first signal waits for the request.
		select {
		case <-p.Exited:
			t.Fatalf("sessiond exited (%v) on the first SIGTERM with a request in flight and %s of grace", p.Err, grace)
		case <-time.After(300 * time.Millisecond):
		}
		secondAt := time.Now()
		if err := p.Cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.Exited:
			t.Logf("second signal: exited (%v) %s after it", p.Err, p.ExitAt.Sub(secondAt).Round(time.Millisecond))
		case <-time.After(exitSlack):
			t.Fatalf("sessiond still running %s after a second signal", exitSlack)
		}
	})
}

// startWithRequestInDatabase starts sessiond and sends a sign-in that
// waits on a row lock the test holds; release lets it go.
func startWithRequestInDatabase(t *testing.T, bin string, settings ...string) (*sessiondProcess, func()) {
	t.Helper()
	dbURL := pgtest.NewDatabase(t)
	p := startSessiond(t, bin, dbURL, append(settings, "SESSIOND_REQUEST_TIMEOUT=5m")...)
	client := signInOver(t, p.Addr, `{"user_id":"alice"}`)

	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), `SELECT 1 FROM clients WHERE id = $1 FOR UPDATE`, client); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.Addr+"/sessions",
			strings.NewReader(fmt.Sprintf(`{"user_id":"bob","client_id":%q}`, client)))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var waiting int
		if err := conn.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sign-in never waited on the client's row lock")
		}
	}
	return p, func() {
		_ = tx.Rollback(context.Background())
		_ = conn.Close(context.Background())
		<-done
	}
}

// signInOver signs a user in on a new client and returns the client ID.
func signInOver(t *testing.T, addr, body string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/sessions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	i := strings.Index(string(b), `"client_id":"`)
	if resp.StatusCode != http.StatusCreated || i < 0 {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, b)
	}
	rest := string(b[i+len(`"client_id":"`):])
	return rest[:strings.IndexByte(rest, '"')]
}

// Finding 9: /debug/pprof/cmdline would show secrets given as flags.
func TestPprofDoesNotShowTheCommandLine(t *testing.T) {
	t.Parallel()
	bin := buildSessiond(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pprofAddr := ln.Addr().String()
	ln.Close()
	const flagKey = "sk_given_as_a_flag_0123456789"
	dbURL := pgtest.NewDatabase(t)
	startSessiond(t, bin, dbURL, "SESSIOND_PPROF_ADDR="+pprofAddr, "--api-keys="+flagKey, "--database-url="+dbURL)
	for _, path := range []string{"/debug/pprof/cmdline", "/debug/pprof/", "/debug/pprof/cmdline?debug=1"} {
		resp, err := http.Get("http://" + pprofAddr + path)
		// The pprof listener starts beside the API's; give it a moment.
		for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			resp, err = http.Get("http://" + pprofAddr + path)
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), flagKey) || strings.Contains(string(b), dbURL) {
			t.Errorf("GET %s (%d) shows the command line's secrets (the API key or the database URL)", path, resp.StatusCode)
		}
		if path == "/debug/pprof/" && resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want the profile index", path, resp.StatusCode)
		}
	}
}
