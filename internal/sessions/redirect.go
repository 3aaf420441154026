package sessions

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

const (
	maxRedirectURLLength = 2048
	maxHostnameLength    = 253 // DNS
)

// ParseOrigin normalises an allowed redirect origin such as
// "https://app.example.com" or "http://localhost:3000".
// Origins are printable ASCII: an international domain is given in
// punycode, as browsers send it.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '\\' }) || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" ||
		u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an origin like https://app.example.com", s)
	}
	origin := originOf(u)
	if len(u.Hostname()) > maxHostnameLength || strings.ContainsFunc(origin, func(r rune) bool { return r <= ' ' || r >= 0x7f }) { // "http://%80" unescaped
		return "", fmt.Errorf("%q is not an origin like https://app.example.com", s)
	}
	return origin, nil
}

// originOf is u's origin as a browser writes it: lower case, without the
// scheme's default port.
func originOf(u *url.URL) string {
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if port := u.Port(); (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		host = strings.TrimSuffix(host, ":"+port)
	}
	return scheme + "://" + host
}

// checkRedirectURL accepts a relative path ("/", "/goodbye", never "//...")
// or an absolute http(s) URL whose origin is allowed, and returns it as
// given. Anything else is invalid_redirect_url.
func checkRedirectURL(raw string, allowedOrigins []string) (string, error) {
	if raw == "" {
		return "", nil
	}
	bad := Errorf(CodeInvalidRedirectURL,
		"redirect_url must be a relative path such as /goodbye or an absolute URL on an allowed origin.")
	// It is echoed in a JSON answer, so it must be valid UTF-8 as given.
	// Browsers read a backslash as a slash ("/\evil.com" is "//evil.com"),
	// and control characters and spaces have no place in a URL we echo.
	if len(raw) > maxRedirectURLLength || !utf8.ValidString(raw) || strings.ContainsFunc(raw, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '\\'
	}) {
		return "", bad
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", bad
	}
	if strings.HasPrefix(raw, "/") {
		if strings.HasPrefix(raw, "//") || u.Scheme != "" || u.Host != "" {
			return "", bad
		}
		return raw, nil
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
		return "", bad
	}
	origin := originOf(u)
	for _, allowed := range allowedOrigins {
		if origin == allowed {
			return raw, nil
		}
	}
	return "", bad
}
