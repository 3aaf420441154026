package api_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// rawWire sends method path with the given Accept-Encoding through a
// transport that does not decompress, so the test sees the bytes on the
// wire.
func (e *testEnv) rawWire(t *testing.T, method, path string, c cred, acceptEncoding string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.bearer)
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return response{Status: resp.StatusCode, Header: resp.Header, Body: readAll(t, resp)}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("bad gzip stream: %v", err)
	}
	return out
}

// TestLargeAnswersAreGzipped: a client that accepts gzip gets large
// answers (a sign-out everywhere's list) compressed, and the same answer
// once decompressed; small hot-path answers and clients that do not
// accept gzip get plain JSON.
func TestLargeAnswersAreGzipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 60 // about 24 KB of sessions, above the 8 KiB threshold
	var all []signedIn
	for range n {
		all = append(all, e.mustSignIn(t, "alice", ""))
	}

	t.Run("a list of 60 sessions is gzipped for a client that accepts it", func(t *testing.T) {
		plain := e.rawWire(t, http.MethodGet, "/users/alice/sessions"+q("limit", "100"), backend, "")
		plain.wantStatus(t, http.StatusOK)
		if ce := plain.Header.Get("Content-Encoding"); ce != "" {
			t.Fatalf("Content-Encoding %q without Accept-Encoding", ce)
		}
		if v := plain.Header.Get("Vary"); v != "Accept-Encoding" {
			t.Errorf("plain answer: Vary %q, want Accept-Encoding (the answer depends on it)", v)
		}
		zipped := e.rawWire(t, http.MethodGet, "/users/alice/sessions"+q("limit", "100"), backend, "gzip, deflate, br")
		zipped.wantStatus(t, http.StatusOK)
		if ce := zipped.Header.Get("Content-Encoding"); ce != "gzip" {
			t.Fatalf("Content-Encoding %q, want gzip", ce)
		}
		if !strings.Contains(strings.Join(zipped.Header.Values("Vary"), ","), "Accept-Encoding") {
			t.Errorf("Vary %q lacks Accept-Encoding", zipped.Header.Values("Vary"))
		}
		if len(zipped.Body) >= len(plain.Body)/2 {
			t.Errorf("gzipped %d bytes of %d: not compressed", len(zipped.Body), len(plain.Body))
		}
		if got := gunzip(t, zipped.Body); !sameJSON(got, string(plain.Body)) {
			t.Errorf("gzipped answer differs from the plain one once decompressed")
		}
	})
	t.Run("gzip refused with q=0 is not sent", func(t *testing.T) {
		r := e.rawWire(t, http.MethodGet, "/users/alice/sessions"+q("limit", "100"), backend, "gzip;q=0, identity")
		r.wantStatus(t, http.StatusOK)
		if ce := r.Header.Get("Content-Encoding"); ce != "" {
			t.Errorf("Content-Encoding %q for a client that refused gzip", ce)
		}
	})
	t.Run("a small answer is never compressed", func(t *testing.T) {
		r := e.rawWire(t, http.MethodGet, "/session", bearer(all[0].Token), "gzip")
		r.wantStatus(t, http.StatusOK)
		if ce := r.Header.Get("Content-Encoding"); ce != "" {
			t.Errorf("GET /session answered with Content-Encoding %q; want it plain", ce)
		}
		var s session
		r.decode(t, &s)
		if s.ID != all[0].ID {
			t.Errorf("GET /session answered session %s, want %s", s.ID, all[0].ID)
		}
	})
	t.Run("sign out everywhere answers its list gzipped and ends every session", func(t *testing.T) {
		r := e.rawWire(t, http.MethodDelete, "/users/alice/sessions", backend, "gzip")
		r.wantStatus(t, http.StatusOK)
		if ce := r.Header.Get("Content-Encoding"); ce != "gzip" {
			t.Fatalf("Content-Encoding %q, want gzip", ce)
		}
		var a endAnswer
		if err := json.Unmarshal(gunzip(t, r.Body), &a); err != nil {
			t.Fatal(err)
		}
		if len(a.Ended) != n {
			t.Errorf("ended %d sessions, want %d", len(a.Ended), n)
		}
		e.wantSignedOut(t, "revoked", all[0], all[n-1])
	})
}
