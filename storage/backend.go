package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/klog/v2"

	"github.com/warren-dev/warren/migrations"
)

// DefaultShard is the shard served, and migrated, when none is named: the root
// shard, named as kcp names it.
const DefaultShard = "root"

// Config says where a shard is stored and how its background work runs.
type Config struct {
	// Storage is a SQLite file path (optionally written sqlite://PATH) or a
	// postgres:// URL.
	Storage string
	// Shard is the Postgres schema holding the shard. SQLite keeps one shard per
	// file and ignores it.
	Shard string
	// CompactionInterval is how often the log is compacted, and how long a change
	// stays in it: each run forgets the changes older than the revision the previous
	// run saw. Zero means 5 minutes (kube-apiserver's default); negative disables it.
	CompactionInterval time.Duration
	// ExpiryInterval is how often objects whose TTL ran out are deleted. Zero means
	// one second.
	ExpiryInterval time.Duration
	// PollInterval is how often the log is read for changes nobody announced, the
	// safety net under Postgres notifications. Zero means one second.
	PollInterval time.Duration
	// ProgressNotifyInterval is how often watchers that asked for progress
	// notifications get one. Zero means five seconds.
	ProgressNotifyInterval time.Duration
	// MaxObjectSize is the largest stored value in bytes. Zero means 1.5 MiB, etcd's
	// default request limit.
	MaxObjectSize int
	// MaxBatch is the most writes committed in one transaction. Zero means 256.
	MaxBatch int
	// DecodedCacheSize bounds the memory of the cache of decoded objects, by an
	// estimate of each entry's (decodedCache). Zero means 64 MiB; negative
	// turns the cache off.
	DecodedCacheSize int64
}

