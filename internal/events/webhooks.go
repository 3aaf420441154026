package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sessiond/sessiond/internal/sessions"
)

// Lease is the right to deliver to one URL, held by one replica at a time
// (internal/db: an advisory lock on a connection of its own, released by
// Postgres when the replica dies).
type Lease interface {
	// Position is the Seq up to which every event was answered 2xx.
	Position(ctx context.Context) (int64, error)
	// Advance stores a new position; it fails once the lease is lost.
	Advance(ctx context.Context, pos int64) error
	// Park stores an event the receiver refused for good (a dead letter).
	Park(ctx context.Context, e sessions.ParkedEvent) error
	// ReplayRequested lists the parked events an operator asked to replay.
	ReplayRequested(ctx context.Context, limit int) ([]sessions.ParkedEvent, error)
	// Replayed removes a parked event that was delivered.
	Replayed(ctx context.Context, seq int64) error
	Close()
}

// WebhookConfig is what the webhook deliverer needs. Zero durations take
// the defaults.
type WebhookConfig struct {
	URLs []string
	// Secret is the whsec_... signing secret (Standard Webhooks).
	Secret string
	// RetryFor is how long an event is retried; older ones are dropped,
	// logged and counted (default 24h).
	RetryFor time.Duration
	// Timeout bounds one delivery attempt (default 10 s).
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the wait between attempts, which
	// doubles from BackoffMin up to BackoffMax, with jitter: each wait is
	// at least half of its step and at most the step (defaults 1 s, 10 min).
	BackoffMin, BackoffMax time.Duration
	// LeaseRetry is how often a replica that does not hold a URL's lease
	// tries to take it (default 5 s): how soon it takes over from a dead
	// one.
	LeaseRetry time.Duration
	// PollInterval is how often a caught-up deliverer looks for events
	// even without a wake-up from the Hub (default 1 s).
	PollInterval time.Duration

	Log Log
	// TryLease takes the lease of the URL with the given key
	// (WebhookKey); a nil Lease: another replica holds it.
	TryLease func(ctx context.Context, key string) (Lease, error)
	// Wake, if set, tells of new events (Hub.Watch).
	Wake     func() (<-chan struct{}, func())
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Client sends the requests; nil means one with Timeout and no
	// redirects followed.
	Client *http.Client
}

// Webhooks delivers every event to every URL: at least once, in commit
// order per URL, the position per URL kept in Postgres and advanced only
// after a 2xx, or once the event is parked: an event the receiver refuses
// for good (permanent) ParkAfter times in a row becomes a dead letter and
// the next event goes out, so one refused event cannot hold back every
// later one (revocations included) for RetryFor. Nothing here is on the path of a request: a sign-in commits
// its event and answers; delivery reads the table afterwards.
type Webhooks struct {
	cfg      WebhookConfig
	signer   *standardwebhooks.Webhook
	outcomes *prometheus.CounterVec
	lag      *prometheus.GaugeVec
}

// Delivery outcomes, the values of the metric's outcome label.
const (
	OutcomeDelivered = "delivered" // answered 2xx
	OutcomeFailed    = "failed"    // an attempt failed; it will be retried
	OutcomeDropped   = "dropped"   // older than RetryFor: given up, logged
	OutcomeParked    = "parked"    // refused for good ParkAfter times: a dead letter, logged
	OutcomeReplayed  = "replayed"  // a dead letter an operator replayed, answered 2xx
)

// ParkAfter is how many permanent refusals in a row park an event: more
// than one, so a receiver's passing misconfiguration (a deploy that
// answers 404 for a moment) does not park what it would accept seconds
// later.
const ParkAfter = 3

