package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// results is everything one run measured; -json writes it as is.
type results struct {
	Started        time.Time     `json:"started"`
	Machine        machine       `json:"machine"`
	Postgres       pgInfo        `json:"postgres"`
	Sessions       int           `json:"sessions"`
	Conns          int           `json:"conns"`
	Duration       string        `json:"phase_duration"`
	MigrateMS      float64       `json:"migrate_empty_db_ms"`
	Seed           seedStats     `json:"seed"`
	StartToReadyMS float64       `json:"start_to_ready_ms"`
	PeakRSSMiB     float64       `json:"peak_rss_mib"`
	Phases         []phaseResult `json:"phases"`
	// Floors is GET /session against the floor servers (floor.go); their
	// SessiondCPUUS is the floor server's process.
	Floors []phaseResult `json:"floors,omitempty"`
	// Scale is GET /session at each -scale connection count.
	Scale []phaseResult `json:"scale,omitempty"`
	// Webhooks is set by -webhooks.
	Webhooks *webhookResult `json:"webhooks,omitempty"`
	// Refusals is the refusals measurement (refusals.go).
	Refusals []refusalResult `json:"refusals,omitempty"`
	// Ratio is GET /session ÷ raw lookup, in requests/s.
	Ratio   *float64 `json:"get_session_to_raw_ratio,omitempty"`
	Targets []target `json:"targets"`

	rawRPS, getRPS float64
	rawCPU, getCPU float64 // CPU µs per request, all processes
	// rawServerCPU and getServerCPU leave the load generators out: Postgres
	// for the raw lookup, sessiond + Postgres for GET /session.
	rawServerCPU, getServerCPU float64
	// ServerCPURatio is rawServerCPU ÷ getServerCPU.
	ServerCPURatio *float64 `json:"server_cpu_ratio_raw_to_get,omitempty"`
	// CPURatio is raw lookup ÷ GET /session in CPU per request: what the
	// throughput ratio would be if both saturated the same CPUs.
	CPURatio *float64 `json:"cpu_ratio_raw_to_get,omitempty"`
	compare  *results // -compare: a run with fewer sessions
}

