package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/k3s-io/kine/pkg/endpoint"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"

	"github.com/warren-dev/warren/bench/etcdserver"
	warren "github.com/warren-dev/warren/storage"
)

// target is one storage back end under test. Where a second process can serve the
// same data, openRemote starts one (for the watcher of another process); it is
// started only for that phase, so the other phases measure one process.
type target struct {
	name       string
	store      storage.Interface
	openRemote func() (storage.Interface, error)
	// files are the database files whose size the report shows.
	files []string
	close func()
}

// resource is the one resource every target stores.
var resource = schema.GroupResource{Group: "example.apiserver.k8s.io", Resource: "pods"}

const resourcePrefix = "/pods/"

func newPod() runtime.Object     { return &example.Pod{} }
func newPodList() runtime.Object { return &example.PodList{} }

// closers runs clean-ups in reverse order.
type closers []func()

func (c closers) close() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

func openWarren(ctx context.Context, name, location, shard string, files []string) (*target, error) {
	var cs closers
	open := func() (*warren.Store, error) {
		b, err := warren.Open(ctx, warren.Config{Storage: location, Shard: shard})
		if err != nil {
			return nil, err
		}
		cs = append(cs, b.Close)
		return b.NewStore(warren.ResourceConfig{
			Codec:          codec,
			NewFunc:        newPod,
			NewListFunc:    newPodList,
			ResourcePrefix: resourcePrefix,
			GroupResource:  resource,
			Clustered:      true,
		})
	}
	s, err := open()
	if err != nil {
		cs.close()
		return nil, fmt.Errorf("opening %s: %w", name, err)
	}
	t := &target{name: name, store: s, files: files, close: func() { cs.close() }}
	if shard != "" {
		// A second backend on the same schema is what a second process is: its
		// own pool, its own LISTEN connection, its own log reader.
		t.openRemote = func() (storage.Interface, error) { return open() }
	}
	return t, nil
}

// etcd3Store is upstream's etcd3 store on an etcd endpoint: how kube-apiserver
// stores through etcd and through kine.
func etcd3Store(endpoints []string) (storage.Interface, func(), error) {
	cfg := storagebackend.NewDefaultConfig("/registry", codec)
	cfg.Type = storagebackend.StorageTypeETCD3
	cfg.Transport.ServerList = endpoints
	s, destroy, err := factory.Create(*cfg.ForResource(resource), newPod, newPodList, resourcePrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the etcd3 store on %v: %w", endpoints, err)
	}
	return s, destroy, nil
}

// openKine embeds kine as a library on a database, with the etcd3 store on top,
// configured as kine's command line configures it by default.
func openKine(ctx context.Context, name, dsn, dir string, files []string, remote bool) (*target, error) {
	var cs closers
	listen := func(i int) (storage.Interface, error) {
		kctx, cancel := context.WithCancel(ctx)
		wg := &sync.WaitGroup{}
		cs = append(cs, func() { cancel(); wg.Wait() })
		etcd, err := endpoint.Listen(kctx, endpoint.Config{
			WaitGroup:            wg,
			Listener:             "unix://" + filepath.Join(dir, fmt.Sprintf("kine-%d.sock", i)),
			Endpoint:             dsn,
			ConnectionPoolConfig: kinePool,
			NotifyInterval:       5 * time.Second,
			EmulatedETCDVersion:  "3.6.11",
			CompactInterval:      5 * time.Minute,
			CompactTimeout:       5 * time.Second,
			CompactMinRetain:     1000,
			CompactBatchSize:     1000,
			PollBatchSize:        500,
			PollInterval:         time.Second,
		})
		if err != nil {
			return nil, err
		}
		s, destroy, err := etcd3Store(etcd.Endpoints)
		if err != nil {
			return nil, err
		}
		cs = append(cs, destroy)
		return s, nil
	}
	s, err := listen(0)
	if err != nil {
		cs.close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	t := &target{name: name, store: s, files: files, close: func() { cs.close() }}
	if remote {
		t.openRemote = func() (storage.Interface, error) { return listen(1) }
	}
	return t, nil
}

// openEtcd starts an embedded single-member etcd in dir.
func openEtcd(dir string) (*target, error) {
	e, err := etcdserver.Start(dir)
	if err != nil {
		return nil, err
	}
	s, destroy, err := etcd3Store([]string{e.Endpoint})
	if err != nil {
		e.Close()
		return nil, err
	}
	return &target{
		name:  "etcd",
		store: s,
		files: []string{e.DBFile},
		close: func() { destroy(); e.Close() },
	}, nil
}

// resetPostgres gives a run fresh databases: warren's schema in the bench database
// and kine's own database.
func resetPostgres(ctx context.Context, adminURL, warrenSchema, kineDB string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", adminURL, err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{
		"DROP SCHEMA IF EXISTS " + pgx.Identifier{warrenSchema}.Sanitize() + " CASCADE",
		"DROP DATABASE IF EXISTS " + pgx.Identifier{kineDB}.Sanitize() + " WITH (FORCE)",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// withDatabase returns a Postgres URL naming another database.
func withDatabase(pgURL, database string) (string, error) {
	u, err := url.Parse(pgURL)
	if err != nil {
		return "", fmt.Errorf("parsing %q: %w", pgURL, err)
	}
	u.Path = "/" + database
	return u.String(), nil
}

// fileSize is the size of a file and its SQLite WAL, if any.
func fileSize(path string) (db, wal int64) {
	if fi, err := os.Stat(path); err == nil {
		db = fi.Size()
	}
	if fi, err := os.Stat(path + "-wal"); err == nil {
		wal = fi.Size()
	}
	return db, wal
}
