package tenancy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/rest"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	conditionsv1alpha1 "github.com/kcp-dev/sdk/apis/third_party/conditions/apis/conditions/v1alpha1"
	"github.com/kcp-dev/sdk/apis/third_party/conditions/util/conditions"

	"github.com/warren-dev/warren/tenancy/clusterwatch"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// VirtualWorkspacePrefix starts the URL path of an export's virtual workspace.
const VirtualWorkspacePrefix = "/services/apiexport/"

// SliceStores are the resources the endpoint slice controller reads and
// writes.
type SliceStores struct {
	Slices Store
	// SliceStatus writes only the status of slices.
	SliceStatus rest.Updater
	// Exports watches this shard's exports; ExportGetter reads those of
	// any shard (Index.Exports).
	Exports      rest.Watcher
	ExportGetter rest.Getter
}

// Slices keeps every APIExportEndpointSlice's status as kcp's controllers do:
// APIExportValid tells whether its export exists, PartitionValid whether its
// partition does (warren has none: a slice naming one is invalid), and its
// endpoints list the virtual workspace URL of every shard that has a binding
// of the export — what a provider's controller watches to find where to
// serve.
//
// Each shard writes its own endpoint, and only its own, into every slice of
// an export it has bindings of, wherever the slice is: into this shard's
// slices through storage, into other shards' (which the installation follows)
// through their API, each write conditional on the version read, so shards
// never undo each other's. The conditions are written by the slice's shard.
type Slices struct {
	stores     SliceStores
	index      *Index
	bindings   *Bindings
	url        string
	controller *clusterwatch.Controller
	// byExport lists the slices of each export, on every shard.
	byExport refIndex[exportRef]
	// elsewhere holds the slices of other shards as last seen.
	mu        sync.Mutex
	elsewhere map[clusterwatch.Ref]*apisv1alpha1.APIExportEndpointSlice
}

// NewSlices returns the controller; url is the shard's virtual workspace URL,
// bindings the binding controller, which tells the exports with bindings.
func NewSlices(stores SliceStores, index *Index, bindings *Bindings, url string) *Slices {
	s := &Slices{stores: stores, index: index, bindings: bindings, url: url, elsewhere: map[clusterwatch.Ref]*apisv1alpha1.APIExportEndpointSlice{}}
	s.controller = &clusterwatch.Controller{Name: "apiexportendpointslices", Source: stores.Slices, Sync: s.sync, Observe: s.observe, Workers: 2}
	bindings.exportBound = s.exportChanged
	return s
}

// Run works until ctx ends.
func (s *Slices) Run(ctx context.Context) {
	go clusterwatch.Follow(ctx, s.stores.Exports, nil, func(ev clusterwatch.Event) {
		if export, ok := ev.Object.(*apisv1alpha2.APIExport); ok {
			s.exportChanged(exportRef{cluster: ev.Cluster, name: export.Name})
		}
	})
	s.controller.Run(ctx)
}

// observe lists every slice of this shard under the export it lists the
// endpoints of.
func (s *Slices) observe(ev clusterwatch.Event) {
	if slice, ok := ev.Object.(*apisv1alpha1.APIExportEndpointSlice); ok {
		s.list(ev.Cluster, slice, ev.Type == watch.Deleted)
	}
}

// ObserveElsewhere lists slice, of cluster on another shard, under its export
// (or forgets it if gone) and reconciles this shard's endpoint in it.
func (s *Slices) ObserveElsewhere(cluster logicalcluster.Name, slice *apisv1alpha1.APIExportEndpointSlice, gone bool) {
	r := clusterwatch.Ref{Cluster: cluster, Name: slice.Name}
	s.mu.Lock()
	if gone {
		delete(s.elsewhere, r)
	} else {
		s.elsewhere[r] = slice
	}
	s.mu.Unlock()
	s.list(cluster, slice, gone)
	if !gone {
		s.controller.Enqueue(r)
	}
}

// ExportChanged reconciles the slices of the export name in cluster, which
// another shard holds and changed.
func (s *Slices) ExportChanged(cluster logicalcluster.Name, name string) {
	s.exportChanged(exportRef{cluster: cluster, name: name})
}

// list lists slice of cluster under its export, or forgets it if gone.
func (s *Slices) list(cluster logicalcluster.Name, slice *apisv1alpha1.APIExportEndpointSlice, gone bool) {
	r := clusterwatch.Ref{Cluster: cluster, Name: slice.Name}
	at, ok := s.export(context.Background(), cluster, slice)
	if gone || !ok {
		// A slice's export is immutable, so a slice is under one export.
		s.byExport.remove(at, r)
		return
	}
	s.byExport.add(at, r)
}

// export is the export slice of cluster lists the endpoints of, and whether
// its path resolves.
func (s *Slices) export(ctx context.Context, cluster logicalcluster.Name, slice *apisv1alpha1.APIExportEndpointSlice) (exportRef, bool) {
	at := exportRef{cluster: cluster, name: slice.Spec.APIExport.Name}
	if p := slice.Spec.APIExport.Path; p != "" {
		c, err := s.index.Resolve(ctx, p)
		if err != nil {
			return at, false
		}
		at.cluster = c.Name
	}
	return at, true
}

// exportChanged reconciles the slices of the export at.
func (s *Slices) exportChanged(at exportRef) {
	for _, r := range s.byExport.refs(at, clusterwatch.Ref{}) {
		s.controller.Enqueue(r)
	}
}

