package tenancy

import (
	"context"
	"testing"
)

// BenchmarkIndexResolve resolves stored three-segment paths
// (root:bench-0000:w-000123) from an index of 10,000 clusters: what routing
// a request costs when its cluster is held.
func BenchmarkIndexResolve(b *testing.B) {
	x, _, _ := runningIndex(b, 1<<17)
	paths := storedClusters(b, x, 10_000)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := x.Resolve(ctx, paths[i%len(paths)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
