package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

// TestHealthAndMetrics: health endpoints answer anyone; /metrics and the API
// answer only whom RBAC allows, and /metrics carries the storage's metrics.
func TestHealthAndMetrics(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		anonymous := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		get := func(c *http.Client, path, token string) (int, string) {
			t.Helper()
			req, err := http.NewRequest(http.MethodGet, s.URL(path), nil)
			if err != nil {
				t.Fatal(err)
			}
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		for _, path := range []string{"/healthz", "/livez", "/readyz", "/readyz/storage"} {
			if code, body := get(anonymous, path, ""); code != http.StatusOK {
				t.Errorf("anonymous %s: %d %s", path, code, body)
			}
		}
		s.Workspace("other")
		for _, path := range []string{"/metrics", "/api", "/api/v1/namespaces", "/clusters/root:other/api/v1/namespaces/default/configmaps", "/version"} {
			if code, _ := get(anonymous, path, ""); code != http.StatusUnauthorized {
				t.Errorf("anonymous %s: %d, want 401", path, code)
			}
		}
		// Without credentials, an unknown workspace looks like any other.
		if code, _ := get(anonymous, "/clusters/root:unknown/api", ""); code != http.StatusUnauthorized {
			t.Errorf("anonymous in an unknown workspace: %d, want 401", code)
		}
		// Health is the server's, at its own paths: inside a workspace, it
		// tells an anonymous caller nothing.
		for _, path := range []string{"/clusters/root:other/healthz", "/clusters/root:unknown/readyz"} {
			if code, _ := get(anonymous, path, ""); code != http.StatusForbidden {
				t.Errorf("anonymous %s: %d, want 403", path, code)
			}
		}
		if code, _ := get(anonymous, "/metrics", "alice-token"); code != http.StatusForbidden {
			t.Errorf("alice's /metrics: %d, want 403", code)
		}
		code, body := get(s.adminHTTP(t), "/metrics", "")
		if code != http.StatusOK {
			t.Fatalf("admin's /metrics: %d", code)
		}
		for _, metric := range []string{"apiserver_request_total", "warren_storage_commit_duration_seconds", "warren_storage_watch_dispatched_revision"} {
			if !strings.Contains(body, metric) {
				t.Errorf("/metrics lacks %s", metric)
			}
		}
	})
}

// TestQuietStart: at its default verbosity, warren start prints what a user
// acts on (where it serves and the kubeconfig to use) and none of upstream's
// informational lines; --v=1 brings them back.
func TestQuietStart(t *testing.T) {
	t.Parallel()
	s := startServer(t, "sqlite")
	log := s.Log()
	if !strings.Contains(log, "warren serves "+s.URL("")) || !strings.Contains(log, "export KUBECONFIG="+s.Kubeconfig) {
		t.Errorf("warren start printed no kubeconfig to use:\n%s", log)
	}
	if strings.Contains(log, "Adding GroupVersion") || strings.Contains(log, "Skipping API") {
		t.Errorf("warren start printed upstream's informational lines at the default verbosity:\n%s", log)
	}
	verbose := startServerWith(t, "--v=1")
	if !strings.Contains(verbose.Log(), "Adding GroupVersion") {
		t.Errorf("warren start --v=1 printed no informational lines:\n%s", verbose.Log())
	}
}

// TestSQLiteServesOneProcess: a second warren start on the SQLite file another
// serves refuses with the reason, and the first keeps serving; once the first
// stops, the file is free again.
func TestSQLiteServesOneProcess(t *testing.T) {
	t.Parallel()
	s := startServer(t, "sqlite")
	file := filepath.Join(s.DataDir, "warren.db")
	second, err := warrentest.StartProcess(binary, filepath.Join(t.TempDir(), "second"), "--storage", file)
	if err == nil {
		second.Kill()
		t.Fatal("a second warren started on the SQLite file of a running one")
	}
	if !strings.Contains(err.Error(), "in use by another warren process") {
		t.Errorf("a second warren on the same SQLite file failed, but did not say why: %v", err)
	}
	if !s.Ready() {
		t.Error("the first warren is not ready after a second tried its file")
	}
	s.Stop()
	again, err := warrentest.StartProcess(binary, filepath.Join(t.TempDir(), "again"), "--storage", file)
	if err != nil {
		t.Fatalf("warren on the SQLite file of one that stopped: %v", err)
	}
	if err := again.Stop(); err != nil {
		t.Error(err)
	}
}

