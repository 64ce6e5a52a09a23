package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/kcp-dev/sdk/apis/core"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
	kcpclientset "github.com/kcp-dev/sdk/client/clientset/versioned/cluster"
)

// TestWorkspaceKCPClientset drives workspaces with kcp's own generated
// cluster-aware clientset, exactly as a kcp client would: it builds
// root:org (organization) → team (team) → proj (the team's default child type),
// reads each back by path, lists them level by level and across all clusters,
// reads their LogicalClusters and root's Shard, then deletes root:org and
// finds every row of the three logical clusters gone.
func TestWorkspaceKCPClientset(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		config := rest.CopyConfig(s.Config("root"))
		config.Host = s.URL("")
		config.ContentType, config.AcceptContentTypes = runtime.ContentTypeJSON, runtime.ContentTypeJSON
		kcp, err := kcpclientset.NewForConfig(config)
		if err != nil {
			t.Fatal(err)
		}
		workspaces := kcp.TenancyV1alpha1().Workspaces()
		clusters := map[string]string{"root": "root"}
		for _, level := range []struct {
			parent, name string
			typ          *tenancyv1alpha1.WorkspaceTypeReference
			want         string
		}{
			{"root", "org", &tenancyv1alpha1.WorkspaceTypeReference{Name: "organization"}, "root:organization"},
			{"root:org", "team", &tenancyv1alpha1.WorkspaceTypeReference{Name: "team", Path: "root"}, "root:team"},
			{"root:org:team", "proj", nil, "root:universal"},
		} {
			path := level.parent + ":" + level.name
			ws := &tenancyv1alpha1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: level.name}, Spec: tenancyv1alpha1.WorkspaceSpec{Type: level.typ}}
			created, err := workspaces.Cluster(logicalcluster.NewPath(level.parent)).Create(ctx, ws, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("creating %s: %v", path, err)
			}
			// kcp's CLI reads the type and phase off the create response.
			if created.Spec.Type == nil || created.Spec.Type.String() != level.want || created.Status.Phase == "" {
				t.Errorf("creating %s answered type %v, phase %q; want %s and a phase", path, created.Spec.Type, created.Status.Phase, level.want)
			}
			var ready *tenancyv1alpha1.Workspace
			if err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
				ready, err = workspaces.Cluster(logicalcluster.NewPath(level.parent)).Get(ctx, level.name, metav1.GetOptions{})
				return err == nil && ready.Status.Phase == corev1alpha1.LogicalClusterPhaseReady, err
			}); err != nil {
				t.Fatalf("waiting for %s: %v", path, err)
			}
			if ready.Spec.URL != s.URL("/clusters/"+path) || ready.Spec.Cluster == "" || ready.Labels[tenancyv1alpha1.WorkspacePhaseLabel] != "Ready" {
				t.Errorf("%s: URL %s, cluster %q, labels %v", path, ready.Spec.URL, ready.Spec.Cluster, ready.Labels)
			}
			var types []string
			for _, c := range ready.Status.Conditions {
				if c.Status == "True" {
					types = append(types, string(c.Type))
				}
			}
			if want := []string{"WorkspaceScheduled", "WorkspaceInitialized"}; !slices.Equal(types, want) {
				t.Errorf("%s has the true conditions %v, want %v", path, types, want)
			}
			clusters[path] = ready.Spec.Cluster

			lc, err := kcp.CoreV1alpha1().LogicalClusters().Cluster(logicalcluster.NewPath(path)).Get(ctx, corev1alpha1.LogicalClusterName, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("the LogicalCluster of %s: %v", path, err)
			}
			if lc.Annotations[core.LogicalClusterPathAnnotationKey] != path || lc.Annotations[tenancyv1alpha1.LogicalClusterTypeAnnotationKey] != level.want ||
				lc.Spec.Owner == nil || lc.Spec.Owner.Cluster != clusters[level.parent] || lc.Spec.Owner.Name != level.name || lc.Spec.Owner.UID != ready.UID ||
				lc.Status.URL != s.URL("/clusters/"+ready.Spec.Cluster) || lc.Status.Phase != corev1alpha1.LogicalClusterPhaseReady {
				t.Errorf("the LogicalCluster of %s: %+v", path, lc)
			}
		}
		for parent, want := range map[string][]string{"root": {"org"}, "root:org": {"team"}, "root:org:team": {"proj"}, "root:org:team:proj": nil} {
			list, err := workspaces.Cluster(logicalcluster.NewPath(parent)).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatalf("listing the workspaces of %s: %v", parent, err)
			}
			var got []string
			for _, ws := range list.Items {
				got = append(got, ws.Name)
			}
			if !slices.Equal(got, want) {
				t.Errorf("workspaces of %s: %v, want %v", parent, got, want)
			}
		}
		all, err := workspaces.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("listing workspaces across all clusters: %v", err)
		}
		where := map[string]string{}
		for _, ws := range all.Items {
			where[ws.Name] = logicalcluster.From(&ws).String()
		}
		if want := map[string]string{"org": "root", "team": clusters["root:org"], "proj": clusters["root:org:team"]}; fmt.Sprint(where) != fmt.Sprint(want) {
			t.Errorf("workspaces across all clusters, by name and cluster: %v, want %v", where, want)
		}
		shards, err := kcp.CoreV1alpha1().Shards().Cluster(logicalcluster.NewPath("root")).List(ctx, metav1.ListOptions{})
		if err != nil || len(shards.Items) != 1 || shards.Items[0].Spec.BaseURL != s.URL("") || shards.Items[0].Spec.ExternalURL != s.URL("") {
			t.Errorf("the shards of root: %+v, %v; want one at %s", shards, err, s.URL(""))
		}

		if err := workspaces.Cluster(logicalcluster.NewPath("root")).Delete(ctx, "org", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			_, err := workspaces.Cluster(logicalcluster.NewPath("root")).Get(ctx, "org", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}); err != nil {
			t.Fatalf("waiting for root:org to go: %v", err)
		}
		for _, path := range []string{"root:org", "root:org:team", "root:org:team:proj"} {
			if n := storageCount(t, s, `SELECT count(*) FROM objects WHERE cluster = $1`, clusters[path]); n != 0 {
				t.Errorf("%d rows of %s (cluster %s) are left", n, path, clusters[path])
			}
		}
	})
}
