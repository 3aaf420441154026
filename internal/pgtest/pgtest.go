// Package pgtest gives integration tests a real Postgres: one container per
// test package, migrated once into a template database, and a fresh
// database cloned from the template for every test, so tests run in
// parallel without sharing rows.
//
// The image is SESSIOND_POSTGRES_IMAGE (default: the official postgres:15),
// so the suite runs against Docker Hub's image on a laptop and against the
// offline stand-in in CI. When Docker is missing the tests fail; they never
// skip.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/sessiond/sessiond/internal/db"
	"github.com/sessiond/sessiond/internal/testbed"
)

const templateDB = "sessiond_template"

var (
	container *postgres.PostgresContainer
	admin     *pgxpool.Pool // on the "postgres" database, for CREATE/DROP DATABASE
	baseURL   func(dbname string) string
	createMu  sync.Mutex // CREATE DATABASE ... TEMPLATE wants the template to itself
	counter   atomic.Int64
)

// Main starts the container, migrates the template, runs the package's
// tests and terminates the container. Call it from TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit: it returns the exit code, so a TestMain
// can check more after the tests ran.
func Run(m *testing.M) int {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		code = 1
	}
	return code
}

func run(m *testing.M) (int, error) {
	ctx := context.Background()
	started := time.Now()
	pg, err := testbed.StartPostgres(ctx, testbed.PostgresConfig{
		Database: templateDB,
		Settings: []string{"fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=500"},
	})
	if err != nil {
		return 1, err
	}
	defer func() { _ = pg.Terminate() }()
	container = pg.Container
	baseURL = pg.URL

	mig, err := db.NewMigrator(baseURL(templateDB))
	if err != nil {
		return 1, err
	}
	err = mig.Up()
	_ = mig.Close()
	if err != nil {
		return 1, fmt.Errorf("migrate template: %w", err)
	}
	admin, err = pgxpool.New(ctx, baseURL("postgres"))
	if err != nil {
		return 1, err
	}
	defer admin.Close()
	fmt.Fprintf(os.Stderr, "pgtest: %s ready and migrated in %s\n", pg.Image, time.Since(started).Round(time.Millisecond))
	return m.Run(), nil
}

// NewDatabase creates an empty, migrated database for this test and
// returns its URL; it is dropped when the test ends. The URL's
// connect_timeout only catches a hang: sessiond's own default (2 s per
// host, for failover) is about production, and a suite on a loaded
// machine (image builds, Chromium, the race detector on 2 cores) has seen
// a new connection's SCRAM handshake take longer and a fresh store's
// first request fail. Tests of the connect timeout set their own.
func NewDatabase(t testing.TB) string {
	t.Helper()
	if admin == nil {
		t.Fatal("pgtest: call pgtest.Main from TestMain")
	}
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), counter.Add(1))
	ctx := context.Background()
	createMu.Lock()
	// FILE_COPY (Postgres 15+) copies the tiny template's files instead of
	// WAL-logging every block: about four times faster here.
	_, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+templateDB+" STRATEGY FILE_COPY")
	createMu.Unlock()
	if err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return baseURL(name) + "&connect_timeout=30"
}

// NewStore returns a db.Store on a fresh database, closed when the test ends.
func NewStore(t testing.TB) *db.Store {
	t.Helper()
	store, err := db.Open(context.Background(), NewDatabase(t), 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	return store
}
