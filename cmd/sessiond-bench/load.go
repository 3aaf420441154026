package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// phaseResult is one row of the report.
type phaseResult struct {
	Name       string  `json:"name"`
	Conns      int     `json:"conns"`
	TargetRate float64 `json:"target_rate,omitempty"` // requests/s; 0: as fast as it goes
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	Seconds    float64 `json:"seconds"`
	RPS        float64 `json:"requests_per_second"`
	P50MS      float64 `json:"p50_ms"`
	P90MS      float64 `json:"p90_ms"`
	P99MS      float64 `json:"p99_ms"`
	MaxMS      float64 `json:"max_ms"`
	// CPU per request, in microseconds, of sessiond, of Postgres (the
	// container's cgroup; not with -database-url) and of this load
	// generator. Less sensitive to other load on the machine than
	// requests/s.
	SessiondCPUUS *float64 `json:"sessiond_cpu_us_per_request,omitempty"`
	PostgresCPUUS *float64 `json:"postgres_cpu_us_per_request,omitempty"`
	BenchCPUUS    *float64 `json:"loadgen_cpu_us_per_request,omitempty"`
	// RSSMiB is sessiond's highest resident set (VmRSS) during the phase.
	RSSMiB *float64 `json:"sessiond_rss_mib,omitempty"`
	Rounds int      `json:"rounds,omitempty"`
	Note   string   `json:"note,omitempty"`
}

// recorder collects latencies of one phase; each worker owns one slice.
type recorder struct {
	lat    [][]time.Duration
	errs   atomic.Int64
	errMsg atomic.Value // string: the first error, for the note
}

func newRecorder(workers int) *recorder {
	return &recorder{lat: make([][]time.Duration, workers)}
}

func (r *recorder) fail(err error) {
	r.errs.Add(1)
	r.errMsg.CompareAndSwap(nil, err.Error())
}

func (r *recorder) result(name string, conns int, rate float64, elapsed time.Duration) phaseResult {
	var all []time.Duration
	for _, l := range r.lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	p := func(q float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return ms(all[min(len(all)-1, int(q*float64(len(all))))])
	}
	res := phaseResult{
		Name: name, Conns: conns, TargetRate: rate,
		Requests: len(all), Errors: int(r.errs.Load()), Seconds: elapsed.Seconds(),
		RPS:   float64(len(all)) / elapsed.Seconds(),
		P50MS: p(0.50), P90MS: p(0.90), P99MS: p(0.99),
	}
	if len(all) > 0 {
		res.MaxMS = ms(all[len(all)-1])
	}
	if msg, ok := r.errMsg.Load().(string); ok {
		res.Note = "first error: " + msg
	}
	return res
}

// schedule paces requests at a fixed rate across workers. Latency is
// measured from the scheduled moment, so a stall counts against every
// request it delays (no coordinated omission).
type schedule struct {
	start time.Time
	every time.Duration
	n     atomic.Int64
}

func (s *schedule) next() time.Time {
	return s.start.Add(time.Duration(s.n.Add(1)-1) * s.every)
}

