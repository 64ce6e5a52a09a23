package pgtest

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestURLIsTheEnvironmentsOrTheLocalServer(t *testing.T) {
	t.Setenv("WARREN_TEST_POSTGRES", "")
	if got := URL(); got != DefaultURL {
		t.Errorf("URL() without WARREN_TEST_POSTGRES = %q, want %q", got, DefaultURL)
	}
	t.Setenv("WARREN_TEST_POSTGRES", "postgres://elsewhere/db")
	if got := URL(); got != "postgres://elsewhere/db" {
		t.Errorf("URL() = %q, want WARREN_TEST_POSTGRES", got)
	}
}

// TestSchemaIsNewAndDroppedWhenTheTestEnds makes a schema in a subtest: it
// exists while the subtest runs, has the prefix, and is gone after it.
func TestSchemaIsNewAndDroppedWhenTheTestEnds(t *testing.T) {
	var name string
	t.Run("uses", func(t *testing.T) {
		name = Schema(t, "pgtest_")
		if !strings.HasPrefix(name, "pgtest_") || len(name) != len("pgtest_")+12 {
			t.Errorf("schema %q: want pgtest_ and 12 hex digits", name)
		}
		if !exists(t, name) {
			t.Errorf("schema %s does not exist", name)
		}
		if err := CreateSchema(context.Background(), URL(), name); err == nil {
			t.Errorf("creating schema %s again succeeded", name)
		}
	})
	if exists(t, name) {
		t.Errorf("schema %s exists after its test ended", name)
	}
}

func exists(t *testing.T, schema string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}
