package apiserver

import (
	"context"
	"fmt"
	"maps"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresourcedefinition"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/apiserver/authorization"
	"github.com/warren-dev/warren/apiserver/coalesce"
	"github.com/warren-dev/warren/apiserver/encodings"
	"github.com/warren-dev/warren/apiserver/registry"
	apisregistry "github.com/warren-dev/warren/apiserver/registry/apis"
	authnreviews "github.com/warren-dev/warren/apiserver/registry/authentication"
	authzreviews "github.com/warren-dev/warren/apiserver/registry/authorization"
	"github.com/warren-dev/warren/apiserver/registry/coordination/lease"
	"github.com/warren-dev/warren/apiserver/registry/core/configmap"
	"github.com/warren-dev/warren/apiserver/registry/core/event"
	"github.com/warren-dev/warren/apiserver/registry/core/namespace"
	"github.com/warren-dev/warren/apiserver/registry/core/secret"
	"github.com/warren-dev/warren/apiserver/registry/core/serviceaccount"
	flowcontrolregistry "github.com/warren-dev/warren/apiserver/registry/flowcontrol"
	"github.com/warren-dev/warren/apiserver/registry/rbac"
	tenancyregistry "github.com/warren-dev/warren/apiserver/registry/tenancy"
	"github.com/warren-dev/warren/apiserver/scheme"
	"github.com/warren-dev/warren/apiserver/token"
	"github.com/warren-dev/warren/storage"
	"github.com/warren-dev/warren/tenancy"
)

// apis are the stores of every built-in resource, served in every cluster.
type apis struct {
	namespaces      *namespace.REST
	finalize        *namespace.FinalizeREST
	serviceAccounts *registry.REST
	rbac            authorization.Stores
	crds            *customresourcedefinition.REST
	crdStatus       *customresourcedefinition.StatusREST
	tenancy         tenancy.Stores
	workspaces      *tenancyregistry.Workspaces
	exports         tenancy.ExportStores
	bindings        tenancy.BindingStores
	endpointSlices  tenancy.SliceStores
	// flowSchemas and priorityLevels configure API priority and fairness.
	flowSchemas, priorityLevels *registry.REST
	// namespaced are the stores a deleted namespace is emptied of.
	namespaced map[string]namespace.Contents
	legacy     genericapiserver.APIGroupInfo
	groups     []genericapiserver.APIGroupInfo
}

