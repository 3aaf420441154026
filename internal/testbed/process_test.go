package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The test binary doubles as the server Start waits for: with
// TESTBED_SERVE set it serves like sessiond does (a JSON "sessiond
// listening" line, /readyz) instead of running the tests.
func TestMain(m *testing.M) {
	switch os.Getenv("TESTBED_SERVE") {
	case "":
		os.Exit(m.Run())
	case "exit":
		fmt.Println(`{"msg":"cannot reach the database"}`)
		os.Exit(3)
	default:
		serve(os.Getenv("TESTBED_SERVE"))
	}
}

// serve listens on addr (port 0: any), logs where, and answers /readyz
// 503 three times, then 200.
func serve(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	line, _ := json.Marshal(map[string]string{"msg": "sessiond listening", "addr": ln.Addr().String()})
	fmt.Printf("{\"msg\":\"starting\"}\n%s\n", line)
	var asked atomic.Int64
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" && asked.Add(1) > 3 {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
}

func helper(t *testing.T, mode string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), "TESTBED_SERVE="+mode)
	return cmd
}

func TestStartReadsTheListeningLineAndWaitsForReady(t *testing.T) {
	// The bound only catches a hang.
	p, err := Start(context.Background(), Server{Name: "helper", Cmd: helper(t, "127.0.0.1:0"), Ready: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	resp, err := http.Get("http://" + p.Addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after Start, /readyz answered %d: Start returned before the server was ready", resp.StatusCode)
	}
	if !strings.Contains(p.Log.String(), `"msg":"starting"`) {
		t.Errorf("the log lacks the first line:\n%s", p.Log.String())
	}
	p.Stop(time.Minute)
	select {
	case <-p.Exited:
	default:
		t.Fatal("Stop returned before the process exited")
	}
}

func TestStartAtAGivenAddressWithALogFile(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	logFile := t.TempDir() + "/helper.log"
	p, err := Start(context.Background(), Server{Name: "helper", Cmd: helper(t, addr), Addr: addr, LogFile: logFile, Ready: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	p.Stop(time.Minute)
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "sessiond listening") {
		t.Errorf("the log file lacks the listening line:\n%s", b)
	}
}

func TestStartWithAProbeInsteadOfReadyz(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := Start(context.Background(), Server{Name: "helper", Cmd: helper(t, addr), Addr: addr, Probe: AcceptsConnections, Ready: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	// The helper answers /readyz 503 the first three times: a 503 now
	// means Start asked the probe, not /readyz.
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz answered %d to its first question, want 503: Start asked /readyz despite the probe", resp.StatusCode)
	}
}

// failedTest is a test that has failed: it records its clean-ups and
// what is logged.
type failedTest struct {
	testing.TB
	cleanups []func()
	logged   []string
}

func (f *failedTest) Helper()          {}
func (f *failedTest) Failed() bool     { return true }
func (f *failedTest) Cleanup(c func()) { f.cleanups = append(f.cleanups, c) }
func (f *failedTest) Logf(format string, a ...any) {
	f.logged = append(f.logged, fmt.Sprintf(format, a...))
}

func TestStartForTestStopsAtTheEndAndLogsOnFailure(t *testing.T) {
	ft := &failedTest{TB: t}
	// The bounds only catch a hang.
	p := StartForTest(ft, Server{Name: "helper", Cmd: helper(t, "127.0.0.1:0"), Ready: time.Minute}, time.Minute)
	select {
	case <-p.Exited:
		t.Fatal("the process exited before the test ended")
	default:
	}
	if len(ft.cleanups) != 1 {
		t.Fatalf("%d clean-ups registered, want 1", len(ft.cleanups))
	}
	ft.cleanups[0]()
	select {
	case <-p.Exited:
	default:
		t.Fatal("the clean-up returned before the process exited")
	}
	if len(ft.logged) != 1 || !strings.Contains(ft.logged[0], "helper at "+p.Addr) || !strings.Contains(ft.logged[0], "sessiond listening") {
		t.Errorf("logged %q, want the helper's log with its listening line", ft.logged)
	}
}

func TestStartReportsAnEarlyExitWithTheLog(t *testing.T) {
	_, err := Start(context.Background(), Server{Name: "helper", Cmd: helper(t, "exit"), Ready: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "helper exited before it was listening") || !strings.Contains(err.Error(), "cannot reach the database") {
		t.Fatalf("got %v, want an early exit with the end of the log", err)
	}
}

// The server binary must not carry the test helpers (nor testcontainers
// and the Docker client with them).
func TestSessiondDoesNotImportTheTestbed(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/sessiond/sessiond/cmd/sessiond").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasSuffix(pkg, "/internal/testbed") || strings.HasSuffix(pkg, "/internal/pgtest") ||
			strings.HasPrefix(pkg, "github.com/testcontainers/") {
			t.Errorf("cmd/sessiond imports %s", pkg)
		}
	}
}
