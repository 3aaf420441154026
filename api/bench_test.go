package api_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/internal/sessions"
)

// BenchmarkWhoAmI is GET /session through sessiond's whole handler, over a
// store in memory: the CPU and allocations of sessiond's own code per
// request, without the network or the database (make bench's floor servers
// measure the rest). go test ./api -run '^$' -bench WhoAmI -benchmem
func BenchmarkWhoAmI(b *testing.B) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	token := "st_" + base64.RawURLEncoding.EncodeToString(raw)
	now := time.Now().UTC()
	store := &fakeStore{known: map[sessions.TokenHash]sessions.Session{sessions.HashToken(token): {
		ID: "sess_01JBENCH", UserID: "user_bench", ClientID: "client_01JBENCH", Status: sessions.StatusActive,
		CreatedAt: now, LastActiveAt: now, ExpiresAt: now.Add(time.Hour),
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", IPAddress: "203.0.113.7", Metadata: []byte(`{}`),
	}}}
	svc := sessions.NewService(store, sessions.Config{Lifetime: time.Hour})
	h, err := api.New(svc, api.Config{APIKeys: []string{apiKey}, OpenAPI: sessiond.OpenAPI, Logger: capturedLogger,
		AccessLog: api.AccessLogErrors})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/session", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("GET /session answered %d: %s", w.Code, w.Body)
		}
	}
}
