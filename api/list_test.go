package api_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// list fetches one page and fails unless it is a 200.
func (e *testEnv) list(t *testing.T, path string, c cred) listAnswer {
	t.Helper()
	r := e.do(t, http.MethodGet, path, c, nil)
	r.wantStatus(t, http.StatusOK)
	var l listAnswer
	r.decode(t, &l)
	return l
}

// pages follows next_cursor from path (which has a query) to the last
// page, and returns the IDs of each page.
func (e *testEnv) pages(t *testing.T, path string, c cred) [][]string {
	t.Helper()
	var pages [][]string
	next := path
	for {
		l := e.list(t, next, c)
		pages = append(pages, sessionIDs(l.Data))
		if l.NextCursor == nil {
			return pages
		}
		if *l.NextCursor == "" || len(pages) > 100 {
			t.Fatalf("page %d: next_cursor %q", len(pages), *l.NextCursor)
		}
		next = path + "&cursor=" + url.QueryEscape(*l.NextCursor)
	}
}

func sessionIDs(ss []session) []string {
	ids := make([]string, 0, len(ss))
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	return ids
}

func idsOf(ss ...signedIn) []string {
	ids := make([]string, 0, len(ss))
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	return ids
}

// signInMany signs user in n times, each on a new client one second after
// the last, and returns the sessions newest first.
func (e *testEnv) signInMany(t *testing.T, user string, n int) []signedIn {
	t.Helper()
	var ss []signedIn
	for range n {
		e.Clock.Advance(time.Second)
		ss = append(ss, e.mustSignIn(t, user, ""))
	}
	slices.Reverse(ss)
	return ss
}

// TestListStatusFilter gives alice one session of every status and lists
// them by status: active by default, newest first.
func TestListStatusFilter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, maxSessions(2))
	// Each step a minute apart, so "least recently active" and "newest"
	// are clear.
	step := func() { e.Clock.Advance(time.Minute) }
	expired := e.mustSignIn(t, "alice", "")
	e.Clock.Advance(sessionLifetime)
	evicted := e.mustSignIn(t, "alice", "")
	step()
	replaced := e.mustSignIn(t, "alice", "")
	step()
	active := e.mustSignIn(t, "alice", replaced.ClientID)
	step()
	ended := e.mustSignIn(t, "alice", "") // evicts the least recently active
	e.mustEnd(t, "/session", bearer(ended.Token))
	step()
	revoked := e.mustSignIn(t, "alice", "")
	e.mustEnd(t, "/sessions/"+revoked.ID, backend)
	bob := e.mustSignIn(t, "bob", "") // never in alice's lists

	for _, c := range []struct {
		query string
		want  []signedIn
	}{
		{"", []signedIn{active}},
		{"?status=active", []signedIn{active}},
		{"?status=ended", []signedIn{ended}},
		{"?status=revoked", []signedIn{revoked}},
		{"?status=replaced", []signedIn{replaced}},
		{"?status=evicted", []signedIn{evicted}},
		{"?status=expired", []signedIn{expired}},
		{"?status=all", []signedIn{revoked, ended, active, replaced, evicted, expired}},
	} {
		t.Run("status"+strings.TrimPrefix(c.query, "?status"), func(t *testing.T) {
			for _, cr := range []cred{backend, bearer(active.Token)} {
				l := e.list(t, "/users/alice/sessions"+c.query, cr)
				if got, want := sessionIDs(l.Data), idsOf(c.want...); !slices.Equal(got, want) {
					t.Errorf("got %v, want %v", got, want)
				}
				status := strings.TrimPrefix(c.query, "?status=")
				for _, s := range l.Data {
					if s.UserID != "alice" || (status != "" && status != "all" && s.Status != status) {
						t.Errorf("listed %s of %s with status %s", s.ID, s.UserID, s.Status)
					}
				}
				if l.NextCursor != nil {
					t.Errorf("next_cursor %q on the only page", *l.NextCursor)
				}
			}
		})
	}
	t.Run("a session past its lifetime leaves the active list at once", func(t *testing.T) {
		e.Clock.Advance(sessionLifetime)
		if l := e.list(t, "/users/alice/sessions", backend); len(l.Data) != 0 {
			t.Errorf("active list after the lifetime: %v", sessionIDs(l.Data))
		}
		l := e.list(t, "/users/alice/sessions?status=expired", backend)
		if got, want := sessionIDs(l.Data), idsOf(active, expired); !slices.Equal(got, want) {
			t.Errorf("expired list %v, want %v", got, want)
		}
		if l := e.list(t, "/clients/"+bob.ClientID+"/sessions?status=expired", backend); len(l.Data) != 1 || l.Data[0].ID != bob.ID {
			t.Errorf("bob's client, expired: %v", sessionIDs(l.Data))
		}
	})
}