// drive runs conns workers for d (or until work says it has no more) and
// returns the recorder. work does one request; it returns errNoMoreWork
// when its supply (of tokens) has run out.
func drive(ctx context.Context, conns int, d time.Duration, rate float64,
	newWorker func(w int) (work func() error, close func(), err error)) (*recorder, time.Duration, error) {
	rec := newRecorder(conns)
	workers := make([]func() error, conns)
	for w := range conns {
		work, closeFn, err := newWorker(w)
		if err != nil {
			return nil, 0, err
		}
		defer closeFn()
		workers[w] = work
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var sched *schedule
	start := time.Now()
	if rate > 0 {
		sched = &schedule{start: start, every: time.Duration(float64(time.Second) / rate)}
	}
	var exhausted atomic.Bool
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, max(256, (1<<20)/conns))
			defer func() { rec.lat[w] = lat }()
			for ctx.Err() == nil {
				t0 := time.Now()
				if sched != nil {
					t0 = sched.next()
					if wait := time.Until(t0); wait > 0 {
						select {
						case <-ctx.Done():
							return
						case <-time.After(wait):
						}
					}
				}
				err := workers[w]()
				if errors.Is(err, errNoMoreWork) {
					exhausted.Store(true)
					cancel()
					return
				}
				if err != nil {
					if ctx.Err() != nil {
						return // cut off by the end of the phase
					}
					rec.fail(err)
					continue
				}
				lat = append(lat, time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := min(time.Since(start), d)
	if exhausted.Load() {
		elapsed = time.Since(start)
		rec.fail(errNoMoreWork)
	}
	return rec, elapsed, nil
}

var errNoMoreWork = errors.New("ran out of tokens before the end of the phase")

// httpConn is one keep-alive HTTP/1.1 connection with a minimal client:
// requests are written as bytes, answers read with http.ReadResponse. It
// costs the shared CPUs far less than net/http's Transport would, as the
// pgx client of the raw baseline costs little.
type httpConn struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
}

func (c *httpConn) dial() error {
	conn, err := net.DialTimeout("tcp", c.addr, 30*time.Second)
	if err != nil {
		return err
	}
	c.conn, c.br = conn, bufio.NewReaderSize(conn, 4<<10)
	return nil
}

func (c *httpConn) do(req []byte, want int, body io.Writer) error {
	if c.conn == nil {
		if err := c.dial(); err != nil {
			return err
		}
	}
	// Bound every request, so a phase always ends.
	if err := c.conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		c.close()
		return err
	}
	if _, err := c.conn.Write(req); err != nil {
		c.close()
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return err
	}
	if body == nil {
		body = io.Discard
	}
	_, err = io.Copy(body, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s answered %d, want %d", firstLine(req), resp.StatusCode, want)
	}
	return nil
}

