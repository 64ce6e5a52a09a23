package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// BenchmarkGetListOneCluster lists the 20 objects of one of 1,000 clusters, from
// 8 goroutines, as bench/storage's list-cluster phase does; bench/storage compares
// the figure with kine and etcd.
func BenchmarkGetListOneCluster(b *testing.B) {
	const clusters, perCluster = 1000, 20
	for _, dialect := range dialects {
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			s := podStore(b, newBackend(b, dialect, Config{}), nil)
			fillPods(b, s, clusters*perCluster, func(i int) (string, string) {
				return fmt.Sprintf("c%04d", i%clusters), fmt.Sprintf("pod-%02d", i/clusters)
			})
			b.SetParallelism(4) // 8 goroutines on 2 CPUs
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					list := &example.PodList{}
					prefix := fmt.Sprintf("/pods/c%04d/", rand.IntN(clusters))
					if err := s.GetList(ctx, prefix, storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
						b.Fatal(err)
					}
					if len(list.Items) != perCluster {
						b.Fatalf("%s: %d objects, want %d", prefix, len(list.Items), perCluster)
					}
				}
			})
		})
	}
}

// BenchmarkGetListPaged lists 20,000 objects in pages of 500, as bench/storage's
// list-all phase does: every page after the first reads at the first page's
// revision.
func BenchmarkGetListPaged(b *testing.B) {
	const objects, pageSize = 20000, 500
	for _, dialect := range dialects {
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			s := podStore(b, newBackend(b, dialect, Config{}), nil)
			fillPods(b, s, objects, func(i int) (string, string) { return "ns", fmt.Sprintf("pod-%05d", i) })
			b.ResetTimer()
			for b.Loop() {
				n, token := 0, ""
				for {
					list := &example.PodList{}
					pred := storage.Everything
					pred.Limit, pred.Continue = pageSize, token
					if err := s.GetList(ctx, "/pods/", storage.ListOptions{Recursive: true, Predicate: pred}, list); err != nil {
						b.Fatal(err)
					}
					n += len(list.Items)
					if token = list.Continue; token == "" {
						break
					}
				}
				if n != objects {
					b.Fatalf("listed %d objects, want %d", n, objects)
				}
			}
		})
	}
}

// fillPods creates n pods of about 1 KiB from 32 goroutines; name gives the
// namespace and name of the i-th.
func fillPods(b *testing.B, s *Store, n int, name func(i int) (namespace, name string)) {
	ctx := context.Background()
	payload := strings.Repeat("x", 800)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 32 {
				ns, pod := name(i)
				obj := &example.Pod{ObjectMeta: metav1.ObjectMeta{
					Name: pod, Namespace: ns, Annotations: map[string]string{"payload": payload},
				}}
				if err := s.Create(ctx, "/pods/"+ns+"/"+pod, obj, nil, 0); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