// TestListPaging walks 25 sessions page by page: every session once,
// newest first, and next_cursor null on the last page.
func TestListPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	all := e.signInMany(t, "alice", 25)
	want := idsOf(all...)
	for _, c := range []struct {
		name  string
		query string
		sizes []int
	}{
		{"default limit is 20", "?status=active", []int{20, 5}},
		{"limit=10", "?limit=10", []int{10, 10, 5}},
		{"limit=5 ends on a full page", "?limit=5", []int{5, 5, 5, 5, 5}},
		{"limit=24", "?limit=24", []int{24, 1}},
		{"limit=25", "?limit=25", []int{25}},
		{"limit=100", "?limit=100", []int{25}},
		{"limit=1", "?limit=1", slices.Repeat([]int{1}, 25)},
		{"status=all pages the same way", "?status=all&limit=10", []int{10, 10, 5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			pages := e.pages(t, "/users/alice/sessions"+c.query, backend)
			var sizes []int
			var got []string
			for _, p := range pages {
				sizes = append(sizes, len(p))
				got = append(got, p...)
			}
			if !slices.Equal(sizes, c.sizes) {
				t.Errorf("page sizes %v, want %v", sizes, c.sizes)
			}
			if !slices.Equal(got, want) {
				t.Errorf("pages hold %v,\nwant every session once, newest first: %v", got, want)
			}
		})
	}
	t.Run("the status filter holds on every page", func(t *testing.T) {
		var stillActive []string
		for i, s := range all {
			if i%3 == 0 {
				e.mustEnd(t, "/sessions/"+s.ID, backend)
				continue
			}
			stillActive = append(stillActive, s.ID)
		}
		pages := e.pages(t, "/users/alice/sessions?limit=7", backend)
		if got := slices.Concat(pages...); !slices.Equal(got, stillActive) {
			t.Errorf("active pages %v, want %v", got, stillActive)
		}
		pages = e.pages(t, "/users/alice/sessions?status=revoked&limit=4", backend)
		if got := slices.Concat(pages...); len(got) != 9 || slices.ContainsFunc(got, func(id string) bool { return slices.Contains(stillActive, id) }) {
			t.Errorf("revoked pages %v", got)
		}
	})
	t.Run("a sign-in between pages changes no later page", func(t *testing.T) {
		first := e.list(t, "/users/alice/sessions?status=all&limit=10", backend)
		e.Clock.Advance(time.Second)
		newer := e.mustSignIn(t, "alice", "")
		second := e.list(t, "/users/alice/sessions?status=all&limit=10&cursor="+url.QueryEscape(*first.NextCursor), backend)
		if got := sessionIDs(second.Data); !slices.Equal(got, want[10:20]) || slices.Contains(got, newer.ID) {
			t.Errorf("second page %v, want %v", got, want[10:20])
		}
	})
}

