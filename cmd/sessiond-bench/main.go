// Command sessiond-bench measures sessiond's hot paths against Postgres'
// own limit, in one run on one machine:
//
//  1. a Postgres: a container from SESSIOND_POSTGRES_IMAGE (default
//     postgres:15), or the server of -database-url, in a fresh database;
//  2. the schema (`sessiond migrate up`) and N seeded sessions (COPY);
//  3. the real sessiond binary, built from this module and started on
//     127.0.0.1 with a free port: start-to-ready time;
//  4. load with a fixed number of keep-alive connections for a fixed time:
//     the raw token lookup with pgx (prepared statement), GET /session at
//     full speed and at half of that rate, POST /sessions, DELETE /session,
//     and DELETE /users/{id}/sessions for users holding 10,000 sessions;
//  5. a table on stdout (and JSON with -json): requests/s, p50/p90/p99,
//     the ratio GET /session ÷ raw lookup, sessiond's peak RSS.
//
// Load only ever targets 127.0.0.1, and every phase is bounded in time.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/sessiond/sessiond/internal/testbed"
)

type options struct {
	sessions     int
	duration     time.Duration
	conns        int
	manyUsers    int
	perUser      int
	databaseURL  string
	image        string
	pgArgs       string
	pgNetwork    string
	dbMaxConns   int
	seedWorkers  int
	sample       int
	jsonOut      string
	profileDir   string
	src          string
	keep         bool
	skip         map[string]bool
	sessiondArgs string
	compare      string
	rounds       int
	scale        []int
	webhooks     bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == floorCommand {
		if err := runFloorServer(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "sessiond-bench floor-server:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "sessiond-bench:", err)
			os.Exit(1)
		}
	}
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("sessiond-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var skip string
	fs.IntVar(&o.sessions, "sessions", 10_000, "sessions to seed (COPY); 1000000 and 10000000 work")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each load phase")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of raw lookup and GET /session, alternating; each reports its median round")
	fs.IntVar(&o.conns, "conns", 64, "concurrent keep-alive connections (HTTP) and pgx connections (raw lookup)")
	var scale string
	fs.StringVar(&scale, "scale", "64,1000,4000", "comma-separated keep-alive connection counts GET /session is also measured at (CPU per request per process, memory per open connection); empty: none")
	fs.IntVar(&o.manyUsers, "many-users", 3, "users holding -per-user sessions, each signed out everywhere once")
	fs.IntVar(&o.perUser, "per-user", 10_000, "sessions of each sign-out-everywhere user")
	fs.StringVar(&o.databaseURL, "database-url", "", "an existing Postgres server to use (a fresh database is created on it and dropped afterwards); empty: start a container")
	fs.StringVar(&o.image, "image", envOr("SESSIOND_POSTGRES_IMAGE", "postgres:15"), "Postgres image for the container (env SESSIOND_POSTGRES_IMAGE)")
	fs.StringVar(&o.pgArgs, "pg-args", defaultPGArgs, "postgres -c settings for the container (space-separated name=value)")
	fs.StringVar(&o.pgNetwork, "pg-network", "host", "the container's network: host (Postgres on 127.0.0.1 itself) or bridge (a published port, through docker-proxy)")
	fs.IntVar(&o.dbMaxConns, "db-max-conns", 0, "SESSIOND_DB_MAX_CONNS for sessiond; 0: its default")
	fs.IntVar(&o.seedWorkers, "seed-workers", runtime.NumCPU(), "parallel COPY streams while seeding")
	fs.IntVar(&o.sample, "sample", 100_000, "seeded tokens kept in memory for GET /session (spread evenly over the table)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file (- for stdout, after the table)")
	fs.StringVar(&o.profileDir, "profile", "", "directory for CPU profiles of sessiond (GET /session, POST /sessions) via SESSIOND_PPROF_ADDR")
	fs.StringVar(&o.src, "src", ".", "the sessiond module to build ./cmd/sessiond from")
	fs.BoolVar(&o.keep, "keep", false, "keep the container / database and the temp dir (for a look afterwards)")
	fs.StringVar(&skip, "skip", "", "comma-separated phases to skip: raw,get,floor,get-half,scale,get-due,post,post-scale,delete,delete-user,refusals")
	fs.StringVar(&o.compare, "compare", "", "JSON of an earlier run (e.g. with 10,000 sessions) to compare GET /session throughput with")
	fs.BoolVar(&o.webhooks, "webhooks", false, "also deliver every event as a webhook to a receiver on 127.0.0.1 (verifying signatures) and measure the delivery rate")
	fs.StringVar(&o.sessiondArgs, "sessiond-env", "", "extra KEY=VALUE environment for sessiond, space-separated")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, v := range splitList(scale, ',') {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10_000 {
			return o, fmt.Errorf("-scale: want connection counts from 1 to 10000 (got %q)", v)
		}
		o.scale = append(o.scale, n)
	}
	o.skip = map[string]bool{}
	for _, s := range splitList(skip, ',') {
		o.skip[s] = true
	}
	switch {
	case o.sessions < 1:
		return o, errors.New("-sessions must be at least 1")
	case o.conns < 1 || o.conns > 190:
		return o, errors.New("-conns must be from 1 to 190 (the raw lookup opens as many Postgres connections; max_connections is 200)")
	case o.duration < 100*time.Millisecond || o.duration > 10*time.Minute:
		return o, errors.New("-duration must be from 100ms to 10m")
	case o.manyUsers < 0 || o.perUser < 1:
		return o, errors.New("-many-users must be 0 or more and -per-user 1 or more")
	case o.pgNetwork != "host" && o.pgNetwork != "bridge":
		return o, errors.New("-pg-network must be host or bridge")
	case o.rounds < 1 || o.rounds > 20:
		return o, errors.New("-rounds must be from 1 to 20")
	case o.seedWorkers < 1:
		return o, errors.New("-seed-workers must be at least 1")
	}
	if o.sample < 1 || o.sample > o.sessions {
		o.sample = o.sessions
	}
	return o, nil
}

