package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/internal/db"
	"github.com/sessiond/sessiond/internal/sessions"
	"github.com/sessiond/sessiond/internal/testbed"
)

const (
	// outageRequestTimeout is the service's SESSIOND_REQUEST_TIMEOUT in the
	// outage test: the bound on one request's work, database included.
	outageRequestTimeout = 2 * time.Second
	// answerSlack is what an answer may take beyond the request timeout
	// (writing the 503, a loaded 2-core machine under -race).
	answerSlack = 2 * time.Second
	// recoveryBound: within it of Postgres answering again, the service
	// serves again, without a restart (docs/testing.md, "What the tests cover").
	recoveryBound = 5 * time.Second
)

// TestDatabaseOutage runs the real service in-process against a Postgres
// container of its own and takes the database away under load, twice:
// stopped (connections refused) and frozen (docker pause: connections
// hang, so only the service's own timeouts bound the answers). During each
// outage every request must answer 503 unavailable problem+json with
// Retry-After within the request timeout plus slack, /readyz must fail and
// /healthz stay 200; within 5 s of Postgres answering again the service
// must serve again; and every sign-out that was answered 2xx must still be
// ended afterwards.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// The container publishes 5432 on a port picked here: with a random
	// published port, Docker may pick a new one when the container starts
	// again, and the service would never find its database.
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	pg, err := testbed.StartPostgres(ctx, testbed.PostgresConfig{Database: "sessiond", Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Terminate() })
	// A test that fails while the database is frozen must not leave it
	// so: the container could not be removed.
	t.Cleanup(func() { _ = exec.Command("docker", "unpause", pg.Container.GetContainerID()).Run() })
	dbURL := fmt.Sprintf("postgres://postgres:postgres@127.0.0.1:%d/sessiond?sslmode=disable", port)
	mig, err := db.NewMigrator(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	err = mig.Up()
	_ = mig.Close()
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}

	// The service as cmd/sessiond wires it: the default pool size, no
	// retries anywhere but the store's own.
	store, err := db.Open(ctx, dbURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	svc := sessions.NewService(store, sessions.Config{
		Mode: sessions.ModeSingle, Lifetime: 168 * time.Hour, Retention: 720 * time.Hour,
	})
	handler, err := api.New(svc, api.Config{
		APIKeys:        []string{apiKey},
		CookieSecure:   true,
		RequestTimeout: outageRequestTimeout,
		Ready:          store.Ping,
		OpenAPI:        sessiond.OpenAPI,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 32
	t.Cleanup(transport.CloseIdleConnections)
	// The client's own timeout only keeps a hanging service from hanging
	// the test: an answer that slow fails the latency bound anyway.
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	s := &outageService{url: srv.URL, http: client}

	docker := func(args ...string) func() error {
		return func() error {
			out, err := exec.Command("docker", append(args, pg.Container.GetContainerID())...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out)
			}
			return nil
		}
	}
	stopTimeout := 10 * time.Second
	episodes := []struct {
		name     string
		down, up func() error
		// hold is how long the database stays away: long enough that
		// requests start and end inside the outage, even those that
		// wait for the request timeout.
		hold time.Duration
	}{
		{"stopped", func() error { return pg.Container.Stop(ctx, &stopTimeout) }, func() error { return pg.Container.Start(ctx) }, 1500 * time.Millisecond},
		{"frozen", docker("pause"), docker("unpause"), 2*outageRequestTimeout + time.Second},
	}
	for _, ep := range episodes {
		t.Run(ep.name, func(t *testing.T) {
			runOutage(t, s, dbURL, ep.down, ep.up, ep.hold)
		})
	}
}

// outageService is the service under test, seen from its clients.
type outageService struct {
	url  string
	http *http.Client
}

// call is one request and how it was answered.
type call struct {
	op         string
	start, end time.Time
	status     int
	code       string // the problem's code, if the answer is a problem
	problem    bool   // Content-Type application/problem+json
	retryAfter string
	token      string // of the sign-in's answer
	err        error
}

func (c call) took() time.Duration { return c.end.Sub(c.start) }

// unavailable reports whether c is the documented answer while the
// database is away: 503 `unavailable` problem+json with a Retry-After.
func (c call) unavailable() bool {
	n, err := strconv.Atoi(c.retryAfter)
	return c.err == nil && c.status == http.StatusServiceUnavailable && c.code == "unavailable" &&
		c.problem && err == nil && n > 0
}

func (c call) String() string {
	if c.err != nil {
		return fmt.Sprintf("%s after %s: %v", c.op, c.took().Round(time.Millisecond), c.err)
	}
	return fmt.Sprintf("%s after %s: %d %s (problem+json %t, Retry-After %q)",
		c.op, c.took().Round(time.Millisecond), c.status, c.code, c.problem, c.retryAfter)
}

func (s *outageService) send(op, method, path, credential string, body any) call {
	c := call{op: op, start: time.Now()}
	defer func() { c.end = time.Now() }()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		c.err = err
		return c
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		c.err = err
		c.end = time.Now()
		return c
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	c.end = time.Now()
	if err != nil {
		c.err = err
		return c
	}
	c.status = resp.StatusCode
	c.retryAfter = resp.Header.Get("Retry-After")
	c.problem = resp.Header.Get("Content-Type") == "application/problem+json"
	var answer struct {
		Code  string `json:"code"`
		Token string `json:"token"`
	}
	_ = json.Unmarshal(b, &answer)
	c.code, c.token = answer.Code, answer.Token
	return c
}

func (s *outageService) signIn(userID string) call {
	return s.send("POST /sessions", http.MethodPost, "/sessions", apiKey, map[string]string{"user_id": userID})
}

func (s *outageService) whoAmI(token string) call {
	return s.send("GET /session", http.MethodGet, "/session", token, nil)
}

func (s *outageService) signOut(token string) call {
	return s.send("DELETE /session", http.MethodDelete, "/session", token, nil)
}

// wantOf is the status each operation of the load answers when the
// database is there.
var wantOf = map[string]int{
	"POST /sessions":  http.StatusCreated,
	"GET /session":    http.StatusOK,
	"DELETE /session": http.StatusOK,
	"GET /readyz":     http.StatusOK,
	"GET /healthz":    http.StatusOK,
}

func (c call) ok() bool { return c.err == nil && c.status == wantOf[c.op] }

// outageLoad is what the load workers did.
type outageLoad struct {
	mu        sync.Mutex
	calls     []call
	signedOut []string // tokens whose sign-out answered 2xx
	active    []string // tokens signed in (201) and never sent to sign-out
}

func (l *outageLoad) record(c call) {
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
}

// work signs users in, asks who they are with a token known to be active,
// and signs the oldest out, until ctx ends. A token whose sign-out was not
// answered 2xx is dropped: whether it ended is unknown.
func (l *outageLoad) work(ctx context.Context, s *outageService, worker int) {
	var tokens []string
	for n := 0; ctx.Err() == nil; n++ {
		c := s.signIn(fmt.Sprintf("user-%d-%d", worker, n))
		l.record(c)
		if c.ok() {
			tokens = append(tokens, c.token)
		}
		if len(tokens) > 0 {
			l.record(s.whoAmI(tokens[len(tokens)-1-n%len(tokens)]))
		}
		if len(tokens) > 2 {
			token := tokens[0]
			tokens = tokens[1:]
			c := s.signOut(token)
			l.record(c)
			if c.err == nil && c.status/100 == 2 {
				l.mu.Lock()
				l.signedOut = append(l.signedOut, token)
				l.mu.Unlock()
			}
		}
		time.Sleep(2 * time.Millisecond) // load, not a flood: other tests share the two cores
	}
	l.mu.Lock()
	l.active = append(l.active, tokens...)
	l.mu.Unlock()
}

// runOutage takes the database down under load with down, brings it back
// with up, and checks every answer of the episode.
func runOutage(t *testing.T, s *outageService, dbURL string, down, up func() error, hold time.Duration) {
	const workers = 6
	ctx := context.Background()
	if c := s.send("GET /readyz", http.MethodGet, "/readyz", "", nil); !c.ok() {
		t.Fatalf("before the outage: %v", c)
	}
	load := &outageLoad{}
	var wg, probeWG sync.WaitGroup
	defer probeWG.Wait()
	defer wg.Wait()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	for w := range workers {
		wg.Go(func() { load.work(loadCtx, s, w) })
	}
	// The probe asks /healthz and /readyz every 50 ms for the whole
	// episode.
	probes := &outageLoad{}
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	probeWG.Go(func() {
		for probeCtx.Err() == nil {
			probes.record(s.send("GET /healthz", http.MethodGet, "/healthz", "", nil))
			probes.record(s.send("GET /readyz", http.MethodGet, "/readyz", "", nil))
			time.Sleep(50 * time.Millisecond)
		}
	})

	time.Sleep(time.Second)
	downStart := time.Now()
	if err := down(); err != nil {
		t.Fatal(err)
	}
	downDone := time.Now()
	time.Sleep(hold)
	upStart := time.Now()
	upErr := make(chan error, 1)
	go func() { upErr <- up() }()
	pgBack, err := waitForPostgres(ctx, dbURL, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-upErr; err != nil {
		t.Fatal(err)
	}
	// Wait until a sign-in answers again (at most a while past the
	// bound, to report how long it took), then keep the load on for a
	// second to see that the service stays up.
	var firstServed time.Time
	for deadline := pgBack.Add(3 * recoveryBound); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c := s.signIn("probe"); c.ok() {
			firstServed = c.end
			break
		}
	}
	time.Sleep(time.Second)
	stopLoad()
	wg.Wait()
	stopProbe()
	probeWG.Wait()
	if firstServed.IsZero() {
		t.Fatalf("the service did not serve again within %s of Postgres answering", 3*recoveryBound)
	}

	t.Logf("database down in %s, back (answering) %s after up began; %d requests under load, %d probes",
		downDone.Sub(downStart).Round(time.Millisecond), pgBack.Sub(upStart).Round(time.Millisecond),
		len(load.calls), len(probes.calls))

	all := append(slices.Clone(load.calls), probes.calls...)
	slices.SortFunc(all, func(a, b call) int { return a.start.Compare(b.start) })

	// No answer but the expected one or 503 unavailable, ever; none slower
	// than the request timeout plus slack.
	bound := outageRequestTimeout + answerSlack
	bad, slow := 0, 0
	for _, c := range all {
		if !c.ok() && !c.unavailable() {
			if bad++; bad <= 10 {
				t.Errorf("%s +%s: %v; want %d or 503 unavailable problem+json with Retry-After",
					c.op, c.start.Sub(downStart).Round(time.Millisecond), c, wantOf[c.op])
			}
		}
		if c.op == "GET /healthz" && !c.ok() {
			t.Errorf("/healthz must stay 200: %v", c)
		}
		if c.took() > bound {
			if slow++; slow <= 10 {
				t.Errorf("%s +%s took %s, more than the request timeout %s plus %s",
					c.op, c.start.Sub(downStart).Round(time.Millisecond), c.took().Round(time.Millisecond), outageRequestTimeout, answerSlack)
			}
		}
	}
	if bad > 10 || slow > 10 {
		t.Errorf("%d wrong answers, %d too slow in all", bad, slow)
	}

	// While the database was away, every request that touches it was 503.
	var during []time.Duration
	readyzDown := 0
	for _, c := range all {
		if c.start.Before(downDone) || c.end.After(upStart) || c.op == "GET /healthz" {
			continue
		}
		if c.ok() {
			t.Errorf("%s answered %d while the database was down", c.op, c.status)
		}
		if c.unavailable() {
			during = append(during, c.took())
			if c.op == "GET /readyz" {
				readyzDown++
			}
		}
	}
	if len(during) == 0 || readyzDown == 0 {
		t.Errorf("no 503 seen during the outage (%d answers, %d from /readyz): the load did not reach the service", len(during), readyzDown)
	} else {
		slices.Sort(during)
		t.Logf("during the outage: %d answers 503 unavailable; latency p50 %s, p99 %s, max %s (bound %s)",
			len(during), during[len(during)/2].Round(time.Microsecond),
			during[len(during)*99/100].Round(time.Microsecond), during[len(during)-1].Round(time.Microsecond), bound)
	}

	// While Postgres was coming back, for the log.
	var coming struct {
		n, ok, unavailable int
		slowest            time.Duration
	}
	for _, c := range all {
		if c.start.After(upStart) && c.start.Before(pgBack) {
			coming.n++
			if c.ok() {
				coming.ok++
			} else if c.unavailable() {
				coming.unavailable++
			}
			coming.slowest = max(coming.slowest, c.took())
		}
	}
	t.Logf("while Postgres was coming back: %d requests started, %d answered as usual, %d 503 unavailable, slowest %s",
		coming.n, coming.ok, coming.unavailable, coming.slowest.Round(time.Millisecond))

	// Recovery: from Postgres answering again to the end of the first
	// request after which every request was answered as it should be.
	var lastFailed time.Time
	for _, c := range all {
		if !c.ok() && c.start.After(lastFailed) {
			lastFailed = c.start
		}
	}
	var serving time.Time
	for _, c := range all {
		if c.ok() && c.start.After(lastFailed) && (serving.IsZero() || c.end.Before(serving)) {
			serving = c.end
		}
	}
	if serving.IsZero() {
		t.Fatalf("no request succeeded after the last failure at +%s", lastFailed.Sub(downStart).Round(time.Millisecond))
	}
	recovery := max(serving.Sub(pgBack), 0)
	t.Logf("recovery: serving again %s after Postgres answered (the probe's first sign-in answered after %s; the last failed request started %s before)",
		recovery.Round(time.Millisecond), firstServed.Sub(pgBack).Round(time.Millisecond), pgBack.Sub(lastFailed).Round(time.Millisecond))
	if recovery > recoveryBound {
		t.Errorf("the service served again %s after Postgres answered; want within %s", recovery.Round(time.Millisecond), recoveryBound)
	}

	// Every sign-out answered 2xx, before, during or after the outage,
	// left its session ended; every sign-in answered 201 and not sent to
	// sign-out is still active.
	for _, token := range load.signedOut {
		if c := s.whoAmI(token); c.err != nil || c.status != http.StatusUnauthorized {
			t.Errorf("a session whose sign-out answered 2xx: GET /session = %v, want 401", c)
		}
	}
	for _, token := range load.active {
		if c := s.whoAmI(token); !c.ok() {
			t.Errorf("a session whose sign-in answered 201 and that was never signed out: GET /session = %v, want 200", c)
		}
	}
	t.Logf("after recovery: %d signed-out sessions answer 401, %d signed-in sessions answer 200",
		len(load.signedOut), len(load.active))
}

// waitForPostgres returns when a new connection to url answers a query,
// or fails after limit.
func waitForPostgres(ctx context.Context, url string, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		err := func() error {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			_, err = conn.Exec(ctx, "SELECT 1")
			return err
		}()
		if err == nil {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("postgres did not answer within %s: %w", limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
