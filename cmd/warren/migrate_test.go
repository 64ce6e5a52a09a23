package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-dev/warren/test/pgtest"
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
	postgres, shard := pgtest.URL(), pgtest.Schema(t, "cli_")
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
				{[]string{"migrate", "version"}, "3"},
				{[]string{"migrate", "up"}, ""}, // nothing to do is not an error
				{[]string{"migrate", "down", "1"}, ""},
				{[]string{"migrate", "version"}, "2"},
				{[]string{"migrate", "down", "2"}, ""},
				{[]string{"migrate", "version"}, "none"},
				{[]string{"migrate", "up"}, ""},
				{[]string{"migrate", "version"}, "3"},
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
