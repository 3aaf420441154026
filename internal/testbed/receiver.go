package testbed

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Receiver is a webhook endpoint on 127.0.0.1 that verifies every
// delivery's signature with the Standard Webhooks reference library and
// records what it accepted. It answers on every path.
type Receiver struct {
	wh     *standardwebhooks.Webhook
	answer func(id string, body []byte) int

	mu       sync.Mutex
	addr     string
	srv      *http.Server
	attempts []time.Time     // every request
	accepted []Delivery      // answered 2xx, in arrival order
	distinct map[string]bool // webhook-id of each accepted delivery
	bad      int             // requests whose signature did not verify
}

// Delivery is one accepted delivery.
type Delivery struct {
	ID        string // its webhook-id
	SessionID string // the session its event is about (data.session.id)
	At        time.Time
}

// maxPayload bounds what the receiver reads of one request.
const maxPayload = 1 << 20

// NewReceiver starts a receiver verifying with secret. answer decides the
// status of each verified delivery (it may block, as a slow endpoint
// does); nil answers 204.
func NewReceiver(secret string, answer func(id string, body []byte) int) (*Receiver, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	r := &Receiver{wh: wh, answer: answer, distinct: map[string]bool{}}
	if err := r.Up(); err != nil {
		return nil, err
	}
	return r, nil
}

// Addr is host:port.
func (r *Receiver) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// Up starts serving, on the same address as before if it was down.
func (r *Receiver) Up() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	r.addr = ln.Addr().String()
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return nil
}

// Down closes the listener and every connection: deliveries are refused.
func (r *Receiver) Down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.attempts = append(r.attempts, time.Now())
	r.mu.Unlock()
	body, _ := io.ReadAll(io.LimitReader(req.Body, maxPayload))
	if err := r.wh.Verify(body, req.Header); err != nil {
		r.mu.Lock()
		r.bad++
		r.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	id := req.Header.Get("webhook-id")
	status := http.StatusNoContent
	if r.answer != nil {
		status = r.answer(id, body)
	}
	if status/100 == 2 {
		var event struct {
			Data struct {
				Session struct {
					ID string `json:"id"`
				} `json:"session"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &event) // not an event: no SessionID
		r.mu.Lock()
		r.accepted = append(r.accepted, Delivery{ID: id, SessionID: event.Data.Session.ID, At: time.Now()})
		r.distinct[id] = true
		r.mu.Unlock()
	}
	w.WriteHeader(status)
}

// Accepted lists the deliveries answered 2xx, in arrival order, repeats
// included.
func (r *Receiver) Accepted() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.accepted)
}

// waitPoll is how often WaitFor looks at what was accepted.
const waitPoll = 10 * time.Millisecond

// WaitFor waits until done, given the deliveries accepted so far (as
// Accepted lists them), returns true, or until within has passed; it
// reports whether done returned true. within only bounds a wait that
// would otherwise be for ever.
func (r *Receiver) WaitFor(within time.Duration, done func(accepted []Delivery) bool) bool {
	deadline := time.Now().Add(within)
	for {
		if done(r.Accepted()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(waitPoll)
	}
}

// Distinct is how many different events were accepted.
func (r *Receiver) Distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.distinct)
}

// Attempts lists when each request came, accepted or not.
func (r *Receiver) Attempts() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.attempts)
}

// BadSignatures is how many requests failed verification.
func (r *Receiver) BadSignatures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}
