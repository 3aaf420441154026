package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildSessiond builds cmd/sessiond into dir as the Dockerfile does
// (static, trimmed) and returns the binary's path. moduleDir is the module
// to build it from; empty: this module, found from the working directory.
func BuildSessiond(ctx context.Context, moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "sessiond")
	pkg := "./cmd/sessiond"
	if moduleDir == "" {
		pkg = "github.com/sessiond/sessiond/cmd/sessiond"
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, pkg)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/sessiond: %w\n%s", err, out)
	}
	return bin, nil
}

// Server is a server process to start: sessiond, another binary that
// answers GET /readyz the same way, or one that says it is ready
// otherwise (Probe).
type Server struct {
	Name string    // what errors call it
	Cmd  *exec.Cmd // not started; Start sets its Stdout and Stderr
	// Addr is the host:port it serves on, as its settings say. Empty:
	// it picks one (SESSIOND_ADDR=127.0.0.1:0), read from its
	// "sessiond listening" log line.
	Addr string
	// LogFile, if set, receives everything the process writes; then only
	// the last part of it stays in memory, for errors.
	LogFile string
	// Ready bounds the wait for /readyz (and for the listening line); it
	// only catches a process that never gets there.
	Ready time.Duration
	// Probe, if set, replaces GET /readyz as the question "is the server
	// at addr ready?", for one that speaks no HTTP (PgBouncer: it is
	// ready once it accepts connections); such a server writes no
	// listening line, so give it Addr.
	Probe func(addr string) bool
}

// Process is a started server.
type Process struct {
	Cmd          *exec.Cmd
	Addr         string        // host:port
	Log          *Log          // what it wrote
	StartToReady time.Duration // from the start to the first 200 from /readyz
	Exited       chan struct{} // closed once it has exited
	ExitAt       time.Time     // valid once Exited is closed
	Err          error         // what Wait returned; valid once Exited is closed
}

// readyPoll is how often Start asks /readyz: often, because the wait is
// reported as the start-to-ready time.
const readyPoll = 2 * time.Millisecond

// Start starts s and returns once GET /readyz answers 200. If it does
// not, the process is killed and the error holds the end of its log.
func Start(ctx context.Context, s Server) (*Process, error) {
	log := &Log{}
	listening := make(chan string, 1)
	if s.Addr == "" {
		log.listening = listening
	}
	if s.LogFile != "" {
		f, err := os.Create(s.LogFile)
		if err != nil {
			return nil, err
		}
		log.file = f
	}
	p := &Process{Cmd: s.Cmd, Addr: s.Addr, Log: log, Exited: make(chan struct{})}
	s.Cmd.Stdout, s.Cmd.Stderr = log, log
	start := time.Now()
	if err := s.Cmd.Start(); err != nil {
		log.close()
		return nil, err
	}
	go func() {
		p.Err = s.Cmd.Wait()
		p.ExitAt = time.Now()
		log.close()
		close(p.Exited)
	}()
	fail := func(format string, a ...any) (*Process, error) {
		p.Kill()
		return nil, fmt.Errorf("%s "+format+"; its log:\n%s", append(append([]any{s.Name}, a...), log.Tail(20))...)
	}
	ready := s.Probe
	if ready == nil {
		ready = answersReadyz
	}
	deadline := time.NewTimer(s.Ready)
	defer deadline.Stop()
	waitingFor := "listening"
	if p.Addr != "" {
		waitingFor, listening = "ready", nil
	}
	for {
		if p.Addr != "" && ready(p.Addr) {
			p.StartToReady = time.Since(start)
			return p, nil
		}
		var poll <-chan time.Time
		if p.Addr != "" {
			poll = time.After(readyPoll)
		}
		select {
		case p.Addr = <-listening:
			waitingFor, listening = "ready", nil
		case <-poll:
		case <-p.Exited:
			return fail("exited before it was %s (%v)", waitingFor, p.Err)
		case <-ctx.Done():
			p.Kill()
			return nil, ctx.Err()
		case <-deadline.C:
			return fail("not %s after %s", waitingFor, s.Ready)
		}
	}
}

// failureLogLines is how much of a process's log StartForTest shows when
// the test failed.
const failureLogLines = 100

// StartForTest starts s as Start does, failing t if it does not get
// ready, and stops it when t ends: SIGTERM, then SIGKILL after grace (0:
// at once). If t failed, it logs the end of what the process wrote.
func StartForTest(t testing.TB, s Server, grace time.Duration) *Process {
	t.Helper()
	p, err := Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(grace)
		if t.Failed() {
			t.Logf("%s at %s, the last %d lines of its log:\n%s", s.Name, p.Addr, failureLogLines, p.Log.Tail(failureLogLines))
		}
	})
	return p
}

var readyzClient = &http.Client{Timeout: time.Second}

// answersReadyz says whether GET /readyz at addr answers 200.
func answersReadyz(addr string) bool {
	resp, err := readyzClient.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// AcceptsConnections says whether something accepts TCP connections at
// addr: a Probe for a server that is ready once it listens.
func AcceptsConnections(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Stop sends SIGTERM and waits until the process exits, sending SIGKILL
// after grace. Safe to call twice, and after it exited.
func (p *Process) Stop(grace time.Duration) {
	select {
	case <-p.Exited:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Exited:
	case <-time.After(grace):
		p.Kill()
	}
}

// Kill sends SIGKILL and waits until the process has exited.
func (p *Process) Kill() {
	select {
	case <-p.Exited:
		return
	default:
	}
	_ = p.Cmd.Process.Kill()
	<-p.Exited
}

// Log keeps what a process writes, and reports the address of its
// "sessiond listening" line.
type Log struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	partial   []byte
	file      *os.File // if set, everything goes here and buf keeps a tail
	listening chan string
}

// keptWithFile is how much of the output stays in memory when it goes to
// a file too (a benchmark's access log runs to gigabytes).
const keptWithFile = 64 << 10

func (l *Log) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		_, _ = l.file.Write(b)
	}
	l.buf.Write(b)
	if l.file != nil && l.buf.Len() > 2*keptWithFile {
		l.buf.Next(l.buf.Len() - keptWithFile)
	}
	if l.listening == nil {
		return len(b), nil
	}
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		var line struct{ Msg, Addr string }
		if json.Unmarshal(l.partial[:i], &line) == nil && line.Msg == "sessiond listening" {
			l.listening <- line.Addr
			l.listening, l.partial = nil, nil
			break
		}
		l.partial = l.partial[i+1:]
	}
	return len(b), nil
}

// String is everything the process wrote (with a LogFile, the last part).
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Tail is the last n lines of String.
func (l *Log) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(l.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (l *Log) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on at the
// moment.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
