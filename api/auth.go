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
)

// authenticate is middleware that resolves the caller from the
// Authorization header (an API key or a session token) or, without one,
// the session cookie, and answers 401 when there is none. Every refusal
// has the same body, whatever the reason.
//
// A caller without an Authorization header is a browser: a refusal of its
// cookies also clears the dead ones (refuse).
//
// DELETE /session has no authenticate in front: the service's SignOut
// takes the credential itself, to check it inside the sign-out's own
// transaction (one round trip fewer), and the handler records the caller
// it returns (setCaller).
func (h *handlers) authenticate(c *gin.Context) {
	credential, browser, err := h.credential(c)
	if err != nil {
		writeError(c, err)
		return
	}
	caller, isKey, err := h.apiKeyCaller(credential, browser)
	if !isKey && err == nil {
		var sess sessions.Session
		sess, err = h.svc.Authenticate(c.Request.Context(), credential)
		caller = sessions.Holder(sess)
	}
	if err != nil {
		h.refuse(c, browser, err)
		return
	}
	setCaller(c, caller, browser)
	c.Next()
}

// apiKeyCaller returns the backend of credential when it is an API key
// in the Authorization header (isKey), ErrUnauthenticated when it looks
// like one but matches none. An sk_ value in a cookie is not a key: it is
// looked up as a session token, and refused like any unknown one.
func (h *handlers) apiKeyCaller(credential string, browser *sessions.Browser) (caller sessions.Caller, isKey bool, err error) {
	if browser != nil || !strings.HasPrefix(credential, apiKeyPrefix) {
		return sessions.Caller{}, false, nil
	}
	fp, ok := h.keys.match(credential)
	if !ok {
		return sessions.Caller{}, true, sessions.ErrUnauthenticated
	}
	return sessions.Backend(fp), true, nil
}

// setCaller records who the request authenticated as, and the cookies it
// came with (nil for a bearer credential), for the handler and whatever
// runs after it.
func setCaller(c *gin.Context, caller sessions.Caller, browser *sessions.Browser) {
	c.Set(callerKey, caller)
	if browser != nil {
		c.Set(browserKey, browser)
	}
}

// refuse writes err. When it is a 401 to a browser, whose active cookie
// is therefore dead (refused, or its session ended while the request
// ran), the answer also clears that cookie and the account cookies
// holding the same token (sessions.Service.CookiesAfterAuthFailure).
func (h *handlers) refuse(c *gin.Context, browser *sessions.Browser, err error) {
	if browser != nil && errors.Is(err, sessions.ErrUnauthenticated) {
		h.cookies.write(c, h.svc.CookiesAfterAuthFailure(*browser))
	}
	writeError(c, err)
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
