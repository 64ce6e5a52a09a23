package tenancy

import (
	"slices"
	"testing"

	"github.com/warren-dev/warren/tenancy/clusterwatch"
)

// TestRefIndexTellsFirstAndLast proves what the controllers rely on: add tells
// the first object of a key, remove the last, and refs leaves out the one
// asked to.
func TestRefIndexTellsFirstAndLast(t *testing.T) {
	var x refIndex[string]
	a, b := clusterwatch.Ref{Cluster: "c1", Name: "a"}, clusterwatch.Ref{Cluster: "c2", Name: "b"}
	steps := []struct {
		what string
		got  bool
		want bool
	}{
		{"first add", x.add("k", a), true},
		{"same add again", x.add("k", a), false},
		{"second add", x.add("k", b), false},
		{"has", x.has("k"), true},
		{"remove of an unlisted object", x.remove("k", clusterwatch.Ref{Name: "z"}), false},
		{"remove of one of two", x.remove("k", a), false},
		{"remove of the last", x.remove("k", b), true},
		{"has after the last went", x.has("k"), false},
	}
	for _, s := range steps {
		if s.got != s.want {
			t.Errorf("%s: got %v, want %v", s.what, s.got, s.want)
		}
	}
	x.add("k", a)
	x.add("k", b)
	if got := x.refs("k", a); !slices.Equal(got, []clusterwatch.Ref{b}) {
		t.Errorf("refs except a = %v, want [b]", got)
	}
}
