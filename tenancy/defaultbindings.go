package tenancy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apiserver/pkg/registry/rest"

	kcpcrypto "github.com/kcp-dev/apimachinery/v2/pkg/util/crypto"
	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// apiBindingsInitializer is the initializer a new workspace has while the
// default APIBindings of its types are not yet bound, as in kcp.
const apiBindingsInitializer = corev1alpha1.LogicalClusterInitializer(tenancyv1alpha1.WorkspaceAPIBindingsInitializer)

// defaultBindingsPending is what initialize returns while a new workspace's
// default APIBindings are not all bound: the workspace waits, Initializing.
type defaultBindingsPending struct{ reason, message string }

func (p defaultBindingsPending) Error() string { return p.message }

// hasDefaultBindings tells whether a workspace of types starts with bindings.
func hasDefaultBindings(types []*tenancyv1alpha1.WorkspaceType) bool {
	return slices.ContainsFunc(types, func(t *tenancyv1alpha1.WorkspaceType) bool { return len(t.Spec.DefaultAPIBindings) > 0 })
}

// defaultBindings makes, in the new cluster name, the APIBindings that types
// (a type and those it extends) name in spec.defaultAPIBindings, each named as
// kcp names it and accepting every permission claim of its export, and
// returns defaultBindingsPending until all are bound. An export given without
// a path is one of the workspace holding the type. Creating them needs no
// bind permission here: admission asked it of whoever wrote the type.
func (l *Lifecycle) defaultBindings(ctx context.Context, name logicalcluster.Name, types []*tenancyv1alpha1.WorkspaceType) error {
	inside := in(ctx, name)
	var missing, waiting []string
	for _, t := range types {
		for _, ref := range t.Spec.DefaultAPIBindings {
			holder, err := l.index.Resolve(ctx, canonical(t).Path)
			if err != nil {
				return fmt.Errorf("the workspace of type %s: %w", typeName(canonical(t)), err)
			}
			exportPath := ref.Path
			if exportPath == "" {
				exportPath = string(holder.Name)
			}
			var obj runtime.Object
			exportCluster, err := l.index.Resolve(ctx, exportPath)
			if err == nil {
				obj, err = l.stores.APIExports.Get(in(ctx, exportCluster.Name), ref.Export, &metav1.GetOptions{})
			}
			if apierrors.IsNotFound(err) {
				missing = append(missing, exportPath+separator+ref.Export)
				continue
			}
			if err != nil {
				return fmt.Errorf("APIExport %s%s%s: %w", exportPath, separator, ref.Export, err)
			}
			binding, err := l.defaultBinding(inside, name, exportCluster.Name, exportPath, obj.(*apisv1alpha2.APIExport))
			if err != nil {
				return err
			}
			if !bindingCompleted(binding) {
				waiting = append(waiting, binding.Name)
			}
		}
	}
	switch {
	case len(missing) > 0:
		return defaultBindingsPending{reason: tenancyv1alpha1.WorkspaceInitializedAPIBindingErrors,
			message: "encountered errors: unable to complete initialization: unable to find APIExport " + strings.Join(missing, ", ")}
	case len(waiting) > 0:
		slices.Sort(waiting)
		return defaultBindingsPending{reason: tenancyv1alpha1.WorkspaceInitializedWaitingOnAPIBindings,
			message: "APIBinding(s) not yet fully bound: " + strings.Join(slices.Compact(waiting), ", ")}
	}
	return nil
}

// defaultBinding returns the default binding of export (in exportCluster, at
// exportPath) in cluster, made unless it exists.
func (l *Lifecycle) defaultBinding(ctx context.Context, cluster, exportCluster logicalcluster.Name, exportPath string, export *apisv1alpha2.APIExport) (*apisv1alpha2.APIBinding, error) {
	name := defaultBindingName(cluster, exportPath, export.Name)
	obj, err := l.stores.APIBindings.Get(ctx, name, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		binding := &apisv1alpha2.APIBinding{
			ObjectMeta: metav1.ObjectMeta{
				Name:   name,
				Labels: map[string]string{apisv1alpha1.InternalAPIBindingExportLabelKey: ExportLabel(exportCluster, export.Name)},
			},
			Spec: apisv1alpha2.APIBindingSpec{Reference: apisv1alpha2.BindingReference{
				Export: &apisv1alpha2.ExportBindingReference{Path: exportPath, Name: export.Name},
			}},
		}
		for _, claim := range export.Spec.PermissionClaims {
			selector := apisv1alpha2.PermissionClaimSelector{MatchAll: true}
			if claim.DefaultSelector != nil {
				selector = *claim.DefaultSelector
			}
			binding.Spec.PermissionClaims = append(binding.Spec.PermissionClaims, apisv1alpha2.AcceptablePermissionClaim{
				ScopedPermissionClaim: apisv1alpha2.ScopedPermissionClaim{PermissionClaim: claim, Selector: selector},
				State:                 apisv1alpha2.ClaimAccepted,
			})
		}
		obj, err = l.stores.APIBindings.Create(ctx, binding, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			obj, err = l.stores.APIBindings.Get(ctx, name, &metav1.GetOptions{})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("default APIBinding %s: %w", name, err)
	}
	return obj.(*apisv1alpha2.APIBinding), nil
}

// bindingCompleted tells whether a binding's initial binding is complete.
func bindingCompleted(b *apisv1alpha2.APIBinding) bool {
	for _, c := range b.Status.Conditions {
		if c.Type == apisv1alpha2.InitialBindingCompleted {
			return c.Status == "True"
		}
	}
	return false
}

// defaultBindingName is kcp's name of the default binding of the export at
// exportPath in cluster: the export's name, cut to fit, and five characters
// of a hash of the three.
func defaultBindingName(cluster logicalcluster.Name, exportPath, export string) string {
	hash := strings.ToLower(kcpcrypto.Base62Sha224.String(string(cluster) + "|" + exportPath + "|" + export)[:5])
	return export[:min(len(export), validation.DNS1123SubdomainMaxLength-1-len(hash))] + "-" + hash
}
