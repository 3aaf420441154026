// Package ha tests sessiond on a Patroni-managed Postgres pair: two real
// sessiond binaries with the pair's multi-host URL, the primary's
// replication stalled, the primary killed under load, the standby
// promoted. It needs the Debian packages patroni, etcd-server and
// postgresql-15 and root (internal/hatest); without them it fails, it
// never skips.
package ha

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/hatest"
	"github.com/sessiond/sessiond/internal/testbed"
)

const (
	apiKey        = "sk_ha_0123456789abcdef0123"
	webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="
	// writesBackBound is the bound on the time from the kill to
	// the first acknowledged write: generous, it only catches a hang
	// (Patroni's ttl is 10 s; promotion usually takes about that).
	writesBackBound = 20 * time.Second
	// hangBound bounds every wait of the test that would otherwise be
	// for ever; it only catches a hang.
	hangBound = 30 * time.Second
)

// TestFailover is issue-level proof that a sign-out answered 2xx is final
// across a failover. With SESSIOND_HA_ASYNC=1 it runs the same against
// asynchronous replication, the control that must fail (not run by
// make test).
func TestFailover(t *testing.T) {
	synchronous := os.Getenv("SESSIOND_HA_ASYNC") != "1"
	ctx := context.Background()

	// The binary builds while the cluster starts.
	binDir := t.TempDir()
	built := make(chan error, 1)
	var bin string
	go func() {
		var err error
		bin, err = testbed.BuildSessiond(ctx, "", binDir)
		built <- err
	}()
	started := time.Now()
	cluster, err := hatest.Start(ctx, hatest.Config{Synchronous: synchronous, Database: "sessiond"})
	if cluster != nil {
		t.Cleanup(cluster.Close)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Patroni pair up (synchronous_mode %t) in %s", synchronous, time.Since(started).Round(time.Millisecond))
	if err := <-built; err != nil {
		t.Fatal(err)
	}

	hooks, err := testbed.NewReceiver(webhookSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hooks.Down)
	settings := []string{
		"SESSIOND_DB_MAX_CONNS=4",
		"SESSIOND_WEBHOOK_URLS=http://" + hooks.Addr() + "/hooks",
		"SESSIOND_WEBHOOK_SECRET=" + webhookSecret,
		"SESSIOND_WEBHOOK_BACKOFF_MIN=100ms",
		"SESSIOND_WEBHOOK_BACKOFF_MAX=1s",
		"SESSIOND_WEBHOOK_LEASE_RETRY=500ms",
		"SESSIOND_SWEEP_INTERVAL=1s",
	}
	// Each replica's pooled connections carry its name, so the test can
	// tell them apart in pg_stat_activity.
	a := startSessiond(t, bin, cluster.URL("sessiond")+"&application_name=replica-a", settings...)
	b := startSessiond(t, bin, cluster.URL("sessiond")+"&application_name=replica-b", settings...)
	replicas := []*sessiond{a, b}

	t.Run("stalled replication", func(t *testing.T) {
		stalledReplication(t, cluster, a, b)
	})
	failover(t, cluster, replicas, hooks, synchronous)
}

// stalledReplication: with the primary's walsender stopped, commits wait
// for the standby. A sign-out whose wait is cut short (statement_timeout
// or an operator's pg_cancel_backend: Postgres then reports the COMMIT
// as done, committed on the primary alone) is not acknowledged; its
// retry through the other replica is not acknowledged before the
// standby has the ending either. Meanwhile /readyz stays green although
// every pooled connection of a replica waits in a commit, and a verify
// whose activity write is due answers.
func stalledReplication(t *testing.T, cluster *hatest.Cluster, a, b *sessiond) {
	ctx := context.Background()
	primary, err := cluster.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, cluster.NodeURL(primary, "sessiond"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)

	s := a.mustSignIn(t, "user-retried")
	v := a.mustSignIn(t, "user-verifying")
	// v's activity write is due: its last activity was two minutes ago.
	if _, err := admin.Exec(ctx, `UPDATE sessions SET created_at = created_at - interval '2 minutes',
		last_active_at = last_active_at - interval '2 minutes' WHERE id = $1`, v.id); err != nil {
		t.Fatal(err)
	}

	walsenders, err := cluster.WalsenderPIDs(ctx, primary)
	if err != nil {
		t.Fatal(err)
	}
	if err := hatest.Signal(walsenders, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := hatest.Signal(walsenders, syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		}
	}
	defer resume()
	t.Logf("walsenders %v stopped", walsenders)

	// count counts the replicas' pooled connections in the given state.
	count := func(cond string) int {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name IN ('replica-a', 'replica-b') AND `+cond).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const waitingForStandby = `wait_event = 'SyncRep'`
	// waitFor waits until n connections are in the state, or until done
	// (an answer that came first) is closed; false then.
	waitFor := func(n int, cond string, done <-chan struct{}) bool {
		deadline := time.Now().Add(hangBound)
		for count(cond) < n {
			select {
			case <-done:
				return false
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("fewer than %d connections (%s) after %s", n, cond, hangBound)
			}
		}
		return true
	}

	first := goCall(a, http.MethodDelete, "/sessions/"+s.id, apiKey, nil)
	if !waitFor(1, waitingForStandby, first.done) {
		t.Errorf("first sign-out answered %d while the standby could not have its ending (the walsender is stopped)", first.status)
		return
	}
	// The wait is cut short: Postgres reports the COMMIT done, committed
	// on the primary alone, with a WARNING.
	if _, err := admin.Exec(ctx, `SELECT pg_cancel_backend(pid) FROM pg_stat_activity
		WHERE wait_event = 'SyncRep' AND application_name = 'replica-a'`); err != nil {
		t.Fatal(err)
	}
	<-first.done
	if first.status/100 == 2 || first.err != nil {
		t.Errorf("first sign-out, its wait for the standby cancelled: %d %v %s (want 503: not confirmed by the standby)", first.status, first.err, first.body)
	} else if first.status != http.StatusServiceUnavailable || !strings.Contains(string(first.body), `"unavailable"`) {
		t.Errorf("first sign-out: %d %s, want 503 unavailable", first.status, first.body)
	}

	retry := goCall(b, http.MethodDelete, "/sessions/"+s.id, apiKey, nil)
	if !waitFor(1, waitingForStandby, retry.done) {
		t.Errorf("the retried sign-out answered %d %s while the standby lacks the first attempt's ending (walsender stopped): acknowledged before replicated", retry.status, retry.body)
		return
	}

	// Every pooled connection of a is taken by a sign-in that waits: for
	// the standby, or for the lock of one that does.
	var flood []*pending
	for i := range 6 {
		flood = append(flood, goCall(a, http.MethodPost, "/sessions", apiKey, map[string]any{"user_id": fmt.Sprintf("user-flood-%d", i)}))
	}
	waitFor(4, `application_name = 'replica-a' AND state = 'active'`, nil)
	for _, r := range []*sessiond{a, b} {
		if st, body, err := r.do(http.MethodGet, "/readyz", "", nil); st != http.StatusOK {
			t.Errorf("%s /readyz while replication is stalled: %d %v %s (want 200: the primary answers)", r.name, st, err, body)
		}
	}
	if st, body, err := b.do(http.MethodGet, "/session", v.token, nil); st != http.StatusOK {
		t.Errorf("GET /session with its activity write due, standby stalled: %d %v %s (want 200: the activity write does not wait for the standby)", st, err, body)
	}

	resumedAt := time.Now()
	resume()
	<-retry.done
	if retry.status != http.StatusOK {
		t.Errorf("the retried sign-out after the standby caught up: %d %v %s, want 200", retry.status, retry.err, retry.body)
	}
	if retry.status/100 == 2 && retry.at.Before(resumedAt) {
		t.Errorf("the retried sign-out was answered before replication resumed")
	}
	for _, f := range flood {
		<-f.done
		if f.status != http.StatusCreated && f.status != http.StatusServiceUnavailable {
			t.Errorf("sign-in during the stall: %d %v %s", f.status, f.err, f.body)
		}
	}
	// The standby has the ending now (it flushed it before the retry was
	// answered; replay follows at once).
	standby := cluster.Nodes[0]
	if standby == primary {
		standby = cluster.Nodes[1]
	}
	st, err := pgx.Connect(ctx, cluster.NodeURL(standby, "sessiond"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	for deadline := time.Now().Add(hangBound); ; time.Sleep(50 * time.Millisecond) {
		var status string
		if err := st.QueryRow(ctx, `SELECT status FROM sessions WHERE id = $1`, s.id).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status != "active" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby still has %s active %s after the retry was acknowledged", s.id, hangBound)
		}
	}
}

// failover runs sign-ins, verifies and sign-outs through both replicas,
// stalls the primary's walsender for a second and kills the primary node
// while it is stalled; Patroni promotes the standby. Then every
// acknowledged sign-out's token must answer 401 on both replicas, every
// acknowledged live session 200, no answer may have been a 500, writes
// must be acknowledged again within writesBackBound, and the events
// LISTEN and the webhook lease must be on the new primary.
func failover(t *testing.T, cluster *hatest.Cluster, replicas []*sessiond, hooks *testbed.Receiver, synchronous bool) {
	ctx := context.Background()
	oldPrimary, err := cluster.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	load := &load{replicas: replicas}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load.work(w, stop)
		}()
	}
	var ready []*readiness
	for _, r := range replicas {
		rd := &readiness{r: r}
		ready = append(ready, rd)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd.poll(stop)
		}()
	}
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()

	time.Sleep(3 * time.Second)
	if err := cluster.WaitReplicating(ctx, hangBound); err != nil {
		t.Fatal(err)
	}
	walsenders, err := cluster.WalsenderPIDs(ctx, oldPrimary)
	if err != nil {
		t.Fatal(err)
	}
	if err := hatest.Signal(walsenders, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	killedAt := time.Now()
	if err := oldPrimary.Kill(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", oldPrimary.PGPort), time.Second); err == nil {
		c.Close()
		t.Fatalf("the killed primary's Postgres still accepts connections")
	}
	t.Logf("killed %s (Patroni and its postmaster tree) after a 1 s replication stall", oldPrimary.Name)

	var promotedAfter time.Duration
	for deadline := time.Now().Add(hangBound + writesBackBound); ; time.Sleep(100 * time.Millisecond) {
		if n, err := cluster.Leader(ctx); err == nil && n != oldPrimary {
			promotedAfter = time.Since(killedAt)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new leader after the kill\n%s", cluster.Logs())
		}
	}
	var writesBack time.Duration
	for deadline := time.Now().Add(hangBound + writesBackBound); ; time.Sleep(50 * time.Millisecond) {
		if at, ok := load.firstWriteAfter(killedAt); ok {
			writesBack = at.Sub(killedAt)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write acknowledged within %s of the kill", hangBound+writesBackBound)
		}
	}
	time.Sleep(3 * time.Second) // load on the new primary
	stopLoad()

	if writesBack > writesBackBound {
		t.Errorf("writes acknowledged again %s after the kill, want within %s", writesBack, writesBackBound)
	}
	fig := load.figures(killedAt)
	for _, u := range fig.unexpected {
		t.Errorf("unexpected answer: %s", u)
	}

	// Every acknowledged sign-out holds on both replicas; every
	// acknowledged session not signed out verifies.
	lost, lostSignIns := 0, 0
	for _, tok := range fig.signedOut {
		for _, r := range replicas {
			if st, _, err := r.do(http.MethodGet, "/session", tok, nil); st != http.StatusUnauthorized {
				lost++
				if lost <= 5 {
					t.Errorf("a token whose sign-out was acknowledged answers %d %v on %s after the failover", st, err, r.name)
				}
				break
			}
		}
	}
	for _, tok := range fig.live {
		for _, r := range replicas {
			if st, _, err := r.do(http.MethodGet, "/session", tok, nil); st != http.StatusOK {
				lostSignIns++
				if lostSignIns <= 5 {
					t.Errorf("an acknowledged live session answers %d %v on %s after the promotion", st, err, r.name)
				}
				break
			}
		}
	}
	var red []string
	var maxRed time.Duration
	for _, rd := range ready {
		d := rd.longestRed()
		maxRed = max(maxRed, d)
		red = append(red, fmt.Sprintf("%s %s", rd.r.name, d.Round(10*time.Millisecond)))
		if st, _, _ := rd.r.do(http.MethodGet, "/readyz", "", nil); st != http.StatusOK {
			t.Errorf("%s /readyz after the failover: %d", rd.r.name, st)
		}
	}
	figures := fmt.Sprintf("HA failover figures: synchronous=%t acknowledged_signouts=%d lost=%d acknowledged_live_sessions=%d lost=%d "+
		"promotion_after=%s writes_back_after=%s answers=%d 503s=%d 500s=%d readyz_red_longest=%s (%s)",
		synchronous, len(fig.signedOut), lost, len(fig.live), lostSignIns,
		promotedAfter.Round(10*time.Millisecond), writesBack.Round(10*time.Millisecond), fig.answers, fig.unavailable, fig.internal,
		maxRed.Round(10*time.Millisecond), strings.Join(red, ", "))
	t.Log(figures)
	// go test shows a passing package's log only with -v; CI names a file
	// to collect the figures in and prints them after the run.
	if path := os.Getenv("SESSIOND_HA_FIGURES"); path != "" {
		if err := os.WriteFile(path, []byte(figures+"\n"), 0o644); err != nil {
			t.Errorf("writing the figures: %v", err)
		}
	}
	if fig.internal > 0 {
		t.Errorf("%d answers were 500", fig.internal)
	}
	if n := badUnavailable.Load(); n > 0 {
		t.Errorf("%d answers were 503 without Retry-After or without the code unavailable", n)
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged sign-outs lost in the failover", lost, len(fig.signedOut))
	}
	if len(fig.signedOut) == 0 || len(fig.live) == 0 {
		t.Errorf("the load acknowledged %d sign-outs and %d live sign-ins: nothing was tested", len(fig.signedOut), len(fig.live))
	}

	// The events LISTEN and the webhook lease moved to the new primary
	// without a restart, and a change made there reaches the webhook.
	newPrimary, err := cluster.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, cluster.NodeURL(newPrimary, "sessiond"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for deadline := time.Now().Add(hangBound); ; time.Sleep(100 * time.Millisecond) {
		var listeners, leases int
		if err := admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE application_name = 'sessiond-events-listener'),
			count(*) FILTER (WHERE application_name = 'sessiond-webhook') FROM pg_stat_activity`).Scan(&listeners, &leases); err != nil {
			t.Fatal(err)
		}
		if listeners == len(replicas) && leases >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("on the new primary after %s: %d LISTEN connections (want %d), %d webhook leases (want 1)", hangBound, listeners, len(replicas), leases)
		}
	}
	after := replicas[1].mustSignIn(t, "user-after-failover")
	arrived := hooks.WaitFor(hangBound, func(accepted []testbed.Delivery) bool {
		return slices.ContainsFunc(accepted, func(d testbed.Delivery) bool { return d.SessionID == after.id })
	})
	if !arrived {
		t.Errorf("no webhook for %s, created after the failover, within %s", after.id, hangBound)
	}
}

