package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/testbed"
)

// pgServer is the Postgres the benchmark runs against: url names a fresh
// database created for this run.
type pgServer struct {
	url       string
	adminURL  string // the server's maintenance database, to drop ours
	dbName    string
	container *testbed.Postgres
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
		c, err := testbed.StartPostgres(ctx, testbed.PostgresConfig{
			Image:       o.image,
			Settings:    splitList(o.pgArgs, ' '),
			HostNetwork: o.pgNetwork == "host",
			ShmSize:     1 << 30,
		})
		if err != nil {
			return nil, fmt.Errorf("%w (`make bench` prepares Docker; or pass -database-url)", err)
		}
		pg.container = c
		pg.cpu = cgroupCPU(c.Container.GetContainerID())
		if c.Host != "localhost" && c.Host != "127.0.0.1" {
			pg.close(logf)
			return nil, fmt.Errorf("the container answers on %q; the benchmark only loads localhost (set TESTCONTAINERS_HOST_OVERRIDE=localhost)", c.Host)
		}
		base = fmt.Sprintf("postgres://postgres:postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port)
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
		if err := pg.container.Terminate(); err != nil {
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
