// Package provider is the model of an API provider's operator: one controller,
// written with controller-runtime, that serves every workspace binding the
// provider's export, through the export's virtual workspaces, with no access
// to any consumer workspace and nothing per consumer but a client.
//
// It finds the virtual workspaces as kcp's multicluster provider does, in the
// export's APIExportEndpointSlice (one per shard with consumers), and serves
// each: it lists and watches the export's resource across all its consumers at
// /clusters/* with one informer keyed by logical cluster (kcp's cluster-aware
// informer, so objects of the same name in two workspaces never collide), and
// writes each object's status back in its own workspace at /clusters/<cluster>.
// Its one job, for the example export of widgets (example.com/v1):
// status.observed follows spec.size.
//
// Everything it asks of the server is what a provider's operator asks of kcp:
// get of the endpoint slice in the provider's workspace, discovery, and list,
// watch, get and update/status through the virtual workspaces.
package provider

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	kcpinformers "github.com/kcp-dev/apimachinery/v2/third_party/informers"
	"github.com/kcp-dev/logicalcluster/v3"
	kcpclient "github.com/kcp-dev/sdk/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// Widget is the kind the operator reconciles.
var Widget = schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}

// Request names an object in a consumer workspace.
type Request struct {
	Cluster logicalcluster.Name
	types.NamespacedName
}

// Run serves the export of widgets named export in the provider's workspace,
// which config addresses, until ctx ends; it logs to ctx's logger. It may run
// more than once in a process.
//
// The export's endpoint slice lists one virtual workspace per shard with
// consumers; each is served by a manager of its own, started when the slice
// lists it, stopped when it no longer does, and started again if it fails.
func Run(ctx context.Context, config *rest.Config, export string) error {
	kcp, err := kcpclient.NewForConfig(config)
	if err != nil {
		return err
	}
	log := logr.FromContextOrDiscard(ctx)
	// controller-runtime's clients log through its global logger.
	setLogger.Do(func() { ctrllog.SetLogger(log) })
	// Every manager is stopped (cancel), then waited for.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ended := make(chan string)
	serving := map[string]context.CancelFunc{}
	err = wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		for done := false; !done; {
			select {
			case url := <-ended:
				delete(serving, url)
			default:
				done = true
			}
		}
		slice, err := kcp.ApisV1alpha1().APIExportEndpointSlices().Get(ctx, export, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading the endpoint slice of export %s: %w", export, err)
		}
		listed := map[string]bool{}
		for _, e := range slice.Status.APIExportEndpoints {
			listed[e.URL] = true
			if serving[e.URL] != nil {
				continue
			}
			sctx, stop := context.WithCancel(ctx)
			serving[e.URL] = stop
			wg.Go(func() {
				defer stop()
				if err := serve(sctx, config, e.URL); err != nil {
					log.Error(err, "Serving a virtual workspace failed; starting again", "url", e.URL)
				}
				select {
				case ended <- e.URL:
				case <-ctx.Done():
				}
			})
		}
		for url, stop := range serving {
			if !listed[url] {
				stop()
			}
		}
		return false, nil
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// setLogger sets controller-runtime's global logger once.
var setLogger sync.Once

// serve reconciles the widgets of every consumer of the virtual workspace at
// url until ctx ends.
func serve(ctx context.Context, config *rest.Config, url string) error {
	all := rest.CopyConfig(config)
	all.Host = url + "/clusters/" + logicalcluster.Wildcard.String()
	mgr, err := manager.New(all, manager.Options{
		Logger:                 logr.FromContextOrDiscard(ctx),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{NewInformer: clusterAwareInformer},
	})
	if err != nil {
		return fmt.Errorf("a manager for %s: %w", all.Host, err)
	}
	r := &reconciler{base: config, url: url, mgr: mgr, clients: map[logicalcluster.Name]client.Client{}}
	c, err := controller.NewTyped("widgets", mgr, controller.TypedOptions[Request]{Reconciler: r, SkipNameValidation: ptr.To(true)})
	if err != nil {
		return err
	}
	watched := &unstructured.Unstructured{}
	watched.SetGroupVersionKind(Widget)
	if err := c.Watch(source.TypedKind(mgr.GetCache(), watched, handler.TypedEnqueueRequestsFromMapFunc(
		func(_ context.Context, o *unstructured.Unstructured) []Request {
			return []Request{{Cluster: logicalcluster.From(o), NamespacedName: client.ObjectKeyFromObject(o)}}
		}))); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// clusterAwareInformer keys the cache by logical cluster, namespace and name,
// as objects from every consumer share one list.
func clusterAwareInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	return kcpinformers.NewSharedIndexInformer(lw, obj, resync, indexers)
}

// reconciler sets status.observed of a widget to its spec.size, in the widget's
// workspace through the virtual workspace.
type reconciler struct {
	base *rest.Config
	url  string
	mgr  manager.Manager

	mu      sync.Mutex
	clients map[logicalcluster.Name]client.Client
}

// Reconcile implements reconcile.TypedReconciler.
func (r *reconciler) Reconcile(ctx context.Context, req Request) (reconcile.Result, error) {
	c, err := r.client(req.Cluster)
	if err != nil {
		return reconcile.Result{}, err
	}
	w := &unstructured.Unstructured{}
	w.SetGroupVersionKind(Widget)
	if err := c.Get(ctx, req.NamespacedName, w); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	size, _, err := unstructured.NestedInt64(w.Object, "spec", "size")
	if err != nil {
		return reconcile.Result{}, reconcile.TerminalError(err)
	}
	if observed, found, _ := unstructured.NestedInt64(w.Object, "status", "observed"); found && observed == size {
		return reconcile.Result{}, nil
	}
	if err := unstructured.SetNestedField(w.Object, size, "status", "observed"); err != nil {
		return reconcile.Result{}, reconcile.TerminalError(err)
	}
	return reconcile.Result{}, c.Status().Update(ctx, w)
}

// client is a client of one consumer's workspace through the virtual
// workspace, sharing the manager's connections and REST mapping.
func (r *reconciler) client(cluster logicalcluster.Name) (client.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[cluster]; ok {
		return c, nil
	}
	config := rest.CopyConfig(r.base)
	config.Host = r.url + "/clusters/" + cluster.String()
	c, err := client.New(config, client.Options{HTTPClient: r.mgr.GetHTTPClient(), Scheme: r.mgr.GetScheme(), Mapper: r.mgr.GetRESTMapper()})
	if err != nil {
		return nil, fmt.Errorf("a client of cluster %s: %w", cluster, err)
	}
	r.clients[cluster] = c
	return c, nil
}
