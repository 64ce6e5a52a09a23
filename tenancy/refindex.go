package tenancy

import (
	"sync"

	"github.com/warren-dev/warren/tenancy/clusterwatch"
)

// refIndex lists objects under keys, safe for concurrent use: what a
// controller keeps to find the objects to reconcile when something they depend
// on (a key) changes. It holds a few dozen bytes per listed object.
type refIndex[K comparable] struct {
	mu sync.Mutex
	by map[K]map[clusterwatch.Ref]bool
}

// add lists r under k and tells whether k listed nothing before.
func (x *refIndex[K]) add(k K, r clusterwatch.Ref) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.by == nil {
		x.by = map[K]map[clusterwatch.Ref]bool{}
	}
	first := len(x.by[k]) == 0
	if x.by[k] == nil {
		x.by[k] = map[clusterwatch.Ref]bool{}
	}
	x.by[k][r] = true
	return first
}

// remove unlists r from k and tells whether that left k listing nothing.
func (x *refIndex[K]) remove(k K, r clusterwatch.Ref) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.by[k][r] {
		return false
	}
	delete(x.by[k], r)
	if len(x.by[k]) == 0 {
		delete(x.by, k)
		return true
	}
	return false
}

// refs returns what k lists, but except.
func (x *refIndex[K]) refs(k K, except clusterwatch.Ref) []clusterwatch.Ref {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]clusterwatch.Ref, 0, len(x.by[k]))
	for r := range x.by[k] {
		if r != except {
			out = append(out, r)
		}
	}
	return out
}

// has tells whether k lists anything.
func (x *refIndex[K]) has(k K) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.by[k]) > 0
}
