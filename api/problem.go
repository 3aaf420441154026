package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sessiond/sessiond/internal/events"
	"github.com/sessiond/sessiond/internal/sessions"
)

// Codes the transport adds to those of the sessions package: answers
// about the HTTP request itself, which the rules never see.
const (
	codeNotFound             = "not_found"
	codeMethodNotAllowed     = "method_not_allowed"
	codePayloadTooLarge      = "payload_too_large"
	codeUnsupportedMediaType = "unsupported_media_type"
)

// statusOf is the one map from error code to HTTP status.
var statusOf = map[string]int{
	sessions.CodeInvalidRequest:     http.StatusBadRequest,
	sessions.CodeInvalidID:          http.StatusBadRequest,
	sessions.CodeInvalidRedirectURL: http.StatusBadRequest,
	sessions.CodeUnauthenticated:    http.StatusUnauthorized,
	sessions.CodeForbidden:          http.StatusForbidden,
	sessions.CodeSessionNotFound:    http.StatusNotFound,
	sessions.CodeClientNotFound:     http.StatusNotFound,
	codeNotFound:                    http.StatusNotFound,
	codeMethodNotAllowed:            http.StatusMethodNotAllowed,
	codePayloadTooLarge:             http.StatusRequestEntityTooLarge,
	codeUnsupportedMediaType:        http.StatusUnsupportedMediaType,
	sessions.CodeUnavailable:        http.StatusServiceUnavailable,
	sessions.CodeInternal:           http.StatusInternalServerError,
}

// clientGone reports whether the request's context ended because its
// client went away (net/http cancels it when the connection closes), as
// opposed to our own RequestTimeout, which ends it with a deadline and
// stays 503 unavailable (with its own message, sessions.ErrTimedOut).
func clientGone(c *gin.Context) bool {
	return errors.Is(c.Request.Context().Err(), context.Canceled)
}

// unavailableCauseKey holds, in the gin context of a 503, what made it
// unavailable, for the sessiond_http_unavailable_total metric.
const unavailableCauseKey = "sessiond.unavailable_cause"

// The causes of a 503, the values of the metric's cause label.
const (
	causeDeadline = "deadline" // the request ran out of time (sessions.ErrTimedOut)
	causeDatabase = "database" // the database is out of reach (sessions.ErrUnavailable)
	causeOther    = "other"    // anything else answered unavailable (a full replica)
)

func unavailableCause(err error) string {
	switch {
	case errors.Is(err, sessions.ErrTimedOut):
		return causeDeadline
	case errors.Is(err, sessions.ErrUnavailable):
		return causeDatabase
	}
	return causeOther
}

// problem is an RFC 9457 problem details object.
type problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Code      string            `json:"code"`
	Detail    string            `json:"detail"`
	Errors    map[string]string `json:"errors,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
}

// retryAfterSeconds is what a 503 asks clients to wait.
const retryAfterSeconds = "2"

// writeError answers err as problem+json. An error that is not a
// *sessions.Error is logged with its cause and answered as a bare
// internal error; an unavailable one is logged with its cause too.
func writeError(c *gin.Context, err error) {
	if clientGone(c) {
		// Nobody is left to answer, and nothing went wrong on our side:
		// the work was cut short (a transaction rolled back) because the
		// client hung up. Recorded as 499, at most an info access-log line.
		slog.DebugContext(c.Request.Context(), "client went away",
			"request_id", requestID(c), "error", err.Error())
		c.AbortWithStatus(StatusClientClosedRequest)
		return
	}
	var se *sessions.Error
	if !errors.As(err, &se) {
		se = &sessions.Error{Code: sessions.CodeInternal, Message: "Something went wrong on our side; it has been logged."}
	}
	status, ok := statusOf[se.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 && !isRefusal(err) {
		slog.ErrorContext(c.Request.Context(), "request failed",
			"request_id", requestID(c), "code", se.Code, "error", err.Error())
	}
	switch status {
	case http.StatusServiceUnavailable:
		c.Header("Retry-After", retryAfterSeconds)
		c.Set(unavailableCauseKey, unavailableCause(err))
	case http.StatusUnauthorized:
		c.Header("WWW-Authenticate", `Bearer realm="sessiond"`)
	}
	body := problem{
		Type:      "urn:sessiond:error:" + se.Code,
		Title:     http.StatusText(status),
		Status:    status,
		Code:      se.Code,
		Detail:    se.Message,
		Errors:    se.Fields,
		RequestID: requestID(c),
	}
	c.Abort()
	c.Render(status, problemRender{body})
}

// isRefusal reports whether err is a 503 that sheds load by policy
// rather than a failure: the event-stream limits, logged below ERROR
// where they are decided (internal/events).
func isRefusal(err error) bool {
	return errors.Is(err, events.ErrTooManyStreams) || errors.Is(err, events.ErrTooManySessionStreams)
}

// problemRender writes JSON as application/problem+json.
type problemRender struct{ p problem }

func (r problemRender) Render(w http.ResponseWriter) error {
	r.WriteContentType(w)
	b, err := json.Marshal(r.p)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (r problemRender) WriteContentType(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/problem+json")
}
