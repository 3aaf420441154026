package browser

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"

	"github.com/sessiond/sessiond/client"
)

// app is the tiny backend of a web application that uses sessiond: it
// serves its page, checks passwords (its job, not sessiond's) and signs a
// browser in through the Go client (client.SignIn), forwarding the
// answer's Set-Cookie headers unchanged (client.ForwardCookies). It never
// spells a cookie attribute itself.
type app struct {
	sessiond   *client.Client
	cookieName string
	// sessiondURL is sessiond's base URL as the backend reaches it.
	sessiondURL string
	// pageAPI is sessiond's base URL as the page reaches it: a path on the
	// app's own origin (proxied) or a sibling host; absolute either way.
	pageAPI string
	// proxyPrefix, when set, serves sessiond under this path of the app's
	// origin, through the Go client's client.Proxy (what a Go app mounts;
	// nginx or the app's framework would do the same).
	proxyPrefix string
}

func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.page)
	mux.HandleFunc("POST /signin", a.signIn)
	if a.proxyPrefix != "" {
		target, err := url.Parse(a.sessiondURL)
		if err != nil {
			panic(err)
		}
		mux.Handle(a.proxyPrefix+"/", http.StripPrefix(a.proxyPrefix, client.Proxy(target)))
	}
	return mux
}

// password is the app's own credential check: a test stand-in for a real
// password store.
func password(user string) string { return "correct horse " + user }

// signIn checks the password, then asks sessiond for a session on the
// browser's client (the browser's session as sessiond confirmed it from the
// cookies the browser sent, so a second account joins the first in multi
// mode; a cookie name sent twice signs nobody in) and forwards the cookies.
func (a *app) signIn(w http.ResponseWriter, r *http.Request) {
	var in struct{ User, Password string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Password != password(in.User) {
		http.Error(w, `{"error":"wrong user or password"}`, http.StatusUnauthorized)
		return
	}
	params := client.SignInParams{UserID: in.User, UserAgent: r.UserAgent()}
	s, err := a.sessiond.BrowserSession(r.Context(), r)
	if errors.Is(err, client.ErrDuplicateCookie) {
		http.Error(w, `{"error":"a session cookie was sent twice"}`, http.StatusUnauthorized)
		return
	}
	if err == nil {
		params.ClientID = s.ClientID
	}
	res, err := a.sessiond.SignIn(r.Context(), params)
	if err != nil {
		http.Error(w, fmt.Sprintf(`{"error":%q}`, err.Error()), http.StatusBadGateway)
		return
	}
	client.ForwardCookies(w, res)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"session_id": res.Session.ID})
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
