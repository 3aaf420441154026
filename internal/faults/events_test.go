package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/events"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/internal/testbed"
)

// webhookSecret signs every test webhook (the base64 of 32 bytes).
const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="

// receiver is the shared webhook endpoint (every signature verified with
// the Standard Webhooks reference library) with what these tests make it
// do: answer another status, answer late, hold deliveries, refuse one.
type receiver struct {
	*testbed.Receiver
	t *testing.T

	mu     sync.Mutex
	answer int           // status to answer; 0 means 204
	delay  time.Duration // before answering
	refuse string        // an event whose user ID holds it is answered 403 (a WAF's refusal), if set
	gate   chan struct{} // if set, each request waits for a value from it (or its close)
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	var err error
	if r.Receiver, err = testbed.NewReceiver(webhookSecret, r.respond); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Down)
	return r
}

func (r *receiver) URL() string { return "http://" + r.Addr() + "/hooks/sessiond" }

// up starts serving again, on the same address.
func (r *receiver) up() {
	if err := r.Up(); err != nil {
		r.t.Fatal(err)
	}
}

// respond answers a delivery whose signature verified.
func (r *receiver) respond(id string, body []byte) int {
	r.mu.Lock()
	answer, delay, refuse, gate := r.answer, r.delay, r.refuse, r.gate
	r.mu.Unlock()
	if gate != nil {
		<-gate
	}
	time.Sleep(delay)
	if answer != 0 {
		return answer
	}
	var p struct {
		Type string `json:"type"`
		Data struct {
			Session struct {
				ID     string
				UserID string `json:"user_id"`
			} `json:"session"`
		} `json:"data"`
	}
	_, err := strconv.ParseInt(strings.TrimPrefix(id, "evt_"), 10, 64)
	if json.Unmarshal(body, &p) != nil || err != nil || !strings.HasPrefix(p.Type, "session.") || p.Data.Session.ID == "" {
		return http.StatusBadRequest
	}
	if refuse != "" && strings.Contains(p.Data.Session.UserID, refuse) {
		return http.StatusForbidden // refused by policy
	}
	return http.StatusNoContent
}

// ids lists the Seq of every accepted delivery, in arrival order.
func (r *receiver) ids() []int64 { return r.seqs(r.Accepted()) }

// seqs lists the Seq of each delivery.
func (r *receiver) seqs(deliveries []testbed.Delivery) []int64 {
	var ids []int64
	for _, d := range deliveries {
		seq, err := strconv.ParseInt(strings.TrimPrefix(d.ID, "evt_"), 10, 64)
		if err != nil {
			r.t.Errorf("accepted delivery %q has no Seq", d.ID)
		}
		ids = append(ids, seq)
	}
	return ids
}

// hold makes every request wait at the gate until release lets it
// through; it returns the gate.
func (r *receiver) hold() chan struct{} {
	gate := make(chan struct{})
	r.mu.Lock()
	r.gate = gate
	r.mu.Unlock()
	return gate
}

// accepted is how many deliveries the receiver answered 2xx.
func (r *receiver) accepted() int { return len(r.Accepted()) }

func (r *receiver) set(answer int, delay time.Duration) {
	r.mu.Lock()
	r.answer, r.delay = answer, delay
	r.mu.Unlock()
}

