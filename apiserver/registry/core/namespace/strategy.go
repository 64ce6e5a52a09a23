// Package namespace serves core/v1 Namespaces and their lifecycle: a deleted
// namespace turns Terminating and stays until its contents are gone and the
// "kubernetes" finalizer is removed through the finalize subresource.
package namespace

import (
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/warren-dev/warren/apiserver/registry"
)

// nameLabel is the label every namespace carries with its own name.
const nameLabel = "kubernetes.io/metadata.name"

func strategy() *registry.Strategy {
	s := registry.NewStrategy(false)
	s.Name = apivalidation.ValidateNamespaceName
	s.Prepare = func(obj, old runtime.Object) {
		ns := obj.(*corev1.Namespace)
		if old == nil {
			ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
			if !hasFinalizer(ns) {
				ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
			}
		} else {
			// Status and spec.finalizers change only through the lifecycle.
			prev := old.(*corev1.Namespace)
			ns.Status = prev.Status
			ns.Spec.Finalizers = prev.Spec.Finalizers
		}
		labelName(ns)
	}
	s.Check = check
	s.Fields = func(obj runtime.Object) fields.Set {
		return fields.Set{"status.phase": string(obj.(*corev1.Namespace).Status.Phase)}
	}
	return s
}

// finalizeStrategy changes only spec.finalizers.
func finalizeStrategy() *registry.Strategy {
	s := strategy()
	s.Prepare = func(obj, old runtime.Object) {
		ns, prev := obj.(*corev1.Namespace), old.(*corev1.Namespace)
		finalizers := ns.Spec.Finalizers
		*ns = *prev.DeepCopy()
		ns.Spec.Finalizers = finalizers
	}
	return s
}

func labelName(ns *corev1.Namespace) {
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[nameLabel] = ns.Name
}

func hasFinalizer(ns *corev1.Namespace) bool {
	for _, f := range ns.Spec.Finalizers {
		if f == corev1.FinalizerKubernetes {
			return true
		}
	}
	return false
}

func check(obj runtime.Object) field.ErrorList {
	var errs field.ErrorList
	for i, f := range obj.(*corev1.Namespace).Spec.Finalizers {
		for _, msg := range validation.IsQualifiedName(string(f)) {
			errs = append(errs, field.Invalid(field.NewPath("spec", "finalizers").Index(i), f, msg))
		}
	}
	return errs
}
