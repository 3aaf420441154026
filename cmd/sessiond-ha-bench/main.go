// Command sessiond-ha-bench measures what the synchronous standby costs:
// sign-in and sign-out through the real sessiond binary, on one Postgres,
// on a Patroni-managed pair in synchronous mode, and on that pair with
// its replication traffic delayed (-standby-delay, as if the standby were
// in another zone), side by side in one run — sequential latency, then
// sign-ins at 8 and at 64 concurrent clients (-clients): a design that
// serialises commit flushes shows as the same rate at both. All run on
// this machine with the same settings, fsync on as in production
// (-fsync=false leaves the disk out: then the difference is the round
// trip to the standby and its work alone).
//
// The delay applies only to the standby's connection to the primary:
// the pair's nodes give a forwarding proxy of this process as their
// connect_address, so the standby streams through it, while sessiond
// connects to the Postgres ports directly; the proxy holds each chunk of
// replication bytes, each direction, for the delay (0 in the second
// column, so the two pair columns differ by the delay alone). The commit
// column is a bare one-row INSERT from this process: one durable commit,
// which on the pair waits for the standby — it shows the delay is real,
// growing by about twice the delay.
//
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
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/hatest"
	"github.com/sessiond/sessiond/internal/testbed"
)

const apiKey = "sk_ha_bench_0123456789abcdef"

func main() {
	sequential := flag.Int("sequential", 300, "sign-ins and sign-outs measured one at a time")
	clientList := flag.String("clients", "8,64", "comma-separated concurrent clients of the sign-in phases; sign-outs run at the last")
	duration := flag.Duration("duration", 5*time.Second, "length of each throughput phase")
	fsync := flag.Bool("fsync", true, "fsync and full_page_writes on both servers")
	envFlag := flag.String("sessiond-env", "", "extra KEY=VALUE environment for sessiond, space-separated (e.g. SESSIOND_DB_MAX_CONNS=64)")
	standbyDelay := flag.Duration("standby-delay", time.Millisecond, "added one-way delay, each direction, of the standby's replication traffic in the third column; 0 leaves that column out")
	flag.Parse()
	var clients []int
	for _, f := range strings.Split(*clientList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "sessiond-ha-bench: -clients %q: want positive integers separated by commas\n", *clientList)
			os.Exit(2)
		}
		clients = append(clients, n)
	}
	sessiondEnv = strings.Fields(*envFlag)
	if *standbyDelay < 0 {
		fmt.Fprintln(os.Stderr, "sessiond-ha-bench: -standby-delay must not be negative")
		os.Exit(2)
	}
	if err := run(*sequential, clients, *duration, *fsync, *standbyDelay); err != nil {
		fmt.Fprintln(os.Stderr, "sessiond-ha-bench:", err)
		os.Exit(1)
	}
}

// sessiondEnv is -sessiond-env: extra environment for every sessiond.
var sessiondEnv []string

type result struct {
	name                   string
	commitP50              time.Duration
	signInP50, signInP99   time.Duration
	signOutP50, signOutP99 time.Duration
	signInRates            []float64 // one per entry of clients
	signOutRate            float64
	errors                 int64
}

func run(sequential int, clients []int, duration time.Duration, fsync bool, standbyDelay time.Duration) error {
	// An interrupt cancels ctx: the phases stop and the deferred
	// clean-up (the clusters' processes and files) runs before exit.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
	pair, err := hatest.Start(ctx, hatest.Config{Synchronous: true, Database: "sessiond", Fsync: fsync, DelayableReplication: true})
	if pair != nil {
		defer pair.Close()
	}
	if err != nil {
		return err
	}

	type target struct {
		name  string
		pair  bool
		delay time.Duration // of the standby's traffic, each way
	}
	targets := []target{
		{"one Postgres", false, 0},
		{"synchronous pair (Patroni)", true, 0},
	}
	if standbyDelay > 0 {
		targets = append(targets, target{fmt.Sprintf("synchronous pair, standby +%s each way", standbyDelay), true, standbyDelay})
	}
	var results []result
	for _, t := range targets {
		url := single.URL("sessiond")
		if t.pair {
			url = pair.URL("sessiond")
			if err := pair.SetReplicationDelay(t.delay); err != nil {
				return err
			}
		}
		r, err := measureTarget(ctx, bin, url, sequential, clients, duration)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		r.name = t.name
		results = append(results, r)
	}

	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("sessiond sign-in and sign-out, %d sequential each, then sign-ins for %s at each of %v clients, sign-outs at %d; fsync %t; %s; load average %s\n\n",
		sequential, duration, clients, clients[len(clients)-1], fsync, time.Now().UTC().Format(time.RFC3339), strings.Join(strings.Fields(string(load))[:3], " "))
	header := "| database | commit p50 | sign-in p50 / p99 | sign-out p50 / p99 |"
	for _, c := range clients {
		header += fmt.Sprintf(" sign-ins/s at %d |", c)
	}
	header += fmt.Sprintf(" sign-outs/s at %d | errors |", clients[len(clients)-1])
	fmt.Println(header)
	fmt.Println(strings.Repeat("|---", strings.Count(header, "|")-1) + "|")
	for _, r := range results {
		line := fmt.Sprintf("| %s | %s | %s / %s | %s / %s |", r.name, ms(r.commitP50), ms(r.signInP50), ms(r.signInP99), ms(r.signOutP50), ms(r.signOutP99))
		for _, rate := range r.signInRates {
			line += fmt.Sprintf(" %.0f |", rate)
		}
		fmt.Printf("%s %.0f | %d |\n", line, r.signOutRate, r.errors)
	}
	return nil
}

