package robustness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/anishathalye/porcupine"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// keys are the configmaps the clients contend on.
var keys = []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"}

// recorder collects the history of every client.
type recorder struct {
	start   time.Time
	mu      sync.Mutex
	history []porcupine.Operation
	// acked are the writes the server acknowledged with a revision.
	acked []ackedWrite
	// listViolations are inconsistent paginated lists.
	listViolations []string
	ops            int
	// settled is when every write of unknown outcome has taken effect or never
	// will (since start).
	settled time.Duration
}

type ackedWrite struct {
	Key, Kind, Value, RV string
}

func (r *recorder) now() int64 { return time.Since(r.start).Nanoseconds() }

// unknownWithin bounds when a write of unknown outcome takes effect, if it does:
// within this long of its failure. Every fault here ends within it (a kill ends
// the writes in flight, a restart or terminated session aborts or commits their
// transactions before the error returns, a stall lasts stallFor, after which a
// write that timed out waiting commits), and without a bound each such write
// overlaps everything after it, which makes the check exponential.
const unknownWithin = stallFor + time.Second

// record adds an operation.
func (r *recorder) record(client int, in input, out output, call, ret int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops++
	if out.Outcome == "unknown" {
		if in.Kind == "get" {
			return
		}
		ret += unknownWithin.Nanoseconds()
		r.settled = max(r.settled, time.Duration(ret))
	}
	r.history = append(r.history, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	if out.Outcome == "ok" && out.RV != "" && in.Kind != "get" {
		r.acked = append(r.acked, ackedWrite{Key: in.Key, Kind: in.Kind, Value: in.Value, RV: out.RV})
	}
}

// classify turns an API error into an outcome; sent is false when the request
// never reached the server (nothing can have happened).
func classify(err error) (outcome string, sent bool) {
	switch {
	case err == nil:
		return "ok", true
	case apierrors.IsNotFound(err):
		return "notfound", true
	case apierrors.IsAlreadyExists(err):
		return "exists", true
	case apierrors.IsConflict(err):
		return "conflict", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return "", false
	}
	return "unknown", true
}

// client runs random operations until ctx ends.
func (r *recorder) client(ctx context.Context, id int, c kubernetes.Interface) {
	cms := c.CoreV1().ConfigMaps("default")
	seen := map[string]string{} // last resource version seen per key
	n := 0
	for ctx.Err() == nil {
		n++
		key := keys[rand.IntN(len(keys))]
		value := fmt.Sprintf("c%d-%d", id, n)
		opCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		call := r.now()
		var in input
		var out output
		var err error
		switch p := rand.IntN(100); {
		case p < 30:
			in = input{Kind: "get", Key: key}
			var cm *corev1.ConfigMap
			if cm, err = cms.Get(opCtx, key, metav1.GetOptions{}); err == nil {
				out.Value, out.RV = cm.Data["v"], cm.ResourceVersion
				seen[key] = cm.ResourceVersion
			}
		case p < 50:
			in = input{Kind: "create", Key: key, Value: value}
			var cm *corev1.ConfigMap
			if cm, err = cms.Create(opCtx, configMap(key, value, ""), metav1.CreateOptions{}); err == nil {
				out.RV = cm.ResourceVersion
				seen[key] = cm.ResourceVersion
			}
		case p < 80:
			in = input{Kind: "update", Key: key, Value: value, ExpectRV: rvOr(seen[key])}
			var cm *corev1.ConfigMap
			if cm, err = cms.Update(opCtx, configMap(key, value, in.ExpectRV), metav1.UpdateOptions{}); err == nil {
				out.RV = cm.ResourceVersion
				seen[key] = cm.ResourceVersion
			}
		case p < 92:
			in = input{Kind: "delete", Key: key, ExpectRV: rvOr(seen[key])}
			rv := in.ExpectRV
			err = cms.Delete(opCtx, key, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		default:
			r.list(opCtx, cms)
			cancel()
			continue
		}
		cancel()
		ret := r.now()
		outcome, sent := classify(err)
		if !sent {
			time.Sleep(50 * time.Millisecond) // the server is down; do not spin
			continue
		}
		out.Outcome = outcome
		// A write cut short when the run ends may still have committed: it is
		// recorded as unknown like any other.
		r.record(id, in, out, call, ret)
		if outcome == "unknown" {
			// Back off, as clients do: every write of unknown outcome multiplies
			// the orders the checker must consider.
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func rvOr(rv string) string {
	if rv == "" {
		return "1"
	}
	return rv
}

func configMap(name, value, rv string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}, Data: map[string]string{"v": value}}
}

// list reads every key in pages of two and checks the pages form one snapshot:
// one resource version, names in order, none twice, no item newer than the list.
func (r *recorder) list(ctx context.Context, cms interface {
	List(context.Context, metav1.ListOptions) (*corev1.ConfigMapList, error)
}) {
	opts := metav1.ListOptions{Limit: 2}
	var names []string
	listRV := ""
	for {
		page, err := cms.List(ctx, opts)
		if err != nil {
			return // an interrupted list proves nothing
		}
		if listRV == "" {
			listRV = page.ResourceVersion
		} else if page.ResourceVersion != listRV {
			r.listViolation(fmt.Sprintf("a page at revision %s after the first at %s", page.ResourceVersion, listRV))
		}
		for _, item := range page.Items {
			names = append(names, item.Name)
			if revision(item.ResourceVersion) > revision(listRV) {
				r.listViolation(fmt.Sprintf("%s at %s in a list at %s", item.Name, item.ResourceVersion, listRV))
			}
		}
		if page.Continue == "" {
			break
		}
		opts.Continue = page.Continue
	}
	if !sort.StringsAreSorted(names) {
		r.listViolation(fmt.Sprintf("names out of order: %v", names))
	}
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			r.listViolation(fmt.Sprintf("%s listed twice", names[i]))
		}
	}
}

func (r *recorder) listViolation(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listViolations = append(r.listViolations, msg)
}
