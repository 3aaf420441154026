package browser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// app is the tiny backend of a web application that uses sessiond: it
// serves its page, checks passwords (its job, not sessiond's) and signs a
// browser in by calling sessiond's POST /sessions with its API key and
// forwarding the answer's Set-Cookie headers unchanged. It never spells a
// cookie attribute itself.
//
// It speaks to sessiond with plain net/http; the Go client package
// (client.New, SignIn, ForwardCookies) does the same calls and can replace
// signIn and forwardCookies one for one.
type app struct {
	sessiond   string // sessiond's base URL as the backend reaches it
	apiKey     string
	cookieName string
	// pageAPI is sessiond's base URL as the page reaches it: a path on the
	// app's own origin (proxied) or a sibling host; absolute either way.
	pageAPI string
	// proxyPrefix, when set, serves sessiond under this path of the app's
	// origin (a reverse proxy, as nginx or the app's framework would).
	proxyPrefix string
	http        *http.Client
}

func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.page)
	mux.HandleFunc("POST /signin", a.signIn)
	if a.proxyPrefix != "" {
		target, err := url.Parse(a.sessiond)
		if err != nil {
			panic(err)
		}
		proxy := httputil.NewSingleHostReverseProxy(target)
		mux.Handle(a.proxyPrefix+"/", http.StripPrefix(a.proxyPrefix, proxy))
	}
	return mux
}

// password is the app's own credential check: a test stand-in for a real
// password store.
func password(user string) string { return "correct horse " + user }

// signIn checks the password, then asks sessiond for a session on the
// browser's client (found from the active cookie the browser sent, so a
// second account joins the first in multi mode) and forwards the cookies.
func (a *app) signIn(w http.ResponseWriter, r *http.Request) {
	var in struct{ User, Password string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Password != password(in.User) {
		http.Error(w, `{"error":"wrong user or password"}`, http.StatusUnauthorized)
		return
	}
	body := map[string]string{"user_id": in.User, "user_agent": r.UserAgent()}
	if c, err := r.Cookie(a.cookieName); err == nil {
		if clientID, ok := a.clientOf(c.Value); ok {
			body["client_id"] = clientID
		}
	}
	resp, err := a.call(http.MethodPost, "/sessions", "Bearer "+a.apiKey, body)
	if err != nil {
		http.Error(w, `{"error":"sessiond is unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		http.Error(w, fmt.Sprintf(`{"error":"sessiond answered %d"}`, resp.StatusCode), http.StatusBadGateway)
		return
	}
	var created struct {
		Session struct {
			ID string `json:"id"`
		} `json:"session"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil {
		http.Error(w, `{"error":"bad answer from sessiond"}`, http.StatusBadGateway)
		return
	}
	forwardCookies(w, resp)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"session_id": created.Session.ID})
}

// forwardCookies copies sessiond's Set-Cookie headers to the browser's
// answer, unchanged.
func forwardCookies(w http.ResponseWriter, resp *http.Response) {
	for _, v := range resp.Header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", v)
	}
}

// clientOf is the client of the session whose token the browser holds.
func (a *app) clientOf(token string) (string, bool) {
	resp, err := a.call(http.MethodGet, "/session", "Bearer "+token, nil)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var s struct {
		ClientID string `json:"client_id"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&s) != nil {
		return "", false
	}
	return s.ClientID, true
}

func (a *app) call(method, path, authorization string, body any) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.sessiond+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", authorization)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.http == nil {
		a.http = &http.Client{Timeout: 10 * time.Second}
	}
	return a.http.Do(req)
}

// The page: a sign-in call to its own backend, and call(), which fetches
// sessiond with the browser's cookies ({credentials: "include"}) and
// answers {status, body}, or {status: 0, error} when the browser refused
// (a failed CORS preflight).
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>app</title></head><body>
<h1>app</h1>
<script>
const API = {{.}};
async function call(method, path, body, contentType) {
  const init = {method, credentials: "include", headers: {}};
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = contentType || "application/json";
  }
  try {
    const r = await fetch(API + path, init);
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch (e) {}
    return {status: r.status, body: json};
  } catch (e) {
    return {status: 0, error: String(e)};
  }
}
async function signIn(user, password) {
  const r = await fetch("/signin", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({user, password})});
  return {status: r.status, body: await r.json()};
}
</script>
</body></html>
`))

func (a *app) page(w http.ResponseWriter, r *http.Request) {
	servePage(w, a.pageAPI)
}

// servePage serves the page calling sessiond at api (an absolute URL).
func servePage(w http.ResponseWriter, api string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTemplate.Execute(w, api)
}
