package plugin

import (
	"context"
	"fmt"
	"io"
	"strings"

	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	kcpclientset "github.com/kcp-dev/sdk/client/clientset/versioned/cluster"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
)

// warnUnresolvedClaims warns, on entering the workspace at server, about
// APIBindings there whose exports claim permissions the binding neither
// accepts nor rejects: the export's owner is waiting for the user. Failing to
// tell is reported but does not fail the command, which has already switched.
func (k *kubeconfigEdit) warnUnresolvedClaims(ctx context.Context, server string) {
	bindings, err := listAPIBindings(ctx, k.client, server)
	if err != nil {
		fmt.Fprintf(k.errOut, "error checking APIBindings: %v\n", err)
	}
	warnClaims(k.errOut, bindings)
}

// listAPIBindings returns the APIBindings in the workspace at server; none if
// the user may not list them or the server has no APIBindings.
func listAPIBindings(ctx context.Context, client *kcpclientset.ClusterClientset, server string) ([]apisv1alpha2.APIBinding, error) {
	_, p, err := parseClusterURL(server)
	if err != nil {
		return nil, err
	}
	list, err := client.Cluster(p).ApisV1alpha2().APIBindings().List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsForbidden(err):
		return nil, nil
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		klog.FromContext(ctx).V(4).Info("No APIBindings to check", "workspace", p, "err", err)
		return nil, nil
	case err != nil:
		// The caller says "error checking APIBindings" before it.
		return nil, err
	}
	return list.Items, nil
}

// warnClaims writes a warning for each permission claim of an export that its
// binding does not name, has not accepted or rejected, or grants other verbs
// than claimed.
func warnClaims(out io.Writer, bindings []apisv1alpha2.APIBinding) {
	for _, binding := range bindings {
		for _, exported := range binding.Status.ExportPermissionClaims {
			var found, acknowledged, verbsMatch bool
			var want, have sets.Set[string]
			for _, claim := range binding.Spec.PermissionClaims {
				if !exported.EqualGRI(claim.PermissionClaim) {
					continue
				}
				found = true
				acknowledged = claim.State == apisv1alpha2.ClaimAccepted || claim.State == apisv1alpha2.ClaimRejected
				want, have = sets.New(exported.Verbs...), sets.New(claim.Verbs...)
				verbsMatch = want.Equal(have)
			}
			if !found {
				fmt.Fprintf(out, "Warning: claim for %s exported but not specified on APIBinding %s\nAdd this claim to the APIBinding's Spec.\n", exported.String(), binding.Name)
			}
			if !acknowledged {
				fmt.Fprintf(out, "Warning: claim for %s specified on APIBinding %s but not accepted or rejected.\n", exported.String(), binding.Name)
			}
			if !verbsMatch {
				fmt.Fprintf(out, "Warning: allowed verbs (%s) on claim for %s on APIBinding %s do not match expected verbs (%s).\n", joinSorted(have), exported.String(), binding.Name, joinSorted(want))
			}
		}
	}
}

// joinSorted lists verbs comma-separated; kcp lists them in map order, of
// which sorted is one, and a stable one.
func joinSorted(verbs sets.Set[string]) string {
	return strings.Join(sets.List(verbs), ",")
}
