package apis

import (
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"

	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	conditionsv1alpha1 "github.com/kcp-dev/sdk/apis/third_party/conditions/apis/conditions/v1alpha1"

	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/tenancy"
)

// NewAPIBindings returns the storage of APIBindings and a copy of it that writes
// only their status.
func NewAPIBindings(getter generic.RESTOptionsGetter) (*registry.REST, *genericregistry.Store, error) {
	s := registry.NewStrategy(false)
	s.Prepare = func(obj, old runtime.Object) {
		// kcp's admission adds it: a deleted binding stays until the objects of
		// what it bound are gone.
		if b := obj.(*apisv1alpha2.APIBinding); old == nil && !slices.Contains(b.Finalizers, tenancy.BindingFinalizer) {
			b.Finalizers = append(b.Finalizers, tenancy.BindingFinalizer)
		}
	}
	s.Check = func(obj runtime.Object) field.ErrorList {
		b := obj.(*apisv1alpha2.APIBinding)
		errs := apisv1alpha2.ValidateAPIBinding(b)
		for i, c := range b.Spec.PermissionClaims {
			p := field.NewPath("spec", "permissionClaims").Index(i)
			errs = append(errs, checkEnum(p.Child("state"), string(c.State), string(apisv1alpha2.ClaimAccepted), string(apisv1alpha2.ClaimRejected))...)
			if c.Resource == "" {
				errs = append(errs, field.Required(p.Child("resource"), ""))
			}
		}
		return errs
	}
	s.CheckChange = func(obj, old runtime.Object) field.ErrorList {
		b, prev := obj.(*apisv1alpha2.APIBinding), old.(*apisv1alpha2.APIBinding)
		errs := immutable(field.NewPath("spec", "reference"), !equality.Semantic.DeepEqual(b.Spec.Reference, prev.Spec.Reference),
			"APIExport reference must not be changed")
		for i, c := range b.Spec.PermissionClaims {
			for _, o := range prev.Spec.PermissionClaims {
				if c.EqualGRI(o.PermissionClaim) {
					errs = append(errs, immutable(field.NewPath("spec", "permissionClaims").Index(i).Child("selector"),
						!equality.Semantic.DeepEqual(c.Selector, o.Selector), "Permission claim selector is immutable")...)
				}
			}
		}
		return errs
	}
	main, err := registry.NewREST(getter, registry.Resource{
		GroupResource: apisv1alpha2.Resource("apibindings"),
		SingularName:  "apibinding",
		New:           func() runtime.Object { return &apisv1alpha2.APIBinding{} },
		NewList:       func() runtime.Object { return &apisv1alpha2.APIBindingList{} },
		Strategy:      s,
		Categories:    []string{"kcp"},
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{registry.Column("Ready", "string", "The binding is bound and its APIs are served")},
			Cells: func(obj runtime.Object) []any {
				return []any{conditionStatus(obj.(*apisv1alpha2.APIBinding).Status.Conditions, conditionsv1alpha1.ReadyCondition)}
			},
		},
	})
	if err != nil {
		return nil, nil, err
	}
	status := registry.SplitStatus(main.Store, s, func(to, from *apisv1alpha2.APIBinding) { to.Status = from.Status })
	status.UpdateStrategy.(*registry.Strategy).CheckChange = func(obj, old runtime.Object) field.ErrorList {
		return apisv1alpha2.ValidateAPIBindingUpdate(old.(*apisv1alpha2.APIBinding), obj.(*apisv1alpha2.APIBinding))
	}
	return main, status, nil
}

// conditionStatus is the status of the condition of type t, "" if there is none.
func conditionStatus(cs conditionsv1alpha1.Conditions, t conditionsv1alpha1.ConditionType) string {
	for _, c := range cs {
		if c.Type == t {
			return string(c.Status)
		}
	}
	return ""
}
