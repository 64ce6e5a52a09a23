package tenancy

import (
	"fmt"
	"slices"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"

	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/tenancy"
)

// builtinInitialized are the types whose initializer warren itself is: a type
// declaring an initializer or a terminator needs a controller to finish it,
// and warren serves no virtual workspace through which another could.
var builtinInitialized = []string{tenancy.Universal}

// NewWorkspaceTypes returns the storage of workspace types.
func NewWorkspaceTypes(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	s := registry.NewStrategy(false)
	s.Name = func(name string, prefix bool) []string {
		if slices.Contains(tenancyv1alpha1.WorkspaceTypeReservedNames(), name) {
			return []string{"is reserved"}
		}
		return apivalidation.NameIsDNSLabel(name, prefix)
	}
	s.Prepare = func(obj, _ runtime.Object) {
		wt := obj.(*tenancyv1alpha1.WorkspaceType)
		// kcp's CRD defaults it so.
		if wt.Spec.DefaultChildWorkspaceType == nil {
			wt.Spec.DefaultChildWorkspaceType = &tenancyv1alpha1.WorkspaceTypeReference{Name: tenancy.Universal, Path: string(tenancy.RootPath)}
		}
	}
	s.Check = func(obj runtime.Object) field.ErrorList {
		wt := obj.(*tenancyv1alpha1.WorkspaceType)
		return append(checkTypeSpec(wt), tenancy.ValidateInitial(wt)...)
	}
	return registry.NewREST(getter, registry.Resource{
		GroupResource: tenancyv1alpha1.Resource("workspacetypes"),
		SingularName:  "workspacetype",
		New:           func() runtime.Object { return &tenancyv1alpha1.WorkspaceType{} },
		NewList:       func() runtime.Object { return &tenancyv1alpha1.WorkspaceTypeList{} },
		Strategy:      s,
		Categories:    []string{"kcp"},
	})
}

// checkTypeSpec validates wt's spec as kcp's CRD does, and refuses what warren
// cannot do.
func checkTypeSpec(wt *tenancyv1alpha1.WorkspaceType) field.ErrorList {
	spec := wt.Spec
	path := field.NewPath("spec")
	var errs field.ErrorList
	if spec.Initializer && !slices.Contains(builtinInitialized, wt.Name) {
		errs = append(errs, field.Forbidden(path.Child("initializer"), "warren serves no initializingworkspaces virtual workspace, so no controller could initialize such workspaces"))
	}
	if spec.Terminator {
		errs = append(errs, field.Forbidden(path.Child("terminator"), "warren serves no terminatingworkspaces virtual workspace, so no controller could terminate such workspaces"))
	}
	if d := spec.DefaultChildWorkspaceType; d != nil {
		errs = append(errs, checkType(path.Child("defaultChildWorkspaceType"), *d)...)
	}
	for i, ref := range spec.Extend.With {
		errs = append(errs, checkType(path.Child("extend", "with").Index(i), ref)...)
	}
	for name, sel := range map[string]*tenancyv1alpha1.WorkspaceTypeSelector{"limitAllowedChildren": spec.LimitAllowedChildren, "limitAllowedParents": spec.LimitAllowedParents} {
		if sel == nil {
			continue
		}
		p := path.Child(name)
		if sel.None == (len(sel.Types) > 0) {
			errs = append(errs, field.Invalid(p, sel, "exactly one of none and types must be set"))
		}
		for i, t := range sel.Types {
			errs = append(errs, checkType(p.Child("types").Index(i), t)...)
		}
	}
	for k, v := range spec.AdditionalWorkspaceLabels {
		p := path.Child("additionalWorkspaceLabels").Key(k)
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(p, k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, field.Invalid(p, v, msg))
		}
	}
	for i, b := range spec.DefaultAPIBindings {
		if b.Export == "" {
			errs = append(errs, field.Required(path.Child("defaultAPIBindings").Index(i).Child("export"), ""))
		}
		if b.Path != "" {
			errs = append(errs, checkPath(path.Child("defaultAPIBindings").Index(i).Child("path"), b.Path)...)
		}
	}
	if m := spec.DefaultAPIBindingLifecycle; m != nil {
		switch *m {
		case tenancyv1alpha1.APIBindingLifecycleModeInitializeOnly, tenancyv1alpha1.APIBindingLifecycleModeMaintain:
		default:
			errs = append(errs, field.NotSupported(path.Child("defaultAPIBindingLifecycle"), *m, []string{
				string(tenancyv1alpha1.APIBindingLifecycleModeInitializeOnly), string(tenancyv1alpha1.APIBindingLifecycleModeMaintain)}))
		}
	}
	return errs
}

// checkType validates a type reference: a name as kcp's CRD allows it, and a
// path.
func checkType(path *field.Path, ref tenancyv1alpha1.WorkspaceTypeReference) field.ErrorList {
	var errs field.ErrorList
	name := string(ref.Name)
	switch {
	case name == "":
		errs = append(errs, field.Required(path.Child("name"), ""))
	case len(validation.IsDNS1123Label(name)) > 0 || name[0] < 'a' || name[0] > 'z':
		errs = append(errs, field.Invalid(path.Child("name"), name, "must be a lowercase RFC 1123 label starting with a letter"))
	}
	if ref.Path != "" {
		errs = append(errs, checkPath(path.Child("path"), ref.Path)...)
	}
	return errs
}

// checkPath validates the path (or logical cluster name) of a workspace.
func checkPath(path *field.Path, p string) field.ErrorList {
	if err := tenancy.ValidateAddress(p); err != nil {
		return field.ErrorList{field.Invalid(path, p, fmt.Sprint(err))}
	}
	return nil
}
