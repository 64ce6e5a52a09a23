// Package pgtest is the PostgreSQL server that warren's tests and benchmarks
// run against: where it is, a fresh schema per test, and the machine's server
// restarted or started for fault injection and set-up; and, for tests of
// shards, other servers of the machine's PostgreSQL and roles confined to one
// schema.
//
// The server is WARREN_TEST_POSTGRES, as the Makefile exports it, or DefaultURL.
// A schema from Schema is new (its creation fails if the name is taken) and is
// dropped, with everything in it, when the test ends. Restart and Start drive
// the cluster of the machine with pg_ctlcluster and return once URL accepts
// connections again, so they apply only when URL is that machine's server.
//
// The package imports nothing of warren, so every package's tests may use it,
// and not package testing, so benchmark binaries may take their defaults from it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the local server with trust authentication and database "test".
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL is WARREN_TEST_POSTGRES, or DefaultURL when that is unset.
func URL() string {
	if u := os.Getenv("WARREN_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultURL
}

// T is the part of testing.TB that Schema uses; *testing.T, *testing.B and
// *testing.F are one.
type T interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Schema creates a schema of URL named prefix and 12 random hex digits, drops
// it when the test ends, and returns its name.
func Schema(t T, prefix string) string {
	t.Helper()
	name := prefix + randomSuffix()
	ctx := context.Background()
	if err := CreateSchema(ctx, URL(), name); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := DropSchema(ctx, URL(), name); err != nil {
			t.Errorf("%v", err)
		}
	})
	return name
}

// CreateSchema creates a new, empty schema of the server at url.
func CreateSchema(ctx context.Context, url, name string) error {
	return exec1(ctx, url, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize(), "creating schema "+name)
}

