package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/apitesting"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/storage"
)

// clusteredStore returns a clustered store of example pods under prefix, whose
// keys are <prefix><cluster>/[<namespace>/]<name>.
func clusteredStore(t testing.TB, b *Backend, prefix string) *Store {
	t.Helper()
	s, err := b.NewStore(ResourceConfig{
		Codec:          apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion),
		NewFunc:        func() runtime.Object { return &example.Pod{} },
		NewListFunc:    func() runtime.Object { return &example.PodList{} },
		ResourcePrefix: prefix,
		GroupResource:  schema.GroupResource{Resource: strings.Trim(prefix, "/")},
		Clustered:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// object names one object of a clustered store in a test.
type object struct {
	s                        *Store
	cluster, namespace, name string
}

func (o object) key() string {
	if o.namespace == "" {
		return o.s.resourcePrefix + o.cluster + "/" + o.name
	}
	return o.s.resourcePrefix + o.cluster + "/" + o.namespace + "/" + o.name
}

// watchKey is what changeOf calls the object.
func (o object) watchKey() string { return o.namespace + "/" + o.name }

// store creates o, labelled with its key, and, if update, updates it once, so
// that its previous object differs from the one created.
func (o object) store(ctx context.Context, update bool) error {
	s := o.s
	pod := newPod(o.namespace, o.name)
	pod.Labels = map[string]string{"key": strings.ReplaceAll(strings.Trim(o.key(), "/"), "/", ".")}
	if err := s.Create(ctx, o.key(), pod, &example.Pod{}, 0); err != nil {
		return fmt.Errorf("creating %s: %w", o.key(), err)
	}
	if !update {
		return nil
	}
	err := s.GuaranteedUpdate(ctx, o.key(), &example.Pod{}, false, nil,
		func(obj runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
			pod := obj.(*example.Pod)
			pod.Labels["updated"] = "yes"
			return pod, nil, nil
		}, nil)
	if err != nil {
		return fmt.Errorf("updating %s: %w", o.key(), err)
	}
	return nil
}

// storeAll stores the objects from a few goroutines, so that their writes commit
// in batches.
func storeAll(ctx context.Context, t testing.TB, objects []object) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(objects))
	next := make(chan object)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range next {
				errs <- o.store(ctx, len(o.name)%2 == 0)
			}
		}()
	}
	for _, o := range objects {
		next <- o
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// clusterRowCount counts the objects rows of a cluster with SQL of its own.
func clusterRowCount(t testing.TB, b *Backend, cluster string) int64 {
	t.Helper()
	ctx := context.Background()
	var n int64
	if err := one(ctx, b.db.query, []any{&n}, `SELECT count(*) FROM objects WHERE cluster = $1`, cluster); err != nil {
		t.Fatalf("counting the rows of cluster %q: %v", cluster, err)
	}
	return n
}

// rowsOf reads the stored rows of the objects; absent ones are nil.
func rowsOf(t testing.TB, b *Backend, objects []object) map[string]*row {
	t.Helper()
	rows := make(map[string]*row, len(objects))
	for _, o := range objects {
		r, _, err := b.db.get(context.Background(), o.key())
		if err != nil {
			t.Fatal(err)
		}
		rows[o.key()] = r
	}
	return rows
}

// describe shows a stored row (nil: absent) in a failure message.
func describe(r *row) string {
	if r == nil {
		return "absent"
	}
	return fmt.Sprintf("revision %d, %q", r.revision, r.value)
}

func currentRevision(t testing.TB, b *Backend) int64 {
	t.Helper()
	current, err := b.CurrentRevision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return current
}

func inCluster(objects []object, cluster string) []object {
	var out []object
	for _, o := range objects {
		if o.cluster == cluster {
			out = append(out, o)
		}
	}
	return out
}

// eraseFixture stores objects of the clusters "ab", "abc" and "x" in a namespaced
// and a cluster-scoped clustered resource; "x" has a namespace and a name "ab".
func eraseFixture(t *testing.T, b *Backend) (pods, nodes *Store, objects []object) {
	t.Helper()
	pods, nodes = clusteredStore(t, b, "/pods/"), clusteredStore(t, b, "/nodes/")
	for _, c := range []string{"ab", "abc", "x"} {
		objects = append(objects,
			object{pods, c, "ns1", "p1"}, object{pods, c, "ns1", "pod2"}, object{pods, c, "ns2", "p3"},
			object{nodes, c, "", "n1"}, object{nodes, c, "", "node2"})
	}
	objects = append(objects, object{pods, "x", "ab", "ab"}, object{nodes, "x", "", "ab"})
	storeAll(context.Background(), t, objects)
	return pods, nodes, objects
}

// TestEraseCluster proves that erasing a cluster deletes exactly its objects, in
// every resource, each as a change of its own logged with the previous value,
// and leaves the other clusters byte for byte as they were.
func TestEraseCluster(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t, dialect, Config{})
			pods, nodes, objects := eraseFixture(t, b)
			erased := inCluster(objects, "ab")
			before := rowsOf(t, b, objects)
			start := currentRevision(t, b)
			if n := clusterRowCount(t, b, "ab"); n != int64(len(erased)) {
				t.Fatalf("cluster ab has %d rows before the erase, want %d", n, len(erased))
			}

			n, err := b.EraseCluster(ctx, "ab")
			if err != nil {
				t.Fatal(err)
			}
			if n != len(erased) {
				t.Errorf("EraseCluster returned %d, want %d", n, len(erased))
			}
			if left := clusterRowCount(t, b, "ab"); left != 0 {
				t.Errorf("cluster ab has %d rows after the erase", left)
			}
			if got, want := currentRevision(t, b), start+int64(len(erased)); got != want {
				t.Errorf("revision %d after the erase, want %d: one per deleted object", got, want)
			}
			after := rowsOf(t, b, objects)
			for _, o := range objects {
				got, was := after[o.key()], before[o.key()]
				switch {
				case o.cluster == "ab" && got != nil:
					t.Errorf("%s survived the erase", o.key())
				case o.cluster != "ab" && (got == nil || got.revision != was.revision || !bytes.Equal(got.value, was.value)):
					t.Errorf("%s changed: before %s, after %s", o.key(), describe(was), describe(got))
				}
			}
			for _, s := range []*Store{pods, nodes} {
				list := &example.PodList{}
				if err := s.GetList(ctx, s.resourcePrefix, storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
					t.Fatal(err)
				}
				for _, p := range list.Items {
					if strings.HasPrefix(p.Labels["key"], strings.Trim(s.resourcePrefix, "/")+".ab.") {
						t.Errorf("%s lists %s/%s after the erase", s.resourcePrefix, p.Namespace, p.Name)
					}
				}
			}

			// The log holds one delete per erased object, with the value it had.
			events, err := b.db.events(ctx, start, allKeys, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != len(erased) {
				t.Fatalf("%d changes logged by the erase, want %d", len(events), len(erased))
			}
			logged := map[string]bool{}
			for i, e := range events {
				was := before[e.key]
				switch {
				case e.revision != start+int64(i)+1:
					t.Errorf("change %d at revision %d, want %d", i, e.revision, start+int64(i)+1)
				case e.value != nil:
					t.Errorf("change of %s at %d is not a delete", e.key, e.revision)
				case was == nil || e.prevRevision != was.revision || !bytes.Equal(e.prevValue, was.value):
					t.Errorf("delete of %s logs previous revision %d, want the row %+v", e.key, e.prevRevision, was)
				}
				logged[e.key] = true
			}
			for _, o := range erased {
				if !logged[o.key()] {
					t.Errorf("no delete of %s logged", o.key())
				}
			}
		})
	}
}

