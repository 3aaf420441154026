package main

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sampleRSS samples pid's resident set (VmRSS) every 50 ms until the
// returned function is called, which returns the highest sample in KiB.
func sampleRSS(pid int) func() int64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if kib := readStatusKiB(pid, "VmRSS:"); kib > peak.Load() {
				peak.Store(kib)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		return peak.Load()
	}
}

// phases are the load phases in the order they run: what each is, the
// -skip key that leaves it out, and what it runs. A phase with nothing to
// measure (no GET /session rounds, no sign-out-everywhere users) adds no
// row.
var phases = []struct {
	name string
	skip string
	run  func(*phaseRun) error
}{
	// Its two kinds of rounds have their own keys, raw and get.
	{"raw lookup and GET /session, alternating rounds", "", (*phaseRun).rounds},
	{phaseGetHalf, "get-half", (*phaseRun).getHalf},
	{"floor servers", "floor", (*phaseRun).floors},
	{"GET /session at each -scale connection count", "scale", (*phaseRun).scale},
	{phaseGetDue, "get-due", (*phaseRun).getDue},
	{phasePost, "post", (*phaseRun).post},
	{phasePost + " at 8 and 64 connections", "post-scale", (*phaseRun).postScale},
	{phaseDelete, "delete", (*phaseRun).signOut},
	{phaseUser, "delete-user", (*phaseRun).signOutEverywhere},
	{"refusals that must cost the same", "refusals", (*phaseRun).refusals},
}

// runPhases runs the load phases in order, each for o.duration at
// o.conns connections unless it says otherwise, and fills res.
func runPhases(ctx context.Context, o options, pg *pgServer, srv *sessiond, seed *seeded,
	res *results, dir string, logf func(string, ...any)) error {
	p := &phaseRun{ctx: ctx, o: o, pg: pg, srv: srv, seed: seed, res: res, dir: dir, logf: logf,
		del: append([]string(nil), seed.del...)}
	for _, ph := range phases {
		if ph.skip != "" && o.skip[ph.skip] {
			continue
		}
		if err := ph.run(p); err != nil {
			return err
		}
	}
	return nil
}

// phaseRun is what the phases share: the run's setup, its results, and
// what one phase leaves for a later one.
type phaseRun struct {
	ctx  context.Context
	o    options
	pg   *pgServer
	srv  *sessiond
	seed *seeded
	res  *results
	dir  string
	logf func(string, ...any)

	gets []phaseResult // the GET /session rounds
	mu   sync.Mutex
	del  []string // tokens DELETE /session signs out: the reserve, then every sign-in's
}

// refusals times the refusals that must cost the same (refusals.go).
func (p *phaseRun) refusals() (err error) {
	p.res.Refusals, err = measureRefusals(p.ctx, p.srv.Addr, p.logf)
	return err
}

// newWorker makes the request loop of one connection (load.go).
type newWorker = func(int) (func() error, func(), error)

// measureOn runs one phase against the server process with that pid
// (sessiond, or a floor server): conns connections for o.duration, at
// rate requests/s (0: as fast as they go), with a CPU profile of sessiond
// into profile when -profile asks for profiles.
func (p *phaseRun) measureOn(pid int, name string, conns int, rate float64, profile string, w newWorker) (phaseResult, error) {
	o, logf := p.o, p.logf
	if rate > 0 {
		logf("%s: %d conns, %.0f requests/s, %s", name, conns, rate, o.duration)
	} else {
		logf("%s: %d conns, %s", name, conns, o.duration)
	}
	var profWG sync.WaitGroup
	if profile != "" && o.profileDir != "" {
		profWG.Add(1)
		go func() {
			defer profWG.Done()
			path := filepath.Join(o.profileDir, profile)
			if err := p.srv.cpuProfile(o.duration-500*time.Millisecond, path); err != nil {
				logf("  profile: %v", err)
			} else {
				logf("  CPU profile: %s", path)
			}
		}()
	}
	cpu := p.startCPU(pid)
	rss := sampleRSS(pid)
	rec, elapsed, err := drive(p.ctx, conns, o.duration, rate, w)
	peakRSS := rss()
	if err != nil {
		return phaseResult{}, err
	}
	r := rec.result(name, conns, rate, elapsed)
	if peakRSS > 0 && name != phaseRaw {
		mib := float64(peakRSS) / 1024
		r.RSSMiB = &mib
	}
	// The raw lookup has no server process of its own: pid is sessiond,
	// idle meanwhile.
	cpu(&r, name != phaseRaw)
	profWG.Wait()
	logf("  %.0f requests/s, p50 %.2f ms, p99 %.2f ms, %d errors; CPU µs/request: sessiond %s, postgres %s, load generator %s",
		r.RPS, r.P50MS, r.P99MS, r.Errors, fmtOpt(r.SessiondCPUUS), fmtOpt(r.PostgresCPUUS), fmtOpt(r.BenchCPUUS))
	if err := p.ctx.Err(); err != nil {
		return r, err
	}
	time.Sleep(time.Second) // let the checkpointer and autovacuum settle between phases
	return r, nil
}

