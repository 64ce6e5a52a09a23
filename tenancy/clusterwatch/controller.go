package clusterwatch

import (
	"context"
	"errors"
	"strconv"
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
	// While a leader gates the work and this process does not lead (gated),
	// what is to be reconciled waits in pending rather than in the queue, so
	// that what is deleted meanwhile is forgotten: a follower holds nothing
	// of what is gone, and hands the queue the rest when its term begins.
	mu      sync.Mutex
	gated   bool
	pending map[Ref]struct{}
	// seen is, for each object queued because it changed, the newest
	// revision its events carried, until its reconcile starts (SeenRevision).
	seen map[Ref]int64
}

type seenKey struct{}

// SeenRevision is, in Sync, the newest resource version of the object's
// events that queued it, "" if none did (it was asked for by Enqueue, or is
// retried): a read of the object no older than it sees every change the
// controller was told of, as a read of the current state would (a later
// change queues it again).
func SeenRevision(ctx context.Context) string {
	rv, _ := ctx.Value(seenKey{}).(string)
	return rv
}

// noteSeen records that an event of r's object carried resource version rv.
func (c *Controller) noteSeen(r Ref, rv string) {
	revision, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || revision <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[Ref]int64{}
	}
	c.seen[r] = max(c.seen[r], revision)
}

// takeSeen returns ctx with r's SeenRevision, which it forgets.
func (c *Controller) takeSeen(ctx context.Context, r Ref) context.Context {
	c.mu.Lock()
	revision, ok := c.seen[r]
	delete(c.seen, r)
	c.mu.Unlock()
	if !ok {
		return ctx
	}
	return context.WithValue(ctx, seenKey{}, strconv.FormatInt(revision, 10))
}

// workQueue returns the controller's queue, made on first use.
func (c *Controller) workQueue() workqueue.TypedRateLimitingInterface[Ref] {
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
	queue := c.workQueue()
	defer queue.ShutDown()
	leader, _ := ctx.Value(leaderKey{}).(Leader)
	if leader != nil {
		c.gate(true)
	}
	go Follow(ctx, c.Source, c.Selector, func(ev Event) {
		if c.Observe != nil {
			c.Observe(ev)
		}
		m, err := meta.Accessor(ev.Object)
		if err != nil {
			return
		}
		r := Ref{Cluster: ev.Cluster, Name: m.GetName()}
		switch {
		case ev.Type == watch.Deleted:
			c.forget(r)
		case ev.Type != watch.Added && ev.Type != watch.Modified, c.Settled != nil && c.Settled(ev.Object):
		default:
			c.noteSeen(r, m.GetResourceVersion())
			c.add(r)
		}
	})
	workers := max(c.Workers, 1)
	if leader == nil {
		for range workers {
			go c.work(ctx, queue)
		}
		<-ctx.Done()
		return
	}
	for {
		term, end, ok := leader.Leading(ctx)
		if !ok {
			return
		}
		c.gate(false)
		for range workers {
			go c.work(term, queue)
		}
		<-term.Done()
		end()
		// Workers waiting for an object hand the next one back and stop.
		c.gate(true)
		if ctx.Err() != nil {
			return
		}
	}
}

// work reconciles what is queued until term ends or the queue shuts down.
func (c *Controller) work(term context.Context, queue workqueue.TypedRateLimitingInterface[Ref]) {
	for term.Err() == nil && c.next(term, queue) {
	}
}

// gate holds back what is to be reconciled while on, and queues what was held
// back once off.
func (c *Controller) gate(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gated = on
	if on {
		if c.pending == nil {
			c.pending = map[Ref]struct{}{}
		}
		return
	}
	for r := range c.pending {
		c.workQueue().Add(r)
	}
	c.pending = nil
}

// add has r reconciled, now or, while gated, once the gate opens.
func (c *Controller) add(r Ref) {
	c.mu.Lock()
	if c.gated {
		c.pending[r] = struct{}{}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.workQueue().Add(r)
}

// forget drops r, whose object is deleted, from what the gate holds back.
func (c *Controller) forget(r Ref) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, r)
	delete(c.seen, r)
}

// Leader tells whether this process may do the work of its shard's
// controllers: only one of the processes serving a shard does at a time.
type Leader interface {
	// Leading waits until this process leads and returns a context that
	// ends when it stops leading or ctx ends, and its cancel function; false
	// if ctx ended first.
	Leading(ctx context.Context) (context.Context, context.CancelFunc, bool)
}

type leaderKey struct{}

// WithLeader returns ctx under which the controllers Run reconcile only
// while leader says this process leads. Their watches run regardless — what
// they Observe stays current, and what changes is queued for the next term.
func WithLeader(ctx context.Context, leader Leader) context.Context {
	return context.WithValue(ctx, leaderKey{}, leader)
}

// Enqueue asks for r to be reconciled, as a change of it would; asked before
// Run, it is reconciled once Run starts.
func (c *Controller) Enqueue(r Ref) { c.add(r) }

// next reconciles the next object queued with ctx, the current term; one
// taken after the term ended goes back for the next. False once the queue
// shuts down.
func (c *Controller) next(ctx context.Context, queue workqueue.TypedRateLimitingInterface[Ref]) bool {
	r, shutdown := queue.Get()
	if shutdown {
		return false
	}
	defer queue.Done(r)
	if ctx.Err() != nil {
		queue.Add(r)
		return true
	}
	if err := c.Sync(c.takeSeen(ctx, r), r); err != nil {
		if ctx.Err() != nil {
			// The term ended under it: not a failure, for the next term.
			queue.Add(r)
			return true
		}
		if !errors.As(err, new(Waiting)) {
			klog.FromContext(ctx).Error(err, "Reconciling failed; retrying", "controller", c.Name, "cluster", r.Cluster, "name", r.Name)
		}
		queue.AddRateLimited(r)
		return true
	}
	queue.Forget(r)
	return true
}
