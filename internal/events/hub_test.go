package events

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/sessions"
)

// memLog is an event table in memory: a fake for the Hub's own logic
// (the real table is tested in api and internal/faults).
type memLog struct {
	mu     sync.Mutex
	events []sessions.Event
}

func (l *memLog) add(clientID string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		seq := int64(len(l.events) + 1)
		l.events = append(l.events, sessions.Event{Seq: seq, Session: sessions.Session{ID: "s", ClientID: clientID, Status: sessions.StatusActive}})
	}
}

func (l *memLog) LatestEventSeq(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.events)), nil
}

func (l *memLog) EventsAfter(_ context.Context, after int64, limit int) ([]sessions.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sessions.Event
	for _, e := range l.events {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

// end adds the event that ends session id of clientID.
func (l *memLog) end(clientID, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, sessions.Event{Seq: int64(len(l.events) + 1), OldStatus: sessions.StatusActive,
		Session: sessions.Session{ID: id, ClientID: clientID, Status: sessions.StatusRevoked}})
}

func (l *memLog) ClientsEventsAfter(_ context.Context, clients []string, after int64, limit int) ([]sessions.Event, int, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sessions.Event
	read, last := 0, after
	for _, e := range l.events {
		if e.Seq <= after || read == limit {
			continue
		}
		read, last = read+1, e.Seq
		if clients == nil || slices.Contains(clients, e.Session.ClientID) {
			out = append(out, e)
		}
	}
	return out, read, last, nil
}

// TestStreamThatFallsBehindCatchesUp: a stream whose queue (2 events)
// overflows reads what it missed from the table: every event of its
// client once, in order, none of another client's.
func TestStreamThatFallsBehindCatchesUp(t *testing.T) {
	log := &memLog{}
	log.add("c", 3) // before the stream: not its
	hub := NewHub(HubConfig{
		Log:                  log,
		Listen:               func(context.Context) (Listener, error) { return nil, errors.New("no LISTEN here") },
		FallbackPollInterval: 5 * time.Millisecond,
		Buffer:               2,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hub.Run(ctx)
	var s *Stream
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		var err error
		if s, err = hub.Open(ctx, sessions.Session{ClientID: "c"}, 0, false); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	defer s.Close()
	log.add("other", 5)
	log.add("c", 50)
	log.add("other", 5)
	log.add("c", 10)
	var got []int64
	for len(got) < 60 {
		e, err := s.Next(ctx, 5*time.Second)
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		if e.Session.ClientID != "c" {
			t.Fatalf("event %d of client %s", e.Seq, e.Session.ClientID)
		}
		got = append(got, e.Seq)
	}
	for i, seq := range got {
		want := int64(3 + 5 + 1 + i)
		if i >= 50 {
			want += 5
		}
		if seq != want {
			t.Fatalf("event %d: seq %d, want %d (all: %v)", i, seq, want, got)
		}
	}
	// Closing the Hub ends the stream at once.
	hub.Close()
	if _, err := s.Next(ctx, 5*time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}

// duringRead is a memLog that runs a function once, inside a read of the
// Hub's that does not list a given client, before the read looks at the
// table.
type duringRead struct {
	*memLog
	client string
	once   sync.Once
	fn     func()
}

func (l *duringRead) ClientsEventsAfter(ctx context.Context, clients []string, after int64, limit int) ([]sessions.Event, int, int64, error) {
	if clients != nil && !slices.Contains(clients, l.client) {
		l.once.Do(l.fn)
	}
	return l.memLog.ClientsEventsAfter(ctx, clients, after, limit)
}

// TestStreamOpenedDuringAReadMissesNothing: the Hub reads only the events
// of clients with open streams. A stream that opens on another client
// while such a read is under way, followed by an event of its client that
// the read sees, still gets that event.
func TestStreamOpenedDuringAReadMissesNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &duringRead{memLog: &memLog{}, client: "late"}
	hub := NewHub(HubConfig{
		Log:                  log,
		Listen:               func(context.Context) (Listener, error) { return nil, errors.New("no LISTEN here") },
		FallbackPollInterval: 5 * time.Millisecond,
	})
	opened := make(chan *Stream, 1)
	log.fn = func() {
		s, err := hub.Open(ctx, sessions.Session{ClientID: "late"}, 0, false)
		if err != nil {
			t.Error(err)
			close(opened)
			return
		}
		log.add("late", 1)
		opened <- s
	}
	go hub.Run(ctx)
	// Wait until the Hub is ready, then give it something to read.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		s, err := hub.Open(ctx, sessions.Session{ClientID: "early"}, 0, false)
		if err == nil {
			defer s.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	log.add("early", 1)
	s, ok := <-opened
	if !ok {
		t.FailNow()
	}
	defer s.Close()
	e, err := s.Next(ctx, 5*time.Second)
	if err != nil || e.Session.ClientID != "late" || e.Seq != 2 {
		t.Fatalf("Next: %+v, %v; want the late client's event 2", e, err)
	}
}

// runHub runs a Hub over log, polling every few milliseconds, and waits
// until it is ready.
func runHub(t *testing.T, cfg HubConfig) *Hub {
	t.Helper()
	cfg.Listen = func(context.Context) (Listener, error) { return nil, errors.New("no LISTEN here") }
	cfg.FallbackPollInterval = 5 * time.Millisecond
	hub := NewHub(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go hub.Run(ctx)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		s, err := hub.Open(ctx, sessions.Session{ClientID: "probe"}, 0, false)
		if err == nil {
			s.Close()
			return hub
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

// TestStreamEndsOnItsOwnEndingWhateverItsPosition: a stream whose
// position is past the event that ends its holder's session (as a
// Last-Event-ID far ahead once made it) still ends on it, without
// returning it or anything after it.
func TestStreamEndsOnItsOwnEndingWhateverItsPosition(t *testing.T) {
	log := &memLog{}
	hub := runHub(t, HubConfig{Log: log})
	ctx := context.Background()
	s, err := hub.Open(ctx, sessions.Session{ID: "own", ClientID: "c"}, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.last = 1 << 62
	log.end("c", "other") // another account on the browser: not the stream's end
	log.end("c", "own")
	log.add("c", 3) // later sign-ins on the browser
	// The bound only catches a hang.
	if e, err := s.Next(ctx, 10*time.Second); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("Next: %+v, %v; want ErrSessionEnded", e, err)
	}
}

// TestStreamDeliversItsOwnEndingThenEnds: the ending of the holder's own
// session is the last event a stream returns, even when more events of
// its client follow at once.
func TestStreamDeliversItsOwnEndingThenEnds(t *testing.T) {
	log := &memLog{}
	hub := runHub(t, HubConfig{Log: log})
	ctx := context.Background()
	s, err := hub.Open(ctx, sessions.Session{ID: "own", ClientID: "c"}, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	log.add("c", 1)
	log.end("c", "own")
	log.add("c", 3)
	var got []string
	for {
		e, err := s.Next(ctx, 10*time.Second)
		if errors.Is(err, ErrSessionEnded) {
			break
		}
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, e.Type()+" "+e.Session.ID)
	}
	if want := []string{"session.created s", "session.revoked own"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// deadlineLog is a memLog that records whether each read of the table
// had a deadline, and how far off.
type deadlineLog struct {
	*memLog
	mu    sync.Mutex
	reads []time.Duration // -1: no deadline
}

func (l *deadlineLog) note(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d, ok := ctx.Deadline(); ok {
		l.reads = append(l.reads, time.Until(d))
	} else {
		l.reads = append(l.reads, -1)
	}
}

func (l *deadlineLog) LatestEventSeq(ctx context.Context) (int64, error) {
	l.note(ctx)
	return l.memLog.LatestEventSeq(ctx)
}

func (l *deadlineLog) ClientsEventsAfter(ctx context.Context, clients []string, after int64, limit int) ([]sessions.Event, int, int64, error) {
	l.note(ctx)
	return l.memLog.ClientsEventsAfter(ctx, clients, after, limit)
}

// TestEveryReadOfTheTableHasATimeout: the Hub's reads and a stream's
// catch-up each run under ReadTimeout, though a stream itself lives on
// (Postgres cancels a statement whose context ends).
func TestEveryReadOfTheTableHasATimeout(t *testing.T) {
	log := &deadlineLog{memLog: &memLog{}}
	log.add("c", 5)
	hub := runHub(t, HubConfig{Log: log, ReadTimeout: time.Minute})
	ctx := context.Background()
	s, err := hub.Open(ctx, sessions.Session{ID: "own", ClientID: "c"}, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 3 {
		if _, err := s.Next(ctx, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.reads) == 0 {
		t.Fatal("no read")
	}
	for i, d := range log.reads {
		if d < 0 || d > time.Minute {
			t.Fatalf("read %d of %d: deadline in %v; want one within the minute of ReadTimeout", i, len(log.reads), d)
		}
	}
}

// TestResumeIsBoundedByTheWindow: a Last-Event-ID at most ResumeWindow
// behind the newest event resumes; one further back, or ahead of the
// newest, starts from now.
func TestResumeIsBoundedByTheWindow(t *testing.T) {
	log := &memLog{}
	log.add("c", 20)
	hub := runHub(t, HubConfig{Log: log, ResumeWindow: 5})
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		last    func(latest int64) int64
		resumes bool
	}{
		{"5 back", func(l int64) int64 { return l - 5 }, true},
		{"6 back", func(l int64) int64 { return l - 6 }, false},
		{"0", func(int64) int64 { return 0 }, false},
		{"ahead", func(l int64) int64 { return l + 3 }, false},
		{"max", func(int64) int64 { return 1<<63 - 1 }, false},
	} {
		latest, _ := log.LatestEventSeq(ctx)
		last := c.last(latest)
		s, err := hub.Open(ctx, sessions.Session{ID: "own", ClientID: "c"}, last, true)
		if err != nil {
			t.Fatal(err)
		}
		log.add("c", 1)
		want := latest + 1
		if c.resumes {
			want = last + 1
		}
		if e, err := s.Next(ctx, 10*time.Second); err != nil || e.Seq != want {
			t.Errorf("%s: first event %d, %v; want %d", c.name, e.Seq, err, want)
		}
		s.Close()
	}
}

// sequencedLog is a memLog whose new events wait, unnumbered, until
// NumberEvents numbers them, as committed events wait in
// session_event_pending.
type sequencedLog struct {
	memLog
	pending []string // client IDs
}

func (l *sequencedLog) commit(clientID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(l.pending, clientID)
}

func (l *sequencedLog) NumberEvents(context.Context) (int, error) {
	l.mu.Lock()
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, c := range pending {
		l.add(c, 1)
	}
	return len(pending), nil
}

// quietListener is a LISTEN connection that never hears anything.
type quietListener struct{}

func (quietListener) Wait(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
func (quietListener) Close()                         {}

// TestHubNumbersAfterCommitAndOnTick: with no notification and no poll
// for an hour, an event reaches a stream because the process said it
// committed (Committed: the Hub numbers at once and reads what it
// numbered), or, when nobody says so, because of the numbering tick.
func TestHubNumbersAfterCommitAndOnTick(t *testing.T) {
	for _, c := range []struct {
		name      string
		interval  time.Duration
		committed bool
	}{
		{"after Committed", time.Hour, true},
		{"on the tick", 20 * time.Millisecond, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := &sequencedLog{}
			hub := NewHub(HubConfig{
				Log:            log,
				Sequencer:      log,
				NumberInterval: c.interval,
				Listen:         func(context.Context) (Listener, error) { return quietListener{}, nil },
				PollInterval:   time.Hour,
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go hub.Run(ctx)
			var s *Stream
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
				var err error
				if s, err = hub.Open(ctx, sessions.Session{ClientID: "c"}, 0, false); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal(err)
				}
			}
			defer s.Close()
			log.commit("c")
			if c.committed {
				hub.Committed()
			}
			// The idle bound only catches a hang: an hour's poll is the
			// only other way the event could arrive.
			e, err := s.Next(ctx, 10*time.Second)
			if err != nil || e.Seq != 1 {
				t.Fatalf("Next: %+v, %v; want the numbered event", e, err)
			}
		})
	}
}
