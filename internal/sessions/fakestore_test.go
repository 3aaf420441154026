package sessions

import (
	"context"
	"time"
)

// fakeStore is the service tests' one hand-written Store (what the store
// really does is tested against Postgres in internal/db). It keeps no
// tables: the sessions in known, by token hash, are the only ones there
// are, found by every look-up, lock and read, and never changed; every
// client exists. It counts what reaches it, so a test can tell whether a
// request got as far as the database.
type fakeStore struct {
	known map[TokenHash]Session
	// fail makes every token look-up answer ErrUnavailable, as when the
	// database is out of reach.
	fail     bool
	lookups  []TokenHash // what SessionByTokenHash was asked for
	touches  int
	txs      int
	inserted []TokenHash // what InsertSession stored
	stored   []Session
}

func (s *fakeStore) calls() int { return len(s.lookups) + s.touches + s.txs }

func (s *fakeStore) SessionByTokenHash(_ context.Context, h TokenHash) (Session, error) {
	s.lookups = append(s.lookups, h)
	if s.fail {
		return Session{}, ErrUnavailable
	}
	if sess, ok := s.known[h]; ok {
		return sess, nil
	}
	return Session{}, ErrSessionNotFound
}

func (s *fakeStore) TouchSession(context.Context, string, time.Time) error {
	s.touches++
	return nil
}

func (s *fakeStore) InTx(_ context.Context, fn func(Tx) error) error {
	s.txs++
	return fn(fakeTx{s})
}

// byID is the known session id, or ErrSessionNotFound.
func (s *fakeStore) byID(id string) (Session, error) {
	for _, sess := range s.known {
		if sess.ID == id {
			return sess, nil
		}
	}
	return Session{}, ErrSessionNotFound
}

type fakeTx struct{ s *fakeStore }

func (tx fakeTx) Lock(_ context.Context, l Locks) (Session, error) {
	switch {
	case l.OwnToken != (TokenHash{}):
		if sess, ok := tx.s.known[l.OwnToken]; ok && sess.Status == StatusActive {
			return sess, nil
		}
		return Session{}, ErrSessionNotFound
	case l.OwnID != "":
		return tx.s.byID(l.OwnID)
	}
	return Session{}, nil
}

func (fakeTx) ClientExists(context.Context, string) (bool, error) { return true, nil }

func (tx fakeTx) Session(_ context.Context, id string, scope Scope) (Session, error) {
	sess, err := tx.s.byID(id)
	if err == nil && scope != (Scope{}) && sess.UserID != scope.UserID && sess.ClientID != scope.ClientID {
		return Session{}, ErrSessionNotFound
	}
	return sess, err
}

func (fakeTx) ListSessions(context.Context, ListFilter) ([]Session, error) { return nil, nil }

func (tx fakeTx) InsertSession(_ context.Context, in Insert) error {
	tx.s.inserted = append(tx.s.inserted, in.TokenHash)
	tx.s.stored = append(tx.s.stored, in.Session)
	return nil
}

func (fakeTx) ExpireSessions(context.Context, Selector, Expiry, int) (int, error) { return 0, nil }
func (fakeTx) EndSessions(context.Context, Selector, Ending) ([]Session, error)   { return nil, nil }
func (fakeTx) EvictSessions(context.Context, string, int, Ending) ([]Session, error) {
	return nil, nil
}
func (fakeTx) DeleteEndedBefore(context.Context, time.Time, int) (int, error) { return 0, nil }
