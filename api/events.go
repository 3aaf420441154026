package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sessiond/sessiond/internal/events"
	"github.com/sessiond/sessiond/internal/sessions"
)

// eventsRoute is GET /session/events.
const eventsRoute = "/session/events"

// keepAliveEvery is how long a stream stays silent at most: the contract
// (openapi.yaml, GET /session/events) promises a keep-alive comment every
// 10 s without an event, below the 15 s idle timeout common in proxies, so
// they keep a quiet stream open.
const keepAliveEvery = 10 * time.Second

// streamWriteTimeout bounds each write to a stream, so a client that stops
// reading is cut off instead of holding the stream for ever.
const streamWriteTimeout = 10 * time.Second

// reconnectMillis is the SSE retry: field, how soon an EventSource
// reconnects after the stream drops.
const reconnectMillis = 1000

// unboundedCtxKey holds the request's context before limits bounded it
// with RequestTimeout: a stream lives longer than any request.
const unboundedCtxKey = "sessiond.unbounded_ctx"

var errBadLastEventID = &sessions.Error{Code: sessions.CodeInvalidRequest, Message: "The request has invalid fields.",
	Fields: map[string]string{"Last-Event-ID": "must be the id of an event this service sent (a whole number)"}}

// streamEvents is GET /session/events: Server-Sent Events of the sessions
// on the caller's client, until the caller's own session ends.
func (h *handlers) streamEvents(c *gin.Context) {
	caller := callerOf(c)
	own, err := h.svc.CurrentSession(caller)
	if err != nil {
		writeError(c, err)
		return
	}
	if h.cfg.Events == nil {
		writeError(c, events.ErrClosed)
		return
	}
	var lastID int64
	header := strings.TrimSpace(c.GetHeader("Last-Event-ID"))
	resume := header != ""
	if resume {
		if lastID, err = strconv.ParseInt(header, 10, 64); err != nil || lastID < 0 {
			writeError(c, errBadLastEventID)
			return
		}
	}
	stream, err := h.cfg.Events.Open(c.Request.Context(), own, lastID, resume)
	if err != nil {
		writeError(c, err)
		return
	}
	defer stream.Close()
	// The stream listens now; a session that ended after authenticate and
	// before that would send its event to no one, so look once more. From
	// here on its ending arrives as an event.
	if now, err := h.svc.GetSession(c.Request.Context(), caller, own.ID); err != nil || now.Status != sessions.StatusActive {
		if err == nil || errors.Is(err, sessions.ErrSessionNotFound) {
			err = sessions.ErrUnauthenticated
		}
		writeError(c, err)
		return
	}

	ctx := c.Request.Context()
	if unbounded, ok := c.Get(unboundedCtxKey); ok {
		ctx = unbounded.(context.Context)
	}
	rc := http.NewResponseController(c.Writer)
	// Neither the server's WriteTimeout nor its ReadTimeout may cut the
	// stream: each write gets its own deadline below instead.
	_ = rc.SetReadDeadline(time.Time{})
	c.Header("Content-Type", "text/event-stream")
	c.Header("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	c.Status(http.StatusOK)
	write := func(format string, args ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := fmt.Fprintf(c.Writer, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: %d\n\n", reconnectMillis) {
		return
	}
	for {
		e, err := stream.Next(ctx, keepAliveEvery)
		switch {
		case errors.Is(err, events.ErrIdle):
			if !write(": keep-alive\n\n") {
				return
			}
			continue
		case err != nil:
			// The caller's own session ended (its ending event, if past
			// the stream's position, was the last one written), shutdown,
			// a gone client, or a database error while catching up: the
			// client reconnects with Last-Event-ID, and a token no longer
			// active gets 401.
			return
		}
		if !write("event: %s\nid: %s\ndata: %s\n\n", e.Type(), events.ID(e), events.Payload(e)) {
			return
		}
		if e.Session.ID == own.ID && e.Ends() {
			return
		}
	}
}
