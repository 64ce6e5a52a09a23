package tenancy

import (
	"context"
	"fmt"
	"slices"
	"sync"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
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

// BindingFinalizer holds a deleted APIBinding until the consumer's objects of
// the resources it bound are deleted; kcp's name for it.
const BindingFinalizer = "apis.kcp.io/apibinding-finalizer"

// BoundObjects deletes the objects a binding's resources hold in its cluster.
type BoundObjects interface {
	DeleteBound(ctx context.Context, cluster logicalcluster.Name, binding string) error
}

// BindingStores are the resources the binding controller reads and writes.
type BindingStores struct {
	Bindings Store
	// BindingStatus writes only the status of bindings.
	BindingStatus rest.Updater
	Exports       rest.Watcher
	// ExportGetter and SchemaGetter read exports and their
	// APIResourceSchemas on any shard (Index.Exports, Index.Schemas);
	// Schemas keeps the copies of bound schemas on this one; CRDs are the
	// consumer's own CustomResourceDefinitions.
	ExportGetter rest.Getter
	SchemaGetter rest.Getter
	Schemas      interface {
		rest.Getter
		rest.Creater
		rest.Lister
		rest.Watcher
	}
	CRDs interface {
		rest.Lister
		rest.Watcher
	}
	// Objects deletes what a deleted binding bound.
	Objects BoundObjects
}

// Bindings binds APIBindings, as kcp's binding controller does: it finds a
// binding's export (by path, or in the binding's own workspace), requires its
// identity and its schemas, and records in status.boundResources what the
// consumer's API then serves — each exported resource under the export's
// identity hash — with phase Bound and kcp's conditions. A resource the
// consumer already serves (its own CRD, or another binding's) is a naming
// conflict: the binding waits, and is decided again whenever a CRD or another
// binding of its workspace changes or goes — never stuck on a conflict that is
// gone (kcp#1822). Every change of an export brings back at once the bindings of
// it: a binding whose export is deleted says so (APIExportValid false) and
// keeps what it bound, so the consumer's objects stay readable and deletable;
// one whose export or identity was missing binds.
//
// A deleted binding keeps serving its resources, refusing creates, until every
// object of them in the consumer is deleted; then it goes.
//
// One controller serves every cluster through one wildcard watch; a Bound
// binding costs nothing.
type Bindings struct {
	stores     BindingStores
	index      *Index
	controller *clusterwatch.Controller

	// byExport lists the bindings of each export, by the export's cluster
	// and name: those that bound it (from the watch) and those waiting for
	// it.
	byExport refIndex[exportRef]
	// mu guards exportOf, the export each binding is listed under.
	mu       sync.Mutex
	exportOf map[clusterwatch.Ref]exportRef
	// conflicted lists the bindings in a naming conflict, by cluster.
	conflicted refIndex[logicalcluster.Name]
	// changed is told the cluster of every binding that changes.
	changed func(logicalcluster.Name)
	// exportBound, if set, is told when an export gets its first binding or
	// loses its last; set before Run.
	exportBound func(exportRef)
}

// exportRef names an export by its logical cluster.
type exportRef struct {
	cluster logicalcluster.Name
	name    string
}

// NewBindings returns the controller; changed is told the cluster of every
// binding that changes (Lifecycle.Wake).
func NewBindings(stores BindingStores, index *Index, changed func(logicalcluster.Name)) *Bindings {
	b := &Bindings{stores: stores, index: index, changed: changed, exportOf: map[clusterwatch.Ref]exportRef{}}
	b.controller = &clusterwatch.Controller{Name: "apibindings", Source: stores.Bindings, Sync: b.sync, Settled: bound, Workers: 4, Observe: b.observe}
	return b
}

// Run works until ctx ends.
func (b *Bindings) Run(ctx context.Context) {
	go clusterwatch.Follow(ctx, b.stores.Exports, nil, func(ev clusterwatch.Event) {
		if export, ok := ev.Object.(*apisv1alpha2.APIExport); ok {
			b.exportChanged(exportRef{cluster: ev.Cluster, name: export.Name})
		}
	})
	go clusterwatch.Follow(ctx, b.stores.CRDs, nil, func(ev clusterwatch.Event) { b.clusterChanged(ev.Cluster, clusterwatch.Ref{}) })
	b.controller.Run(ctx)
}

// observe lists every binding under the export it bound, so that a change of
// the export reaches it even while it is settled.
func (b *Bindings) observe(ev clusterwatch.Event) {
	binding, ok := ev.Object.(*apisv1alpha2.APIBinding)
	if !ok {
		return
	}
	r := clusterwatch.Ref{Cluster: ev.Cluster, Name: binding.Name}
	b.clusterChanged(ev.Cluster, r)
	b.changed(ev.Cluster)
	if ev.Type == watch.Deleted {
		b.unwait(r)
		b.resolved(r)
		return
	}
	if c, ref := binding.Status.APIExportClusterName, binding.Spec.Reference.Export; c != "" && ref != nil {
		b.wait(exportRef{cluster: logicalcluster.Name(c), name: ref.Name}, r)
	}
}

// bound tells a binding that is bound and up to date.
func bound(obj runtime.Object) bool {
	binding := obj.(*apisv1alpha2.APIBinding)
	return binding.Status.Phase == apisv1alpha2.APIBindingPhaseBound && binding.DeletionTimestamp == nil &&
		conditions.IsTrue(binding, apisv1alpha2.BindingUpToDate) && conditions.IsTrue(binding, apisv1alpha2.APIExportValid) &&
		claimsApplied(binding)
}

func (b *Bindings) sync(ctx context.Context, r clusterwatch.Ref) error {
	obj, err := b.stores.Bindings.Get(in(ctx, r.Cluster), r.Name, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		b.unwait(r)
		b.resolved(r)
		return nil
	}
	if err != nil {
		return err
	}
	binding := obj.(*apisv1alpha2.APIBinding)
	if binding.DeletionTimestamp != nil {
		b.unwait(r)
		b.resolved(r)
		return b.finalize(ctx, r, binding)
	}
	if binding.Spec.Reference.Export == nil {
		return nil
	}
	next := binding.DeepCopy()
	waitErr := b.bind(ctx, r, next)
	if next.Status.Phase == "" {
		next.Status.Phase = apisv1alpha2.APIBindingPhaseBinding
	}
	conditions.SetSummary(next, conditions.WithConditions(apisv1alpha2.InitialBindingCompleted))
	if !equality.Semantic.DeepEqual(next.Status, binding.Status) {
		if _, err := update(ctx, b.stores.BindingStatus, r.Cluster, r.Name, func(obj runtime.Object) {
			obj.(*apisv1alpha2.APIBinding).Status = next.Status
		}); err != nil {
			return err
		}
	}
	return waitErr
}

// finalize deletes the objects of what a deleted binding bound, then lets the
// binding go.
func (b *Bindings) finalize(ctx context.Context, r clusterwatch.Ref, binding *apisv1alpha2.APIBinding) error {
	if !slices.Contains(binding.Finalizers, BindingFinalizer) {
		return nil
	}
	if err := b.stores.Objects.DeleteBound(ctx, r.Cluster, r.Name); err != nil {
		next := binding.DeepCopy()
		conditions.MarkFalse(next, apisv1alpha2.BindingResourceDeleteSuccess, "ResourceDeletionFailed", conditionsv1alpha1.ConditionSeverityError, "%v", err)
		if _, werr := update(ctx, b.stores.BindingStatus, r.Cluster, r.Name, func(obj runtime.Object) {
			obj.(*apisv1alpha2.APIBinding).Status = next.Status
		}); werr != nil {
			return fmt.Errorf("%w (and recording it: %v)", err, werr)
		}
		return err
	}
	_, err := update(ctx, b.stores.Bindings, r.Cluster, r.Name, func(obj runtime.Object) {
		x := obj.(*apisv1alpha2.APIBinding)
		x.Finalizers = slices.DeleteFunc(x.Finalizers, func(f string) bool { return f == BindingFinalizer })
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// bind computes the status of binding; it returns Waiting while the binding
// cannot be bound yet.
func (b *Bindings) bind(ctx context.Context, r clusterwatch.Ref, binding *apisv1alpha2.APIBinding) error {
	ref := binding.Spec.Reference.Export
	exportCluster, path := r.Cluster, string(r.Cluster)
	if ref.Path != "" {
		path = ref.Path
		c, err := b.index.Resolve(ctx, ref.Path)
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
			return err
		}
		if err != nil {
			return b.exportInvalid(binding, r, exportRef{}, apisv1alpha2.APIExportNotFoundReason, "APIExport %s|%s not found", path, ref.Name)
		}
		exportCluster = c.Name
	}
	at := exportRef{cluster: exportCluster, name: ref.Name}
	obj, err := b.stores.ExportGetter.Get(in(ctx, exportCluster), ref.Name, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return b.exportInvalid(binding, r, at, apisv1alpha2.APIExportNotFoundReason, "APIExport %s|%s not found", path, ref.Name)
	}
	if err != nil {
		return err
	}
	export := obj.(*apisv1alpha2.APIExport)
	binding.Status.ExportPermissionClaims = export.Spec.PermissionClaims
	if export.Status.IdentityHash == "" {
		return b.exportInvalid(binding, r, at, "MissingIdentityHash", "APIExport %s|%s is missing status.identityHash", path, ref.Name)
	}
	if binding.Status.APIExportClusterName == "" {
		binding.Status.APIExportClusterName = string(exportCluster)
	}
	// Objects are stored under the identity they were bound with: a binding
	// never moves to another (a re-created export's), which would strand them.
	for _, r := range binding.Status.BoundResources {
		if r.Schema.IdentityHash != export.Status.IdentityHash {
			conditions.MarkFalse(binding, apisv1alpha2.APIExportValid, apisv1alpha2.APIExportInvalidReferenceReason, conditionsv1alpha1.ConditionSeverityError,
				"APIExport %s|%s has identity %s, but resources are bound under identity %s", path, ref.Name, export.Status.IdentityHash, r.Schema.IdentityHash)
			return nil
		}
	}
	var resources []apisv1alpha2.BoundAPIResource
	for _, res := range export.Spec.Resources {
		if res.Storage.CRD == nil {
			continue
		}
		obj, err := b.stores.SchemaGetter.Get(in(ctx, exportCluster), res.Schema, &metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return b.exportInvalid(binding, r, at, apisv1alpha2.InternalErrorReason,
				"Invalid APIExport. Please contact the APIExport owner to resolve: APIResourceSchema %q not found", res.Schema)
		}
		if err != nil {
			return err
		}
		schema := obj.(*apisv1alpha1.APIResourceSchema)
		if err := keepSchema(ctx, b.stores.Schemas, schema); err != nil {
			return err
		}
		if conflict, err := b.conflict(ctx, r, schema); err != nil || conflict != "" {
			if err != nil {
				return err
			}
			b.conflicts(r)
			for _, t := range []conditionsv1alpha1.ConditionType{apisv1alpha2.BindingUpToDate, apisv1alpha2.InitialBindingCompleted} {
				if t == apisv1alpha2.InitialBindingCompleted && conditions.IsTrue(binding, t) {
					continue
				}
				conditions.MarkFalse(binding, t, apisv1alpha2.NamingConflictsReason, conditionsv1alpha1.ConditionSeverityError, "Unable to bind APIs: %s", conflict)
			}
			// Not retried: the change that ends the conflict brings it back
			// (clusterChanged).
			return nil
		}
		var storageVersions []string
		for _, v := range schema.Spec.Versions {
			if v.Storage {
				storageVersions = append(storageVersions, v.Name)
			}
		}
		resources = append(resources, apisv1alpha2.BoundAPIResource{
			Group:           schema.Spec.Group,
			Resource:        schema.Spec.Names.Plural,
			Schema:          apisv1alpha2.BoundAPIResourceSchema{Name: schema.Name, UID: string(schema.UID), IdentityHash: export.Status.IdentityHash},
			StorageVersions: storageVersions,
		})
	}
	b.wait(at, r)
	b.resolved(r)
	binding.Status.BoundResources = resources
	permissionClaims(binding, export)
	binding.Status.Phase = apisv1alpha2.APIBindingPhaseBound
	conditions.MarkTrue(binding, apisv1alpha2.APIExportValid)
	conditions.MarkTrue(binding, apisv1alpha2.InitialBindingCompleted)
	conditions.MarkTrue(binding, apisv1alpha2.BindingUpToDate)
	return nil
}

// exportInvalid marks the binding's export invalid and has the binding wait
// for a change of the export at (if it names one).
func (b *Bindings) exportInvalid(binding *apisv1alpha2.APIBinding, r clusterwatch.Ref, at exportRef, reason, format string, args ...any) error {
	severity := conditionsv1alpha1.ConditionSeverityError
	if reason == "MissingIdentityHash" {
		severity = conditionsv1alpha1.ConditionSeverityWarning
	}
	conditions.MarkFalse(binding, apisv1alpha2.APIExportValid, reason, severity, format, args...)
	if !conditions.IsTrue(binding, apisv1alpha2.InitialBindingCompleted) {
		conditions.MarkFalse(binding, apisv1alpha2.InitialBindingCompleted, apisv1alpha2.WaitingForEstablishedReason,
			conditionsv1alpha1.ConditionSeverityInfo, "Waiting for API(s) to be established")
	}
	b.wait(at, r)
	return clusterwatch.Waiting{Reason: fmt.Sprintf(format, args...)}
}

// conflict says why the consumer may not have schema's resource bound, or "":
// a CRD of its own or another binding serves the same group and resource.
func (b *Bindings) conflict(ctx context.Context, r clusterwatch.Ref, schema *apisv1alpha1.APIResourceSchema) (string, error) {
	group, plural := schema.Spec.Group, schema.Spec.Names.Plural
	obj, err := b.stores.CRDs.List(in(ctx, r.Cluster), &metainternalversion.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, crd := range obj.(*apiextensions.CustomResourceDefinitionList).Items {
		if crd.Spec.Group == group && (crd.Spec.Names.Plural == plural || crd.Status.AcceptedNames.Plural == plural) {
			return fmt.Sprintf("naming conflict with CustomResourceDefinition %q: spec.names.plural=%s is forbidden", crd.Name, plural), nil
		}
	}
	obj, err = b.stores.Bindings.List(in(ctx, r.Cluster), &metainternalversion.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, other := range obj.(*apisv1alpha2.APIBindingList).Items {
		if other.Name == r.Name {
			continue
		}
		for _, res := range other.Status.BoundResources {
			if res.Group == group && res.Resource == plural {
				export := other.Spec.Reference.Export
				return fmt.Sprintf("naming conflict with APIBinding %q bound to APIExport %s: spec.names.plural=%s is forbidden",
					other.Name, exportName(export), plural), nil
			}
		}
	}
	return "", nil
}

// exportName is how kcp's messages name the export a binding refers to.
func exportName(ref *apisv1alpha2.ExportBindingReference) string {
	if ref == nil {
		return ""
	}
	if ref.Path == "" {
		return fmt.Sprintf("%q", ref.Name)
	}
	return ref.Path + separator + ref.Name
}

// wait lists r under the export at: a change of it reconciles r again.
func (b *Bindings) wait(at exportRef, r clusterwatch.Ref) {
	if at.name == "" {
		return
	}
	var changed []exportRef
	b.mu.Lock()
	if prev, ok := b.exportOf[r]; ok && prev != at && b.byExport.remove(prev, r) {
		changed = append(changed, prev)
	}
	b.exportOf[r] = at
	if b.byExport.add(at, r) {
		changed = append(changed, at)
	}
	b.mu.Unlock()
	for _, at := range changed {
		b.exportBindingsChanged(at)
	}
}

// unwait forgets r, a binding that is gone.
func (b *Bindings) unwait(r clusterwatch.Ref) {
	b.mu.Lock()
	at, ok := b.exportOf[r]
	delete(b.exportOf, r)
	emptied := ok && b.byExport.remove(at, r)
	b.mu.Unlock()
	if emptied {
		b.exportBindingsChanged(at)
	}
}

// exportBindingsChanged tells exportBound, if set, that the export at got its
// first binding or lost its last.
func (b *Bindings) exportBindingsChanged(at exportRef) {
	if b.exportBound != nil {
		b.exportBound(at)
	}
}

// hasBindings tells whether the shard has a binding of the export at.
func (b *Bindings) hasBindings(at exportRef) bool { return b.byExport.has(at) }

// conflicts records that r is in a naming conflict in its cluster.
func (b *Bindings) conflicts(r clusterwatch.Ref) { b.conflicted.add(r.Cluster, r) }

// resolved records that r is in no naming conflict.
func (b *Bindings) resolved(r clusterwatch.Ref) { b.conflicted.remove(r.Cluster, r) }

// clusterChanged reconciles the bindings of cluster in a naming conflict but
// changed, whose cause a change of a CRD or a binding (changed) may have
// removed.
func (b *Bindings) clusterChanged(cluster logicalcluster.Name, changed clusterwatch.Ref) {
	for _, r := range b.conflicted.refs(cluster, changed) {
		b.controller.Enqueue(r)
	}
}

// ExportChanged reconciles the bindings of the export name in cluster, which
// another shard holds and changed.
func (b *Bindings) ExportChanged(cluster logicalcluster.Name, name string) {
	b.exportChanged(exportRef{cluster: cluster, name: name})
}

// exportChanged reconciles the bindings of the export at.
func (b *Bindings) exportChanged(at exportRef) {
	for _, r := range b.byExport.refs(at, clusterwatch.Ref{}) {
		b.controller.Enqueue(r)
	}
}
