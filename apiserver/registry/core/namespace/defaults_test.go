package namespace

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// namespaces is a cluster's namespaces and the defaults made in them, with
// the first failures of make chosen by the test.
type namespaces struct {
	mu       sync.Mutex
	stored   map[string]*corev1.Namespace
	failures int
	made     map[string]int
}

func (n *namespaces) make(ctx context.Context, ns *corev1.Namespace) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cluster, _ := logicalcluster.From(ctx); cluster != "c1" {
		return errors.New("made outside the namespace's cluster")
	}
	if n.failures > 0 {
		n.failures--
		return errors.New("storage unavailable")
	}
	n.made[ns.Name]++
	return nil
}

func (n *namespaces) get(_ context.Context, name string) (*corev1.Namespace, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ns, ok := n.stored[name]
	if !ok {
		return nil, apierrors.NewNotFound(corev1.Resource("namespaces"), name)
	}
	return ns, nil
}

func (n *namespaces) madeIn(name string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.made[name]
}

// TestDefaultsRetried proves that a namespace whose defaults could not be made
// in its create request gets them later, and that a namespace deleted or
// terminating meanwhile gets none.
func TestDefaultsRetried(t *testing.T) {
	active := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "active"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	terminating := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "terminating"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	gone := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gone"}}
	n := &namespaces{
		stored:   map[string]*corev1.Namespace{"active": active, "terminating": terminating},
		failures: 5, // the three creates, then two retries
		made:     map[string]int{},
	}
	d := newDefaults(n.make, n.get)
	ctx, cancel := context.WithCancel(logicalcluster.WithName(context.Background(), "c1"))
	defer cancel()
	done := make(chan struct{})
	go func() {
		d.run(ctx)
		close(done)
	}()
	for _, ns := range []*corev1.Namespace{active, terminating, gone} {
		d.created(ctx, ns)
	}
	deadline := time.Now().Add(10 * time.Second)
	for n.madeIn("active") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the defaults of the active namespace were never made after its create failed to")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The other two were retried first: their first retry was due earlier.
	cancel()
	<-done
	if got := n.madeIn("active"); got != 1 {
		t.Errorf("the active namespace's defaults were made %d times, want 1", got)
	}
	for _, name := range []string{"terminating", "gone"} {
		if got := n.madeIn(name); got != 0 {
			t.Errorf("the defaults of the %s namespace were made %d times, want none", name, got)
		}
	}
}
