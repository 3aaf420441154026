package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sessiond/sessiond/internal/testbed"
)

// benchAPIKey is the backend key the benchmark configures; it only ever
// exists in this run's sessiond on 127.0.0.1.
const benchAPIKey = "sk_bench_local_only_not_a_secret"

// migrate runs `sessiond migrate up` against the benchmark database.
func migrate(ctx context.Context, bin, dbURL string) error {
	cmd := exec.CommandContext(ctx, bin, "migrate", "up")
	cmd.Env = append(os.Environ(), "SESSIOND_DATABASE_URL="+dbURL)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sessiond migrate up: %w\n%s", err, out)
	}
	return nil
}

// sessiond is a running server process: sessiond itself, or a floor
// server (floor.go), which is measured the same way.
type sessiond struct {
	*testbed.Process
	pprofAddr string // empty unless -profile
	hwmKiB    int64  // VmHWM read before the process exits
}

// startSessiond starts bin serving on a free loopback port and waits until
// /readyz answers 200: that wait is the start-to-ready time.
func startSessiond(ctx context.Context, bin, dbURL string, o options, dir string) (*sessiond, error) {
	port, err := testbed.FreePort()
	if err != nil {
		return nil, err
	}
	s := &sessiond{}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	env := append(os.Environ(),
		"SESSIOND_DATABASE_URL="+dbURL,
		"SESSIOND_ADDR="+addr,
		"SESSIOND_API_KEYS="+benchAPIKey,
	)
	if o.dbMaxConns > 0 {
		env = append(env, "SESSIOND_DB_MAX_CONNS="+strconv.Itoa(o.dbMaxConns))
	}
	if o.profileDir != "" {
		pp, err := testbed.FreePort()
		if err != nil {
			return nil, err
		}
		s.pprofAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(pp))
		env = append(env, "SESSIOND_PPROF_ADDR="+s.pprofAddr)
	}
	env = append(env, splitList(o.sessiondArgs, ' ')...)
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	s.Process, err = testbed.Start(ctx, testbed.Server{Name: "sessiond", Cmd: cmd, Addr: addr,
		LogFile: filepath.Join(dir, "sessiond.log"), Ready: 60 * time.Second})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// peakRSSMiB is VmHWM, the process's peak resident set, in MiB.
func (s *sessiond) peakRSSMiB() float64 {
	if kib := readHWM(s.Cmd.Process.Pid); kib > 0 {
		s.hwmKiB = kib
	}
	return float64(s.hwmKiB) / 1024
}

func readHWM(pid int) int64 { return readStatusKiB(pid, "VmHWM:") }

// readStatusKiB reads one "Name: N kB" field of /proc/<pid>/status.
func readStatusKiB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// stop sends SIGTERM and waits (SIGKILL after 20s). Safe to call twice.
func (s *sessiond) stop() {
	if s == nil || s.Process == nil {
		return
	}
	select {
	case <-s.Exited:
		return
	default:
	}
	if kib := readHWM(s.Cmd.Process.Pid); kib > 0 {
		s.hwmKiB = kib
	}
	s.Stop(20 * time.Second)
}

// cpuProfile asks sessiond's pprof listener for a CPU profile of the next
// d and writes it to path; run it alongside a load phase.
func (s *sessiond) cpuProfile(d time.Duration, path string) error {
	if s.pprofAddr == "" {
		return errors.New("no pprof listener")
	}
	secs := max(1, int(d.Seconds()))
	client := &http.Client{Timeout: d + 30*time.Second}
	resp, err := client.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.pprofAddr, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof answered %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
