package sessions

// Caller is who makes a request: a backend that presented an API key, or
// the holder of an active session.
type Caller struct {
	// KeyFingerprint identifies the backend's API key without revealing
	// it; empty for a session holder.
	KeyFingerprint string
	// Session is the holder's own session; nil for a backend.
	Session *Session
}

// Backend returns the caller for the API key with the given fingerprint.
func Backend(keyFingerprint string) Caller { return Caller{KeyFingerprint: keyFingerprint} }

// Holder returns the caller holding session s.
func Holder(s Session) Caller { return Caller{Session: &s} }

// IsBackend reports whether the caller authenticated with an API key.
func (c Caller) IsBackend() bool { return c.Session == nil }

// Actor prefixes in the audit table.
const (
	apiKeyActorPrefix  = "api_key:"
	sessionActorPrefix = "session:"
)

// actor names the caller in the audit table.
func (c Caller) actor() string {
	if c.IsBackend() {
		return apiKeyActorPrefix + c.KeyFingerprint
	}
	return sessionActorPrefix + c.Session.ID
}

// BackendActor is how event payloads name any backend: the key's
// fingerprint stays in the audit table, for operators, and never reaches
// the session holders who read events.
const BackendActor = "backend"

// scope is what the caller may see and end: a backend every session, a
// holder those of its own user or on its own client.
func (c Caller) scope() Scope {
	if c.IsBackend() {
		return Scope{}
	}
	return Scope{UserID: c.Session.UserID, ClientID: c.Session.ClientID}
}

// ending is what sessions this caller ends become: revoked when a backend
// ends them or when they are on another client, ended when they are on the
// caller's own client.
func (c Caller) ending(at Ending) Ending {
	at.Status = StatusRevoked
	at.Actor = c.actor()
	if !c.IsBackend() {
		at.OwnClientID = c.Session.ClientID
	}
	return at
}

// SystemActor names the service itself in the audit table: the store
// records expiry with it.
const SystemActor = "system"
