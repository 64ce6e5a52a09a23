package rbac

import (
	"context"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// ClusterRoles is the storage of cluster roles as clients see it: besides the
// stored roles, the bootstrap roles every cluster holds without storing them
// (cluster-admin, admin, edit, view, ...), as `kubectl get clusterrole view`
// shows them on Kubernetes. A stored role of the same name takes a bootstrap
// role's place; creating one is how a cluster overrides it.
type ClusterRoles struct {
	*registry.REST
	bootstrap []rbacv1.ClusterRole
}

// WithBootstrap returns stored cluster roles shown with the bootstrap roles,
// sorted by name.
func WithBootstrap(stored *registry.REST, bootstrap []rbacv1.ClusterRole) *ClusterRoles {
	return &ClusterRoles{REST: stored, bootstrap: bootstrap}
}

// Get implements rest.Getter: a stored role, else a bootstrap role.
func (r *ClusterRoles) Get(ctx context.Context, name string, opts *metav1.GetOptions) (runtime.Object, error) {
	obj, err := r.REST.Get(ctx, name, opts)
	if !apierrors.IsNotFound(err) {
		return obj, err
	}
	for i := range r.bootstrap {
		if r.bootstrap[i].Name == name {
			if role, ok := r.shown(ctx, &r.bootstrap[i]); ok {
				return role, nil
			}
		}
	}
	return obj, err
}

// List implements rest.Lister: the stored roles, and on the last page the
// bootstrap roles no stored role replaces that the selectors match.
func (r *ClusterRoles) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	obj, err := r.REST.List(ctx, opts)
	if err != nil {
		return nil, err
	}
	list := obj.(*rbacv1.ClusterRoleList)
	cluster, _ := logicalcluster.From(ctx)
	if list.Continue != "" || cluster == logicalcluster.Wildcard {
		// Bootstrap roles are every cluster's: across all clusters, they
		// are nobody's to list.
		return list, nil
	}
	// An unpaginated list holds every stored role; a paginated one's last
	// page does not, so each bootstrap role is looked for.
	whole := opts == nil || (opts.Limit == 0 && opts.Continue == "")
	listed := map[string]bool{}
	for _, role := range list.Items {
		listed[role.Name] = true
	}
	for i := range r.bootstrap {
		b := &r.bootstrap[i]
		if listed[b.Name] || !matches(opts, b) {
			continue
		}
		if !whole {
			if _, err := r.REST.Get(ctx, b.Name, &metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				if err != nil {
					return nil, err
				}
				continue
			}
		}
		if role, ok := r.shown(ctx, b); ok {
			list.Items = append(list.Items, *role)
		}
	}
	return list, nil
}

// shown returns b as the cluster of ctx shows it, or false unless ctx names
// one cluster: across all clusters, bootstrap roles are not shown.
func (r *ClusterRoles) shown(ctx context.Context, b *rbacv1.ClusterRole) (*rbacv1.ClusterRole, bool) {
	cluster, ok := logicalcluster.From(ctx)
	if !ok || cluster == logicalcluster.Wildcard {
		return nil, false
	}
	role := b.DeepCopy()
	role.Annotations[logicalcluster.Annotation] = string(cluster)
	return role, true
}

// matches reports whether opts select role.
func matches(opts *metainternalversion.ListOptions, role *rbacv1.ClusterRole) bool {
	if opts == nil {
		return true
	}
	if opts.LabelSelector != nil && !opts.LabelSelector.Matches(labels.Set(role.Labels)) {
		return false
	}
	return opts.FieldSelector == nil || opts.FieldSelector.Matches(fields.Set{"metadata.name": role.Name})
}
