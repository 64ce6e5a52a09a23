package tenancy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/kcp-dev/sdk/apis/core"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
	conditionsv1alpha1 "github.com/kcp-dev/sdk/apis/third_party/conditions/apis/conditions/v1alpha1"

	"github.com/warren-dev/warren/tenancy/clusterwatch"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// Finalizer holds a deleted workspace until its children and its logical
// cluster are gone; kcp's name for it.
const Finalizer = corev1alpha1.LogicalClusterFinalizerName

// workers is how many workspaces the lifecycle controller works on at once.
const workers = 8

// Store is the storage of one resource as the registry serves it.
type Store interface {
	rest.Getter
	rest.Lister
	rest.Creater
	rest.Updater
	rest.GracefulDeleter
	rest.Watcher
}

// Eraser deletes every stored object of a logical cluster, after which the
// cluster takes no new object until it is revived.
type Eraser interface {
	EraseCluster(ctx context.Context, cluster string) (int, error)
	ReviveCluster(ctx context.Context, cluster string) error
}

// Stores are the resources workspaces are made of.
type Stores struct {
	Workspaces, WorkspaceTypes, LogicalClusters, Shards Store
	// WorkspaceStatus and LogicalClusterStatus write only status;
	// WorkspacePlacement only where a workspace is placed.
	WorkspaceStatus, LogicalClusterStatus, WorkspacePlacement rest.Updater
	Namespaces, ClusterRoles, ClusterRoleBindings             rest.Creater
	Eraser                                                    Eraser
	// APIBindings and APIExports make the default bindings of new workspaces.
	APIBindings interface {
		rest.Getter
		rest.Creater
	}
	APIExports rest.Getter
}

// Lifecycle makes workspaces real, on whichever shard holds them. For a
// workspace of this shard it makes the workspace's LogicalCluster on the shard
// the workspace is scheduled on, and follows it until it is Ready; when the
// workspace is deleted it deletes that LogicalCluster and lets the workspace go
// once it is gone. For a LogicalCluster of this shard it initialises the
// cluster from its type and makes it Ready; when it is deleted it deletes the
// cluster's child workspaces, then every object of the cluster. Each half is
// one controller over one wildcard watch for every cluster of the shard; every
// step is idempotent, so a crash at any point resumes.
type Lifecycle struct {
	stores Stores
	index  *Index
	// self is the shard served; shards the others, where workspaces of this
	// shard may have their logical clusters.
	self   Shard
	shards Shards
	// workspaces reconciles the Workspaces of this shard, clusters its
	// LogicalClusters.
	workspaces, clusters *clusterwatch.Controller
	// waiting are the logical clusters waiting for their default APIBindings,
	// for Wake.
	waiting sync.Map
	// inline are the logical clusters of this shard that their workspace's
	// sync is making and initialising itself: their LogicalClusters' events
	// queue nothing and wake no workspace while it does.
	inline sync.Map
}

// NewLifecycle returns the controller of the shard self; shards are the
// installation's others.
func NewLifecycle(stores Stores, index *Index, self Shard, shards Shards) *Lifecycle {
	l := &Lifecycle{stores: stores, index: index, self: self, shards: shards}
	l.workspaces = &clusterwatch.Controller{Name: "workspaces", Source: stores.Workspaces, Workers: workers, Sync: l.sync, Settled: settled}
	l.clusters = &clusterwatch.Controller{Name: "logicalclusters", Source: stores.LogicalClusters, Workers: workers, Sync: l.syncCluster,
		Settled: func(obj runtime.Object) bool { return settledCluster(obj) || l.madeInline(obj) }, Observe: l.ObserveCluster}
	return l
}

// madeInline tells a LogicalCluster, not being deleted, whose workspace's sync
// is making and initialising it in this process: what its events say, that
// sync knows.
func (l *Lifecycle) madeInline(obj runtime.Object) bool {
	lc, ok := obj.(*corev1alpha1.LogicalCluster)
	if !ok || lc.DeletionTimestamp != nil || lc.Status.Phase == corev1alpha1.LogicalClusterPhaseTerminating {
		return false
	}
	name, ok := lc.Annotations[logicalcluster.Annotation]
	if !ok {
		return false
	}
	_, inline := l.inline.Load(logicalcluster.Name(name))
	return inline
}

