package storage

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"

	"github.com/warren-dev/warren/test/pgtest"
)

// TestStoreRecoversWhenPostgresTerminatesItsConnections terminates every session
// of the shard (pg_terminate_backend) again and again while writers and a watcher
// run: writes in flight may fail, but the store reconnects, every acknowledged
// write is stored, and the watcher sees each stored object created exactly once,
// in revision order, even though its LISTEN connection was cut.
func TestStoreRecoversWhenPostgresTerminatesItsConnections(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, "postgres", Config{PollInterval: 200 * time.Millisecond})
	s := podStore(t, b, nil)
	start, err := b.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := watchFrom(t, s, "/pods/", start)

	admin, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	terminate := func() int {
		var n int
		err := admin.QueryRow(ctx,
			`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
			"warren/"+b.cfg.Shard).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	writes := startBurst(s, 8, time.Minute, 0)
	terminated := 0
	for range 5 {
		time.Sleep(150 * time.Millisecond)
		terminated += terminate()
	}
	time.Sleep(150 * time.Millisecond)
	stored := writes.finish(t, s, w)
	if terminated == 0 {
		t.Fatal("no session of the shard was terminated")
	}
	t.Logf("%d sessions terminated; %d writes acknowledged, %d failed, %d stored; the watcher saw all of them",
		terminated, len(writes.acknowledged), writes.failed, stored)
}

// TestRequestsSurviveSessionsTerminatedWhileIdle fills the pool with idle
// sessions, terminates every session of the shard and at once sends one request:
// it draws a dead session, whose statement never ran, and must run again on a
// live one instead of failing. Each kind of request gets a pool of dead sessions
// of its own. The pool pings only sessions idle for more than a second, so the
// requests here, sent within milliseconds, meet the dead ones.
func TestRequestsSurviveSessionsTerminatedWhileIdle(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, "postgres", Config{})
	s := podStore(t, b, nil)
	pool := b.db.dialect.(*postgres).pool
	admin, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)

	old := revisionOf(t, createPod(ctx, t, s, "ns", "a"))
	relabel(ctx, t, s, "ns", "a", "1")
	// killIdle leaves the pool full of sessions that the server has ended.
	killIdle := func() {
		t.Helper()
		pool.Reset() // the sessions the previous request left dead
		conns := make([]*pgxpool.Conn, pool.Config().MaxConns)
		for i := range conns {
			c, err := pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns[i] = c
		}
		for _, c := range conns {
			c.Release()
		}
		var pids []int32
		err := admin.QueryRow(ctx,
			`SELECT coalesce(array_agg(pid) FILTER (WHERE pg_terminate_backend(pid)), '{}')
			   FROM pg_stat_activity WHERE application_name = $1`, "warren/"+b.cfg.Shard).Scan(&pids)
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) < len(conns) {
			t.Fatalf("%d sessions terminated, want at least the pool's %d", len(pids), len(conns))
		}
		for {
			var alive int
			if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)`, pids).Scan(&alive); err != nil {
				t.Fatal(err)
			}
			if alive == 0 {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}

	requests := []struct {
		name string
		run  func() error
	}{
		{"get", func() error { return s.Get(ctx, podKey("ns", "a"), storage.GetOptions{}, &example.Pod{}) }},
		{"list", func() error {
			return s.GetList(ctx, "/pods/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, &example.PodList{})
		}},
		{"list at an older revision", func() error {
			return s.GetList(ctx, "/pods/", storage.ListOptions{
				Recursive: true, Predicate: storage.Everything,
				ResourceVersion: strconv.FormatInt(old, 10), ResourceVersionMatch: metav1.ResourceVersionMatchExact,
			}, &example.PodList{})
		}},
		{"count", func() error { _, err := s.Stats(ctx); return err }},
		{"current revision", func() error { _, err := s.GetCurrentResourceVersion(ctx); return err }},
		{"watch from an older revision", func() error {
			w := watchFrom(t, s, "/pods/", old)
			if ev := nextEvent(t, w); ev.Type != watch.Modified {
				return fmt.Errorf("watch event %s %v, want MODIFIED", ev.Type, ev.Object)
			}
			return nil
		}},
		{"create", func() error {
			return s.Create(ctx, podKey("ns", "b"), newPod("ns", "b"), &example.Pod{}, 0)
		}},
		{"update", func() error {
			return s.GuaranteedUpdate(ctx, podKey("ns", "b"), &example.Pod{}, false, nil,
				func(obj runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
					obj.(*example.Pod).Labels = map[string]string{"updated": "true"}
					return obj, nil, nil
				}, nil)
		}},
		{"delete", func() error {
			return s.Delete(ctx, podKey("ns", "b"), &example.Pod{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{})
		}},
	}
	for _, r := range requests {
		killIdle()
		if err := r.run(); err != nil {
			t.Errorf("%s on a pool of terminated sessions: %v", r.name, err)
		}
	}
}
