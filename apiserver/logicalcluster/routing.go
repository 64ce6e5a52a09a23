package logicalcluster

import (
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
)

const clustersPrefix = "/clusters/"

// Routing serves /clusters/<name>/<rest> as /<rest> in the cluster <name>, and any
// other path in Root. It runs before every other filter: request info, audit and
// authorization see the path without the prefix and the cluster in the context.
func Routing(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		name, rest, routed := split(req.URL.Path)
		if !routed {
			next.ServeHTTP(w, req.WithContext(WithName(req.Context(), Root)))
			return
		}
		if name != string(Wildcard) {
			if err := Validate(name); err != nil {
				writeStatus(w, apierrors.NewBadRequest(err.Error()))
				return
			}
		}
		r := req.WithContext(WithName(req.Context(), Name(name)))
		u := *req.URL
		u.Path, u.RawPath = rest, ""
		r.URL = &u
		r.RequestURI = u.RequestURI()
		next.ServeHTTP(w, r)
	})
}

// split cuts "/clusters/<name>/<rest>" into name and "/<rest>".
func split(path string) (name, rest string, routed bool) {
	after, ok := strings.CutPrefix(path, clustersPrefix)
	if !ok {
		return "", path, false
	}
	name, rest, _ = strings.Cut(after, "/")
	return name, "/" + rest, true
}

func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	status := err.Status()
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	responsewriters.WriteRawJSON(int(status.Code), status, w)
}