// DropSchema drops a schema of the server at url and everything in it, if it
// exists.
func DropSchema(ctx context.Context, url, name string) error {
	return exec1(ctx, url, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE", "dropping schema "+name)
}

// exec1 runs one statement on a connection of its own.
func exec1(ctx context.Context, url, statement, what string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("%s: connecting: %w", what, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, statement); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Restart restarts the machine's server with pg_ctlcluster's shutdown mode
// ("smart", "fast" or "immediate", which is a crash the server recovers from
// its WAL) and waits until URL accepts connections.
func Restart(ctx context.Context, mode string) error {
	if err := ctlcluster(ctx, "restart", "-m", mode); err != nil {
		return err
	}
	return waitUntilUp(ctx)
}

// Start starts the machine's server unless URL already accepts connections,
// and waits until it does.
func Start(ctx context.Context) error {
	if up(ctx) {
		return nil
	}
	if err := ctlcluster(ctx, "start"); err != nil {
		return err
	}
	return waitUntilUp(ctx)
}

// ctlcluster runs pg_ctlcluster on the cluster "main" of the newest PostgreSQL
// installed: the one the machine's tests use.
func ctlcluster(ctx context.Context, action string, args ...string) error {
	version, err := newestVersion()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "pg_ctlcluster", append([]string{"--skip-systemctl-redirect", version, "main", action}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctlcluster %s %s: %w\n%s", version, action, err, out)
	}
	return nil
}

// newestVersion is the highest version under /etc/postgresql, where Debian's
// postgresql-common keeps one directory per installed major version.
func newestVersion() (string, error) {
	entries, err := os.ReadDir("/etc/postgresql")
	if err != nil {
		return "", fmt.Errorf("finding the PostgreSQL cluster: %w", err)
	}
	newest, best := "", -1.0
	for _, e := range entries {
		if v, err := strconv.ParseFloat(e.Name(), 64); err == nil && e.IsDir() && v > best {
			newest, best = e.Name(), v
		}
	}
	if newest == "" {
		return "", fmt.Errorf("finding the PostgreSQL cluster: no version under /etc/postgresql")
	}
	return newest, nil
}

// upWithin bounds how long a restarted or started server may take to accept
// connections.
const upWithin = 30 * time.Second

func waitUntilUp(ctx context.Context) error {
	deadline := time.Now().Add(upWithin)
	for !up(ctx) {
		if time.Now().After(deadline) {
			return fmt.Errorf("PostgreSQL at %s does not accept connections %s after pg_ctlcluster", URL(), upWithin)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for PostgreSQL at %s: %w", URL(), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// up reports whether URL accepts a connection within two seconds.
func up(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, URL())
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

// randomSuffix is 12 random hex digits.
func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand's Read never fails
	return hex.EncodeToString(b)
}

// NewServer creates another PostgreSQL server on this machine, a cluster of
// the newest installed version on a free port with trust authentication
// (pg_createcluster, which works as root), started; it is stopped and
// removed when the test ends. It returns the URL of its database postgres.
func NewServer(t T) string {
	t.Helper()
	return NewCluster(t).URL()
}

// Cluster is a PostgreSQL server of this machine that a test made.
type Cluster struct {
	version, name string
	port          int
}

// NewCluster creates another server, as NewServer does.
func NewCluster(t T) *Cluster {
	t.Helper()
	return newCluster(t, nil)
}

// URL is the URL of its database postgres, as role postgres.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Stop stops the server in mode (smart, fast or immediate).
func (c *Cluster) Stop(ctx context.Context, mode string) error {
	return c.ctl(ctx, "stop", "-m", mode)
}

// Start starts the server and returns once it accepts connections.
func (c *Cluster) Start(ctx context.Context) error {
	return c.ctl(ctx, "start")
}

func (c *Cluster) ctl(ctx context.Context, action string, args ...string) error {
	cmd := exec.CommandContext(ctx, "pg_ctlcluster", append([]string{"--skip-systemctl-redirect", c.version, c.name, action}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctlcluster %s %s %s: %w\n%s", c.version, c.name, action, err, out)
	}
	return nil
}

// confDir is where Debian keeps the cluster's configuration files.
func (c *Cluster) confDir() string { return filepath.Join("/etc/postgresql", c.version, c.name) }

// dataDir is the cluster's data directory.
func (c *Cluster) dataDir() string { return filepath.Join("/var/lib/postgresql", c.version, c.name) }

// newCluster creates, as NewServer, a cluster that configure may change before
// it starts.
func newCluster(t T, configure func(c *Cluster) error) *Cluster {
	t.Helper()
	ctx := context.Background()
	version, err := newestVersion()
	if err != nil {
		t.Fatalf("%v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	c := &Cluster{version: version, name: "warren_" + randomSuffix(), port: l.Addr().(*net.TCPAddr).Port}
	l.Close()
	create := exec.CommandContext(ctx, "pg_createcluster", version, c.name, "-p", strconv.Itoa(c.port), "--",
		"--auth-host=trust", "--auth-local=trust")
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("pg_createcluster %s %s: %v\n%s", version, c.name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("pg_dropcluster", "--stop", version, c.name).CombinedOutput(); err != nil {
			t.Errorf("pg_dropcluster %s %s: %v\n%s", version, c.name, err, out)
		}
	})
	if configure != nil {
		if err := configure(c); err != nil {
			t.Fatalf("configuring PostgreSQL cluster %s %s: %v", version, c.name, err)
		}
	}
	if err := c.Start(ctx); err != nil {
		t.Fatalf("%v", err)
	}
	return c
}

// ConfinedTo makes, on the server at url, a role that owns schema and may use
// nothing else of the database but create schemas, and returns url as that
// role: any statement naming another schema fails with it. The role is dropped
// when the test ends, after the schema.
func ConfinedTo(t T, url, schema string) string {
	t.Helper()
	ctx := context.Background()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatalf("%v", err)
	}
	role := "warren_" + randomSuffix()
	quoted := pgx.Identifier{role}.Sanitize()
	for _, statement := range []string{
		"CREATE ROLE " + quoted + " LOGIN",
		"ALTER SCHEMA " + pgx.Identifier{schema}.Sanitize() + " OWNER TO " + quoted,
		"GRANT CREATE ON DATABASE " + pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize() + " TO " + quoted,
	} {
		if err := exec1(ctx, url, statement, "confining a role to schema "+schema); err != nil {
			t.Fatalf("%v", err)
		}
	}
	t.Cleanup(func() {
		if err := exec1(ctx, url, "DROP OWNED BY "+quoted+" CASCADE; DROP ROLE "+quoted, "dropping role "+role); err != nil {
			t.Errorf("%v", err)
		}
	})
	u.User = neturl.User(role)
	return u.String()
}
