package api_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/api"
)

// metricSeries counts the samples /metrics exposes (every line that is not
// a comment): the number of series a scrape stores.
func metricSeries(t *testing.T, e *testEnv) (int, []byte) {
	t.Helper()
	r := e.do(t, http.MethodGet, "/metrics", noCred, nil)
	r.wantStatus(t, http.StatusOK)
	n := 0
	for _, l := range bytes.Split(r.Body, []byte("\n")) {
		if len(l) > 0 && l[0] != '#' {
			n++
		}
	}
	return n, r.Body
}

// Any token is a method to net/http; the metrics and the access log must
// not keep one series or one byte per distinct method a client invents.
func TestMethodsDoNotGrowMetricsOrLogs(t *testing.T) {
	t.Parallel()
	var access syncBuffer
	e := newEnv(t, accessLogTo(&access, api.AccessLogAll, 0))
	// A plain client: these requests are outside openapi.yaml on purpose.
	plain := &http.Client{Timeout: hangUpBound}
	send := func(method, path string) int {
		t.Helper()
		req, err := http.NewRequest(method, e.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// Paths that are unknown (404) and known but for other methods (405).
	paths := []string{"/x", "/session"}
	// The first unknown method on each path may add its series ("other").
	for _, p := range paths {
		send("WARMUP", p)
	}
	metricSeries(t, e) // and the scrape its own
	before, _ := metricSeries(t, e)

	const distinct = 1000
	long := "L" + strings.Repeat("Q", 8<<10) // 8 KB: fits the header limit
	for i := range distinct {
		method := fmt.Sprintf("N%07dX", i)
		if i%100 == 0 {
			method = fmt.Sprintf("%s%07d", long, i)
		}
		p := paths[i%len(paths)]
		if st := send(method, p); st != http.StatusNotFound && st != http.StatusMethodNotAllowed {
			t.Fatalf("%s %s: status %d, want 404 or 405", method[:min(len(method), 12)], p, st)
		}
	}

	after, body := metricSeries(t, e)
	if after != before {
		t.Errorf("/metrics holds %d series after %d distinct methods, %d before: want no change", after, distinct, before)
	}
	if bytes.Contains(body, []byte("N0000001X")) || bytes.Contains(body, []byte("QQQQ")) {
		t.Errorf("/metrics names a client's invented method:\n%s", grepLines(body, "method="))
	}
	if !bytes.Contains(body, []byte(`method="other"`)) {
		t.Errorf("/metrics has no method=\"other\" series:\n%s", grepLines(body, "sessiond_http_requests_total"))
	}
	var lines, other int
	for _, l := range access.lines() {
		if strings.Contains(l, "N0000001X") || strings.Contains(l, "QQQQ") {
			t.Fatalf("an access-log line carries the invented method: %.200s", l)
		}
		if len(l) > 1024 {
			t.Errorf("an access-log line of %d bytes", len(l))
		}
		if strings.Contains(l, `"msg":"request"`) {
			lines++
			if strings.Contains(l, `"method":"other"`) {
				other++
			}
		}
	}
	if other < distinct {
		t.Errorf("%d of %d access-log lines say method other, want at least %d", other, lines, distinct)
	}
}

// A request with both Content-Length and Transfer-Encoding: chunked is
// framed by its chunks; a proxy that framed it by Content-Length would
// take the bytes after the chunks for another request. The connection is
// closed after the answer, so nothing pipelined behind such a request is
// ever read as a request.
func TestConflictingFramingClosesTheConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	host := strings.TrimPrefix(e.URL, "http://")
	const smuggled = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	cases := []struct {
		name       string
		request    string
		wantClosed bool
	}{
		{"Content-Length and chunked: closed after the answer", "GET /healthz HTTP/1.1\r\nHost: x\r\n" +
			"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		{"chunked alone: closed after the answer", "GET /healthz HTTP/1.1\r\nHost: x\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		{"Content-Length alone: kept alive", "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Bounds only a hang: the server answers at once.
			_ = conn.SetDeadline(time.Now().Add(hangUpBound))
			if _, err := io.WriteString(conn, c.request+smuggled); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			first, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, first.Body)
			first.Body.Close()
			if first.StatusCode != http.StatusOK {
				t.Errorf("first answer %d, want 200", first.StatusCode)
			}
			second, err := http.ReadResponse(br, nil)
			if c.wantClosed {
				if err == nil {
					second.Body.Close()
					t.Fatalf("the request behind it was answered (%d); want the connection closed", second.StatusCode)
				}
				if !first.Close {
					t.Errorf("the answer does not say Connection: close")
				}
				return
			}
			if err != nil {
				t.Fatalf("the next request on a kept-alive connection: %v", err)
			}
			second.Body.Close()
		})
	}
}
