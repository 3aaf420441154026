package api

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/sessiond/sessiond/internal/sessions"
)

// Reading a request fails closed. Go's URL.Query() silently drops a pair
// it cannot parse (a ";" separator, a bad %-escape), and a handler that then
// finds ?except= or ?session_id= "absent" widens a sign-out; Gin decodes
// path parameters as query strings, so "+" in a user ID would become a
// space and end another user's sessions. Here every query string is parsed
// strictly before anything else happens, and path parameters are decoded
// as paths.

// strictQuery is middleware for every route: a query string that does not
// parse is 400 invalid_request before authentication or any other work.
func strictQuery(c *gin.Context) {
	if c.Request.URL.RawQuery == "" {
		c.Next()
		return
	}
	if _, err := url.ParseQuery(c.Request.URL.RawQuery); err != nil {
		writeError(c, &sessions.Error{Code: sessions.CodeInvalidRequest,
			Message: "The query string is malformed (a ';' separator or a bad %-escape); nothing was done.",
			Fields:  map[string]string{"query": "must be name=value pairs separated by '&', each percent-encoded"}})
		return
	}
	c.Next()
}

// queryParams is middleware for an API route that takes the named query
// parameters: any other parameter, or one of them given twice, is 400
// invalid_request naming it. A misspelt ?sessionId= must not be read as
// "no session_id", and a repeated one must not be read as its first value.
func queryParams(allowed ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.URL.RawQuery == "" {
			c.Next()
			return
		}
		// strictQuery has checked that the query parses, so Query() has
		// dropped nothing.
		for name, values := range c.Request.URL.Query() {
			switch {
			case !slices.Contains(allowed, name):
				writeError(c, &sessions.Error{Code: sessions.CodeInvalidRequest, Message: "The request has invalid fields.",
					Fields: map[string]string{fieldName(name): "is not a query parameter of this endpoint"}})
				return
			case len(values) > 1:
				writeError(c, &sessions.Error{Code: sessions.CodeInvalidRequest, Message: "The request has invalid fields.",
					Fields: map[string]string{name: "must be given at most once"}})
				return
			}
		}
		c.Next()
	}
}

// fieldName bounds a caller-chosen parameter name before it is echoed in
// a problem.
func fieldName(name string) string {
	const max = 64
	if len(name) > max {
		return name[:max] + "…"
	}
	return name
}

// decodePathParams is middleware for every route with path parameters:
// the router matched the escaped path (Engine.UseEscapedPath), so each
// parameter is still escaped here and is decoded once, as a path segment
// ("+" stays "+"). A bad escape is 400 invalid_id.
func decodePathParams(c *gin.Context) {
	for i, p := range c.Params {
		v, err := url.PathUnescape(p.Value)
		if err != nil {
			writeError(c, sessions.Errorf(sessions.CodeInvalidID, "The %s in the path has a bad %%-escape.", p.Key))
			return
		}
		c.Params[i].Value = v
	}
	c.Next()
}

// closeAfterChunked closes the connection after answering a request sent
// with Transfer-Encoding: chunked. net/http accepts a request that carries
// both Content-Length and Transfer-Encoding, frames it by the chunks, and
// removes both headers before any handler runs, so the conflict itself
// cannot be seen here. A proxy in front that frames the same bytes by
// Content-Length would then see a different boundary between requests
// than sessiond does (request smuggling, RFC 9112 §11.2); RFC 9112 §6.1
// says to close the connection after such a message. Closing after every
// chunked request covers that case and costs little: sessiond's bodies are
// small JSON that clients send with a Content-Length (browsers always do),
// so chunked requests are rare and pay at most a new connection.
func closeAfterChunked(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TransferEncoding) > 0 {
			w.Header()["Connection"] = connectionClose
		}
		next.ServeHTTP(w, r)
	})
}

var connectionClose = []string{"close"}

// noBody is middleware for the routes that take no body: a request that
// sends one is 400 invalid_request. A DELETE /session with
// {"session_id": …} in its body must not be read as a plain signOut() that
// ends every account on the browser.
func noBody(c *gin.Context) {
	if c.Request.ContentLength != 0 || len(c.Request.TransferEncoding) > 0 {
		writeError(c, &sessions.Error{Code: sessions.CodeInvalidRequest, Message: "This endpoint takes no body; its parameters go in the query string.",
			Fields: map[string]string{"body": "must be empty"}})
		return
	}
	c.Next()
}