// TestEraseClusterWatch proves that a watch of a whole resource opened before the
// erase sees every erased object go, with its previous state, in revision order,
// and nothing of the other clusters.
func TestEraseClusterWatch(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t, dialect, Config{})
			pods, nodes, objects := eraseFixture(t, b)
			before := rowsOf(t, b, objects)
			start := currentRevision(t, b)
			stores := []*Store{pods, nodes}
			watches := []watch.Interface{watchFrom(t, pods, "/pods/", start), watchFrom(t, nodes, "/nodes/", start)}

			n, err := b.EraseCluster(ctx, "ab")
			if err != nil {
				t.Fatal(err)
			}
			if want := len(inCluster(objects, "ab")); n != want {
				t.Fatalf("EraseCluster returned %d, want %d", n, want)
			}
			var revisions []int64
			for i, s := range stores {
				want := map[string]object{}
				for _, o := range inCluster(objects, "ab") {
					if o.s == s {
						want[o.watchKey()] = o
					}
				}
				last := start
				for range len(want) {
					ev := nextEvent(t, watches[i])
					c := changeOf(t, ev)
					o, ok := want[c.key]
					if c.typ != watch.Deleted || !ok {
						t.Fatalf("%s: got %v, want the deletion of one of %v", s.resourcePrefix, c, keysOf(want))
					}
					delete(want, c.key)
					if c.revision <= last {
						t.Errorf("%s: %v after revision %d", s.resourcePrefix, c, last)
					}
					last = c.revision
					revisions = append(revisions, c.revision)
					// The event carries the object as it was before the erase.
					prev := &example.Pod{}
					if err := s.decode(o.key(), nil, before[o.key()].value, prev, c.revision); err != nil {
						t.Fatal(err)
					}
					if got := ev.Object.(*example.Pod); !equalPods(got, prev) {
						t.Errorf("%s: DELETED %s carries %+v, want %+v", s.resourcePrefix, o.key(), got.ObjectMeta, prev.ObjectMeta)
					}
				}
			}
			slices.Sort(revisions)
			if len(revisions) != n {
				t.Fatalf("%d DELETED events, EraseCluster returned %d", len(revisions), n)
			}
			for i, r := range revisions {
				if r != start+int64(i)+1 {
					t.Fatalf("deletions at revisions %v, want %d to %d", revisions, start+1, start+int64(n))
				}
			}
			// A write after the erase is the next event: nothing of the other
			// clusters came in between.
			for i, s := range stores {
				o := object{s, "x", "", "after"}
				if s == pods {
					o.namespace = "ns1"
				}
				if err := o.store(ctx, false); err != nil {
					t.Fatal(err)
				}
				if c := changeOf(t, nextEvent(t, watches[i])); c.typ != watch.Added || c.key != o.watchKey() {
					t.Errorf("%s: got %v after the erase, want ADDED %s", s.resourcePrefix, c, o.watchKey())
				}
			}
		})
	}
}