// startCPU reads the CPU time of the server process with that pid, of
// Postgres and of this process; the function it returns sets r's CPU per
// request from what they used since (the server's only if withServer).
func (p *phaseRun) startCPU(pid int) func(r *phaseResult, withServer bool) {
	meters := []func() (time.Duration, bool){
		func() (time.Duration, bool) { return processCPU(pid) }, p.pg.cpu, selfCPU,
	}
	var before [3]time.Duration
	var okBefore [3]bool
	for i, read := range meters {
		if read != nil {
			before[i], okBefore[i] = read()
		}
	}
	return func(r *phaseResult, withServer bool) {
		dsts := []**float64{&r.SessiondCPUUS, &r.PostgresCPUUS, &r.BenchCPUUS}
		for i, read := range meters {
			if read == nil || !okBefore[i] || r.Requests == 0 || (i == 0 && !withServer) {
				continue
			}
			if after, ok := read(); ok {
				us := float64((after - before[i]).Microseconds()) / float64(r.Requests)
				*dsts[i] = &us
			}
		}
	}
}

// measureAt runs one phase against sessiond at conns connections.
func (p *phaseRun) measureAt(name string, conns int, rate float64, profile string, w newWorker) (phaseResult, error) {
	return p.measureOn(p.srv.Cmd.Process.Pid, name, conns, rate, profile, w)
}

// measure runs one phase against sessiond at -conns connections.
func (p *phaseRun) measure(name string, rate float64, profile string, w newWorker) (phaseResult, error) {
	return p.measureAt(name, p.o.conns, rate, profile, w)
}

// getSession is GET /session at sessiond with the sampled tokens.
func (p *phaseRun) getSession() newWorker {
	return getSessionWorker(p.srv.Addr, &tokenFeed{tokens: p.seed.get})
}

// collectSignIns keeps the tokens of sign-ins for DELETE /session.
func (p *phaseRun) collectSignIns(tokens []string) {
	p.mu.Lock()
	p.del = append(p.del, tokens...)
	p.mu.Unlock()
}

// rounds warms up, then alternates the raw lookup and GET /session for
// -rounds rounds, so a change in the machine's other load hits both
// alike; each reports its median round.
func (p *phaseRun) rounds() error {
	o, seed := p.o, p.seed
	raw, err := newRawLookup(p.ctx, p.pg.url, o.conns)
	if err != nil {
		return err
	}
	defer raw.pool.Close()
	// Warm up: read every sampled session once, so neither the raw
	// lookup (first) nor GET /session (second) pays for a cold cache.
	t := time.Now()
	if _, _, err := drive(p.ctx, o.conns, time.Minute, 0, raw.worker(p.ctx, &tokenFeed{tokens: seed.get, once: true})); err != nil {
		return err
	}
	p.logf("warm-up: read the %d sampled sessions once in %s", len(seed.get), time.Since(t).Round(time.Millisecond))
	var raws []phaseResult
	for round := range o.rounds {
		if !o.skip["raw"] {
			r, err := p.measure(phaseRaw, 0, "", raw.worker(p.ctx, &tokenFeed{tokens: seed.get}))
			if err != nil {
				return err
			}
			raws = append(raws, r)
		}
		if !o.skip["get"] {
			profile := ""
			if round == 0 {
				profile = "cpu-get-session.pprof"
			}
			r, err := p.measure(phaseGet, 0, profile, p.getSession())
			if err != nil {
				return err
			}
			p.gets = append(p.gets, r)
		}
	}
	res := p.res
	if r, ok := median(raws); ok {
		res.Phases = append(res.Phases, r)
		res.rawRPS = r.RPS
		res.rawCPU = r.cpuPerRequest()
		res.rawServerCPU = r.serverCPUPerRequest()
	}
	if r, ok := median(p.gets); ok {
		res.Phases = append(res.Phases, r)
		res.getRPS = r.RPS
		res.getCPU = r.cpuPerRequest()
		res.getServerCPU = r.serverCPUPerRequest()
	}
	return nil
}

