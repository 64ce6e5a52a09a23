package tenancy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	"github.com/kcp-dev/sdk/apis/core"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// UseVerb is the verb on a WorkspaceType, in the workspace holding it, that
// lets a user create workspaces of that type.
const UseVerb = "use"

// Admission places a new workspace in the tree, as kcp's admission does: it
// records the creator as the workspace's owner, defaults its type to the parent
// type's default child type, resolves the type (a reference without a path
// names the nearest type of that name up the tree), sets its URL, and refuses
// it where its type may not go (a type the parent's type does not allow as a
// child, or one that does not allow the parent's type as a parent, counting
// every type a type extends), of a type that does not exist or that the
// creator may not use, or in a parent that is not Ready. It schedules the
// workspace on a shard matching its location. It also stamps
// WorkspaceTypes with the path of the workspace holding them (kcp.io/path).
type Admission struct {
	*admission.Handler
	index  *Index
	use    authorizer.Authorizer
	shards Shards
}

var (
	_ admission.MutationInterface   = (*Admission)(nil)
	_ admission.ValidationInterface = (*Admission)(nil)
)

// NewAdmission returns the plugin. use decides the verb "use" on types in the
// workspace holding them by RBAC alone, as kcp's deep access review does (no
// "access" to that workspace is needed); shards place new workspaces.
func NewAdmission(index *Index, use authorizer.Authorizer, shards Shards) *Admission {
	return &Admission{Handler: admission.NewHandler(admission.Create, admission.Update), index: index, use: use, shards: shards}
}

var typeField = field.NewPath("spec", "type")

// workspace returns the workspace a create of attrs makes, if it is one.
func workspace(attrs admission.Attributes) (*tenancyv1alpha1.Workspace, bool) {
	if attrs.GetOperation() != admission.Create || attrs.GetResource().GroupResource() != workspacesResource || attrs.GetSubresource() != "" {
		return nil, false
	}
	ws, ok := attrs.GetObject().(*tenancyv1alpha1.Workspace)
	return ws, ok
}

// Admit implements admission.MutationInterface.
func (a *Admission) Admit(ctx context.Context, attrs admission.Attributes, _ admission.ObjectInterfaces) error {
	if gr := attrs.GetResource().GroupResource(); gr == tenancyv1alpha1.Resource("workspacetypes") || gr == apisv1alpha2.Resource("apiexports") {
		if attrs.GetSubresource() == "" {
			return a.stampPath(ctx, attrs)
		}
	}
	ws, ok := workspace(attrs)
	if !ok {
		return nil
	}
	if err := setOwner(ws, attrs.GetUserInfo()); err != nil {
		return err
	}
	parent, parentType, err := a.parent(ctx)
	if err != nil {
		return err
	}
	if ws.Spec.Type == nil || ws.Spec.Type.Name == "" {
		d := parentType.Spec.DefaultChildWorkspaceType
		if d == nil {
			return admission.NewForbidden(attrs, fmt.Errorf("workspace type %s of %s has no default child type: spec.type must be set", typeName(canonical(parentType)), parent.Path))
		}
		ws.Spec.Type = d.DeepCopy()
	}
	if wt, err := a.index.findType(ctx, parent.Path, *ws.Spec.Type); err == nil {
		// Validate refuses a type that cannot be found; here it only gets
		// its path and labels.
		ws.Spec.Type.Path = canonical(wt).Path
		for k, v := range wt.Spec.AdditionalWorkspaceLabels {
			if _, set := ws.Labels[k]; !set {
				if ws.Labels == nil {
					ws.Labels = map[string]string{}
				}
				ws.Labels[k] = v
			}
		}
	}
	selector, err := locationSelector(ws)
	if err != nil {
		return admission.NewForbidden(attrs, err)
	}
	// Only warren places a workspace; one no shard can take now waits in
	// Scheduling for one.
	delete(ws.Annotations, ShardAnnotation)
	ws.Spec.URL = ""
	if shard, ok := a.shards.Schedule(selector); ok {
		assign(ws, shard, parent.Path)
	}
	return nil
}