// settled tells a Ready workspace that is not being deleted: sync has nothing to
// do for it.
func settled(obj runtime.Object) bool {
	ws, ok := obj.(*tenancyv1alpha1.Workspace)
	return ok && ws.DeletionTimestamp == nil && ws.Status.Phase == corev1alpha1.LogicalClusterPhaseReady
}

// settledCluster tells a Ready LogicalCluster that is not being deleted.
func settledCluster(obj runtime.Object) bool {
	lc, ok := obj.(*corev1alpha1.LogicalCluster)
	return ok && lc.DeletionTimestamp == nil && lc.Status.Phase == corev1alpha1.LogicalClusterPhaseReady
}

// Run works until ctx ends.
func (l *Lifecycle) Run(ctx context.Context) {
	go l.clusters.Run(ctx)
	l.workspaces.Run(ctx)
}

// ObserveCluster sees a change of a LogicalCluster of any shard and has its
// workspace reconciled if this shard holds it. A Ready cluster seen as it is
// listed changes nothing its workspace waits for.
func (l *Lifecycle) ObserveCluster(ev clusterwatch.Event) {
	lc, ok := ev.Object.(*corev1alpha1.LogicalCluster)
	if ok && !(ev.Type == watch.Added && settledCluster(lc)) && !l.madeInline(lc) && lc.Spec.Owner != nil {
		l.wakeOwner(logicalcluster.Name(lc.Spec.Owner.Cluster), lc.Spec.Owner.Name)
	}
}

// ObserveElsewhere sees a change of a logical cluster another shard holds
// (one gone has no phase) and has its workspace reconciled if this shard
// holds it.
func (l *Lifecycle) ObserveElsewhere(c *Cluster) { l.wakeOwner(c.Parent, c.Path.Base()) }

// wakeOwner reconciles the workspace name in parent that owns a logical
// cluster, if it has one; one another shard holds reads as missing here, which
// costs a read.
func (l *Lifecycle) wakeOwner(parent logicalcluster.Name, name string) {
	if parent != "" && name != "" {
		l.workspaces.Enqueue(clusterwatch.Ref{Cluster: parent, Name: name})
	}
}

func (l *Lifecycle) sync(ctx context.Context, r clusterwatch.Ref) error {
	obj, err := l.stores.Workspaces.Get(in(ctx, r.Cluster), r.Name, &metav1.GetOptions{ResourceVersion: clusterwatch.SeenRevision(ctx)})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	ws := obj.(*tenancyv1alpha1.Workspace)
	switch {
	case ws.DeletionTimestamp != nil:
		return l.finalize(ctx, r.Cluster, ws)
	case ws.Status.Phase == corev1alpha1.LogicalClusterPhaseReady:
		return nil
	}
	shard := ws.Annotations[ShardAnnotation]
	if shard == "" {
		return l.schedule(ctx, r.Cluster, ws)
	}
	if shard == l.self.Name {
		name := logicalcluster.Name(ws.Spec.Cluster)
		l.inline.Store(name, struct{}{})
		defer l.inline.Delete(name)
	}
	lc, err := l.place(ctx, r.Cluster, ws, shard)
	if err != nil {
		stuck := condition(tenancyv1alpha1.WorkspaceInitialized, false, tenancyv1alpha1.WorkspaceInitializedInitializerExists, err.Error())
		return errors.Join(err, l.setStatus(ctx, r.Cluster, ws, corev1alpha1.LogicalClusterPhaseInitializing, nil, scheduled, stuck))
	}
	if lc.Status.Phase == corev1alpha1.LogicalClusterPhaseReady {
		return l.setStatus(ctx, r.Cluster, ws, corev1alpha1.LogicalClusterPhaseReady, nil, scheduled, condition(tenancyv1alpha1.WorkspaceInitialized, true, "", ""))
	}
	// The cluster's shard initialises it; its conditions say why it waits.
	set := append([]conditionsv1alpha1.Condition{scheduled}, lc.Status.Conditions...)
	if len(set) == 1 {
		set = append(set, condition(tenancyv1alpha1.WorkspaceInitialized, false, tenancyv1alpha1.WorkspaceInitializedInitializerExists,
			fmt.Sprintf("initializers still exist: %v", lc.Status.Initializers)))
	}
	if err := l.setStatus(ctx, r.Cluster, ws, corev1alpha1.LogicalClusterPhaseInitializing, lc.Status.Initializers, set...); err != nil {
		return err
	}
	return clusterwatch.Waiting{Reason: fmt.Sprintf("waiting for logical cluster %s to be initialised", lc.Name)}
}