// getHalf is GET /session at half the median round's rate.
func (p *phaseRun) getHalf() error {
	if p.res.getRPS <= 0 {
		return nil
	}
	r, err := p.measure(phaseGetHalf, p.res.getRPS/2, "", p.getSession())
	if err != nil {
		return err
	}
	p.res.Phases = append(p.res.Phases, r)
	return nil
}

// floors runs the same load against servers with nothing of sessiond's
// own (floor.go), right after its rounds.
func (p *phaseRun) floors() error {
	if len(p.gets) == 0 {
		return nil
	}
	answer, err := sessionAnswer(p.srv.Addr, p.seed.get[0])
	if err != nil {
		return err
	}
	for _, kind := range []string{floorLookup, floorConstant} {
		fl, err := startFloor(p.ctx, kind, p.pg.url, answer, p.dir)
		if err != nil {
			return err
		}
		r, err := p.measureOn(fl.Cmd.Process.Pid, phaseFloor+kind, p.o.conns, 0, "",
			getSessionWorker(fl.Addr, &tokenFeed{tokens: p.seed.get}))
		fl.stop()
		if err != nil {
			return err
		}
		p.res.Floors = append(p.res.Floors, r)
	}
	return nil
}

// scale is GET /session at each -scale connection count: what sessiond
// costs per request and per open connection as the connections grow.
func (p *phaseRun) scale() error {
	for _, n := range p.o.scale {
		r, err := p.measureAt(fmt.Sprintf("%s @ %d conns", phaseGet, n), n, 0, "", p.getSession())
		if err != nil {
			return err
		}
		p.res.Scale = append(p.res.Scale, r)
	}
	return nil
}

// getDue reads the reserve tokens once each, the activity write due;
// DELETE /session signs them out later.
func (p *phaseRun) getDue() error {
	r, err := p.measure(phaseGetDue, 0, "", getSessionWorker(p.srv.Addr, &tokenFeed{tokens: p.seed.del, once: true}))
	if err != nil {
		return err
	}
	p.res.Phases = append(p.res.Phases, r)
	return nil
}

// post is POST /sessions at -conns connections.
func (p *phaseRun) post() error {
	r, err := p.measure(phasePost, 0, "cpu-post-sessions.pprof", signInWorker(p.srv.Addr, p.collectSignIns))
	if err != nil {
		return err
	}
	p.res.Phases = append(p.res.Phases, r)
	return nil
}

// postScale is sign-ins at a few and at many connections: a design that
// lets only one commit flush at a time shows as the same rate at both
// (post is the one at -conns).
func (p *phaseRun) postScale() error {
	for _, n := range []int{8, 64} {
		if n == p.o.conns {
			continue
		}
		r, err := p.measureAt(fmt.Sprintf("%s @ %d conns", phasePost, n), n, 0, "", signInWorker(p.srv.Addr, p.collectSignIns))
		if err != nil {
			return err
		}
		p.res.Phases = append(p.res.Phases, r)
	}
	return nil
}

// signOut is DELETE /session for the reserve tokens and every sign-in's,
// each once.
func (p *phaseRun) signOut() error {
	r, err := p.measure(phaseDelete, 0, "", signOutWorker(p.srv.Addr, &tokenFeed{tokens: p.del, once: true}))
	if err != nil {
		return err
	}
	p.res.Phases = append(p.res.Phases, r)
	return nil
}

// signOutEverywhere is DELETE /users/{id}/sessions for each user holding
// -per-user sessions, one request at a time, with sessiond's and
// Postgres' CPU per request.
func (p *phaseRun) signOutEverywhere() error {
	users := p.seed.everywhere
	if len(users) == 0 {
		return nil
	}
	var profWG sync.WaitGroup
	if p.o.profileDir != "" {
		profWG.Add(1)
		go func() {
			defer profWG.Done()
			path := filepath.Join(p.o.profileDir, "cpu-delete-user-sessions.pprof")
			if err := p.srv.cpuProfile(time.Duration(len(users))*time.Second, path); err == nil {
				p.logf("  CPU profile: %s", path)
			}
		}()
		time.Sleep(100 * time.Millisecond)
	}
	cpu := p.startCPU(p.srv.Cmd.Process.Pid)
	r, err := signOutEverywhere(p.ctx, p.srv.Addr, users, p.o.perUser, p.logf)
	cpu(&r, true)
	r.BenchCPUUS = nil // this row reports the servers' CPU only
	profWG.Wait()
	if err != nil {
		return err
	}
	p.res.Phases = append(p.res.Phases, r)
	return nil
}

