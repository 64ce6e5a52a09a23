package tenancy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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

// Eraser deletes every stored object of a logical cluster.
type Eraser interface {
	EraseCluster(ctx context.Context, cluster string) (int, error)
}

// Stores are the resources workspaces are made of.
type Stores struct {
	Workspaces, WorkspaceTypes, LogicalClusters, Shards Store
	// WorkspaceStatus and LogicalClusterStatus write only status.
	WorkspaceStatus, LogicalClusterStatus         rest.Updater
	Namespaces, ClusterRoles, ClusterRoleBindings rest.Creater
	Eraser                                        Eraser
	// APIBindings and APIExports make the default bindings of new workspaces.
	APIBindings interface {
		rest.Getter
		rest.Creater
	}
	APIExports rest.Getter
}

// Lifecycle makes workspaces real: it creates a new workspace's logical cluster,
// initialises it from the workspace's type and makes it Ready; it deletes a
// deleted workspace's children, then every object of its cluster, then lets the
// workspace go. One instance serves every cluster of the shard through one
// wildcard watch; every step is idempotent, so a crash at any point resumes.
type Lifecycle struct {
	stores     Stores
	index      *Index
	shard      string
	url        string
	controller *clusterwatch.Controller
	// waiting are the workspaces waiting for their default APIBindings, by
	// logical cluster, for Wake.
	waiting sync.Map
}

// NewLifecycle returns the controller; url is the server's URL logical cluster
// URLs start with, shard the name of the shard it serves.
func NewLifecycle(stores Stores, index *Index, shard, url string) *Lifecycle {
	l := &Lifecycle{stores: stores, index: index, shard: shard, url: url}
	l.controller = &clusterwatch.Controller{Name: "workspaces", Source: stores.Workspaces, Workers: workers, Sync: l.sync, Settled: settled}
	return l
}

// settled tells a Ready workspace that is not being deleted: sync has nothing to
// do for it.
func settled(obj runtime.Object) bool {
	ws, ok := obj.(*tenancyv1alpha1.Workspace)
	return ok && ws.DeletionTimestamp == nil && ws.Status.Phase == corev1alpha1.LogicalClusterPhaseReady
}

// Run works until ctx ends.
func (l *Lifecycle) Run(ctx context.Context) { l.controller.Run(ctx) }

func (l *Lifecycle) sync(ctx context.Context, r clusterwatch.Ref) error {
	obj, err := l.stores.Workspaces.Get(in(ctx, r.Cluster), r.Name, &metav1.GetOptions{})
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
	if initializers, err := l.initialize(ctx, r.Cluster, ws); err != nil {
		stuck := condition(tenancyv1alpha1.WorkspaceInitialized, false, tenancyv1alpha1.WorkspaceInitializedInitializerExists, err.Error())
		var pending defaultBindingsPending
		if errors.As(err, &pending) {
			stuck = condition(tenancyv1alpha1.WorkspaceAPIBindingsInitialized, false, pending.reason, pending.message)
			err = clusterwatch.Waiting{Reason: pending.message}
			l.waiting.Store(logicalcluster.Name(ws.Spec.Cluster), r)
		}
		_, serr := update(ctx, l.stores.WorkspaceStatus, r.Cluster, ws.Name, func(obj runtime.Object) {
			ws := obj.(*tenancyv1alpha1.Workspace)
			ws.Status.Phase = corev1alpha1.LogicalClusterPhaseInitializing
			ws.Status.Initializers = initializers
			ws.Status.Conditions = setConditions(ws.Status.Conditions, []conditionsv1alpha1.Condition{scheduled, stuck})
		})
		if serr != nil {
			return errors.Join(err, serr)
		}
		return err
	}
	l.waiting.Delete(logicalcluster.Name(ws.Spec.Cluster))
	return l.setStatus(ctx, r.Cluster, ws.Name, corev1alpha1.LogicalClusterPhaseReady, scheduled, condition(tenancyv1alpha1.WorkspaceInitialized, true, "", ""))
}

// Wake reconciles at once the workspace of cluster if it waits for its
// default APIBindings: call it when an APIBinding of cluster changes.
func (l *Lifecycle) Wake(cluster logicalcluster.Name) {
	if r, ok := l.waiting.Load(cluster); ok {
		l.controller.Enqueue(r.(clusterwatch.Ref))
	}
}

// scheduled is the condition of a workspace whose logical cluster exists: in
// warren a workspace is placed where it is created.
var scheduled = condition(tenancyv1alpha1.WorkspaceScheduled, true, "", "")

// condition returns a condition of type t as kcp writes them.
func condition(t conditionsv1alpha1.ConditionType, ok bool, reason, message string) conditionsv1alpha1.Condition {
	c := conditionsv1alpha1.Condition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message}
	if !ok {
		c.Status, c.Severity = corev1.ConditionFalse, conditionsv1alpha1.ConditionSeverityError
	}
	return c
}

