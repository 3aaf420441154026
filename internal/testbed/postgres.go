package testbed

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"
)

// DefaultImage is the Postgres image used when SESSIOND_POSTGRES_IMAGE is
// unset: Docker Hub's image on a laptop, the offline stand-in in CI.
const DefaultImage = "postgres:15"

// Image is SESSIOND_POSTGRES_IMAGE, or DefaultImage.
func Image() string {
	if v := os.Getenv("SESSIOND_POSTGRES_IMAGE"); v != "" {
		return v
	}
	return DefaultImage
}

// PostgresConfig says how to start a Postgres container. The user and
// password are both "postgres".
type PostgresConfig struct {
	Image    string   // empty: Image()
	Database string   // created at start; empty: postgres
	Settings []string // name=value, each passed to postgres as -c
	// HostNetwork runs the container on the host's network, Postgres
	// listening on 127.0.0.1:Port itself: no docker-proxy relaying every
	// round trip, as a database on its own host would be reached.
	HostNetwork bool
	// Port is the host port: on the host network the one Postgres listens
	// on, otherwise where 5432 is published on 127.0.0.1 (fixed, so a
	// container started again keeps it). 0: a free one on the host
	// network, one Docker picks otherwise.
	Port int
	// ShmSize is /dev/shm in bytes (parallel index builds use it; Docker
	// gives 64 MiB); 0: Docker's default.
	ShmSize int64
}

// Postgres is a running container.
type Postgres struct {
	Container *postgres.PostgresContainer
	Image     string
	Host      string // where it answers: 127.0.0.1, or what testcontainers says
	Port      int
}

// StartPostgres starts a container and returns once it accepts
// connections. On error nothing is left running.
func StartPostgres(ctx context.Context, cfg PostgresConfig) (*Postgres, error) {
	pg := &Postgres{Image: cmp.Or(cfg.Image, Image()), Host: "127.0.0.1", Port: cfg.Port}
	cmd := []string{"postgres"}
	for _, kv := range cfg.Settings {
		cmd = append(cmd, "-c", kv)
	}
	opts := []testcontainers.ContainerCustomizer{
		postgres.WithDatabase(cmp.Or(cfg.Database, "postgres")),
		postgres.WithUsername("postgres"),
		postgres.WithPassword("postgres"),
	}
	hostConfig := func(hc *container.HostConfig) {
		if cfg.ShmSize > 0 {
			hc.ShmSize = cfg.ShmSize
		}
	}
	if cfg.HostNetwork {
		if pg.Port == 0 {
			var err error
			if pg.Port, err = FreePort(); err != nil {
				return nil, err
			}
		}
		cmd = append(cmd, "-c", "listen_addresses=127.0.0.1")
		opts = append(opts,
			testcontainers.WithEnv(map[string]string{"PGPORT": strconv.Itoa(pg.Port)}),
			testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
				hostConfig(hc)
				hc.NetworkMode = "host"
			}),
			// The official image starts a server for its init scripts
			// first: the second "ready" is the real one.
			testcontainers.WithWaitStrategy(wait.ForLog("database system is ready to accept connections").
				WithOccurrence(2).WithStartupTimeout(2*time.Minute)))
	} else {
		opts = append(opts, postgres.BasicWaitStrategies(),
			testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
				hostConfig(hc)
				if cfg.Port != 0 {
					hc.PortBindings = network.PortMap{
						network.MustParsePort("5432/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(cfg.Port)}},
					}
				}
			}))
	}
	opts = append(opts, testcontainers.WithCmd(cmd...))
	c, err := postgres.Run(ctx, pg.Image, opts...)
	if c != nil {
		pg.Container = c
	}
	if err == nil && pg.Port == 0 {
		err = pg.readMappedPort(ctx)
	}
	if err != nil {
		_ = pg.Terminate()
		return nil, fmt.Errorf("start %s (is Docker running? SESSIOND_POSTGRES_IMAGE names another image): %w", pg.Image, err)
	}
	return pg, nil
}

func (pg *Postgres) readMappedPort(ctx context.Context) error {
	host, err := pg.Container.Host(ctx)
	if err != nil {
		return err
	}
	mapped, err := pg.Container.MappedPort(ctx, "5432/tcp")
	if err != nil {
		return err
	}
	pg.Host = host
	pg.Port, err = strconv.Atoi(mapped.Port())
	return err
}

// URL is the connection URL of database on this server.
func (pg *Postgres) URL(database string) string {
	return fmt.Sprintf("postgres://postgres:postgres@%s:%d/%s?sslmode=disable", pg.Host, pg.Port, database)
}

// Terminate stops and removes the container. Safe to call twice.
func (pg *Postgres) Terminate() error {
	if pg == nil || pg.Container == nil {
		return nil
	}
	c := pg.Container
	pg.Container = nil
	return testcontainers.TerminateContainer(c)
}