// defaultPGArgs are the container's settings: the official image's
// defaults except a shared_buffers that holds a 1M-session working set and
// checkpoints spaced for a 10M-row seed. Durability settings stay default
// (fsync and synchronous_commit on).
const defaultPGArgs = "shared_buffers=1GB max_connections=200 max_wal_size=8GB checkpoint_timeout=30min"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	res := &results{
		Started:  time.Now().UTC(),
		Machine:  describeMachine(),
		Sessions: o.sessions,
		Conns:    o.conns,
		Duration: o.duration.String(),
	}

	if o.compare != "" {
		if res.compare, err = readResults(o.compare); err != nil {
			return err
		}
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp("", "sessiond-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("temp dir %s (kept)", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	logf("building sessiond from %s", o.src)
	bin, err := testbed.BuildSessiond(ctx, o.src, tmp)
	if err != nil {
		return err
	}

	pg, err := startPostgres(ctx, o, logf)
	if err != nil {
		return err
	}
	defer pg.close(logf)
	res.Postgres = pg.describe(ctx)
	logf("postgres: %s", res.Postgres.Version)

	start := time.Now()
	if err := migrate(ctx, bin, pg.url); err != nil {
		return err
	}
	res.MigrateMS = ms(time.Since(start))

	logf("seeding %d sessions (+%d users × %d sessions)", o.sessions, o.manyUsers, o.perUser)
	seed, err := seedDatabase(ctx, pg.url, o, logf)
	if err != nil {
		return err
	}
	res.Seed = seed.stats

	var recv *benchReceiver
	if o.webhooks {
		if recv, err = startReceiver(); err != nil {
			return err
		}
		if err := readStartPosition(ctx, pg.url); err != nil {
			return err
		}
		o.sessiondArgs = recv.sessiondEnv() + " " + o.sessiondArgs
	}
	srv, err := startSessiond(ctx, bin, pg.url, o, tmp)
	if err != nil {
		return err
	}
	defer srv.stop()
	res.StartToReadyMS = ms(srv.StartToReady)
	logf("sessiond ready in %s on %s (pid %d)", srv.StartToReady.Round(time.Millisecond), srv.Addr, srv.Cmd.Process.Pid)

	if err := runPhases(ctx, o, pg, srv, seed, res, tmp, logf); err != nil {
		return err
	}
	if recv != nil {
		if res.Webhooks, err = recv.finish(ctx, pg.url, logf); err != nil {
			return err
		}
	}
	res.PeakRSSMiB = srv.peakRSSMiB()
	srv.stop()

	res.evaluate()
	printTable(stdout, res)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		b = append(b, '\n')
		if o.jsonOut == "-" {
			_, err = stdout.Write(b)
		} else {
			err = os.WriteFile(o.jsonOut, b, 0o644)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
