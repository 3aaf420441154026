// Package e2e tests the shipped artefact: the image built from the
// Dockerfile, running the real binary next to a Postgres container.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

const (
	imageTag     = "sessiond:e2e"
	maxImageSize = 25 << 20
	apiKey       = "sk_e2e_0123456789abcdef"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// buildImage builds the Dockerfile at the repository root with the
// classic builder, the way `docker build` on any engine does.
func buildImage(t *testing.T) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	cmd := exec.Command("docker", "build", "-q", "-t", imageTag,
		"--build-arg", "GO_IMAGE="+envOr("SESSIOND_GO_IMAGE", "golang:1.26"),
		"--build-arg", "VERSION=e2e", root)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
}

func TestContainer(t *testing.T) {
	ctx := context.Background()
	started := time.Now()
	buildImage(t)
	t.Logf("image built in %s", time.Since(started).Round(time.Second))

	t.Run("image is under 25 MB", func(t *testing.T) {
		out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Size}}", imageTag).Output()
		if err != nil {
			t.Fatal(err)
		}
		size, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("image size: %.1f MB", float64(size)/(1<<20))
		if size >= maxImageSize {
			t.Errorf("image is %d bytes, want under %d", size, maxImageSize)
		}
	})

	nw, err := network.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	testcontainers.CleanupNetwork(t, nw)

	pg, err := postgres.Run(ctx, envOr("SESSIOND_POSTGRES_IMAGE", "postgres:15"),
		postgres.WithDatabase("sessiond"),
		postgres.WithUsername("postgres"),
		postgres.WithPassword("postgres"),
		postgres.BasicWaitStrategies(),
		network.WithNetwork([]string{"db"}, nw),
	)
	testcontainers.CleanupContainer(t, pg)
	if err != nil {
		t.Fatal(err)
	}

	started = time.Now()
	app, err := testcontainers.Run(ctx, imageTag,
		testcontainers.WithExposedPorts("8080/tcp"),
		testcontainers.WithEnv(map[string]string{
			"SESSIOND_DATABASE_URL": "postgres://postgres:postgres@db:5432/sessiond?sslmode=disable",
			"SESSIOND_API_KEYS":     apiKey,
		}),
		network.WithNetwork([]string{"sessiond"}, nw),
		// The image's own HEALTHCHECK (sessiond healthcheck → /readyz).
		testcontainers.WithWaitStrategy(wait.ForHealthCheck().WithStartupTimeout(90*time.Second)),
	)
	testcontainers.CleanupContainer(t, app)
	if err != nil {
		if app != nil {
			if logs, lerr := app.Logs(ctx); lerr == nil {
				b, _ := io.ReadAll(logs)
				t.Logf("sessiond logs:\n%s", b)
			}
		}
		t.Fatal(err)
	}
	t.Logf("container healthy in %s", time.Since(started).Round(time.Millisecond))

	t.Run("runs as a non-root user", func(t *testing.T) {
		info, err := app.Inspect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if u := info.Config.User; u == "" || u == "0" || u == "root" || strings.HasPrefix(u, "0:") {
			t.Errorf("container user %q, want a non-root numeric user", u)
		}
		code, out, err := app.Exec(ctx, []string{"/usr/local/bin/sessiond", "version"})
		if err != nil || code != 0 {
			t.Fatalf("sessiond version: exit %d, %v", code, err)
		}
		b, _ := io.ReadAll(out)
		if !strings.Contains(string(b), "sessiond e2e") {
			t.Errorf("version output %q lacks the stamped version", b)
		}
	})

	endpoint, err := app.PortEndpoint(ctx, "8080/tcp", "http")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("sign-in, who am I, sign-out, then 401", func(t *testing.T) {
		status, body := call(t, http.MethodPost, endpoint+"/sessions", apiKey, `{"user_id":"e2e"}`)
		if status != http.StatusCreated {
			t.Fatalf("sign-in: %d %s", status, body)
		}
		var signIn struct {
			Session struct{ ID string } `json:"session"`
			Token   string              `json:"token"`
		}
		if err := json.Unmarshal(body, &signIn); err != nil {
			t.Fatal(err)
		}
		if status, body = call(t, http.MethodGet, endpoint+"/session", signIn.Token, ""); status != http.StatusOK || !strings.Contains(string(body), signIn.Session.ID) {
			t.Fatalf("who am I: %d %s", status, body)
		}
		if status, body = call(t, http.MethodDelete, endpoint+"/session", signIn.Token, ""); status != http.StatusOK {
			t.Fatalf("sign-out: %d %s", status, body)
		}
		if status, body = call(t, http.MethodGet, endpoint+"/session", signIn.Token, ""); status != http.StatusUnauthorized {
			t.Fatalf("who am I after sign-out: %d %s, want 401", status, body)
		}
	})
}

func call(t *testing.T, method, url, credential, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+credential)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(fmt.Errorf("%s %s: %w", method, url, err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
