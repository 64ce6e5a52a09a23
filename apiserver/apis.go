package apiserver

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresourcedefinition"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"

	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/apiserver/registry/coordination/lease"
	"github.com/warren-dev/warren/apiserver/registry/core/configmap"
	"github.com/warren-dev/warren/apiserver/registry/core/event"
	"github.com/warren-dev/warren/apiserver/registry/core/namespace"
	"github.com/warren-dev/warren/apiserver/registry/core/secret"
	"github.com/warren-dev/warren/apiserver/registry/core/serviceaccount"
	"github.com/warren-dev/warren/apiserver/registry/rbac/clusterrole"
	"github.com/warren-dev/warren/apiserver/registry/rbac/clusterrolebinding"
	"github.com/warren-dev/warren/apiserver/registry/rbac/role"
	"github.com/warren-dev/warren/apiserver/registry/rbac/rolebinding"
	"github.com/warren-dev/warren/apiserver/scheme"
)

// apis are the stores of every built-in resource, served in every cluster.
type apis struct {
	namespaces      *namespace.REST
	finalize        *namespace.FinalizeREST
	serviceAccounts *registry.REST
	// namespaced are the stores a deleted namespace is emptied of.
	namespaced map[string]namespace.Contents
	legacy     genericapiserver.APIGroupInfo
	groups     []genericapiserver.APIGroupInfo
}

// newAPIs builds the stores of every built-in resource.
func newAPIs(getter generic.RESTOptionsGetter) (*apis, error) {
	a := &apis{namespaced: map[string]namespace.Contents{}}
	var err error
	build := func(name string, namespaced bool, f func(generic.RESTOptionsGetter) (*registry.REST, error)) rest.Storage {
		if err != nil {
			return nil
		}
		var r *registry.REST
		if r, err = f(getter); err != nil {
			return nil
		}
		if namespaced {
			a.namespaced[name] = r
		}
		return r
	}
	events := func(group string) func(generic.RESTOptionsGetter) (*registry.REST, error) {
		return func(g generic.RESTOptionsGetter) (*registry.REST, error) { return event.NewREST(g, group) }
	}
	if a.serviceAccounts, err = serviceaccount.NewREST(getter); err != nil {
		return nil, err
	}
	a.namespaced["serviceaccounts"] = a.serviceAccounts
	if a.namespaces, a.finalize, err = namespace.NewREST(getter, a.defaultServiceAccount); err != nil {
		return nil, err
	}
	core := map[string]rest.Storage{
		"namespaces":          a.namespaces,
		"namespaces/finalize": a.finalize,
		"serviceaccounts":     a.serviceAccounts,
		"configmaps":          build("configmaps", true, configmap.NewREST),
		"secrets":             build("secrets", true, secret.NewREST),
		"events":              build("events", true, events("")),
	}
	coordination := map[string]rest.Storage{"leases": build("leases", true, lease.NewREST)}
	eventsGroup := map[string]rest.Storage{"events": build("events.events.k8s.io", false, events(eventsv1.GroupName))}
	rbac := map[string]rest.Storage{
		"roles":               build("roles", true, role.NewREST),
		"rolebindings":        build("rolebindings", true, rolebinding.NewREST),
		"clusterroles":        build("clusterroles", false, clusterrole.NewREST),
		"clusterrolebindings": build("clusterrolebindings", false, clusterrolebinding.NewREST),
	}
	if err != nil {
		return nil, err
	}
	crds, err := customresourcedefinition.NewREST(scheme.Scheme, getter)
	if err != nil {
		return nil, fmt.Errorf("storage of customresourcedefinitions: %w", err)
	}
	registry.ClusterKeys(crds.Store, registry.Prefix(apiextensionsv1.Resource("customresourcedefinitions")), false)
	apiextensions := map[string]rest.Storage{
		"customresourcedefinitions":        crds,
		"customresourcedefinitions/status": customresourcedefinition.NewStatusREST(scheme.Scheme, crds),
	}

	a.legacy = group("", corev1.SchemeGroupVersion.Version, core)
	a.groups = []genericapiserver.APIGroupInfo{
		group(rbacv1.GroupName, "v1", rbac),
		group(coordinationv1.GroupName, "v1", coordination),
		group(eventsv1.GroupName, "v1", eventsGroup),
		group(apiextensionsv1.GroupName, "v1", apiextensions),
	}
	return a, nil
}

// install serves every group on s.
func (a *apis) install(s *genericapiserver.GenericAPIServer) error {
	if err := s.InstallLegacyAPIGroup(genericapiserver.DefaultLegacyAPIPrefix, &a.legacy); err != nil {
		return fmt.Errorf("installing the core group: %w", err)
	}
	for i := range a.groups {
		if err := s.InstallAPIGroup(&a.groups[i]); err != nil {
			return fmt.Errorf("installing group %s: %w", a.groups[i].PrioritizedVersions[0].Group, err)
		}
	}
	return nil
}

func group(name, version string, resources map[string]rest.Storage) genericapiserver.APIGroupInfo {
	info := genericapiserver.NewDefaultAPIGroupInfo(name, scheme.Scheme, runtime.NewParameterCodec(scheme.Scheme), scheme.Codecs)
	info.VersionedResourcesStorageMap[version] = resources
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
