// Package serviceaccount serves core/v1 ServiceAccounts.
package serviceaccount

import (
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/warren-dev/warren/apiserver/registry"
)

func strategy() *registry.Strategy {
	s := registry.NewStrategy(true)
	s.Check = func(obj runtime.Object) field.ErrorList {
		var errs field.ErrorList
		sa := obj.(*corev1.ServiceAccount)
		for i, ref := range sa.ImagePullSecrets {
			for _, msg := range apivalidation.NameIsDNSSubdomain(ref.Name, false) {
				errs = append(errs, field.Invalid(field.NewPath("imagePullSecrets").Index(i).Child("name"), ref.Name, msg))
			}
		}
		return errs
	}
	return s
}
