package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sessiond/sessiond/internal/db"
	"github.com/sessiond/sessiond/internal/sessions"
	"github.com/sessiond/sessiond/internal/testbed"
	"github.com/sessiond/sessiond/internal/wire"
)

// The floor servers answer GET /session with as little as this stack
// allows, so that `make bench` shows how much of sessiond's CPU per request
// is its own and how much any server on net/http and pgx pays:
//
//   - floorLookup: net/http, the bearer token's SHA-256, sessiond's own
//     pooled and batched lookup (internal/db), the same JSON object. No
//     Gin, no middleware, no request ID, metrics, timeouts or access log,
//     no activity write.
//   - floorConstant: net/http answering the same bytes from memory, no
//     database: the HTTP exchange alone.
//
// Each runs as its own process (this binary, re-executed), so its CPU is
// measured like sessiond's.
const (
	floorLookup   = "lookup"
	floorConstant = "constant"
	floorCommand  = "floor-server" // the hidden first argument
)

// runFloorServer is the re-executed process: it serves until SIGTERM.
func runFloorServer(args []string) error {
	fs := flag.NewFlagSet(floorCommand, flag.ContinueOnError)
	kind := fs.String("kind", floorLookup, "lookup or constant")
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	dbURL := fs.String("database-url", "", "the benchmark database (lookup)")
	bodyFile := fs.String("body", "", "the answer to send (constant)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	switch *kind {
	case floorLookup:
		store, err := db.Open(ctx, *dbURL, 0) // pgx's default pool, as sessiond's default
		if err != nil {
			return err
		}
		defer store.Close()
		mux.HandleFunc("GET /session", func(w http.ResponseWriter, r *http.Request) {
			token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			sess, err := store.SessionByTokenHash(r.Context(), sessions.HashToken(token))
			if err != nil {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			b, _ := json.Marshal(wire.FromSession(sess))
			_, _ = w.Write(b)
		})
	case floorConstant:
		body, err := os.ReadFile(*bodyFile)
		if err != nil {
			return err
		}
		mux.HandleFunc("GET /session", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(body)
		})
	default:
		return fmt.Errorf("-kind: want %s or %s", floorLookup, floorConstant)
	}
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startFloor starts a floor server of kind in its own process; answer is
// what sessiond answered for one session (the constant kind sends it).
func startFloor(ctx context.Context, kind, dbURL string, answer []byte, dir string) (*sessiond, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	port, err := testbed.FreePort()
	if err != nil {
		return nil, err
	}
	bodyFile := filepath.Join(dir, "floor-answer.json")
	if err := os.WriteFile(bodyFile, answer, 0o600); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(self, floorCommand, "-kind", kind, "-addr", addr, "-database-url", dbURL, "-body", bodyFile)
	p, err := testbed.Start(ctx, testbed.Server{Name: "floor server " + kind, Cmd: cmd, Addr: addr,
		LogFile: filepath.Join(dir, "floor-"+kind+".log"), Ready: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	return &sessiond{Process: p}, nil
}

// sessionAnswer is sessiond's answer to GET /session for token.
func sessionAnswer(addr, token string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/session", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET /session answered %d", resp.StatusCode)
	}
	return body, err
}
