package robustness

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// watchEvent is one event a watcher received.
type watchEvent struct {
	Type  string `json:"type"`
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
	RV    string `json:"rv"`
}

// watcher watches the configmaps for the whole run, resuming from the last
// revision it saw whenever a watch ends, and relisting only on 410 Gone.
type watcher struct {
	mu         sync.Mutex
	start      int64 // the revision the first watch started from
	last       int64 // the last revision delivered (event or bookmark)
	events     []watchEvent
	gaps       [][2]int64 // (from, to]: revisions a relist skipped
	resumes    int
	violations []string
}

func revision(rv string) int64 {
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func (w *watcher) violation(format string, args ...any) {
	w.violations = append(w.violations, fmt.Sprintf(format, args...))
}

// run watches until ctx ends.
func (w *watcher) run(ctx context.Context, c kubernetes.Interface) {
	cms := c.CoreV1().ConfigMaps("default")
	rv := ""
	for ctx.Err() == nil && rv == "" {
		if list, err := cms.List(ctx, metav1.ListOptions{}); err == nil {
			rv = list.ResourceVersion
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	w.mu.Lock()
	w.start, w.last = revision(rv), revision(rv)
	w.mu.Unlock()
	for ctx.Err() == nil {
		wi, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				rv = w.relist(ctx, cms)
				continue
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		rv = w.consume(ctx, wi, cms, rv)
		w.mu.Lock()
		w.resumes++
		w.mu.Unlock()
	}
}

func (w *watcher) consume(ctx context.Context, wi watch.Interface, cms interface {
	List(context.Context, metav1.ListOptions) (*corev1.ConfigMapList, error)
}, rv string) string {
	defer wi.Stop()
	for ev := range wi.ResultChan() {
		if ev.Type == watch.Error {
			if status, ok := ev.Object.(*metav1.Status); ok && status.Code == 410 {
				return w.relist(ctx, cms)
			}
			return rv
		}
		cm, ok := ev.Object.(*corev1.ConfigMap)
		if !ok {
			continue
		}
		r := revision(cm.ResourceVersion)
		w.mu.Lock()
		switch {
		case ev.Type == watch.Bookmark && r < w.last:
			w.violation("a bookmark at %d after revision %d", r, w.last)
		case ev.Type != watch.Bookmark && r <= w.last:
			w.violation("%s %s at %d after revision %d: out of order or twice", ev.Type, cm.Name, r, w.last)
		}
		if r > w.last {
			w.last = r
		}
		if ev.Type != watch.Bookmark {
			w.events = append(w.events, watchEvent{Type: string(ev.Type), Key: cm.Name, Value: cm.Data["v"], RV: cm.ResourceVersion})
		}
		w.mu.Unlock()
		rv = cm.ResourceVersion
	}
	return rv
}

// relist starts over after 410 Gone: the revisions between the last seen and
// the list's may hold changes this watcher never sees, legitimately.
func (w *watcher) relist(ctx context.Context, cms interface {
	List(context.Context, metav1.ListOptions) (*corev1.ConfigMapList, error)
}) string {
	for ctx.Err() == nil {
		list, err := cms.List(ctx, metav1.ListOptions{})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		w.mu.Lock()
		w.gaps = append(w.gaps, [2]int64{w.last, revision(list.ResourceVersion)})
		w.last = revision(list.ResourceVersion)
		w.mu.Unlock()
		return list.ResourceVersion
	}
	return ""
}

// check holds the watcher's stream against the acknowledged writes: each one
// inside the watched range appears, once, with its value.
func (w *watcher) check(acked []ackedWrite) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	byRV := map[string]watchEvent{}
	for _, ev := range w.events {
		byRV[ev.RV] = ev
	}
	violations := append(append([]string(nil), w.violations...), w.previousObjects()...)
	for _, a := range acked {
		r := revision(a.RV)
		if r <= w.start || r > w.last || w.skipped(r) {
			continue
		}
		want := map[string]string{"create": string(watch.Added), "update": string(watch.Modified)}[a.Kind]
		ev, ok := byRV[a.RV]
		switch {
		case !ok:
			violations = append(violations, fmt.Sprintf("acknowledged %s of %s at %s never reached the watcher", a.Kind, a.Key, a.RV))
		case ev.Key != a.Key || ev.Type != want || ev.Value != a.Value:
			violations = append(violations, fmt.Sprintf("acknowledged %s of %s=%s at %s arrived as %s %s=%s", a.Kind, a.Key, a.Value, a.RV, ev.Type, ev.Key, ev.Value))
		}
	}
	return violations
}

// previousObjects checks the previous object events carry: a DELETED event
// delivers the object as it was before the delete, which must be what the
// stream's previous event of that key delivered. A relist forgets what was
// delivered before it.
func (w *watcher) previousObjects() []string {
	var violations []string
	delivered := map[string]string{}
	last := w.start
	for _, ev := range w.events {
		r := revision(ev.RV)
		for _, g := range w.gaps {
			if g[0] >= last && g[0] < r {
				clear(delivered)
			}
		}
		last = r
		prev, seen := delivered[ev.Key]
		if ev.Type != string(watch.Deleted) {
			delivered[ev.Key] = ev.Value
			continue
		}
		delete(delivered, ev.Key)
		if seen && prev != ev.Value {
			violations = append(violations, fmt.Sprintf("DELETED %s at %s carries %s=%q; the previous event of %s delivered %q", ev.Key, ev.RV, ev.Key, ev.Value, ev.Key, prev))
		}
	}
	return violations
}

func (w *watcher) skipped(r int64) bool {
	for _, g := range w.gaps {
		if r > g[0] && r <= g[1] {
			return true
		}
	}
	return false
}
