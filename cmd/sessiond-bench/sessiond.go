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
	"syscall"
	"time"
)

// benchAPIKey is the backend key the benchmark configures; it only ever
// exists in this run's sessiond on 127.0.0.1.
const benchAPIKey = "sk_bench_local_only_not_a_secret"

// buildSessiond builds ./cmd/sessiond of the module at src into dir, the
// way the Dockerfile does (static, trimmed).
func buildSessiond(ctx context.Context, src, dir string) (string, error) {
	bin := filepath.Join(dir, "sessiond")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/sessiond")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/sessiond: %w\n%s", err, out)
	}
	return bin, nil
}

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
	cmd          *exec.Cmd
	addr         string // 127.0.0.1:port
	pprofAddr    string // empty unless -profile
	startToReady time.Duration
	logPath      string
	exited       chan struct{}
	hwmKiB       int64 // VmHWM read before the process exits
}

// startSessiond starts bin serving on a free loopback port and waits until
// /readyz answers 200: that wait is the start-to-ready time.
func startSessiond(ctx context.Context, bin, dbURL string, o options, dir string) (*sessiond, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &sessiond{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited: make(chan struct{})}
	env := append(os.Environ(),
		"SESSIOND_DATABASE_URL="+dbURL,
		"SESSIOND_ADDR="+s.addr,
		"SESSIOND_API_KEYS="+benchAPIKey,
	)
	if o.dbMaxConns > 0 {
		env = append(env, "SESSIOND_DB_MAX_CONNS="+strconv.Itoa(o.dbMaxConns))
	}
	if o.profileDir != "" {
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		s.pprofAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(pp))
		env = append(env, "SESSIOND_PPROF_ADDR="+s.pprofAddr)
	}
	env = append(env, splitList(o.sessiondArgs, ' ')...)
	s.cmd = exec.Command(bin, "serve")
	s.cmd.Env = env
	start := time.Now()
	if err := s.start(ctx, filepath.Join(dir, "sessiond.log"), "sessiond", 60*time.Second); err != nil {
		return nil, err
	}
	s.startToReady = time.Since(start)
	return s, nil
}

// start runs s.cmd with its output in logPath and waits until
// http://s.addr/readyz answers 200, at most timeout; name is what errors
// call it.
func (s *sessiond) start(ctx context.Context, logPath, name string, timeout time.Duration) error {
	s.logPath = logPath
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	go func() {
		_ = s.cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get("http://" + s.addr + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited before it was ready; its log:\n%s", name, tail(s.logPath, 20))
		case <-ctx.Done():
			s.stop()
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("%s not ready after %s; its log:\n%s", name, timeout, tail(s.logPath, 20))
		}
	}
}

// peakRSSMiB is VmHWM, the process's peak resident set, in MiB.
func (s *sessiond) peakRSSMiB() float64 {
	if kib := readHWM(s.cmd.Process.Pid); kib > 0 {
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
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	if kib := readHWM(s.cmd.Process.Pid); kib > 0 {
		s.hwmKiB = kib
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
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

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
