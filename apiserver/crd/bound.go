package crd

import (
	"context"
	"encoding/json"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"

	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/apiserver/virtual/apiexport"
	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// BoundPrefix is the storage prefix of the objects of resource gr bound from
// the export of identity: beside a CRD's prefix, never inside it (keys below a
// prefix continue with "/"), and one per export, so two exports of one group
// and resource never see or overwrite each other's objects.
func BoundPrefix(gr schema.GroupResource, identity string) string {
	return registry.Prefix(gr) + ":" + identity
}

// boundDefinitions returns what the APIBindings of a cluster bind, by group
// and resource, served as CRDs: each bound resource of a binding (its
// status.boundResources, which warren's binding controller writes) with the
// schema it names, read from the export's cluster.
func boundDefinitions(ctx context.Context, bindings []apisv1alpha2.APIBinding, schemas rest.Getter) ([]*definition, error) {
	var out []*definition
	for i := range bindings {
		b := &bindings[i]
		for _, r := range b.Status.BoundResources {
			s, err := boundSchema(ctx, schemas, b.Status.APIExportClusterName, r)
			if err != nil {
				return nil, fmt.Errorf("binding %s: %w", b.Name, err)
			}
			if s == nil {
				continue
			}
			crd, err := boundCRD(s)
			if err != nil {
				return nil, fmt.Errorf("binding %s: %w", b.Name, err)
			}
			if b.DeletionTimestamp != nil {
				crd.DeletionTimestamp = b.DeletionTimestamp
			}
			d, err := newBoundDefinition(crd, r.Schema.IdentityHash, b.Name)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// boundSchema reads the schema r was bound with: warren's copy of it (see
// tenancy.BoundSchemas), or, for a binding bound before copies were kept, the
// provider's, if it is still there; nil if neither is.
func boundSchema(ctx context.Context, schemas rest.Getter, exportCluster string, r apisv1alpha2.BoundAPIResource) (*apisv1alpha1.APIResourceSchema, error) {
	kept := genericapirequest.WithNamespace(logicalcluster.WithName(ctx, tenancy.BoundSchemas), "")
	obj, err := schemas.Get(kept, tenancy.BoundSchemaName(types.UID(r.Schema.UID)), &metav1.GetOptions{})
	if err == nil {
		// Served as the original: its name and UID.
		s := obj.(*apisv1alpha1.APIResourceSchema)
		s.Name, s.UID = r.Schema.Name, types.UID(r.Schema.UID)
		return s, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	provider := genericapirequest.WithNamespace(logicalcluster.WithName(ctx, logicalcluster.Name(exportCluster)), "")
	obj, err = schemas.Get(provider, r.Schema.Name, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if s := obj.(*apisv1alpha1.APIResourceSchema); string(s.UID) == r.Schema.UID {
		return s, nil
	}
	return nil, nil
}

// boundCRD is the CRD a schema is served as where it is bound: its names,
// scope and versions, accepted and established, with the schema's UID.
func boundCRD(s *apisv1alpha1.APIResourceSchema) (*apiextensionsv1.CustomResourceDefinition, error) {
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: s.Spec.Names.Plural + "." + s.Spec.Group, UID: types.UID(s.UID), CreationTimestamp: s.CreationTimestamp},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group:      s.Spec.Group,
			Names:      s.Spec.Names,
			Scope:      s.Spec.Scope,
			Conversion: &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.NoneConverter},
		},
	}
	for _, v := range s.Spec.Versions {
		props := &apiextensionsv1.JSONSchemaProps{}
		if err := json.Unmarshal(v.Schema.Raw, props); err != nil {
			return nil, fmt.Errorf("schema %s version %s: %w", s.Name, v.Name, err)
		}
		sub := v.Subresources
		crd.Spec.Versions = append(crd.Spec.Versions, apiextensionsv1.CustomResourceDefinitionVersion{
			Name:                     v.Name,
			Served:                   v.Served,
			Storage:                  v.Storage,
			Deprecated:               v.Deprecated,
			DeprecationWarning:       v.DeprecationWarning,
			Schema:                   &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: props},
			Subresources:             &sub,
			AdditionalPrinterColumns: v.AdditionalPrinterColumns,
		})
		if v.Storage {
			crd.Status.StoredVersions = []string{v.Name}
		}
	}
	crd.Status.AcceptedNames = s.Spec.Names
	now := metav1.Now()
	for _, t := range []apiextensionsv1.CustomResourceDefinitionConditionType{apiextensionsv1.NamesAccepted, apiextensionsv1.Established} {
		crd.Status.Conditions = append(crd.Status.Conditions, apiextensionsv1.CustomResourceDefinitionCondition{
			Type: t, Status: apiextensionsv1.ConditionTrue, LastTransitionTime: now,
		})
	}
	return crd, nil
}

// DeleteBound deletes the objects of cluster of the resources the APIBinding
// binding binds there, and fails if any are left.
func (h *Handler) DeleteBound(ctx context.Context, cluster logicalcluster.Name, binding string) error {
	ctx = genericapirequest.WithNamespace(logicalcluster.WithName(ctx, cluster), "")
	v, err := h.views.Get(ctx, cluster)
	if err != nil {
		return err
	}
	for gr, d := range v.served {
		if d.binding != binding {
			continue
		}
		if err := h.deleteAll(ctx, d); err != nil {
			return fmt.Errorf("%s: %w", gr, err)
		}
	}
	return nil
}

// exportDefinition is the definition of resource gr as the virtual workspace
// of the export of ref serves it: as the export exports it, under its
// identity, or as another export of the identity the export claims exports
// it; nil if it does neither.
func (h *Handler) exportDefinition(ctx context.Context, ref apiexport.Ref, gr schema.GroupResource) (*definition, error) {
	defs, err := h.exportDefinitions(ctx, ref, func(r apisv1alpha2.ResourceSchema) bool { return r.Group == gr.Group && r.Name == gr.Resource })
	if err != nil || len(defs) > 0 {
		return first(defs), err
	}
	claimed, err := h.claimedDefinitions(ctx, ref, func(c apisv1alpha2.PermissionClaim) bool { return c.Group == gr.Group && c.Resource == gr.Resource })
	return first(claimed), err
}

func first(defs []*definition) *definition {
	if len(defs) == 0 {
		return nil
	}
	return defs[0]
}

// claimedDefinitions are the definitions of the resources of other exports
// the export of ref claims (by identity hash) that want selects: in one
// cluster, as that cluster bound it; across clusters, as an export of that
// identity exports it.
func (h *Handler) claimedDefinitions(ctx context.Context, ref apiexport.Ref, want func(apisv1alpha2.PermissionClaim) bool) ([]*definition, error) {
	export, err := h.config.Exports.Export(ctx, ref)
	if err != nil || export == nil {
		return nil, err
	}
	target, inCluster := logicalcluster.From(ctx)
	inCluster = inCluster && target != logicalcluster.Wildcard
	var out []*definition
	for _, c := range export.Spec.PermissionClaims {
		if c.IdentityHash == "" || !want(c) {
			continue
		}
		if inCluster {
			// In one cluster, the resource as that cluster bound it.
			v, err := h.views.Get(ctx, target)
			if err != nil {
				return nil, err
			}
			gr := schema.GroupResource{Group: c.Group, Resource: c.Resource}
			if d := v.served[gr]; d != nil && d.prefix == BoundPrefix(gr, c.IdentityHash) {
				out = append(out, d)
			}
			continue
		}
		source, ok := h.config.ExportOfIdentity(c.IdentityHash)
		if !ok {
			continue
		}
		defs, err := h.exportDefinitions(ctx, source, func(r apisv1alpha2.ResourceSchema) bool { return r.Group == c.Group && r.Name == c.Resource })
		if err != nil {
			return nil, err
		}
		out = append(out, defs...)
	}
	return out, nil
}

// exportDefinitions are the definitions of the resources of the export of ref
// that want selects, each under the export's identity. An export without an
// identity serves none; a schema that is gone leaves its resource out. They
// are built once per version of the export's cluster.
func (h *Handler) exportDefinitions(ctx context.Context, ref apiexport.Ref, want func(apisv1alpha2.ResourceSchema) bool) ([]*definition, error) {
	p, err := h.config.Exports.Get(ctx, ref.Cluster)
	if err != nil {
		return nil, err
	}
	all, err := p.Memo("definitions/"+ref.Export, func() (any, error) { return exportedDefinitions(p, ref.Export) })
	if err != nil {
		return nil, err
	}
	var out []*definition
	for _, d := range all.([]exportedDefinition) {
		if want(d.resource) {
			out = append(out, d.definition)
		}
	}
	return out, nil
}

// exportedDefinition is the definition of one resource of an export.
type exportedDefinition struct {
	resource apisv1alpha2.ResourceSchema
	*definition
}

// exportedDefinitions are the definitions of every resource of the export
// name of p.
func exportedDefinitions(p *apiexport.Provider, name string) ([]exportedDefinition, error) {
	export := p.Export(name)
	if export == nil || export.Status.IdentityHash == "" {
		return nil, nil
	}
	var out []exportedDefinition
	for _, r := range export.Spec.Resources {
		s := p.Schema(r.Schema)
		if r.Storage.CRD == nil || s == nil {
			continue
		}
		crd, err := boundCRD(s)
		if err != nil {
			return nil, err
		}
		d, err := newBoundDefinition(crd, export.Status.IdentityHash, "")
		if err != nil {
			return nil, err
		}
		out = append(out, exportedDefinition{resource: r, definition: d})
	}
	return out, nil
}
