// Package configmap serves core/v1 ConfigMaps.
package configmap

import (
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/warren-dev/warren/apiserver/registry"
)

// maxSize is the most bytes the data of one ConfigMap may hold, as in Kubernetes.
const maxSize = 1 << 20

func strategy() *registry.Strategy {
	s := registry.NewStrategy(true)
	s.Check = func(obj runtime.Object) field.ErrorList {
		cm := obj.(*corev1.ConfigMap)
		return ValidateData(cm.Data, cm.BinaryData, field.NewPath("data"), field.NewPath("binaryData"))
	}
	s.CheckChange = func(obj, old runtime.Object) field.ErrorList {
		cm, oldCM := obj.(*corev1.ConfigMap), old.(*corev1.ConfigMap)
		return ValidateImmutable(cm.Immutable, oldCM.Immutable,
			reflect.DeepEqual(cm.Data, oldCM.Data) && reflect.DeepEqual(cm.BinaryData, oldCM.BinaryData))
	}
	return s
}

// ValidateData checks the keys and total size of a ConfigMap's or Secret's data:
// keys are what a file name in a volume may be, no key is in both maps, and
// everything fits in 1 MiB.
func ValidateData(text map[string]string, binary map[string][]byte, textPath, binaryPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	size := 0
	for key, value := range text {
		for _, msg := range validation.IsConfigMapKey(key) {
			errs = append(errs, field.Invalid(textPath.Key(key), key, msg))
		}
		size += len(value)
	}
	for key, value := range binary {
		for _, msg := range validation.IsConfigMapKey(key) {
			errs = append(errs, field.Invalid(binaryPath.Key(key), key, msg))
		}
		if _, ok := text[key]; ok {
			errs = append(errs, field.Invalid(binaryPath.Key(key), key, "duplicate of key present in "+textPath.String()))
		}
		size += len(value)
	}
	if size > maxSize {
		errs = append(errs, field.TooLong(textPath, "", maxSize))
	}
	return errs
}

// ValidateImmutable refuses to change the data of an immutable object or to make
// it mutable again.
func ValidateImmutable(immutable, wasImmutable *bool, sameData bool) field.ErrorList {
	if wasImmutable == nil || !*wasImmutable {
		return nil
	}
	var errs field.ErrorList
	if immutable == nil || !*immutable {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
	}
	if !sameData {
		errs = append(errs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
	}
	return errs
}