func (c *httpConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func firstLine(req []byte) string {
	for i, b := range req {
		if b == '\r' {
			return string(req[:i])
		}
	}
	return string(req)
}

func request(method, path, addr, auth string, body []byte) []byte {
	b := []byte(method + " " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: sessiond-bench\r\n")
	if auth != "" {
		b = append(b, "Authorization: Bearer "+auth+"\r\n"...)
	}
	if body != nil {
		b = append(b, "Content-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, body...)
}

// tokenFeed hands out tokens: cycling through them (GET) or each once
// (DELETE).
type tokenFeed struct {
	tokens []string
	next   atomic.Int64
	once   bool
}

func (f *tokenFeed) take() (string, bool) {
	i := int(f.next.Add(1) - 1)
	if f.once {
		if i >= len(f.tokens) {
			return "", false
		}
		return f.tokens[i], true
	}
	return f.tokens[i%len(f.tokens)], true
}

// getSessionWorker is GET /session with tokens from feed.
func getSessionWorker(addr string, feed *tokenFeed) func(int) (func() error, func(), error) {
	return func(int) (func() error, func(), error) {
		c := &httpConn{addr: addr}
		// Connect before the phase starts, so thousands of connections
		// are all open (and counted in sessiond's memory) while it runs.
		if err := c.dial(); err != nil {
			return nil, nil, err
		}
		// One request buffer per worker, rewritten in place: every token
		// has the same length.
		req := request(http.MethodGet, "/session", addr, feed.tokens[0], nil)
		at := len(req) - len("\r\n\r\n") - len(feed.tokens[0])
		return func() error {
			tok, ok := feed.take()
			if !ok {
				return errNoMoreWork
			}
			copy(req[at:], tok)
			return c.do(req, http.StatusOK, nil)
		}, c.close, nil
	}
}

// signInWorker is POST /sessions for a new user on a new client each time;
// the tokens it gets back are offered to collect.
func signInWorker(addr string, collect func([]string)) func(int) (func() error, func(), error) {
	return func(w int) (func() error, func(), error) {
		c := &httpConn{addr: addr}
		var n int
		var got []string
		var buf bytesBuffer
		return func() error {
				n++
				body := fmt.Appendf(nil, `{"user_id":"bench_signin_%d_%d","user_agent":"sessiond-bench","ip_address":"203.0.113.7","metadata":{"plan":"bench"}}`, w, n)
				buf.b = buf.b[:0]
				if err := c.do(request(http.MethodPost, "/sessions", addr, benchAPIKey, body), http.StatusCreated, &buf); err != nil {
					return err
				}
				var res struct {
					Token string `json:"token"`
				}
				if err := json.Unmarshal(buf.b, &res); err != nil || res.Token == "" {
					return fmt.Errorf("POST /sessions: no token in the answer")
				}
				got = append(got, res.Token)
				return nil
			}, func() {
				c.close()
				collect(got)
			}, nil
	}
}

type bytesBuffer struct{ b []byte }

func (b *bytesBuffer) Write(p []byte) (int, error) { b.b = append(b.b, p...); return len(p), nil }

// signOutWorker is DELETE /session, each token once.
func signOutWorker(addr string, feed *tokenFeed) func(int) (func() error, func(), error) {
	return func(int) (func() error, func(), error) {
		c := &httpConn{addr: addr}
		return func() error {
			tok, ok := feed.take()
			if !ok {
				return errNoMoreWork
			}
			return c.do(request(http.MethodDelete, "/session", addr, tok, nil), http.StatusOK, nil)
		}, c.close, nil
	}
}

// rawLookup is the baseline: the same lookup sessiond does for
// GET /session (hash the token, one prepared SELECT by token_hash, scan
// every column), straight from pgx, one connection per worker.
type rawLookup struct{ pool *pgxpool.Pool }

const rawLookupSQL = `SELECT id, user_id, client_id, status, created_at, last_active_at, expires_at, ended_at, user_agent, ip_address, metadata FROM sessions WHERE token_hash = $1`

func newRawLookup(ctx context.Context, dbURL string, conns int) (*rawLookup, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(conns)
	cfg.MinConns = int32(conns)
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Prepare(ctx, "lookup", rawLookupSQL)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &rawLookup{pool: pool}, nil
}

func (r *rawLookup) worker(ctx context.Context, feed *tokenFeed) func(int) (func() error, func(), error) {
	return func(int) (func() error, func(), error) {
		return func() error {
			tok, ok := feed.take()
			if !ok {
				return errNoMoreWork
			}
			h := sha256.Sum256([]byte(tok))
			var id, user, client, status, ua, ip string
			var created, active, expires time.Time
			var ended *time.Time
			var meta json.RawMessage
			err := r.pool.QueryRow(ctx, "lookup", h[:]).Scan(&id, &user, &client, &status, &created, &active, &expires, &ended, &ua, &ip, &meta)
			if err != nil {
				return err
			}
			if status != "active" {
				return fmt.Errorf("raw lookup: session %s is %s", id, status)
			}
			return nil
		}, func() {}, nil
	}
}

// cpuTicks is the CPU time a process used so far (utime + stime), in
// clock ticks.
func cpuTicks(pid int) (int64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// Fields after the command name (which may hold spaces, in parens).
	i := len(b) - 1
	for i > 0 && b[i] != ')' {
		i--
	}
	var fields []string
	start := -1
	for j := i + 2; j <= len(b); j++ {
		if j == len(b) || b[j] == ' ' {
			if start >= 0 {
				fields = append(fields, string(b[start:j]))
			}
			start = -1
		} else if start < 0 {
			start = j
		}
	}
	if len(fields) < 13 {
		return 0, false
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return ut + st, true
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// processCPU is the CPU time pid has used so far.
func processCPU(pid int) (time.Duration, bool) {
	t, ok := cpuTicks(pid)
	return time.Duration(t) * time.Second / clockTicks, ok
}

// selfCPU is the CPU time this process has used so far.
func selfCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// cgroupCPU returns a reader of the CPU time used by the container with
// this ID (cgroup v1 cpuacct or v2 cpu.stat), or nil when none is found.
func cgroupCPU(id string) func() (time.Duration, bool) {
	v1 := []string{"/sys/fs/cgroup/cpuacct/docker/" + id + "/cpuacct.usage", "/sys/fs/cgroup/cpu,cpuacct/docker/" + id + "/cpuacct.usage"}
	v2 := []string{"/sys/fs/cgroup/docker/" + id + "/cpu.stat", "/sys/fs/cgroup/system.slice/docker-" + id + ".scope/cpu.stat"}
	for _, p := range v1 {
		if _, err := os.Stat(p); err == nil {
			return func() (time.Duration, bool) {
				b, err := os.ReadFile(p)
				if err != nil {
					return 0, false
				}
				n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
				return time.Duration(n), err == nil
			}
		}
	}
	for _, p := range v2 {
		if _, err := os.Stat(p); err == nil {
			return func() (time.Duration, bool) {
				b, err := os.ReadFile(p)
				if err != nil {
					return 0, false
				}
				for _, line := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
						n, err := strconv.ParseInt(v, 10, 64)
						return time.Duration(n) * time.Microsecond, err == nil
					}
				}
				return 0, false
			}
		}
	}
	return nil
}
