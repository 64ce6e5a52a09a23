package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// warren runs the command line with args and returns what it printed.
func warren(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return strings.TrimSpace(out.String()), err
}

func TestMigrateUpDownVersion(t *testing.T) {
	shard := "cli_" + func() string {
		b := make([]byte, 6)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(b)
	}()
	const postgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), postgres)
		if err != nil {
			t.Errorf("dropping schema %s: %v", shard, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{shard}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", shard, err)
		}
	})
	for name, flags := range map[string][]string{
		"sqlite":   {"--storage", filepath.Join(t.TempDir(), "new", "warren.db")},
		"postgres": {"--storage", postgres, "--shard", shard},
	} {
		t.Run(name, func(t *testing.T) {
			steps := []struct {
				args []string
				want string
			}{
				{[]string{"migrate", "version"}, "none"},
				{[]string{"migrate", "up"}, ""},
				{[]string{"migrate", "version"}, "1"},
				{[]string{"migrate", "up"}, ""}, // nothing to do is not an error
				{[]string{"migrate", "down", "1"}, ""},
				{[]string{"migrate", "version"}, "none"},
				{[]string{"migrate", "up"}, ""},
				{[]string{"migrate", "version"}, "1"},
			}
			for _, step := range steps {
				got, err := warren(t, append(step.args, flags...)...)
				if err != nil {
					t.Fatalf("warren %s: %v", strings.Join(step.args, " "), err)
				}
				if got != step.want {
					t.Fatalf("warren %s printed %q, want %q", strings.Join(step.args, " "), got, step.want)
				}
			}
			if _, err := warren(t, append([]string{"migrate", "down", "zero"}, flags...)...); err == nil {
				t.Error("warren migrate down zero succeeded")
			}
		})
	}
	if _, err := warren(t, "migrate", "up", "--storage", postgres, "--shard", "Not-A-Schema"); err == nil {
		t.Error("an invalid shard name was accepted")
	}
}
