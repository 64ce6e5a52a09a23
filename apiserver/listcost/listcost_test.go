package listcost

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/utils/ptr"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// request is the context of a request of verb for config maps in namespace
// of cluster, named name ("" for a collection).
func request(cluster, verb, namespace, name string) context.Context {
	ctx := logicalcluster.WithName(context.Background(), logicalcluster.Name(cluster))
	return genericapirequest.WithRequestInfo(ctx, &genericapirequest.RequestInfo{
		IsResourceRequest: true, Verb: verb, APIVersion: "v1", Resource: "configmaps", Namespace: namespace, Name: name,
	})
}

// configMaps is a list answer of n config maps, with remaining more after it
// (nil: none, the answer is whole).
func configMaps(n int, remaining *int64) runtime.Object {
	list := &corev1.ConfigMapList{}
	for i := range n {
		list.Items = append(list.Items, corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}})
	}
	if remaining != nil {
		list.Continue, list.RemainingItemCount = "next", remaining
	}
	return list
}

// TestSeatsCountTheObjectsAListReads: a list is charged one seat per 100
// objects of its workspace's last answer for the same namespace, as many as
// its limit lets it read without a selector, all of them with one, within
// the level's most and MaxSeats.
func TestSeatsCountTheObjectsAListReads(t *testing.T) {
	s := New(16)
	s.record(request("a", "list", "default", ""), everything, configMaps(450, nil))
	s.record(request("b", "list", "default", ""), everything, configMaps(3, nil))
	s.record(request("a", "list", "", ""), everything, configMaps(500, ptr.To[int64](1500)))
	for _, c := range []struct {
		name      string
		ctx       context.Context
		query     string
		most      uint64
		want      uint64
		estimated bool
	}{
		{name: "a's namespace", ctx: request("a", "list", "default", ""), most: 10, want: 5, estimated: true},
		{name: "within the level's most", ctx: request("a", "list", "default", ""), most: 3, want: 3, estimated: true},
		{name: "b's namespace, not a's, of one seat's objects: not remembered", ctx: request("b", "list", "default", ""), most: 10},
		{name: "a limit", ctx: request("a", "list", "default", ""), query: "limit=150", most: 10, want: 2, estimated: true},
		{name: "a limit with a selector reads them all", ctx: request("a", "list", "default", ""), query: "limit=150&labelSelector=x%3Dy", most: 10, want: 5, estimated: true},
		{name: "a first page and what remains", ctx: request("a", "list", "", ""), most: 20, want: MaxSeats, estimated: true},
		{name: "another namespace, never listed", ctx: request("a", "list", "other", "")},
		{name: "another workspace, never listed", ctx: request("c", "list", "default", "")},
		{name: "a get", ctx: request("a", "get", "default", "cm-0")},
		{name: "a list of one by name", ctx: request("a", "list", "default", "cm-0")},
		{name: "a query that does not parse", ctx: request("a", "list", "default", ""), query: "limit=%zz", most: 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			seats, ok := s.Seats(c.ctx, c.query, c.most)
			if ok != c.estimated || seats != c.want {
				t.Errorf("Seats = %d, %v; want %d, %v", seats, ok, c.want, c.estimated)
			}
		})
	}
}

// TestOnlyWholeUnfilteredListsOfListRequestsAreRecorded: a filtered list, a
// later page, a page whose remaining count is unknown, and a list made for
// anything but a list request leave the recorded size as it was; a list of no
// more than one seat's objects forgets it.
func TestOnlyWholeUnfilteredListsOfListRequestsAreRecorded(t *testing.T) {
	s := New(16)
	ctx := request("a", "list", "default", "")
	s.record(ctx, everything, configMaps(250, nil))

	selected := storage.ListOptions{Predicate: storage.SelectionPredicate{Label: labels.SelectorFromSet(labels.Set{"x": "y"}), Field: fields.Everything()}}
	s.record(ctx, selected, configMaps(1, nil))
	later := everything
	later.Predicate.Continue = "next"
	s.record(ctx, later, configMaps(900, nil))
	unknown := configMaps(900, nil).(*corev1.ConfigMapList)
	unknown.Continue = "next"
	s.record(ctx, everything, unknown)
	s.record(request("a", "deletecollection", "default", ""), everything, configMaps(900, nil))

	if seats, _ := s.Seats(ctx, "", 10); seats != 3 {
		t.Errorf("after a list of 250 and others not to record, %d seats, want 3", seats)
	}
	s.record(ctx, everything, configMaps(100, nil))
	if seats, ok := s.Seats(ctx, "", 10); ok {
		t.Errorf("after a list of 100, %d seats estimated, want upstream's estimate", seats)
	}
}

// everything are the options of an unfiltered list.
var everything = storage.ListOptions{Predicate: storage.Everything}