// schedule places ws, which admission could not place, on a shard if one
// matches its location now; otherwise it says so in ws's status and waits.
func (l *Lifecycle) schedule(ctx context.Context, parent logicalcluster.Name, ws *tenancyv1alpha1.Workspace) error {
	p, err := l.index.Cluster(ctx, parent)
	if err != nil {
		return err
	}
	selector, err := locationSelector(ws)
	if err != nil {
		return err
	}
	shard, ok := l.shards.Schedule(selector)
	// One made before warren had shards has its logical cluster here.
	if _, err := (localClusters{l.stores.LogicalClusters}).Get(ctx, logicalcluster.Name(ws.Spec.Cluster)); err == nil {
		shard, ok = l.self, true
	}
	if !ok {
		unschedulable := condition(tenancyv1alpha1.WorkspaceScheduled, false, tenancyv1alpha1.WorkspaceReasonUnschedulable,
			fmt.Sprintf("no shard matches the location selector %s", selector))
		if err := l.setStatus(ctx, parent, ws, corev1alpha1.LogicalClusterPhaseScheduling, nil, unschedulable); err != nil {
			return err
		}
		return clusterwatch.Waiting{Reason: fmt.Sprintf("no shard for workspace %s", ws.Name)}
	}
	_, err = update(ctx, l.stores.WorkspacePlacement, parent, ws.Name, func(obj runtime.Object) {
		assign(obj.(*tenancyv1alpha1.Workspace), shard, p.Path)
	})
	return err
}

// Wake reconciles at once the logical cluster cluster if it waits for its
// default APIBindings: call it when an APIBinding of cluster changes.
func (l *Lifecycle) Wake(cluster logicalcluster.Name) {
	if _, ok := l.waiting.Load(cluster); ok {
		l.clusters.Enqueue(clusterwatch.Ref{Cluster: cluster, Name: corev1alpha1.LogicalClusterName})
	}
}

// scheduled is the condition of a workspace placed on a shard.
var scheduled = condition(tenancyv1alpha1.WorkspaceScheduled, true, "", "")

// condition returns a condition of type t as kcp writes them.
func condition(t conditionsv1alpha1.ConditionType, ok bool, reason, message string) conditionsv1alpha1.Condition {
	c := conditionsv1alpha1.Condition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message}
	if !ok {
		c.Status, c.Severity = corev1.ConditionFalse, conditionsv1alpha1.ConditionSeverityError
	}
	return c
}

// logicalClusters returns the LogicalClusters of shard.
func (l *Lifecycle) logicalClusters(shard string) (ShardClusters, error) {
	if shard == l.self.Name {
		return localClusters{l.stores.LogicalClusters}, nil
	}
	return l.shards.LogicalClusters(shard)
}

