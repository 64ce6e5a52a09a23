package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
)

// NewReplicatedPair creates two more PostgreSQL servers of this machine, as
// NewServer does: a primary, and a standby streaming from it with synchronous
// replication (synchronous_commit on, the standby named in
// synchronous_standby_names), so a commit returns only once the standby has
// it. Both are removed when the test ends.
func NewReplicatedPair(t T) (primary, standby *Cluster) {
	t.Helper()
	ctx := context.Background()
	primary = newCluster(t, func(c *Cluster) error {
		return appendConf(c, "wal_level = replica\nsynchronous_standby_names = 'standby'\nsynchronous_commit = on\n",
			"local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n")
	})
	standby = newCluster(t, func(c *Cluster) error {
		// The standby's data are a base backup of the primary's, which
		// also tells it where to stream from (-R).
		entries, err := os.ReadDir(c.dataDir())
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(c.dataDir(), e.Name())); err != nil {
				return err
			}
		}
		backup := exec.CommandContext(ctx, "runuser", "-u", "postgres", "--", "pg_basebackup", "-D", c.dataDir(), "-R", "-X", "stream",
			"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres application_name=standby", primary.port))
		if out, err := backup.CombinedOutput(); err != nil {
			return fmt.Errorf("pg_basebackup: %w\n%s", err, out)
		}
		return nil
	})
	deadline := time.Now().Add(upWithin)
	for {
		state, err := syncState(ctx, primary.URL())
		if err == nil && state == "sync" {
			return primary, standby
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby is not a synchronous standby of the primary within %s: %q %v", upWithin, state, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncState is the sync_state of the standby in the primary at url.
func syncState(ctx context.Context, url string) (string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var state string
	err = conn.QueryRow(ctx, "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'").Scan(&state)
	return state, err
}

// appendConf adds settings to the cluster's postgresql.conf and replaces its
// pg_hba.conf with hba.
func appendConf(c *Cluster, settings, hba string) error {
	f, err := os.OpenFile(filepath.Join(c.confDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString("\n" + settings); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.confDir(), "pg_hba.conf"), []byte(hba), 0o640)
}

// Promote makes a standby the primary.
func (c *Cluster) Promote(ctx context.Context) error { return c.ctl(ctx, "promote") }

// Port is the port it listens on.
func (c *Cluster) Port() int { return c.port }
