// Command demo is a web app that uses sessiond the way docs/go-client.md says an
// app should: its backend signs a browser in (after its own password
// check, which this demo skips: any user name will do) by asking sessiond
// for a session and forwarding the Set-Cookie headers; its pages talk to
// sessiond through a reverse proxy under /api/auth on the app's own origin,
// with @sessiond/js (React, Vue and plain-HTML pages, built by Vite into
// web/dist).
//
//	SESSIOND_URL=http://127.0.0.1:8080 SESSIOND_API_KEY=sk_... go run ./examples/demo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sessiond/sessiond/client"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	addr := fs.String("addr", or(getenv("DEMO_ADDR"), "127.0.0.1:3000"), "address to listen on (DEMO_ADDR)")
	sessiondURL := fs.String("sessiond", or(getenv("SESSIOND_URL"), "http://127.0.0.1:8080"), "sessiond's base URL as the backend reaches it (SESSIOND_URL)")
	apiKey := fs.String("api-key", getenv("SESSIOND_API_KEY"), "an API key of sessiond (SESSIOND_API_KEY)")
	web := fs.String("web", or(getenv("DEMO_WEB_DIR"), "examples/demo/web/dist"), "the built pages (DEMO_WEB_DIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *apiKey == "" {
		return errors.New("SESSIOND_API_KEY is required")
	}
	if _, err := os.Stat(*web); err != nil {
		return fmt.Errorf("the pages are not built (%w): cd examples/demo/web && npm ci && npm run build", err)
	}
	target, err := url.Parse(*sessiondURL)
	if err != nil || target.Host == "" {
		return fmt.Errorf("SESSIOND_URL %q is not an absolute URL", *sessiondURL)
	}
	backend, err := newSessiond(*sessiondURL, *apiKey)
	if err != nil {
		return err
	}
	h := handler(backend, target, http.Dir(*web))

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("demo listening", "addr", *addr, "sessiond", *sessiondURL)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

func handler(s *sessiond, target *url.URL, web http.FileSystem) http.Handler {
	mux := http.NewServeMux()

	// sessiond on the app's own origin: the page calls /api/auth/session and
	// the browser sends the host-only cookie. Only the paths a page calls
	// go through (not sessiond's /metrics), event streams as they come.
	mux.Handle("/api/auth/", http.StripPrefix("/api/auth", client.Proxy(target)))

	// The sign-in form is protected from cross-site requests (CSRF) by
	// net/http's CrossOriginProtection: a browser marks every request with
	// Sec-Fetch-Site or Origin, and a POST from another origin is 403
	// before it reaches the handler. The "return" path follows sessiond's
	// own redirect rule (client.RedirectPath), not one of the demo's.
	csrf := http.NewCrossOriginProtection()
	mux.Handle("POST /sign-in", csrf.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := strings.TrimSpace(r.FormValue("user_id"))
		back := client.RedirectPath(r.FormValue("return"), "/")
		if user == "" {
			http.Error(w, "a user name is required", http.StatusBadRequest)
			return
		}
		// The password check would go here: it is the app's job, not sessiond's.
		err := s.signIn(r.Context(), w, r, user)
		if errors.Is(err, client.ErrDuplicateCookie) {
			http.Error(w, "the browser sent a session cookie twice; sign-in refused", http.StatusUnauthorized)
			return
		}
		if err != nil {
			slog.Warn("sign-in failed", "err", err)
			http.Error(w, "cannot sign in: "+err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
	})))

	// What the backend itself knows of the caller, through the Go client's
	// middleware: 401 when signed out, 503 when sessiond cannot say.
	mux.Handle("GET /api/me", s.me())

	mux.Handle("/", http.FileServer(web))
	return mux
}
