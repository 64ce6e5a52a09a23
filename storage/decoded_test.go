package storage

import (
	"context"
	"fmt"
	"reflect"
	goruntime "runtime"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/api/apitesting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/value"
)

// counts is a cache's hits and misses so far.
func counts(c *decodedCache) (hits, misses int64) { return c.hits.Load(), c.misses.Load() }

// TestDecodedObjectsAreServedAsCopies: a get, a list and a write's read of the
// current state take the object a write or an earlier read decoded, each as a
// copy of its own, and a new revision is decoded anew.
func TestDecodedObjectsAreServedAsCopies(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t, dialect, Config{})
			s := podStore(t, b, nil)
			created := createPod(ctx, t, s, "ns", "a")

			hits, misses := counts(b.decoded)
			first := &example.Pod{}
			if err := s.Get(ctx, podKey("ns", "a"), storage.GetOptions{}, first); err != nil {
				t.Fatal(err)
			}
			if h, m := counts(b.decoded); h != hits+1 || m != misses {
				t.Fatalf("get of the object just created: %d hits, %d misses, want %d, %d", h, m, hits+1, misses)
			}
			if !reflect.DeepEqual(first, created) {
				t.Fatalf("get from the cache = %+v, want %+v", first, created)
			}
			first.Labels = map[string]string{"changed": "by the caller"}
			first.Spec.NodeName = "changed"

			second := &example.Pod{}
			if err := s.Get(ctx, podKey("ns", "a"), storage.GetOptions{}, second); err != nil {
				t.Fatal(err)
			}
			list := &example.PodList{}
			if err := s.GetList(ctx, "/pods/ns/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 1 {
				t.Fatalf("list has %d items, want 1", len(list.Items))
			}
			for _, got := range []*example.Pod{second, &list.Items[0]} {
				if !reflect.DeepEqual(got, created) {
					t.Fatalf("read after the caller changed its copy = %+v, want %+v", got, created)
				}
			}
			if h, _ := counts(b.decoded); h != hits+3 {
				t.Fatalf("%d hits after two gets and a list, want %d", h, hits+3)
			}

			updated := relabel(ctx, t, s, "ns", "a", "v2")
			third := &example.Pod{}
			if err := s.Get(ctx, podKey("ns", "a"), storage.GetOptions{}, third); err != nil {
				t.Fatal(err)
			}
			if third.Labels["value"] != "v2" || revisionOf(t, third) != revisionOf(t, updated) {
				t.Fatalf("get after an update = %+v at %d, want the label v2 at %d", third.Labels, revisionOf(t, third), revisionOf(t, updated))
			}

			// Another store has its own codec: it decodes for itself.
			other := podStore(t, b, nil)
			_, misses = counts(b.decoded)
			if err := other.Get(ctx, podKey("ns", "a"), storage.GetOptions{}, &example.Pod{}); err != nil {
				t.Fatal(err)
			}
			if _, m := counts(b.decoded); m != misses+1 {
				t.Fatalf("another store's get: %d misses, want %d", m, misses+1)
			}
		})
	}
}

// TestListsShareDecodedObjects: lists take their items from the cache without
// a deep copy — the items of two lists share their maps with each other and
// with what the first one decoded — while a get still gets a copy of its own.
func TestListsShareDecodedObjects(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t, dialect, Config{})
			s := podStore(t, b, nil)
			createPod(ctx, t, s, "ns", "a")
			relabel(ctx, t, s, "ns", "a", "v1")
			// Another store decodes for itself: its first list misses.
			other := podStore(t, b, nil)
			labels := func() uintptr {
				t.Helper()
				list := &example.PodList{}
				if err := other.GetList(ctx, "/pods/ns/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
					t.Fatal(err)
				}
				if len(list.Items) != 1 || list.Items[0].Labels == nil {
					t.Fatalf("list = %+v, want one labelled pod", list.Items)
				}
				return reflect.ValueOf(list.Items[0].Labels).Pointer()
			}
			_, misses := counts(b.decoded)
			first, second := labels(), labels()
			if _, m := counts(b.decoded); m != misses+1 {
				t.Fatalf("two lists: %d misses, want 1", m-misses)
			}
			if first != second {
				t.Fatal("two lists of one object hold two copies of it")
			}
			got := &example.Pod{}
			if err := other.Get(ctx, podKey("ns", "a"), storage.GetOptions{}, got); err != nil {
				t.Fatal(err)
			}
			if reflect.ValueOf(got.Labels).Pointer() == first {
				t.Fatal("a get shares the labels of the lists' object")
			}
		})
	}
}

