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

// runPhases runs the load phases in order, each for o.duration at
// o.conns connections, and fills res.
func runPhases(ctx context.Context, o options, pg *pgServer, srv *sessiond, seed *seeded,
	res *results, dir string, logf func(string, ...any)) error {
	pid := srv.Cmd.Process.Pid
	// phaseOn measures a phase against the server process with that pid
	// (sessiond, or a floor server); phaseAt and phase against sessiond.
	phaseOn := func(pid int, name string, conns int, rate float64, profile string,
		newWorker func(int) (func() error, func(), error)) (phaseResult, error) {
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
				if err := srv.cpuProfile(o.duration-500*time.Millisecond, path); err != nil {
					logf("  profile: %v", err)
				} else {
					logf("  CPU profile: %s", path)
				}
			}()
		}
		meters := []struct{ read func() (time.Duration, bool) }{
			{func() (time.Duration, bool) { return processCPU(pid) }}, {pg.cpu}, {selfCPU},
		}
		var before [3]time.Duration
		var okBefore [3]bool
		for i, m := range meters {
			if m.read != nil {
				before[i], okBefore[i] = m.read()
			}
		}
		rss := sampleRSS(pid)
		rec, elapsed, err := drive(ctx, conns, o.duration, rate, newWorker)
		peakRSS := rss()
		if err != nil {
			return phaseResult{}, err
		}
		r := rec.result(name, conns, rate, elapsed)
		if peakRSS > 0 && name != phaseRaw {
			mib := float64(peakRSS) / 1024
			r.RSSMiB = &mib
		}
		dsts := []**float64{&r.SessiondCPUUS, &r.PostgresCPUUS, &r.BenchCPUUS}
		for i, m := range meters {
			if m.read == nil || !okBefore[i] || r.Requests == 0 || (i == 0 && name == phaseRaw) {
				continue
			}
			if after, ok := m.read(); ok {
				us := float64((after - before[i]).Microseconds()) / float64(r.Requests)
				*dsts[i] = &us
			}
		}
		profWG.Wait()
		logf("  %.0f requests/s, p50 %.2f ms, p99 %.2f ms, %d errors; CPU µs/request: sessiond %s, postgres %s, load generator %s",
			r.RPS, r.P50MS, r.P99MS, r.Errors, fmtOpt(r.SessiondCPUUS), fmtOpt(r.PostgresCPUUS), fmtOpt(r.BenchCPUUS))
		if err := ctx.Err(); err != nil {
			return r, err
		}
		time.Sleep(time.Second) // let the checkpointer and autovacuum settle between phases
		return r, nil
	}
	phaseAt := func(name string, conns int, rate float64, profile string,
		newWorker func(int) (func() error, func(), error)) (phaseResult, error) {
		return phaseOn(pid, name, conns, rate, profile, newWorker)
	}
	phase := func(name string, rate float64, profile string,
		newWorker func(int) (func() error, func(), error)) (phaseResult, error) {
		return phaseAt(name, o.conns, rate, profile, newWorker)
	}

	raw, err := newRawLookup(ctx, pg.url, o.conns)
	if err != nil {
		return err
	}
	// Warm up: read every sampled session once, so neither the raw
	// lookup (first) nor GET /session (second) pays for a cold cache.
	t := time.Now()
	if _, _, err := drive(ctx, o.conns, time.Minute, 0, raw.worker(ctx, &tokenFeed{tokens: seed.get, once: true})); err != nil {
		raw.pool.Close()
		return err
	}
	logf("warm-up: read the %d sampled sessions once in %s", len(seed.get), time.Since(t).Round(time.Millisecond))
	// The raw lookup and GET /session alternate for o.rounds rounds, so
	// a change in the machine's other load hits both alike; each reports
	// its median round.
	var raws, gets []phaseResult
	for round := range o.rounds {
		if !o.skip["raw"] {
			r, err := phase(phaseRaw, 0, "", raw.worker(ctx, &tokenFeed{tokens: seed.get}))
			if err != nil {
				raw.pool.Close()
				return err
			}
			raws = append(raws, r)
		}
		if !o.skip["get"] {
			profile := ""
			if round == 0 {
				profile = "cpu-get-session.pprof"
			}
			r, err := phase(phaseGet, 0, profile, getSessionWorker(srv.Addr, &tokenFeed{tokens: seed.get}))
			if err != nil {
				raw.pool.Close()
				return err
			}
			gets = append(gets, r)
		}
	}
	raw.pool.Close()
	if r, ok := median(raws); ok {
		res.Phases = append(res.Phases, r)
		res.rawRPS = r.RPS
		res.rawCPU = r.cpuPerRequest()
		res.rawServerCPU = r.serverCPUPerRequest()
	}
	if r, ok := median(gets); ok {
		res.Phases = append(res.Phases, r)
		res.getRPS = r.RPS
		res.getCPU = r.cpuPerRequest()
		res.getServerCPU = r.serverCPUPerRequest()
		if !o.skip["get-half"] && r.RPS > 0 {
			h, err := phase(phaseGetHalf, r.RPS/2, "", getSessionWorker(srv.Addr, &tokenFeed{tokens: seed.get}))
			if err != nil {
				return err
			}
			res.Phases = append(res.Phases, h)
		}
	}
	// The floors (floor.go): the same load against servers with nothing
	// of sessiond's own, right after its rounds.
	if !o.skip["floor"] && len(gets) > 0 {
		answer, err := sessionAnswer(srv.Addr, seed.get[0])
		if err != nil {
			return err
		}
		for _, kind := range []string{floorLookup, floorConstant} {
			fl, err := startFloor(ctx, kind, pg.url, answer, dir)
			if err != nil {
				return err
			}
			r, err := phaseOn(fl.Cmd.Process.Pid, phaseFloor+kind, o.conns, 0, "",
				getSessionWorker(fl.Addr, &tokenFeed{tokens: seed.get}))
			fl.stop()
			if err != nil {
				return err
			}
			res.Floors = append(res.Floors, r)
		}
	}
	// GET /session at each -scale connection count: what sessiond costs
	// per request and per open connection as the connections grow.
	if !o.skip["scale"] {
		for _, n := range o.scale {
			r, err := phaseAt(fmt.Sprintf("%s @ %d conns", phaseGet, n), n, 0, "",
				getSessionWorker(srv.Addr, &tokenFeed{tokens: seed.get}))
			if err != nil {
				return err
			}
			res.Scale = append(res.Scale, r)
		}
	}
	// The reserve tokens: first read with the activity write due, then
	// signed out.
	if !o.skip["get-due"] {
		r, err := phase(phaseGetDue, 0, "", getSessionWorker(srv.Addr, &tokenFeed{tokens: seed.del, once: true}))
		if err != nil {
			return err
		}
		res.Phases = append(res.Phases, r)
	}
	var mu sync.Mutex
	del := append([]string(nil), seed.del...)
	if !o.skip["post"] {
		r, err := phase(phasePost, 0, "cpu-post-sessions.pprof", signInWorker(srv.Addr, func(tokens []string) {
			mu.Lock()
			del = append(del, tokens...)
			mu.Unlock()
		}))
		if err != nil {
			return err
		}
		res.Phases = append(res.Phases, r)
	}
	if !o.skip["post-scale"] {
		// Sign-ins at a few and at many connections: a design that lets
		// only one commit flush at a time shows as the same rate at both
		// (the phase above is the one at -conns).
		for _, n := range []int{8, 64} {
			if n == o.conns {
				continue
			}
			r, err := phaseAt(fmt.Sprintf("%s @ %d conns", phasePost, n), n, 0, "", signInWorker(srv.Addr, func(tokens []string) {
				mu.Lock()
				del = append(del, tokens...)
				mu.Unlock()
			}))
			if err != nil {
				return err
			}
			res.Phases = append(res.Phases, r)
		}
	}
	if !o.skip["delete"] {
		r, err := phase(phaseDelete, 0, "", signOutWorker(srv.Addr, &tokenFeed{tokens: del, once: true}))
		if err != nil {
			return err
		}
		res.Phases = append(res.Phases, r)
	}
	if !o.skip["delete-user"] && len(seed.everywhere) > 0 {
		var profWG sync.WaitGroup
		if o.profileDir != "" {
			profWG.Add(1)
			go func() {
				defer profWG.Done()
				path := filepath.Join(o.profileDir, "cpu-delete-user-sessions.pprof")
				if err := srv.cpuProfile(time.Duration(len(seed.everywhere))*time.Second, path); err == nil {
					logf("  CPU profile: %s", path)
				}
			}()
			time.Sleep(100 * time.Millisecond)
		}
		c0, ok0 := processCPU(pid)
		var p0 time.Duration
		var okP bool
		if pg.cpu != nil {
			p0, okP = pg.cpu()
		}
		r, err := signOutEverywhere(ctx, srv.Addr, seed.everywhere, o.perUser, logf)
		if c1, ok1 := processCPU(pid); ok0 && ok1 && r.Requests > 0 {
			us := float64((c1 - c0).Microseconds()) / float64(r.Requests)
			r.SessiondCPUUS = &us
		}
		if okP && r.Requests > 0 {
			if p1, ok := pg.cpu(); ok {
				us := float64((p1 - p0).Microseconds()) / float64(r.Requests)
				r.PostgresCPUUS = &us
			}
		}
		profWG.Wait()
		if err != nil {
			return err
		}
		res.Phases = append(res.Phases, r)
	}
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
