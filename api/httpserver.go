package api

import (
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
	pick := func(v, def time.Duration) time.Duration {
		if v == 0 {
			return def
		}
		return v
	}
	if limits.MaxHeaderBytes == 0 {
		limits.MaxHeaderBytes = d.MaxHeaderBytes
	}
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: pick(limits.ReadHeaderTimeout, d.ReadHeaderTimeout),
		ReadTimeout:       pick(limits.ReadTimeout, d.ReadTimeout),
		WriteTimeout:      pick(limits.WriteTimeout, d.WriteTimeout),
		IdleTimeout:       pick(limits.IdleTimeout, d.IdleTimeout),
		MaxHeaderBytes:    limits.MaxHeaderBytes,
		ErrorLog:          errorLog,
	}
}
