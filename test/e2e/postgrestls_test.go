package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

// TestPostgresTLS runs warren on a PostgreSQL server that takes TLS
// connections only and authenticates clients by certificate: with
// sslmode=verify-full and a client certificate in its --storage URL, every
// session warren opens is encrypted, pool_max_conns bounds them, and what it
// stores survives a restart; a server whose certificate another CA signed is
// refused.
func TestPostgresTLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := pgtest.NewTLSServer(t)
	if conn, err := pgx.Connect(ctx, pg.Plain); err == nil {
		conn.Close(ctx)
		t.Fatal("the test's PostgreSQL server took a connection without TLS")
	}
	if err := pgtest.CreateSchema(ctx, pg.URL, "tls"); err != nil {
		t.Fatal(err)
	}
	// At most 3 connections in the pool, whatever the load.
	s := startServerWith(t, "--storage", pg.URL+"&pool_max_conns=3", "--shard", "tls")
	if _, err := s.client("root").CoreV1().ConfigMaps("default").Create(ctx, configMap("over-tls"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var burst errgroup.Group
	for i := range 30 {
		burst.Go(func() error {
			_, err := s.client("root").CoreV1().ConfigMaps("default").Create(ctx, configMap(fmt.Sprintf("burst-%d", i)), metav1.CreateOptions{})
			return err
		})
	}
	if err := burst.Wait(); err != nil {
		t.Fatal(err)
	}
	// The pool's, the one that listens for notifications and the one that
	// holds or seeks the shard's leadership.
	if n, err := postgresRow[int64](ctx, pg.URL, "public", `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'warren/tls'`); err != nil || n > 5 {
		t.Errorf("warren holds %d sessions with pool_max_conns=3 (%v)", n, err)
	}
	s.Restart()
	if _, err := s.client("root").CoreV1().ConfigMaps("default").Get(ctx, "over-tls", metav1.GetOptions{}); err != nil {
		t.Errorf("after a restart: %v", err)
	}
	const sessions = `SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'warren/tls' AND s.ssl = $1`
	if n, err := postgresRow[int64](ctx, pg.URL, "public", sessions, true); err != nil || n == 0 {
		t.Errorf("warren's sessions over TLS: %d %v", n, err)
	}
	if n, err := postgresRow[int64](ctx, pg.URL, "public", sessions, false); err != nil || n != 0 {
		t.Errorf("warren's sessions without TLS: %d %v", n, err)
	}

	p, err := warrentest.StartProcess(binary, filepath.Join(t.TempDir(), "data"), "--storage", pg.OtherCA, "--shard", "tls")
	if err == nil {
		p.Kill()
		t.Fatal("warren started on a PostgreSQL server whose certificate its CA did not sign")
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("warren refused the server, but not for its certificate: %v", err)
	}
}
