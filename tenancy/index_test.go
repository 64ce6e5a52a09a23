package tenancy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	goruntime "runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/kcp-dev/sdk/apis/core"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// empty is a resource that holds nothing, counting how often it is read.
type empty struct {
	rest.Storage
	reads int
}

func (e *empty) Get(context.Context, string, *metav1.GetOptions) (runtime.Object, error) {
	e.reads++
	return nil, apierrors.NewNotFound(tenancyv1alpha1.Resource("workspaces"), "x")
}
func (e *empty) List(context.Context, *metainternalversion.ListOptions) (runtime.Object, error) {
	return &tenancyv1alpha1.WorkspaceTypeList{}, nil
}
func (e *empty) Watch(context.Context, *metainternalversion.ListOptions) (watch.Interface, error) {
	return watch.NewFake(), nil // open, and silent
}
func (e *empty) NewList() runtime.Object { return &tenancyv1alpha1.WorkspaceTypeList{} }
func (e *empty) ConvertToTable(context.Context, runtime.Object, runtime.Object) (*metav1.Table, error) {
	return &metav1.Table{}, nil
}

// TestIndexRemembersMisses: a storm of requests to workspaces that do not
// exist costs one read each for a moment (missTTL), not one per request; a
// workspace made meanwhile by this process is found at once.
func TestIndexRemembersMisses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	workspaces, clusters := &empty{}, &empty{}
	x := NewIndex(DefaultIndexClusters, workspaces, clusters, &empty{}, "root", alone{})
	go x.Run(ctx)
	for range 100 {
		if _, err := x.Resolve(ctx, "root:nope:deeper"); !apierrors.IsNotFound(err) {
			t.Fatalf("Resolve(root:nope:deeper) = %v", err)
		}
		if _, err := x.Resolve(ctx, "zzzzzzzzzzzzz"); !apierrors.IsNotFound(err) {
			t.Fatalf("Resolve(zzzzzzzzzzzzz) = %v", err)
		}
	}
	if workspaces.reads != 1 || clusters.reads != 1 {
		t.Fatalf("200 resolutions of two missing workspaces read workspaces %d and logical clusters %d times, want once each", workspaces.reads, clusters.reads)
	}

	lc := &corev1alpha1.LogicalCluster{ObjectMeta: metav1.ObjectMeta{
		Name: corev1alpha1.LogicalClusterName, ResourceVersion: "7",
		Annotations: map[string]string{"kcp.io/path": "root:zz", tenancyv1alpha1.LogicalClusterTypeAnnotationKey: "root:universal"},
	}}
	// Once the index follows the logical clusters, what this process stores
	// is served at once.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := x.Stored("zzzzzzzzzzzzz", lc); err != nil {
			t.Fatal(err)
		}
		c, err := x.Resolve(ctx, "zzzzzzzzzzzzz")
		if err == nil && c.Path == "root:zz" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Resolve(zzzzzzzzzzzzz) after it was stored = %+v, %v", c, err)
		}
		time.Sleep(time.Millisecond)
	}

	time.Sleep(missTTL)
	if _, err := x.Resolve(ctx, "root:nope"); !apierrors.IsNotFound(err) || workspaces.reads != 2 {
		t.Fatalf("Resolve(root:nope) after missTTL = %v, %d reads; want a second read", err, workspaces.reads)
	}
}

// alone is what a shard that knows no other knows of them: nothing.
type alone struct{}

func (alone) Schedule(labels.Selector) (Shard, bool)         { return Shard{}, false }
func (alone) Elsewhere(logicalcluster.Name) (*Cluster, bool) { return nil, false }
func (alone) ElsewhereAt(Path) (*Cluster, bool)              { return nil, false }
func (alone) TypesElsewhere(logicalcluster.Name) (map[string]*tenancyv1alpha1.WorkspaceType, bool) {
	return nil, false
}
func (alone) LogicalClusters(string) (ShardClusters, error)  { return nil, errors.New("no other shard") }
func (alone) Exported(logicalcluster.Name) (*Exported, bool) { return nil, false }
func (alone) EndpointSlices(*Cluster) (EndpointSlices, error) {
	return nil, errors.New("no other shard")
}