// measureTarget measures bare commits on url, then starts sessiond on it
// and measures sign-ins and sign-outs.
func measureTarget(ctx context.Context, bin, url string, sequential int, clients []int, duration time.Duration) (result, error) {
	commitP50, err := measureCommit(ctx, url, sequential)
	if err != nil {
		return result{}, err
	}
	srv, err := startSessiond(ctx, bin, url, sessiondEnv)
	if err != nil {
		return result{}, err
	}
	defer srv.Stop(time.Minute)
	r, err := measure(ctx, "http://"+srv.Addr, sequential, clients, duration)
	r.commitP50 = commitP50
	return r, err
}

// measureCommit returns the median of n sequential one-row INSERTs into
// a table of its own: each commit flushes and, on the pair, waits for the
// standby. (A transaction that only takes an id, txid_current(), writes
// no WAL before its commit record and so neither flushes nor waits.)
func measureCommit(ctx context.Context, url string, n int) (time.Duration, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS ha_bench_commit (n int)"); err != nil {
		return 0, err
	}
	var ds []time.Duration
	for range n {
		start := time.Now()
		if _, err := conn.Exec(ctx, "INSERT INTO ha_bench_commit VALUES (1)"); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
	}
	return percentile(ds, 50), nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

func measure(ctx context.Context, base string, sequential int, clients []int, duration time.Duration) (result, error) {
	var r result
	var n atomic.Int64
	signIn := func() (string, error) {
		st, body, err := do(ctx, http.MethodPost, base+"/sessions", apiKey, fmt.Sprintf(`{"user_id":"bench-%d"}`, n.Add(1)))
		if err != nil || st != http.StatusCreated {
			return "", fmt.Errorf("sign-in: %d %v %s", st, err, body)
		}
		var out struct{ Token string }
		return out.Token, json.Unmarshal(body, &out)
	}
	signOut := func(token string) error {
		st, body, err := do(ctx, http.MethodDelete, base+"/session", token, "")
		if err != nil || st != http.StatusOK {
			return fmt.Errorf("sign-out: %d %v %s", st, err, body)
		}
		return nil
	}
	// Warm the pool and the plans.
	for range 50 {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
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
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
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

	// Throughput: sign-ins for duration at each number of clients,
	// keeping every token; then sign-outs of those tokens for duration at
	// the last number of clients.
	var mu sync.Mutex
	var tokens []string
	var errs atomic.Int64
	rate := func(clients int, work func() bool) float64 {
		var done atomic.Int64
		deadline := time.Now().Add(duration)
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) && ctx.Err() == nil {
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
	signInKeeping := func() bool {
		tok, err := signIn()
		if err != nil {
			errs.Add(1)
			return true
		}
		mu.Lock()
		tokens = append(tokens, tok)
		mu.Unlock()
		return true
	}
	for _, c := range clients {
		r.signInRates = append(r.signInRates, rate(c, signInKeeping))
	}
	r.signOutRate = rate(clients[len(clients)-1], func() bool {
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
	return r, ctx.Err()
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func do(ctx context.Context, method, url, credential, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
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
func startSessiond(ctx context.Context, bin, url string, env []string) (*testbed.Process, error) {
	cmd := exec.Command(bin, "serve")
	cmd.Env = append([]string{"SESSIOND_DATABASE_URL=" + url, "SESSIOND_ADDR=127.0.0.1:0", "SESSIOND_API_KEYS=" + apiKey, "SESSIOND_ACCESS_LOG=off"}, env...)
	return testbed.Start(ctx, testbed.Server{Name: "sessiond", Cmd: cmd, Ready: 60 * time.Second})
}
