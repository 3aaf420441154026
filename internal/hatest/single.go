package hatest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// Single is one plain Postgres 15 with the settings of the pair's nodes
// (the same buffers and connections, fsync as asked), for measurements
// side by side with the pair.
type Single struct {
	Port int
	dir  string
	uid  uint32
	gid  uint32
}

// StartSingle initialises and starts a Postgres as the postgres user on
// a port of its own and creates database; fsync as Config.Fsync. Close
// it when done.
func StartSingle(ctx context.Context, database string, fsync bool) (*Single, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("hatest: must run as root (Postgres runs as the postgres user)")
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	dir, err := os.MkdirTemp("", "sessiond-single-")
	if err != nil {
		return nil, err
	}
	s := &Single{dir: dir, uid: uint32(uid), gid: uint32(gid)}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	s.Port = ports[0]
	data := filepath.Join(dir, "data")
	if err := s.run(filepath.Join(BinDir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"); err != nil {
		s.Close()
		return nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=%[3]s -c full_page_writes=%[3]s -c max_connections=200 -c shared_buffers=32MB", s.Port, dir, onOff(fsync))
	if err := s.run(filepath.Join(BinDir, "pg_ctl"), "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start"); err != nil {
		s.Close()
		return nil, err
	}
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		s.Close()
		return nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{database}.Sanitize()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Single) run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: s.uid, Gid: s.gid}}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hatest: %s: %w\n%s", filepath.Base(name), err, out)
	}
	return nil
}

// URL is the database's URL.
func (s *Single) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, database)
}

// Close stops the server and removes its files.
func (s *Single) Close() {
	_ = s.run(filepath.Join(BinDir, "pg_ctl"), "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "stop")
	os.RemoveAll(s.dir)
}
