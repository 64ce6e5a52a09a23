package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/api/apitesting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/storage"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	"k8s.io/apiserver/pkg/storage/value"

	"github.com/warren-dev/warren/test/pgtest"
)

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
)

func init() {
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(scheme))
	utilruntime.Must(examplev1.AddToScheme(scheme))
}

// dialects are the databases every storage test runs on.
var dialects = []string{"sqlite", "postgres"}

// newBackend opens a fresh shard on the dialect: a new SQLite file, or a new
// Postgres schema that is dropped when the test ends.
func newBackend(t testing.TB, dialect string, cfg Config) *Backend {
	t.Helper()
	cfg.Storage, cfg.Shard = newShard(t, dialect)
	b, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("opening the %s backend: %v", dialect, err)
	}
	t.Cleanup(b.Close)
	return b
}

// newCountingBackend is newBackend with the page reads of its database counted.
func newCountingBackend(t testing.TB, kind string, cfg Config) (*Backend, *countingDialect) {
	t.Helper()
	ctx := context.Background()
	b := newBackend(t, kind, cfg) // creates and migrates the shard
	cfg = b.cfg
	b.Close()
	db, err := openDialect(ctx, cfg.Storage, cfg.Shard, nil)
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingDialect{dialect: db}
	if b, err = serve(ctx, cfg, counting); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, counting
}

// newShard returns the storage location and shard name of a new, empty shard.
func newShard(t testing.TB, dialect string) (storage, shard string) {
	t.Helper()
	if dialect == "sqlite" {
		return filepath.Join(t.TempDir(), "warren.db"), ""
	}
	return pgtest.URL(), pgtest.Schema(t, "test_")
}

// randomSuffix is 12 random hex digits: a name no other test uses.
func randomSuffix() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// testPrefix is what the test transformer puts before every stored value.
const testPrefix = "test!"

func newTestTransformer() *storagetesting.PrefixTransformer {
	return storagetesting.NewPrefixTransformer([]byte(testPrefix), false)
}

// podStore returns a store of example pods under /pods, as upstream's tests expect.
func podStore(t testing.TB, b *Backend, transformer value.Transformer) *Store {
	t.Helper()
	return newStore(t, b, "/pods/", transformer, apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion))
}

func newStore(t testing.TB, b *Backend, prefix string, transformer value.Transformer, codec runtime.Codec) *Store {
	t.Helper()
	s, err := b.NewStore(ResourceConfig{
		Codec:          codec,
		NewFunc:        func() runtime.Object { return &example.Pod{} },
		NewListFunc:    func() runtime.Object { return &example.PodList{} },
		ResourcePrefix: prefix,
		GroupResource:  schema.GroupResource{Resource: "pods"},
		Transformer:    transformer,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// increaseRV writes outside /pods and returns the revision of the write.
func increaseRV(b *Backend) storagetesting.IncreaseRVFunc {
	return func(ctx context.Context, t *testing.T) int64 {
		s := podStore(t, b, nil)
		s.resourcePrefix = "/increaserv/"
		out := &example.Pod{}
		obj := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: randomSuffix()}}
		if err := s.Create(ctx, "/increaserv/"+obj.Name, obj, out, 0); err != nil {
			t.Fatalf("increasing the revision: %v", err)
		}
		rv, err := s.versioner.ObjectResourceVersion(out)
		if err != nil {
			t.Fatal(err)
		}
		return int64(rv)
	}
}

// compaction compacts the backend to a resource version, then writes a key, as
// etcd3's compactor does (it records the compaction in a key of its own); upstream's
// tests count on the revision that write makes.
func compaction(b *Backend) storagetesting.Compaction {
	increase := increaseRV(b)
	return func(ctx context.Context, t *testing.T, resourceVersion string) {
		rv, err := storage.APIObjectVersioner{}.ParseResourceVersion(resourceVersion)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Compact(ctx, int64(rv)); err != nil {
			t.Fatal(err)
		}
		increase(ctx, t)
	}
}