// permanent reports whether a receiver's answer refuses the event itself
// rather than the moment: a 4xx, except 408 Request Timeout, 425 Too Early
// and 429 Too Many Requests, which ask to try again later. A 3xx is not
// permanent: redirects are not followed, and a receiver that moved
// refuses every event alike, which parking one by one would not fix; it
// is retried like a 5xx until the URL is corrected or RetryFor passes.
func permanent(status int) bool {
	return status >= 400 && status < 500 &&
		status != http.StatusRequestTimeout && status != http.StatusTooEarly && status != http.StatusTooManyRequests
}

// WebhookKey is the key of a URL in the database (webhook_positions,
// webhook_dead_letters): the hex SHA-256 of the URL as configured. A URL
// may hold a secret (in its path, userinfo or query), so it is stored,
// logged and labelled only as this hash.
func WebhookKey(u string) string {
	sum := sha256.Sum256([]byte(u))
	return hex.EncodeToString(sum[:])
}

// webhookLabel names a URL in logs and metric labels: the first 12 hex
// digits of its key, enough to tell a deployment's URLs apart, nothing of
// the URL itself.
func webhookLabel(u string) string { return WebhookKey(u)[:12] }

// CheckWebhookSecret reports whether secret is a Standard Webhooks secret,
// whsec_ and the base64 of 24 to 64 random bytes. Its error never quotes
// the secret.
func CheckWebhookSecret(secret string) error {
	rest, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return errors.New("want whsec_ followed by base64 (Standard Webhooks)")
	}
	if _, err := standardwebhooks.NewWebhook(secret); err != nil || len(rest) < 32 || len(rest) > 88 {
		return errors.New("want whsec_ followed by the base64 of 24 to 64 bytes")
	}
	return nil
}

// CheckWebhookURL reports whether u is an absolute http or https URL. Its
// error names the URL only by webhookLabel: the URL may hold a secret.
func CheckWebhookURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("want an absolute http:// or https:// URL (the URL with key %s is not)", webhookLabel(u))
	}
	return nil
}

// hostOf is the scheme and host of u, logged once when delivery starts so
// an operator can tell which label is which URL; never the path, userinfo
// or query, where URLs keep their secrets.
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Scheme + "://" + p.Host
}

// NewWebhooks checks cfg and returns the deliverer; Run starts it.
func NewWebhooks(cfg WebhookConfig) (*Webhooks, error) {
	if err := CheckWebhookSecret(cfg.Secret); err != nil {
		return nil, fmt.Errorf("SESSIOND_WEBHOOK_SECRET: %w", err)
	}
	for _, u := range cfg.URLs {
		if err := CheckWebhookURL(u); err != nil {
			return nil, fmt.Errorf("SESSIOND_WEBHOOK_URLS: %w", err)
		}
	}
	signer, err := standardwebhooks.NewWebhook(cfg.Secret)
	if err != nil {
		return nil, errors.New("SESSIOND_WEBHOOK_SECRET: not base64")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.RetryFor, 24*time.Hour)
	def(&cfg.Timeout, 10*time.Second)
	def(&cfg.BackoffMin, time.Second)
	def(&cfg.BackoffMax, 10*time.Minute)
	def(&cfg.LeaseRetry, 5*time.Second)
	def(&cfg.PollInterval, time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout:       cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	w := &Webhooks{
		cfg:    cfg,
		signer: signer,
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessiond_webhook_deliveries_total",
			Help: "Webhook delivery attempts by webhook (the first 12 hex digits of the SHA-256 of its URL) and outcome: delivered, failed (retried), dropped (older than SESSIOND_WEBHOOK_RETRY_FOR), parked (refused for good: a dead letter), replayed (a dead letter delivered on an operator's request).",
		}, []string{"webhook", "outcome"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sessiond_webhook_lag_seconds",
			Help: "Age of the oldest event not yet delivered to the webhook, on the replica that delivers to it; 0 when caught up.",
		}, []string{"webhook"}),
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(w.outcomes, w.lag)
	}
	return w, nil
}

