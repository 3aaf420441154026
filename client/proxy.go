package client

import (
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
)

// pagePaths are sessiond's endpoints a page calls with the browser's
// cookies: who is signed in, switching and signing out, the event stream,
// the browser's accounts and signing out everywhere else. /metrics,
// /readyz, /openapi.yaml and the backend's endpoints are for the
// operator's network and the API key, never for the app's visitors.
var pagePaths = regexp.MustCompile(`^/(session(/active|/events)?|(clients|users)/[^/]+/sessions)$`)

// Headers a page's call to sessiond carries, and the answer's headers a
// page reads. Nothing else crosses: not the app's Authorization, not its
// forwarding headers, not a proxy's.
var (
	proxiedRequestHeaders = []string{"Accept", "Content-Type", "Cookie", "Last-Event-ID"}
	proxiedAnswerHeaders  = []string{"Content-Type", "Cache-Control", "Retry-After", "X-Request-Id", "Set-Cookie"}
)

// Proxy serves sessiond to the app's pages on the app's own origin, so the
// browser sends sessiond's host-only cookies with the page's calls. Mount
// it under a prefix with the prefix stripped:
//
//	mux.Handle("/api/auth/", http.StripPrefix("/api/auth", client.Proxy(sessiondURL)))
//
// Only the paths a page calls go through (any other is a 404 without a
// call to sessiond), with only the headers sessiond reads; the answer
// comes back as sessiond gave it (event streams flushed as they come),
// with its Set-Cookie headers verbatim. sessiond unreachable is a 502.
// It is the Go twin of @sessiond/js/server's proxyRequest.
func Proxy(sessiond *url.URL) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(sessiond)
			kept := http.Header{}
			for _, name := range proxiedRequestHeaders {
				if v := r.In.Header.Values(name); len(v) > 0 {
					kept[name] = v
				}
			}
			r.Out.Header = kept
		},
		ModifyResponse: func(res *http.Response) error {
			kept := http.Header{}
			for _, name := range proxiedAnswerHeaders {
				if v := res.Header.Values(name); len(v) > 0 {
					kept[name] = v
				}
			}
			res.Header = kept
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil { // not the page that left
				slog.Warn("sessiond unreachable", "path", r.URL.Path, "err", err)
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !pagePaths.MatchString(r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	})
}
