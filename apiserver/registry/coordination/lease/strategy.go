// Package lease serves coordination.k8s.io/v1 Leases.
package lease

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/warren-dev/warren/apiserver/registry"
)

func strategy() *registry.Strategy {
	s := registry.NewStrategy(true)
	s.Check = func(obj runtime.Object) field.ErrorList {
		spec, path := obj.(*coordinationv1.Lease).Spec, field.NewPath("spec")
		var errs field.ErrorList
		if d := spec.LeaseDurationSeconds; d != nil && *d <= 0 {
			errs = append(errs, field.Invalid(path.Child("leaseDurationSeconds"), *d, "must be greater than 0"))
		}
		if t := spec.LeaseTransitions; t != nil && *t < 0 {
			errs = append(errs, field.Invalid(path.Child("leaseTransitions"), *t, "must be greater than or equal to 0"))
		}
		return errs
	}
	return s
}
