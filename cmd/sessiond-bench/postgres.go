package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"
)

// pgServer is the Postgres the benchmark runs against: url names a fresh
// database created for this run.
type pgServer struct {
	url       string
	adminURL  string // the server's maintenance database, to drop ours
	dbName    string
	container *postgres.PostgresContainer
	network   string
	keep      bool
	// cpu reads the container's CPU time; nil with -database-url.
	cpu func() (time.Duration, bool)
}

// startPostgres starts a container, or uses the server of o.databaseURL,
// and creates a fresh database there.
func startPostgres(ctx context.Context, o options, logf func(string, ...any)) (*pgServer, error) {
	pg := &pgServer{keep: o.keep, network: o.pgNetwork}
	base := o.databaseURL
	if base == "" {
		logf("starting postgres container %s on the %s network (%s)", o.image, o.pgNetwork, o.pgArgs)
		cmd := []string{"postgres"}
		for _, kv := range splitList(o.pgArgs, ' ') {
			cmd = append(cmd, "-c", kv)
		}
		opts := []testcontainers.ContainerCustomizer{
			postgres.WithDatabase("postgres"),
			postgres.WithUsername("postgres"),
			postgres.WithPassword("postgres"),
			testcontainers.WithCmd(cmd...),
		}
		port := 0
		if o.pgNetwork == "host" {
			// On the host's network Postgres answers on 127.0.0.1 itself:
			// no docker-proxy relaying every round trip, as a database on
			// its own host would be reached.
			var err error
			if port, err = freePort(); err != nil {
				return nil, err
			}
			opts = append(opts,
				testcontainers.WithEnv(map[string]string{"PGPORT": strconv.Itoa(port)}),
				testcontainers.WithCmdArgs("-c", "listen_addresses=127.0.0.1"),
				testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
					hc.NetworkMode = "host"
					hc.ShmSize = 1 << 30
				}),
				testcontainers.WithWaitStrategy(wait.ForLog("database system is ready to accept connections").
					WithOccurrence(2).WithStartupTimeout(2*time.Minute)))
		} else {
			opts = append(opts, postgres.BasicWaitStrategies(),
				// Parallel index builds use dynamic shared memory in
				// /dev/shm, which Docker limits to 64 MiB by default.
				testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.ShmSize = 1 << 30 }))
		}
		c, err := postgres.Run(ctx, o.image, opts...)
		if c != nil {
			pg.container = c
		}
		if err != nil {
			pg.close(logf)
			return nil, fmt.Errorf("start %s (is Docker running? `make bench` prepares it; or pass -database-url): %w", o.image, err)
		}
		pg.cpu = cgroupCPU(c.GetContainerID())
		if port == 0 {
			host, err := c.Host(ctx)
			if err != nil {
				pg.close(logf)
				return nil, err
			}
			if host != "localhost" && host != "127.0.0.1" {
				pg.close(logf)
				return nil, fmt.Errorf("the container answers on %q; the benchmark only loads localhost (set TESTCONTAINERS_HOST_OVERRIDE=localhost)", host)
			}
			mapped, err := c.MappedPort(ctx, "5432/tcp")
			if err != nil {
				pg.close(logf)
				return nil, err
			}
			if port, err = strconv.Atoi(mapped.Port()); err != nil {
				pg.close(logf)
				return nil, err
			}
		}
		base = fmt.Sprintf("postgres://postgres:postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("-database-url is not a URL")
	}
	if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" && h != "" {
		return nil, fmt.Errorf("-database-url must point at this machine (localhost / 127.0.0.1), not %q", h)
	}
	pg.adminURL = base
	pg.dbName = fmt.Sprintf("sessiond_bench_%d", time.Now().Unix())
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		pg.close(logf)
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pg.dbName); err != nil {
		pg.close(logf)
		return nil, fmt.Errorf("create database: %w", err)
	}
	u.Path = "/" + pg.dbName
	pg.url = u.String()
	return pg, nil
}

// close drops the benchmark database and terminates the container, unless
// -keep.
func (pg *pgServer) close(logf func(string, ...any)) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if pg.keep {
		logf("kept database %s", pg.url)
		return
	}
	if pg.container != nil {
		if err := testcontainers.TerminateContainer(pg.container); err != nil {
			logf("terminate container: %v", err)
		}
		pg.container = nil
		return
	}
	if pg.dbName != "" && pg.adminURL != "" {
		conn, err := pgx.Connect(ctx, pg.adminURL)
		if err != nil {
			logf("drop database: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pg.dbName+" WITH (FORCE)"); err != nil {
			logf("drop database: %v", err)
		}
		pg.dbName = ""
	}
}

// pgInfo describes the server for the report.
type pgInfo struct {
	Version  string            `json:"version"`
	Settings map[string]string `json:"settings"`
	Source   string            `json:"source"`
}

func (pg *pgServer) describe(ctx context.Context) pgInfo {
	info := pgInfo{Settings: map[string]string{}, Source: "-database-url"}
	if pg.container != nil {
		info.Source = "container, " + pg.network + " network"
	}
	conn, err := pgx.Connect(ctx, pg.url)
	if err != nil {
		return info
	}
	defer conn.Close(ctx)
	_ = conn.QueryRow(ctx, "SHOW server_version").Scan(&info.Version)
	rows, err := conn.Query(ctx, `SELECT name, setting || COALESCE(unit, '') FROM pg_settings WHERE name = ANY($1)`,
		[]string{"shared_buffers", "max_connections", "fsync", "synchronous_commit", "work_mem",
			"effective_cache_size", "max_wal_size", "wal_level", "jit"})
	if err != nil {
		return info
	}
	for rows.Next() {
		var k, v string
		if rows.Scan(&k, &v) == nil {
			info.Settings[k] = v
		}
	}
	return info
}

func splitList(s string, sep rune) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == sep || r == ' ' || r == '\t' || r == '\n' })
}
