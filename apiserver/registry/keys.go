package registry

import (
	"context"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/storage"

	warrenstorage "github.com/warren-dev/warren/storage"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// ClusterKeyed returns s with the request's cluster put into every key:
// registry stores build keys /<prefix>/[<namespace>/]<name> as in Kubernetes, and
// s sees /<prefix>/<cluster>/[<namespace>/]<name>. Doing it beneath the registry,
// not in its key functions, covers stores that copy themselves for subresources
// (custom resources' status and scale) and lets one store serve every cluster.
//
// A request across all clusters may only list and watch the whole resource
// (AcrossClusters); a request without a cluster is refused.
func ClusterKeyed(s storage.Interface, prefix string, resource schema.GroupResource) storage.Interface {
	return &clusterKeyed{Interface: s, prefix: prefix, resource: resource}
}

type clusterKeyed struct {
	storage.Interface
	prefix   string
	resource schema.GroupResource
}

// key returns the key of the request's cluster for key; acrossClusters says
// whether the call may span all clusters.
func (s *clusterKeyed) key(ctx context.Context, key string, acrossClusters bool) (string, error) {
	cluster, ok := logicalcluster.From(ctx)
	if !ok {
		return "", apierrors.NewInternalError(errNoCluster)
	}
	rest, ok := strings.CutPrefix(key, s.prefix)
	if !ok || rest != "" && rest[0] != '/' {
		return key, nil // not under the prefix: storage refuses it
	}
	if cluster != logicalcluster.Wildcard {
		return warrenstorage.ClusterKey(s.prefix, string(cluster), rest), nil
	}
	if err := AcrossClusters(s.resource, acrossClusters, false); err != nil {
		return "", err
	}
	return s.prefix, nil
}

// listing returns the key of a list or watch, and its options. Across all
// clusters every list is of the whole resource: where the registry narrowed
// the key to a namespace or to one object (as a field selector asks; the URL
// cannot name a namespace, see AcrossClusters), the predicate, which holds
// the field selector, narrows instead, and the request's namespace with it.
func (s *clusterKeyed) listing(ctx context.Context, key string, opts storage.ListOptions) (string, storage.ListOptions, error) {
	k, err := s.key(ctx, key, true)
	if err != nil || k != s.prefix || key == s.prefix {
		return k, opts, err
	}
	opts.Recursive = true
	if namespace, ok := genericapirequest.NamespaceFrom(ctx); ok && namespace != "" {
		inNamespace := fields.OneTermEqualSelector("metadata.namespace", namespace)
		if p := opts.Predicate; p.Field == nil || p.Field.Empty() {
			opts.Predicate.Field = inNamespace
		} else {
			opts.Predicate.Field = fields.AndSelectors(p.Field, inNamespace)
		}
	}
	return k, opts, nil
}

// AcrossClusters says why a request across all clusters (/clusters/*) may not
// do what it asks of resource, or nil: across clusters there are only lists
// and watches (listing), whose URL names no namespace (not inNamespace; a
// field selector may).
func AcrossClusters(resource schema.GroupResource, listing, inNamespace bool) error {
	if !listing {
		return apierrors.NewMethodNotSupported(resource, "this verb across all clusters (only list and watch are)")
	}
	if inNamespace {
		return apierrors.NewBadRequest("a request across all clusters covers every namespace; it cannot name one")
	}
	return nil
}

func (s *clusterKeyed) Create(ctx context.Context, key string, obj, out runtime.Object, ttl uint64) error {
	key, err := s.key(ctx, key, false)
	if err != nil {
		return err
	}
	return s.Interface.Create(ctx, key, obj, out, ttl)
}

func (s *clusterKeyed) Delete(ctx context.Context, key string, out runtime.Object, preconditions *storage.Preconditions,
	validateDeletion storage.ValidateObjectFunc, cachedExistingObject runtime.Object, opts storage.DeleteOptions) error {
	key, err := s.key(ctx, key, false)
	if err != nil {
		return err
	}
	if visible, ok := visibleFrom(ctx, s.resource); ok {
		validate := validateDeletion
		validateDeletion = func(ctx context.Context, obj runtime.Object) error {
			if !visible(obj) {
				return notVisible(obj, s)
			}
			return validate(ctx, obj)
		}
	}
	return s.Interface.Delete(ctx, key, out, preconditions, validateDeletion, cachedExistingObject, opts)
}

func (s *clusterKeyed) Watch(ctx context.Context, key string, opts storage.ListOptions) (watch.Interface, error) {
	key, opts, err := s.listing(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	if visible, ok := visibleFrom(ctx, s.resource); ok {
		opts.Predicate = visibleOnly(opts.Predicate, visible)
	}
	return s.Interface.Watch(ctx, key, opts)
}

func (s *clusterKeyed) Get(ctx context.Context, key string, opts storage.GetOptions, objPtr runtime.Object) error {
	key, err := s.key(ctx, key, false)
	if err != nil {
		return err
	}
	if err := s.Interface.Get(ctx, key, opts, objPtr); err != nil {
		return err
	}
	if visible, ok := visibleFrom(ctx, s.resource); ok && !visible(objPtr) {
		return notVisible(objPtr, s)
	}
	return nil
}

func (s *clusterKeyed) GetList(ctx context.Context, key string, opts storage.ListOptions, listObj runtime.Object) error {
	key, opts, err := s.listing(ctx, key, opts)
	if err != nil {
		return err
	}
	if visible, ok := visibleFrom(ctx, s.resource); ok {
		opts.Predicate = visibleOnly(opts.Predicate, visible)
	}
	return s.Interface.GetList(ctx, key, opts, listObj)
}

func (s *clusterKeyed) GuaranteedUpdate(ctx context.Context, key string, destination runtime.Object, ignoreNotFound bool,
	preconditions *storage.Preconditions, tryUpdate storage.UpdateFunc, cachedExistingObject runtime.Object) error {
	key, err := s.key(ctx, key, false)
	if err != nil {
		return err
	}
	if visible, ok := visibleFrom(ctx, s.resource); ok {
		try := tryUpdate
		tryUpdate = func(input runtime.Object, res storage.ResponseMeta) (runtime.Object, *uint64, error) {
			// An object being created (by an apply) is not yet stored;
			// admission decides what it may be.
			if m, err := meta.Accessor(input); err == nil && m.GetResourceVersion() != "" && !visible(input) {
				return nil, nil, notVisible(input, s)
			}
			return try(input, res)
		}
	}
	return s.Interface.GuaranteedUpdate(ctx, key, destination, ignoreNotFound, preconditions, tryUpdate, cachedExistingObject)
}
