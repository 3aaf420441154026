package api

import (
	"cmp"
	"log"
	"net/http"
	"time"
)

// ServerLimits bound what one connection may take of the server, so slow
// or oversized clients are cut off instead of holding a connection and a
// goroutine for as long as they like. A zero field takes its value from
// DefaultServerLimits.
type ServerLimits struct {
	// ReadHeaderTimeout bounds reading the request line and headers: a
	// client that trickles them (slowloris) is disconnected.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading the whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds the time from the end of the request headers to
	// the end of the answer.
	WriteTimeout time.Duration
	// IdleTimeout bounds how long a kept-alive connection waits for its
	// next request.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers; net/http answers
	// a larger request 431 without calling the handler.
	MaxHeaderBytes int
}

// DefaultServerLimits are sessiond's limits. Config.RequestTimeout (5s by
// default) bounds the work of a request well within WriteTimeout.
var DefaultServerLimits = ServerLimits{
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      30 * time.Second,
	IdleTimeout:       2 * time.Minute,
	MaxHeaderBytes:    32 << 10,
}

// NewHTTPServer returns the server that serves handler on addr within
// limits. errorLog receives net/http's own complaints (nil: the log
// package's standard logger). The caller starts it (Serve or
// ListenAndServe) and shuts it down.
func NewHTTPServer(addr string, handler http.Handler, limits ServerLimits, errorLog *log.Logger) *http.Server {
	d := DefaultServerLimits
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: cmp.Or(limits.ReadHeaderTimeout, d.ReadHeaderTimeout),
		ReadTimeout:       cmp.Or(limits.ReadTimeout, d.ReadTimeout),
		WriteTimeout:      cmp.Or(limits.WriteTimeout, d.WriteTimeout),
		IdleTimeout:       cmp.Or(limits.IdleTimeout, d.IdleTimeout),
		MaxHeaderBytes:    cmp.Or(limits.MaxHeaderBytes, d.MaxHeaderBytes),
		ErrorLog:          errorLog,
	}
}
