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

// Pair is a primary PostgreSQL server of this machine and a standby streaming
// from it with synchronous replication (synchronous_commit on, the standby
// named in synchronous_standby_names): a commit returns only once the standby
// has it.
type Pair struct {
	primary, standby *Cluster
}

// NewReplicatedPair creates a Pair of servers, as NewServer creates one; both
// are removed when the test ends.
func NewReplicatedPair(t T) *Pair {
	t.Helper()
	ctx := context.Background()
	p := &Pair{}
	p.primary = newCluster(t, func(c *Cluster) error {
		return appendConf(c, "wal_level = replica\n", "local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n")
	})
	p.standby = newCluster(t, func(c *Cluster) error { return c.backupOf(ctx, p.primary) })
	if err := p.synchronous(ctx); err != nil {
		t.Fatalf("%v", err)
	}
	return p
}

// URL reaches database postgres on whichever of the two is the primary
// (target_session_attrs=read-write), as a client that follows failovers does.
func (p *Pair) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&target_session_attrs=read-write", p.primary.port, p.standby.port)
}

// Primary is the server that is the primary now.
func (p *Pair) Primary() *Cluster { return p.primary }

// Failover stops the primary (immediate, as a crash), promotes the standby,
// and makes the old primary the new primary's synchronous standby, from a
// fresh base backup. Between the promotion and the new standby's first
// streaming, commits are not replicated.
func (p *Pair) Failover(ctx context.Context) error {
	if err := p.primary.Stop(ctx, "immediate"); err != nil {
		return err
	}
	if err := p.standby.ctl(ctx, "promote"); err != nil {
		return err
	}
	p.primary, p.standby = p.standby, p.primary
	// The promoted server inherited the old primary's wait for a standby:
	// none is there until the old primary is one.
	if err := exec1(ctx, p.primary.URL(), "ALTER SYSTEM RESET synchronous_standby_names", "letting the new primary commit alone"); err != nil {
		return err
	}
	if err := exec1(ctx, p.primary.URL(), "SELECT pg_reload_conf()", "reloading the new primary's settings"); err != nil {
		return err
	}
	if err := p.standby.backupOf(ctx, p.primary); err != nil {
		return err
	}
	if err := p.standby.Start(ctx); err != nil {
		return err
	}
	return p.synchronous(ctx)
}

// synchronous makes the standby the primary's synchronous standby and waits
// until it is.
func (p *Pair) synchronous(ctx context.Context) error {
	for _, statement := range []string{"ALTER SYSTEM SET synchronous_standby_names = 'standby'", "SELECT pg_reload_conf()"} {
		if err := exec1(ctx, p.primary.URL(), statement, "making the standby synchronous"); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(upWithin)
	for {
		state, err := syncState(ctx, p.primary.URL())
		if err == nil && state == "sync" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the standby is not a synchronous standby of the primary within %s: %q %v", upWithin, state, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// backupOf replaces c's data, c being stopped, with a base backup of primary
// that makes it a standby streaming from it (-R), named "standby".
func (c *Cluster) backupOf(ctx context.Context, primary *Cluster) error {
	entries, err := os.ReadDir(c.dataDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(c.dataDir(), e.Name())); err != nil {
			return err
		}
	}
	backup := exec.CommandContext(ctx, "runuser", "-u", "postgres", "--", "pg_basebackup", "-D", c.dataDir(), "-R", "-X", "stream", "--checkpoint=fast",
		"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres application_name=standby", primary.port))
	if out, err := backup.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_basebackup of the server on port %d: %w\n%s", primary.port, err, out)
	}
	return nil
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