// assign places ws, a child of the workspace at parent, on shard, as kcp
// records it: the shard's name in an annotation, its region in a label, and
// the URL of ws at the shard's external address.
func assign(ws *tenancyv1alpha1.Workspace, shard Shard, parent Path) {
	if ws.Annotations == nil {
		ws.Annotations = map[string]string{}
	}
	ws.Annotations[ShardAnnotation] = shard.Name
	if region, ok := shard.Labels[RegionLabel]; ok {
		if ws.Labels == nil {
			ws.Labels = map[string]string{}
		}
		ws.Labels[RegionLabel] = region
	}
	ws.Spec.URL = shard.ExternalURL + clustersPrefix + string(parent.Join(ws.Name))
}

// RegionLabel is the label of a Shard its workspaces copy.
const RegionLabel = "region"

// setOwner records u as the owner of ws, as kcp does: the installation's
// admins own nothing, and nobody can name another owner.
func setOwner(ws *tenancyv1alpha1.Workspace, u user.Info) error {
	delete(ws.Annotations, tenancyv1alpha1.ExperimentalWorkspaceOwnerAnnotationKey)
	if u == nil || u.GetName() == "" || slices.Contains(u.GetGroups(), user.SystemPrivilegedGroup) {
		return nil
	}
	owner, err := ownerAnnotation(userInfo(u))
	if err != nil {
		return fmt.Errorf("recording the owner of workspace %s: %w", ws.Name, err)
	}
	if ws.Annotations == nil {
		ws.Annotations = map[string]string{}
	}
	ws.Annotations[tenancyv1alpha1.ExperimentalWorkspaceOwnerAnnotationKey] = owner
	return nil
}

// ownerAnnotation is the value of kcp's owner annotation naming u.
func ownerAnnotation(u authenticationv1.UserInfo) (string, error) {
	b, err := json.Marshal(u)
	if err != nil {
		return "", fmt.Errorf("the owner annotation of %q: %w", u.Username, err)
	}
	return string(b), nil
}

// Owner returns the user who created ws, from its owner annotation, or nil.
func Owner(annotations map[string]string) (*authenticationv1.UserInfo, error) {
	s, ok := annotations[tenancyv1alpha1.ExperimentalWorkspaceOwnerAnnotationKey]
	if !ok {
		return nil, nil
	}
	var u authenticationv1.UserInfo
	if err := json.Unmarshal([]byte(s), &u); err != nil {
		return nil, fmt.Errorf("annotation %s: %w", tenancyv1alpha1.ExperimentalWorkspaceOwnerAnnotationKey, err)
	}
	return &u, nil
}

// stampPath annotates a WorkspaceType or an APIExport with the path of its
// workspace, as kcp does: others refer to them by that path.
func (a *Admission) stampPath(ctx context.Context, attrs admission.Attributes) error {
	obj, err := meta.Accessor(attrs.GetObject())
	if err != nil {
		return nil
	}
	name, ok := logicalcluster.From(ctx)
	if !ok || name == logicalcluster.Wildcard {
		return apierrors.NewBadRequest(fmt.Sprintf("%s are written in one workspace", attrs.GetResource().Resource))
	}
	c, err := a.index.Cluster(ctx, name)
	if err != nil {
		return err
	}
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[core.LogicalClusterPathAnnotationKey] = string(c.Path)
	obj.SetAnnotations(annotations)
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
	if phase := parent.Phase; phase != corev1alpha1.LogicalClusterPhaseReady {
		return admission.NewForbidden(attrs, fmt.Errorf("workspace %s is %s", parent.Path, phase))
	}
	invalid := func(detail string) error {
		return apierrors.NewInvalid(tenancyv1alpha1.Kind("Workspace"), ws.Name,
			field.ErrorList{field.Invalid(typeField, typeName(*ws.Spec.Type), detail)})
	}
	wt, err := a.index.findType(ctx, parent.Path, *ws.Spec.Type)
	if apierrors.IsNotFound(err) {
		return invalid("no such workspace type")
	}
	if err != nil {
		return err
	}
	types, err := a.index.aliases(ctx, wt)
	if err != nil {
		return invalid(err.Error())
	}
	for _, t := range types {
		if err := a.mayUse(ctx, attrs, t); err != nil {
			return err
		}
	}
	parentTypes, err := a.index.aliases(ctx, parentType)
	if err != nil {
		return fmt.Errorf("the type of %s: %w", parent.Path, err)
	}
	if msg := placement(parentTypes, types, typeName(parent.Type), typeName(*ws.Spec.Type)); msg != "" {
		return invalid(msg)
	}
	return nil
}

