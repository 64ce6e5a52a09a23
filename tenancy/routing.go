package tenancy

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"

	corev1alpha1 "github.com/warren-dev/warren/tenancy/apis/core/v1alpha1"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

const clustersPrefix = "/clusters/"

// Resolver returns the logical cluster of a path or name, or a Kubernetes
// status error (NotFound for one that does not exist).
type Resolver func(ctx context.Context, pathOrName string) (*Cluster, error)

// Routing serves /clusters/<path-or-name>/<rest> as /<rest> in that logical
// cluster, and any other path in root. It runs before every other filter:
// request info, audit and authorization see the path without the prefix and the
// cluster in the context. An unknown workspace is 404 for everyone; one that is
// still initialising answers 503 with Retry-After; one being deleted refuses
// creates (POST).
func Routing(resolve Resolver, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		target, rest, routed := split(req.URL.Path)
		if !routed {
			next.ServeHTTP(w, req.WithContext(logicalcluster.WithName(req.Context(), logicalcluster.Root)))
			return
		}
		name := logicalcluster.Wildcard
		if target != string(logicalcluster.Wildcard) {
			c, err := resolve(req.Context(), target)
			if err == nil {
				err = serves(c, req.Method)
			}
			if err != nil {
				writeStatus(w, err)
				return
			}
			name = c.Name
		}
		r := req.WithContext(logicalcluster.WithName(req.Context(), name))
		u := *req.URL
		u.Path, u.RawPath = rest, ""
		r.URL = &u
		r.RequestURI = u.RequestURI()
		next.ServeHTTP(w, r)
	})
}

// serves says why c does not serve a request of method, or nil if it does.
func serves(c *Cluster, method string) error {
	switch c.Phase {
	case corev1alpha1.Ready:
		return nil
	case corev1alpha1.Terminating:
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
