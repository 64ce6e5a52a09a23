package crd

import (
	"context"
	"fmt"
	"sort"

	"k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/warren-dev/warren/tenancy/clusterwatch"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// statusWriter updates the status (and finalizers) of CRDs.
type statusWriter interface {
	rest.Getter
	rest.Updater
}

// Controller keeps the status of every cluster's CRDs: it accepts names that
// do not conflict with another CRD of the same group in the same cluster,
// establishes CRDs whose names are accepted, flags non-structural schemas and,
// when a CRD is deleted, deletes its custom resources before letting it go.
// One instance serves all clusters, fed by a wildcard watch of CRDs.
type Controller struct {
	handler *Handler
	status  statusWriter
}

// NewController returns the controller of the CRDs h serves; status is the
// CRDs' status subresource.
func NewController(h *Handler, status statusWriter) *Controller {
	return &Controller{handler: h, status: status}
}

// Run works until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	w := &clusterwatch.Controller{Name: "customresourcedefinition", Source: c.handler.config.CRDs, Sync: c.sync}
	w.Run(ctx)
}

func (c *Controller) sync(ctx context.Context, r clusterwatch.Ref) error {
	ctx = genericapirequest.WithNamespace(logicalcluster.WithName(ctx, r.Cluster), "")
	list, err := c.handler.config.CRDs.List(ctx, &metainternalversion.ListOptions{})
	if err != nil {
		return err
	}
	var crd *apiextensions.CustomResourceDefinition
	var others []*apiextensions.CustomResourceDefinition
	for i := range list.(*apiextensions.CustomResourceDefinitionList).Items {
		item := &list.(*apiextensions.CustomResourceDefinitionList).Items[i]
		if item.Name == r.Name {
			crd = item.DeepCopy()
		} else {
			others = append(others, item)
		}
	}
	if crd == nil {
		return nil
	}
	if !crd.DeletionTimestamp.IsZero() {
		return c.finalize(ctx, crd)
	}
	before := crd.Status.DeepCopy()
	acceptNames(crd, others)
	flagNonStructural(crd)
	if equalStatus(before, &crd.Status) {
		return nil
	}
	return c.writeStatus(ctx, crd)
}

func (c *Controller) writeStatus(ctx context.Context, crd *apiextensions.CustomResourceDefinition) error {
	_, _, err := c.status.Update(ctx, crd.Name, rest.DefaultUpdatedObjectInfo(crd), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // changed or gone meanwhile: the watch brings it back
	}
	return err
}

// acceptNames accepts the names crd asks for unless another CRD of its group
// holds one of them, and establishes it once they are accepted. A CRD once
// established stays so, serving its last accepted names.
func acceptNames(crd *apiextensions.CustomResourceDefinition, others []*apiextensions.CustomResourceDefinition) {
	resourceNames, kindNames := sets.New[string](), sets.New[string]()
	for _, o := range others {
		if o.Spec.Group != crd.Spec.Group {
			continue
		}
		n := o.Status.AcceptedNames
		resourceNames.Insert(n.Plural, n.Singular)
		resourceNames.Insert(n.ShortNames...)
		kindNames.Insert(n.Kind, n.ListKind)
	}
	want := crd.Spec.Names
	cond := apiextensions.CustomResourceDefinitionCondition{Type: apiextensions.NamesAccepted, Status: apiextensions.ConditionTrue, Reason: "NoConflicts", Message: "no conflicts found"}
	switch {
	case resourceNames.HasAny(append([]string{want.Plural, want.Singular}, want.ShortNames...)...):
		cond.Status, cond.Reason = apiextensions.ConditionFalse, "NameConflict"
		cond.Message = fmt.Sprintf("%q, %q or a short name is already in use in group %s", want.Plural, want.Singular, crd.Spec.Group)
	case kindNames.HasAny(want.Kind, want.ListKind):
		cond.Status, cond.Reason = apiextensions.ConditionFalse, "KindConflict"
		cond.Message = fmt.Sprintf("%q or %q is already in use in group %s", want.Kind, want.ListKind, crd.Spec.Group)
	default:
		crd.Status.AcceptedNames = want
	}
	apiextensions.SetCRDCondition(crd, cond)
	if cond.Status == apiextensions.ConditionTrue && !apiextensions.IsCRDConditionTrue(crd, apiextensions.Established) {
		apiextensions.SetCRDCondition(crd, apiextensions.CustomResourceDefinitionCondition{
			Type: apiextensions.Established, Status: apiextensions.ConditionTrue, Reason: "InitialNamesAccepted", Message: "the initial names have been accepted",
		})
	}
}

