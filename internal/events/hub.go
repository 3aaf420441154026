// Package events delivers session events from the audit table (the
// outbox, see migrations/000002_events.up.sql) to the open pages of
// GET /session/events, through a Hub, and to backends, through webhooks.
//
// Every replica runs one Hub: one connection LISTENs for the
// notification every numbering of new events sends, and on each the Hub
// reads the new rows, in order, and fans them out in process to the
// streams of the clients they concern. The rows are the truth, the
// notifications only wake-ups: a lost notification (the listening
// connection dropped) costs latency, never an event, because the Hub then
// polls and reads from where it was.
//
// Events are numbered after their commit, not at it (see
// migrations/000007_events_sequencer.up.sql): every Hub also runs the
// numbering, after each event-writing commit of its own process
// (Committed) and on a tick, for commits no process told it of. No
// replica leads: numberings take turns on a lock in Postgres.
package events

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiond/sessiond/internal/sessions"
)

// Log is the event table as the Hub and the webhooks read it;
// internal/db's Store implements it.
type Log interface {
	// LatestEventSeq returns the Seq of the newest committed event.
	LatestEventSeq(ctx context.Context) (int64, error)
	// EventsAfter returns at most limit events above after, in Seq order.
	EventsAfter(ctx context.Context, after int64, limit int) ([]sessions.Event, error)
	// ClientsEventsAfter reads the next limit events above after and
	// returns those of the given clients (nil: of every client), how many
	// it read, and the Seq of the last one read (after when none). It
	// reads in Seq order by index, so a read costs about limit events
	// however far back after is; the Hub and a stream catching up both
	// read through it.
	ClientsEventsAfter(ctx context.Context, clients []string, after int64, limit int) (events []sessions.Event, read int, last int64, err error)
}

// Sequencer numbers committed events (internal/db's Store implements it).
type Sequencer interface {
	// NumberEvents numbers every committed, unnumbered transaction's
	// events and returns how many transactions it numbered.
	NumberEvents(ctx context.Context) (int, error)
}

// Listener waits for the notification of a numbering.
type Listener interface {
	// Wait returns nil on a notification, an error when ctx ends or the
	// connection fails.
	Wait(ctx context.Context) error
	Close()
}

// Expirer records a session's expiry the moment it is due, so a stream
// learns of it without waiting for the sweeper; *sessions.Service
// implements it.
type Expirer interface {
	Now() time.Time
	ExpiryOf(s sessions.Session) time.Time
	RecordExpiry(ctx context.Context, id string) (sessions.Session, error)
}

// HubConfig is what a Hub needs. Zero durations take the defaults.
type HubConfig struct {
	Log Log
	// Sequencer, if set, is run after Committed and every NumberInterval.
	Sequencer Sequencer
	// NumberInterval is how often the Hub numbers events nobody told it
	// of (default 500 ms): commits of other processes that died before
	// they could, or of older binaries, within a second.
	NumberInterval time.Duration
	// Listen opens the listening connection.
	Listen func(ctx context.Context) (Listener, error)
	// Sessions records due expiries.
	Sessions Expirer
	// MaxStreams bounds the open streams; 0 means DefaultMaxStreams.
	MaxStreams int
	// MaxStreamsPerSession bounds the open streams of one session, so
	// one token cannot hold every place of MaxStreams (a browser needs
	// one stream); 0 means DefaultMaxStreamsPerSession.
	MaxStreamsPerSession int
	// ResumeWindow bounds how far back, in event numbers, a stream may
	// resume: a Last-Event-ID further behind the newest event starts from
	// now, so a resume costs at most this many events' reads; 0 means
	// DefaultResumeWindow.
	ResumeWindow int64
	// ReadTimeout bounds each read of the event table (the statement is
	// cancelled in Postgres when it passes); 0 means 5 s.
	ReadTimeout time.Duration
	// PollInterval is how often the Hub reads the table while it listens,
	// as a safety net (default 5 s); FallbackPollInterval how often while
	// it cannot listen (default 250 ms), so events still arrive within a
	// second.
	PollInterval, FallbackPollInterval time.Duration
	// Buffer is each stream's queue of events not yet written (default
	// 256); a stream that falls further behind catches up from the table.
	Buffer   int
	Logger   *slog.Logger
	Registry prometheus.Registerer
}

// DefaultMaxStreams is the default bound on open streams per replica.
const DefaultMaxStreams = 10000

// DefaultMaxStreamsPerSession is the default bound on one session's open
// streams per replica: one for the browser (its tabs elect one), one for
// a reconnect while the server has not yet noticed the old connection
// drop, and one to spare.
const DefaultMaxStreamsPerSession = 3

