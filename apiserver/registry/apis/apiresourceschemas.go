package apis

import (
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"

	"github.com/warren-dev/warren/apiserver/registry"
)

// NewAPIResourceSchemas returns the storage of APIResourceSchemas: the schema
// of one resource as an APIExport exports it.
func NewAPIResourceSchemas(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	s := registry.NewStrategy(false)
	s.Prepare = func(obj, _ runtime.Object) {
		spec := &obj.(*apisv1alpha1.APIResourceSchema).Spec
		// kcp's CRD defaults it so.
		if spec.NameValidation == "" {
			spec.NameValidation = "DNS1123Subdomain"
		}
	}
	s.Check = func(obj runtime.Object) field.ErrorList {
		return checkSchemaSpec(obj.(*apisv1alpha1.APIResourceSchema).Spec, field.NewPath("spec"))
	}
	return registry.NewREST(getter, registry.Resource{
		GroupResource: apisv1alpha1.Resource("apiresourceschemas"),
		SingularName:  "apiresourceschema",
		New:           func() runtime.Object { return &apisv1alpha1.APIResourceSchema{} },
		NewList:       func() runtime.Object { return &apisv1alpha1.APIResourceSchemaList{} },
		Strategy:      s,
		Categories:    []string{"kcp"},
	})
}

// checkSchemaSpec validates a schema's spec as kcp's CRD does: required fields,
// enums and its CEL rules, with kcp's messages.
func checkSchemaSpec(spec apisv1alpha1.APIResourceSchemaSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := path.Child("names")
	if spec.Names.Plural == "" {
		errs = append(errs, field.Required(names.Child("plural"), ""))
	}
	if spec.Names.Kind == "" {
		errs = append(errs, field.Required(names.Child("kind"), ""))
	}
	errs = append(errs, checkEnum(path.Child("scope"), string(spec.Scope), "Cluster", "Namespaced")...)
	errs = append(errs, checkEnum(path.Child("nameValidation"), spec.NameValidation, "DNS1123Subdomain", "PathSegmentName")...)
	if len(spec.Versions) == 0 {
		errs = append(errs, field.Required(path.Child("versions"), ""))
	}
	for i, v := range spec.Versions {
		if v.Name == "" {
			errs = append(errs, field.Required(path.Child("versions").Index(i).Child("name"), ""))
		}
	}
	if len(spec.Versions) > 1 && spec.Conversion == nil {
		errs = append(errs, field.Invalid(path, "object", "Conversion must be specified when multiple versions exist"))
	}
	if c := spec.Conversion; c != nil {
		p := path.Child("conversion")
		errs = append(errs, checkEnum(p.Child("strategy"), string(c.Strategy), "None", "Webhook")...)
		if (c.Strategy == "None") != (c.Webhook == nil) {
			errs = append(errs, field.Invalid(p, "object", "Webhook must be specified if strategy=Webhook"))
		}
	}
	return errs
}

// checkEnum refuses a value outside an OpenAPI enum, as the apiserver of a CRD
// words it.
func checkEnum(path *field.Path, value string, allowed ...string) field.ErrorList {
	if slices.Contains(allowed, value) {
		return nil
	}
	if value == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	return field.ErrorList{field.NotSupported(path, value, allowed)}
}

// immutable refuses a change of a field whose CEL rule is self == oldSelf.
func immutable(path *field.Path, changed bool, message string) field.ErrorList {
	if !changed {
		return nil
	}
	return field.ErrorList{field.Invalid(path, "object", message)}
}
