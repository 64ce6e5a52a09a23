package tenancy

import (
	"context"
	"fmt"
	"slices"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/registry/rest"

	kcplogicalcluster "github.com/kcp-dev/logicalcluster/v3"
	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	"github.com/kcp-dev/sdk/apis/apis/v1alpha2/permissionclaims"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// BindVerb is the verb on an APIExport, in the workspace holding it, that lets
// a user bind it.
const BindVerb = "bind"

// Bind is the admission of APIBindings and APIExportEndpointSlices, as kcp's:
// whoever creates one, or changes the export it refers to, needs the verb bind
// on that APIExport in the export's workspace, decided there by RBAC alone (no
// access to that workspace is needed). A missing workspace, a missing export
// and a denial get one answer, so nobody learns by binding what exists where.
//
// It refuses, as kcp, a CustomResourceDefinition of a resource an APIBinding
// of the cluster binds, and a WorkspaceType whose default APIBindings its
// writer could not make.
//
// It labels each APIBinding with the export it binds
// (internal.apis.kcp.io/export, from the export's logical cluster and name, as
// kcp), which is how the export's virtual workspace finds its bindings; the
// label cannot be set to anything else.
//
// Unlike kcp, it lets only the installation's admins (and so the shards)
// write the status of APIBindings, APIExports and APIExportEndpointSlices:
// warren serves a bound resource from the identity and the schema a binding's
// status names, so a workspace admin who could write it could store objects
// under another provider's identity; and a provider's controller sends its
// credentials to every URL its slice lists.
type Bind struct {
	*admission.Handler
	index    *Index
	exports  rest.Getter
	bindings rest.Lister
	authz    authorizer.Authorizer
	admin    func(user.Info) bool
}

var (
	_ admission.ValidationInterface = (*Bind)(nil)
	_ admission.MutationInterface   = (*Bind)(nil)
)

// NewBind returns the plugin; authz decides bind in the export's workspace,
// exports reads APIExports, bindings lists APIBindings, admin tells the
// installation's admins.
func NewBind(index *Index, exports rest.Getter, bindings rest.Lister, authz authorizer.Authorizer, admin func(user.Info) bool) *Bind {
	return &Bind{Handler: admission.NewHandler(admission.Create, admission.Update), index: index, exports: exports, bindings: bindings, authz: authz, admin: admin}
}

// Admit implements admission.MutationInterface: it labels an APIBinding with
// its export. A reference that does not resolve gets no label; Validate
// refuses it.
func (b *Bind) Admit(ctx context.Context, attrs admission.Attributes, _ admission.ObjectInterfaces) error {
	binding, ok := attrs.GetObject().(*apisv1alpha2.APIBinding)
	if !ok || attrs.GetSubresource() != "" {
		return nil
	}
	key := apisv1alpha1.InternalAPIBindingExportLabelKey
	delete(binding.Labels, key)
	value := ""
	if old, ok := attrs.GetOldObject().(*apisv1alpha2.APIBinding); ok {
		// The reference is immutable, and so is the label.
		value = old.Labels[key]
	}
	if ref := bindingExport(binding); value == "" && ref != nil {
		if cluster, ok := b.exportCluster(ctx, *ref); ok {
			value = ExportLabel(cluster, ref.Name)
		}
	}
	if value == "" {
		return nil
	}
	if binding.Labels == nil {
		binding.Labels = map[string]string{}
	}
	binding.Labels[key] = value
	return nil
}

// ExportLabel is the value of the label internal.apis.kcp.io/export of the
// APIBindings of the export name in cluster.
func ExportLabel(cluster logicalcluster.Name, name string) string {
	return permissionclaims.ToAPIBindingExportLabelValue(kcplogicalcluster.Name(cluster), name)
}

// exportCluster is the logical cluster of the export ref names from the
// request's cluster.
func (b *Bind) exportCluster(ctx context.Context, ref apisv1alpha1.ExportBindingReference) (logicalcluster.Name, bool) {
	if ref.Path == "" {
		return logicalcluster.From(ctx)
	}
	c, err := b.index.Resolve(ctx, ref.Path)
	if err != nil {
		return "", false
	}
	return c.Name, true
}

// Validate implements admission.ValidationInterface.
func (b *Bind) Validate(ctx context.Context, attrs admission.Attributes, _ admission.ObjectInterfaces) error {
	if attrs.GetSubresource() == "status" {
		gr := attrs.GetResource().GroupResource()
		if (gr == apisv1alpha2.Resource("apibindings") || gr == apisv1alpha2.Resource("apiexports") || gr == apisv1alpha1.Resource("apiexportendpointslices")) && !b.admin(attrs.GetUserInfo()) {
			return admission.NewForbidden(attrs, fmt.Errorf("the status of %s is written by warren's controllers", gr.Resource))
		}
		return nil
	}
	if attrs.GetSubresource() != "" {
		return nil
	}
	var kind string
	var ref, old *apisv1alpha1.ExportBindingReference
	switch attrs.GetResource().GroupResource() {
	case apiextensions.Resource("customresourcedefinitions"):
		return b.unbound(ctx, attrs)
	case tenancyv1alpha1.Resource("workspacetypes"):
		return b.defaultBindings(ctx, attrs)
	case apisv1alpha2.Resource("apibindings"):
		kind = "APIBinding"
		ref = bindingExport(attrs.GetObject())
		old = bindingExport(attrs.GetOldObject())
	case apisv1alpha1.Resource("apiexportendpointslices"):
		kind = "APIExportEndpointSlice"
		ref = sliceExport(attrs.GetObject())
		old = sliceExport(attrs.GetOldObject())
	default:
		return nil
	}
	if ref == nil || ref.Name == "" || (old != nil && *old == *ref) {
		// Validation refuses a reference without a name.
		return nil
	}
	verb := "create"
	if attrs.GetOperation() == admission.Update {
		verb = "update"
	}
	if !b.mayBind(ctx, attrs, *ref, true) {
		export := ref.Name
		if ref.Path != "" {
			export = ref.Path + separator + ref.Name
		}
		return admission.NewForbidden(attrs, fmt.Errorf("unable to %s %s: no permission to bind to export %s", verb, kind, export))
	}
	return nil
}

// defaultBindings refuses a WorkspaceType naming in spec.defaultAPIBindings
// an export its writer may not bind (entries it had before are not asked
// again), with one answer whether the export's workspace is missing or bind
// is denied, as kcp. The export itself need not exist yet.
func (b *Bind) defaultBindings(ctx context.Context, attrs admission.Attributes) error {
	wt, ok := attrs.GetObject().(*tenancyv1alpha1.WorkspaceType)
	if !ok {
		return nil
	}
	var had []tenancyv1alpha1.APIExportReference
	if old, ok := attrs.GetOldObject().(*tenancyv1alpha1.WorkspaceType); ok {
		had = old.Spec.DefaultAPIBindings
	}
	for _, ref := range wt.Spec.DefaultAPIBindings {
		if slices.Contains(had, ref) {
			continue
		}
		if !b.mayBind(ctx, attrs, apisv1alpha1.ExportBindingReference{Path: ref.Path, Name: ref.Export}, false) {
			export := ref.Export
			if ref.Path != "" {
				export = ref.Path + separator + ref.Export
			}
			return admission.NewForbidden(attrs, fmt.Errorf("unable to create or update WorkspaceType: no permission to bind to export %s", export))
		}
	}
	return nil
}

// mayBind tells whether the user of attrs may bind the export ref names: its
// workspace exists, the export too if exists says so, and RBAC of its
// workspace grants bind on it.
func (b *Bind) mayBind(ctx context.Context, attrs admission.Attributes, ref apisv1alpha1.ExportBindingReference, exists bool) bool {
	cluster, ok := b.exportCluster(ctx, ref)
	if !ok {
		return false
	}
	if exists {
		if _, err := b.exports.Get(in(ctx, cluster), ref.Name, &metav1.GetOptions{}); err != nil {
			return false
		}
	}
	decision, _, err := b.authz.Authorize(logicalcluster.WithName(ctx, cluster), authorizer.AttributesRecord{
		User:            attrs.GetUserInfo(),
		Verb:            BindVerb,
		APIGroup:        apisv1alpha2.SchemeGroupVersion.Group,
		APIVersion:      apisv1alpha2.SchemeGroupVersion.Version,
		Resource:        "apiexports",
		Name:            ref.Name,
		ResourceRequest: true,
	})
	return err == nil && decision == authorizer.DecisionAllow
}

// bindingExport is the export an APIBinding refers to, nil for none.
func bindingExport(obj any) *apisv1alpha1.ExportBindingReference {
	b, ok := obj.(*apisv1alpha2.APIBinding)
	if !ok || b.Spec.Reference.Export == nil {
		return nil
	}
	return &apisv1alpha1.ExportBindingReference{Path: b.Spec.Reference.Export.Path, Name: b.Spec.Reference.Export.Name}
}

// sliceExport is the export an APIExportEndpointSlice lists, nil for none.
func sliceExport(obj any) *apisv1alpha1.ExportBindingReference {
	s, ok := obj.(*apisv1alpha1.APIExportEndpointSlice)
	if !ok {
		return nil
	}
	return &s.Spec.APIExport
}

// unbound refuses the create of a CRD of a resource a binding of its cluster
// binds.
func (b *Bind) unbound(ctx context.Context, attrs admission.Attributes) error {
	crd, ok := attrs.GetObject().(*apiextensions.CustomResourceDefinition)
	cluster, inCluster := logicalcluster.From(ctx)
	if !ok || !inCluster || attrs.GetOperation() != admission.Create {
		return nil
	}
	obj, err := b.bindings.List(in(ctx, cluster), &metainternalversion.ListOptions{})
	if err != nil {
		return err
	}
	for _, binding := range obj.(*apisv1alpha2.APIBindingList).Items {
		for _, r := range binding.Status.BoundResources {
			if r.Group == crd.Spec.Group && r.Resource == crd.Spec.Names.Plural {
				return admission.NewForbidden(attrs, fmt.Errorf("cannot create because resource is bound by APIBinding %q", binding.Name))
			}
		}
	}
	return nil
}
