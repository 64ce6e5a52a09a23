package registry

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/names"

	"github.com/warren-dev/warren/apiserver/scheme"
)

var errNoCluster = errors.New("the request carries no logical cluster")

// Strategy is the create, update and delete strategy of one resource: metadata is
// validated as Kubernetes does for every object, the rest by the resource's
// functions.
type Strategy struct {
	runtime.ObjectTyper
	names.NameGenerator

	Namespaced bool
	// Name validates metadata.name; nil means a DNS subdomain.
	Name validation.ValidateNameFunc
	// Check validates an object as stored after create or update.
	Check func(obj runtime.Object) field.ErrorList
	// CheckChange validates what an update may not change; nil allows everything.
	CheckChange func(obj, old runtime.Object) field.ErrorList
	// Prepare normalises an object before create (old is nil) or update.
	Prepare func(obj, old runtime.Object)
	// Fields adds the resource's own field selector fields to metadata.name
	// and metadata.namespace.
	Fields func(obj runtime.Object) fields.Set
}

// NewStrategy returns a strategy over warren's scheme.
func NewStrategy(namespaced bool) *Strategy {
	return &Strategy{ObjectTyper: scheme.Scheme, NameGenerator: names.SimpleNameGenerator, Namespaced: namespaced}
}

func (s *Strategy) NamespaceScoped() bool { return s.Namespaced }

func (s *Strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	if s.Prepare != nil {
		s.Prepare(obj, nil)
	}
}

func (s *Strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	if s.Prepare != nil {
		s.Prepare(obj, old)
	}
}

func (s *Strategy) nameFunc() validation.ValidateNameFunc {
	if s.Name != nil {
		return s.Name
	}
	return validation.NameIsDNSSubdomain
}

func (s *Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	m, err := meta.Accessor(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	errs := validation.ValidateObjectMetaAccessor(m, s.Namespaced, s.nameFunc(), field.NewPath("metadata"))
	if s.Check != nil {
		errs = append(errs, s.Check(obj)...)
	}
	return errs
}

func (s *Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	m, err := meta.Accessor(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	oldMeta, err := meta.Accessor(old)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	errs := validation.ValidateObjectMetaAccessorUpdate(m, oldMeta, field.NewPath("metadata"))
	if s.Check != nil {
		errs = append(errs, s.Check(obj)...)
	}
	if s.CheckChange != nil {
		errs = append(errs, s.CheckChange(obj, old)...)
	}
	return errs
}

func (s *Strategy) WarningsOnCreate(context.Context, runtime.Object) []string { return nil }
func (s *Strategy) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}
func (s *Strategy) Canonicalize(runtime.Object)                   {}
func (s *Strategy) AllowCreateOnUpdate(context.Context) bool      { return false }
func (s *Strategy) AllowUnconditionalUpdate(context.Context) bool { return true }

// attrs returns the labels and selectable fields of an object.
func (s *Strategy) attrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, err
	}
	fs := fields.Set{"metadata.name": m.GetName()}
	if s.Namespaced {
		fs["metadata.namespace"] = m.GetNamespace()
	}
	if s.Fields != nil {
		fs = generic.MergeFieldsSets(fs, s.Fields(obj))
	}
	return m.GetLabels(), fs, nil
}

// predicate matches objects by label and field selectors.
func (s *Strategy) predicate(label labels.Selector, field fields.Selector) storage.SelectionPredicate {
	return storage.SelectionPredicate{Label: label, Field: field, GetAttrs: s.attrs}
}