// initialize makes the logical cluster of ws, in parent, and its initial
// objects; until it has, it returns the initializers of the cluster, if known.
func (l *Lifecycle) initialize(ctx context.Context, parent logicalcluster.Name, ws *tenancyv1alpha1.Workspace) ([]corev1alpha1.LogicalClusterInitializer, error) {
	p, err := l.index.Cluster(ctx, parent)
	if err != nil {
		return nil, err
	}
	if ws.Spec.Type == nil {
		return nil, fmt.Errorf("workspace %s has no type", ws.Name)
	}
	wt, err := l.index.Type(ctx, *ws.Spec.Type)
	if err != nil {
		return nil, err
	}
	types, err := l.index.aliases(ctx, wt)
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
	inside := in(ctx, name)
	lc, err := newLogicalCluster(name, p.Path.Join(ws.Name), *ws.Spec.Type, l.shard, l.url, corev1alpha1.LogicalClusterPhaseInitializing, initializers, owner)
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
	obj, err := l.stores.LogicalClusters.Create(inside, lc, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		obj, err = l.stores.LogicalClusters.Get(inside, corev1alpha1.LogicalClusterName, &metav1.GetOptions{})
	}
	if err != nil {
		return initializers, fmt.Errorf("creating logical cluster %s: %w", name, err)
	}
	lc = obj.(*corev1alpha1.LogicalCluster)
	if lc.Spec.Owner == nil || lc.Spec.Owner.UID != ws.UID {
		return initializers, fmt.Errorf("logical cluster %s belongs to another workspace", name)
	}
	if lc.Status.Phase == corev1alpha1.LogicalClusterPhaseReady {
		return nil, nil
	}
	if err := initialObjects(inside, l.stores, types, owner); err != nil {
		return initializers, fmt.Errorf("initialising logical cluster %s: %w", name, err)
	}
	if err := l.defaultBindings(ctx, name, types); err != nil {
		return initializers, err
	}
	ready, err := setClusterPhase(ctx, l.stores, name, corev1alpha1.LogicalClusterPhaseReady)
	if err != nil {
		return initializers, err
	}
	// Serve the cluster from now on, not from when the change is seen.
	return nil, l.index.Stored(name, ready)
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
			Annotations: map[string]string{
				core.LogicalClusterPathAnnotationKey:            string(path),
				tenancyv1alpha1.LogicalClusterTypeAnnotationKey: typeName(typ),
				corev1alpha1.LogicalClusterShardAnnotationKey:   shard,
			},
		},
		Spec:   corev1alpha1.LogicalClusterSpec{Initializers: initializers},
		Status: corev1alpha1.LogicalClusterStatus{Phase: phase, URL: url + clustersPrefix + string(name), Initializers: initializers},
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

// finalize deletes the children of ws, then its logical cluster, then lets ws go.
func (l *Lifecycle) finalize(ctx context.Context, parent logicalcluster.Name, ws *tenancyv1alpha1.Workspace) error {
	if !slices.Contains(ws.Finalizers, Finalizer) {
		return nil
	}
	if ws.Status.Phase != corev1alpha1.LogicalClusterPhaseTerminating {
		if err := l.setStatus(ctx, parent, ws.Name, corev1alpha1.LogicalClusterPhaseTerminating); err != nil {
			return err
		}
	}
	name := logicalcluster.Name(ws.Spec.Cluster)
	terminating, err := setClusterPhase(ctx, l.stores, name, corev1alpha1.LogicalClusterPhaseTerminating)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err == nil {
		// Serve the cluster no more from now on, not from when the change is seen.
		if err := l.index.Stored(name, terminating); err != nil {
			return err
		}
	}
	inside := in(ctx, name)
	list, err := l.stores.Workspaces.List(inside, &metainternalversion.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing the children of %s: %w", ws.Name, err)
	}
	children := list.(*tenancyv1alpha1.WorkspaceList).Items
	for i := range children {
		if children[i].DeletionTimestamp != nil {
			continue
		}
		if _, _, err := l.stores.Workspaces.Delete(inside, children[i].Name, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting child %s of %s: %w", children[i].Name, ws.Name, err)
		}
	}
	if len(children) > 0 {
		// The last child to go enqueues ws again (below); retrying is a safety net.
		return clusterwatch.Waiting{Reason: fmt.Sprintf("waiting for %d child workspaces of %s to be deleted", len(children), ws.Name)}
	}
	if _, err := l.stores.Eraser.EraseCluster(ctx, string(name)); err != nil {
		return err
	}
	if _, err := update(ctx, l.stores.Workspaces, parent, ws.Name, func(obj runtime.Object) {
		m, _ := meta.Accessor(obj)
		m.SetFinalizers(slices.DeleteFunc(m.GetFinalizers(), func(f string) bool { return f == Finalizer }))
	}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("releasing workspace %s: %w", ws.Name, err)
	}
	// A terminating parent waits for this child.
	if p, err := l.index.Cluster(ctx, parent); err == nil && p.Owner != nil {
		l.controller.Enqueue(clusterwatch.Ref{Cluster: logicalcluster.Name(p.Owner.Cluster), Name: p.Owner.Name})
	}
	return nil
}

// setStatus sets the phase of workspace name in parent, and its conditions to
// set unless set is empty.
func (l *Lifecycle) setStatus(ctx context.Context, parent logicalcluster.Name, name string, phase corev1alpha1.LogicalClusterPhaseType, set ...conditionsv1alpha1.Condition) error {
	_, err := update(ctx, l.stores.WorkspaceStatus, parent, name, func(obj runtime.Object) {
		ws := obj.(*tenancyv1alpha1.Workspace)
		ws.Status.Phase = phase
		ws.Status.Initializers = nil
		if len(set) > 0 {
			ws.Status.Conditions = setConditions(ws.Status.Conditions, set)
		}
	})
	return err
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
