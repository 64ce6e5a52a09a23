package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/client"
)

// readiness tells when workspaces become Ready from one watch of the
// workspaces of each organization in use, rather than by polling each one,
// which would load the server with several gets per workspace. Workspaces are
// created in order, so few organizations are in use at once: starting the
// watch of one ends the watches of those no workspace is awaited in.
type readiness struct {
	workspaces *client.Client
	http       *http.Client

	mu   sync.Mutex
	orgs map[tenancy.Path]*orgWatch
}

// orgWatch is the watch of one organization's workspaces.
type orgWatch struct {
	users   int
	ready   map[string]bool
	waiting map[string]chan struct{}
	stop    func()
}

func newReadiness(workspaces *client.Client, hc *http.Client) *readiness {
	return &readiness{workspaces: workspaces, http: hc, orgs: map[tenancy.Path]*orgWatch{}}
}

// await runs create, which creates the workspace name in org or finds it
// there, and returns once that workspace is Ready.
func (r *readiness) await(ctx context.Context, org tenancy.Path, name string, create func() error) error {
	w, err := r.acquire(ctx, org)
	if err != nil {
		return err
	}
	defer r.release(w)
	r.mu.Lock()
	ready, ok := w.waiting[name]
	if !ok {
		ready = make(chan struct{})
		if w.ready[name] {
			close(ready)
		} else {
			w.waiting[name] = ready
		}
	}
	r.mu.Unlock()
	if err := create(); err != nil {
		return err
	}
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(readyTimeout):
		return fmt.Errorf("workspace %s not Ready within %s", org.Join(name), readyTimeout)
	}
}

// acquire returns the watch of org, starting it if it is not running.
func (r *readiness) acquire(ctx context.Context, org tenancy.Path) (*orgWatch, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w, ok := r.orgs[org]; ok {
		w.users++
		return w, nil
	}
	for o, w := range r.orgs {
		if w.users == 0 {
			w.stop()
			delete(r.orgs, o)
		}
	}
	dyn, err := dynamic.NewForConfigAndClient(r.workspaces.Config(string(org)), r.http)
	if err != nil {
		return nil, fmt.Errorf("client of %s: %w", org, err)
	}
	res := dyn.Resource(tenancyv1alpha1.SchemeGroupVersion.WithResource("workspaces"))
	// The list says which are Ready already (a resumed run); the watch from its
	// revision on, which become Ready later.
	list, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the workspaces of %s: %w", org, err)
	}
	w := &orgWatch{users: 1, ready: map[string]bool{}, waiting: map[string]chan struct{}{}}
	for i := range list.Items {
		if isReady(&list.Items[i]) {
			w.ready[list.Items[i].GetName()] = true
		}
	}
	watchCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rw, err := watchtools.NewRetryWatcherWithContext(watchCtx, list.GetResourceVersion(), &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
			return res.Watch(ctx, options)
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watching the workspaces of %s: %w", org, err)
	}
	w.stop = func() { cancel(); rw.Stop() }
	go func() {
		for ev := range rw.ResultChan() {
			if u, ok := ev.Object.(*unstructured.Unstructured); ok && isReady(u) {
				r.markReady(w, u.GetName())
			}
		}
	}()
	r.orgs[org] = w
	return w, nil
}

func (r *readiness) release(w *orgWatch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w.users--
}

// stop ends every watch; none may be in use.
func (r *readiness) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for o, w := range r.orgs {
		w.stop()
		delete(r.orgs, o)
	}
}

func (r *readiness) markReady(w *orgWatch, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w.ready[name] = true
	if ch, ok := w.waiting[name]; ok {
		close(ch)
		delete(w.waiting, name)
	}
}

func isReady(u *unstructured.Unstructured) bool {
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	return phase == string(corev1alpha1.LogicalClusterPhaseReady)
}
