package sessions

import "fmt"

// Codes are the stable, snake_case error codes of the public API. The api
// package maps each one to an HTTP status in one place.
const (
	CodeInvalidRequest     = "invalid_request"
	CodeInvalidID          = "invalid_id"
	CodeInvalidRedirectURL = "invalid_redirect_url"
	CodeUnauthenticated    = "unauthenticated"
	CodeForbidden          = "forbidden"
	CodeSessionNotFound    = "session_not_found"
	CodeClientNotFound     = "client_not_found"
	CodeUnavailable        = "unavailable"
	CodeInternal           = "internal"
)

// Error is the one error type callers of this package need to understand.
// Message is safe to show to API clients; internal causes are wrapped with
// %w by the code that logs them and never reach Message.
type Error struct {
	Code    string
	Message string
	// Fields names the offending inputs of an invalid_request, with a
	// reason for each.
	Fields map[string]string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// EmptyIDParameter is the invalid_id answer to a query parameter that is
// present but empty (?session_id=, ?except=): leaving it out means
// something else ("sign out of all", "everywhere"), so an empty value is
// never read as absent.
func EmptyIDParameter(name string) *Error {
	return &Error{Code: CodeInvalidID, Message: name + " is empty: leave it out, or give a session ID."}
}

// Errors the service returns as they are, so they can be compared with
// errors.Is; the response body always says the same thing for them, so an
// attacker learns nothing from which one they got.
var (
	ErrUnauthenticated = &Error{Code: CodeUnauthenticated, Message: "The session token or API key is missing, malformed, unknown, or no longer active."}
	ErrForbidden       = &Error{Code: CodeForbidden, Message: "This endpoint is only for backends authenticated with an API key."}
	ErrSessionNotFound = &Error{Code: CodeSessionNotFound, Message: "No such session."}
	ErrClientNotFound  = &Error{Code: CodeClientNotFound, Message: "No such client."}
	ErrUnavailable     = &Error{Code: CodeUnavailable, Message: "The database is unavailable; try again shortly."}
	// ErrTimedOut is a request that ran out of its time (queued behind
	// other transactions' locks, or a database too slow to answer in time)
	// while the database was reachable as far as anyone can tell. It is
	// unavailable too, so clients retry it the same way, but its message
	// does not blame the database, and errors.Is tells it apart for the
	// metrics.
	ErrTimedOut = &Error{Code: CodeUnavailable, Message: "The request ran out of time; try again."}
)

// invalidFields collects per-field problems of one request.
type invalidFields map[string]string

func (f invalidFields) err() error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Code: CodeInvalidRequest, Message: "The request has invalid fields.", Fields: f}
}
