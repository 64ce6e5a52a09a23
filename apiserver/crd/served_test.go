package crd

import (
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/registry/customresource"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
)

// counted is a served spec whose stores count how often they are destroyed.
func counted(destroyed *int) *served {
	store := &genericregistry.Store{DestroyFunc: func() { *destroyed++ }}
	return &served{versions: map[string]*servedVersion{
		"v1": {storage: customresource.CustomResourceStorage{CustomResource: &customresource.REST{Store: store}}},
	}}
}

// TestEvictedSpecsReleaseTheirStores: a spec evicted from the handler's cache
// releases its stores (an etcd client each, on etcd) once, and not while a
// request still uses it; an evicted spec is not handed out again.
func TestEvictedSpecsReleaseTheirStores(t *testing.T) {
	cache := newServedCache(1)
	var idle, busy int
	first, second := counted(&idle), counted(&busy)
	cache.Add("first", first)
	if !second.acquire() {
		t.Fatal("a new spec is not handed out")
	}
	cache.Add("second", second) // evicts first, unused
	if idle != 1 {
		t.Errorf("an evicted unused spec was destroyed %d times, want once", idle)
	}
	if first.acquire() {
		t.Error("an evicted spec is handed out")
	}
	cache.Add("third", counted(new(int))) // evicts second, in use
	if busy != 0 {
		t.Fatal("a spec in use was destroyed")
	}
	second.release()
	if busy != 1 {
		t.Errorf("an evicted spec was destroyed %d times after its request, want once", busy)
	}
}
