package db_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/db"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/internal/sessions"
)

// tripRecorder is a pgx tracer that records, for calls whose context is
// marked with countTrips, every round trip the pool makes to Postgres:
// each statement sent on its own is one, each batch (a statement with
// its BEGIN, or with the COMMIT after it) is one. Each trip is labelled
// with what it carries, in order: BEGIN, COMMIT, "record" (the commit
// record written ahead of a last statement), "lock" (takes row locks),
// "write" (writes audit rows) or "read". Preparing a statement the first
// time a connection sees it is not traced (pgx's PrepareTracer); the
// test warms the connection up first, so what it counts is what every
// later call costs.
type tripRecorder struct {
	mu    sync.Mutex
	trips []string
}

type countTripsKey struct{}

func countTrips(ctx context.Context) context.Context {
	return context.WithValue(ctx, countTripsKey{}, true)
}

func (r *tripRecorder) record(ctx context.Context, sqls ...string) {
	if ctx.Value(countTripsKey{}) == nil {
		return
	}
	labels := make([]string, len(sqls))
	for i, sql := range sqls {
		labels[i] = tripLabel(sql)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trips = append(r.trips, strings.Join(labels, "+"))
}

func (r *tripRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	trips := r.trips
	r.trips = nil
	return trips
}

func tripLabel(sql string) string {
	switch {
	case sql == "begin":
		return "BEGIN"
	case sql == "commit":
		return "COMMIT"
	case strings.Contains(sql, "pg_logical_emit_message"):
		return "record"
	case strings.Contains(sql, "session_events"):
		return "write"
	case strings.Contains(sql, "FOR UPDATE"), strings.Contains(sql, "FOR NO KEY UPDATE"), strings.Contains(sql, "session_users"):
		return "lock"
	}
	return "read"
}

func (r *tripRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.record(ctx, d.SQL)
	return ctx
}

func (r *tripRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *tripRecorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	sqls := make([]string, len(d.Batch.QueuedQueries))
	for i, q := range d.Batch.QueuedQueries {
		sqls[i] = q.SQL
	}
	r.record(ctx, sqls...)
	return ctx
}

func (r *tripRecorder) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *tripRecorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// roundTripWorld is what each case of TestRoundTrips starts from: a
// session of alice (self, with its token) and another of hers on another
// client.
type roundTripWorld struct {
	token       string
	self, other sessions.Session
}

// TestRoundTrips: what each hot call of the service costs in round trips
// to the real database, statement by statement — the budget
// BENCHMARKS.md sets (a sign-in: at most 3; a plain sign-out in single
// mode: 2) and the calls next to it.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		mode sessions.Mode
		call func(context.Context, *sessions.Service, roundTripWorld) error
		want []string
	}{
		{"sign-in on a new client", sessions.ModeSingle, func(ctx context.Context, s *sessions.Service, _ roundTripWorld) error {
			_, err := s.SignIn(ctx, sessions.Backend("k"), sessions.SignInInput{UserID: "bob"})
			return err
		}, []string{"BEGIN+lock", "record+write+COMMIT"}},
		{"sign-in on a known client", sessions.ModeSingle, func(ctx context.Context, s *sessions.Service, w roundTripWorld) error {
			_, err := s.SignIn(ctx, sessions.Backend("k"), sessions.SignInInput{UserID: "bob", ClientID: w.self.ClientID})
			return err
		}, []string{"BEGIN+lock", "write", "record+write+COMMIT"}},
		{"sign-out by token, single mode", sessions.ModeSingle, func(ctx context.Context, s *sessions.Service, w roundTripWorld) error {
			_, err := s.SignOut(ctx, sessions.SignOutRequest{Token: w.token})
			return err
		}, []string{"BEGIN+lock", "record+write+COMMIT"}},
		{"sign-out by token, multi mode", sessions.ModeMulti, func(ctx context.Context, s *sessions.Service, w roundTripWorld) error {
			_, err := s.SignOut(ctx, sessions.SignOutRequest{Token: w.token})
			return err
		}, []string{"BEGIN+lock", "record+write+COMMIT"}},
		{"a holder ends another session of its user", sessions.ModeMulti, func(ctx context.Context, s *sessions.Service, w roundTripWorld) error {
			_, err := s.EndSession(ctx, sessions.Holder(w.self), w.other.ID, "")
			return err
		}, []string{"BEGIN+read", "lock", "record+write+COMMIT"}},
		{"a holder signs out its other devices", sessions.ModeSingle, func(ctx context.Context, s *sessions.Service, w roundTripWorld) error {
			_, err := s.EndUserSessions(ctx, sessions.Holder(w.self), w.self.UserID, w.self.ID, "")
			return err
		}, []string{"BEGIN+lock", "read", "lock", "record+write+COMMIT"}},
		{"a backend ends one session", sessions.ModeSingle, func(ctx context.Context, s *sessions.Service, w roundTripWorld) error {
			_, err := s.EndSession(ctx, sessions.Backend("k"), w.self.ID, "")
			return err
		}, []string{"BEGIN+read", "lock", "record+write+COMMIT"}},
		{"a backend signs a user out everywhere", sessions.ModeSingle, func(ctx context.Context, s *sessions.Service, w roundTripWorld) error {
			_, err := s.EndUserSessions(ctx, sessions.Backend("k"), w.self.UserID, "", "")
			return err
		}, []string{"BEGIN+lock", "lock", "record+write+COMMIT"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			recorder := &tripRecorder{}
			// One connection, so the warm-up prepares the statements the
			// counted call uses.
			store, err := db.Open(ctx, pgtest.NewDatabase(t), 1, db.WithTracer(recorder))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(store.Close)
			svc := sessions.NewService(store, sessions.Config{Mode: c.mode, Lifetime: time.Hour})
			world := func() roundTripWorld {
				t.Helper()
				self, err := svc.SignIn(ctx, sessions.Backend("k"), sessions.SignInInput{UserID: "alice"})
				if err != nil {
					t.Fatal(err)
				}
				other, err := svc.SignIn(ctx, sessions.Backend("k"), sessions.SignInInput{UserID: "alice"})
				if err != nil {
					t.Fatal(err)
				}
				return roundTripWorld{token: self.Token, self: self.Session, other: other.Session}
			}
			if err := c.call(ctx, svc, world()); err != nil {
				t.Fatalf("warm-up: %v", err)
			}
			w := world()
			if err := c.call(countTrips(ctx), svc, w); err != nil {
				t.Fatal(err)
			}
			if trips := recorder.take(); !slices.Equal(trips, c.want) {
				t.Errorf("round trips %q, want %q", trips, c.want)
			}
		})
	}
}