func TestListRejectsBadQueries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.mustSignIn(t, "alice", "")
	idCursor := base64.RawURLEncoding.EncodeToString([]byte(s.ID)) // what a real cursor is made of
	for _, c := range []struct {
		name, query, field string
	}{
		{"limit=0", "limit=0", "limit"},
		{"limit=101", "limit=101", "limit"},
		{"limit=-1", "limit=-1", "limit"},
		{"limit=abc", "limit=abc", "limit"},
		{"limit empty", "limit=", "limit"},
		{"limit=1.5", "limit=1.5", "limit"},
		{"limit=1e2", "limit=1e2", "limit"},
		{"limit far too big", "limit=99999999999999999999", "limit"},
		{"status=bogus", "status=bogus", "status"},
		{"status in capitals", "status=ACTIVE", "status"},
		{"two statuses", "status=active,ended", "status"},
		{"cursor not base64url", "cursor=%21%21%21", "cursor"},
		{"cursor of something else", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("hello")), "cursor"},
		{"cursor of a client ID", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte(s.ClientID)), "cursor"},
		{"a raw session ID as cursor", "cursor=" + s.ID, "cursor"},
		{"cursor with padding", "cursor=" + url.QueryEscape(base64.URLEncoding.EncodeToString([]byte(s.ID))), "cursor"},
		{"cursor cut short", "cursor=" + idCursor[:len(idCursor)-2], "cursor"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/users/alice/sessions?", "/clients/" + s.ClientID + "/sessions?"} {
				for _, cr := range []cred{backend, bearer(s.Token)} {
					r := e.do(t, http.MethodGet, path+c.query, cr, nil)
					r.wantProblem(t, http.StatusBadRequest, "invalid_request")
					var p struct {
						Errors map[string]string `json:"errors"`
					}
					r.decode(t, &p)
					if p.Errors[c.field] == "" {
						t.Errorf("%s: errors %v do not name %s", path, p.Errors, c.field)
					}
				}
			}
		})
	}
	t.Run("the bounds themselves are fine", func(t *testing.T) {
		for _, q := range []string{"limit=1", "limit=100", "status=all&limit=50", "cursor=" + idCursor} {
			e.do(t, http.MethodGet, "/users/alice/sessions?"+q, backend, nil).wantStatus(t, http.StatusOK)
		}
	})
}

// TestAccountSwitcher: in multi mode GET /clients/{id}/sessions lists every
// account on the device, for each of them, and nothing from elsewhere.
func TestAccountSwitcher(t *testing.T) {
	t.Parallel()
	e := newEnv(t, multiMode)
	alice := e.mustSignIn(t, "alice", "")
	e.Clock.Advance(time.Second)
	bob := e.mustSignIn(t, "bob", alice.ClientID)
	e.Clock.Advance(time.Second)
	aliceThere := e.mustSignIn(t, "alice", "")
	carol := e.mustSignIn(t, "carol", "")
	switcher := "/clients/" + alice.ClientID + "/sessions"

	for _, c := range []struct {
		name string
		cred cred
	}{
		{"alice", bearer(alice.Token)},
		{"bob", bearer(bob.Token)},
		{"the API key", backend},
	} {
		t.Run("as "+c.name, func(t *testing.T) {
			l := e.list(t, switcher, c.cred)
			if got, want := sessionIDs(l.Data), idsOf(bob, alice); !slices.Equal(got, want) {
				t.Errorf("switcher %v, want bob then alice %v", got, want)
			}
		})
	}
	t.Run("alice's own list spans her clients but not bob", func(t *testing.T) {
		l := e.list(t, "/users/alice/sessions", bearer(alice.Token))
		if got, want := sessionIDs(l.Data), idsOf(aliceThere, alice); !slices.Equal(got, want) {
			t.Errorf("alice's sessions %v, want %v", got, want)
		}
	})
	t.Run("an account signed out leaves the switcher but not status=all", func(t *testing.T) {
		e.mustEnd(t, "/session"+q("session_id", alice.ID), bearer(bob.Token))
		if got, want := sessionIDs(e.list(t, switcher, bearer(bob.Token)).Data), idsOf(bob); !slices.Equal(got, want) {
			t.Errorf("active switcher %v, want only bob %v", got, want)
		}
		l := e.list(t, switcher+"?status=all", bearer(bob.Token))
		if got, want := sessionIDs(l.Data), idsOf(bob, alice); !slices.Equal(got, want) || l.Data[1].Status != "ended" {
			t.Errorf("status=all %s, want bob and alice (ended)", fmt.Sprint(l.Data))
		}
	})
	t.Run("many accounts page like any list", func(t *testing.T) {
		e := newEnv(t, multiMode)
		first := e.mustSignIn(t, "user-00", "")
		want := []string{first.ID}
		for i := 1; i < 12; i++ {
			e.Clock.Advance(time.Second)
			want = append(want, e.mustSignIn(t, fmt.Sprintf("user-%02d", i), first.ClientID).ID)
		}
		slices.Reverse(want)
		pages := e.pages(t, "/clients/"+first.ClientID+"/sessions?limit=5", bearer(first.Token))
		if len(pages) != 3 || len(pages[2]) != 2 || !slices.Equal(slices.Concat(pages...), want) {
			t.Errorf("pages %v, want 5, 5 and 2 of %v", pages, want)
		}
	})
	e.wantActive(t, bob, aliceThere, carol)
}
