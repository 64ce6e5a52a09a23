package storage

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/golang-migrate/migrate/v4"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// version is the shard's schema version, 0 for none.
func version(m *migrate.Migrate) (uint, error) {
	v, dirty, err := m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, nil
	}
	if err == nil && dirty {
		err = errors.New("the schema is dirty")
	}
	return v, err
}

// Every migration must be reversible: up, down and up again leaves a schema the
// backend works on.
func TestMigrationsGoUpDownAndUpAgain(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			location, shard := newShard(t, dialect)
			var versions []uint
			for _, step := range []struct {
				name string
				do   func(*migrate.Migrate) error
			}{
				{"up", (*migrate.Migrate).Up},
				{"down", (*migrate.Migrate).Down},
				{"up again", (*migrate.Migrate).Up},
			} {
				err := Migrate(ctx, location, shard, func(m *migrate.Migrate) error {
					if err := step.do(m); err != nil {
						return err
					}
					v, err := version(m)
					versions = append(versions, v)
					return err
				})
				if err != nil {
					t.Fatalf("migrating %s: %v", step.name, err)
				}
			}
			if versions[0] == 0 || versions[1] != 0 || versions[2] != versions[0] {
				t.Errorf("schema versions after up, down, up: %v, want N, 0, N", versions)
			}

			b, err := Open(ctx, Config{Storage: location, Shard: shard})
			if err != nil {
				t.Fatalf("opening the migrated shard: %v", err)
			}
			t.Cleanup(b.Close)
			s := podStore(t, b, nil)
			created := createPod(ctx, t, s, "migrated", "a")
			// The schema starts over as an empty store does, at revision 1.
			if rv := revisionOf(t, created); rv != 2 {
				t.Errorf("first write got revision %d, want 2", rv)
			}
			got := &example.Pod{}
			if err := s.Get(ctx, podKey("migrated", "a"), storage.GetOptions{}, got); err != nil {
				t.Fatal(err)
			}
			if got.ResourceVersion != created.ResourceVersion {
				t.Errorf("read revision %s, want %s", got.ResourceVersion, created.ResourceVersion)
			}
		})
	}
}

// A shard whose schema a newer warren migrated past this one's migrations is
// refused at open, saying so, rather than served with values it may not read.
func TestNewerSchemaIsRefused(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			location, shard := newShard(t, dialect)
			err := Migrate(ctx, location, shard, func(m *migrate.Migrate) error {
				if err := m.Up(); err != nil {
					return err
				}
				v, err := version(m)
				if err != nil {
					return err
				}
				return m.Force(int(v) + 1)
			})
			if err != nil {
				t.Fatal(err)
			}
			b, err := Open(ctx, Config{Storage: location, Shard: shard})
			if err == nil {
				b.Close()
				t.Fatal("a shard of a newer schema opened")
			}
			if !strings.Contains(err.Error(), "newer warren") {
				t.Errorf("error %q does not say a newer warren wrote the schema", err)
			}
		})
	}
}