// threePods is a backend of dialect with a pod store holding pods a, b and c
// of namespace ns.
func threePods(ctx context.Context, t *testing.T, dialect string) (*Backend, *Store) {
	t.Helper()
	b := newBackend(t, dialect, Config{})
	s := podStore(t, b, nil)
	for _, name := range []string{"a", "b", "c"} {
		createPod(ctx, t, s, "ns", name)
	}
	return b, s
}

// TestPagesOfCachedObjectsHoldTheCachesValues: a list page, at the current
// revision or an older one, holds of a row whose object the cache holds at
// the row's revision the cache's own value, not a copy, and its entry; of any
// other row, a copy of what the cursor read.
func TestPagesOfCachedObjectsHoldTheCachesValues(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b, s := threePods(ctx, t, dialect)
			// Another store writes b anew: s's cache still holds its first version.
			other := podStore(t, b, nil)
			relabel(ctx, t, other, "ns", "b", "v1")
			current, _, err := b.db.revisions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			podType := reflect.TypeOf(&example.Pod{})
			for _, revision := range []int64{0, current} {
				pg, err := b.db.list(ctx, listQuery{r: prefixRange("/pods/ns/"), revision: revision, keep: s.cachedValue(podType)})
				if err != nil {
					t.Fatal(err)
				}
				if len(pg.rows) != 3 {
					t.Fatalf("at revision %d: %d rows, want 3", revision, len(pg.rows))
				}
				for _, r := range pg.rows {
					d, ok := b.decoded.latest(s.id, r.key, podType)
					if !ok {
						t.Fatalf("the cache lost %s", r.key)
					}
					shared := &r.value[0] == &d.stored[0]
					want := r.key != podKey("ns", "b")
					if shared != want {
						t.Errorf("at revision %d, %s: the page holds the cache's value %v, want %v", revision, r.key, shared, want)
					}
					// The page hands the cache's entry on, so that the
					// list need not look it up again.
					if found := r.decoded == d; found != want || (!want && r.decoded != nil) {
						t.Errorf("at revision %d, %s: the page holds the cache's entry %v, want %v", revision, r.key, found, want)
					}
				}
			}
		})
	}
}

// TestRecycledPagesKeepNoRows: a list reads its page into the array of rows
// the page before it left, and an array given back keeps no key or value.
func TestRecycledPagesKeepNoRows(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b, s := threePods(ctx, t, dialect)
			q := listQuery{r: prefixRange("/pods/ns/"), keep: s.cachedValue(reflect.TypeOf(&example.Pod{}))}
			first, err := b.db.list(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			array := &first.rows[:1][0]
			b.db.recycle(first)
			for i, r := range first.rows[:cap(first.rows)] {
				if r.key != "" || r.value != nil || r.decoded != nil {
					t.Fatalf("row %d of a recycled page still holds %q", i, r.key)
				}
			}
			second, err := b.db.list(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(second.rows) != 3 || second.rows[2].key != podKey("ns", "c") {
				t.Fatalf("the second page = %+v, want a, b, c", second.rows)
			}
			if &second.rows[0] != array {
				t.Error("the second page was not read into the array the first gave back")
			}
		})
	}
}

// TestWatchersShareADecodedChange: every watcher of a change gets the object
// the first one decoded, each as a copy of its own.
func TestWatchersShareADecodedChange(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, "sqlite", Config{})
	s := podStore(t, b, nil)
	created := createPod(ctx, t, s, "ns", "a")
	watchers := []watch.Interface{
		watchFrom(t, s, "/pods/ns/", revisionOf(t, created)),
		watchFrom(t, s, "/pods/ns/", revisionOf(t, created)),
		watchFrom(t, s, "/pods/ns/", revisionOf(t, created)),
	}
	waitRegistered(t, b.hub, len(watchers))
	hits, _ := counts(b.decoded)
	relabel(ctx, t, s, "ns", "a", "v2")
	var seen []*example.Pod
	for _, w := range watchers {
		ev := nextEvent(t, w)
		pod := ev.Object.(*example.Pod)
		if pod.Labels["value"] != "v2" {
			t.Fatalf("watch event %+v, want the label v2", pod.Labels)
		}
		pod.Labels["value"] = "changed by a watcher"
		seen = append(seen, pod)
	}
	if seen[0] == seen[1] || seen[1] == seen[2] {
		t.Fatal("watchers were handed one object")
	}
	if h, _ := counts(b.decoded); h < hits+int64(len(watchers))-1 {
		t.Fatalf("%d hits for %d watchers of one change, want at least %d", h-hits, len(watchers), len(watchers)-1)
	}
}