// mayUse says why the creator of attrs may not use the type wt, or nil.
func (a *Admission) mayUse(ctx context.Context, attrs admission.Attributes, wt *tenancyv1alpha1.WorkspaceType) error {
	ref := canonical(wt)
	holder, err := a.index.Resolve(ctx, ref.Path)
	if err != nil {
		return fmt.Errorf("the workspace of type %s: %w", typeName(ref), err)
	}
	use := authorizer.AttributesRecord{
		User:            attrs.GetUserInfo(),
		Verb:            UseVerb,
		APIGroup:        tenancyv1alpha1.SchemeGroupVersion.Group,
		APIVersion:      tenancyv1alpha1.SchemeGroupVersion.Version,
		Resource:        "workspacetypes",
		Name:            wt.Name,
		ResourceRequest: true,
	}
	decision, _, err := a.use.Authorize(logicalcluster.WithName(ctx, holder.Name), use)
	if err != nil {
		return admission.NewForbidden(attrs, fmt.Errorf("unable to determine access to workspace type %s: %w", typeName(ref), err))
	}
	if decision != authorizer.DecisionAllow {
		return admission.NewForbidden(attrs, fmt.Errorf("unable to use workspace type %s: missing verb='%s' permission on workspacetype", typeName(ref), UseVerb))
	}
	return nil
}

// placement says why a workspace whose type is child (with the types it
// extends, childTypes) may not be created in one whose type is parent (with
// parentTypes), or "" if it may.
func placement(parentTypes, childTypes []*tenancyv1alpha1.WorkspaceType, parent, child string) string {
	allowedParents := func(t *tenancyv1alpha1.WorkspaceType) *tenancyv1alpha1.WorkspaceTypeSelector {
		return t.Spec.LimitAllowedParents
	}
	if msg := limits(childTypes, allowedParents, parentTypes, child, parent, "parent"); msg != "" {
		return msg
	}
	allowedChildren := func(t *tenancyv1alpha1.WorkspaceType) *tenancyv1alpha1.WorkspaceTypeSelector {
		return t.Spec.LimitAllowedChildren
	}
	return limits(parentTypes, allowedChildren, childTypes, parent, child, "child")
}

// limits says why types (the type named and those it extends) do not allow
// others (the type other and those it extends) as their relation ("parent" or
// "child") by the selectors limit returns, or "" if they do.
func limits(types []*tenancyv1alpha1.WorkspaceType, limit func(*tenancyv1alpha1.WorkspaceType) *tenancyv1alpha1.WorkspaceTypeSelector,
	others []*tenancyv1alpha1.WorkspaceType, named, other, relation string) string {
	for _, t := range types {
		l := limit(t)
		switch {
		case l == nil:
		case l.None:
			return fmt.Sprintf("workspace type %s cannot have any %s", named, relation)
		case len(l.Types) > 0 && !implements(others, l.Types):
			return fmt.Sprintf("workspace type %s%s only allows %s %s workspaces, but %s type %s only implements %s",
				named, extending(t, named), refNames(l.Types), relation, relation, other, names(others))
		}
	}
	return ""
}

// extending says, for messages, that a rule comes from a type that named
// extends rather than from named itself.
func extending(rule *tenancyv1alpha1.WorkspaceType, named string) string {
	if n := typeName(canonical(rule)); n != named {
		return " extends " + n + ", which"
	}
	return ""
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