func keysOf(m map[string]object) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func equalPods(a, b *example.Pod) bool {
	return a.Namespace == b.Namespace && a.Name == b.Name && a.ResourceVersion == b.ResourceVersion &&
		fmt.Sprint(a.Labels) == fmt.Sprint(b.Labels)
}

// TestEraseClusterChunks erases a cluster of more objects than one read returns.
func TestEraseClusterChunks(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t, dialect, Config{})
			pods, nodes := clusteredStore(t, b, "/pods/"), clusteredStore(t, b, "/nodes/")
			const total = 1200
			var objects []object
			for i := range total {
				if i%3 == 0 {
					objects = append(objects, object{nodes, "big", "", fmt.Sprintf("n%d", i)})
				} else {
					objects = append(objects, object{pods, "big", fmt.Sprintf("ns%d", i%7), fmt.Sprintf("p%d", i)})
				}
			}
			for i := range 10 {
				objects = append(objects, object{pods, "bigger", "ns", fmt.Sprintf("p%d", i)})
			}
			storeAll(ctx, t, objects)
			start := currentRevision(t, b)

			n, err := b.EraseCluster(ctx, "big")
			if err != nil {
				t.Fatal(err)
			}
			if n != total {
				t.Errorf("EraseCluster returned %d, want %d", n, total)
			}
			if left := clusterRowCount(t, b, "big"); left != 0 {
				t.Errorf("cluster big has %d rows after the erase", left)
			}
			if kept := clusterRowCount(t, b, "bigger"); kept != 10 {
				t.Errorf("cluster bigger has %d rows after the erase, want 10", kept)
			}
			if got := currentRevision(t, b); got != start+total {
				t.Errorf("revision %d after the erase, want %d", got, start+total)
			}
		})
	}
}