// countingCodec counts its decodings.
type countingCodec struct {
	runtime.Codec
	decodes atomic.Int64
}

func (c *countingCodec) Decode(data []byte, gvk *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	c.decodes.Add(1)
	return c.Codec.Decode(data, gvk, into)
}

// TestAWriteAndItsWatcherDecodeItOnce: a change is decoded once, whether the
// write that made it (which answers with the object it stored) or a watcher
// of it decodes it first; the other copies it.
func TestAWriteAndItsWatcherDecodeItOnce(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t, dialect, Config{})
			codec := &countingCodec{Codec: apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)}
			s := newStore(t, b, "/pods/", nil, codec)
			created := createPod(ctx, t, s, "ns", "a")
			w := watchFrom(t, s, "/pods/ns/", revisionOf(t, created))
			waitRegistered(t, b.hub, 1)
			for i, value := range []string{"v1", "v2", "v3"} {
				before := codec.decodes.Load()
				updated := relabel(ctx, t, s, "ns", "a", value)
				ev := nextEvent(t, w)
				if !reflect.DeepEqual(ev.Object, updated) {
					t.Fatalf("update %d: watched %+v, wrote %+v", i, ev.Object, updated)
				}
				if n := codec.decodes.Load() - before; n != 1 {
					t.Fatalf("update %d and its watch event: %d decodings, want 1", i, n)
				}
			}
			before := codec.decodes.Load()
			made := createPod(ctx, t, s, "ns", "b")
			if ev := nextEvent(t, w); !reflect.DeepEqual(ev.Object, made) {
				t.Fatalf("watched %+v, created %+v", ev.Object, made)
			}
			if n := codec.decodes.Load() - before; n != 1 {
				t.Fatalf("a create and its watch event: %d decodings, want 1", n)
			}
		})
	}
}