// committedSeqs lists the Seq of every event in the database, in order.
func committedSeqs(t *testing.T, dbURL string) []int64 {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(context.Background(), `SELECT c.first_seq + (e.id - c.first_id) AS seq
		FROM session_events e JOIN session_event_commits c ON c.txn = e.txn ORDER BY seq`)
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// waitAllDelivered waits until the receiver accepted every committed
// event, then checks that they came in commit order (first arrivals) and
// reports duplicates. The bound only catches a hang.
func (r *receiver) waitAllDelivered(t *testing.T, dbURL string, within time.Duration) (duplicates int) {
	t.Helper()
	want := committedSeqs(t, dbURL)
	deadline := time.Now().Add(within)
	for {
		ids := r.ids()
		bad := r.BadSignatures()
		if bad > 0 {
			t.Fatalf("%d deliveries failed signature verification", bad)
		}
		seen := map[int64]bool{}
		var first []int64
		for _, id := range ids {
			if seen[id] {
				duplicates++
				continue
			}
			seen[id] = true
			first = append(first, id)
		}
		if len(first) >= len(want) {
			if !slices.Equal(first, want) {
				t.Fatalf("deliveries out of commit order or unknown:\n got %v\nwant %v", first, want)
			}
			return duplicates
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d of %d events delivered", within, len(first), len(want))
		}
		duplicates = 0
		time.Sleep(50 * time.Millisecond)
	}
}

// changes makes n sign-ins and n/2 sign-outs through the sessiond at addr.
func changes(t *testing.T, addr, prefix string, n int) {
	t.Helper()
	for i := range n {
		status, body := request(t, addr, http.MethodPost, "/sessions", apiKey, fmt.Sprintf(`{"user_id":"%s-%d"}`, prefix, i))
		if status != http.StatusCreated {
			t.Fatalf("sign-in: %d %s", status, body)
		}
		if i%2 == 0 {
			var a struct{ Token string }
			_ = json.Unmarshal(body, &a)
			if status, body := request(t, addr, http.MethodDelete, "/session", a.Token, ""); status != http.StatusOK {
				t.Fatalf("sign-out: %d %s", status, body)
			}
		}
	}
}

var plainClient = &http.Client{Timeout: 30 * time.Second}

func request(t *testing.T, addr, method, path, credential, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func webhookSettings(url string, extra ...string) []string {
	return append([]string{
		"SESSIOND_WEBHOOK_URLS=" + url,
		"SESSIOND_WEBHOOK_SECRET=" + webhookSecret,
		"SESSIOND_WEBHOOK_BACKOFF_MIN=50ms",
		"SESSIOND_WEBHOOK_BACKOFF_MAX=400ms",
		"SESSIOND_WEBHOOK_LEASE_RETRY=200ms",
	}, extra...)
}

// TestWebhooksThroughOutageAndCrash: the real binary delivers to a real
// receiver that verifies every signature with the Standard Webhooks
// library. The receiver goes down for 5 s (the backoff settings are
// injected small, so 5 s stands in for a 30 s outage: many failed
// attempts, several backoff steps) while changes go on; then sessiond is
// SIGKILLed in the middle of delivering a backlog (built deterministically:
// the receiver holds deliveries until it is committed) and started again.
// Every event arrives, in commit order; duplicates are counted.
func TestWebhooksThroughOutageAndCrash(t *testing.T) {
	t.Parallel()
	bin := buildSessiond(t, t.TempDir())
	dbURL := pgtest.NewDatabase(t)
	recv := newReceiver(t)
	// The timeout is long enough for a delivery held at the receiver's
	// gate while the backlog below is committed.
	p := startSessiond(t, bin, dbURL, webhookSettings(recv.URL(), "SESSIOND_WEBHOOK_TIMEOUT=60s")...)

	changes(t, p.Addr, "before", 50)
	if d := recv.waitAllDelivered(t, dbURL, 30*time.Second); d != 0 {
		t.Errorf("%d duplicates in normal operation", d)
	}

	recv.Down()
	outage := time.Now()
	changes(t, p.Addr, "during", 50)
	time.Sleep(5*time.Second - time.Since(outage))
	recv.up()
	d := recv.waitAllDelivered(t, dbURL, 30*time.Second)
	t.Logf("receiver down for 5 s: every event arrived in order after it came back, %d duplicates", d)

	// A backlog, built whatever the machine's speed: the receiver holds
	// every delivery until the backlog is committed, then lets them
	// through one at a time, and the process is killed once a part of
	// the backlog is delivered, with the next delivery held at the gate.
	const backlog, deliveredBeforeKill = 100, 20
	gate := recv.hold()
	base := recv.accepted()
	changes(t, p.Addr, "backlog", backlog)
	for range deliveredBeforeKill {
		gate <- struct{}{} // taken by the delivery the receiver holds
	}
	released := func(accepted []testbed.Delivery) bool { return len(accepted) >= base+deliveredBeforeKill }
	if !recv.WaitFor(30*time.Second, released) { // the bound only catches a hang
		t.Fatalf("%d of the %d released deliveries arrived", recv.accepted()-base, deliveredBeforeKill)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.Exited
	before := recv.accepted()
	if total := len(committedSeqs(t, dbURL)); before >= total {
		t.Fatalf("%d of %d events delivered before the kill; the receiver held the rest, so this cannot be", before, total)
	}
	close(gate) // the delivery the dead process left at the gate, and all later ones
	p2 := startSessiond(t, bin, dbURL, webhookSettings(recv.URL(), "SESSIOND_WEBHOOK_TIMEOUT=60s")...)
	changes(t, p2.Addr, "after", 10)
	d = recv.waitAllDelivered(t, dbURL, 60*time.Second)
	t.Logf("SIGKILL mid-delivery and restart: nothing lost, in order; %d duplicates in all (at least once)", d)
}

// TestWebhooksTwoReplicasDeliverOnce: two sessiond processes on one
// database and one URL: each event arrives exactly once, in commit order,
// whichever replica committed it. Then the delivering replica is killed
// and the other takes over.
func TestWebhooksTwoReplicasDeliverOnce(t *testing.T) {
	t.Parallel()
	bin := buildSessiond(t, t.TempDir())
	dbURL := pgtest.NewDatabase(t)
	recv := newReceiver(t)
	a := startSessiond(t, bin, dbURL, webhookSettings(recv.URL())...)
	b := startSessiond(t, bin, dbURL, webhookSettings(recv.URL())...)
	var wg sync.WaitGroup
	for i, p := range []*sessiondProcess{a, b} {
		wg.Go(func() { changes(t, p.Addr, fmt.Sprintf("replica%d", i), 100) })
	}
	wg.Wait()
	if d := recv.waitAllDelivered(t, dbURL, 60*time.Second); d != 0 {
		t.Errorf("%d duplicates with two replicas in normal operation, want 0", d)
	}
	// Kill one replica, change through the other, then restart the
	// killed one and kill the other: one of the two kills hits the
	// replica holding the URL's lease, and the survivor takes over.
	kill := func(p *sessiondProcess) {
		if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.Exited
	}
	kill(a)
	changes(t, b.Addr, "after-kill-a", 20)
	recv.waitAllDelivered(t, dbURL, 60*time.Second)
	a2 := startSessiond(t, bin, dbURL, webhookSettings(recv.URL())...)
	kill(b)
	changes(t, a2.Addr, "after-kill-b", 20)
	d := recv.waitAllDelivered(t, dbURL, 60*time.Second)
	t.Logf("two replicas: each event once; after either was killed the other delivered the rest (%d duplicates in all)", d)
}

// TestWebhooksReceiverFailingForever: a receiver that answers 500 to
// everything. Attempts for an event are spaced by the backoff (each wait
// at least half its doubling step), the event is dropped with a log line
// and a counted metric once older than SESSIOND_WEBHOOK_RETRY_FOR, and
// sign-in/sign-out latency is reported next to a sessiond without
// webhooks.
func TestWebhooksReceiverFailingForever(t *testing.T) {
	t.Parallel()
	bin := buildSessiond(t, t.TempDir())
	recv := newReceiver(t)
	recv.set(http.StatusInternalServerError, 0)
	const backoffMin, backoffMax = 100 * time.Millisecond, 800 * time.Millisecond
	failing := startSessiond(t, bin, pgtest.NewDatabase(t), webhookSettings(recv.URL(),
		"SESSIOND_WEBHOOK_BACKOFF_MIN="+backoffMin.String(), "SESSIOND_WEBHOOK_BACKOFF_MAX="+backoffMax.String(),
		"SESSIOND_WEBHOOK_RETRY_FOR=4s")...)
	plain := startSessiond(t, bin, pgtest.NewDatabase(t))

	latency := func(addr string) (p50, p99 time.Duration) {
		var ds []time.Duration
		for i := range 200 {
			start := time.Now()
			changes(t, addr, fmt.Sprintf("lat%d", i), 1) // one sign-in and its sign-out
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[len(ds)/2], ds[len(ds)*99/100]
	}
	// The first event, then the latencies while its attempts fail.
	changes(t, failing.Addr, "first", 1)
	f50, f99 := latency(failing.Addr)
	p50, p99 := latency(plain.Addr)
	t.Logf("sign-in + sign-out with a receiver failing forever: p50 %s p99 %s; without webhooks: p50 %s p99 %s", f50, f99, p50, p99)

	// Wait until the first event is dropped (4 s after its commit).
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(failing.Log.String(), "event dropped"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no event dropped within 30 s")
		}
	}
	attempts := recv.Attempts()
	// Deliveries are in order, so the attempts until the first drop are
	// all the first event's: the first attempt, then one per backoff.
	step := backoffMin
	n := 0
	for i := 1; i < len(attempts) && attempts[i].Sub(attempts[0]) < 3*time.Second; i++ {
		gap := attempts[i].Sub(attempts[i-1])
		if gap < step/2-5*time.Millisecond {
			t.Errorf("attempt %d came %s after the one before; backoff step %s allows no less than %s", i+1, gap, step, step/2)
		}
		step = min(2*step, backoffMax)
		n++
	}
	t.Logf("first event: %d retries in its first 3 s (backoff %s doubling to %s, equal jitter)", n, backoffMin, backoffMax)
	if n < 3 {
		t.Errorf("only %d retries in 3 s; the deliverer should keep retrying", n)
	}
	_, metrics := request(t, failing.Addr, http.MethodGet, "/metrics", "", "")
	label := events.WebhookKey(recv.URL())[:12]
	for _, want := range []string{`sessiond_webhook_deliveries_total{outcome="dropped",webhook="` + label + `"}`,
		`sessiond_webhook_deliveries_total{outcome="failed",webhook="` + label + `"}`, `sessiond_webhook_lag_seconds{webhook="` + label + `"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestManyStreamsOnOneReplica: 2,000 streams open on one real sessiond;
// its RSS is reported. Every stream whose session a backend ends gets the
// event and ends; the others stay open; then SIGTERM ends every stream
// at once and the process exits well within its grace period.
func TestManyStreamsOnOneReplica(t *testing.T) {
	t.Parallel()
	const streams = 2000
	bin := buildSessiond(t, t.TempDir())
	p := startSessiond(t, bin, pgtest.NewDatabase(t), "SESSIOND_MAX_STREAMS=5000", "SESSIOND_SHUTDOWN_TIMEOUT=15s")
	rss := func() string {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				return strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:"))
			}
		}
		return "?"
	}
	idle := rss()
	tokens := make([]string, streams)
	users := make([]string, streams)
	for i := range streams {
		users[i] = fmt.Sprintf("streamer-%d", i)
		status, body := request(t, p.Addr, http.MethodPost, "/sessions", apiKey, fmt.Sprintf(`{"user_id":%q}`, users[i]))
		if status != http.StatusCreated {
			t.Fatalf("sign-in: %d %s", status, body)
		}
		var a struct{ Token string }
		_ = json.Unmarshal(body, &a)
		tokens[i] = a.Token
	}
	type stream struct {
		events chan string // event types; closed at the end of the stream
		body   io.Closer
	}
	open := make([]*stream, streams)
	transport := &http.Transport{MaxConnsPerHost: 0, DisableKeepAlives: true}
	client := &http.Client{Transport: transport}
	var wg sync.WaitGroup
	var failed atomic.Int64
	sem := make(chan struct{}, 50)
	for i := range streams {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			req, _ := http.NewRequest(http.MethodGet, "http://"+p.Addr+"/session/events", nil)
			req.Header.Set("Authorization", "Bearer "+tokens[i])
			resp, err := client.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				failed.Add(1)
				return
			}
			s := &stream{events: make(chan string, 16), body: resp.Body}
			open[i] = s
			go func() {
				defer close(s.events)
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					if typ, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
						s.events <- typ
					}
				}
			}()
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d streams did not open", n, streams)
	}
	t.Cleanup(func() {
		for _, s := range open {
			s.body.Close()
		}
	})
	_, metrics := request(t, p.Addr, http.MethodGet, "/metrics", "", "")
	if !strings.Contains(string(metrics), fmt.Sprintf("sessiond_event_streams_open %d", streams)) {
		t.Errorf("/metrics does not show %d open streams", streams)
	}
	t.Logf("%d streams open: sessiond RSS %s (idle, before the sign-ins: %s)", streams, rss(), idle)

	// A backend ends every tenth user's sessions: those streams get the
	// event and end.
	for i := 0; i < streams; i += 10 {
		if status, body := request(t, p.Addr, http.MethodDelete, "/users/"+users[i]+"/sessions", apiKey, ""); status != http.StatusOK {
			t.Fatalf("end: %d %s", status, body)
		}
	}
	for i := 0; i < streams; i += 10 {
		select {
		case typ := <-open[i].events:
			if typ != "session.revoked" {
				t.Fatalf("stream %d: got %s, want session.revoked", i, typ)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("stream %d: no event within 10 s", i)
		}
		select {
		case typ, ok := <-open[i].events:
			if ok {
				t.Fatalf("stream %d: got %s after its own session ended; want the end", i, typ)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("stream %d did not end after its session's event", i)
		}
	}

	// SIGTERM: every remaining stream ends at once; no grace is waited for.
	term := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i, s := range open {
		if i%10 == 0 {
			continue
		}
		select {
		case typ, ok := <-s.events:
			if ok {
				t.Fatalf("stream %d: got %s on shutdown, want the end", i, typ)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("stream %d still open 10 s after SIGTERM", i)
		}
	}
	select {
	case <-p.Exited:
	case <-time.After(10 * time.Second):
		t.Fatal("sessiond did not exit within 10 s of SIGTERM (grace 15 s)")
	}
	t.Logf("SIGTERM: %d streams ended and the process exited %s after the signal", streams-streams/10, p.ExitAt.Sub(term).Round(time.Millisecond))
}

// TestWebhookRefusedEventIsParked: a receiver behind a WAF answers 403 to
// one event (a user ID holding "<script>"): after a few attempts that
// event is parked as a dead letter — a row, a metric, a log line — and
// every later event, the revocation of another session included, is
// delivered. The operator replays the parked event once the receiver
// accepts it. The URL holds secrets in its userinfo, path and query: none
// of them reaches /metrics, the log or the database.
func TestWebhookRefusedEventIsParked(t *testing.T) {
	t.Parallel()
	bin := buildSessiond(t, t.TempDir())
	dbURL := pgtest.NewDatabase(t)
	recv := newReceiver(t)
	secrets := []string{"hookpass", "PATHSECRET", "QUERYSECRET"}
	hookURL := "http://hookuser:hookpass@" + recv.Addr() + "/services/T0/PATHSECRET?token=QUERYSECRET"
	recv.mu.Lock()
	recv.refuse = "<script>"
	recv.mu.Unlock()
	p := startSessiond(t, bin, dbURL, webhookSettings(hookURL)...)

	status, body := request(t, p.Addr, http.MethodPost, "/sessions", apiKey, `{"user_id":"bob"}`)
	if status != http.StatusCreated {
		t.Fatalf("sign-in: %d %s", status, body)
	}
	var bob struct{ Token string }
	_ = json.Unmarshal(body, &bob)
	if status, body := request(t, p.Addr, http.MethodPost, "/sessions", apiKey, `{"user_id":"mallory<script>"}`); status != http.StatusCreated {
		t.Fatalf("sign-in: %d %s", status, body)
	}
	refusedSeq := committedSeqs(t, dbURL)[1]
	// Behind the refused event: bob's session ends, and more sign-ins.
	if status, body := request(t, p.Addr, http.MethodDelete, "/session", bob.Token, ""); status != http.StatusOK {
		t.Fatalf("sign-out: %d %s", status, body)
	}
	changes(t, p.Addr, "later", 4)

	// Every event but the refused one arrives, in order.
	want := slices.DeleteFunc(committedSeqs(t, dbURL), func(s int64) bool { return s == refusedSeq })
	allButRefused := func(accepted []testbed.Delivery) bool { return slices.Equal(recv.seqs(accepted), want) }
	if !recv.WaitFor(60*time.Second, allButRefused) { // the bound only catches a hang
		t.Fatalf("delivered %v, want %v (everything but the refused event %d)", recv.ids(), want, refusedSeq)
	}

	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var parkedSeq int64
	var parkedType string
	var lastStatus, attempts int
	if err := conn.QueryRow(context.Background(), `SELECT seq, type, last_status, attempts FROM webhook_dead_letters
		WHERE url_hash = $1`, events.WebhookKey(hookURL)).Scan(&parkedSeq, &parkedType, &lastStatus, &attempts); err != nil {
		t.Fatalf("the parked event: %v", err)
	}
	if parkedSeq != refusedSeq || parkedType != "session.created" || lastStatus != http.StatusForbidden || attempts != events.ParkAfter {
		t.Errorf("parked seq %d %s status %d after %d attempts, want seq %d session.created 403 after %d",
			parkedSeq, parkedType, lastStatus, attempts, refusedSeq, events.ParkAfter)
	}
	if !strings.Contains(p.Log.String(), "event parked as a dead letter") {
		t.Errorf("no log line says the event was parked")
	}
	label := events.WebhookKey(hookURL)[:12]
	_, metrics := request(t, p.Addr, http.MethodGet, "/metrics", "", "")
	if want := `sessiond_webhook_deliveries_total{outcome="parked",webhook="` + label + `"} 1`; !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "sessiond_webhook"))
	}

	// The operator replays it once the receiver accepts it.
	recv.mu.Lock()
	recv.refuse = ""
	recv.mu.Unlock()
	if _, err := conn.Exec(context.Background(), `UPDATE webhook_dead_letters SET replay = true`); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var left int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM webhook_dead_letters`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		got := recv.ids()
		if left == 0 && slices.Contains(got, refusedSeq) {
			break
		}
		if time.Now().After(deadline) { // only catches a hang
			t.Fatalf("after replay: %d dead letters left, delivered %v", left, got)
		}
	}
	_, metrics = request(t, p.Addr, http.MethodGet, "/metrics", "", "")
	if want := `sessiond_webhook_deliveries_total{outcome="replayed",webhook="` + label + `"} 1`; !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %s", want)
	}

	// The URL's secrets are nowhere: not in /metrics, the log, or any
	// table that keeps webhook state.
	var stored string
	if err := conn.QueryRow(context.Background(), `SELECT coalesce(string_agg(t::text, ' '), '') FROM (
		SELECT row_to_json(w)::text AS t FROM webhook_positions w
		UNION ALL SELECT row_to_json(d)::text FROM webhook_dead_letters d) x`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stored, events.WebhookKey(hookURL)) {
		t.Errorf("webhook_positions has no row for the URL's key: %s", stored)
	}
	for _, secret := range secrets {
		for where, text := range map[string]string{"/metrics": string(metrics), "the log": p.Log.String(), "the database": stored} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds the URL's secret %q", where, secret)
			}
		}
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