// TestEraseClusterEmpty proves that erasing a cluster without objects, or the
// empty name of unclustered resources, changes nothing.
func TestEraseClusterEmpty(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t, dialect, Config{})
			if n, err := b.EraseCluster(ctx, "nothing"); n != 0 || err != nil {
				t.Errorf("erasing a cluster of an empty shard: %d, %v; want 0, nil", n, err)
			}
			pods := clusteredStore(t, b, "/pods/")
			storeAll(ctx, t, []object{{pods, "ab", "ns", "p"}, {pods, "abc", "ns", "p"}})
			unclustered := podStore(t, b, nil)
			createPod(ctx, t, unclustered, "ns", "p")
			start := currentRevision(t, b)

			for _, cluster := range []string{"a", "nothing", "", "AB", "ab/"} {
				if n, err := b.EraseCluster(ctx, cluster); n != 0 || err != nil {
					t.Errorf("erasing cluster %q: %d, %v; want 0, nil", cluster, n, err)
				}
			}
			if got := currentRevision(t, b); got != start {
				t.Errorf("revision %d after erasing no objects, want %d", got, start)
			}
			if c := clusterRowCount(t, b, ""); c != 1 {
				t.Errorf("%d unclustered rows, want 1", c)
			}
			if n, err := b.EraseCluster(ctx, "ab"); n != 1 || err != nil {
				t.Errorf("erasing cluster ab: %d, %v; want 1, nil", n, err)
			}
			if n, err := b.EraseCluster(ctx, "ab"); n != 0 || err != nil {
				t.Errorf("erasing cluster ab again: %d, %v; want 0, nil", n, err)
			}
		})
	}
}

// TestEraseClusterCanceled proves that the erase stops with its context.
func TestEraseClusterCanceled(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, Config{})
			pods := clusteredStore(t, b, "/pods/")
			storeAll(context.Background(), t, []object{{pods, "ab", "ns", "p"}})
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			n, err := b.EraseCluster(ctx, "ab")
			if n != 0 || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `erasing cluster "ab"`) {
				t.Errorf("erasing with a canceled context: %d, %v", n, err)
			}
			if c := clusterRowCount(t, b, "ab"); c != 1 {
				t.Errorf("%d rows of cluster ab left, want 1", c)
			}
		})
	}
}

// hookedDialect runs a function once, after the first read of a cluster's keys.
type hookedDialect struct {
	dialect
	once  sync.Once
	after func()
}

func (d *hookedDialect) query(ctx context.Context, sql string, args ...any) (cursor, error) {
	rs, err := d.dialect.query(ctx, sql, args...)
	if err != nil || sql != sqlClusterRows {
		return rs, err
	}
	return &hookedRows{cursor: rs, after: func() { d.once.Do(d.after) }}, nil
}

// hookedRows calls after once the rows have been read.
type hookedRows struct {
	cursor
	after func()
}

func (r *hookedRows) Close() {
	r.cursor.Close()
	r.after()
}

