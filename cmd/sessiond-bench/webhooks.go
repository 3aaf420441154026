package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// benchWebhookSecret signs the webhooks of a -webhooks run.
const benchWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="

// webhookResult is what -webhooks measured: sessiond delivering every
// event of the run's phases to a receiver on 127.0.0.1 that verifies each
// signature with the Standard Webhooks library.
type webhookResult struct {
	Events        int64 `json:"events"`
	Delivered     int64 `json:"delivered"`
	Duplicates    int64 `json:"duplicates"`
	BadSignatures int64 `json:"bad_signatures"`
	// EventsPerSec is deliveries ÷ the time from the first to the last.
	EventsPerSec float64 `json:"events_per_second"`
	// DrainSeconds is how long after the last phase the last event came.
	DrainSeconds float64 `json:"drain_seconds"`
}

// benchReceiver counts verified deliveries.
type benchReceiver struct {
	url string
	srv *http.Server
	wh  *standardwebhooks.Webhook

	mu          sync.Mutex
	seen        map[string]bool
	dups, bad   int64
	first, last time.Time
}

func startReceiver() (*benchReceiver, error) {
	wh, err := standardwebhooks.NewWebhook(benchWebhookSecret)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &benchReceiver{url: "http://" + ln.Addr().String() + "/hooks", wh: wh, seen: map[string]bool{}}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *benchReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	err := r.wh.Verify(body, req.Header)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := req.Header.Get("webhook-id")
	if r.seen[id] {
		r.dups++
	}
	r.seen[id] = true
	now := time.Now()
	if r.first.IsZero() {
		r.first = now
	}
	r.last = now
	w.WriteHeader(http.StatusNoContent)
}

func (r *benchReceiver) delivered() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int64(len(r.seen))
}

// sessiondEnv is what sessiond needs to deliver to the receiver.
func (r *benchReceiver) sessiondEnv() string {
	return "SESSIOND_WEBHOOK_URLS=" + r.url + " SESSIOND_WEBHOOK_SECRET=" + benchWebhookSecret
}

// finish waits (at most 2 minutes) until every event committed since
// sessiond started has arrived, and measures.
func (r *benchReceiver) finish(ctx context.Context, dbURL string, logf func(string, ...any)) (*webhookResult, error) {
	defer r.srv.Close()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	// Every event after the newest one before sessiond started is the run's;
	// numbered first, so none committed in the last moments is left out.
	if _, err := conn.Exec(ctx, `SELECT session_events_number()`); err != nil {
		return nil, err
	}
	var events int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM session_events e JOIN session_event_commits c ON c.txn = e.txn
		WHERE c.first_seq + (e.id - c.first_id) > $1`, startPosition).Scan(&events); err != nil {
		return nil, err
	}
	phasesDone := time.Now()
	deadline := phasesDone.Add(2 * time.Minute)
	for r.delivered() < events && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &webhookResult{Events: events, Delivered: int64(len(r.seen)), Duplicates: r.dups, BadSignatures: r.bad}
	if span := r.last.Sub(r.first); span > 0 {
		res.EventsPerSec = float64(len(r.seen)) / span.Seconds()
	}
	if r.last.After(phasesDone) {
		res.DrainSeconds = r.last.Sub(phasesDone).Seconds()
	}
	logf("webhooks: %d of %d events delivered, %.0f events/s, drained %.1f s after the last phase, %d duplicates, %d bad signatures",
		res.Delivered, res.Events, res.EventsPerSec, res.DrainSeconds, res.Duplicates, res.BadSignatures)
	if res.Delivered < res.Events {
		return res, fmt.Errorf("webhooks: only %d of %d events delivered within 2 minutes", res.Delivered, res.Events)
	}
	return res, nil
}

// startPosition is the newest event before sessiond started (-webhooks).
var startPosition int64

func readStartPosition(ctx context.Context, dbURL string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, `SELECT COALESCE(max(last_seq), 0) FROM session_event_commits`).Scan(&startPosition)
}
