package tenancy

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/kcp-dev/sdk/apis/core"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// builtinTypes are the workspace types root starts with, as kcp ships them
// (kcp's universal also binds kcp's tenancy and topology exports by default;
// warren serves tenancy.kcp.io in every workspace, so it binds nothing).
func builtinTypes() []*tenancyv1alpha1.WorkspaceType {
	ref := func(name string) *tenancyv1alpha1.WorkspaceTypeReference {
		return &tenancyv1alpha1.WorkspaceTypeReference{Name: tenancyv1alpha1.WorkspaceTypeName(name), Path: string(RootPath)}
	}
	allow := func(names ...string) *tenancyv1alpha1.WorkspaceTypeSelector {
		s := &tenancyv1alpha1.WorkspaceTypeSelector{}
		for _, n := range names {
			s.Types = append(s.Types, *ref(n))
		}
		return s
	}
	universal := tenancyv1alpha1.WorkspaceTypeExtension{With: []tenancyv1alpha1.WorkspaceTypeReference{*ref(Universal)}}
	none := &tenancyv1alpha1.WorkspaceTypeSelector{None: true}
	wt := func(name string, spec tenancyv1alpha1.WorkspaceTypeSpec) *tenancyv1alpha1.WorkspaceType {
		return &tenancyv1alpha1.WorkspaceType{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{core.LogicalClusterPathAnnotationKey: string(RootPath)}},
			Spec:       spec,
		}
	}
	return []*tenancyv1alpha1.WorkspaceType{
		wt(Root, tenancyv1alpha1.WorkspaceTypeSpec{Extend: universal, DefaultChildWorkspaceType: ref(Organization), LimitAllowedParents: none}),
		wt(Universal, tenancyv1alpha1.WorkspaceTypeSpec{Initializer: true, DefaultChildWorkspaceType: ref(Universal)}),
		wt(Organization, tenancyv1alpha1.WorkspaceTypeSpec{Extend: universal, DefaultChildWorkspaceType: ref(Universal),
			LimitAllowedChildren: allow(Universal), LimitAllowedParents: allow(Root)}),
		wt(Team, tenancyv1alpha1.WorkspaceTypeSpec{Extend: universal, DefaultChildWorkspaceType: ref(Universal), LimitAllowedParents: allow(Organization, Team)}),
		wt(Home, tenancyv1alpha1.WorkspaceTypeSpec{Extend: universal, DefaultChildWorkspaceType: ref(Universal), LimitAllowedParents: none}),
	}
}

// The RBAC root starts with, named as in kcp: every authenticated user may
// enter root, read its workspaces and types, use the built-in types but root
// and home, and have a home workspace made.
const (
	RootAccessBinding = "system:kcp:tenancy:authenticated:access"
	rootReaderBinding = "system:kcp:authenticated:tenancy:reader"
	typesUseRole      = "system:kcp:universal-workspacetype-use"
	typesUseBinding   = "system:kcp:authenticated:universal-workspacetype-use"
	homeCreateRole    = "system:kcp:home-clusterworkspace-create"
	// HomeCreateBinding lets its subjects have a home workspace made; editing
	// its subjects chooses who may.
	HomeCreateBinding = "system:kcp:configured-group:home-clusterworkspace-create"
)

// rootRBAC returns the cluster roles and bindings root starts with; the roles
// they bind but do not include are bootstrap roles, held in every cluster.
func rootRBAC() ([]*rbacv1.ClusterRole, []*rbacv1.ClusterRoleBinding) {
	authenticated := []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: user.AllAuthenticated}}
	binding := func(name, role string) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   authenticated,
		}
	}
	use := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: typesUseRole},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{tenancyv1alpha1.SchemeGroupVersion.Group}, Resources: []string{"workspacetypes"},
			ResourceNames: []string{Universal, Organization, Team}, Verbs: []string{UseVerb},
		}},
	}
	home := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: homeCreateRole},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{tenancyv1alpha1.SchemeGroupVersion.Group}, Resources: []string{"workspaces"},
			ResourceNames: []string{HomeWorkspace}, Verbs: []string{"get", "create"},
		}},
	}
	return []*rbacv1.ClusterRole{use, home}, []*rbacv1.ClusterRoleBinding{
		binding(RootAccessBinding, "system:kcp:workspace:access"),
		binding(rootReaderBinding, "system:kcp:tenancy:reader"),
		binding(typesUseBinding, typesUseRole),
		binding(HomeCreateBinding, homeCreateRole),
	}
}

// Bootstrap makes, on the root shard, the root workspace if it does not exist:
// its LogicalCluster, its default namespace, the workspace types and RBAC it
// starts with; and registers self, the root shard. It changes nothing that
// exists, so an edited built-in type or binding stays edited; only the Shard,
// which describes the running server, is brought up to date.
func Bootstrap(ctx context.Context, stores Stores, self *corev1alpha1.Shard) error {
	inside := in(ctx, logicalcluster.Root)
	root, err := newLogicalCluster(logicalcluster.Root, RootPath, tenancyv1alpha1.WorkspaceTypeReference{Name: Root, Path: string(RootPath)},
		self.Name, self.Spec.ExternalURL, corev1alpha1.LogicalClusterPhaseReady, nil, nil)
	if err != nil {
		return err
	}
	create := func(what string, store rest.Creater, obj runtime.Object) error {
		if _, err := store.Create(inside, obj, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s in root: %w", what, err)
		}
		return nil
	}
	if err := create("the logical cluster", stores.LogicalClusters, root); err != nil {
		return err
	}
	if err := createNamespace(inside, stores.Namespaces, metav1.NamespaceDefault); err != nil {
		return fmt.Errorf("root: %w", err)
	}
	for _, wt := range builtinTypes() {
		if err := create("workspace type "+wt.Name, stores.WorkspaceTypes, wt); err != nil {
			return err
		}
	}
	roles, bindings := rootRBAC()
	for _, r := range roles {
		if err := create("cluster role "+r.Name, stores.ClusterRoles, r); err != nil {
			return err
		}
	}
	for _, b := range bindings {
		if err := create("cluster role binding "+b.Name, stores.ClusterRoleBindings, b); err != nil {
			return err
		}
	}
	_, err = stores.Shards.Create(inside, self, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		info := rest.DefaultUpdatedObjectInfo(nil, func(_ context.Context, _, old runtime.Object) (runtime.Object, error) {
			s := old.DeepCopyObject().(*corev1alpha1.Shard)
			s.Spec, s.Labels = self.Spec, self.Labels
			return s, nil
		})
		_, _, err = stores.Shards.Update(inside, self.Name, info, rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering shard %s: %w", self.Name, err)
	}
	return nil
}