type target struct {
	Name     string `json:"name"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      *bool  `json:"met,omitempty"` // nil: not measured in this run
}

type machine struct {
	Cores   int    `json:"cores"`
	CPU     string `json:"cpu"`
	MemMiB  int64  `json:"mem_mib"`
	Kernel  string `json:"kernel"`
	GoVer   string `json:"go"`
	LoadAvg string `json:"loadavg_at_start"`
}

func describeMachine() machine {
	m := machine{Cores: runtime.NumCPU(), GoVer: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		var kib int64
		fmt.Fscanf(f, "MemTotal: %d kB", &kib)
		m.MemMiB = kib / 1024
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}

func (r *results) phase(name string) *phaseResult {
	for i := range r.Phases {
		if r.Phases[i].Name == name {
			return &r.Phases[i]
		}
	}
	return nil
}

// evaluate computes the ratio and checks each target (BENCHMARKS.md,
// "Targets").
func (r *results) evaluate() {
	met := func(ok bool) *bool { return &ok }
	if r.rawRPS > 0 && r.getRPS > 0 {
		v := r.getRPS / r.rawRPS
		r.Ratio = &v
		r.Targets = append(r.Targets, target{fmt.Sprintf("GET /session vs raw lookup, %d conns", r.Conns), "≥ 0.80 × raw",
			fmt.Sprintf("%.2f × (%.0f vs %.0f requests/s)", v, r.getRPS, r.rawRPS), met(v >= 0.8)})
		if r.rawCPU > 0 && r.getCPU > 0 {
			c := r.rawCPU / r.getCPU
			r.CPURatio = &c
		}
		if r.rawServerCPU > 0 && r.getServerCPU > 0 {
			c := r.rawServerCPU / r.getServerCPU
			r.ServerCPURatio = &c
		}
	}
	if len(r.Scale) > 1 && r.Scale[0].RPS > 0 {
		first, last := r.Scale[0], r.Scale[len(r.Scale)-1]
		v := last.RPS / first.RPS
		r.Targets = append(r.Targets, target{fmt.Sprintf("GET /session at %d vs %d conns", last.Conns, first.Conns), "≥ 0.80 ×",
			fmt.Sprintf("%.2f × (%.0f vs %.0f requests/s)", v, last.RPS, first.RPS), met(v >= 0.8)})
	}
	if p := r.phase(phaseGetHalf); p != nil {
		r.Targets = append(r.Targets, target{"GET /session p99 at half max", "< 5 ms",
			fmt.Sprintf("%.2f ms at %.0f requests/s", p.P99MS, p.RPS), met(p.P99MS < 5)})
	}
	if p := r.phase(phaseUser); p != nil && p.Requests > 0 {
		r.Targets = append(r.Targets, target{"sign out everywhere, 10,000 sessions", "< 100 ms",
			fmt.Sprintf("max %.1f ms (p50 %.1f ms, %d requests)", p.MaxMS, p.P50MS, p.Requests), met(p.MaxMS < 100)})
	}
	if c := r.compare; c != nil && c.Sessions > 0 {
		var base float64
		if p := c.phase(phaseGet); p != nil {
			base = p.RPS
		}
		if base > 0 && r.getRPS > 0 {
			v := r.getRPS / base
			r.Targets = append(r.Targets, target{fmt.Sprintf("GET /session, %s vs %s sessions", count(r.Sessions), count(c.Sessions)),
				"≥ 0.90 ×", fmt.Sprintf("%.2f × (%.0f vs %.0f requests/s)", v, r.getRPS, base), met(v >= 0.9)})
		}
	} else {
		r.Targets = append(r.Targets, target{"GET /session, 10M vs 10k sessions", "≥ 0.90 ×",
			fmt.Sprintf("run with -sessions 10000000 -compare <10k run's JSON>; here %.0f requests/s at %s", r.getRPS, count(r.Sessions)), nil})
	}
	if r.PeakRSSMiB > 0 {
		r.Targets = append(r.Targets, target{"sessiond peak RSS (VmHWM)", "< 64 MiB", fmt.Sprintf("%.1f MiB", r.PeakRSSMiB), met(r.PeakRSSMiB < 64)})
	}
	r.Targets = append(r.Targets, target{"start to ready (database up)", "< 1 s", fmt.Sprintf("%.0f ms", r.StartToReadyMS), met(r.StartToReadyMS < 1000)})
}

func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func readResults(path string) (*results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

func printTable(w io.Writer, r *results) {
	fmt.Fprintf(w, "\nsessiond-bench  %s  %d cores (%s), %d MiB, Go %s, load %s\n",
		r.Started.Format(time.RFC3339), r.Machine.Cores, r.Machine.CPU, r.Machine.MemMiB, r.Machine.GoVer, r.Machine.LoadAvg)
	fmt.Fprintf(w, "postgres %s (%s)", r.Postgres.Version, r.Postgres.Source)
	for _, k := range []string{"shared_buffers", "max_connections", "fsync", "synchronous_commit", "max_wal_size"} {
		if v, ok := r.Postgres.Settings[k]; ok {
			fmt.Fprintf(w, " %s=%s", k, v)
		}
	}
	fmt.Fprintf(w, "\n%s sessions seeded (%d rows in all) in %.1f s: COPY %.1f s, indexes %.1f s, vacuum+analyze %.1f s; table+indexes %.0f MiB\n",
		count(r.Sessions), r.Seed.Rows, r.Seed.TotalSeconds, r.Seed.CopySeconds, r.Seed.IndexSeconds, r.Seed.VacuumSeconds, r.Seed.TableMiB)
	fmt.Fprintf(w, "each phase: %s, %d connections\n\n", r.Duration, r.Conns)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\t requests/s\t p50 ms\t p90 ms\t p99 ms\t max ms\t requests\t errors\t CPU µs/req: sessiond\t postgres\t loadgen\t")
	for _, p := range r.Phases {
		fmt.Fprintf(tw, "%s\t %.0f\t %.2f\t %.2f\t %.2f\t %.2f\t %d\t %d\t %s\t %s\t %s\t\n",
			p.Name, p.RPS, p.P50MS, p.P90MS, p.P99MS, p.MaxMS, p.Requests, p.Errors,
			fmtOpt(p.SessiondCPUUS), fmtOpt(p.PostgresCPUUS), fmtOpt(p.BenchCPUUS))
	}
	tw.Flush()
	for _, p := range r.Phases {
		if p.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", p.Name, p.Note)
		}
	}
	if len(r.Scale) > 0 {
		fmt.Fprintf(w, "\nGET /session by open keep-alive connections (each %s):\n", r.Duration)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "conns\t requests/s\t vs first\t p50 ms\t p99 ms\t errors\t CPU µs/req: sessiond\t postgres\t loadgen\t sessiond RSS MiB\t KiB per added conn\t")
		first := r.Scale[0]
		for _, p := range r.Scale {
			vs, perConn := "-", "-"
			if first.RPS > 0 {
				vs = fmt.Sprintf("%.2f", p.RPS/first.RPS)
			}
			if p.Conns > first.Conns && p.RSSMiB != nil && first.RSSMiB != nil {
				perConn = fmt.Sprintf("%.1f", (*p.RSSMiB-*first.RSSMiB)*1024/float64(p.Conns-first.Conns))
			}
			rss := "-"
			if p.RSSMiB != nil {
				rss = fmt.Sprintf("%.1f", *p.RSSMiB)
			}
			fmt.Fprintf(tw, "%d\t %.0f\t %s\t %.2f\t %.2f\t %d\t %s\t %s\t %s\t %s\t %s\t\n", p.Conns, p.RPS, vs, p.P50MS, p.P99MS, p.Errors,
				fmtOpt(p.SessiondCPUUS), fmtOpt(p.PostgresCPUUS), fmtOpt(p.BenchCPUUS), rss, perConn)
		}
		tw.Flush()
	}
	if r.Ratio != nil {
		fmt.Fprintf(w, "\nratio GET /session ÷ raw lookup at %d connections:\n", r.Conns)
		fmt.Fprintf(w, "  as a pgbench comparison computes it (throughput: requests/s ÷ lookups/s, same connections, same machine): %.2f (%.0f ÷ %.0f)\n",
			*r.Ratio, r.getRPS, r.rawRPS)
		if r.CPURatio != nil {
			fmt.Fprintf(w, "  in CPU per request, all processes (what the throughput ratio tends to when both saturate the same cores): raw %.0f µs ÷ GET %.0f µs = %.2f\n",
				r.rawCPU, r.getCPU, *r.CPURatio)
		}
		if r.ServerCPURatio != nil {
			fmt.Fprintf(w, "  in server CPU per request, load generators left out (Postgres ÷ sessiond + Postgres): raw %.0f µs ÷ GET %.0f µs = %.2f\n",
				r.rawServerCPU, r.getServerCPU, *r.ServerCPURatio)
		}
	}
	if get := r.phase(phaseGet); get != nil && get.SessiondCPUUS != nil && len(r.Floors) > 0 {
		fmt.Fprintf(w, "\nGET /session against floor servers at %d connections (floor.go: nothing of sessiond's own; CPU µs/request of the serving process, + Postgres):\n", r.Conns)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "server\t requests/s\t CPU µs/req: server\t postgres\t server ÷ sessiond\t")
		fmt.Fprintf(tw, "sessiond\t %.0f\t %.0f\t %s\t 1.00\t\n", get.RPS, *get.SessiondCPUUS, fmtOpt(get.PostgresCPUUS))
		for _, f := range r.Floors {
			share := "-"
			if f.SessiondCPUUS != nil && *get.SessiondCPUUS > 0 {
				share = fmt.Sprintf("%.2f", *f.SessiondCPUUS / *get.SessiondCPUUS)
			}
			fmt.Fprintf(tw, "%s\t %.0f\t %s\t %s\t %s\t\n", strings.TrimPrefix(f.Name, phaseFloor), f.RPS, fmtOpt(f.SessiondCPUUS), fmtOpt(f.PostgresCPUUS), share)
		}
		tw.Flush()
		for _, f := range r.Floors {
			if f.Errors > 0 {
				fmt.Fprintf(w, "  %s: %d errors\n", f.Name, f.Errors)
			}
		}
	}
	if wr := r.Webhooks; wr != nil {
		fmt.Fprintf(w, "webhooks (-webhooks): %d of %d events delivered, %.0f events/s, drained %.1f s after the last phase, %d duplicates, %d bad signatures\n",
			wr.Delivered, wr.Events, wr.EventsPerSec, wr.DrainSeconds, wr.Duplicates, wr.BadSignatures)
	}
	if len(r.Refusals) > 0 {
		fmt.Fprintf(w, "refusals that must cost the same (interleaved, one connection; not asserted, the tests prove the same work):\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "refusal\t requests\t median ms\t p90 ms\t")
		for _, x := range r.Refusals {
			fmt.Fprintf(tw, "%s\t %d\t %.3f\t %.3f\t\n", x.Kind, x.Requests, x.MedianMS, x.P90MS)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "sessiond start to ready: %.0f ms   peak RSS (VmHWM): %.1f MiB   migrate (empty db): %.0f ms\n\n",
		r.StartToReadyMS, r.PeakRSSMiB, r.MigrateMS)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tgoal\tmeasured\tmet")
	for _, t := range r.Targets {
		m := "-"
		if t.Met != nil {
			m = map[bool]string{true: "yes", false: "NO"}[*t.Met]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Goal, t.Measured, m)
	}
	tw.Flush()
}

func fmtOpt(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f", *v)
}