// DefaultResumeWindow is how many event numbers back a stream may resume
// by default.
const DefaultResumeWindow = 10000

// readBatch bounds one read of the event table.
const readBatch = 1000

// Errors of Open and Next. Both are *sessions.Error values, so the api
// maps them like any other.
var (
	// ErrTooManyStreams: the replica holds MaxStreams streams already (503).
	ErrTooManyStreams = &sessions.Error{Code: sessions.CodeUnavailable, Message: "Too many event streams are open on this server; try again shortly."}
	// ErrTooManySessionStreams: the caller's session holds
	// MaxStreamsPerSession streams on this replica already (503).
	ErrTooManySessionStreams = &sessions.Error{Code: sessions.CodeUnavailable, Message: "This session has as many event streams open as it may; close one, or try again shortly."}
	// ErrClosed: the Hub is not running (starting, or shutting down).
	ErrClosed = &sessions.Error{Code: sessions.CodeUnavailable, Message: "Event streams are not available on this server right now; try again shortly."}
)

// Hub fans the events of every replica out to the streams open on this
// one. Run it once; Open streams; Close it on shutdown.
type Hub struct {
	cfg     HubConfig
	metrics hubMetrics

	mu      sync.Mutex // guards everything below
	ready   bool       // cursor has been read
	closed  bool
	cursor  int64 // Seq of the last event fanned out
	open    int
	clients map[string]map[*subscription]struct{}
	watches map[chan struct{}]struct{}
	stop    chan struct{} // closed by Close
	// committed is signalled by Committed: a numbering is due.
	committed chan struct{}
}

type hubMetrics struct {
	open      prometheus.Gauge
	pushed    prometheus.Counter
	listening prometheus.Gauge
}

// NewHub returns a Hub that is not running yet.
func NewHub(cfg HubConfig) *Hub {
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.MaxStreamsPerSession <= 0 {
		cfg.MaxStreamsPerSession = DefaultMaxStreamsPerSession
	}
	if cfg.ResumeWindow <= 0 {
		cfg.ResumeWindow = DefaultResumeWindow
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.FallbackPollInterval <= 0 {
		cfg.FallbackPollInterval = 250 * time.Millisecond
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	if cfg.NumberInterval <= 0 {
		cfg.NumberInterval = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Hub{
		cfg:       cfg,
		clients:   map[string]map[*subscription]struct{}{},
		watches:   map[chan struct{}]struct{}{},
		stop:      make(chan struct{}),
		committed: make(chan struct{}, 1),
		metrics: hubMetrics{
			open: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "sessiond_event_streams_open", Help: "GET /session/events streams open on this replica."}),
			pushed: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "sessiond_events_pushed_total", Help: "Events written to GET /session/events streams."}),
			listening: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "sessiond_events_listening", Help: "1 while the replica's LISTEN connection is up, 0 while it polls."}),
		},
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(h.metrics.open, h.metrics.pushed, h.metrics.listening)
	}
	return h
}

// Run reads and fans out events until ctx ends or Close is called.
func (h *Hub) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-h.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for !h.isReady() {
		seq, err := h.latestEventSeq(ctx)
		if err == nil {
			h.mu.Lock()
			h.cursor, h.ready = seq, true
			h.mu.Unlock()
			break
		}
		if ctx.Err() != nil {
			return
		}
		h.cfg.Logger.Warn("events: cannot read the event table yet; retrying", "error", err.Error())
		if !sleep(ctx, time.Second) {
			return
		}
	}

	wake := make(chan struct{}, 1)
	var listening sync.Mutex // guards connected
	connected := false
	failing := false // reading the table failed last time
	if h.cfg.Sequencer != nil {
		go h.number(ctx, wake)
	}
	go h.listen(ctx, wake, func(up bool) {
		listening.Lock()
		connected = up
		listening.Unlock()
		if up {
			h.metrics.listening.Set(1)
		} else {
			h.metrics.listening.Set(0)
		}
	})
	for {
		listening.Lock()
		interval := h.cfg.FallbackPollInterval
		if connected {
			interval = h.cfg.PollInterval
		}
		listening.Unlock()
		timer := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
		err := h.readNew(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			// Once per outage, not at every poll.
			h.cfg.Logger.Warn("events: reading new events failed; retrying", "error", err.Error())
			failing = true
		case err == nil && failing:
			h.cfg.Logger.Info("events: reading new events again")
			failing = false
		}
	}
}