// TestReadyWithoutPostgres: while PostgreSQL is unreachable /readyz fails,
// naming the storage, and /livez does not (the process is sound; restarting
// it would not help); once PostgreSQL is back, warren is ready and writes
// again by itself.
func TestReadyWithoutPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := pgtest.NewCluster(t)
	if err := pgtest.CreateSchema(ctx, pg.URL(), "ready"); err != nil {
		t.Fatal(err)
	}
	s := startServerWith(t, "--storage", pg.URL(), "--shard", "ready")
	anonymous := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	status := func(path string) (int, string) {
		t.Helper()
		resp, err := anonymous.Get(s.URL(path + "?verbose"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if err := pg.Stop(ctx, "immediate"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "/readyz fails while PostgreSQL is down", func() error {
		if code, body := status("/readyz"); code == http.StatusOK || !strings.Contains(body, "[-]storage failed") {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		return nil
	})
	if code, body := status("/livez"); code != http.StatusOK {
		t.Errorf("/livez while PostgreSQL is down: %d %s", code, body)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "/readyz once PostgreSQL is back", func() error {
		if code, body := status("/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		return nil
	})
	eventually(t, "a write once PostgreSQL is back", func() error {
		_, err := s.client("root").CoreV1().ConfigMaps("default").Create(ctx, configMap("after"), metav1.CreateOptions{})
		return err
	})
}

// TestSIGTERMEndsWatchesAndExits: on SIGTERM warren ends its watches — their
// clients see the stream end, after every event it had sent — and exits by
// itself, well before it would be killed.
func TestSIGTERMEndsWatchesAndExits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startServer(t, "sqlite")
	configMaps := s.client("root").CoreV1().ConfigMaps("default")
	w, err := configMaps.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := configMaps.Create(ctx, configMap("before"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := <-w.ResultChan(); ev.Type != "ADDED" {
		t.Fatalf("the watch's first event: %v", ev)
	}
	stopped := make(chan error, 1)
	start := time.Now()
	go func() { stopped <- s.Process.Stop() }()
	for ended := false; !ended; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				ended = true
			} else if ev.Type == "ERROR" {
				t.Errorf("the watch ended with an error event: %v", ev.Object)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the watch did not end within 30 s of SIGTERM")
		}
	}
	if err := <-stopped; err != nil {
		t.Fatalf("warren did not exit by itself after SIGTERM: %v", err)
	}
	t.Logf("the watch ended and warren exited %s after SIGTERM", time.Since(start))
}

// TestSIGTERMDrainsRequestsInFlight: a write that PostgreSQL holds back (the
// test locks the shard's revision row) when SIGTERM arrives completes once
// the lock goes, is answered 201, and is there after a restart; warren exits
// by itself once it is answered.
func TestSIGTERMDrainsRequestsInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	args := warrentest.Storage(t, "postgres")
	s := startServerWith(t, args...)
	schema := args[len(args)-1]
	configMaps := s.client("root").CoreV1().ConfigMaps("default")

	lock, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var holder int
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT current FROM `+pgx.Identifier{schema, "revision"}.Sanitize()+` WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	created := make(chan error, 1)
	go func() {
		_, err := configMaps.Create(ctx, configMap("in-flight"), metav1.CreateOptions{})
		created <- err
	}()
	eventually(t, "the create waits for the test's lock", func() error {
		var waiting int
		if err := lock.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, holder).Scan(&waiting); err != nil {
			return err
		}
		if waiting == 0 {
			return fmt.Errorf("no session waits for the lock")
		}
		return nil
	})
	stopped := make(chan error, 1)
	go func() { stopped <- s.Process.Stop() }()
	time.Sleep(time.Second) // warren is shutting down, the create still waiting
	select {
	case err := <-created:
		t.Fatalf("the create ended while PostgreSQL held it back: %v", err)
	case err := <-stopped:
		t.Fatalf("warren exited with a request in flight: %v", err)
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-created; err != nil {
		t.Fatalf("the create in flight at SIGTERM: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("warren did not exit by itself after draining: %v", err)
	}
	s.Launch()
	if _, err := configMaps.Get(ctx, "in-flight", metav1.GetOptions{}); err != nil {
		t.Fatalf("the config map created while warren stopped: %v", err)
	}
}
