package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/testbed"
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
	*testbed.Receiver
	url string
}

func startReceiver() (*benchReceiver, error) {
	r, err := testbed.NewReceiver(benchWebhookSecret, nil)
	if err != nil {
		return nil, err
	}
	return &benchReceiver{Receiver: r, url: "http://" + r.Addr() + "/hooks"}, nil
}

// sessiondEnv is what sessiond needs to deliver to the receiver.
func (r *benchReceiver) sessiondEnv() string {
	return "SESSIOND_WEBHOOK_URLS=" + r.url + " SESSIOND_WEBHOOK_SECRET=" + benchWebhookSecret
}

// finish waits (at most 2 minutes) until every event committed since
// sessiond started has arrived, and measures.
func (r *benchReceiver) finish(ctx context.Context, dbURL string, logf func(string, ...any)) (*webhookResult, error) {
	defer r.Down()
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
	for int64(r.Distinct()) < events && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	accepted := r.Accepted()
	distinct := int64(r.Distinct())
	res := &webhookResult{Events: events, Delivered: distinct, Duplicates: int64(len(accepted)) - distinct,
		BadSignatures: int64(r.BadSignatures())}
	if len(accepted) > 0 {
		first, last := accepted[0].At, accepted[len(accepted)-1].At
		if span := last.Sub(first); span > 0 {
			res.EventsPerSec = float64(distinct) / span.Seconds()
		}
		if last.After(phasesDone) {
			res.DrainSeconds = last.Sub(phasesDone).Seconds()
		}
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