func (s *Slices) sync(ctx context.Context, r clusterwatch.Ref) error {
	s.mu.Lock()
	remote := s.elsewhere[r]
	s.mu.Unlock()
	if remote != nil {
		return s.syncElsewhere(ctx, r, remote)
	}
	obj, err := s.stores.Slices.Get(in(ctx, r.Cluster), r.Name, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	slice := obj.(*apisv1alpha1.APIExportEndpointSlice)
	at, resolved, found, err := s.exportOf(ctx, r, slice)
	if err != nil {
		return err
	}
	path := string(at.cluster)
	if p := slice.Spec.APIExport.Path; p != "" {
		path = p
	}
	// Applied again to the slice as stored when written: other shards'
	// endpoints written since stay.
	apply := func(slice *apisv1alpha1.APIExportEndpointSlice) {
		slice.Status.ShardSelector = ""
		if !found {
			conditions.MarkFalse(slice, apisv1alpha2.APIExportValid, apisv1alpha2.APIExportNotFoundReason, conditionsv1alpha1.ConditionSeverityError,
				"Error getting APIExport %s|%s", path, slice.Spec.APIExport.Name)
		} else {
			conditions.MarkTrue(slice, apisv1alpha2.APIExportValid)
		}
		if slice.Spec.Partition != "" {
			conditions.MarkFalse(slice, apisv1alpha1.PartitionValid, apisv1alpha1.PartitionInvalidReferenceReason, conditionsv1alpha1.ConditionSeverityError,
				"partition %s not found: warren has no partitions", slice.Spec.Partition)
		} else {
			conditions.MarkTrue(slice, apisv1alpha1.PartitionValid)
		}
		s.endpoint(slice, at, found)
	}
	next := slice.DeepCopy()
	apply(next)
	if !equality.Semantic.DeepEqual(next.Status, slice.Status) {
		if _, err := update(ctx, s.stores.SliceStatus, r.Cluster, r.Name, func(obj runtime.Object) {
			apply(obj.(*apisv1alpha1.APIExportEndpointSlice))
		}); err != nil {
			return err
		}
	}
	if !resolved {
		return clusterwatch.Waiting{Reason: "the workspace of the export is not found"}
	}
	return nil
}

// remoteTimeout bounds a write into another shard's slice, so that a shard
// that stopped answering holds no worker for long.
const remoteTimeout = 10 * time.Second

// syncElsewhere writes this shard's endpoint into slice r, as last seen, of a
// cluster another shard holds, through that shard's API. A slice whose
// cluster or export's workspace is not known yet waits; a write that lost to
// another waits for the watch to bring the newer slice.
func (s *Slices) syncElsewhere(ctx context.Context, r clusterwatch.Ref, slice *apisv1alpha1.APIExportEndpointSlice) error {
	at, resolved, found, err := s.exportOf(ctx, r, slice)
	if err != nil {
		return err
	}
	if !resolved {
		return clusterwatch.Waiting{Reason: "the workspace of the export is not found"}
	}
	next := slice.DeepCopy()
	s.endpoint(next, at, found)
	if equality.Semantic.DeepEqual(next.Status, slice.Status) {
		return nil
	}
	c, err := s.index.Cluster(ctx, r.Cluster)
	if apierrors.IsNotFound(err) {
		return clusterwatch.Waiting{Reason: "the slice's logical cluster is not known yet"}
	}
	if err != nil {
		return err
	}
	slices, err := s.index.shards.EndpointSlices(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	_, err = slices.UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return clusterwatch.Waiting{Reason: "the slice changed"}
	}
	if err != nil {
		return fmt.Errorf("writing the endpoint of shard %s into APIExportEndpointSlice %s|%s on shard %s: %w", s.index.shard, c.Name, r.Name, c.Shard, err)
	}
	return nil
}

// exportOf is the export slice r lists the endpoints of, whether its
// workspace resolves (then the slice is listed under it) and whether it
// exists.
func (s *Slices) exportOf(ctx context.Context, r clusterwatch.Ref, slice *apisv1alpha1.APIExportEndpointSlice) (at exportRef, resolved, found bool, err error) {
	at, resolved = s.export(ctx, r.Cluster, slice)
	if !resolved {
		return at, false, false, nil
	}
	s.byExport.add(at, r)
	_, err = s.stores.ExportGetter.Get(in(ctx, at.cluster), at.name, &metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return at, true, false, err
	}
	return at, true, err == nil, nil
}

// endpoint lists this shard's virtual workspace of the export at in slice
// while the export exists, the slice names no partition and the shard has a
// binding of it; any other endpoint of this shard's goes, other shards' stay,
// and the order of what stays is kept.
func (s *Slices) endpoint(slice *apisv1alpha1.APIExportEndpointSlice, at exportRef, found bool) {
	mine := s.url + VirtualWorkspacePrefix
	url := mine + string(at.cluster) + "/" + at.name
	want := found && slice.Spec.Partition == "" && s.bindings.hasBindings(at)
	var endpoints []apisv1alpha1.APIExportEndpoint
	listed := false
	for _, e := range slice.Status.APIExportEndpoints {
		switch {
		case e.URL == url && want && !listed:
			listed = true
		case strings.HasPrefix(e.URL, mine):
			continue
		}
		endpoints = append(endpoints, e)
	}
	if want && !listed {
		endpoints = append(endpoints, apisv1alpha1.APIExportEndpoint{URL: url})
	}
	slice.Status.APIExportEndpoints = endpoints
}