// TestWatchersGetWhatTheirOwnDecodingGives: where a store's Go type is both its
// external and its internal type (as every type warren serves), an object
// decoded into a new one keeps its kind and a watch's decoding clears it; a
// watcher handed the write's decoding gets what its own would have given.
func TestWatchersGetWhatTheirOwnDecodingGives(t *testing.T) {
	ctx := context.Background()
	sameType := runtime.NewScheme()
	internal := schema.GroupVersion{Group: examplev1.GroupName, Version: runtime.APIVersionInternal}
	for _, gv := range []schema.GroupVersion{examplev1.SchemeGroupVersion, internal} {
		sameType.AddKnownTypes(gv, &examplev1.Pod{}, &examplev1.PodList{})
	}
	metav1.AddToGroupVersion(sameType, examplev1.SchemeGroupVersion)
	factory := serializer.NewCodecFactory(sameType)
	info, _ := runtime.SerializerInfoForMediaType(factory.SupportedMediaTypes(), runtime.ContentTypeJSON)
	codec := factory.CodecForVersions(info.Serializer, factory.UniversalDeserializer(), examplev1.SchemeGroupVersion, internal)
	b := newBackend(t, "sqlite", Config{})
	s, err := b.NewStore(ResourceConfig{
		Codec:          codec,
		NewFunc:        func() runtime.Object { return &examplev1.Pod{} },
		NewListFunc:    func() runtime.Object { return &examplev1.PodList{} },
		ResourcePrefix: "/pods/",
		GroupResource:  schema.GroupResource{Resource: "pods"},
	})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := b.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := watchFrom(t, s, "/pods/ns/", rev)
	waitRegistered(t, b.hub, 1)
	out := &examplev1.Pod{}
	if err := s.Create(ctx, podKey("ns", "a"), &examplev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns"}}, out, 0); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, w)
	data, err := runtime.Encode(codec, out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := runtime.Decode(codec, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.versioner.UpdateObject(want, uint64(revisionOf(t, out))); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ev.Object, want) {
		t.Fatalf("watched %#v\nwant, as a watch decodes it, %#v", ev.Object, want)
	}
}

// staleSwitch is a transformer that stores values as they are and calls them
// stale once told to, as a transformer does after its key is rotated.
type staleSwitch struct{ stale atomic.Bool }

func (s *staleSwitch) TransformFromStorage(_ context.Context, data []byte, _ value.Context) ([]byte, bool, error) {
	return data, s.stale.Load(), nil
}

func (s *staleSwitch) TransformToStorage(_ context.Context, data []byte, _ value.Context) ([]byte, error) {
	return data, nil
}

// TestCachedStateStillAsksTheTransformer: an update that changes nothing still
// rewrites a value its transformer calls stale when it starts from the version
// in the cache (the way encrypted objects are moved to a new key).
func TestCachedStateStillAsksTheTransformer(t *testing.T) {
	ctx := context.Background()
	b, counting := newCountingBackend(t, "sqlite", Config{})
	transformer := &staleSwitch{}
	s := podStore(t, b, transformer)
	created := createPod(ctx, t, s, "ns", "a")
	transformer.stale.Store(true)
	gets := counting.gets.Load()
	out := &example.Pod{}
	if err := s.GuaranteedUpdate(ctx, podKey("ns", "a"), out, false, nil,
		func(obj runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
			return obj, nil, nil
		}, nil); err != nil {
		t.Fatal(err)
	}
	if n := counting.gets.Load() - gets; n != 0 {
		t.Fatalf("the update read the key %d times, want 0: it did not start from the cached state", n)
	}
	if revisionOf(t, out) == revisionOf(t, created) {
		t.Fatalf("a stale value was not rewritten: still at revision %d", revisionOf(t, out))
	}
}

// TestDecodedCacheMatchesBytesAndTypes: an entry serves only the bytes and the
// object type it was decoded from; a cache turned off serves nothing.
func TestDecodedCacheMatchesBytesAndTypes(t *testing.T) {
	c := newDecodedCache(1 << 20)
	k := decodedKey{store: 1, key: "/pods/ns/a", revision: 7}
	pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a", ResourceVersion: "7"}}
	c.put(k, []byte("value"), pod, []byte("stored value"))
	podType := reflect.TypeOf(pod)
	if _, ok := c.get(k, []byte("value"), podType); !ok {
		t.Fatal("the entry just put is not served")
	}
	if _, ok := c.get(k, []byte("other value at the same revision"), podType); ok {
		t.Fatal("an entry was served for other bytes")
	}
	if _, ok := c.get(decodedKey{store: 1, key: "/pods/ns/a", revision: 6}, []byte("value"), podType); ok {
		t.Fatal("an entry was served for another revision")
	}
	older := decodedKey{store: 1, key: "/pods/ns/a", revision: 5}
	c.put(older, []byte("older value"), pod, []byte("older stored value"))
	if _, ok := c.get(k, []byte("value"), podType); !ok {
		t.Fatal("an older version replaced the newer one")
	}
	if _, ok := c.get(k, []byte("value"), reflect.TypeOf(&example.PodList{})); ok {
		t.Fatal("an entry was served as another type")
	}
	if _, ok := c.get(decodedKey{store: 1, key: "/pods/ns/a", revision: 7, form: formWatch}, []byte("value"), nil); ok {
		t.Fatal("an entry was served for another form of decoding")
	}
	pod.Name = "changed after put"
	got, _ := c.get(k, []byte("value"), podType)
	if got.(*example.Pod).Name != "a" {
		t.Fatalf("the cache kept the caller's object, not a copy: name %q", got.(*example.Pod).Name)
	}

	off := newDecodedCache(-1)
	off.put(k, []byte("value"), pod, []byte("stored value"))
	if _, ok := off.get(k, []byte("value"), podType); ok {
		t.Fatal("a cache turned off served an entry")
	}
	b := newBackend(t, "sqlite", Config{DecodedCacheSize: -1})
	s := podStore(t, b, nil)
	created := createPod(context.Background(), t, s, "ns", "a")
	got2 := &example.Pod{}
	if err := s.Get(context.Background(), podKey("ns", "a"), storage.GetOptions{}, got2); err != nil || !reflect.DeepEqual(got2, created) {
		t.Fatalf("get without a cache = %+v, %v; want %+v", got2, err, created)
	}
	list := &example.PodList{}
	if err := s.GetList(context.Background(), "/pods/ns/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil || len(list.Items) != 1 || !reflect.DeepEqual(&list.Items[0], created) {
		t.Fatalf("list without a cache = %+v, %v; want %+v", list.Items, err, created)
	}
}

// TestUpdatesStartFromTheLatestVersionKnown: an update of an object this
// process wrote or read starts from that version without reading the key; when
// another process changed it meanwhile, the update is made again on the current
// version, keeping the other process's change.
func TestUpdatesStartFromTheLatestVersionKnown(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b, counting := newCountingBackend(t, dialect, Config{})
			s := podStore(t, b, nil)
			createPod(ctx, t, s, "ns", "a")
			gets := counting.gets.Load()
			relabel(ctx, t, s, "ns", "a", "v2")
			if n := counting.gets.Load() - gets; n != 0 {
				t.Fatalf("an update after a create read the key %d times, want 0", n)
			}

			// Another store (as another process would) changes the pod: the
			// version this one knows is stale.
			other := podStore(t, b, nil)
			if err := other.GuaranteedUpdate(ctx, podKey("ns", "a"), &example.Pod{}, false, nil,
				func(obj runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
					pod := obj.(*example.Pod)
					pod.Spec.NodeName = "set elsewhere"
					return pod, nil, nil
				}, nil); err != nil {
				t.Fatal(err)
			}
			got := relabel(ctx, t, s, "ns", "a", "v3")
			if got.Labels["value"] != "v3" || got.Spec.NodeName != "set elsewhere" {
				t.Fatalf("update from a stale version = labels %v, node %q; want v3 and the other process's node", got.Labels, got.Spec.NodeName)
			}

			// A deleted key is not guessed at: an update finds it gone.
			if err := s.Delete(ctx, podKey("ns", "a"), &example.Pod{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			err := s.GuaranteedUpdate(ctx, podKey("ns", "a"), &example.Pod{}, false, nil,
				func(obj runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
					return obj, nil, nil
				}, nil)
			if !storage.IsNotFound(err) {
				t.Fatalf("update of a deleted pod: %v, want NotFound", err)
			}
		})
	}
}

// TestGetNoOlderThanARevisionFromTheCache: a get asked for a version no
// older than a revision, where the caller allows it, is answered from the
// newest version the process knows when that is at least the revision, and
// from the database otherwise, when asked for the current version, or where
// the caller does not allow it (API requests).
func TestGetNoOlderThanARevisionFromTheCache(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b, counting := newCountingBackend(t, dialect, Config{})
			s := podStore(t, b, nil)
			created := createPod(ctx, t, s, "ns", "a")
			rv := created.ResourceVersion
			allowed := AllowNewestKnown(ctx)
			for _, c := range []struct {
				ctx             context.Context
				resourceVersion string
				reads           uint64
			}{
				{allowed, rv, 0},
				{allowed, fmt.Sprint(revisionOf(t, created) - 1), 0},
				{allowed, "", 1},
				{allowed, "0", 1},
				{allowed, fmt.Sprint(revisionOf(t, created) + 1), 1},
				{ctx, rv, 1},
			} {
				gets := counting.gets.Load()
				out := &example.Pod{}
				err := s.Get(c.ctx, podKey("ns", "a"), storage.GetOptions{ResourceVersion: c.resourceVersion}, out)
				if n := counting.gets.Load() - gets; n != c.reads {
					t.Errorf("get no older than %q read the database %d times, want %d", c.resourceVersion, n, c.reads)
				}
				if err == nil && !reflect.DeepEqual(out, created) {
					t.Errorf("get no older than %q = %+v, want %+v", c.resourceVersion, out, created)
				}
			}
		})
	}
}