// Committed tells the Hub that this process committed events, so it
// numbers them now rather than at the next tick. It never blocks: calls
// while a numbering is due fold into it. internal/db's Store calls it
// (OnEventsCommitted).
func (h *Hub) Committed() { signal(h.committed) }

// number runs the Sequencer after each Committed and every
// NumberInterval, and wakes the reader when it numbered something (the
// other replicas learn of it from the numbering's NOTIFY). Numbering
// back to back under load is what batches commits: whatever committed
// during one numbering is taken by the next.
func (h *Hub) number(ctx context.Context, wake chan struct{}) {
	ticker := time.NewTicker(h.cfg.NumberInterval)
	defer ticker.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.committed:
		case <-ticker.C:
		}
		n, err := h.cfg.Sequencer.NumberEvents(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			// Once per outage; the commits wait in the table, and the next
			// tick or commit tries again.
			h.cfg.Logger.Warn("events: numbering new events failed; retrying", "error", err.Error())
			failing = true
		case err == nil && failing:
			h.cfg.Logger.Info("events: numbering new events again")
			failing = false
		}
		if n > 0 {
			signal(wake)
		}
	}
}

func (h *Hub) isReady() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ready
}

// listen keeps one LISTEN connection up, reconnecting after it drops, and
// wakes the reader on every notification and after every (re)connect, so
// what committed while it was down is read at once.
func (h *Hub) listen(ctx context.Context, wake chan struct{}, setUp func(bool)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		l, err := h.cfg.Listen(ctx)
		if err != nil {
			setUp(false)
			if ctx.Err() == nil {
				h.cfg.Logger.Warn("events: cannot LISTEN; polling until it can", "error", err.Error())
			}
			sleep(ctx, backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		setUp(true)
		signal(wake)
		for {
			if err := l.Wait(ctx); err != nil {
				if ctx.Err() == nil {
					h.cfg.Logger.Warn("events: LISTEN connection lost; reconnecting", "error", err.Error())
				}
				break
			}
			signal(wake)
		}
		setUp(false)
		l.Close()
		signal(wake)
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// readNew reads every event past the cursor and fans it out.
func (h *Hub) readNew(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		// Only the events of clients with an open stream are read in full.
		// A stream that opens on another client while the read is under
		// way would miss its events, so then the same events are read
		// again with it listed (and, should streams keep opening, with
		// every client from the third attempt on).
		h.mu.Lock()
		cursor := h.cursor
		var clients []string
		if attempt < 3 {
			clients = make([]string, 0, len(h.clients))
			for c := range h.clients {
				clients = append(clients, c)
			}
		}
		h.mu.Unlock()
		batch, read, last, err := h.clientsEventsAfter(ctx, clients, cursor)
		if err != nil {
			return err
		}
		if read == 0 {
			return nil
		}
		h.mu.Lock()
		if h.cursor != cursor || !h.onlyClientsOf(clients) { // only Run moves the cursor; a check, not a race
			h.mu.Unlock()
			continue
		}
		for _, e := range batch {
			for sub := range h.clients[e.Session.ClientID] {
				sub.offer(e)
				if e.Ends() && e.Session.ID == sub.sessionID {
					sub.end()
				}
			}
		}
		h.cursor = last
		for w := range h.watches {
			signal(w)
		}
		h.mu.Unlock()
		if read < readBatch {
			return nil
		}
		attempt = 0
	}
}

// clientsEventsAfter reads the table within ReadTimeout.
func (h *Hub) clientsEventsAfter(ctx context.Context, clients []string, after int64) ([]sessions.Event, int, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.ReadTimeout)
	defer cancel()
	return h.cfg.Log.ClientsEventsAfter(ctx, clients, after, readBatch)
}

// latestEventSeq reads the newest position within ReadTimeout.
func (h *Hub) latestEventSeq(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.ReadTimeout)
	defer cancel()
	return h.cfg.Log.LatestEventSeq(ctx)
}

// onlyClientsOf reports whether every client with an open stream is in
// listed (nil: every client). Called with h.mu.
func (h *Hub) onlyClientsOf(listed []string) bool {
	if listed == nil {
		return true
	}
	if len(h.clients) > len(listed) {
		return false
	}
	in := make(map[string]struct{}, len(listed))
	for _, c := range listed {
		in[c] = struct{}{}
	}
	for c := range h.clients {
		if _, ok := in[c]; !ok {
			return false
		}
	}
	return true
}

// Watch returns a channel that receives a value whenever new events have
// been read, and a function that stops the watch; for the webhooks.
func (h *Hub) Watch() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	h.mu.Lock()
	h.watches[c] = struct{}{}
	h.mu.Unlock()
	return c, func() {
		h.mu.Lock()
		delete(h.watches, c)
		h.mu.Unlock()
	}
}