// place makes the LogicalCluster of ws, in parent, on shard, Initializing with
// the initializers of ws's type, unless it exists, and returns it. A cluster of
// this shard is initialised at once.
func (l *Lifecycle) place(ctx context.Context, parent logicalcluster.Name, ws *tenancyv1alpha1.Workspace, shard string) (*corev1alpha1.LogicalCluster, error) {
	p, err := l.index.Cluster(ctx, parent)
	if err != nil {
		return nil, err
	}
	if ws.Spec.Type == nil {
		return nil, fmt.Errorf("workspace %s has no type", ws.Name)
	}
	types, err := l.index.typesOf(ctx, *ws.Spec.Type)
	if err != nil {
		return nil, err
	}
	initializers, err := initializersOf(ctx, l.index, types)
	if err != nil {
		return nil, err
	}
	owner, err := Owner(ws.Annotations)
	if err != nil {
		return nil, err
	}
	name := logicalcluster.Name(ws.Spec.Cluster)
	base, _, _ := strings.Cut(ws.Spec.URL, clustersPrefix)
	phase := corev1alpha1.LogicalClusterPhaseInitializing
	if shard == l.self.Name && !hasDefaultBindings(types) {
		// Nothing to wait for: the cluster's initial objects first, then its
		// LogicalCluster, Ready — the cluster is served from its LogicalCluster
		// on, so nobody sees it without them. Should the workspace go before
		// the LogicalCluster is made, deleteCluster erases them.
		if err := initialObjects(in(ctx, name), l.stores, types, owner); err != nil {
			return nil, fmt.Errorf("initialising logical cluster %s: %w", name, err)
		}
		phase = corev1alpha1.LogicalClusterPhaseReady
	}
	lc, err := newLogicalCluster(name, p.Path.Join(ws.Name), *ws.Spec.Type, shard, base, phase, initializers, owner)
	if err != nil {
		return nil, err
	}
	lc.Spec.Owner = &corev1alpha1.LogicalClusterOwner{
		APIVersion: tenancyv1alpha1.SchemeGroupVersion.String(),
		Resource:   "workspaces",
		Name:       ws.Name,
		Cluster:    string(parent),
		UID:        ws.UID,
	}
	target, err := l.logicalClusters(shard)
	if err != nil {
		return nil, err
	}
	lc, err = target.Create(ctx, lc, name)
	if apierrors.IsAlreadyExists(err) {
		lc, err = target.Get(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("creating logical cluster %s on shard %s: %w", name, shard, err)
	}
	if lc.Spec.Owner == nil || lc.Spec.Owner.UID != ws.UID {
		return nil, fmt.Errorf("logical cluster %s belongs to another workspace", name)
	}
	if shard != l.self.Name {
		return lc, nil
	}
	if lc.Status.Phase == corev1alpha1.LogicalClusterPhaseReady {
		// Serve the cluster from now on, not from when the change is seen.
		return lc, l.index.Stored(name, lc)
	}
	// Initialise it now rather than when its controller sees it.
	lc, err = l.reconcileCluster(ctx, name, lc)
	if err != nil && !errors.As(err, new(clusterwatch.Waiting)) {
		return nil, err
	}
	return lc, nil
}

// newLogicalCluster returns the LogicalCluster of cluster name, at path, of
// type typ, on shard at url, in phase with initializers, made by owner (nil:
// by nobody, or by an admin): what kcp records of a logical cluster, its path,
// type, shard and creator in annotations.
func newLogicalCluster(name logicalcluster.Name, path Path, typ tenancyv1alpha1.WorkspaceTypeReference, shard, url string,
	phase corev1alpha1.LogicalClusterPhaseType, initializers []corev1alpha1.LogicalClusterInitializer, owner *authenticationv1.UserInfo) (*corev1alpha1.LogicalCluster, error) {
	lc := &corev1alpha1.LogicalCluster{
		ObjectMeta: metav1.ObjectMeta{
			Name: corev1alpha1.LogicalClusterName,
			// Its shard erases the cluster once it is deleted (erase).
			Finalizers: []string{Finalizer},
			Annotations: map[string]string{
				core.LogicalClusterPathAnnotationKey:            string(path),
				tenancyv1alpha1.LogicalClusterTypeAnnotationKey: typeName(typ),
				corev1alpha1.LogicalClusterShardAnnotationKey:   shard,
			},
		},
		Spec:   corev1alpha1.LogicalClusterSpec{Initializers: initializers},
		Status: corev1alpha1.LogicalClusterStatus{Phase: phase, URL: url + clustersPrefix + string(name)},
	}
	if phase == corev1alpha1.LogicalClusterPhaseInitializing {
		lc.Status.Initializers = initializers
	}
	if owner != nil {
		annotation, err := ownerAnnotation(*owner)
		if err != nil {
			return nil, err
		}
		lc.Annotations[tenancyv1alpha1.ExperimentalWorkspaceOwnerAnnotationKey] = annotation
		lc.Spec.CreatedBy = &corev1alpha1.OwnerUserInfo{Username: owner.Username, UID: owner.UID, Groups: owner.Groups, Extra: owner.Extra}
	}
	return lc, nil
}

// initializersOf are the initializers of a workspace of types (a type and
// those it extends): one per type that declares it has one, named
// <logical cluster of the type>:<type name>, as in kcp, and system:apibindings
// if the types have default APIBindings. warren itself is the only
// initializer a type may have: the types that declare one are built in, and
// warren's initialisation is theirs.
func initializersOf(ctx context.Context, index *Index, types []*tenancyv1alpha1.WorkspaceType) ([]corev1alpha1.LogicalClusterInitializer, error) {
	var out []corev1alpha1.LogicalClusterInitializer
	for _, t := range types {
		if !t.Spec.Initializer {
			continue
		}
		holder, err := index.Resolve(ctx, canonical(t).Path)
		if err != nil {
			return nil, fmt.Errorf("the workspace of type %s: %w", typeName(canonical(t)), err)
		}
		out = append(out, corev1alpha1.LogicalClusterInitializer(string(holder.Name)+separator+t.Name))
	}
	if hasDefaultBindings(types) {
		out = append(out, apiBindingsInitializer)
	}
	return out, nil
}

// initialObjects makes in the cluster of ctx what every new workspace starts
// with: the namespace "default", the namespaces and cluster role bindings its
// types ask for (see InitialNamespacesAnnotation), and the binding making its
// creator, if any, cluster-admin.
func initialObjects(ctx context.Context, stores Stores, types []*tenancyv1alpha1.WorkspaceType, owner *authenticationv1.UserInfo) error {
	namespaces := []string{metav1.NamespaceDefault}
	var bindings []InitialClusterRoleBinding
	for _, t := range types {
		ns, b, err := Initial(t)
		if err != nil {
			return err
		}
		namespaces, bindings = append(namespaces, ns...), append(bindings, b...)
	}
	for _, ns := range namespaces {
		if err := createNamespace(ctx, stores.Namespaces, ns); err != nil {
			return err
		}
	}
	if owner != nil && owner.Username != "" {
		bindings = append(bindings, InitialClusterRoleBinding{
			Name: AdminBinding, ClusterRole: "cluster-admin",
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: owner.Username}},
		})
	}
	for _, b := range bindings {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: b.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.ClusterRole},
			Subjects:   b.Subjects,
		}
		if _, err := stores.ClusterRoleBindings.Create(ctx, crb, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating cluster role binding %s: %w", b.Name, err)
		}
	}
	return nil
}

