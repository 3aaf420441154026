package testbed

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="

// deliver posts body as the webhook id, signed with secret, and returns
// the status (0 when the request did not go through).
func deliver(t *testing.T, url, secret, id, body string) int {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sig, err := wh.Sign(id, now, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestReceiverRecordsVerifiedDeliveries(t *testing.T) {
	refuse := "evt_3"
	r, err := NewReceiver(testSecret, func(id string, body []byte) int {
		if id == refuse {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Down)
	url := "http://" + r.Addr() + "/hooks"
	other := "whsec_" + strings.Repeat("A", 43) + "="

	for _, d := range []struct {
		id, secret string
		want       int
	}{
		{"evt_1", testSecret, http.StatusNoContent},
		{"evt_2", testSecret, http.StatusNoContent},
		{"evt_1", testSecret, http.StatusNoContent}, // a repeat
		{"evt_3", testSecret, http.StatusServiceUnavailable},
		{"evt_4", other, http.StatusUnauthorized},
	} {
		if got := deliver(t, url, d.secret, d.id, `{"type":"session.created"}`); got != d.want {
			t.Errorf("%s signed with %.10s…: answered %d, want %d", d.id, d.secret, got, d.want)
		}
	}
	var ids []string
	for _, d := range r.Accepted() {
		ids = append(ids, d.ID)
	}
	if got := strings.Join(ids, ","); got != "evt_1,evt_2,evt_1" {
		t.Errorf("accepted %s, want evt_1,evt_2,evt_1", got)
	}
	if got := r.Distinct(); got != 2 {
		t.Errorf("distinct %d, want 2", got)
	}
	if got := r.BadSignatures(); got != 1 {
		t.Errorf("bad signatures %d, want 1", got)
	}
	if got := len(r.Attempts()); got != 5 {
		t.Errorf("attempts %d, want 5", got)
	}

	// Down refuses connections; Up serves again on the same address.
	r.Down()
	if got := deliver(t, url, testSecret, "evt_5", `{}`); got != 0 {
		t.Fatalf("a delivery while down was answered %d", got)
	}
	if err := r.Up(); err != nil {
		t.Fatal(err)
	}
	if got := deliver(t, url, testSecret, "evt_5", `{}`); got != http.StatusNoContent {
		t.Fatalf("a delivery after Up was answered %d, want 204", got)
	}
}

func TestReceiverWaitForSessionID(t *testing.T) {
	r, err := NewReceiver(testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Down)
	url := "http://" + r.Addr() + "/hooks"
	about := func(sessionID string) func([]Delivery) bool {
		return func(accepted []Delivery) bool {
			return slices.ContainsFunc(accepted, func(d Delivery) bool { return d.SessionID == sessionID })
		}
	}

	// A delivery that comes while WaitFor waits.
	delivered := make(chan int, 1)
	go func() {
		delivered <- deliver(t, url, testSecret, "evt_1", `{"type":"session.created","data":{"session":{"id":"sess_a"}}}`)
	}()
	// The bound only catches a hang.
	if !r.WaitFor(time.Minute, about("sess_a")) {
		t.Fatalf("WaitFor did not see the delivery about sess_a; accepted %+v", r.Accepted())
	}
	if st := <-delivered; st != http.StatusNoContent {
		t.Fatalf("delivery answered %d", st)
	}

	// One whose event names no session, and one signed with another secret.
	deliver(t, url, testSecret, "evt_2", `{"type":"other"}`)
	deliver(t, url, "whsec_"+strings.Repeat("A", 43)+"=", "evt_3", `{"type":"session.created","data":{"session":{"id":"sess_b"}}}`)
	var got []string
	for _, d := range r.Accepted() {
		got = append(got, d.ID+"="+d.SessionID)
	}
	if want := "evt_1=sess_a,evt_2="; strings.Join(got, ",") != want {
		t.Errorf("accepted %s, want %s", strings.Join(got, ","), want)
	}
	if r.WaitFor(0, about("sess_b")) {
		t.Errorf("WaitFor reported sess_b, whose delivery failed verification")
	}
}
