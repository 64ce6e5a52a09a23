package crd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	"k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apiserver/pkg/endpoints/discovery"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/kube-openapi/pkg/spec3"

	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"

	"github.com/warren-dev/warren/apiserver/scheme"
	"github.com/warren-dev/warren/tenancy/clusterwatch"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// view is what one cluster's CRDs make of its API: the CRDs it serves, by
// resource, and — computed when first asked — their discovery and OpenAPI.
type view struct {
	// served are the CRDs whose names are accepted, by group and plural.
	served map[schema.GroupResource]*definition
	// established are the CRDs discovery shows, by group then name.
	established []*apiextensionsv1.CustomResourceDefinition

	once      sync.Once
	groups    []metav1.APIGroup
	resources map[schema.GroupVersion][]metav1.APIResource
	versions  map[string][]apidiscoveryv2.APIVersionDiscovery // by group
	openapi   map[schema.GroupVersion]*openapiDocument
	err       error

	rootOnce    sync.Once
	rootHandler http.Handler
}

// openapiDocument is the OpenAPI v3 document of one group version of a cluster.
type openapiDocument struct {
	json []byte
	hash string
}

// loadView lists the CRDs of a cluster and the resources its APIBindings bind.
// A CRD wins over a binding of the same resource (the binding controller
// refuses such a binding; this holds while it has not yet).
func loadView(crds, bindings listWatcher, schemas rest.Getter) clusterwatch.Load[*view] {
	return func(ctx context.Context, cluster logicalcluster.Name) (*view, uint64, error) {
		ctx = genericapirequest.WithNamespace(logicalcluster.WithName(ctx, cluster), "")
		obj, err := crds.List(ctx, &metainternalversion.ListOptions{})
		if err != nil {
			return nil, 0, fmt.Errorf("listing the CRDs of cluster %s: %w", cluster, err)
		}
		revision, err := clusterwatch.Revision(obj)
		if err != nil {
			return nil, 0, err
		}
		v := &view{served: map[schema.GroupResource]*definition{}}
		for i := range obj.(*apiextensions.CustomResourceDefinitionList).Items {
			crd, err := toV1(&obj.(*apiextensions.CustomResourceDefinitionList).Items[i])
			if err != nil {
				return nil, 0, err
			}
			if apihelpers.IsCRDConditionTrue(crd, apiextensionsv1.NamesAccepted) || apihelpers.IsCRDConditionTrue(crd, apiextensionsv1.Established) {
				d, err := newDefinition(crd)
				if err != nil {
					return nil, 0, err
				}
				v.served[schema.GroupResource{Group: crd.Spec.Group, Resource: crd.Status.AcceptedNames.Plural}] = d
			}
			if apihelpers.IsCRDConditionTrue(crd, apiextensionsv1.Established) {
				v.established = append(v.established, crd)
			}
		}
		bound, err := bindings.List(ctx, &metainternalversion.ListOptions{})
		if err != nil {
			return nil, 0, fmt.Errorf("listing the APIBindings of cluster %s: %w", cluster, err)
		}
		boundRevision, err := clusterwatch.Revision(bound)
		if err != nil {
			return nil, 0, err
		}
		revision = min(revision, boundRevision)
		definitions, err := boundDefinitions(ctx, bound.(*apisv1alpha2.APIBindingList).Items, schemas)
		if err != nil {
			return nil, 0, err
		}
		for _, d := range definitions {
			gr := schema.GroupResource{Group: d.Spec.Group, Resource: d.Spec.Names.Plural}
			if _, taken := v.served[gr]; taken {
				continue
			}
			v.served[gr] = d
			v.established = append(v.established, d.CustomResourceDefinition)
		}
		sort.Slice(v.established, func(i, j int) bool {
			a, b := v.established[i], v.established[j]
			return a.Spec.Group < b.Spec.Group || a.Spec.Group == b.Spec.Group && a.Name < b.Name
		})
		return v, revision, nil
	}
}

// definition is a served CRD and the hash of what serving it depends on. A
// resource bound by an APIBinding is served as a CRD made from its schema,
// stored under its export's identity.
type definition struct {
	*apiextensionsv1.CustomResourceDefinition
	hash string
	// prefix is where objects are stored: "" for a CRD's own prefix, the
	// export's identity prefix for a bound resource.
	prefix string
	// binding names the APIBinding a bound resource is bound by.
	binding string
}

func newDefinition(crd *apiextensionsv1.CustomResourceDefinition) (*definition, error) {
	hash, err := specHash(crd)
	if err != nil {
		return nil, fmt.Errorf("hashing CRD %s: %w", crd.Name, err)
	}
	return &definition{CustomResourceDefinition: crd, hash: hash}, nil
}

// newBoundDefinition is the definition of crd, a bound resource's, stored
// under identity: consumers of one export share what serves it, two exports
// never do.
func newBoundDefinition(crd *apiextensionsv1.CustomResourceDefinition, identity, binding string) (*definition, error) {
	d, err := newDefinition(crd)
	if err != nil {
		return nil, err
	}
	d.prefix = BoundPrefix(schema.GroupResource{Group: crd.Spec.Group, Resource: crd.Spec.Names.Plural}, identity)
	d.hash = hashOf([]byte(d.hash + "/" + d.prefix))
	d.binding = binding
	return d, nil
}

func toV1(in *apiextensions.CustomResourceDefinition) (*apiextensionsv1.CustomResourceDefinition, error) {
	out := &apiextensionsv1.CustomResourceDefinition{}
	if err := scheme.Scheme.Convert(in, out, nil); err != nil {
		return nil, fmt.Errorf("converting CRD %s: %w", in.Name, err)
	}
	return out, nil
}