// createNamespace makes namespace ns in the cluster of ctx unless it exists.
func createNamespace(ctx context.Context, namespaces rest.Creater, ns string) error {
	ctx = genericapirequest.WithNamespace(ctx, "")
	_, err := namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	return nil
}

// finalize deletes the LogicalCluster of ws, on whichever shard holds it, and
// lets ws go once it is gone.
func (l *Lifecycle) finalize(ctx context.Context, parent logicalcluster.Name, ws *tenancyv1alpha1.Workspace) error {
	if !slices.Contains(ws.Finalizers, Finalizer) {
		return nil
	}
	if ws.Status.Phase != corev1alpha1.LogicalClusterPhaseTerminating {
		if err := l.setStatus(ctx, parent, ws, corev1alpha1.LogicalClusterPhaseTerminating, nil); err != nil {
			return err
		}
	}
	// A workspace placed before warren had shards is on this one; one never
	// placed has no logical cluster, which this shard finds gone.
	shard := ws.Annotations[ShardAnnotation]
	if shard == "" {
		shard = l.self.Name
	}
	gone, err := l.deleteCluster(ctx, ws, shard)
	if err != nil || !gone {
		return err
	}
	if _, err := update(ctx, l.stores.Workspaces, parent, ws.Name, func(obj runtime.Object) {
		m, _ := meta.Accessor(obj)
		m.SetFinalizers(slices.DeleteFunc(m.GetFinalizers(), func(f string) bool { return f == Finalizer }))
	}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("releasing workspace %s: %w", ws.Name, err)
	}
	// The parent's cluster, if it is being deleted, waits for this child.
	l.clusters.Enqueue(clusterwatch.Ref{Cluster: parent, Name: corev1alpha1.LogicalClusterName})
	return nil
}

// deleteCluster deletes the LogicalCluster of ws on shard and tells whether it
// is gone; one that is not ws's is none of its business.
func (l *Lifecycle) deleteCluster(ctx context.Context, ws *tenancyv1alpha1.Workspace, shard string) (gone bool, err error) {
	name := logicalcluster.Name(ws.Spec.Cluster)
	target, err := l.logicalClusters(shard)
	if err != nil {
		return false, err
	}
	lc, err := target.Get(ctx, name)
	if clusterGone(err) {
		if shard != l.self.Name || ws.Annotations[ShardAnnotation] == "" {
			return true, nil // never placed here: nothing was made
		}
		// place makes a cluster's initial objects before its LogicalCluster:
		// a workspace that went in between leaves them to erase.
		if _, err := l.stores.Eraser.EraseCluster(ctx, string(name)); err != nil {
			return false, fmt.Errorf("erasing logical cluster %s: %w", name, err)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading logical cluster %s on shard %s: %w", name, shard, err)
	}
	if lc.Spec.Owner == nil || lc.Spec.Owner.UID != ws.UID {
		return true, nil
	}
	switch {
	case shard == l.self.Name && !slices.Contains(lc.Finalizers, Finalizer):
		// Made before logical clusters had finalizers: deleting it would
		// leave its objects behind.
		if err := l.erase(ctx, name, lc); err != nil {
			return false, err
		}
	case lc.DeletionTimestamp == nil:
		if err := target.Delete(ctx, name); err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("deleting logical cluster %s on shard %s: %w", name, shard, err)
		}
	}
	if shard == l.self.Name {
		// Delete it now rather than when its controller sees it.
		if err := l.syncCluster(ctx, clusterwatch.Ref{Cluster: name, Name: corev1alpha1.LogicalClusterName}); err != nil && !errors.As(err, new(clusterwatch.Waiting)) {
			return false, err
		}
		if _, err := target.Get(ctx, name); clusterGone(err) {
			return true, nil
		}
	}
	return false, clusterwatch.Waiting{Reason: fmt.Sprintf("waiting for logical cluster %s of workspace %s to be deleted", name, ws.Name)}
}

