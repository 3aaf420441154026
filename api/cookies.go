package api

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sessiond/sessiond/internal/sessions"
)

// CookieSettings are the attributes of every cookie sessiond sets or
// clears. One cookies value builds them all, so a clearing cookie always
// matches the cookie the browser holds (same name, Domain and Path).
type CookieSettings struct {
	Name     string // SESSIOND_COOKIE_NAME; the account cookies are Name_<session id>
	Domain   string // SESSIOND_COOKIE_DOMAIN; empty: host-only
	Path     string // SESSIOND_COOKIE_PATH; empty means /
	SameSite string // SESSIOND_COOKIE_SAMESITE: lax, strict or none; empty means lax
	Secure   bool   // SESSIOND_COOKIE_SECURE
}

// cookies builds sessiond's cookies with the configured attributes plus
// HttpOnly.
type cookies struct {
	CookieSettings
	sameSite http.SameSite
}

// newCookies checks the settings; every error names the setting at fault.
func newCookies(s CookieSettings) (cookies, error) {
	if s.Name == "" {
		s.Name = "__session"
	}
	if s.Path == "" {
		s.Path = "/"
	}
	if s.SameSite == "" {
		s.SameSite = "lax"
	}
	c := cookies{CookieSettings: s}
	if err := CheckCookieName(s.Name); err != nil {
		return c, err
	}
	if err := CheckCookieDomain(s.Domain); err != nil {
		return c, err
	}
	if err := CheckCookiePath(s.Path); err != nil {
		return c, err
	}
	switch strings.ToLower(s.SameSite) {
	case "lax":
		c.sameSite = http.SameSiteLaxMode
	case "strict":
		c.sameSite = http.SameSiteStrictMode
	case "none":
		if !s.Secure {
			return c, fmt.Errorf("SESSIOND_COOKIE_SAMESITE: none needs SESSIOND_COOKIE_SECURE=true (browsers refuse SameSite=None cookies that are not Secure)")
		}
		c.sameSite = http.SameSiteNoneMode
	default:
		return c, fmt.Errorf("SESSIOND_COOKIE_SAMESITE: want lax, strict or none (got %q)", s.SameSite)
	}
	c.Domain = strings.TrimPrefix(strings.ToLower(s.Domain), ".")
	// Browsers refuse prefixed cookies whose attributes break the prefix's
	// promise (RFC 6265bis 4.1.3).
	if strings.HasPrefix(s.Name, "__Secure-") && !s.Secure {
		return c, fmt.Errorf("SESSIOND_COOKIE_NAME: a __Secure- cookie needs SESSIOND_COOKIE_SECURE=true")
	}
	if strings.HasPrefix(s.Name, "__Host-") && (!s.Secure || c.Domain != "" || s.Path != "/") {
		return c, fmt.Errorf("SESSIOND_COOKIE_NAME: a __Host- cookie needs SESSIOND_COOKIE_SECURE=true, no SESSIOND_COOKIE_DOMAIN and SESSIOND_COOKIE_PATH=/")
	}
	return c, nil
}

// CheckCookieSettings reports the first bad cookie setting, naming it;
// api.New makes the same check.
func CheckCookieSettings(s CookieSettings) error {
	_, err := newCookies(s)
	return err
}

// CheckCookieName refuses a SESSIOND_COOKIE_NAME that is not an RFC 6265
// token.
func CheckCookieName(name string) error {
	if name == "" || len(name) > 64 || strings.ContainsFunc(name, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r)
	}) {
		return fmt.Errorf("SESSIOND_COOKIE_NAME: want a cookie name of at most 64 token characters (got %q)", name)
	}
	return nil
}

// CheckCookieDomain refuses a SESSIOND_COOKIE_DOMAIN that is not a host
// name (an optional leading dot is ignored, as browsers do). Empty means
// host-only.
func CheckCookieDomain(domain string) error {
	d := strings.TrimPrefix(strings.ToLower(domain), ".")
	if domain == "" {
		return nil
	}
	bad := fmt.Errorf("SESSIOND_COOKIE_DOMAIN: want a host name such as example.com, without scheme, port or path (got %q)", domain)
	if len(d) > 253 || net.ParseIP(d) != nil {
		return bad
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.ContainsFunc(label, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') }) {
			return bad
		}
	}
	return nil
}

// CheckCookiePath refuses a SESSIOND_COOKIE_PATH that does not start with
// "/" or holds a ";" or a character outside printable ASCII.
func CheckCookiePath(path string) error {
	if !strings.HasPrefix(path, "/") || len(path) > 1024 ||
		strings.ContainsFunc(path, func(r rune) bool { return r < 0x20 || r >= 0x7f || r == ';' }) {
		return fmt.Errorf("SESSIOND_COOKIE_PATH: want a path starting with / without ; or control characters (got %q)", path)
	}
	return nil
}

// accountName is the name of the account cookie of a session (multi mode).
func (k cookies) accountName(sessionID string) string { return k.Name + "_" + sessionID }

func (k cookies) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Domain:   k.Domain,
		Path:     k.Path,
		HttpOnly: true,
		Secure:   k.Secure,
		SameSite: k.sameSite,
	}
	if secs := int(maxAge / time.Second); secs > 0 {
		c.MaxAge = secs
	} else {
		c.MaxAge = -1 // net/http writes Max-Age=0: the browser drops it
	}
	return c
}

// browser reads the cookies a request carried: the active cookie and
// every well-formed account cookie (sessions.ReadBrowser). A sessiond
// cookie name that appears twice is sessions.ErrDuplicateCookie.
func (k cookies) browser(r *http.Request) (sessions.Browser, error) {
	return sessions.ReadBrowser(k.Name, func(yield func(string, string) bool) {
		for _, c := range r.Cookies() {
			if !yield(c.Name, c.Value) {
				return
			}
		}
	})
}

// write turns the service's cookie changes into Set-Cookie headers:
// clearings first, so a cookie both cleared and set ends up set.
func (k cookies) write(c *gin.Context, ch sessions.CookieChanges) {
	if ch.ClearActive && ch.SetActive == nil {
		http.SetCookie(c.Writer, k.cookie(k.Name, "", 0))
	}
	for _, id := range ch.ClearAccounts {
		http.SetCookie(c.Writer, k.cookie(k.accountName(id), "", 0))
	}
	if a := ch.SetActive; a != nil {
		http.SetCookie(c.Writer, k.cookie(k.Name, a.Token, a.MaxAge))
	}
	for _, a := range ch.SetAccounts {
		http.SetCookie(c.Writer, k.cookie(k.accountName(a.SessionID), a.Token, a.MaxAge))
	}
}