// discovery computes the view's discovery documents and OpenAPI, once.
func (v *view) discovery() error {
	v.once.Do(func() {
		v.resources = map[schema.GroupVersion][]metav1.APIResource{}
		v.versions = map[string][]apidiscoveryv2.APIVersionDiscovery{}
		v.openapi = map[schema.GroupVersion]*openapiDocument{}
		specs := map[schema.GroupVersion][]*spec3.OpenAPI{}
		groupVersions := map[string][]string{}
		for _, crd := range v.established {
			for _, ver := range crd.Spec.Versions {
				if !ver.Served {
					continue
				}
				gv := schema.GroupVersion{Group: crd.Spec.Group, Version: ver.Name}
				if _, seen := v.resources[gv]; !seen {
					groupVersions[gv.Group] = append(groupVersions[gv.Group], gv.Version)
				}
				v.resources[gv] = append(v.resources[gv], apiResources(crd, &ver)...)
				s, err := builder.BuildOpenAPIV3(crd, ver.Name, builder.Options{V2: false})
				if err != nil {
					v.err = fmt.Errorf("OpenAPI of %s %s: %w", crd.Name, ver.Name, err)
					return
				}
				specs[gv] = append(specs[gv], s)
			}
		}
		for group, versions := range groupVersions {
			sort.Slice(versions, func(i, j int) bool { return version.CompareKubeAwareVersionStrings(versions[i], versions[j]) > 0 })
			g := metav1.APIGroup{Name: group}
			for _, ver := range versions {
				gv := schema.GroupVersion{Group: group, Version: ver}
				g.Versions = append(g.Versions, metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: ver})
				v.versions[group] = append(v.versions[group], aggregatedVersion(gv, v.resources[gv]))
			}
			g.PreferredVersion = g.Versions[0]
			v.groups = append(v.groups, g)
		}
		sort.Slice(v.groups, func(i, j int) bool { return v.groups[i].Name < v.groups[j].Name })
		for gv, s := range specs {
			merged, err := builder.MergeSpecsV3(s...)
			if err != nil {
				v.err = fmt.Errorf("OpenAPI of %s: %w", gv, err)
				return
			}
			doc, err := json.Marshal(merged)
			if err != nil {
				v.err = fmt.Errorf("OpenAPI of %s: %w", gv, err)
				return
			}
			v.openapi[gv] = &openapiDocument{json: doc, hash: hashOf(doc)}
		}
	})
	return v.err
}

// group returns the discovery of a group the view's CRDs define.
func (v *view) group(name string) (metav1.APIGroup, bool) {
	for _, g := range v.groups {
		if g.Name == name {
			return g, true
		}
	}
	return metav1.APIGroup{}, false
}

var (
	resourceVerbs    = metav1.Verbs{"delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"}
	subresourceVerbs = metav1.Verbs{"get", "patch", "update"}
)

// apiResources are the discovery entries of one served version of crd: the
// resource and its subresources.
func apiResources(crd *apiextensionsv1.CustomResourceDefinition, v *apiextensionsv1.CustomResourceDefinitionVersion) []metav1.APIResource {
	names := crd.Status.AcceptedNames
	storageVersion, _ := apihelpers.GetCRDStorageVersion(crd)
	namespaced := crd.Spec.Scope == apiextensionsv1.NamespaceScoped
	out := []metav1.APIResource{{
		Name:               names.Plural,
		SingularName:       names.Singular,
		Namespaced:         namespaced,
		Kind:               names.Kind,
		Verbs:              resourceVerbs,
		ShortNames:         names.ShortNames,
		Categories:         names.Categories,
		StorageVersionHash: discovery.StorageVersionHash(crd.Spec.Group, storageVersion, names.Kind),
	}}
	if sub := v.Subresources; sub != nil {
		if sub.Status != nil {
			out = append(out, metav1.APIResource{Name: names.Plural + "/status", Namespaced: namespaced, Kind: names.Kind, Verbs: subresourceVerbs})
		}
		if sub.Scale != nil {
			out = append(out, metav1.APIResource{Name: names.Plural + "/scale", Namespaced: namespaced, Group: "autoscaling", Version: "v1", Kind: "Scale", Verbs: subresourceVerbs})
		}
	}
	return out
}

// aggregatedVersion is the aggregated discovery of one group version.
func aggregatedVersion(gv schema.GroupVersion, resources []metav1.APIResource) apidiscoveryv2.APIVersionDiscovery {
	out := apidiscoveryv2.APIVersionDiscovery{Version: gv.Version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
	byName := map[string]int{}
	for _, r := range resources {
		if parent, sub, ok := strings.Cut(r.Name, "/"); ok {
			i, found := byName[parent]
			if !found {
				continue
			}
			kind := &metav1.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: r.Kind}
			if r.Version != "" {
				kind.Group, kind.Version = r.Group, r.Version
			}
			out.Resources[i].Subresources = append(out.Resources[i].Subresources, apidiscoveryv2.APISubresourceDiscovery{
				Subresource: sub, ResponseKind: kind, Verbs: r.Verbs,
			})
			continue
		}
		scope := apidiscoveryv2.ScopeCluster
		if r.Namespaced {
			scope = apidiscoveryv2.ScopeNamespace
		}
		byName[r.Name] = len(out.Resources)
		out.Resources = append(out.Resources, apidiscoveryv2.APIResourceDiscovery{
			Resource:         r.Name,
			ResponseKind:     &metav1.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: r.Kind},
			Scope:            scope,
			SingularResource: r.SingularName,
			Verbs:            r.Verbs,
			ShortNames:       r.ShortNames,
			Categories:       r.Categories,
		})
	}
	return out
}
