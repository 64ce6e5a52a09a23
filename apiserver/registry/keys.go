package registry

import (
	"context"
	"path"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	pathvalidation "k8s.io/apimachinery/pkg/api/validation/path"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"

	"github.com/warren-dev/warren/apiserver/logicalcluster"
)

// ClusterKeys makes s build keys under prefix that carry the request's cluster.
func ClusterKeys(s *genericregistry.Store, prefix string, namespaced bool) {
	s.KeyRootFunc = func(ctx context.Context) string {
		cluster, ok := logicalcluster.From(ctx)
		if !ok {
			// No key: storage refuses the empty key rather than list across clusters.
			return ""
		}
		if cluster == logicalcluster.Wildcard {
			return prefix
		}
		key := path.Join(prefix, string(cluster))
		if ns, ok := genericapirequest.NamespaceFrom(ctx); ok && namespaced && ns != "" {
			key = path.Join(key, ns)
		}
		return key
	}
	s.KeyFunc = func(ctx context.Context, name string) (string, error) {
		cluster, ok := logicalcluster.From(ctx)
		if !ok {
			return "", apierrors.NewInternalError(errNoCluster)
		}
		if cluster == logicalcluster.Wildcard {
			return "", apierrors.NewMethodNotSupported(s.DefaultQualifiedResource, "this verb across all clusters (only list and watch are)")
		}
		if msgs := pathvalidation.IsValidPathSegmentName(name); len(msgs) > 0 {
			return "", apierrors.NewBadRequest("invalid name " + name + ": " + msgs[0])
		}
		key := path.Join(prefix, string(cluster))
		if namespaced {
			ns, ok := genericapirequest.NamespaceFrom(ctx)
			if !ok || ns == "" {
				return "", apierrors.NewBadRequest("namespace parameter required")
			}
			key = path.Join(key, ns)
		}
		return key + "/" + name, nil
	}
}
