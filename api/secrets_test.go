package api_test

// No secret in the logs: every server of the package's test run logs into
// one captured sink (api.Config.Logger, and the slog default that
// writeError and the panic recovery use), and TestMain fails the run when,
// after all tests, the captured log holds a session token or an API key.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/sessions"
)

// logSink is the concurrency-safe buffer every log line of the run goes
// to. To stay small under long fuzzing it scans and drops complete lines
// once it holds more than sinkCompactBytes.
type logSink struct {
	mu       sync.Mutex
	buf      []byte
	lines    int      // lines scanned so far
	access   int      // of which access-log lines ("msg":"request")
	findings []string // what was found, secrets redacted
	watched  map[string]*[]string
}

const sinkCompactBytes = 16 << 20

var (
	logs = &logSink{}
	// capturedLogger is the logger of every test server; it is also the
	// slog default during the run.
	capturedLogger = slog.New(slog.NewJSONHandler(logs.writer(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	// served counts the requests the harness's servers answered.
	served atomic.Int64
)

// captureLogs routes the slog default (and with it the standard log
// package) into the sink. SESSIOND_TEST_LOGS=stderr also copies every
// line to stderr, for debugging.
func captureLogs() { slog.SetDefault(capturedLogger) }

func (s *logSink) writer() io.Writer {
	if os.Getenv("SESSIOND_TEST_LOGS") == "stderr" {
		return io.MultiWriter(s, os.Stderr)
	}
	return s
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for marker, lines := range s.watched {
		if bytes.Contains(p, []byte(marker)) {
			*lines = append(*lines, string(p))
		}
	}
	s.buf = append(s.buf, p...)
	if len(s.buf) > sinkCompactBytes {
		if i := bytes.LastIndexByte(s.buf, '\n'); i >= 0 {
			s.scan(s.buf[:i+1])
			s.buf = append(s.buf[:0], s.buf[i+1:]...)
		}
	}
	return len(p), nil
}

// watch keeps every log record written from now on that holds marker
// (e.g. a request ID), however much the sink compacts, and returns them
// when called.
func (s *logSink) watch(marker string) func() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watched == nil {
		s.watched = map[string]*[]string{}
	}
	lines := &[]string{}
	s.watched[marker] = lines
	return func() []string {
		s.mu.Lock()
		defer s.mu.Unlock()
		return append([]string(nil), *lines...)
	}
}

// countServed counts the requests h answers, so the check knows how many
// access-log lines the log must hold.
func countServed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		h.ServeHTTP(w, r)
	})
}

// tokenPattern is a session token: st_ and 43 base64url characters, not
// the tail of a longer word ("last_…").
var tokenPattern = regexp.MustCompile(`(^|[^A-Za-z0-9_-])st_[A-Za-z0-9_-]{43}`)

// keyPattern is anything shaped like an API key, not the tail of a longer
// word ("task_…").
var keyPattern = regexp.MustCompile(`(^|[^A-Za-z0-9_-])sk_[A-Za-z0-9_.~+/=-]{16,}`)

// testKeys are the API keys the tests use, read from the package's test
// sources (every quoted "sk_..." literal), so keys other tests add are
// covered too; the key bodies without the prefix count as well.
var testKeys = sync.OnceValue(func() []string {
	keys := map[string]bool{apiKey: true}
	literal := regexp.MustCompile(`"(sk_[A-Za-z0-9_.~+/=-]{8,})"`)
	files, _ := filepath.Glob("*_test.go")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, m := range literal.FindAllSubmatch(b, -1) {
			keys[string(m[1])] = true
		}
	}
	var out []string
	for k := range keys {
		out = append(out, k, strings.TrimPrefix(k, "sk_"))
	}
	return out
})

