package crd

import (
	"context"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"
)

// Admission refuses CRDs warren cannot serve: those in a group a built-in API
// serves (the built-in group would shadow them) and those converting through a
// webhook (warren calls no webhooks).
type Admission struct {
	*admission.Handler
	builtins *Builtins
}

var _ admission.ValidationInterface = (*Admission)(nil)

// NewAdmission returns the plugin; builtins tells the built-in groups.
func NewAdmission(builtins *Builtins) *Admission {
	return &Admission{Handler: admission.NewHandler(admission.Create, admission.Update), builtins: builtins}
}

// Validate implements admission.ValidationInterface.
func (a *Admission) Validate(_ context.Context, attrs admission.Attributes, _ admission.ObjectInterfaces) error {
	if attrs.GetResource().GroupResource() != apiextensions.Resource("customresourcedefinitions") || attrs.GetSubresource() != "" {
		return nil
	}
	crd, ok := attrs.GetObject().(*apiextensions.CustomResourceDefinition)
	if !ok {
		return nil
	}
	var errs field.ErrorList
	if a.builtins.Groups()[crd.Spec.Group] {
		errs = append(errs, field.Invalid(field.NewPath("spec", "group"), crd.Spec.Group, "is served by a built-in API of warren"))
	}
	if c := crd.Spec.Conversion; c != nil && c.Strategy != apiextensions.NoneConverter {
		errs = append(errs, field.NotSupported(field.NewPath("spec", "conversion", "strategy"), c.Strategy, []string{string(apiextensions.NoneConverter)}))
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(apiextensions.Kind("CustomResourceDefinition"), crd.Name, errs)
	}
	return nil
}
