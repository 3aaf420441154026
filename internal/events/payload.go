package events

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/sessiond/sessiond/internal/sessions"
)

// payload is an event as the contract writes it (openapi.yaml, GET
// /session/events; README "Session events"), for streams and webhooks
// alike: {"type", "timestamp", "data": {"session", "old_status", "actor"}}.
type payload struct {
	Type      string      `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Data      payloadData `json:"data"`
}

type payloadData struct {
	Session   SessionJSON `json:"session"`
	OldStatus *string     `json:"old_status"`
	Actor     string      `json:"actor"`
}

// SessionJSON is the session object of openapi.yaml: the api package
// answers with it and event payloads carry it, so the two cannot differ.
type SessionJSON struct {
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

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// SessionObject is s as the session object of openapi.yaml.
func SessionObject(s sessions.Session) SessionJSON {
	meta := s.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage(`{}`)
	}
	return SessionJSON{ID: s.ID, UserID: s.UserID, ClientID: s.ClientID, Status: string(s.Status),
		CreatedAt: s.CreatedAt, LastActiveAt: s.LastActiveAt, ExpiresAt: s.ExpiresAt, EndedAt: s.EndedAt,
		UserAgent: nullIfEmpty(s.UserAgent), IPAddress: nullIfEmpty(s.IPAddress), Metadata: meta}
}

// Payload returns the JSON payload of e.
func Payload(e sessions.Event) []byte {
	p := payload{
		Type:      e.Type(),
		Timestamp: e.At.UTC(),
		Data:      payloadData{Session: SessionObject(e.Session), Actor: e.PublicActor()},
	}
	if e.OldStatus != "" {
		old := string(e.OldStatus)
		p.Data.OldStatus = &old
	}
	b, err := json.Marshal(p)
	if err != nil { // only metadata could fail, and the store holds valid JSON
		panic("events: marshal payload: " + err.Error())
	}
	return b
}

// ID is the event's identifier: the SSE id and, prefixed, the webhook-id.
func ID(e sessions.Event) string { return strconv.FormatInt(e.Seq, 10) }