// TestDecodedCacheHoldsItsBudget: what a full cache holds of objects decoded
// from a dense encoding (protobuf), in real memory, stays within its budget
// give or take a quarter.
func TestDecodedCacheHoldsItsBudget(t *testing.T) {
	info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	if !ok {
		t.Fatal("no protobuf serializer")
	}
	codec := codecs.CodecForVersions(info.Serializer, codecs.UniversalDeserializer(), examplev1.SchemeGroupVersion, runtime.InternalGroupVersioner)
	const budget = 8 << 20
	c := newDecodedCache(budget)
	var before, after goruntime.MemStats
	// Twice: what earlier tests left in pools survives one collection.
	goruntime.GC()
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	for i := range 40_000 {
		name := fmt.Sprintf("pod-%06d", i)
		pod := &example.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: "ns", UID: types.UID(fmt.Sprintf("%08x-4d7c-4b1e-9b8f-2c3d4e5f6a7b", i)), ResourceVersion: fmt.Sprint(i + 1),
				Labels: map[string]string{"app": "bench"}, Annotations: map[string]string{"kcp.io/cluster": "2x7k9q1m4n5b6"},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "example.apiserver.k8s.io/v1",
					FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:nodeName":{}}}`)}}},
			},
			Spec: example.PodSpec{NodeName: "node-1"},
		}
		data, err := runtime.Encode(codec, pod)
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := codec.Decode(data, nil, &example.Pod{})
		if err != nil {
			t.Fatal(err)
		}
		c.put(decodedKey{store: 1, key: "/pods/ns/" + name, revision: int64(i + 1)}, data, obj, data)
	}
	c.entries.CleanUp()
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d entries, %d bytes of heap for a budget of %d", c.entries.EstimatedSize(), held, budget)
	if held > budget*5/4 || held < budget*3/4 {
		t.Fatalf("a cache of %d bytes holds %d bytes of heap", budget, held)
	}
	goruntime.KeepAlive(c)
}
