package tenancy

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"

	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
	conditionsv1alpha1 "github.com/kcp-dev/sdk/apis/third_party/conditions/apis/conditions/v1alpha1"

	"github.com/warren-dev/warren/tenancy/clusterwatch"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// syncCluster initialises a LogicalCluster of this shard that is
// Initializing, or deletes one that is being deleted.
func (l *Lifecycle) syncCluster(ctx context.Context, r clusterwatch.Ref) error {
	lc, err := localClusters{l.stores.LogicalClusters}.Get(ctx, r.Cluster)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = l.reconcileCluster(ctx, r.Cluster, lc)
	return err
}

// reconcileCluster initialises the logical cluster name of this shard, whose
// LogicalCluster as last read or written is lc, if it is Initializing, or
// deletes it if it is being deleted; it returns the LogicalCluster as it left
// it.
func (l *Lifecycle) reconcileCluster(ctx context.Context, name logicalcluster.Name, lc *corev1alpha1.LogicalCluster) (*corev1alpha1.LogicalCluster, error) {
	switch {
	case lc.DeletionTimestamp != nil:
		return lc, l.erase(ctx, name, lc)
	case lc.Status.Phase != corev1alpha1.LogicalClusterPhaseInitializing:
		return lc, nil
	}
	ready, err := l.initializeCluster(ctx, name, lc)
	var pending defaultBindingsPending
	if !errors.As(err, &pending) {
		return ready, err
	}
	l.waiting.Store(name, struct{}{})
	waiting := condition(tenancyv1alpha1.WorkspaceAPIBindingsInitialized, false, pending.reason, pending.message)
	if !sameConditions(lc.Status.Conditions, []conditionsv1alpha1.Condition{waiting}) {
		updated, err := update(ctx, l.stores.LogicalClusterStatus, name, lc.Name, func(obj runtime.Object) {
			lc := obj.(*corev1alpha1.LogicalCluster)
			lc.Status.Conditions = setConditions(lc.Status.Conditions, []conditionsv1alpha1.Condition{waiting})
		})
		if err != nil {
			return nil, errors.Join(pending, err)
		}
		lc = updated.(*corev1alpha1.LogicalCluster)
	}
	return lc, clusterwatch.Waiting{Reason: pending.message}
}

// initializeCluster makes in the logical cluster name, whose LogicalCluster is
// lc, the initial objects and default APIBindings of its type, then makes it
// Ready, and returns its LogicalCluster as stored.
func (l *Lifecycle) initializeCluster(ctx context.Context, name logicalcluster.Name, lc *corev1alpha1.LogicalCluster) (*corev1alpha1.LogicalCluster, error) {
	typ, err := ParseTypeName(lc.Annotations[tenancyv1alpha1.LogicalClusterTypeAnnotationKey])
	if err != nil {
		return nil, fmt.Errorf("logical cluster %s: %w", name, err)
	}
	types, err := l.index.typesOf(ctx, typ)
	if err != nil {
		return nil, fmt.Errorf("the type of logical cluster %s: %w", name, err)
	}
	owner, err := Owner(lc.Annotations)
	if err != nil {
		return nil, err
	}
	if err := initialObjects(in(ctx, name), l.stores, types, owner); err != nil {
		return nil, fmt.Errorf("initialising logical cluster %s: %w", name, err)
	}
	if err := l.defaultBindings(ctx, name, types); err != nil {
		return nil, err
	}
	l.waiting.Delete(name)
	ready, err := setClusterPhase(ctx, l.stores, name, corev1alpha1.LogicalClusterPhaseReady)
	if err != nil {
		return nil, err
	}
	// Serve the cluster from now on, not from when the change is seen.
	return ready, l.index.Stored(name, ready)
}

// erase deletes the logical cluster name, whose LogicalCluster lc is being
// deleted: it stops serving creates in it, deletes its child workspaces (whose
// own clusters may be on other shards) and waits until they are gone, then
// deletes every object of the cluster, its LogicalCluster last.
func (l *Lifecycle) erase(ctx context.Context, name logicalcluster.Name, lc *corev1alpha1.LogicalCluster) error {
	if lc.Status.Phase != corev1alpha1.LogicalClusterPhaseTerminating {
		terminating, err := setClusterPhase(ctx, l.stores, name, corev1alpha1.LogicalClusterPhaseTerminating)
		if err != nil {
			return err
		}
		// Serve the cluster no more from now on, not from when the change is seen.
		if err := l.index.Stored(name, terminating); err != nil {
			return err
		}
	}
	inside := in(ctx, name)
	list, err := l.stores.Workspaces.List(inside, &metainternalversion.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing the child workspaces of logical cluster %s: %w", name, err)
	}
	children := list.(*tenancyv1alpha1.WorkspaceList).Items
	for i := range children {
		if children[i].DeletionTimestamp != nil {
			continue
		}
		if _, _, err := l.stores.Workspaces.Delete(inside, children[i].Name, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting child workspace %s of logical cluster %s: %w", children[i].Name, name, err)
		}
	}
	if len(children) > 0 {
		// The last child to go enqueues the cluster again (finalize).
		return clusterwatch.Waiting{Reason: fmt.Sprintf("waiting for %d child workspaces of logical cluster %s to be deleted", len(children), name)}
	}
	if _, err := l.stores.Eraser.EraseCluster(ctx, string(name)); err != nil {
		return fmt.Errorf("erasing logical cluster %s: %w", name, err)
	}
	return nil
}
