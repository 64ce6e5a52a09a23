package tenancy

import (
	"context"

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
)

// VirtualWorkspacePrefix starts the URL path of an export's virtual workspace.
const VirtualWorkspacePrefix = "/services/apiexport/"

// SliceStores are the resources the endpoint slice controller reads and
// writes.
type SliceStores struct {
	Slices Store
	// SliceStatus writes only the status of slices.
	SliceStatus rest.Updater
	Exports     interface {
		rest.Getter
		rest.Watcher
	}
}

// Slices keeps every APIExportEndpointSlice's status as kcp's controllers do:
// APIExportValid tells whether its export exists, PartitionValid whether its
// partition does (warren has none: a slice naming one is invalid), and its
// endpoints list the URL of the export's virtual workspace while the shard has
// a binding of the export, none otherwise — what a provider's controller
// watches to find where to serve.
type Slices struct {
	stores     SliceStores
	index      *Index
	bindings   *Bindings
	url        string
	controller *clusterwatch.Controller
	// byExport lists the slices of each export.
	byExport refIndex[exportRef]
}

// NewSlices returns the controller; url is the shard's external URL, where its
// virtual workspaces are served, bindings the binding controller, which tells
// the exports with bindings.
func NewSlices(stores SliceStores, index *Index, bindings *Bindings, url string) *Slices {
	s := &Slices{stores: stores, index: index, bindings: bindings, url: url}
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

// observe lists every slice under the export it lists the endpoints of.
func (s *Slices) observe(ev clusterwatch.Event) {
	slice, ok := ev.Object.(*apisv1alpha1.APIExportEndpointSlice)
	if !ok {
		return
	}
	r := clusterwatch.Ref{Cluster: ev.Cluster, Name: slice.Name}
	at := exportRef{cluster: ev.Cluster, name: slice.Spec.APIExport.Name}
	if p := slice.Spec.APIExport.Path; p != "" {
		c, err := s.index.Resolve(context.Background(), p)
		if err != nil {
			return
		}
		at.cluster = c.Name
	}
	if ev.Type == watch.Deleted {
		s.byExport.remove(at, r)
		return
	}
	s.byExport.add(at, r)
}

// exportChanged reconciles the slices of the export at.
func (s *Slices) exportChanged(at exportRef) {
	for _, r := range s.byExport.refs(at, clusterwatch.Ref{}) {
		s.controller.Enqueue(r)
	}
}

func (s *Slices) sync(ctx context.Context, r clusterwatch.Ref) error {
	obj, err := s.stores.Slices.Get(in(ctx, r.Cluster), r.Name, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	slice := obj.(*apisv1alpha1.APIExportEndpointSlice)
	next := slice.DeepCopy()
	ref := slice.Spec.APIExport
	cluster, path := r.Cluster, string(r.Cluster)
	found := true
	if ref.Path != "" {
		path = ref.Path
		c, err := s.index.Resolve(ctx, ref.Path)
		if err != nil {
			found = false
		} else {
			cluster = c.Name
		}
	}
	if found {
		_, err := s.stores.Exports.Get(in(ctx, cluster), ref.Name, &metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		found = err == nil
	}
	next.Status.ShardSelector = ""
	next.Status.APIExportEndpoints = nil
	if !found {
		conditions.MarkFalse(next, apisv1alpha2.APIExportValid, apisv1alpha2.APIExportNotFoundReason, conditionsv1alpha1.ConditionSeverityError,
			"Error getting APIExport %s|%s", path, ref.Name)
	} else {
		conditions.MarkTrue(next, apisv1alpha2.APIExportValid)
	}
	if slice.Spec.Partition != "" {
		conditions.MarkFalse(next, apisv1alpha1.PartitionValid, apisv1alpha1.PartitionInvalidReferenceReason, conditionsv1alpha1.ConditionSeverityError,
			"partition %s not found: warren has no partitions", slice.Spec.Partition)
	} else {
		conditions.MarkTrue(next, apisv1alpha1.PartitionValid)
	}
	if found && slice.Spec.Partition == "" && s.bindings.hasBindings(exportRef{cluster: cluster, name: ref.Name}) {
		next.Status.APIExportEndpoints = []apisv1alpha1.APIExportEndpoint{{URL: s.url + VirtualWorkspacePrefix + string(cluster) + "/" + ref.Name}}
	}
	if equality.Semantic.DeepEqual(next.Status, slice.Status) {
		return nil
	}
	_, err = update(ctx, s.stores.SliceStatus, r.Cluster, r.Name, func(obj runtime.Object) {
		obj.(*apisv1alpha1.APIExportEndpointSlice).Status = next.Status
	})
	return err
}