// newAPIs builds the stores of every built-in resource.
func newAPIs(getter generic.RESTOptionsGetter, signer *token.Signer) (*apis, error) {
	a := &apis{namespaced: map[string]namespace.Contents{}}
	var err error
	// build makes a store; one that holds namespace contents is also one a
	// deleted namespace is emptied of.
	build := func(contents bool, f func(generic.RESTOptionsGetter) (*registry.REST, error)) *registry.REST {
		if err != nil {
			return nil
		}
		var r *registry.REST
		if r, err = f(getter); err != nil {
			return nil
		}
		if contents {
			a.namespaced[r.DefaultQualifiedResource.String()] = r
		}
		return r
	}
	events := func(group string) func(generic.RESTOptionsGetter) (*registry.REST, error) {
		return func(g generic.RESTOptionsGetter) (*registry.REST, error) { return event.NewREST(g, group) }
	}
	if a.serviceAccounts, err = serviceaccount.NewREST(getter); err != nil {
		return nil, err
	}
	a.namespaced[a.serviceAccounts.DefaultQualifiedResource.String()] = a.serviceAccounts
	if a.namespaces, a.finalize, err = namespace.NewREST(getter, a.defaultServiceAccount); err != nil {
		return nil, err
	}
	secrets := build(true, secret.NewREST)
	core := map[string]rest.Storage{
		"namespaces":            a.namespaces,
		"namespaces/finalize":   a.finalize,
		"serviceaccounts":       a.serviceAccounts,
		"serviceaccounts/token": serviceaccount.NewTokenREST(a.serviceAccounts, signer),
		"configmaps":            build(true, configmap.NewREST),
		"secrets":               secrets,
		"events":                build(true, events("")),
	}
	coordination := map[string]rest.Storage{"leases": build(true, lease.NewREST)}
	// events.k8s.io Events are core Events under the same keys: emptying a
	// namespace of core events empties it of these.
	eventsGroup := map[string]rest.Storage{"events": build(false, events(eventsv1.GroupName))}
	roles, roleBindings := build(true, rbac.NewRoles), build(true, rbac.NewRoleBindings)
	clusterRoles, clusterRoleBindings := build(false, rbac.NewClusterRoles), build(false, rbac.NewClusterRoleBindings)
	a.rbac = authorization.Stores{Roles: roles, RoleBindings: roleBindings, ClusterRoles: clusterRoles, ClusterRoleBindings: clusterRoleBindings}
	rbacGroup := map[string]rest.Storage{
		"roles":               roles,
		"rolebindings":        roleBindings,
		"clusterroles":        rbac.WithBootstrap(clusterRoles, authorization.BootstrapRoles()),
		"clusterrolebindings": clusterRoleBindings,
	}
	if err != nil {
		return nil, err
	}
	if a.crds, err = customresourcedefinition.NewREST(scheme.Scheme, getter); err != nil {
		return nil, fmt.Errorf("storage of customresourcedefinitions: %w", err)
	}
	a.crdStatus = customresourcedefinition.NewStatusREST(scheme.Scheme, a.crds)
	apiextensions := map[string]rest.Storage{
		"customresourcedefinitions":        a.crds,
		"customresourcedefinitions/status": a.crdStatus,
	}
	tenancyGroup, coreGroup, err := a.newTenancy(getter, a.namespaces, clusterRoles, clusterRoleBindings)
	if err != nil {
		return nil, err
	}
	apisGroup, err := a.newAPIProviders(getter, secrets)
	if err != nil {
		return nil, err
	}
	var flowSchemaStatus, priorityLevelStatus *genericregistry.Store
	if a.flowSchemas, flowSchemaStatus, err = flowcontrolregistry.NewFlowSchemas(getter); err != nil {
		return nil, err
	}
	if a.priorityLevels, priorityLevelStatus, err = flowcontrolregistry.NewPriorityLevels(getter); err != nil {
		return nil, err
	}
	flowcontrol := map[string]rest.Storage{
		"flowschemas":                        a.flowSchemas,
		"flowschemas/status":                 flowSchemaStatus,
		"prioritylevelconfigurations":        a.priorityLevels,
		"prioritylevelconfigurations/status": priorityLevelStatus,
	}

	a.legacy = groupInfo("", corev1.SchemeGroupVersion.Version, core)
	a.groups = []genericapiserver.APIGroupInfo{
		groupInfo(rbacv1.GroupName, "v1", rbacGroup),
		groupInfo(coordinationv1.GroupName, "v1", coordination),
		groupInfo(eventsv1.GroupName, "v1", eventsGroup),
		groupInfo(apiextensionsv1.GroupName, "v1", apiextensions),
		groupInfo(flowcontrolv1.GroupName, "v1", flowcontrol),
		groupInfo(tenancyv1alpha1.SchemeGroupVersion.Group, tenancyv1alpha1.SchemeGroupVersion.Version, tenancyGroup),
		groupInfo(corev1alpha1.SchemeGroupVersion.Group, corev1alpha1.SchemeGroupVersion.Version, coreGroup),
		groupVersions(apisv1alpha2.SchemeGroupVersion.Group, apisGroup, apisv1alpha2.SchemeGroupVersion.Version, apisv1alpha1.SchemeGroupVersion.Version),
	}
	return a, nil
}

// newAPIProviders builds the stores of apis.kcp.io and returns what each version
// serves: APIExports and APIBindings in both, the rest in v1alpha1 only.
func (a *apis) newAPIProviders(getter generic.RESTOptionsGetter, secrets *registry.REST) (map[string]map[string]rest.Storage, error) {
	schemas, err := apisregistry.NewAPIResourceSchemas(getter)
	if err != nil {
		return nil, err
	}
	exports, exportStatus, err := apisregistry.NewAPIExports(getter)
	if err != nil {
		return nil, err
	}
	bindings, bindingStatus, err := apisregistry.NewAPIBindings(getter)
	if err != nil {
		return nil, err
	}
	slices, sliceStatus, err := apisregistry.NewAPIExportEndpointSlices(getter)
	if err != nil {
		return nil, err
	}
	a.exports = tenancy.ExportStores{Exports: exports, ExportStatus: exportStatus, Secrets: secrets, Namespaces: a.namespaces, Slices: slices}
	a.endpointSlices = tenancy.SliceStores{Slices: slices, SliceStatus: sliceStatus, Exports: exports}
	a.bindings = tenancy.BindingStores{Bindings: bindings, BindingStatus: bindingStatus, Exports: exports, Schemas: schemas, CRDs: a.crds}
	v1alpha2 := map[string]rest.Storage{
		"apiexports":         exports,
		"apiexports/status":  exportStatus,
		"apibindings":        bindings,
		"apibindings/status": bindingStatus,
	}
	v1alpha1 := maps.Clone(v1alpha2)
	v1alpha1["apiresourceschemas"] = schemas
	v1alpha1["apiexportendpointslices"] = slices
	v1alpha1["apiexportendpointslices/status"] = sliceStatus
	return map[string]map[string]rest.Storage{
		apisv1alpha2.SchemeGroupVersion.Version: v1alpha2,
		apisv1alpha1.SchemeGroupVersion.Version: v1alpha1,
	}, nil
}