// clusterGone tells the error of reading a LogicalCluster that is not stored,
// and no other NotFound.
func clusterGone(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d != nil && d.Group == corev1alpha1.SchemeGroupVersion.Group && d.Kind == "logicalclusters"
}

// setStatus sets the phase, initializers and conditions of ws, in parent,
// unless they are so already; conditions stay as they are if set is empty.
func (l *Lifecycle) setStatus(ctx context.Context, parent logicalcluster.Name, ws *tenancyv1alpha1.Workspace, phase corev1alpha1.LogicalClusterPhaseType,
	initializers []corev1alpha1.LogicalClusterInitializer, set ...conditionsv1alpha1.Condition) error {
	if ws.Status.Phase == phase && slices.Equal(ws.Status.Initializers, initializers) && (len(set) == 0 || sameConditions(ws.Status.Conditions, set)) {
		return nil
	}
	_, err := update(ctx, l.stores.WorkspaceStatus, parent, ws.Name, func(obj runtime.Object) {
		ws := obj.(*tenancyv1alpha1.Workspace)
		ws.Status.Phase = phase
		ws.Status.Initializers = initializers
		if len(set) > 0 {
			ws.Status.Conditions = setConditions(ws.Status.Conditions, set)
		}
	})
	return err
}

// sameConditions tells whether conditions are set, but for transition times.
func sameConditions(conditions conditionsv1alpha1.Conditions, set []conditionsv1alpha1.Condition) bool {
	return slices.EqualFunc(conditions, set, func(a, b conditionsv1alpha1.Condition) bool {
		return a.Type == b.Type && a.Status == b.Status && a.Severity == b.Severity && a.Reason == b.Reason && a.Message == b.Message
	})
}

// setConditions returns conditions with set in place of those of their types:
// a condition keeps its transition time while its status stays.
func setConditions(conditions conditionsv1alpha1.Conditions, set []conditionsv1alpha1.Condition) conditionsv1alpha1.Conditions {
	out := make(conditionsv1alpha1.Conditions, 0, len(set))
	now := metav1.Now()
	for _, c := range set {
		c.LastTransitionTime = now
		for _, old := range conditions {
			if old.Type == c.Type && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		out = append(out, c)
	}
	return out
}

// setClusterPhase sets the phase of a logical cluster and returns its
// LogicalCluster as stored.
func setClusterPhase(ctx context.Context, stores Stores, name logicalcluster.Name, phase corev1alpha1.LogicalClusterPhaseType) (*corev1alpha1.LogicalCluster, error) {
	out, err := update(ctx, stores.LogicalClusterStatus, name, corev1alpha1.LogicalClusterName, func(obj runtime.Object) {
		lc := obj.(*corev1alpha1.LogicalCluster)
		lc.Status.Phase = phase
		if phase != corev1alpha1.LogicalClusterPhaseInitializing {
			lc.Status.Initializers = nil
		}
	})
	if err != nil {
		return nil, err
	}
	return out.(*corev1alpha1.LogicalCluster), nil
}

// update applies change to the latest stored version of object name in cluster
// and returns the stored result.
func update(ctx context.Context, store rest.Updater, cluster logicalcluster.Name, name string, change func(runtime.Object)) (runtime.Object, error) {
	info := rest.DefaultUpdatedObjectInfo(nil, func(_ context.Context, _, old runtime.Object) (runtime.Object, error) {
		obj := old.DeepCopyObject()
		change(obj)
		return obj, nil
	})
	out, _, err := store.Update(in(ctx, cluster), name, info, rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
	return out, err
}