// scan looks for secrets in complete lines; s.mu is held.
func (s *logSink) scan(b []byte) {
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		s.lines++
		var rec struct{ Msg string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "request" {
			s.access++
		}
		var what []string
		if tokenPattern.MatchString(line) {
			what = append(what, "a session token")
		}
		if keyPattern.MatchString(line) {
			what = append(what, "an API key")
		}
		for _, k := range testKeys() {
			if strings.Contains(line, k) {
				what = append(what, "the test API key "+k[:4]+"…")
				break
			}
		}
		if len(what) > 0 && len(s.findings) < 20 {
			redacted := keyPattern.ReplaceAllString(tokenPattern.ReplaceAllString(line, "${1}st_<redacted>"), "${1}sk_<redacted>")
			for _, k := range testKeys() {
				redacted = strings.ReplaceAll(redacted, k, "<redacted>")
			}
			s.findings = append(s.findings, fmt.Sprintf("log line %d holds %s: %s", s.lines, strings.Join(what, " and "), redacted))
		}
	}
}

// checkLogsForSecrets scans what the run logged and returns the exit code:
// code, or 1 when the log holds a token or a key, or when the servers
// answered requests whose access-log lines are not in the sink (so the
// check would pass for want of logs).
func checkLogsForSecrets(code int) int {
	logs.mu.Lock()
	logs.scan(logs.buf)
	logs.buf = nil
	lines, access, findings := logs.lines, logs.access, logs.findings
	logs.mu.Unlock()

	n := served.Load()
	fmt.Fprintf(os.Stderr, "secrets: scanned %d log lines (%d access-log lines for %d requests served) for session tokens and API keys\n", lines, access, n)
	if len(findings) > 0 {
		for _, f := range findings {
			fmt.Fprintln(os.Stderr, "secrets: FAIL:", f)
		}
		return 1
	}
	if int64(access) < n {
		fmt.Fprintf(os.Stderr, "secrets: FAIL: %d requests served but only %d access-log lines captured: some log escapes the check\n", n, access)
		return 1
	}
	return code
}

// TestDatabaseHoldsNoSecret: what a database dump holds after sign-ins
// and sign-outs: every table, as text, contains no session token (nor its
// random part) and no API key; a session's token is there only as its
// SHA-256, so a dump cannot be replayed as credentials.
func TestDatabaseHoldsNoSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t, multiMode)
	var all []signedIn
	for _, user := range []string{"alice", "bob", "carol"} {
		all = append(all, e.mustSignIn(t, user, ""))
	}
	all = append(all, e.mustSignIn(t, "dave", all[0].ClientID))
	e.mustEnd(t, "/session", bearer(all[1].Token))
	e.mustEnd(t, "/sessions/"+all[2].ID, backend)

	ctx := context.Background()
	rows, err := e.Store.Pool().Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 3 {
		t.Fatalf("tables %v, %v", tables, err)
	}
	var dump strings.Builder
	for _, table := range tables {
		var text string
		if err := e.Store.Pool().QueryRow(ctx, `SELECT coalesce(json_agg(t)::text, '') FROM `+pgx.Identifier{table}.Sanitize()+` t`).Scan(&text); err != nil {
			t.Fatal(err)
		}
		dump.WriteString(text)
	}
	for _, s := range all {
		if strings.Contains(dump.String(), s.Token) || strings.Contains(dump.String(), s.Token[len("st_"):]) {
			t.Errorf("the dump holds the token of %s's session", s.UserID)
		}
		h := sessions.HashToken(s.Token)
		var n int
		if err := e.Store.Pool().QueryRow(ctx, `SELECT count(*) FROM sessions WHERE id = $1 AND token_hash = $2`, s.ID, h[:]).Scan(&n); err != nil || n != 1 {
			t.Errorf("%s's session is not stored under the SHA-256 of its token (%d rows, %v)", s.UserID, n, err)
		}
	}
	if strings.Contains(dump.String(), apiKey) || strings.Contains(dump.String(), strings.TrimPrefix(apiKey, "sk_")) {
		t.Errorf("the dump holds the API key")
	}
	if tokenPattern.MatchString(dump.String()) || keyPattern.MatchString(dump.String()) {
		t.Errorf("the dump holds something shaped like a token or a key")
	}
}
