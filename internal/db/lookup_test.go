package db_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/internal/sessions"
)

// Concurrent token lookups are coalesced into shared statements
// (lookup.go). Every caller must still get exactly its own session, not
// found for an unknown token, and the status as of when it asked.
func TestSessionByTokenHashUnderConcurrency(t *testing.T) {
	t.Parallel()

	t.Run("each caller gets its own answer", func(t *testing.T) {
		t.Parallel()
		eachGetsItsOwn(t, 64)
	})
	// More callers than one batch holds beyond the slots: full batches
	// queue for a slot, and still every caller gets its own answer.
	t.Run("each of a thousand callers gets its own answer", func(t *testing.T) {
		t.Parallel()
		eachGetsItsOwn(t, 1000)
	})

	// Invariant 5 with coalescing: a lookup that starts after the ending
	// transaction committed never reads the session as active, even while
	// other lookups of the same token are in flight.
	t.Run("a lookup that starts after the end sees it ended", func(t *testing.T) {
		t.Parallel()
		s := pgtest.NewStore(t)
		sess := mustSession(t, s, "alice", mustClient(t, s), t0)
		h := sessions.HashToken(sess.ID)
		var endedBefore atomic.Bool
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var stale, checked atomic.Int64
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					after := endedBefore.Load()
					got, err := s.SessionByTokenHash(ctx, h)
					if err != nil && !errors.Is(err, sessions.ErrSessionNotFound) {
						t.Errorf("lookup: %v", err)
						return
					}
					if after {
						checked.Add(1)
						if err == nil && got.Status == sessions.StatusActive {
							stale.Add(1)
						}
					}
				}
			}()
		}
		time.Sleep(50 * time.Millisecond)
		mustEnd(t, s, sess.ID, sessions.StatusEnded, t0.Add(time.Minute))
		endedBefore.Store(true)
		time.Sleep(100 * time.Millisecond)
		close(stop)
		wg.Wait()
		if checked.Load() == 0 {
			t.Fatal("no lookup started after the end")
		}
		if n := stale.Load(); n > 0 {
			t.Errorf("%d of %d lookups that started after the session ended read it as active", n, checked.Load())
		}
	})
}

// eachGetsItsOwn looks up 40 sessions (a quarter of them ended) and
// unknown tokens from callers goroutines at once and checks every answer.
func eachGetsItsOwn(t *testing.T, callers int) {
	s := pgtest.NewStore(t)
	client := mustClient(t, s)
	var all []sessions.Session
	ended := map[string]bool{}
	for i := range 40 {
		sess := mustSession(t, s, fmt.Sprintf("user_%d", i), client, t0)
		if i%4 == 0 {
			mustEnd(t, s, sess.ID, sessions.StatusRevoked, t0.Add(time.Minute))
			ended[sess.ID] = true
		}
		all = append(all, sess)
	}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range max(5, 3200/callers) {
				k := (g*7 + i*3) % (len(all) + 5)
				if k >= len(all) {
					_, err := s.SessionByTokenHash(ctx, sessions.HashToken(fmt.Sprintf("unknown_%d", k)))
					if !errors.Is(err, sessions.ErrSessionNotFound) {
						errs <- fmt.Errorf("unknown token: %v, want ErrSessionNotFound", err)
						return
					}
					continue
				}
				want := all[k]
				got, err := s.SessionByTokenHash(ctx, sessions.HashToken(want.ID))
				if ended[want.ID] {
					// An ended token is not found, like an unknown one.
					if !errors.Is(err, sessions.ErrSessionNotFound) {
						errs <- fmt.Errorf("lookup of ended %s: %s %s, %v; want ErrSessionNotFound", want.ID, got.ID, got.Status, err)
						return
					}
					continue
				}
				if err != nil || got.ID != want.ID || got.UserID != want.UserID || got.Status != sessions.StatusActive {
					errs <- fmt.Errorf("lookup of %s: %s %s %s, %v; want %s active", want.ID, got.ID, got.UserID, got.Status, err, want.UserID)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
