package tenancy

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

const clustersPrefix = "/clusters/"

// Resolver returns the logical cluster of a path, or a Kubernetes status error
// (NotFound for one that does not exist, or that another shard holds).
type Resolver func(ctx context.Context, pathOrName string) (*Cluster, error)

// Routing serves /clusters/<path-or-name>/<rest> as /<rest> in that logical
// cluster, and any other path in root. It runs before every other filter:
// request info, audit and authorization see the path without the prefix. It
// checks only the shape of the path or name (a malformed one is 400 for
// everyone); the workspace is looked up when the request's cluster is first
// asked for, which the access authorizer does once the caller is
// authenticated, so an anonymous request learns nothing and costs no read.
func Routing(resolve Resolver, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		target, rest, routed := split(req.URL.Path)
		if !routed {
			next.ServeHTTP(w, req.WithContext(logicalcluster.WithName(req.Context(), logicalcluster.Root)))
			return
		}
		if err := checkTarget(target); err != nil {
			writeStatus(w, err)
			return
		}
		lookup := req.Context()
		r := req.WithContext(logicalcluster.WithResolver(lookup, target, func() (logicalcluster.Name, error) {
			if !IsPath(target) {
				// A name is the cluster's; whether it is served here is
				// for the authorizers and Serving to say.
				return logicalcluster.Name(target), nil
			}
			c, err := resolve(lookup, target)
			if err != nil {
				return "", err
			}
			return c.Name, nil
		}))
		u := *req.URL
		u.Path, u.RawPath = rest, ""
		r.URL = &u
		r.RequestURI = u.RequestURI()
		next.ServeHTTP(w, r)
	})
}

// checkTarget says why s names no workspace by its shape alone, or nil.
func checkTarget(s string) error {
	if s == string(logicalcluster.Wildcard) {
		return nil
	}
	if err := ValidateAddress(s); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	return nil
}

// Serving runs after authorization, in front of the API handlers, and serves a
// request only if its cluster serves it: a workspace that does not exist, or
// that another shard holds, is 404 (only installation admins get this far; the
// access authorizer denied everyone else alike whether or not it exists), one
// that is still initialising answers 503 with Retry-After, one being deleted
// refuses creates (POST). What it lets through unchecked are the requests of
// shards for LogicalClusters — creating one places a workspace's cluster on
// this shard before the cluster exists — and the creation of one by anybody,
// which the registry refuses to all but shards.
func Serving(clusters func(context.Context, logicalcluster.Name) (*Cluster, error), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := req.Context()
		if err := logicalcluster.Unresolved(ctx); err != nil {
			writeStatus(w, err)
			return
		}
		name, _ := logicalcluster.From(ctx)
		// Health, version and discovery at the top level are the server's
		// own: a shard without root serves them too.
		info, _ := genericapirequest.RequestInfoFrom(ctx)
		addressed := logicalcluster.Requested(ctx) || info != nil && info.IsResourceRequest
		// A LogicalCluster is created before its cluster exists, and read and
		// deleted by other shards whatever its phase: asking would answer for
		// the cluster, not for its LogicalCluster.
		if name != logicalcluster.Wildcard && addressed && !shardsLogicalCluster(ctx) {
			c, err := clusters(ctx, name)
			if err == nil {
				err = serves(c, req.Method)
			}
			if err != nil {
				writeStatus(w, err)
				return
			}
		}
		next.ServeHTTP(w, req)
	})
}

// shardsLogicalCluster tells a request of one of the installation's shards for
// a LogicalCluster, or one creating it (which only shards may).
func shardsLogicalCluster(ctx context.Context) bool {
	info, ok := genericapirequest.RequestInfoFrom(ctx)
	if !ok || !info.IsResourceRequest || info.APIGroup != corev1alpha1.SchemeGroupVersion.Group || info.Resource != "logicalclusters" || info.Subresource != "" {
		return false
	}
	u, ok := genericapirequest.UserFrom(ctx)
	return info.Verb == "create" || ok && slices.Contains(u.GetGroups(), ShardsGroup)
}

// serves says why c does not serve a request of method, or nil if it does.
func serves(c *Cluster, method string) error {
	switch c.Phase {
	case corev1alpha1.LogicalClusterPhaseReady:
		return nil
	case corev1alpha1.LogicalClusterPhaseTerminating:
		// As in a terminating namespace, nothing new may be made; what is
		// there may still be read, changed (finalizers released) and deleted.
		if method != http.MethodPost {
			return nil
		}
		return apierrors.NewForbidden(workspacesResource, string(c.Path), fmt.Errorf("workspace %s is being deleted", c.Path))
	default:
		err := apierrors.NewServiceUnavailable(fmt.Sprintf("workspace %s is %s", c.Path, c.Phase))
		err.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
		return err
	}
}

// split cuts "/clusters/<target>/<rest>" into target and "/<rest>".
func split(path string) (target, rest string, routed bool) {
	after, ok := strings.CutPrefix(path, clustersPrefix)
	if !ok {
		return "", path, false
	}
	target, rest, _ = strings.Cut(after, "/")
	return target, "/" + rest, true
}

func writeStatus(w http.ResponseWriter, err error) {
	status := apierrors.NewInternalError(err).Status()
	if s, ok := err.(apierrors.APIStatus); ok {
		status = s.Status()
	}
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	if d := status.Details; d != nil && d.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(d.RetryAfterSeconds))
	}
	responsewriters.WriteRawJSON(int(status.Code), status, w)
}
