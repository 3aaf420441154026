package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sessiond/sessiond/internal/sessions"
)

const (
	apiKeyPrefix    = "sk_"
	minAPIKeyLength = len(apiKeyPrefix) + 16
	maxAPIKeyLength = 256
)

// apiKeys holds the SHA-256 of each configured key, never the key itself,
// and compares presented keys in constant time.
type apiKeys struct {
	hashes       [][sha256.Size]byte
	fingerprints []string
}

// parseAPIKeys checks and hashes the configured keys. Errors never quote a
// key.
func parseAPIKeys(keys []string) (apiKeys, error) {
	var k apiKeys
	for i, key := range keys {
		if !strings.HasPrefix(key, apiKeyPrefix) || len(key) < minAPIKeyLength || len(key) > maxAPIKeyLength ||
			strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r > '~' }) {
			return apiKeys{}, fmt.Errorf("SESSIOND_API_KEYS: key %d must be sk_ followed by 16 to 253 printable ASCII characters", i+1)
		}
		h := sha256.Sum256([]byte(key))
		k.hashes = append(k.hashes, h)
		k.fingerprints = append(k.fingerprints, hex.EncodeToString(h[:6]))
	}
	return k, nil
}

// match returns the fingerprint of the configured key equal to presented.
// It compares against every key, so the time taken does not say which
// key, or how much of one, matched.
func (k apiKeys) match(presented string) (string, bool) {
	if len(presented) < minAPIKeyLength || len(presented) > maxAPIKeyLength {
		return "", false
	}
	h := sha256.Sum256([]byte(presented))
	found := -1
	for i := range k.hashes {
		if subtle.ConstantTimeCompare(h[:], k.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return k.fingerprints[found], true
}

// Context keys of the authenticated caller.
const (
	callerKey  = "sessiond.caller"
	browserKey = "sessiond.browser"
	// tokenKey holds a session token authenticateSignOut left unchecked
	// for the handler.
	tokenKey = "sessiond.token"
)

// authenticate is middleware that resolves the caller from the
// Authorization header (an API key or a session token) or, without one,
// the session cookie, and answers 401 when there is none. Every refusal
// has the same body, whatever the reason.
//
// A caller without an Authorization header is a browser: a refusal of its
// cookies also clears the dead ones (sessions.Service.CookiesAfterAuthFailure).
func (h *handlers) authenticate(c *gin.Context) {
	credential, browser, err := h.credential(c)
	if err != nil {
		writeError(c, err)
		return
	}
	viaCookie := browser != nil
	var caller sessions.Caller
	switch {
	case strings.HasPrefix(credential, apiKeyPrefix) && !viaCookie:
		fp, ok := h.keys.match(credential)
		if !ok {
			writeError(c, sessions.ErrUnauthenticated)
			return
		}
		caller = sessions.Backend(fp)
	default:
		sess, err := h.svc.Authenticate(c.Request.Context(), credential)
		if errors.Is(err, sessions.ErrUnauthenticated) && viaCookie {
			h.cookies.write(c, h.svc.CookiesAfterAuthFailure(*browser))
		}
		if err != nil {
			writeError(c, err)
			return
		}
		caller = sessions.Holder(sess)
	}
	c.Set(callerKey, caller)
	if viaCookie {
		c.Set(browserKey, browser)
	}
	c.Next()
}

// authenticateSignOut is authenticate for DELETE /session. A session
// token (bearer or cookie) on a plain sign-out, without session_id, is
// left for the handler, which checks it inside the sign-out's own
// transaction (sessions.Service.SignOutToken): one round trip to the
// database fewer, the same answers; the handler records the caller once
// that transaction authenticated it, so a handler or middleware after it
// finds the caller as on every other route. Every other request is
// authenticated here as usual.
func (h *handlers) authenticateSignOut(c *gin.Context) {
	credential, browser, err := h.credential(c)
	if err != nil {
		writeError(c, err)
		return
	}
	_, namesSession := c.GetQuery("session_id")
	if namesSession || credential == "" || (browser == nil && strings.HasPrefix(credential, apiKeyPrefix)) {
		h.authenticate(c)
		return
	}
	c.Set(tokenKey, credential)
	if browser != nil {
		c.Set(browserKey, browser)
	}
	c.Next()
}

// credential returns the bearer credential, or, when there is no
// Authorization header, the active cookie's token and the cookies the
// browser carried (nil when it carried none of sessiond's). A request
// carrying one of sessiond's cookie names twice is ErrUnauthenticated:
// nothing says which copy is the browser's own (one may have been planted
// by another host of the site), so it is refused before anything is
// looked up, ended or cleared.
func (h *handlers) credential(c *gin.Context) (string, *sessions.Browser, error) {
	if auth := c.GetHeader("Authorization"); auth != "" {
		scheme, cred, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", nil, nil
		}
		return strings.TrimSpace(cred), nil, nil
	}
	b, err := h.cookies.browser(c.Request)
	if err != nil {
		return "", nil, sessions.ErrUnauthenticated
	}
	if b.Active == "" && len(b.Accounts) == 0 {
		return "", nil, nil
	}
	return b.Active, &b, nil
}

// browserOf returns the cookies of a caller that authenticated with them,
// or nil for a bearer credential.
func browserOf(c *gin.Context) *sessions.Browser {
	b, _ := c.Get(browserKey)
	browser, _ := b.(*sessions.Browser)
	return browser
}

// callerOf returns the caller that authenticate stored. A route that
// reads it without authenticate in front is a bug, not an anonymous
// backend, so it panics (and the recovery answers 500).
func callerOf(c *gin.Context) sessions.Caller {
	v, _ := c.Get(callerKey)
	caller, ok := v.(sessions.Caller)
	if !ok {
		panic("api: route reads the caller without the authenticate middleware")
	}
	return caller
}