// newHookedBackend is newBackend with the hooked dialect.
func newHookedBackend(t *testing.T, kind string, h *hookedDialect) *Backend {
	t.Helper()
	ctx := context.Background()
	b := newBackend(t, kind, Config{}) // creates and migrates the shard
	cfg := b.cfg
	b.Close()
	var err error
	h.dialect, err = openDialect(ctx, cfg.Storage, cfg.Shard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = serve(ctx, cfg, h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// TestEraseClusterConcurrentWrites proves that objects changed, deleted or
// created between the erase's read and its deletes are handled: a changed one is
// read again and deleted at its new revision, a deleted one is not counted, and
// a new one is refused (404), as the cluster is fenced before the first read.
func TestEraseClusterConcurrentWrites(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			var pods *Store
			h := &hookedDialect{}
			h.after = func() {
				err := pods.GuaranteedUpdate(ctx, "/pods/ab/ns/changed", &example.Pod{}, false, nil,
					func(obj runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
						pod := obj.(*example.Pod)
						pod.Labels = map[string]string{"value": "concurrent"}
						return pod, nil, nil
					}, nil)
				if err != nil {
					t.Errorf("updating: %v", err)
				}
				if err := pods.Delete(ctx, "/pods/ab/ns/deleted", &example.Pod{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{}); err != nil {
					t.Errorf("deleting: %v", err)
				}
				if err := pods.Create(ctx, "/pods/ab/ns/created", newPod("ns", "created"), &example.Pod{}, 0); !apierrors.IsNotFound(err) {
					t.Errorf("creating in the cluster being erased: %v, want 404", err)
				}
			}
			b := newHookedBackend(t, dialect, h)
			pods = clusteredStore(t, b, "/pods/")
			storeAll(ctx, t, []object{{pods, "ab", "ns", "changed"}, {pods, "ab", "ns", "deleted"}, {pods, "ab", "ns", "kept"}})
			start := currentRevision(t, b)
			w := watchFrom(t, pods, "/pods/", start)

			n, err := b.EraseCluster(ctx, "ab")
			if err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Fatalf("EraseCluster returned %d, want 2: changed and kept", n)
			}
			if left := clusterRowCount(t, b, "ab"); left != 0 {
				t.Errorf("cluster ab has %d rows after the erase", left)
			}
			expectChanges(t, w, []change{
				{watch.Modified, "ns/changed", start + 1},
				{watch.Deleted, "ns/deleted", start + 2},
				{watch.Deleted, "ns/kept", start + 3},
			})
			// The second read finds the changed object.
			ev := nextEvent(t, w)
			if c := changeOf(t, ev); c.typ != watch.Deleted || c.key != "ns/changed" || c.revision != start+4 {
				t.Fatalf("got %v, want the deletion of ns/changed at %d", c, start+4)
			}
			if labels := ev.Object.(*example.Pod).Labels; labels["value"] != "concurrent" {
				t.Errorf("the deletion of the changed object carries %v, want its changed labels", labels)
			}
		})
	}
}

// TestEraseFencesTheCluster erases a cluster while clients of this process and,
// on PostgreSQL, of another process serving the shard keep creating objects in
// it: once the erase returns no row of the cluster is left, for good — every
// later create in it fails with 404 until the cluster is revived — while other
// clusters take writes.
func TestEraseFencesTheCluster(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t, dialect, Config{})
			stores := []*Store{clusteredStore(t, b, "/pods/")}
			if dialect == "postgres" {
				other, err := Open(ctx, Config{Storage: b.cfg.Storage, Shard: b.cfg.Shard})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(other.Close)
				stores = append(stores, clusteredStore(t, other, "/pods/"))
			}
			stop := make(chan struct{})
			var writers sync.WaitGroup
			var mu sync.Mutex
			var refused []error
			for i, s := range stores {
				for w := range 4 {
					writers.Go(func() {
						for n := 0; ; n++ {
							select {
							case <-stop:
								return
							default:
							}
							err := object{s, "ab", "ns", fmt.Sprintf("w%d-%d-%d", i, w, n)}.store(ctx, false)
							if err != nil {
								mu.Lock()
								refused = append(refused, err)
								mu.Unlock()
							}
						}
					})
				}
			}
			time.Sleep(200 * time.Millisecond)
			if _, err := b.EraseCluster(ctx, "ab"); err != nil {
				t.Fatal(err)
			}
			// Writers go on after the erase: none of theirs may stay.
			time.Sleep(300 * time.Millisecond)
			close(stop)
			writers.Wait()
			if n := clusterRowCount(t, b, "ab"); n != 0 {
				t.Errorf("%d rows of the erased cluster are left", n)
			}
			if len(refused) == 0 {
				t.Fatal("no create in the erased cluster was refused")
			}
			for _, err := range refused {
				if !apierrors.IsNotFound(err) {
					t.Fatalf("a create in the erased cluster failed with %v, want 404", err)
				}
			}
			if err := (object{stores[len(stores)-1], "x", "ns", "after"}).store(ctx, false); err != nil {
				t.Errorf("a create in another cluster after the erase: %v", err)
			}
			// A cluster made again under its name takes writes once revived.
			if err := b.ReviveCluster(ctx, "ab"); err != nil {
				t.Fatal(err)
			}
			if err := (object{stores[len(stores)-1], "ab", "ns", "again"}).store(ctx, false); err != nil {
				t.Errorf("a create in the revived cluster: %v", err)
			}
		})
	}
}
