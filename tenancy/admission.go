package tenancy

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"

	corev1alpha1 "github.com/warren-dev/warren/tenancy/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/warren-dev/warren/tenancy/apis/tenancy/v1alpha1"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// Admission places a new workspace in the tree: it defaults its type to the
// parent type's default child type and refuses it where its type may not go
// (a type the parent's type does not allow as a child, or one that does not
// allow the parent's type as a parent), of a type that does not exist, or in a
// parent that is not Ready.
type Admission struct {
	*admission.Handler
	index *Index
}

var (
	_ admission.MutationInterface   = (*Admission)(nil)
	_ admission.ValidationInterface = (*Admission)(nil)
)

// NewAdmission returns the plugin.
func NewAdmission(index *Index) *Admission {
	return &Admission{Handler: admission.NewHandler(admission.Create), index: index}
}

var typePathField = field.NewPath("spec", "type")

// workspace returns the workspace a create of attrs makes, if it is one.
func workspace(attrs admission.Attributes) (*tenancyv1alpha1.Workspace, bool) {
	if attrs.GetResource().GroupResource() != tenancyv1alpha1.SchemeGroupVersion.WithResource("workspaces").GroupResource() || attrs.GetSubresource() != "" {
		return nil, false
	}
	ws, ok := attrs.GetObject().(*tenancyv1alpha1.Workspace)
	return ws, ok
}

// Admit implements admission.MutationInterface: it records the creator as the
// workspace's owner and defaults its type.
func (a *Admission) Admit(ctx context.Context, attrs admission.Attributes, _ admission.ObjectInterfaces) error {
	ws, ok := workspace(attrs)
	if !ok {
		return nil
	}
	delete(ws.Annotations, OwnerAnnotation)
	if u := attrs.GetUserInfo(); u != nil && u.GetName() != "" {
		if ws.Annotations == nil {
			ws.Annotations = map[string]string{}
		}
		ws.Annotations[OwnerAnnotation] = u.GetName()
	}
	if ws.Spec.Type.Name != "" {
		if ws.Spec.Type.Path == "" {
			ws.Spec.Type.Path = string(RootPath)
		}
		return nil
	}
	_, parentType, err := a.parent(ctx)
	if err != nil {
		return err
	}
	ws.Spec.Type = corev1alpha1.TypeReference{Name: Universal, Path: string(RootPath)}
	if d := parentType.Spec.DefaultChildType; d != nil {
		ws.Spec.Type = corev1alpha1.TypeReference{Name: d.Name, Path: typePath(*d)}
	}
	return nil
}

// Validate implements admission.ValidationInterface.
func (a *Admission) Validate(ctx context.Context, attrs admission.Attributes, _ admission.ObjectInterfaces) error {
	ws, ok := workspace(attrs)
	if !ok {
		return nil
	}
	parent, parentType, err := a.parent(ctx)
	if err != nil {
		return err
	}
	if phase := parent.Phase; phase != corev1alpha1.Ready {
		return admission.NewForbidden(attrs, fmt.Errorf("workspace %s is %s", parent.Path, phase))
	}
	invalid := func(detail string) error {
		return apierrors.NewInvalid(tenancyv1alpha1.SchemeGroupVersion.WithKind("Workspace").GroupKind(), ws.Name,
			field.ErrorList{field.Invalid(typePathField, typeName(ws.Spec.Type), detail)})
	}
	wt, err := a.index.Type(ctx, ws.Spec.Type)
	if apierrors.IsNotFound(err) {
		return invalid("no such workspace type")
	}
	if err != nil {
		return err
	}
	if !selects(wt.Spec.LimitAllowedParents, parent.Type) {
		return invalid(fmt.Sprintf("a workspace of this type may not be created in %s, whose type is %s", parent.Path, typeName(parent.Type)))
	}
	if !selects(parentType.Spec.LimitAllowedChildren, ws.Spec.Type) {
		return invalid(fmt.Sprintf("workspaces of type %s (as %s is) may not have children of this type", typeName(parent.Type), parent.Path))
	}
	return nil
}

// parent returns the cluster a workspace is being created in and its type.
func (a *Admission) parent(ctx context.Context) (*Cluster, *tenancyv1alpha1.WorkspaceType, error) {
	name, ok := logicalcluster.From(ctx)
	if !ok || name == logicalcluster.Wildcard {
		return nil, nil, apierrors.NewBadRequest("a workspace is created in one workspace")
	}
	parent, err := a.index.Cluster(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	wt, err := a.index.Type(ctx, parent.Type)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the type %s of %s: %w", typeName(parent.Type), parent.Path, err)
	}
	return parent, wt, nil
}

// selects reports whether s selects the type ref; no selector selects all.
func selects(s *tenancyv1alpha1.TypeSelector, ref corev1alpha1.TypeReference) bool {
	if s == nil {
		return true
	}
	if s.None {
		return false
	}
	if len(s.Types) == 0 {
		return true
	}
	for _, t := range s.Types {
		if t.Name == ref.Name && typePath(t) == typePath(ref) {
			return true
		}
	}
	return false
}

// typeName spells a type reference as <path>:<name>.
func typeName(ref corev1alpha1.TypeReference) string {
	return typePath(ref) + separator + ref.Name
}
