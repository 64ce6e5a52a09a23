package e2e

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/tenancy/client"
)

// workspaceTransactions bounds the database transactions (reads, and batches
// of writes) of making a workspace, from its create to Ready, and a first
// configmap in it, one workspace at a time: the create, the writes of
// namespace default, its service account, the LogicalCluster (made Ready) and
// the Workspace Ready, and the configmap. The lifecycle starts from the
// Workspace it was told of (the version the create left, no read), from what
// it wrote, status updates from the version last read, the configmap's
// admission from the namespace just made.
const workspaceTransactions = 6

// TestWorkspaceTransactions counts the database transactions of making
// workspaces with a configmap each, allowing for the server's own every second
// (its read of the log and of expired objects).
func TestWorkspaceTransactions(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			s := startServer(t, dialect)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			c, err := client.New(s.Config("root"))
			if err != nil {
				t.Fatal(err)
			}
			w, err := c.KCP().TenancyV1alpha1().Workspaces().Cluster(logicalcluster.NewPath("root")).Watch(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			makeOne := func(name string) {
				t.Helper()
				if _, err := c.Create(ctx, "root", name, nil); err != nil {
					t.Fatal(err)
				}
				ready := false
				for ev := range w.ResultChan() {
					ws, ok := ev.Object.(*tenancyv1alpha1.Workspace)
					if ready = ev.Type == watch.Modified && ok && ws.Name == name && ws.Status.Phase == corev1alpha1.LogicalClusterPhaseReady; ready {
						break
					}
				}
				if !ready {
					t.Fatalf("the watch ended before workspace %s was Ready: %v", name, ctx.Err())
				}
				inside, err := kubernetes.NewForConfig(s.Config("root:" + name))
				if err != nil {
					t.Fatal(err)
				}
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "first"}}
				if _, err := inside.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					t.Fatalf("configmap in %s: %v", name, err)
				}
			}
			makeOne("warm-up") // the types and the parent in the caches
			const n = 10
			before, start := s.metric("warren_storage_transactions_total"), time.Now()
			for i := range n {
				makeOne(fmt.Sprintf("w%d", i))
			}
			spent := s.metric("warren_storage_transactions_total") - before
			background := 2 * (math.Ceil(time.Since(start).Seconds()) + 1)
			t.Logf("%d workspaces: %.0f transactions, at most %.0f of them the server's own", n, spent, background)
			// Half a transaction per workspace of slack, for a controller's
			// retry or a watch event that comes late: a read more for every
			// workspace still fails.
			if per := (spent - background) / n; per > workspaceTransactions+0.5 {
				t.Errorf("a workspace with a configmap took %.1f transactions or more, want at most %d", per, workspaceTransactions)
			}
		})
	}
}