// Run delivers to every URL until ctx ends.
func (w *Webhooks) Run(ctx context.Context) {
	done := make(chan struct{})
	for _, u := range w.cfg.URLs {
		go func() {
			defer func() { done <- struct{}{} }()
			w.runURL(ctx, u)
		}()
	}
	for range w.cfg.URLs {
		<-done
	}
}

// runURL takes the URL's lease whenever it is free and delivers while it
// holds it.
func (w *Webhooks) runURL(ctx context.Context, u string) {
	label := webhookLabel(u)
	for ctx.Err() == nil {
		lease, err := w.cfg.TryLease(ctx, WebhookKey(u))
		if err != nil && ctx.Err() == nil {
			w.cfg.Logger.Warn("webhook: cannot take the lease; retrying", "webhook", label, "error", err.Error())
		}
		if lease != nil {
			w.cfg.Logger.Info("webhook: delivering", "webhook", label, "host", hostOf(u))
			err = w.deliverWhileHeld(ctx, u, lease)
			lease.Close()
			w.lag.DeleteLabelValues(label)
			if err != nil && ctx.Err() == nil {
				w.cfg.Logger.Warn("webhook: lease lost or database unavailable; will take it again", "webhook", label, "error", err.Error())
			}
			continue
		}
		sleep(ctx, w.cfg.LeaseRetry)
	}
}

// storeEvery bounds how many delivered events may go unrecorded: after a
// crash they are delivered again (at least once), never lost.
const (
	storeEvery     = 100
	storeAtMostAge = 200 * time.Millisecond
)

