package apis

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"

	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"

	"github.com/warren-dev/warren/apiserver/registry"
)

// NewAPIExports returns the storage of APIExports and a copy of it that writes
// only their status.
func NewAPIExports(getter generic.RESTOptionsGetter) (*registry.REST, *genericregistry.Store, error) {
	s := registry.NewStrategy(false)
	s.Prepare = func(obj, _ runtime.Object) {
		e := obj.(*apisv1alpha2.APIExport)
		for i := range e.Spec.Resources {
			// kcp's CRD defaults it so.
			if st := &e.Spec.Resources[i].Storage; st.CRD == nil && st.Virtual == nil {
				st.CRD = &apisv1alpha2.ResourceSchemaStorageCRD{}
			}
		}
	}
	s.Check = func(obj runtime.Object) field.ErrorList {
		return checkExportSpec(obj.(*apisv1alpha2.APIExport).Spec, field.NewPath("spec"))
	}
	main, err := registry.NewREST(getter, registry.Resource{
		GroupResource: apisv1alpha2.Resource("apiexports"),
		SingularName:  "apiexport",
		New:           func() runtime.Object { return &apisv1alpha2.APIExport{} },
		NewList:       func() runtime.Object { return &apisv1alpha2.APIExportList{} },
		Strategy:      s,
		Categories:    []string{"kcp"},
	})
	if err != nil {
		return nil, nil, err
	}
	return main, registry.SplitStatus(main.Store, s, func(to, from *apisv1alpha2.APIExport) { to.Status = from.Status }), nil
}

// checkExportSpec validates an export's spec as kcp's CRD does.
func checkExportSpec(spec apisv1alpha2.APIExportSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range spec.Resources {
		p := path.Child("resources").Index(i)
		if r.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		if r.Schema == "" {
			errs = append(errs, field.Required(p.Child("schema"), ""))
		}
		if (r.Storage.CRD != nil) == (r.Storage.Virtual != nil) {
			errs = append(errs, field.Invalid(p.Child("storage"), "object", "Exactly one of crd or virtual must be set"))
		}
		if r.Storage.Virtual != nil {
			errs = append(errs, field.Forbidden(p.Child("storage", "virtual"), "warren stores exported resources itself; virtual storage is not supported"))
		}
	}
	if id := spec.Identity; id != nil && id.SecretRef != nil {
		p := path.Child("identity", "secretRef")
		if id.SecretRef.Name == "" && id.SecretRef.Namespace == "" {
			errs = append(errs, field.Invalid(p, "object", "at least one field must be set"))
		}
	}
	for i, c := range spec.PermissionClaims {
		p := path.Child("permissionClaims").Index(i)
		if c.Resource == "" {
			errs = append(errs, field.Required(p.Child("resource"), ""))
		}
		if len(c.Verbs) == 0 {
			errs = append(errs, field.Required(p.Child("verbs"), ""))
		}
	}
	return errs
}