// newTenancy builds the stores of workspaces, workspace types, logical clusters
// and shards, and returns what the tenancy.kcp.io and core.kcp.io groups serve.
func (a *apis) newTenancy(getter generic.RESTOptionsGetter, namespaces, clusterRoles, clusterRoleBindings rest.Creater) (tenancyGroup, coreGroup map[string]rest.Storage, err error) {
	workspaces, workspaceStatus, workspacePlacement, err := tenancyregistry.NewWorkspaces(getter)
	if err != nil {
		return nil, nil, err
	}
	types, err := tenancyregistry.NewWorkspaceTypes(getter)
	if err != nil {
		return nil, nil, err
	}
	clusters, clusterStore, clusterStatus, err := tenancyregistry.NewLogicalClusters(getter)
	if err != nil {
		return nil, nil, err
	}
	shards, err := tenancyregistry.NewShards(getter)
	if err != nil {
		return nil, nil, err
	}
	a.workspaces = workspaces
	a.tenancy = tenancy.Stores{
		Workspaces:           newestKnownGets{workspaces},
		WorkspaceTypes:       types,
		LogicalClusters:      clusterStore,
		Shards:               shards,
		WorkspaceStatus:      workspaceStatus,
		WorkspacePlacement:   workspacePlacement,
		LogicalClusterStatus: clusterStatus,
		Namespaces:           namespaces,
		ClusterRoles:         clusterRoles,
		ClusterRoleBindings:  clusterRoleBindings,
	}
	return map[string]rest.Storage{"workspaces": workspaces, "workspacetypes": types},
		map[string]rest.Storage{"logicalclusters": clusters, "shards": shards}, nil
}

// addReviews adds the access and token reviews, which answer with authz, rules
// and tokens.
func (a *apis) addReviews(authz authorizer.Authorizer, rules authorizer.RuleResolver, tokens authenticator.Request) {
	a.groups = append(a.groups,
		groupInfo(authorizationv1.GroupName, "v1", map[string]rest.Storage{
			"subjectaccessreviews":     authzreviews.NewSubjectAccessReviews(authz),
			"selfsubjectaccessreviews": authzreviews.NewSelfSubjectAccessReviews(authz),
			"selfsubjectrulesreviews":  authzreviews.NewSelfSubjectRulesReviews(rules),
		}),
		groupInfo(authenticationv1.GroupName, "v1", map[string]rest.Storage{
			"tokenreviews":       authnreviews.NewTokenReviews(tokens),
			"selfsubjectreviews": authnreviews.NewSelfSubjectReviews(),
		}),
	)
}

// install serves every group on s, its answers' list items written from items
// and every answer coalesced.
func (a *apis) install(s *genericapiserver.GenericAPIServer, items *encodings.Cache) error {
	serialize := func(g *genericapiserver.APIGroupInfo) *genericapiserver.APIGroupInfo {
		g.NegotiatedSerializer = coalesce.Serializer(items.Serializer(g.NegotiatedSerializer))
		return g
	}
	if err := s.InstallLegacyAPIGroup(genericapiserver.DefaultLegacyAPIPrefix, serialize(&a.legacy)); err != nil {
		return fmt.Errorf("installing the core group: %w", err)
	}
	for i := range a.groups {
		if err := s.InstallAPIGroup(serialize(&a.groups[i])); err != nil {
			return fmt.Errorf("installing group %s: %w", a.groups[i].PrioritizedVersions[0].Group, err)
		}
	}
	return nil
}

// groupInfo serves a group in one version (the scheme also knows
// apiextensions' v1beta1, for conversion only).
func groupInfo(name, version string, resources map[string]rest.Storage) genericapiserver.APIGroupInfo {
	return groupVersions(name, map[string]map[string]rest.Storage{version: resources}, version)
}

// groupVersions serves a group in the versions given, preferred first, each
// with its resources.
func groupVersions(name string, resources map[string]map[string]rest.Storage, versions ...string) genericapiserver.APIGroupInfo {
	info := genericapiserver.NewDefaultAPIGroupInfo(name, scheme.Scheme, runtime.NewParameterCodec(scheme.Scheme), scheme.Codecs)
	info.PrioritizedVersions = nil
	for _, v := range versions {
		info.PrioritizedVersions = append(info.PrioritizedVersions, schema.GroupVersion{Group: name, Version: v})
		info.VersionedResourcesStorageMap[v] = resources[v]
	}
	return info
}

// defaultServiceAccount gives a new namespace its "default" service account.
func (a *apis) defaultServiceAccount(ctx context.Context, ns *corev1.Namespace) error {
	ctx = genericapirequest.WithNamespace(ctx, ns.Name)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns.Name}}
	_, err := a.serviceAccounts.Create(ctx, sa, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// newestKnownGets lets the workspace lifecycle's gets of a Workspace no older
// than the event that queued it be answered from the newest version this
// process knows (storage.AllowNewestKnown); the API's own gets never are.
type newestKnownGets struct{ tenancy.Store }

func (s newestKnownGets) Get(ctx context.Context, name string, opts *metav1.GetOptions) (runtime.Object, error) {
	return s.Store.Get(storage.AllowNewestKnown(ctx), name, opts)
}
