package events

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/sessiond/sessiond/internal/sessions"
	"github.com/sessiond/sessiond/internal/wire"
)

// payload is an event as the contract writes it (openapi.yaml, GET
// /session/events; docs/events.md), for streams and webhooks
// alike: {"type", "timestamp", "data": {"session", "old_status", "actor"}}.
type payload struct {
	Type      string      `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Data      payloadData `json:"data"`
}

type payloadData struct {
	Session   wire.Session `json:"session"`
	OldStatus *string      `json:"old_status"`
	Actor     string       `json:"actor"`
}

// Payload returns the JSON payload of e.
func Payload(e sessions.Event) []byte {
	p := payload{
		Type:      e.Type(),
		Timestamp: e.At.UTC(),
		Data:      payloadData{Session: wire.FromSession(e.Session), Actor: e.PublicActor()},
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