// flagNonStructural sets the NonStructuralSchema condition while a schema
// violates the structural rules, which only CRDs stored before those rules can.
func flagNonStructural(crd *apiextensions.CustomResourceDefinition) {
	var violations field.ErrorList
	for _, v := range crd.Spec.Versions {
		validation := crd.Spec.Validation
		if v.Schema != nil {
			validation = v.Schema
		}
		if validation == nil || validation.OpenAPIV3Schema == nil {
			continue
		}
		path := field.NewPath("spec", "versions").Key(v.Name).Child("schema", "openAPIV3Schema")
		s, err := structuralschema.NewStructural(validation.OpenAPIV3Schema)
		if err != nil {
			violations = append(violations, field.Invalid(path, "", err.Error()))
			continue
		}
		violations = append(violations, structuralschema.ValidateStructural(path, s)...)
	}
	if len(violations) == 0 {
		apiextensions.RemoveCRDCondition(crd, apiextensions.NonStructuralSchema)
		return
	}
	apiextensions.SetCRDCondition(crd, apiextensions.CustomResourceDefinitionCondition{
		Type: apiextensions.NonStructuralSchema, Status: apiextensions.ConditionTrue, Reason: "Violations", Message: violations.ToAggregate().Error(),
	})
}

// equalStatus compares statuses ignoring when conditions last changed.
func equalStatus(a, b *apiextensions.CustomResourceDefinitionStatus) bool {
	strip := func(s *apiextensions.CustomResourceDefinitionStatus) *apiextensions.CustomResourceDefinitionStatus {
		s = s.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastTransitionTime = metav1.Time{}
		}
		sort.Slice(s.Conditions, func(i, j int) bool { return s.Conditions[i].Type < s.Conditions[j].Type })
		return s
	}
	return apiequality.Semantic.DeepEqual(strip(a), strip(b))
}

// finalize deletes the custom resources of a deleted CRD, namespace by
// namespace, then removes its finalizer, which lets the CRD go.
func (c *Controller) finalize(ctx context.Context, crd *apiextensions.CustomResourceDefinition) error {
	if !apiextensions.CRDHasFinalizer(crd, apiextensions.CustomResourceCleanupFinalizer) {
		return nil
	}
	if apiextensions.IsCRDConditionTrue(crd, apiextensions.Established) {
		if err := c.deleteInstances(ctx, crd); err != nil {
			apiextensions.SetCRDCondition(crd, apiextensions.CustomResourceDefinitionCondition{
				Type: apiextensions.Terminating, Status: apiextensions.ConditionTrue, Reason: "InstanceDeletionFailed", Message: err.Error(),
			})
			if werr := c.writeStatus(ctx, crd); werr != nil {
				return fmt.Errorf("%w (and recording it: %v)", err, werr)
			}
			return err
		}
	}
	apiextensions.SetCRDCondition(crd, apiextensions.CustomResourceDefinitionCondition{
		Type: apiextensions.Terminating, Status: apiextensions.ConditionFalse, Reason: "InstanceDeletionCompleted", Message: "removed all instances",
	})
	apiextensions.CRDRemoveFinalizer(crd, apiextensions.CustomResourceCleanupFinalizer)
	return c.writeStatus(ctx, crd)
}

func (c *Controller) deleteInstances(ctx context.Context, internal *apiextensions.CustomResourceDefinition) error {
	crd, err := toV1(internal)
	if err != nil {
		return err
	}
	d, err := newDefinition(crd)
	if err != nil {
		return err
	}
	return c.handler.deleteAll(ctx, d)
}

// deleteAll deletes the objects of d in the cluster of ctx, namespace by
// namespace, and fails if any are left.
func (h *Handler) deleteAll(ctx context.Context, d *definition) error {
	crd := d.CustomResourceDefinition
	s, err := h.servedFor(d)
	if err != nil {
		return err
	}
	defer s.release()
	version, err := apihelpers.GetCRDStorageVersion(crd)
	if err != nil {
		return err
	}
	sv, ok := s.versions[version]
	if !ok {
		return fmt.Errorf("CRD %s serves no storage version", crd.Name)
	}
	store := sv.storage.CustomResource
	list, err := store.List(ctx, &metainternalversion.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing instances: %w", err)
	}
	namespaces := sets.New[string]()
	if err := meta.EachListItem(list, func(obj runtime.Object) error {
		m, err := meta.Accessor(obj)
		if err == nil {
			namespaces.Insert(m.GetNamespace())
		}
		return err
	}); err != nil {
		return err
	}
	for _, ns := range sets.List(namespaces) {
		inNamespace := genericapirequest.WithNamespace(ctx, ns)
		if _, err := store.DeleteCollection(inNamespace, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{}, &metainternalversion.ListOptions{}); err != nil {
			return fmt.Errorf("deleting instances in namespace %q: %w", ns, err)
		}
	}
	left, err := store.List(ctx, &metainternalversion.ListOptions{Limit: 1})
	if err != nil {
		return fmt.Errorf("listing instances: %w", err)
	}
	if meta.LenList(left) > 0 {
		return fmt.Errorf("instances of %s are left", crd.Name)
	}
	return nil
}
