package storage

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestReadsUseIndexes explains every read statement of tables.go on both
// databases and fails on a full scan of objects or log: reading one workspace
// must cost O(its objects), whatever else the shard holds (DESIGN.md,
// invariant 6). The statements are written once for both databases, so a plan
// that only one planner gets wrong shows here.
func TestReadsUseIndexes(t *testing.T) {
	statements := []struct {
		name string
		sql  string
		args []any
	}{
		{"get", sqlGet, []any{"/pods/c/ns/p"}},
		{"page", sqlPage, []any{"/pods/c/", "/pods/c0", int64(501), true, int64(1500)}},
		{"unchanged at a revision", sqlUnchangedAt, []any{"/pods/c/", "/pods/c0", int64(7), int64(501)}},
		{"changed at a revision", sqlChangedAt, []any{"/pods/c/", "/pods/c0", int64(7)}},
		{"count unchanged at a revision", sqlCountUnchangedAt, []any{"/pods/c/", "/pods/c0", int64(7), int64(1500)}},
		{"count changed at a revision", sqlCountChangedAt, []any{"/pods/c/", "/pods/c0", int64(7)}},
		{"events", sqlEvents, []any{int64(7), "/pods/c/", "/pods/c0", 100}},
		{"expired", sqlExpired, []any{int64(1000), 256}},
		{"cluster rows", sqlClusterRows, []any{"c", 500}},
	}
	// A plan line of a full table scan: PostgreSQL's "Seq Scan on objects";
	// SQLite's "SCAN objects", with or without an index (a range is a SEARCH),
	// where SQLite names a table by its alias in the statements (o, l, n).
	fullScan := regexp.MustCompile(`Seq Scan on (objects|log)\b|^SCAN (objects|log|o|l|n)\b`)
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t, dialect, Config{})
			explain := "EXPLAIN "
			if dialect == "sqlite" {
				explain = "EXPLAIN QUERY PLAN "
			}
			for _, s := range statements {
				rs, err := b.db.query(ctx, explain+s.sql, s.args...)
				if err != nil {
					t.Fatalf("%s: explaining: %v", s.name, err)
				}
				var plan []string
				for rs.Next() {
					// PostgreSQL returns one text column, SQLite four (the last is the text).
					var line string
					var err error
					if dialect == "sqlite" {
						var id, parent, unused int64
						err = rs.Scan(&id, &parent, &unused, &line)
					} else {
						err = rs.Scan(&line)
					}
					if err != nil {
						t.Fatalf("%s: reading the plan: %v", s.name, err)
					}
					plan = append(plan, strings.TrimSpace(line))
				}
				rs.Close()
				if err := rs.Err(); err != nil {
					t.Fatalf("%s: reading the plan: %v", s.name, err)
				}
				for _, line := range plan {
					if fullScan.MatchString(strings.TrimLeft(line, "-> ")) {
						t.Errorf("%s scans a whole table (%q):\n%s", s.name, line, strings.Join(plan, "\n"))
					}
				}
			}
		})
	}
}
