// Command sessiond-ha-bench measures what the synchronous standby costs:
// sign-in and sign-out through the real sessiond binary, on one Postgres
// and on a Patroni-managed pair in synchronous mode, side by side in one
// run — sequential latency and throughput at 64 concurrent clients. Both
// run on this machine with the same settings, fsync on as in production
// (-fsync=false leaves the disk out: then the difference is the round
// trip to the standby and its work alone).
// It needs root and the Debian packages patroni, etcd-server and
// postgresql-15 (internal/hatest). `make bench-ha`.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond/internal/hatest"
	"github.com/sessiond/sessiond/internal/testbed"
)

const apiKey = "sk_ha_bench_0123456789abcdef"

func main() {
	sequential := flag.Int("sequential", 300, "sign-ins and sign-outs measured one at a time")
	clients := flag.Int("clients", 64, "concurrent clients of the throughput phases")
	duration := flag.Duration("duration", 5*time.Second, "length of each throughput phase")
	fsync := flag.Bool("fsync", true, "fsync and full_page_writes on both servers")
	flag.Parse()
	if err := run(*sequential, *clients, *duration, *fsync); err != nil {
		fmt.Fprintln(os.Stderr, "sessiond-ha-bench:", err)
		os.Exit(1)
	}
}

type result struct {
	name                    string
	signInP50, signInP99    time.Duration
	signOutP50, signOutP99  time.Duration
	signInRate, signOutRate float64
	errors                  int64
}

func run(sequential, clients int, duration time.Duration, fsync bool) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sessiond-ha-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := testbed.BuildSessiond(ctx, "", dir)
	if err != nil {
		return err
	}

	single, err := hatest.StartSingle(ctx, "sessiond", fsync)
	if err != nil {
		return err
	}
	defer single.Close()
	pair, err := hatest.Start(ctx, hatest.Config{Synchronous: true, Database: "sessiond", Fsync: fsync})
	if pair != nil {
		defer pair.Close()
	}
	if err != nil {
		return err
	}

	var results []result
	for _, target := range []struct{ name, url string }{
		{"one Postgres", single.URL("sessiond")},
		{"synchronous pair (Patroni)", pair.URL("sessiond")},
	} {
		srv, err := startSessiond(ctx, bin, target.url)
		if err != nil {
			return fmt.Errorf("%s: %w", target.name, err)
		}
		r, err := measure("http://"+srv.Addr, sequential, clients, duration)
		srv.Stop(time.Minute)
		if err != nil {
			return fmt.Errorf("%s: %w", target.name, err)
		}
		r.name = target.name
		results = append(results, r)
	}

	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("sessiond sign-in and sign-out, %d sequential each, then %d clients for %s each; fsync %t; %s; load average %s\n\n",
		sequential, clients, duration, fsync, time.Now().UTC().Format(time.RFC3339), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Println("| database | sign-in p50 / p99 | sign-out p50 / p99 | sign-ins/s at 64 | sign-outs/s at 64 | errors |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Printf("| %s | %s / %s | %s / %s | %.0f | %.0f | %d |\n", r.name,
			ms(r.signInP50), ms(r.signInP99), ms(r.signOutP50), ms(r.signOutP99), r.signInRate, r.signOutRate, r.errors)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

func measure(base string, sequential, clients int, duration time.Duration) (result, error) {
	var r result
	var n atomic.Int64
	signIn := func() (string, error) {
		st, body, err := do(http.MethodPost, base+"/sessions", apiKey, fmt.Sprintf(`{"user_id":"bench-%d"}`, n.Add(1)))
		if err != nil || st != http.StatusCreated {
			return "", fmt.Errorf("sign-in: %d %v %s", st, err, body)
		}
		var out struct{ Token string }
		return out.Token, json.Unmarshal(body, &out)
	}
	signOut := func(token string) error {
		st, body, err := do(http.MethodDelete, base+"/session", token, "")
		if err != nil || st != http.StatusOK {
			return fmt.Errorf("sign-out: %d %v %s", st, err, body)
		}
		return nil
	}
	// Warm the pool and the plans.
	for range 50 {
		tok, err := signIn()
		if err != nil {
			return r, err
		}
		if err := signOut(tok); err != nil {
			return r, err
		}
	}
	var ins, outs []time.Duration
	for range sequential {
		start := time.Now()
		tok, err := signIn()
		if err != nil {
			return r, err
		}
		ins = append(ins, time.Since(start))
		start = time.Now()
		if err := signOut(tok); err != nil {
			return r, err
		}
		outs = append(outs, time.Since(start))
	}
	r.signInP50, r.signInP99 = percentile(ins, 50), percentile(ins, 99)
	r.signOutP50, r.signOutP99 = percentile(outs, 50), percentile(outs, 99)

	// Throughput: sign-ins for duration, keeping every token; then
	// sign-outs of those tokens for duration.
	var mu sync.Mutex
	var tokens []string
	var errs atomic.Int64
	rate := func(work func() bool) float64 {
		var done atomic.Int64
		deadline := time.Now().Add(duration)
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					if !work() {
						return
					}
					done.Add(1)
				}
			}()
		}
		wg.Wait()
		return float64(done.Load()) / time.Since(start).Seconds()
	}
	r.signInRate = rate(func() bool {
		tok, err := signIn()
		if err != nil {
			errs.Add(1)
			return true
		}
		mu.Lock()
		tokens = append(tokens, tok)
		mu.Unlock()
		return true
	})
	r.signOutRate = rate(func() bool {
		mu.Lock()
		if len(tokens) == 0 {
			mu.Unlock()
			return false
		}
		tok := tokens[len(tokens)-1]
		tokens = tokens[:len(tokens)-1]
		mu.Unlock()
		if err := signOut(tok); err != nil {
			errs.Add(1)
		}
		return true
	})
	r.errors = errs.Load()
	return r, nil
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func do(method, url, credential, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+credential)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// startSessiond runs the binary against url and returns once /readyz
// answers 200.
func startSessiond(ctx context.Context, bin, url string) (*testbed.Process, error) {
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"SESSIOND_DATABASE_URL=" + url, "SESSIOND_ADDR=127.0.0.1:0", "SESSIOND_API_KEYS=" + apiKey, "SESSIOND_ACCESS_LOG=off"}
	return testbed.Start(ctx, testbed.Server{Name: "sessiond", Cmd: cmd, Ready: 60 * time.Second})
}
