// Package wire is the one JSON representation of a session: the session
// object of openapi.yaml. The API answers with it, event payloads (streams
// and webhooks) carry it, and the snapshot each event row stores is read
// back through it, so none of them can differ from the others.
package wire

import (
	"encoding/json"
	"time"

	"github.com/sessiond/sessiond/internal/sessions"
)

// Session is the session object of openapi.yaml. Absent optional values
// are null, never "", and metadata is an object, {} when none was given.
type Session struct {
	ID           string          `json:"id"`
	UserID       string          `json:"user_id"`
	ClientID     string          `json:"client_id"`
	Status       string          `json:"status"`
	CreatedAt    time.Time       `json:"created_at"`
	LastActiveAt time.Time       `json:"last_active_at"`
	ExpiresAt    time.Time       `json:"expires_at"`
	EndedAt      *time.Time      `json:"ended_at"`
	UserAgent    *string         `json:"user_agent"`
	IPAddress    *string         `json:"ip_address"`
	Metadata     json.RawMessage `json:"metadata"`
}

// FromSession returns s as the session object.
func FromSession(s sessions.Session) Session {
	meta := s.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage(`{}`)
	}
	return Session{ID: s.ID, UserID: s.UserID, ClientID: s.ClientID, Status: string(s.Status),
		CreatedAt: s.CreatedAt, LastActiveAt: s.LastActiveAt, ExpiresAt: s.ExpiresAt, EndedAt: s.EndedAt,
		UserAgent: nullIfEmpty(s.UserAgent), IPAddress: nullIfEmpty(s.IPAddress), Metadata: meta}
}

// FromSessions returns each of ss as the session object, [] for none.
func FromSessions(ss []sessions.Session) []Session {
	out := make([]Session, 0, len(ss))
	for _, s := range ss {
		out = append(out, FromSession(s))
	}
	return out
}

// ToSession returns the session w describes, its times in UTC (a snapshot
// read back from the database carries the server's offset).
func (w Session) ToSession() sessions.Session {
	s := sessions.Session{ID: w.ID, UserID: w.UserID, ClientID: w.ClientID, Status: sessions.Status(w.Status),
		CreatedAt: w.CreatedAt.UTC(), LastActiveAt: w.LastActiveAt.UTC(), ExpiresAt: w.ExpiresAt.UTC(),
		UserAgent: valueOrEmpty(w.UserAgent), IPAddress: valueOrEmpty(w.IPAddress), Metadata: w.Metadata}
	if w.EndedAt != nil {
		t := w.EndedAt.UTC()
		s.EndedAt = &t
	}
	return s
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func valueOrEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
