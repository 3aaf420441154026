// Package sessions holds sessiond's rules: what a session is, which
// sessions a sign-in replaces or evicts, what every kind of sign-out ends
// and with which status, who may see what, and when a session expires.
// It knows nothing of HTTP or SQL; it talks to storage through Store.
package sessions

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
)

// Status is where a session is in its life. Every status but StatusActive
// is terminal.
type Status string

const (
	StatusActive   Status = "active"
	StatusEnded    Status = "ended"    // signed out from its own client
	StatusRevoked  Status = "revoked"  // ended by an API key or from another client
	StatusReplaced Status = "replaced" // a newer sign-in on its client took its place
	StatusEvicted  Status = "evicted"  // pushed out by the per-user limit
	StatusExpired  Status = "expired"  // past its lifetime or inactivity timeout
)

// Statuses lists every status, active first.
var Statuses = []Status{StatusActive, StatusEnded, StatusRevoked, StatusReplaced, StatusEvicted, StatusExpired}

// ParseStatus returns the status named s.
func ParseStatus(s string) (Status, bool) {
	for _, st := range Statuses {
		if string(st) == s {
			return st, true
		}
	}
	return "", false
}

// Mode is the application's session mode.
type Mode string

const (
	// ModeSingle allows one session per client: a sign-in replaces it, and
	// a plain sign-out ends it.
	ModeSingle Mode = "single"
	// ModeMulti allows several accounts per client: a sign-in replaces only
	// the same user's session there, and a plain sign-out ends them all.
	ModeMulti Mode = "multi"
)

// Session is one signed-in account on one client.
type Session struct {
	ID           string
	UserID       string
	ClientID     string
	Status       Status
	CreatedAt    time.Time
	LastActiveAt time.Time
	ExpiresAt    time.Time
	EndedAt      *time.Time
	UserAgent    string
	IPAddress    string
	Metadata     json.RawMessage
}

// expiry gives the moment s stops being valid: its lifetime bound, or its
// inactivity bound when that comes first. idle 0 means no inactivity bound.
func (s Session) expiry(idle time.Duration) time.Time {
	if idle > 0 {
		if t := s.LastActiveAt.Add(idle); t.Before(s.ExpiresAt) {
			return t
		}
	}
	return s.ExpiresAt
}

// asOf returns s as a reader at now must see it: an active session past
// either bound is expired, with ended_at at the moment it expired, even
// before the sweeper has recorded that.
func (s Session) asOf(now time.Time, idle time.Duration) Session {
	if s.Status != StatusActive {
		return s
	}
	if at := s.expiry(idle); !now.Before(at) {
		s.Status = StatusExpired
		s.EndedAt = &at
	}
	return s
}

// Ended is the short form of a session that a sign-in replaced or evicted.
type Ended struct {
	ID     string
	Status Status
}

// ID prefixes. A session or client ID is its prefix and a ULID: 26 Crockford
// base32 characters whose first ten encode the creation time, so IDs sort by
// age.
const (
	sessionIDPrefix = "sess_"
	clientIDPrefix  = "client_"
	tokenPrefix     = "st_"
	tokenRandBytes  = 32
	tokenLength     = len(tokenPrefix) + 43 // base64url of 32 bytes, unpadded
)

// ValidSessionID reports whether id has the form of a session ID.
func ValidSessionID(id string) bool { return validID(id, sessionIDPrefix) }

// ValidClientID reports whether id has the form of a client ID.
func ValidClientID(id string) bool { return validID(id, clientIDPrefix) }

func validID(id, prefix string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != ulid.EncodedSize {
		return false
	}
	// ParseStrict accepts lower case too; IDs we issue are upper case, and
	// one spelling per ID keeps lookups exact.
	if strings.ToUpper(rest) != rest {
		return false
	}
	_, err := ulid.ParseStrict(rest)
	return err == nil
}

// newID returns a fresh ID: its prefix, the time in milliseconds, and 80
// bits from crypto/rand. ulid.DefaultEntropy would be math/rand seeded
// with the start time, and monotonic within a millisecond, so one ID
// would tell the next; every ID here, a session's and its client's
// included, is drawn independently.
func newID(prefix string, now time.Time) string {
	return prefix + ulid.MustNew(ulid.Timestamp(now), rand.Reader).String()
}

// ValidUserID reports whether id is a user ID: 1–255 bytes of printable
// UTF-8 without control characters.
func ValidUserID(id string) bool {
	if len(id) == 0 || len(id) > 255 || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if !unicode.IsPrint(r) && r != ' ' {
			return false
		}
	}
	return true
}

// WellFormedToken reports whether token has the form of a session token,
// "st_" and 43 base64url characters, so garbage is refused without a
// database lookup.
func WellFormedToken(token string) bool {
	if len(token) != tokenLength || !strings.HasPrefix(token, tokenPrefix) {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token[len(tokenPrefix):])
	return err == nil && len(b) == tokenRandBytes
}

// newToken returns a fresh session token.
func newToken() (string, error) {
	b := make([]byte, tokenRandBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// TokenHash is what the store keeps of a token: its SHA-256. A stolen
// database dump therefore holds no usable token.
type TokenHash [sha256.Size]byte

// HashToken returns the SHA-256 of token.
func HashToken(token string) TokenHash { return sha256.Sum256([]byte(token)) }
