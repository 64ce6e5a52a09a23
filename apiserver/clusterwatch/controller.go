package clusterwatch

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/warren-dev/warren/apiserver/logicalcluster"
)

// Ref names an object of a cluster.
type Ref struct {
	Cluster logicalcluster.Name
	Name    string
}

// Controller reconciles objects of one resource in every cluster: one wildcard
// watch feeds one work queue, so it keeps nothing per cluster but queued work.
type Controller struct {
	// Name names the controller in logs and metrics.
	Name string
	// Source is the resource's storage.
	Source rest.Watcher
	// Selector limits which objects are reconciled; nil means all.
	Selector fields.Selector
	// Sync reconciles an object; an error retries it later, rate limited. It
	// must be idempotent: several processes may run it for the same object.
	Sync func(ctx context.Context, r Ref) error
}

// Run works until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[Ref](),
		workqueue.TypedRateLimitingQueueConfig[Ref]{Name: c.Name})
	defer queue.ShutDown()
	go Follow(ctx, c.Source, c.Selector, func(ev Event) {
		if ev.Type != watch.Added && ev.Type != watch.Modified {
			return
		}
		if m, err := meta.Accessor(ev.Object); err == nil {
			queue.Add(Ref{Cluster: ev.Cluster, Name: m.GetName()})
		}
	})
	go func() {
		for c.next(ctx, queue) {
		}
	}()
	<-ctx.Done()
}

func (c *Controller) next(ctx context.Context, queue workqueue.TypedRateLimitingInterface[Ref]) bool {
	r, shutdown := queue.Get()
	if shutdown {
		return false
	}
	defer queue.Done(r)
	if err := c.Sync(ctx, r); err != nil {
		klog.FromContext(ctx).Error(err, "Reconciling failed; retrying", "controller", c.Name, "cluster", r.Cluster, "name", r.Name)
		queue.AddRateLimited(r)
		return true
	}
	queue.Forget(r)
	return true
}
