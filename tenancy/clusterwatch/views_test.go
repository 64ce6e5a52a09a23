package clusterwatch

import (
	"context"
	"testing"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// counting is a view source whose cluster "a" is at a given revision; it
// counts its loads.
type counting struct {
	revision uint64
	loads    int
}

func (c *counting) load(_ context.Context, _ logicalcluster.Name) (uint64, uint64, error) {
	c.loads++
	return c.revision, c.revision, nil
}

func TestViewsKeepWhatTheyHold(t *testing.T) {
	ctx := context.Background()
	src := &counting{revision: 5}
	v := NewViews[uint64](8, src.load)
	get := func(want uint64, loads int) {
		t.Helper()
		got, err := v.Get(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if got != want || src.loads != loads {
			t.Fatalf("Get = view %d after %d loads; want view %d after %d", got, src.loads, want, loads)
		}
	}
	get(5, 1)
	get(5, 1) // cached
	v.Changed("a", 5)
	get(5, 1) // the view already holds the change at 5
	src.revision = 7
	v.Changed("a", 7)
	get(7, 2) // a newer change drops it

	v.Stored("a", 9, 9) // the writer's own change at 9
	get(9, 2)           // served without a load
	v.Changed("a", 9)   // the watch sees that change later: nothing is lost
	get(9, 2)

	v.Changed("a", 12) // a change seen before an older writer's result arrives
	v.Stored("a", 10, 10)
	src.revision = 12
	get(12, 3) // the stale view was not cached

	v.Changed("a", 12)
	get(12, 3) // nor does the watch's report of a change the view holds

	src.revision = 11 // a load racing with a change at 13 reads an older state
	v.Changed("a", 13)
	get(11, 4)
	get(11, 5) // and is not cached
}