// shardName is what a Postgres schema of a shard may be called: an identifier that
// needs no quoting and leaves room for the "warren_" prefix of its NOTIFY channel.
var shardName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,47}$`)

func (c Config) complete() (Config, error) {
	if c.CompactionInterval == 0 {
		c.CompactionInterval = 5 * time.Minute
	}
	if c.ExpiryInterval <= 0 {
		c.ExpiryInterval = time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.ProgressNotifyInterval <= 0 {
		c.ProgressNotifyInterval = 5 * time.Second
	}
	if c.MaxObjectSize <= 0 {
		c.MaxObjectSize = 3 * 1024 * 1024 / 2
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 256
	}
	if c.DecodedCacheSize == 0 {
		c.DecodedCacheSize = 64 << 20
	}
	if c.Storage == "" {
		return c, errors.New("no storage given")
	}
	return c, nil
}

func isPostgres(storage string) bool {
	return strings.HasPrefix(storage, "postgres://") || strings.HasPrefix(storage, "postgresql://")
}

// openDialect opens the database a storage location names — PostgreSQL for a
// postgres:// URL, whose schema shard holds the shard, else a SQLite file. It
// is the one place that tells them apart. Settings, if any, are PostgreSQL
// server settings that override the URL's.
func openDialect(ctx context.Context, location, shard string, settings map[string]string) (dialect, error) {
	if isPostgres(location) {
		if !shardName.MatchString(shard) {
			return nil, fmt.Errorf("invalid shard name %q: want lower-case letters, digits and _, at most 48, not starting with a digit", shard)
		}
		db, err := openPostgres(ctx, location, shard, settings)
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	path := strings.TrimPrefix(location, "sqlite://")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the directory of %s: %w", path, err)
	}
	db, err := openSQLite(ctx, path)
	if err != nil {
		return nil, err
	}
	return db, nil
}

// Backend is one shard's storage: the database, the writer that commits every
// change of the shard in batches, and the log reader that feeds watchers. Stores
// for any number of resources share one Backend.
type Backend struct {
	cfg Config
	db  *tables
	hub *hub

	writes chan *write
	// compacted is the newest compacted revision this process knows of.
	compacted atomic.Int64
	// health is the error of the log reader's latest read of the database.
	health atomic.Pointer[error]
	// leadership says whether this process leads the shard.
	leadership *Leadership
	// decoded keeps objects decoded by the shard's stores (nil: none).
	decoded *decodedCache
	// stores numbers the stores made, naming their entries in decoded.
	stores atomic.Uint64

	stop      context.CancelFunc
	closed    <-chan struct{} // closed when the backend stops
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Open migrates the shard's schema to the newest version and starts serving it.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	cfg, err := cfg.complete()
	if err != nil {
		return nil, err
	}
	if err := Migrate(ctx, cfg.Storage, cfg.Shard, func(m *migrate.Migrate) error {
		err := m.Up()
		if errors.Is(err, os.ErrNotExist) {
			// The schema's version is one this binary has no migration of.
			if v, _, verr := m.Version(); verr == nil {
				return fmt.Errorf("the shard's schema is at version %d, which a newer warren wrote and this one cannot serve: %w", v, err)
			}
		}
		if err != nil && !errors.Is(err, migrate.ErrNoChange) {
			return err
		}
		return nil
	}); err != nil {
		return nil, err
	}
	db, err := openDialect(ctx, cfg.Storage, cfg.Shard, nil)
	if err != nil {
		return nil, err
	}
	return serve(ctx, cfg, db)
}

// serve starts serving a completed configuration's shard from db, which it owns.
func serve(ctx context.Context, cfg Config, d dialect) (*Backend, error) {
	db := &tables{dialect: d}
	current, compacted, err := db.revisions(ctx)
	if err != nil {
		db.close()
		return nil, err
	}
	// Background work outlives the caller's context; Close ends it.
	runCtx, stop := context.WithCancel(klog.NewContext(context.Background(), klog.FromContext(ctx)))
	b := &Backend{
		cfg:    cfg,
		db:     db,
		writes: make(chan *write, cfg.MaxBatch),
		stop:   stop,
		closed: runCtx.Done(),

		leadership: newLeadership(cfg.Shard),
		decoded:    newDecodedCache(cfg.DecodedCacheSize),
	}
	b.compacted.Store(compacted)
	b.hub = newHub(b, current)
	openBackends.add(b)
	b.run(runCtx, b.writeLoop)
	b.run(runCtx, b.hub.tail)
	b.run(runCtx, func(ctx context.Context) { b.db.listen(ctx, b.hub.announce) })
	b.run(runCtx, b.hub.notifyProgress)
	b.run(runCtx, b.expireLoop)
	b.run(runCtx, b.decoded.detect)
	b.run(runCtx, func(ctx context.Context) { b.db.elect(ctx, b.leadership.begin) })
	if cfg.CompactionInterval > 0 {
		b.run(runCtx, b.compactLoop)
	}
	return b, nil
}

func (b *Backend) run(ctx context.Context, fn func(context.Context)) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		fn(ctx)
	}()
}

// Leadership tells whether this process leads the shard.
func (b *Backend) Leadership() *Leadership { return b.leadership }

// Ready tells whether the database answered the log reader's latest read, which
// happens at least every poll interval.
func (b *Backend) Ready() error {
	select {
	case <-b.closed:
		return fmt.Errorf("%w: the backend is closed", storage.ErrStorageNotReady)
	default:
	}
	if err := b.health.Load(); err != nil && *err != nil {
		return fmt.Errorf("%w: %w", storage.ErrStorageNotReady, *err)
	}
	return nil
}

// Close stops the background work, ends every watch and closes the database. It
// may be called more than once.
func (b *Backend) Close() {
	b.closeOnce.Do(func() {
		openBackends.remove(b)
		b.stop()
		b.wg.Wait()
		b.hub.close()
		b.db.close()
	})
}

// migrationSettings are the PostgreSQL settings of the sessions that migrate a
// shard's schema, over those the storage URL gives every session: timeouts
// meant to bound the statements that serve requests (README's
// statement_timeout=30s) would cancel a migration's DDL, which may rewrite a
// large table, and its wait for another process migrating the same shard.
var migrationSettings = map[string]string{
	"statement_timeout":                   "0",
	"lock_timeout":                        "0",
	"idle_in_transaction_session_timeout": "0",
}

// Migrate runs fn on golang-migrate set up for the shard's schema, for operators
// (`warren migrate`) and for Open.
func Migrate(ctx context.Context, location, shard string, fn func(*migrate.Migrate) error) error {
	db, err := openDialect(ctx, location, shard, migrationSettings)
	if err != nil {
		return err
	}
	dialectName := db.name()
	defer db.close()
	driver, err := db.migrationDriver()
	if err != nil {
		return fmt.Errorf("preparing migrations: %w", err)
	}
	source, err := migrations.Source(dialectName)
	if err != nil {
		driver.Close()
		return err
	}
	m, err := migrate.NewWithInstance("iofs", source, dialectName, driver)
	if err != nil {
		driver.Close()
		return fmt.Errorf("preparing migrations: %w", err)
	}
	defer m.Close()
	if err := fn(m); err != nil {
		return fmt.Errorf("migrating the %s schema: %w", dialectName, err)
	}
	return nil
}

// CurrentRevision returns the shard's newest committed revision.
func (b *Backend) CurrentRevision(ctx context.Context) (int64, error) {
	current, _, err := b.db.revisions(ctx)
	return current, err
}

// Compact forgets the changes up to and including revision: watches and lists at
// older revisions fail as they do on a compacted etcd.
func (b *Backend) Compact(ctx context.Context, revision int64) error {
	if err := b.db.compact(ctx, revision); err != nil {
		return err
	}
	_, compacted, err := b.db.revisions(ctx)
	if err != nil {
		return err
	}
	b.observeCompacted(compacted)
	return nil
}

func (b *Backend) observeCompacted(revision int64) {
	for {
		old := b.compacted.Load()
		if revision <= old || b.compacted.CompareAndSwap(old, revision) {
			return
		}
	}
}

// compactLoop compacts every interval to the revision the previous run saw, so a
// change stays in the log for one to two intervals. Several processes on one shard
// may all run it; compaction never moves backwards.
func (b *Backend) compactLoop(ctx context.Context) {
	logger := klog.FromContext(ctx)
	var previous int64
	every(ctx, b.cfg.CompactionInterval, func() {
		if previous > 0 {
			start := time.Now()
			if err := b.Compact(ctx, previous); err != nil {
				logger.Error(err, "Compacting failed", "revision", previous)
			} else {
				compactionDuration.Observe(time.Since(start).Seconds())
			}
			if objects, log, err := b.db.rowCounts(ctx); err != nil {
				logger.Error(err, "Counting rows failed")
			} else {
				rows.WithLabelValues("objects").Set(float64(objects))
				rows.WithLabelValues("log").Set(float64(log))
			}
		}
		current, _, err := b.db.revisions(ctx)
		if err != nil {
			logger.Error(err, "Reading the revision for compaction failed")
			return
		}
		previous = current
	})
}

// expireLoop deletes the objects whose TTL ran out, through the writer like any
// delete, so watchers see them go. A delete that lost a race to a newer write is
// dropped: the newer write decided the object's fate.
func (b *Backend) expireLoop(ctx context.Context) {
	logger := klog.FromContext(ctx)
	every(ctx, b.cfg.ExpiryInterval, func() {
		expired, err := b.db.expired(ctx, time.Now().UnixMilli(), b.cfg.MaxBatch)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			logger.Error(err, "Finding expired objects failed")
			return
		}
		// Queue all deletes before waiting for any, so they commit as one batch.
		deletes := make([]*write, 0, len(expired))
		for _, r := range expired {
			w := &write{key: r.key, expect: r.revision}
			if b.enqueue(ctx, w) != nil {
				return
			}
			deletes = append(deletes, w)
		}
		for _, w := range deletes {
			if res := b.await(ctx, w); res.err != nil && ctx.Err() == nil {
				logger.Error(res.err, "Deleting an expired object failed", "key", w.key)
			}
		}
	})
}

// every runs fn every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			fn()
		}
	}
}
