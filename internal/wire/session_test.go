package wire

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/sessions"
)

// The session object writes absent values as null and no metadata as {},
// and reading it back (as event snapshots are) gives the session again,
// its times in UTC.
func TestSessionObject(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ended := at.Add(time.Minute)
	for _, c := range []struct {
		name string
		s    sessions.Session
		want string
	}{
		{"bare", sessions.Session{ID: "sess_1", UserID: "alice", ClientID: "client_1", Status: sessions.StatusActive,
			CreatedAt: at, LastActiveAt: at, ExpiresAt: at.Add(time.Hour)},
			`{"id":"sess_1","user_id":"alice","client_id":"client_1","status":"active","created_at":"2026-12-07T12:00:00Z","last_active_at":"2026-12-07T12:00:00Z","expires_at":"2026-12-07T13:00:00Z","ended_at":null,"user_agent":null,"ip_address":null,"metadata":{}}`},
		{"full", sessions.Session{ID: "sess_2", UserID: "bob", ClientID: "client_2", Status: sessions.StatusRevoked,
			CreatedAt: at, LastActiveAt: at, ExpiresAt: at.Add(time.Hour), EndedAt: &ended,
			UserAgent: "UA", IPAddress: "192.0.2.1", Metadata: json.RawMessage(`{"k":1}`)},
			`{"id":"sess_2","user_id":"bob","client_id":"client_2","status":"revoked","created_at":"2026-12-07T12:00:00Z","last_active_at":"2026-12-07T12:00:00Z","expires_at":"2026-12-07T13:00:00Z","ended_at":"2026-12-07T12:01:00Z","user_agent":"UA","ip_address":"192.0.2.1","metadata":{"k":1}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(FromSession(c.s))
			if err != nil || string(b) != c.want {
				t.Fatalf("marshal: %v\n got %s\nwant %s", err, b, c.want)
			}
			var back Session
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			// Postgres writes a snapshot's times with the server's offset.
			back.CreatedAt = back.CreatedAt.In(time.FixedZone("", 3600))
			got := back.ToSession()
			want := c.s
			if len(want.Metadata) == 0 {
				want.Metadata = json.RawMessage(`{}`)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("read back\n got %+v\nwant %+v", got, want)
			}
		})
	}
}