// Phase names, as the table shows them.
const (
	phaseRaw     = "raw lookup (pgx, prepared)"
	phaseGet     = "GET /session"
	phaseGetHalf = "GET /session @ half max"
	phaseFloor   = "GET /session, floor server: "
	phaseGetDue  = "GET /session (write due)"
	phasePost    = "POST /sessions"
	phaseDelete  = "DELETE /session"
	phaseUser    = "DELETE /users/{id}/sessions"
)

// signOutEverywhere ends all sessions of each user, one request at a time
// (nothing else runs), and checks each ended perUser sessions.
func signOutEverywhere(ctx context.Context, addr string, users []string, perUser int, logf func(string, ...any)) (phaseResult, error) {
	logf("%s: %d users with %d sessions each, one request at a time", phaseUser, len(users), perUser)
	// Ask for gzip as a browser or net/http would, and decompress here,
	// so the phase also reports the bytes on the wire.
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableCompression: true}}
	var wire, plain int
	rec := newRecorder(1)
	start := time.Now()
	for _, u := range users {
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, "http://"+addr+"/users/"+url.PathEscape(u)+"/sessions", nil)
		if err != nil {
			return phaseResult{}, err
		}
		req.Header.Set("Authorization", "Bearer "+benchAPIKey)
		req.Header.Set("Accept-Encoding", "gzip")
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			rec.fail(err)
			continue
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0) // to the last byte; checking the answer is not sessiond's time
		wire += len(raw)
		if err == nil && resp.Header.Get("Content-Encoding") == "gzip" {
			var zr *gzip.Reader
			if zr, err = gzip.NewReader(bytes.NewReader(raw)); err == nil {
				raw, err = io.ReadAll(zr)
			}
		}
		plain += len(raw)
		var body struct {
			Ended []json.RawMessage `json:"ended"`
		}
		if err == nil {
			err = json.Unmarshal(raw, &body)
		}
		switch {
		case resp.StatusCode != http.StatusOK:
			rec.fail(fmt.Errorf("DELETE /users/%s/sessions answered %d", u, resp.StatusCode))
		case err != nil:
			rec.fail(err)
		case len(body.Ended) != perUser:
			rec.fail(fmt.Errorf("DELETE /users/%s/sessions ended %d sessions, want %d", u, len(body.Ended), perUser))
		default:
			rec.lat[0] = append(rec.lat[0], d)
			logf("  %s: %d sessions ended in %s", u, len(body.Ended), d.Round(100*time.Microsecond))
		}
	}
	r := rec.result(phaseUser, 1, 0, time.Since(start))
	r.Note = fmt.Sprintf("%d users × %d sessions, sequential; answers %.2f MB, %.2f MB on the wire; ", len(users), perUser,
		float64(plain)/1e6, float64(wire)/1e6) + r.Note
	return r, nil
}

// median returns the round with the median requests/s, noting every
// round's.
func median(rounds []phaseResult) (phaseResult, bool) {
	if len(rounds) == 0 {
		return phaseResult{}, false
	}
	sorted := slices.Clone(rounds)
	slices.SortFunc(sorted, func(a, b phaseResult) int { return cmp.Compare(a.RPS, b.RPS) })
	m := sorted[len(sorted)/2]
	if len(rounds) > 1 {
		var each []string
		for _, r := range rounds {
			each = append(each, fmt.Sprintf("%.0f", r.RPS))
		}
		note := fmt.Sprintf("median of %d rounds (requests/s in order: %s)", len(rounds), strings.Join(each, ", "))
		if m.Note != "" {
			note += "; " + m.Note
		}
		m.Note = note
		m.Rounds = len(rounds)
	}
	return m, true
}

// cpuPerRequest is the CPU of every process involved, per request.
func (p phaseResult) cpuPerRequest() float64 {
	var sum float64
	for _, v := range []*float64{p.SessiondCPUUS, p.PostgresCPUUS, p.BenchCPUUS} {
		if v != nil {
			sum += *v
		}
	}
	return sum
}

// serverCPUPerRequest is the CPU of sessiond and Postgres per request,
// the load generator left out.
func (p phaseResult) serverCPUPerRequest() float64 {
	var sum float64
	for _, v := range []*float64{p.SessiondCPUUS, p.PostgresCPUUS} {
		if v != nil {
			sum += *v
		}
	}
	return sum
}
