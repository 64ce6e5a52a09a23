package storage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"

	"github.com/warren-dev/warren/test/pgtest"
)

// TestReadsGoOnWhileWritesStall has another session hold the shard's revision row
// (as a stuck writer of another process would): writes wait for it and give up
// with their context, while gets and lists keep being served; once the row is
// released, the waiting writes commit and new ones succeed.
func TestReadsGoOnWhileWritesStall(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, "postgres", Config{})
	s := podStore(t, b, nil)
	create := func(ctx context.Context, name string) error {
		pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
		return s.Create(ctx, "/pods/ns/"+name, pod, nil, 0)
	}
	if err := create(ctx, "before"); err != nil {
		t.Fatal(err)
	}

	staller, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer staller.Close(ctx)
	tx, err := staller.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT current FROM "+pgx.Identifier{b.cfg.Shard, "revision"}.Sanitize()+" FOR UPDATE"); err != nil {
		t.Fatal(err)
	}

	stalled, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := create(stalled, "during"); !storage.IsRequestTimeout(err) {
		t.Fatalf("a write during the stall returned %v, want a request timeout", err)
	}
	for i := range 20 {
		start := time.Now()
		if err := s.Get(ctx, "/pods/ns/before", storage.GetOptions{}, &example.Pod{}); err != nil {
			t.Fatalf("get %d during the stall: %v", i, err)
		}
		list := &example.PodList{}
		if err := s.GetList(ctx, "/pods/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
			t.Fatalf("list %d during the stall: %v", i, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("a get and a list took %v during the stall", took)
		}
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := create(ctx, fmt.Sprintf("after-%d", i)); err != nil {
			t.Fatalf("write after the stall: %v", err)
		}
	}
	// The write that gave up was already with the writer: it may commit later,
	// as a timed-out etcd request may.
	list := &example.PodList{}
	if err := s.GetList(ctx, "/pods/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
		t.Fatal(err)
	}
	if n := len(list.Items); n != 11 && n != 12 {
		t.Errorf("%d objects after the stall, want 11 (or 12 with the write that gave up)", n)
	}
}
