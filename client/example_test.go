package client_test

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/sessiond/sessiond/client"
)

// The backend quickstart of docs/go-client.md: sign a browser in and protect a handler.
func Example() {
	sd, err := client.New("http://sessiond:8080", os.Getenv("SESSIOND_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}

	http.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		userID := checkPassword(r)
		res, err := sd.SignIn(r.Context(), client.SignInParams{
			UserID: userID, UserAgent: r.UserAgent(), IPAddress: clientIP(r),
		})
		if err != nil {
			http.Error(w, "sign-in failed", http.StatusBadGateway)
			return
		}
		client.ForwardCookies(w, res)
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})

	http.Handle("GET /me", sd.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := client.SessionFrom(r.Context())
		fmt.Fprintf(w, "hello %s (session %s)", s.UserID, s.ID)
	})))
}

func checkPassword(r *http.Request) string { return r.FormValue("user") }

func clientIP(r *http.Request) string {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return host
}
