package tenancy

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/rest"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// Shard is a shard of the installation as its Shard object describes it.
type Shard struct {
	Name string
	// ExternalURL is where clients reach its workspaces: the front proxy's
	// address, or the shard's own.
	ExternalURL string
	Labels      map[string]string
	// Unschedulable shards get no new workspaces.
	Unschedulable bool
}

// ShardsGroup is the group of the installation's own processes, shards and
// front proxies: only they make and delete logical clusters on a shard, and
// nobody may impersonate it.
const ShardsGroup = "system:warren:shards"

// ShardAnnotation on a Workspace names the shard holding its logical cluster;
// only warren sets it.
const ShardAnnotation = corev1alpha1.LogicalClusterShardAnnotationKey

// UnschedulableAnnotation on a Shard keeps new workspaces off it (kcp's key).
const UnschedulableAnnotation = "experimental.core.kcp.io/unschedulable"

// Shards is what a shard knows of the installation's other shards, through
// their APIs: where new workspaces go, the logical clusters and workspace types
// the others hold, and the LogicalClusters of any shard, to make and delete.
type Shards interface {
	// Schedule picks the shard for a new workspace whose location selector is
	// selector (nil: any shard): one whose labels match, the one with the
	// fewest logical clusters. False if none matches.
	Schedule(selector labels.Selector) (Shard, bool)
	// Elsewhere returns the logical cluster name if another shard holds it.
	Elsewhere(name logicalcluster.Name) (*Cluster, bool)
	// ElsewhereAt returns the logical cluster at canonical path p if another
	// shard holds it.
	ElsewhereAt(p Path) (*Cluster, bool)
	// TypesElsewhere returns the workspace types of cluster name, by name, if
	// another shard holds it.
	TypesElsewhere(name logicalcluster.Name) (map[string]*tenancyv1alpha1.WorkspaceType, bool)
	// LogicalClusters returns the LogicalClusters of shard.
	LogicalClusters(shard string) (ShardClusters, error)
	// Exported returns what the logical cluster name exports if another
	// shard holds it: nil until that shard's APIs are listed.
	Exported(name logicalcluster.Name) (*Exported, bool)
	// EndpointSlices returns the APIExportEndpointSlices of c, a logical
	// cluster another shard holds, through that shard's API.
	EndpointSlices(c *Cluster) (EndpointSlices, error)
}

// Exported is what one logical cluster on another shard exports, as its
// shard's watches last told: never changed once made, replaced whole when any
// of it changes.
type Exported struct {
	Exports map[string]*apisv1alpha2.APIExport
	Schemas map[string]*apisv1alpha1.APIResourceSchema
}

// EndpointSlices writes the status of the APIExportEndpointSlices of one
// logical cluster on another shard.
type EndpointSlices interface {
	UpdateStatus(ctx context.Context, slice *apisv1alpha1.APIExportEndpointSlice, opts metav1.UpdateOptions) (*apisv1alpha1.APIExportEndpointSlice, error)
}

// Exports reads APIExports: those of this shard's clusters from local, those
// of clusters other shards hold from what this shard follows of them.
func (x *Index) Exports(local rest.Getter) rest.Getter {
	return acrossShards{local: local, index: x, resource: apisv1alpha2.Resource("apiexports"), get: func(e *Exported, name string) (runtime.Object, bool) {
		export, ok := e.Exports[name]
		return export, ok
	}}
}

// Schemas reads APIResourceSchemas as Exports reads APIExports.
func (x *Index) Schemas(local rest.Getter) rest.Getter {
	return acrossShards{local: local, index: x, resource: apisv1alpha1.Resource("apiresourceschemas"), get: func(e *Exported, name string) (runtime.Object, bool) {
		schema, ok := e.Schemas[name]
		return schema, ok
	}}
}

// acrossShards reads one resource of the clusters of every shard.
type acrossShards struct {
	local    rest.Getter
	index    *Index
	resource schema.GroupResource
	get      func(e *Exported, name string) (runtime.Object, bool)
}

// Get implements rest.Getter.
func (a acrossShards) Get(ctx context.Context, name string, opts *metav1.GetOptions) (runtime.Object, error) {
	if cluster, ok := logicalcluster.From(ctx); ok {
		if e, elsewhere := a.index.shards.Exported(cluster); elsewhere {
			if e == nil {
				return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("the %s of logical cluster %s, on another shard, are not listed yet", a.resource.Resource, cluster))
			}
			if obj, ok := a.get(e, name); ok {
				return obj.DeepCopyObject(), nil
			}
			return nil, apierrors.NewNotFound(a.resource, name)
		}
	}
	return a.local.Get(ctx, name, opts)
}

// ShardClusters makes, reads and deletes the LogicalClusters of one shard.
type ShardClusters interface {
	Create(ctx context.Context, lc *corev1alpha1.LogicalCluster, name logicalcluster.Name) (*corev1alpha1.LogicalCluster, error)
	Get(ctx context.Context, name logicalcluster.Name) (*corev1alpha1.LogicalCluster, error)
	// Delete starts deleting the logical cluster name: its shard deletes its
	// child workspaces, then every object in it, then its LogicalCluster.
	Delete(ctx context.Context, name logicalcluster.Name) error
}

// localClusters are the LogicalClusters of this shard, in its storage.
type localClusters struct{ store Store }

func (c localClusters) Create(ctx context.Context, lc *corev1alpha1.LogicalCluster, name logicalcluster.Name) (*corev1alpha1.LogicalCluster, error) {
	obj, err := c.store.Create(in(ctx, name), lc, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	return obj.(*corev1alpha1.LogicalCluster), nil
}

func (c localClusters) Get(ctx context.Context, name logicalcluster.Name) (*corev1alpha1.LogicalCluster, error) {
	obj, err := c.store.Get(in(ctx, name), corev1alpha1.LogicalClusterName, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return obj.(*corev1alpha1.LogicalCluster), nil
}

func (c localClusters) Delete(ctx context.Context, name logicalcluster.Name) error {
	_, _, err := c.store.Delete(in(ctx, name), corev1alpha1.LogicalClusterName, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{})
	return err
}

// locationSelector returns the selector of ws's location, nil for any shard,
// or why it is invalid.
func locationSelector(ws *tenancyv1alpha1.Workspace) (labels.Selector, error) {
	if ws.Spec.Location == nil || ws.Spec.Location.Selector == nil {
		return nil, nil
	}
	return metav1.LabelSelectorAsSelector(ws.Spec.Location.Selector)
}
