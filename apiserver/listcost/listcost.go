// Package listcost tells API priority and fairness how many seats a list
// takes, from the size of the same list in the same workspace the last time it
// was answered: a list of a workspace's 1,000 config maps is charged for 1,000
// objects, one of another workspace's three for three.
//
// Why: upstream's work estimator charges a list by the number of objects of
// its resource in the whole server, which each registry store reports to a
// tracker keyed by resource alone. In warren a resource's objects are spread
// over many workspaces, so that count would charge a tenant listing its three
// config maps for every workspace's; warren feeds the tracker nothing, and
// upstream then charges every list one seat, the cost of a get, however many
// objects it reads. Sizes are recorded as lists are answered instead, per
// logical cluster, API group, resource and namespace.
//
// Guarantees: a list's estimate comes from lists of its own logical cluster
// only; a list whose key was never answered, or was forgotten, keeps
// upstream's estimate (one seat); only keys whose last list took more than
// one seat are remembered, at most a bounded number of them, so lists of small
// or empty namespaces neither take room nor push others' sizes out. Sizes are those of
// unfiltered, complete answers (a first page counts with the items remaining
// after it), so an estimate lags a workspace's growth by one list.
package listcost

import (
	"context"
	"math"
	"net/url"

	"github.com/maypok86/otter/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/storage"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// ObjectsPerSeat is how many objects a list reads per seat it is charged:
// upstream's estimator's default.
const ObjectsPerSeat = 100

// MaxSeats is the most a list is charged, whatever its level allows:
// upstream's estimator's limit.
const MaxSeats = 10

// key is the scope of a list: a namespace's objects of a resource in a
// logical cluster ("" namespace: all of them).
type key struct{ cluster, group, resource, namespace string }

// Sizes remembers the size of each key's last answered list.
type Sizes struct {
	last *otter.Cache[key, int64]
}

// New remembers the sizes of lists of up to keys scopes (past that, otter's
// eviction forgets some).
func New(keys int) *Sizes {
	return &Sizes{last: otter.Must(&otter.Options[key, int64]{MaximumSize: keys})}
}

// Storage wraps a resource's storage so that the lists it answers for list
// requests are recorded.
func (s *Sizes) Storage(inner storage.Interface) storage.Interface {
	return recorder{Interface: inner, sizes: s}
}

type recorder struct {
	storage.Interface
	sizes *Sizes
}

func (r recorder) GetList(ctx context.Context, storageKey string, opts storage.ListOptions, listObj runtime.Object) error {
	if err := r.Interface.GetList(ctx, storageKey, opts, listObj); err != nil {
		return err
	}
	r.sizes.record(ctx, opts, listObj)
	return nil
}

// record notes the size of list, read with opts, if it is the unfiltered first
// (or only) page of a list request's answer.
func (s *Sizes) record(ctx context.Context, opts storage.ListOptions, list runtime.Object) {
	if !opts.Predicate.Empty() || opts.Predicate.Continue != "" {
		return
	}
	k, ok := keyOf(ctx)
	if !ok {
		return
	}
	n := int64(meta.LenList(list))
	if m, err := meta.ListAccessor(list); err == nil && m.GetContinue() != "" {
		remaining := m.GetRemainingItemCount()
		if remaining == nil {
			return
		}
		n += *remaining
	}
	if n <= ObjectsPerSeat {
		// One seat, as for a list never answered: no need to remember.
		s.last.Invalidate(k)
		return
	}
	s.last.Set(k, n)
}

// Seats is how many seats the list request of ctx, whose URL query is query,
// takes, at most most (and MaxSeats): one per ObjectsPerSeat objects it reads —
// all of its key's, or as many as its limit if it has no selector. False if
// it is not a list request or no list of its key was recorded.
func (s *Sizes) Seats(ctx context.Context, query string, most uint64) (uint64, bool) {
	k, ok := keyOf(ctx)
	if !ok {
		return 0, false
	}
	stored, ok := s.last.GetIfPresent(k)
	if !ok {
		return 0, false
	}
	var opts metav1.ListOptions
	if query != "" {
		values, err := url.ParseQuery(query)
		if err != nil {
			return 0, false
		}
		if err := metav1.Convert_url_Values_To_v1_ListOptions(&values, &opts, nil); err != nil {
			return 0, false
		}
	}
	read := stored
	if opts.LabelSelector == "" && opts.FieldSelector == "" && opts.Limit > 0 {
		read = min(read, opts.Limit)
	}
	seats := uint64(math.Ceil(float64(read) / ObjectsPerSeat))
	return max(1, min(seats, most, MaxSeats)), true
}

// keyOf is the key of ctx's request if it is a list of a collection (not of
// one object by name) in a logical cluster.
func keyOf(ctx context.Context) (key, bool) {
	info, ok := genericapirequest.RequestInfoFrom(ctx)
	if !ok || !info.IsResourceRequest || info.Verb != "list" || info.Name != "" || info.Subresource != "" {
		return key{}, false
	}
	cluster, ok := logicalcluster.From(ctx)
	if !ok {
		return key{}, false
	}
	return key{cluster: string(cluster), group: info.APIGroup, resource: info.Resource, namespace: info.Namespace}, true
}
