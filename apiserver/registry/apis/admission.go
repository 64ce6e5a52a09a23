package apis

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
)

// Admission holds kcp's admission rules of schemas and exports, with kcp's
// answers (403 and its messages): an APIResourceSchema is named
// <prefix>.<plural>.<group> ("core" for the core group), with a DNS label as
// prefix, and never changes; an APIExport refers to schemas of its resources'
// names and groups.
type Admission struct {
	*admission.Handler
}

var _ admission.ValidationInterface = (*Admission)(nil)

// NewAdmission returns the plugin.
func NewAdmission() *Admission {
	return &Admission{Handler: admission.NewHandler(admission.Create, admission.Update)}
}

// schemaPrefix is what may stand before .<plural>.<group> in a schema's name.
var schemaPrefix = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// Validate implements admission.ValidationInterface.
func (a *Admission) Validate(_ context.Context, attrs admission.Attributes, _ admission.ObjectInterfaces) error {
	if attrs.GetSubresource() != "" {
		return nil
	}
	var errs field.ErrorList
	switch obj := attrs.GetObject().(type) {
	case *apisv1alpha1.APIResourceSchema:
		if old, ok := attrs.GetOldObject().(*apisv1alpha1.APIResourceSchema); ok {
			if !equality.Semantic.DeepEqual(obj.Spec, old.Spec) {
				errs = append(errs, field.Invalid(field.NewPath("spec"), obj.Spec, "is immutable"))
			}
			break
		}
		suffix := "." + obj.Spec.Names.Plural + "." + groupName(obj.Spec.Group)
		name := field.NewPath("metadata", "name")
		if !strings.HasSuffix(obj.Name, suffix) {
			errs = append(errs, field.Invalid(name, obj.Name, "must end in "+suffix))
		} else if !schemaPrefix.MatchString(strings.TrimSuffix(obj.Name, suffix)) {
			errs = append(errs, field.Invalid(name, obj.Name, fmt.Sprintf("must match %s in front of %s", schemaPrefix, suffix)))
		}
		if obj.Spec.Group == "core" {
			errs = append(errs, field.Invalid(field.NewPath("spec", "group"), obj.Spec.Group, "must be empty string for the core group"))
		}
	case *apisv1alpha2.APIExport:
		for i, r := range obj.Spec.Resources {
			suffix := "." + r.Name + "." + groupName(r.Group)
			if !strings.HasSuffix(r.Schema, suffix) {
				errs = append(errs, field.Invalid(field.NewPath("spec", "resources").Index(i).Child("schema"), r.Schema, "must end in "+suffix))
			}
		}
	}
	if len(errs) > 0 {
		return admission.NewForbidden(attrs, errs.ToAggregate())
	}
	return nil
}

// groupName is how a schema's name spells its group: "core" for the core
// group.
func groupName(group string) string {
	if group == "" {
		return "core"
	}
	return group
}
