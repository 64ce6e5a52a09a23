package tenancy

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/registry/rest"

	corev1alpha1 "github.com/warren-dev/warren/tenancy/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/warren-dev/warren/tenancy/apis/tenancy/v1alpha1"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// The workspace types warren ships, in root.
const (
	// Root is the type of the root workspace only.
	Root = "root"
	// Universal may be created anywhere; it is the default.
	Universal = "universal"
	// Organization is for children of root.
	Organization = "organization"
	// Team is for children of organizations.
	Team = "team"
)

// builtinTypes are the workspace types root starts with.
func builtinTypes() []*tenancyv1alpha1.WorkspaceType {
	allow := func(names ...string) *tenancyv1alpha1.TypeSelector {
		s := &tenancyv1alpha1.TypeSelector{}
		for _, n := range names {
			s.Types = append(s.Types, corev1alpha1.TypeReference{Name: n, Path: string(RootPath)})
		}
		return s
	}
	ref := func(name string) *corev1alpha1.TypeReference {
		return &corev1alpha1.TypeReference{Name: name, Path: string(RootPath)}
	}
	wt := func(name string, spec tenancyv1alpha1.WorkspaceTypeSpec) *tenancyv1alpha1.WorkspaceType {
		return &tenancyv1alpha1.WorkspaceType{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	}
	return []*tenancyv1alpha1.WorkspaceType{
		wt(Root, tenancyv1alpha1.WorkspaceTypeSpec{LimitAllowedParents: &tenancyv1alpha1.TypeSelector{None: true}}),
		wt(Universal, tenancyv1alpha1.WorkspaceTypeSpec{}),
		wt(Organization, tenancyv1alpha1.WorkspaceTypeSpec{LimitAllowedParents: allow(Root), DefaultChildType: ref(Team)}),
		wt(Team, tenancyv1alpha1.WorkspaceTypeSpec{LimitAllowedParents: allow(Organization)}),
	}
}

// Bootstrap makes the root workspace if it does not exist: its LogicalCluster,
// its default namespace and the workspace types warren ships. It changes nothing
// that exists, so an edited built-in type stays edited.
func Bootstrap(ctx context.Context, stores Stores, shard string) error {
	inside := in(ctx, logicalcluster.Root)
	root := &corev1alpha1.LogicalCluster{
		ObjectMeta: metav1.ObjectMeta{Name: corev1alpha1.Name},
		Spec: corev1alpha1.LogicalClusterSpec{
			Path: string(RootPath),
			Type: corev1alpha1.TypeReference{Name: Root, Path: string(RootPath)},
		},
		Status: corev1alpha1.LogicalClusterStatus{Phase: corev1alpha1.Ready, Shard: shard},
	}
	if _, err := stores.LogicalClusters.Create(inside, root, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the root logical cluster: %w", err)
	}
	if err := createNamespace(inside, stores.Namespaces, metav1.NamespaceDefault); err != nil {
		return fmt.Errorf("root: %w", err)
	}
	for _, wt := range builtinTypes() {
		if _, err := stores.WorkspaceTypes.Create(inside, wt, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating workspace type %s: %w", wt.Name, err)
		}
	}
	return nil
}