// sessiond is one real sessiond process.
type sessiond struct {
	name string
	base string
}

// startSessiond runs the binary against url with the settings and returns
// once /readyz answers 200; the test's clean-up stops it.
func startSessiond(t *testing.T, bin, url string, settings ...string) *sessiond {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append([]string{
		"SESSIOND_DATABASE_URL=" + url,
		"SESSIOND_ADDR=127.0.0.1:0",
		"SESSIOND_API_KEYS=" + apiKey,
		"SESSIOND_ACCESS_LOG=off",
	}, settings...)
	// The bound only catches a process that never gets ready.
	p := testbed.StartForTest(t, testbed.Server{Name: "sessiond", Cmd: cmd, Ready: time.Minute}, 20*time.Second)
	return &sessiond{name: "sessiond@" + p.Addr, base: "http://" + p.Addr}
}

var httpClient = &http.Client{Timeout: 20 * time.Second}

func (s *sessiond) do(method, path, credential string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusServiceUnavailable &&
		(resp.Header.Get("Retry-After") == "" || !bytes.Contains(b, []byte(`"code":"unavailable"`))) {
		badUnavailable.Add(1)
	}
	return resp.StatusCode, b, err
}

// badUnavailable counts 503 answers without Retry-After or whose problem
// is not "unavailable".
var badUnavailable atomic.Int64