// Close ends every open stream at once (Next returns ErrClosed), refuses
// new ones and stops Run. For shutdown: streams must not hold the
// server's grace period.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.stop)
}

// subscription is one stream's place in the Hub.
type subscription struct {
	ch        chan sessions.Event
	sessionID string // the holder's own session
	// ended is closed when the Hub fans out the event that ends the
	// holder's session, whatever the stream's position: the stream ends
	// once it has written what came before (and that event, if it is
	// past the stream's position).
	ended chan struct{}
	// Guarded by Hub.mu.
	lagged  bool // an event did not fit in ch
	isEnded bool // ended is closed
}

// end closes ended once. Called with Hub.mu.
func (s *subscription) end() {
	if !s.isEnded {
		s.isEnded = true
		close(s.ended)
	}
}

// offer queues e without blocking; a full queue marks the subscription
// lagged, and its stream catches up from the table. Called with Hub.mu.
func (s *subscription) offer(e sessions.Event) {
	select {
	case s.ch <- e:
	default:
		s.lagged = true
	}
}

// Stream is one open GET /session/events: the events of the sessions on
// one client, in commit order, each once, until the holder's own session
// ends.
type Stream struct {
	hub  *Hub
	sub  *subscription
	own  sessions.Session
	last int64 // Seq of the last event returned
	// catchUp says events may be in the table that are not in sub.ch;
	// readTo is how far the catch-up has read (it reads every client's
	// numbers and keeps the stream's own client's events).
	catchUp bool
	readTo  int64
	ended   bool // Next returned the holder's own ending
	pending []sessions.Event
	expiry  time.Time
	once    sync.Once
}

// Open opens a stream for the holder of own. With resume, it starts with
// the client's events after lastEventID (the SSE Last-Event-ID), if that
// is at most ResumeWindow numbers behind the newest event; otherwise
// (without resume, further back, or ahead of the newest event, which this
// service never sent) with the events committed from now on.
// ErrTooManyStreams, ErrTooManySessionStreams or ErrClosed when it cannot
// open. Close the stream when done.
func (h *Hub) Open(ctx context.Context, own sessions.Session, lastEventID int64, resume bool) (*Stream, error) {
	s, err := h.subscribe(own)
	if err != nil {
		return nil, err
	}
	// "Now" is what has committed, which the Hub may not have read yet:
	// what it reads from here on reaches the subscription, and what is
	// not after now is skipped.
	latest, err := h.latestEventSeq(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	if resume && lastEventID <= latest && latest-lastEventID <= h.cfg.ResumeWindow {
		s.last, s.catchUp = lastEventID, true
		return s, nil
	}
	s.last = max(s.last, latest)
	return s, nil
}

func (h *Hub) subscribe(own sessions.Session) (*Stream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed || !h.ready:
		return nil, ErrClosed
	case h.open >= h.cfg.MaxStreams:
		h.cfg.Logger.Warn("events: stream refused: the replica holds SESSIOND_MAX_STREAMS streams",
			"max_streams", h.cfg.MaxStreams, "session_id", own.ID)
		return nil, ErrTooManyStreams
	}
	subs := h.clients[own.ClientID]
	held := 0
	for sub := range subs {
		if sub.sessionID == own.ID {
			held++
		}
	}
	if held >= h.cfg.MaxStreamsPerSession {
		h.cfg.Logger.Warn("events: stream refused: the session holds SESSIOND_MAX_STREAMS_PER_SESSION streams",
			"max_streams_per_session", h.cfg.MaxStreamsPerSession, "session_id", own.ID)
		return nil, ErrTooManySessionStreams
	}
	sub := &subscription{ch: make(chan sessions.Event, h.cfg.Buffer), sessionID: own.ID, ended: make(chan struct{})}
	if subs == nil {
		subs = map[*subscription]struct{}{}
		h.clients[own.ClientID] = subs
	}
	subs[sub] = struct{}{}
	h.open++
	h.metrics.open.Inc()
	s := &Stream{hub: h, sub: sub, own: own, last: h.cursor}
	if h.cfg.Sessions != nil {
		s.expiry = h.cfg.Sessions.ExpiryOf(own)
	}
	return s, nil
}

// Close leaves the Hub.
func (s *Stream) Close() {
	s.once.Do(func() {
		h := s.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		subs := h.clients[s.own.ClientID]
		delete(subs, s.sub)
		if len(subs) == 0 {
			delete(h.clients, s.own.ClientID)
		}
		h.open--
		h.metrics.open.Dec()
	})
}

