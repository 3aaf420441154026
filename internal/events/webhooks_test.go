package events

import (
	"strings"
	"testing"
)

// Which answers park an event (after ParkAfter in a row) and which are
// retried until RetryFor.
func TestPermanentRefusals(t *testing.T) {
	cases := []struct {
		status    int
		permanent bool
	}{
		{0, false},                                             // no answer: a timeout or a refused connection
		{301, false}, {302, false}, {307, false}, {308, false}, // the URL moved: fix the URL, every event alike
		{400, true}, {401, true}, {403, true}, {404, true}, {410, true}, {413, true}, {422, true},
		{408, false}, {425, false}, {429, false}, // "try again later"
		{500, false}, {502, false}, {503, false}, {504, false},
	}
	for _, c := range cases {
		if got := permanent(c.status); got != c.permanent {
			t.Errorf("permanent(%d) = %v, want %v", c.status, got, c.permanent)
		}
	}
}

// A URL's secret (userinfo, path, query) appears in no error or label.
func TestWebhookURLNeverQuoted(t *testing.T) {
	const u = "ftp://user:PASS@hooks.example/services/SECRETPATH?token=SECRETQUERY"
	err := CheckWebhookURL(u)
	if err == nil {
		t.Fatal("an ftp URL was accepted")
	}
	ok := "https://user:PASS@hooks.example/services/SECRETPATH?token=SECRETQUERY"
	for what, text := range map[string]string{"error": err.Error(), "label": webhookLabel(ok), "host": hostOf(ok), "key": WebhookKey(ok)} {
		for _, secret := range []string{"PASS", "SECRETPATH", "SECRETQUERY"} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s %q holds %q", what, text, secret)
			}
		}
	}
	if hostOf(ok) != "https://hooks.example" {
		t.Errorf("hostOf = %q", hostOf(ok))
	}
}