type signedIn struct{ id, token string }

func (s *sessiond) signIn(userID string) (signedIn, int, error) {
	st, body, err := s.do(http.MethodPost, "/sessions", apiKey, map[string]any{"user_id": userID})
	if err != nil || st != http.StatusCreated {
		return signedIn{}, st, err
	}
	var out struct {
		Session struct{ ID string } `json:"session"`
		Token   string              `json:"token"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return signedIn{}, st, err
	}
	return signedIn{id: out.Session.ID, token: out.Token}, st, nil
}

func (s *sessiond) mustSignIn(t *testing.T, userID string) signedIn {
	t.Helper()
	si, st, err := s.signIn(userID)
	if err != nil || st != http.StatusCreated {
		t.Fatalf("sign-in on %s: %d %v", s.name, st, err)
	}
	return si
}

// pending is a request under way; done closes when it has answered.
type pending struct {
	done   chan struct{}
	status int
	body   []byte
	err    error
	at     time.Time
}

func goCall(s *sessiond, method, path, credential string, body any) *pending {
	p := &pending{done: make(chan struct{})}
	go func() {
		p.status, p.body, p.err = s.do(method, path, credential, body)
		p.at = time.Now()
		close(p.done)
	}()
	return p
}

// load is the traffic of the failover: each round signs a session in
// through one replica and verifies it through the other; every other
// session is put aside to be signed out some 20 rounds later, so that
// the sign-outs around the kill end sessions created well before it.
type load struct {
	replicas []*sessiond
	mu       sync.Mutex
	calls    []call
	rounds   atomic.Int64
}

// signOutDelay is how many of a worker's sessions wait to be signed out.
const signOutDelay = 20

type call struct {
	op           string // sign-in, verify, sign-out
	start, end   time.Time
	status       int
	err          error
	token        string
	signOutLater bool
	acknowledged bool
}

func (l *load) record(c call) {
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
}

func (l *load) work(w int, stop <-chan struct{}) {
	var queue []string
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		n := l.rounds.Add(1)
		in, out := l.replicas[(w+i)%2], l.replicas[(w+i+1)%2]
		start := time.Now()
		si, st, err := in.signIn(fmt.Sprintf("user-load-%d", n))
		later := n%2 == 0 && st == http.StatusCreated
		l.record(call{op: "sign-in", start: start, end: time.Now(), status: st, err: err, token: si.token,
			acknowledged: st == http.StatusCreated, signOutLater: later})
		if st != http.StatusCreated {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if later {
			queue = append(queue, si.token)
		}
		start = time.Now()
		st, _, err = out.do(http.MethodGet, "/session", si.token, nil)
		l.record(call{op: "verify", start: start, end: time.Now(), status: st, err: err, token: si.token})
		if len(queue) <= signOutDelay {
			continue
		}
		token := queue[0]
		queue = queue[1:]
		start = time.Now()
		st, _, err = in.do(http.MethodDelete, "/session", token, nil)
		l.record(call{op: "sign-out", start: start, end: time.Now(), status: st, err: err, token: token,
			acknowledged: st == http.StatusOK})
	}
}

// firstWriteAfter is when the first write that started after t was
// acknowledged.
func (l *load) firstWriteAfter(t time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, c := range l.calls {
		if c.op != "verify" && c.acknowledged && c.start.After(t) && (first.IsZero() || c.end.Before(first)) {
			first = c.end
		}
	}
	return first, !first.IsZero()
}

type figures struct {
	answers, unavailable, internal int
	signedOut, live                []string
	unexpected                     []string
}

// want is what each operation may answer: its success, or 503 while no
// primary answers. A verify of a session whose sign-in was acknowledged
// answering 401 is a lost sign-in.
var want = map[string]int{"sign-in": http.StatusCreated, "verify": http.StatusOK, "sign-out": http.StatusOK}

func (l *load) figures(killedAt time.Time) figures {
	l.mu.Lock()
	defer l.mu.Unlock()
	var f figures
	signOutLater := map[string]bool{}
	for _, c := range l.calls {
		f.answers++
		switch {
		case c.err != nil:
			f.unexpected = append(f.unexpected, fmt.Sprintf("%s: %v", c.op, c.err))
		case c.status == http.StatusServiceUnavailable:
			f.unavailable++
		case c.status >= 500:
			f.internal++
		case c.status != want[c.op]:
			f.unexpected = append(f.unexpected, fmt.Sprintf("%s answered %d at kill%+v", c.op, c.status, c.start.Sub(killedAt).Round(time.Millisecond)))
		}
		if c.op == "sign-in" && c.signOutLater {
			signOutLater[c.token] = true
		}
		if c.op == "sign-out" && c.acknowledged {
			f.signedOut = append(f.signedOut, c.token)
		}
	}
	for _, c := range l.calls {
		if c.op == "sign-in" && c.acknowledged && !signOutLater[c.token] {
			f.live = append(f.live, c.token)
		}
	}
	return f
}

// readiness polls one replica's /readyz every 100 ms.
type readiness struct {
	r      *sessiond
	mu     sync.Mutex
	probes []probe
}

type probe struct {
	at time.Time
	ok bool
}

func (rd *readiness) poll(stop <-chan struct{}) {
	for {
		st, _, _ := rd.r.do(http.MethodGet, "/readyz", "", nil)
		rd.mu.Lock()
		rd.probes = append(rd.probes, probe{at: time.Now(), ok: st == http.StatusOK})
		rd.mu.Unlock()
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// longestRed is the longest stretch from the first red probe to the next
// green one.
func (rd *readiness) longestRed() time.Duration {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	var longest time.Duration
	var since time.Time
	for _, p := range rd.probes {
		switch {
		case !p.ok && since.IsZero():
			since = p.at
		case p.ok && !since.IsZero():
			longest = max(longest, p.at.Sub(since))
			since = time.Time{}
		}
	}
	if !since.IsZero() && len(rd.probes) > 0 {
		longest = max(longest, rd.probes[len(rd.probes)-1].at.Sub(since))
	}
	return longest
}
