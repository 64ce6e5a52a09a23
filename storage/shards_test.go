package storage

import (
	"context"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// Two shards are two schemas of one Postgres database; nothing of one may show in
// the other.
func TestShardsInOneDatabaseAreIsolated(t *testing.T) {
	ctx := context.Background()
	one, two := newBackend(t, "postgres", Config{}), newBackend(t, "postgres", Config{})
	if one.cfg.Storage != two.cfg.Storage || one.cfg.Shard == two.cfg.Shard {
		t.Fatalf("want two shards of one database, got %+v and %+v", one.cfg, two.cfg)
	}
	s1, s2 := podStore(t, one, nil), podStore(t, two, nil)
	from2, err := two.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w2 := watchFrom(t, s2, "/pods/", from2)

	// The same key in both shards, with different contents, and more writes in
	// the first.
	for _, s := range []*Store{s1, s2} {
		createPod(ctx, t, s, "shared", "same")
	}
	relabel(ctx, t, s1, "shared", "same", "one")
	relabel(ctx, t, s2, "shared", "same", "two")
	for _, name := range []string{"x", "y", "z"} {
		createPod(ctx, t, s1, "shared", name)
	}
	only2 := createPod(ctx, t, s2, "shared", "only-two")

	for _, c := range []struct {
		name    string
		s       *Store
		label   string
		items   []string
		current int64
	}{
		// Each shard counts its own revisions on from 1: five writes and three.
		{"one", s1, "one", []string{"same", "x", "y", "z"}, 1 + 5},
		{"two", s2, "two", []string{"only-two", "same"}, 1 + 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := &example.Pod{}
			if err := c.s.Get(ctx, podKey("shared", "same"), storage.GetOptions{}, got); err != nil {
				t.Fatal(err)
			}
			if got.Labels["value"] != c.label {
				t.Errorf("shared/same has labels %v, want value=%s", got.Labels, c.label)
			}
			list := &example.PodList{}
			if err := c.s.GetList(ctx, "/pods/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, pod := range list.Items {
				names = append(names, pod.Name)
			}
			if !slices.Equal(names, c.items) {
				t.Errorf("list has %v, want %v", names, c.items)
			}
			current, err := c.s.GetCurrentResourceVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if int64(current) != c.current {
				t.Errorf("current revision is %d, want %d", current, c.current)
			}
		})
	}

	// The second shard's watcher sees its own three writes and nothing of the
	// first's, though both shards notify on the same database.
	expectChanges(t, w2, []change{
		{watch.Added, "shared/same", 2},
		{watch.Modified, "shared/same", 3},
		{watch.Added, "shared/only-two", revisionOf(t, only2)},
	})
	sentinel := createPod(ctx, t, s2, "shared", "sentinel")
	expectChanges(t, w2, []change{{watch.Added, "shared/sentinel", revisionOf(t, sentinel)}})
}
