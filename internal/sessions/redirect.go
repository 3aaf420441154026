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

// ValidRedirectPath reports whether raw is a relative path sessiond
// accepts as a redirect_url ("/", "/goodbye"; never "//..." nor a path
// whose dot-segment-removed form starts with "//"). Apps use the same rule
// for their own return paths (client.RedirectPath).
func ValidRedirectPath(raw string) bool {
	if !strings.HasPrefix(raw, "/") {
		return false
	}
	_, err := checkRedirectURL(raw, nil)
	return err == nil
}

// pathOf is the path of a relative URL: raw up to its query or fragment.
func pathOf(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		return raw[:i]
	}
	return raw
}

// removeDotSegments is RFC 3986's remove_dot_segments (5.2.4) on an
// absolute path, reading "." and ".." percent-encoded as browsers do
// (the WHATWG URL standard: "%2e", ".%2E", ...).
func removeDotSegments(p string) string {
	segments := strings.Split(p, "/")[1:]
	out := make([]string, 0, len(segments))
	for i, seg := range segments {
		last := i == len(segments)-1
		switch strings.ReplaceAll(strings.ToLower(seg), "%2e", ".") {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
			continue
		}
		if last {
			out = append(out, "") // "/a/." is "/a/"
		}
	}
	return "/" + strings.Join(out, "/")
}

// checkRedirectURL accepts a relative path ("/", "/goodbye", never "//..."
// nor "/.//...")
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
		// "//..." is a network-path reference whatever follows, even an
		// empty authority ("///../.." leaves Go with no host, a browser
		// skips the extra slashes and reads one). "/.//evil.test" is the
		// path "//evil.test" once a browser removed its dot segments:
		// same-origin here, but the shape that becomes an open redirect
		// behind a server that echoes paths into Location.
		if strings.HasPrefix(raw, "//") || strings.HasPrefix(removeDotSegments(pathOf(raw)), "//") || u.Scheme != "" || u.Host != "" {
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
