package db

import (
	"errors"
	"fmt"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers pgx5://
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/sessiond/sessiond/migrations"
)

// Migrator runs the embedded migrations. golang-migrate takes a Postgres
// advisory lock, so replicas starting together migrate once.
type Migrator struct{ m *migrate.Migrate }

// NewMigrator returns a migrator for the database at url (postgres:// or
// postgresql://). Close it when done.
func NewMigrator(url string) (*Migrator, error) {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, pgx5URL(url))
	if err != nil {
		return nil, fmt.Errorf("connect to migrate: %w", redact(err, url))
	}
	return &Migrator{m: m}, nil
}

// Up applies every migration not yet applied.
func (m *Migrator) Up() error { return ignoreNoChange(m.m.Up()) }

// Down rolls back n migrations.
func (m *Migrator) Down(n int) error { return ignoreNoChange(m.m.Steps(-n)) }

// Version returns the applied version and whether a failed migration left
// the schema dirty; version 0 means none applied.
func (m *Migrator) Version() (uint, bool, error) {
	v, dirty, err := m.m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	return v, dirty, err
}

// Close releases the migrator's connection.
func (m *Migrator) Close() error {
	srcErr, dbErr := m.m.Close()
	return errors.Join(srcErr, dbErr)
}

func ignoreNoChange(err error) error {
	if errors.Is(err, migrate.ErrNoChange) {
		return nil
	}
	return err
}

func pgx5URL(url string) string {
	for _, scheme := range []string{"postgres://", "postgresql://"} {
		if rest, ok := strings.CutPrefix(url, scheme); ok {
			return "pgx5://" + rest
		}
	}
	return url
}

// redact keeps the database URL, and so its password, out of an error.
func redact(err error, url string) error {
	msg := strings.ReplaceAll(err.Error(), pgx5URL(url), "<database url>")
	return errors.New(strings.ReplaceAll(msg, url, "<database url>"))
}
