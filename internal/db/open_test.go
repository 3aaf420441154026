package db_test

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/db"
	"github.com/sessiond/sessiond/internal/pgtest"
)

// The URL's connect_timeout is honoured; without one each host gets
// db.DefaultConnectTimeout (pgx's own default would be none, and
// sessiond used to impose 5 s over the URL's).
func TestOpenConnectTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		query string
		want  time.Duration
	}{
		{"sslmode=disable", db.DefaultConnectTimeout},
		{"sslmode=disable&connect_timeout=7", 7 * time.Second},
		{"sslmode=disable&connect_timeout=0", db.DefaultConnectTimeout},
	} {
		store, err := db.Open(context.Background(), "postgres://u:p@127.0.0.1:1/x?"+tc.query, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := store.Pool().Config().ConnConfig.ConnectTimeout; got != tc.want {
			t.Errorf("%s: connect timeout %s, want %s", tc.query, got, tc.want)
		}
		store.Close()
	}
}

// A first host that accepts TCP connections and never answers (a machine
// that hangs) costs its connect timeout, then the next host of the URL
// serves: the pool, the readiness check and the dedicated connections.
func TestOpenSkipsAHangingHost(t *testing.T) {
	t.Parallel()
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 100)
	defer func() {
		hang.Close()
		for len(held) > 0 {
			(<-held).Close()
		}
	}()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			held <- c // never answers
		}
	}()
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	real := u.Host
	u.Host = hang.Addr().String() + "," + strings.Replace(real, "localhost", "127.0.0.1", 1)
	q := u.Query()
	q.Set("connect_timeout", "1")
	u.RawQuery = q.Encode()
	store, err := db.Open(context.Background(), u.String(), 2, db.WithDirectURL(u.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// A bound that only catches a hang.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.Ping(ctx); err != nil {
		t.Fatalf("readiness through the second host: %v", err)
	}
	if _, err := store.LatestEventSeq(ctx); err != nil {
		t.Fatalf("the pool through the second host: %v", err)
	}
	l, err := store.ListenEvents(ctx)
	if err != nil {
		t.Fatalf("LISTEN through the second host: %v", err)
	}
	l.Close()
}
