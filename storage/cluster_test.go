package storage

import (
	"bytes"
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/api/apitesting"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/storage"
)

const clusterMark = "example.dev/cluster"

// TestClusterAnnotation proves that objects of a clustered store tell their
// cluster, taken from the key whatever the object said, through every read
// path, and that the annotation is never stored.
func TestClusterAnnotation(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t, dialect, Config{})
			s, err := b.NewStore(ResourceConfig{
				Codec:             apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion),
				NewFunc:           func() runtime.Object { return &example.Pod{} },
				NewListFunc:       func() runtime.Object { return &example.PodList{} },
				ResourcePrefix:    "/pods/",
				GroupResource:     schema.GroupResource{Resource: "pods"},
				Clustered:         true,
				ClusterAnnotation: clusterMark,
			})
			if err != nil {
				t.Fatal(err)
			}
			w := watchFrom(t, s, "/pods/", 1)
			forged := newPod("ns", "p")
			forged.Annotations = map[string]string{clusterMark: "elsewhere", "keep": "me"}
			out := &example.Pod{}
			if err := s.Create(ctx, "/pods/east/ns/p", forged, out, 0); err != nil {
				t.Fatal(err)
			}
			check := func(how string, obj runtime.Object) {
				t.Helper()
				a := obj.(*example.Pod).Annotations
				if a[clusterMark] != "east" || a["keep"] != "me" {
					t.Errorf("%s: annotations %v, want %s=east and keep=me", how, a, clusterMark)
				}
			}
			check("create", out)
			if err := s.Create(ctx, "/pods/west/ns/p", newPod("ns", "p"), &example.Pod{}, 0); err != nil {
				t.Fatal(err)
			}

			got := &example.Pod{}
			if err := s.Get(ctx, "/pods/east/ns/p", storage.GetOptions{}, got); err != nil {
				t.Fatal(err)
			}
			check("get", got)
			list := &example.PodList{}
			if err := s.GetList(ctx, "/pods/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 2 || list.Items[0].Annotations[clusterMark] != "east" || list.Items[1].Annotations[clusterMark] != "west" {
				t.Errorf("list across clusters: %+v", list.Items)
			}
			ev := nextEvent(t, w)
			check("watch", ev.Object)

			updated := &example.Pod{}
			if err := s.GuaranteedUpdate(ctx, "/pods/east/ns/p", updated, false, nil,
				func(obj runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
					p := obj.(*example.Pod)
					p.Annotations[clusterMark] = "forged-again"
					p.Labels = map[string]string{"updated": "yes"}
					return p, nil, nil
				}, nil); err != nil {
				t.Fatal(err)
			}
			check("update", updated)

			r, _, err := b.db.get(ctx, "/pods/east/ns/p")
			if err != nil || r == nil {
				t.Fatalf("reading the stored row: %v", err)
			}
			if bytes.Contains(r.value, []byte(clusterMark)) {
				t.Errorf("the cluster annotation was stored: %s", r.value)
			}
		})
	}
}
