package tenancy

import (
	"context"
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/rest"

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
	x := NewIndex(workspaces, clusters, &empty{}, "root", alone{})
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
