// Package pgbouncer tests sessiond behind a real PgBouncer (Debian's
// package) in transaction pooling mode, as users deploy it: the pool's
// URL through PgBouncer with default_query_exec_mode=cache_describe, and
// SESSIOND_DIRECT_DATABASE_URL straight to Postgres for the migrations,
// the events LISTEN and the webhook leases. Without pgbouncer installed
// the test fails; it never skips.
package pgbouncer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/internal/testbed"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const apiKey = "sk_pgbouncer_0123456789abcdef"

// hangBound bounds every wait that would otherwise be for ever; it only
// catches a hang.
const hangBound = 30 * time.Second

func TestSessiondThroughPgBouncer(t *testing.T) {
	ctx := context.Background()
	// An empty database, so sessiond's own migrations run, over the
	// direct URL.
	template, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	dbName := fmt.Sprintf("bouncer_%d", os.Getpid())
	admin, err := pgx.Connect(ctx, template.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE "+dbName+" WITH (FORCE)")
		admin.Close(context.Background())
	})
	direct := *template
	direct.Path = "/" + dbName

	bouncerPort := startPgBouncer(t, direct.Hostname(), direct.Port(), dbName)
	pooled := fmt.Sprintf("postgres://postgres:postgres@127.0.0.1:%d/%s?sslmode=disable&default_query_exec_mode=cache_describe", bouncerPort, dbName)

	bin, err := testbed.BuildSessiond(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := startSessiond(t, bin, "SESSIOND_DATABASE_URL="+pooled, "SESSIOND_DIRECT_DATABASE_URL="+direct.String())

	// The migrations ran, over the direct URL, and left a clean schema.
	var version int
	var dirty bool
	dconn, err := pgx.Connect(ctx, direct.String())
	if err != nil {
		t.Fatal(err)
	}
	defer dconn.Close(ctx)
	if err := dconn.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations").Scan(&version, &dirty); err != nil || dirty || version == 0 {
		t.Fatalf("schema_migrations: version %d dirty %t %v", version, dirty, err)
	}

	// The events stream of a session on its client: its own sign-out
	// arrives, pushed through the LISTEN on the direct connection.
	x := signIn(t, base, "user-x")
	streamCtx, cancel := context.WithTimeout(ctx, hangBound)
	defer cancel()
	req, _ := http.NewRequestWithContext(streamCtx, http.MethodGet, base+"/session/events", nil)
	req.Header.Set("Authorization", "Bearer "+x.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /session/events: %d", resp.StatusCode)
	}

	// Sign-ins, verifies and sign-outs at once, many more statements than
	// PgBouncer has server connections: with pgx's default statement
	// cache, statements prepared on one server connection would be run on
	// another and fail.
	var wg sync.WaitGroup
	errs := make(chan string, 1000)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				s := signInOrErr(base, fmt.Sprintf("user-%d-%d", w, i), errs)
				if s.token == "" {
					continue
				}
				if st, body := call(base, http.MethodGet, "/session", s.token); st != http.StatusOK {
					errs <- fmt.Sprintf("verify: %d %s", st, body)
				}
				if st, body := call(base, http.MethodDelete, "/session", s.token); st != http.StatusOK {
					errs <- fmt.Sprintf("sign-out: %d %s", st, body)
				}
				if st, body := call(base, http.MethodGet, "/session", s.token); st != http.StatusUnauthorized {
					errs <- fmt.Sprintf("verify after sign-out: %d %s", st, body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for e := range errs {
		if n++; n <= 10 {
			t.Error(e)
		}
	}

	if st, body := call(base, http.MethodDelete, "/session", x.token); st != http.StatusOK {
		t.Fatalf("sign-out: %d %s", st, body)
	}
	got := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			got[ev] = true
			if ev == "session.ended" {
				break
			}
		}
	}
	if !got["session.ended"] {
		t.Errorf("the events stream ended without session.ended (saw %v, %v)", got, sc.Err())
	}
}

// startPgBouncer runs Debian's pgbouncer as the postgres user (it refuses
// root), in transaction pooling mode in front of the database, and
// returns its port.
func startPgBouncer(t *testing.T, pgHost, pgPort, dbName string) int {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		bin = "/usr/sbin/pgbouncer"
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("pgbouncer is not installed (apt-get install pgbouncer)")
		}
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal("no postgres user to run pgbouncer as (it refuses root)")
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	dir, err := os.MkdirTemp("", "sessiond-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if pgHost == "localhost" {
		pgHost = "127.0.0.1"
	}
	ini := fmt.Sprintf(`[databases]
%[1]s = host=%[2]s port=%[3]s dbname=%[1]s user=postgres password=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %[4]d
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 4
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
`, dbName, pgHost, pgPort, port)
	path := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	testbed.StartForTest(t, testbed.Server{Name: "pgbouncer", Cmd: cmd,
		Addr: fmt.Sprintf("127.0.0.1:%d", port), Probe: testbed.AcceptsConnections, Ready: hangBound}, 0)
	return port
}

// startSessiond runs the binary with the settings and returns its base
// URL once /readyz answers 200; the test's clean-up stops it.
func startSessiond(t *testing.T, bin string, settings ...string) string {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append([]string{"SESSIOND_ADDR=127.0.0.1:0", "SESSIOND_API_KEYS=" + apiKey}, settings...)
	// The bound only catches a process that never gets ready.
	p := testbed.StartForTest(t, testbed.Server{Name: "sessiond", Cmd: cmd, Ready: time.Minute}, hangBound)
	return "http://" + p.Addr
}

type session struct{ id, token string }

func signIn(t *testing.T, base, userID string) session {
	t.Helper()
	errs := make(chan string, 1)
	s := signInOrErr(base, userID, errs)
	if s.token == "" {
		t.Fatal(<-errs)
	}
	return s
}

func signInOrErr(base, userID string, errs chan<- string) session {
	req, _ := http.NewRequest(http.MethodPost, base+"/sessions", strings.NewReader(fmt.Sprintf(`{"user_id": %q}`, userID)))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		errs <- err.Error()
		return session{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		errs <- fmt.Sprintf("sign-in: %d %s", resp.StatusCode, body)
		return session{}
	}
	var out struct {
		Session struct{ ID string } `json:"session"`
		Token   string              `json:"token"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		errs <- err.Error()
		return session{}
	}
	return session{id: out.Session.ID, token: out.Token}
}

func call(base, method, path, credential string) (int, string) {
	req, _ := http.NewRequest(method, base+path, nil)
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
