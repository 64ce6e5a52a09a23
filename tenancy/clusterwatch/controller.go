package clusterwatch

import (
	"context"
	"errors"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
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
	// Settled, if set, tells objects that need no work as they are: their
	// events queue nothing, so an object the controller has finished with costs
	// nothing when it changes again or when the watch starts over.
	Settled func(obj runtime.Object) bool
	// Sync reconciles an object; an error retries it later, rate limited. It
	// must be idempotent: several processes may run it for the same object.
	Sync func(ctx context.Context, r Ref) error
	// Workers is how many objects are reconciled at once (never one object
	// twice at once); 0 means 1.
	Workers int
	// Observe, if set, sees every event of the watch, settled objects' and
	// deletions too, before it queues anything: for indexes a controller
	// keeps of the objects it serves.
	Observe func(ev Event)

	once  sync.Once
	queue workqueue.TypedRateLimitingInterface[Ref]
}

// work returns the controller's queue, made on first use.
func (c *Controller) work() workqueue.TypedRateLimitingInterface[Ref] {
	c.once.Do(func() {
		c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[Ref](),
			workqueue.TypedRateLimitingQueueConfig[Ref]{Name: c.Name})
	})
	return c.queue
}

// Waiting is what Sync returns when an object waits for others: it is
// reconciled again later, rate limited, and not reported as a failure.
type Waiting struct{ Reason string }

func (w Waiting) Error() string { return w.Reason }

// Run works until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	queue := c.work()
	defer queue.ShutDown()
	go Follow(ctx, c.Source, c.Selector, func(ev Event) {
		if c.Observe != nil {
			c.Observe(ev)
		}
		if ev.Type != watch.Added && ev.Type != watch.Modified || c.Settled != nil && c.Settled(ev.Object) {
			return
		}
		if m, err := meta.Accessor(ev.Object); err == nil {
			queue.Add(Ref{Cluster: ev.Cluster, Name: m.GetName()})
		}
	})
	for range max(c.Workers, 1) {
		go func() {
			for c.next(ctx, queue) {
			}
		}()
	}
	<-ctx.Done()
}

// Enqueue asks for r to be reconciled, as a change of it would; asked before
// Run, it is reconciled once Run starts.
func (c *Controller) Enqueue(r Ref) { c.work().Add(r) }

func (c *Controller) next(ctx context.Context, queue workqueue.TypedRateLimitingInterface[Ref]) bool {
	r, shutdown := queue.Get()
	if shutdown {
		return false
	}
	defer queue.Done(r)
	if err := c.Sync(ctx, r); err != nil {
		if !errors.As(err, new(Waiting)) {
			klog.FromContext(ctx).Error(err, "Reconciling failed; retrying", "controller", c.Name, "cluster", r.Cluster, "name", r.Name)
		}
		queue.AddRateLimited(r)
		return true
	}
	queue.Forget(r)
	return true
}