// storedClusters stores n workspaces in the index, as the lifecycle does when
// it makes them: organizations of root, each holding up to 1,000 workspaces,
// and returns their paths.
func storedClusters(t testing.TB, x *Index, n int) []string {
	var paths []string
	store := func(name logicalcluster.Name, parent logicalcluster.Name, path Path, rv int) {
		lc := &corev1alpha1.LogicalCluster{
			ObjectMeta: metav1.ObjectMeta{
				Name: corev1alpha1.LogicalClusterName, ResourceVersion: strconv.Itoa(rv),
				Annotations: map[string]string{
					core.LogicalClusterPathAnnotationKey:            string(path),
					tenancyv1alpha1.LogicalClusterTypeAnnotationKey: "root:universal",
					corev1alpha1.LogicalClusterShardAnnotationKey:   "root",
				},
			},
			Spec: corev1alpha1.LogicalClusterSpec{Owner: &corev1alpha1.LogicalClusterOwner{
				APIVersion: "tenancy.kcp.io/v1alpha1", Resource: "workspaces", Name: path.Base(), Cluster: string(parent),
				UID: types.UID(fmt.Sprintf("%08x-0000-4000-8000-%012x", rv, rv)),
			}},
			Status: corev1alpha1.LogicalClusterStatus{Phase: corev1alpha1.LogicalClusterPhaseReady},
		}
		if err := x.Stored(name, lc); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		org := logicalcluster.Name(fmt.Sprintf("org%010d", i/1000))
		if i%1000 == 0 {
			store(org, logicalcluster.Root, RootPath.Join(fmt.Sprintf("bench-%04d", i/1000)), 2*i+1)
		}
		path := RootPath.Join(fmt.Sprintf("bench-%04d", i/1000)).Join(fmt.Sprintf("w-%06d", i))
		store(logicalcluster.Name(fmt.Sprintf("c%012d", i)), org, path, 2*i+2)
		paths = append(paths, string(path))
	}
	return paths
}

// runningIndex returns an index over sources that hold nothing, once it
// follows them (so it keeps what is stored).
func runningIndex(t testing.TB, size int) (*Index, *empty, *empty) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	workspaces, clusters := &empty{}, &empty{}
	x := NewIndex(size, workspaces, clusters, &empty{}, "root", alone{})
	go x.Run(ctx)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		storedClusters(t, x, 1)
		if _, err := x.Resolve(ctx, "root:bench-0000:w-000000"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the index does not keep what is stored")
		}
	}
	workspaces.reads, clusters.reads = 0, 0
	return x, workspaces, clusters
}

// TestIndexHoldsABigShard: in an index sized for it, every cluster of a shard
// of 100,000 workspaces is resolved without a read once the lifecycle has
// stored it, however they are visited (as a benchmark visits random
// workspaces).
func TestIndexHoldsABigShard(t *testing.T) {
	x, workspaces, clusters := runningIndex(t, 1<<17)
	paths := storedClusters(t, x, 100_000)
	ctx := context.Background()
	for _, p := range paths {
		c, err := x.Resolve(ctx, p)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", p, err)
		}
		if string(c.Path) != p || c.Phase != corev1alpha1.LogicalClusterPhaseReady || c.Parent == "" || c.Type.Name != "universal" || c.Shard != "root" {
			t.Fatalf("Resolve(%s) = %+v", p, c)
		}
	}
	if workspaces.reads != 0 || clusters.reads != 0 {
		t.Fatalf("resolving %d stored workspaces read %d workspaces and %d logical clusters, want none", len(paths), workspaces.reads, clusters.reads)
	}
}

// TestClusterCodec: a cluster reads back as it was written, whether its
// strings are shared or, once maxShared are, written out.
func TestClusterCodec(t *testing.T) {
	c := &Cluster{
		Name: "c1", Path: "root:a:b", Parent: "p1", Phase: corev1alpha1.LogicalClusterPhaseInitializing, Shard: "s1",
		Type: tenancyv1alpha1.WorkspaceTypeReference{Name: "team", Path: "root:a"},
	}
	check := func(what string) {
		t.Helper()
		got := clusterCodec{}.Decode(c.Name, clusterCodec{}.Append(nil, c))
		if *got != *c {
			t.Fatalf("%s: decoded %+v, want %+v", what, got, c)
		}
	}
	check("shared strings")
	interned.mu.Lock()
	ids, strs := maps.Clone(interned.ids), slices.Clone(interned.strings)
	interned.mu.Unlock()
	t.Cleanup(func() { // as it was, for the package's other tests
		interned.mu.Lock()
		defer interned.mu.Unlock()
		interned.ids, interned.strings = ids, strs
	})
	for i := 0; ; i++ {
		if _, ok := intern(fmt.Sprint("filler-", i)); !ok {
			break
		}
	}
	c.Parent, c.Type.Path, c.Shard = "p2", "root:b", "" // new, so not shared
	check("strings past maxShared")
}

// BenchmarkIndexMemory reports the heap the index takes per cluster it holds
// (its LogicalCluster's entry and its workspace's link), for 100,000
// workspaces, and how much of it the collector scans.
func BenchmarkIndexMemory(b *testing.B) {
	sample := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
	for b.Loop() {
		var before, after goruntime.MemStats
		goruntime.GC()
		goruntime.ReadMemStats(&before)
		metrics.Read(sample)
		scanBefore := sample[0].Value.Uint64()
		x, _, _ := runningIndex(b, 1<<17)
		storedClusters(b, x, 100_000)
		goruntime.GC()
		goruntime.ReadMemStats(&after)
		metrics.Read(sample)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/100_000, "B/cluster")
		b.ReportMetric(float64(int64(sample[0].Value.Uint64())-int64(scanBefore))/100_000, "scanned-B/cluster")
		goruntime.KeepAlive(x)
	}
}