func (w *Webhooks) deliverWhileHeld(ctx context.Context, u string, lease Lease) error {
	label := webhookLabel(u)
	pos, err := lease.Position(ctx)
	if err != nil {
		return err
	}
	var wake <-chan struct{}
	if w.cfg.Wake != nil {
		c, stop := w.cfg.Wake()
		defer stop()
		wake = c
	}
	stored, storedAt := pos, time.Now()
	store := func(ctx context.Context) error {
		if pos == stored {
			return nil
		}
		if err := lease.Advance(ctx, pos); err != nil {
			return err
		}
		stored, storedAt = pos, time.Now()
		return nil
	}
	defer func() {
		// What was delivered before a shutdown is recorded.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = store(sctx)
	}()
	var replaysCheckedAt time.Time
	for {
		if time.Since(replaysCheckedAt) >= w.cfg.PollInterval {
			if err := w.replay(ctx, u, label, lease); err != nil {
				return err
			}
			replaysCheckedAt = time.Now()
		}
		batch, err := w.cfg.Log.EventsAfter(ctx, pos, 500)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			w.lag.WithLabelValues(label).Set(0)
			if err := store(ctx); err != nil {
				return err
			}
			t := time.NewTimer(w.cfg.PollInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-wake:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		for _, e := range batch {
			if err := w.deliver(ctx, u, label, lease, e); err != nil {
				return err
			}
			pos = e.Seq
			if pos-stored >= storeEvery || time.Since(storedAt) >= storeAtMostAge {
				if err := store(ctx); err != nil {
					return err
				}
			}
		}
	}
}

// deliver sends e until it is answered 2xx, is older than RetryFor, or
// was refused for good ParkAfter times in a row (then it is parked),
// waiting between attempts; an error when ctx ended or parking failed.
func (w *Webhooks) deliver(ctx context.Context, u, label string, lease Lease, e sessions.Event) error {
	body := Payload(e)
	id := "evt_" + ID(e)
	refused := 0 // permanent refusals in a row
	for attempt := 1; ; attempt++ {
		w.lag.WithLabelValues(label).Set(time.Since(e.At).Seconds())
		if age := time.Since(e.At); age > w.cfg.RetryFor {
			w.outcomes.WithLabelValues(label, OutcomeDropped).Inc()
			w.cfg.Logger.Error("webhook: event dropped, older than SESSIOND_WEBHOOK_RETRY_FOR",
				"webhook", label, "webhook_id", id, "type", e.Type(), "age", age.Round(time.Second).String(), "attempts", attempt-1)
			return nil
		}
		status, err := w.post(ctx, u, id, body)
		if err == nil && status >= 200 && status < 300 {
			w.outcomes.WithLabelValues(label, OutcomeDelivered).Inc()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil && permanent(status) {
			refused++
		} else {
			refused = 0
		}
		if refused >= ParkAfter {
			parked := sessions.ParkedEvent{Seq: e.Seq, WebhookID: id, Type: e.Type(), Payload: body, Status: status, Attempts: attempt}
			if err := lease.Park(ctx, parked); err != nil {
				return err
			}
			w.outcomes.WithLabelValues(label, OutcomeParked).Inc()
			w.cfg.Logger.Error("webhook: event parked as a dead letter, refused for good; later events go on",
				"webhook", label, "webhook_id", id, "type", e.Type(), "status", status, "attempts", attempt)
			return nil
		}
		w.outcomes.WithLabelValues(label, OutcomeFailed).Inc()
		wait := w.backoff(attempt)
		reason := "status " + strconv.Itoa(status)
		if err != nil {
			reason = err.Error()
		}
		w.cfg.Logger.Warn("webhook: delivery failed; retrying", "webhook", label, "webhook_id", id,
			"attempt", attempt, "reason", reason, "retry_in", wait.String())
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// replay sends, once each, the parked events an operator asked to replay
// (webhook_dead_letters.replay): a 2xx removes the dead letter, anything
// else parks it again, replay cleared. A replayed event arrives after
// events committed later than it: receivers order by the payload's
// timestamp or the webhook-id's number, as they must for at-least-once
// delivery anyway.
func (w *Webhooks) replay(ctx context.Context, u, label string, lease Lease) error {
	todo, err := lease.ReplayRequested(ctx, 100)
	if err != nil {
		return err
	}
	for _, p := range todo {
		status, err := w.post(ctx, u, p.WebhookID, p.Payload)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil && status >= 200 && status < 300 {
			if err := lease.Replayed(ctx, p.Seq); err != nil {
				return err
			}
			w.outcomes.WithLabelValues(label, OutcomeReplayed).Inc()
			w.cfg.Logger.Info("webhook: parked event replayed", "webhook", label, "webhook_id", p.WebhookID, "type", p.Type)
			continue
		}
		reason := "status " + strconv.Itoa(status)
		if err != nil {
			reason = err.Error()
		}
		p.Status, p.Attempts = status, 1
		if err := lease.Park(ctx, p); err != nil {
			return err
		}
		w.cfg.Logger.Warn("webhook: parked event refused again on replay; stays parked",
			"webhook", label, "webhook_id", p.WebhookID, "type", p.Type, "reason", reason)
	}
	return nil
}

// backoff is the wait after the attempt-th failure: the step doubles from
// BackoffMin to BackoffMax, and the wait is uniformly random in its upper
// half ("equal jitter"), so replicas and URLs do not retry in lockstep and
// no wait is shorter than half its step.
func (w *Webhooks) backoff(attempt int) time.Duration {
	step := w.cfg.BackoffMin
	for i := 1; i < attempt && step < w.cfg.BackoffMax; i++ {
		step *= 2
	}
	step = min(step, w.cfg.BackoffMax)
	return step/2 + rand.N(step/2+1)
}

// post sends one signed attempt. The timestamp is the attempt's, as
// Standard Webhooks asks; the webhook-id stays the event's.
func (w *Webhooks) post(ctx context.Context, u, id string, body []byte) (int, error) {
	now := time.Now()
	sig, err := w.signer.Sign(id, now, body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(string(body)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sessiond-webhooks")
	req.Header.Set(standardwebhooks.HeaderWebhookID, id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the url.Error quotes the URL, which may hold a secret
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}
