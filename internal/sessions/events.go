package sessions

import (
	"context"
	"strings"
	"time"
)

// Event is one change of a session, as recorded in the audit table: the
// session as it was right after the change, its status before (empty when
// the change created it), when, and who made it. Events are numbered in
// commit order: a reader that has seen Seq N has seen every event below N.
type Event struct {
	Seq       int64
	Session   Session
	OldStatus Status // empty for a created session
	At        time.Time
	Actor     string
}

// Event types, as the contract names them (openapi.yaml, GET /session/events).
const (
	EventCreated = "session.created"
	eventPrefix  = "session."
)

// Type is the event's name: session.created, or "session." and the new
// status (session.ended, session.revoked, …).
func (e Event) Type() string {
	if e.OldStatus == "" {
		return EventCreated
	}
	return eventPrefix + string(e.Session.Status)
}

// PublicActor is the event's actor as its payload shows it, on streams
// and in webhooks alike: BackendActor for any API key, "session:" and the
// acting session's ID, or "system".
func (e Event) PublicActor() string {
	if strings.HasPrefix(e.Actor, apiKeyActorPrefix) {
		return BackendActor
	}
	return e.Actor
}

// Ends reports whether the event ends its session.
func (e Event) Ends() bool { return e.Session.Status != StatusActive }

// ExpiryOf returns the moment s stops being valid under the service's
// bounds: its lifetime, or its inactivity timeout if that comes first.
func (s *Service) ExpiryOf(sess Session) time.Time { return sess.expiry(s.cfg.InactivityTimeout) }

// RecordExpiry records the expiry of the session with id if it is past a
// bound now, so its session.expired event is written and delivered without
// waiting for the sweeper; otherwise it changes nothing. It returns the
// session as it now is (ErrSessionNotFound if it is gone).
func (s *Service) RecordExpiry(ctx context.Context, id string) (Session, error) {
	var sess Session
	err := s.store.InTx(ctx, func(tx Tx) error {
		if _, err := tx.ExpireSessions(ctx, Selector{SessionID: id}, s.expiry(s.now()), 0); err != nil {
			return err
		}
		var err error
		sess, err = tx.Session(ctx, id, Scope{})
		return err
	})
	return sess, err
}

// Now is the service clock.
func (s *Service) Now() time.Time { return s.now() }

// ParkedEvent is an event a webhook receiver refused for good, parked so
// the events after it are delivered, and kept for an operator to replay.
type ParkedEvent struct {
	Seq       int64
	WebhookID string // "evt_" and the Seq, as first sent
	Type      string
	Payload   []byte // the JSON body as first sent
	Status    int    // the receiver's last answer
	Attempts  int
}
