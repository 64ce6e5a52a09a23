// Package clusterwatch lets one piece of the server follow a resource in every
// logical cluster at once, through a single wildcard watch, instead of running
// anything per cluster.
//
// Follow feeds controllers: every stored object, then every change, resuming
// after failures. Views are per-cluster values derived from stored objects (a
// cluster's RBAC, its CRDs): built on first use, bounded in number, and dropped
// as soon as a change in their cluster is seen, so a cluster without traffic
// costs nothing and a cached view is never older than the last change seen.
package clusterwatch

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// retryAfter is how long a failed watch waits before it is opened again.
const retryAfter = time.Second

// Event is a change of an object in a cluster.
type Event struct {
	Cluster logicalcluster.Name
	watch.Event
}

// Follow calls f with every object of w in every cluster, those matching
// selector (nil: all): first each stored one as Added, then every change. When
// the watch ends it resumes from the last revision seen, or lists again if that
// revision is gone. It returns when ctx ends.
func Follow(ctx context.Context, w rest.Watcher, selector fields.Selector, f func(Event)) {
	wildcard := logicalcluster.WithName(ctx, logicalcluster.Wildcard)
	rv := "0"
	for ctx.Err() == nil {
		stream, err := w.Watch(wildcard, &metainternalversion.ListOptions{ResourceVersion: rv, FieldSelector: selector})
		if err != nil {
			klog.FromContext(ctx).Error(err, "Watching across clusters failed; retrying")
			rv = "0"
			sleep(ctx, retryAfter)
			continue
		}
		rv = consume(ctx, stream, rv, f)
	}
}

// consume passes the events of stream to f and returns the revision to resume from.
func consume(ctx context.Context, stream watch.Interface, rv string, f func(Event)) string {
	defer stream.Stop()
	for {
		select {
		case <-ctx.Done():
			return rv
		case ev, ok := <-stream.ResultChan():
			if !ok {
				return rv
			}
			if ev.Type == watch.Error {
				return "0" // e.g. too old a revision: list again
			}
			m, err := meta.Accessor(ev.Object)
			if err != nil {
				continue
			}
			rv = m.GetResourceVersion()
			if ev.Type != watch.Bookmark {
				f(Event{Cluster: logicalcluster.Name(m.GetAnnotations()[logicalcluster.Annotation]), Event: ev})
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