// ErrIdle is what Next returns when idle passed without an event: time
// for a keep-alive.
var ErrIdle = errors.New("events: no event within the idle time")

// ErrSessionEnded is what Next returns once the holder's own session has
// ended and the stream has returned everything before its ending.
var ErrSessionEnded = errors.New("events: the stream's own session has ended")

// Next returns the stream's next event. It returns ErrIdle after idle
// without one, ErrClosed when the Hub closes, ErrSessionEnded after the
// holder's own session ended (its ending event, when past the stream's
// position, is returned first; end the stream on it), and ctx's error
// when ctx ends. When the holder's own session reaches its expiry, Next
// records it, so the session.expired event follows within moments.
func (s *Stream) Next(ctx context.Context, idle time.Duration) (sessions.Event, error) {
	if s.ended {
		return sessions.Event{}, ErrSessionEnded
	}
	idleTimer := time.NewTimer(idle)
	defer idleTimer.Stop()
	for {
		if len(s.pending) > 0 {
			e := s.pending[0]
			s.pending = s.pending[1:]
			if e.Seq <= s.last {
				if e.Ends() && e.Session.ID == s.own.ID {
					return sessions.Event{}, ErrSessionEnded
				}
				continue
			}
			s.last = e.Seq
			s.ended = e.Ends() && e.Session.ID == s.own.ID
			s.hub.metrics.pushed.Inc()
			return e, nil
		}
		if s.catchUp {
			from := max(s.last, s.readTo)
			batch, read, last, err := s.hub.clientsEventsAfter(ctx, []string{s.own.ClientID}, from)
			if err != nil {
				return sessions.Event{}, err
			}
			s.pending, s.readTo, s.catchUp = batch, last, read == readBatch
			continue
		}
		if s.ownEnded() {
			return sessions.Event{}, ErrSessionEnded
		}
		var expire <-chan time.Time
		var expiryTimer *time.Timer
		if !s.expiry.IsZero() {
			expiryTimer = time.NewTimer(max(s.expiry.Sub(s.hub.cfg.Sessions.Now()), 10*time.Millisecond))
			expire = expiryTimer.C
		}
		err := s.wait(ctx, expire, idleTimer.C)
		if expiryTimer != nil {
			expiryTimer.Stop()
		}
		if err != nil {
			return sessions.Event{}, err
		}
	}
}

// ownEnded reports whether the Hub has seen the holder's session end and
// the stream has nothing left to return before that: what the Hub queued
// (or, if the queue overflowed, what the table holds) comes first, the
// ending event among it.
func (s *Stream) ownEnded() bool {
	select {
	case <-s.sub.ended:
	default:
		return false
	}
	s.takeLagged()
	if s.catchUp {
		return false
	}
	select {
	case e := <-s.sub.ch:
		s.pending = append(s.pending, e)
		return false
	default:
		return true
	}
}

// takeLagged turns an overflow of the queue into a catch-up.
func (s *Stream) takeLagged() {
	s.hub.mu.Lock()
	if s.sub.lagged {
		s.sub.lagged, s.catchUp = false, true
	}
	s.hub.mu.Unlock()
}

// wait takes the next event from the Hub into pending, or records a due
// expiry, or ends as Next says.
func (s *Stream) wait(ctx context.Context, expire, idle <-chan time.Time) error {
	select {
	case e := <-s.sub.ch:
		s.takeLagged()
		s.pending = append(s.pending, e)
	case <-s.sub.ended:
		// Next looks at what is left before the ending.
	case <-expire:
		return s.recordExpiry(ctx)
	case <-idle:
		return ErrIdle
	case <-s.hub.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// recordExpiry asks for the own session's expiry to be recorded if it is
// due, and re-arms for the session's bound as it now is (activity since
// the stream opened moves an inactivity bound). Once recorded, its event
// arrives through the Hub like any other.
func (s *Stream) recordExpiry(ctx context.Context) error {
	sess, err := s.hub.cfg.Sessions.RecordExpiry(ctx, s.own.ID)
	switch {
	case errors.Is(err, sessions.ErrSessionNotFound):
		return ErrSessionEnded
	case err != nil:
		// Try again in a moment; the sweeper is the backstop.
		s.expiry = s.hub.cfg.Sessions.Now().Add(time.Second)
		return nil
	case sess.Status != sessions.StatusActive:
		s.expiry = time.Time{} // its event is on its way
		s.catchUp = true       // and may already be in the table
		return nil
	}
	s.own = sess
	s.expiry = s.hub.cfg.Sessions.ExpiryOf(sess)
	return nil
}
