package namespace

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/warren-dev/warren/tenancy/clusterwatch"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// defaults makes what every new namespace starts with (its "default" service
// account). It tries in the create request, so that the namespace is complete
// when the create returns; if that fails, the namespace exists all the same, so
// the failure is queued and retried, rate limited, until it succeeds or the
// namespace is gone or terminating.
type defaults struct {
	// make makes the defaults of ns, in the cluster of ctx; it must be
	// idempotent.
	make func(ctx context.Context, ns *corev1.Namespace) error
	// get reads a namespace, in the cluster of ctx.
	get   func(ctx context.Context, name string) (*corev1.Namespace, error)
	queue workqueue.TypedRateLimitingInterface[clusterwatch.Ref]
}

func newDefaults(make func(context.Context, *corev1.Namespace) error, get func(context.Context, string) (*corev1.Namespace, error)) *defaults {
	return &defaults{
		make: make,
		get:  get,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[clusterwatch.Ref](),
			workqueue.TypedRateLimitingQueueConfig[clusterwatch.Ref]{Name: "namespace-defaults"}),
	}
}

// created makes the defaults of a namespace just created, or queues the retry.
func (d *defaults) created(ctx context.Context, ns *corev1.Namespace) {
	err := d.make(ctx, ns)
	if err == nil {
		return
	}
	cluster, _ := logicalcluster.From(ctx)
	klog.FromContext(ctx).Error(err, "Making a new namespace's defaults failed; retrying", "cluster", cluster, "namespace", ns.Name)
	d.queue.AddRateLimited(clusterwatch.Ref{Cluster: cluster, Name: ns.Name})
}

// run retries queued namespaces until ctx ends.
func (d *defaults) run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		d.queue.ShutDown()
	}()
	for {
		r, shutdown := d.queue.Get()
		if shutdown {
			return
		}
		if err := d.retry(logicalcluster.WithName(ctx, r.Cluster), r.Name); err != nil {
			klog.FromContext(ctx).Error(err, "Making a namespace's defaults failed; retrying", "cluster", r.Cluster, "namespace", r.Name)
			d.queue.AddRateLimited(r)
		} else {
			d.queue.Forget(r)
		}
		d.queue.Done(r)
	}
}

func (d *defaults) retry(ctx context.Context, name string) error {
	ns, err := d.get(ctx, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the namespace: %w", err)
	}
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return nil
	}
	return d.make(ctx, ns)
}
