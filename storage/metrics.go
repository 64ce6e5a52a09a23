package storage

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
)

// The store's metrics appear on the apiserver's /metrics through the legacy
// registry, as etcd3's store metrics do.
var (
	batchSize = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace:      "warren",
		Subsystem:      "storage",
		Name:           "write_batch_size",
		Help:           "Number of changes committed per write transaction.",
		Buckets:        metrics.ExponentialBuckets(1, 2, 10),
		StabilityLevel: metrics.ALPHA,
	})
	commitDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace:      "warren",
		Subsystem:      "storage",
		Name:           "commit_duration_seconds",
		Help:           "Time from the start of a write transaction to its commit.",
		Buckets:        metrics.ExponentialBuckets(0.0005, 2, 14),
		StabilityLevel: metrics.ALPHA,
	})
	compactionDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace:      "warren",
		Subsystem:      "storage",
		Name:           "compaction_duration_seconds",
		Help:           "Time a compaction of the log took.",
		Buckets:        metrics.ExponentialBuckets(0.001, 4, 10),
		StabilityLevel: metrics.ALPHA,
	})
	leader = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      "warren",
		Subsystem:      "storage",
		Name:           "leader",
		Help:           "1 while this process leads the shard (runs its controllers), 0 while another does.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"shard"})
	dispatchedRevision = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace:      "warren",
		Subsystem:      "storage",
		Name:           "watch_dispatched_revision",
		Help:           "Newest revision dispatched to this process's watchers; its distance to the current revision is the watch lag.",
		StabilityLevel: metrics.ALPHA,
	})
	watchLag = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace:      "warren",
		Subsystem:      "storage",
		Name:           "watch_lag_revisions",
		Help:           "Revisions known to be committed but not yet dispatched to this process's watchers.",
		StabilityLevel: metrics.ALPHA,
	})
	rows = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      "warren",
		Subsystem:      "storage",
		Name:           "rows",
		Help:           "Rows of the shard's tables (objects: live objects; log: retained changes), counted after each compaction.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"table"})
	watchers = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace:      "warren",
		Subsystem:      "storage",
		Name:           "watchers",
		Help:           "Watchers fed by this process's change dispatch.",
		StabilityLevel: metrics.ALPHA,
	})
	transactions = metrics.NewCounter(&metrics.CounterOpts{
		Namespace:      "warren",
		Subsystem:      "storage",
		Name:           "transactions_total",
		Help:           "Database transactions run: each read statement, snapshot of reads and maintenance statement, and each batch of writes (warren_storage_write_batch_size counts the writes in them).",
		StabilityLevel: metrics.ALPHA,
	})
	watchOverflows = metrics.NewCounter(&metrics.CounterOpts{
		Namespace:      "warren",
		Subsystem:      "storage",
		Name:           "watch_overflows_total",
		Help:           "Times a slow watcher left the dispatch to read the log on its own.",
		StabilityLevel: metrics.ALPHA,
	})
)

// databaseSizeTimeout bounds the reading of the database sizes in a scrape of
// /metrics; a scrape that runs out of it goes without the size.
const databaseSizeTimeout = 2 * time.Second

var databaseBytes = metrics.NewDesc("warren_storage_database_bytes",
	"Bytes the databases of the shards this process serves take: a SQLite file with its WAL, a Postgres schema's tables with their indexes and TOAST. Read at each scrape.",
	nil, nil, metrics.ALPHA, "")

// databaseSizes reports warren_storage_database_bytes for the open backends,
// reading their sizes when /metrics is scraped.
type databaseSizes struct {
	metrics.BaseStableCollector
	mu       sync.Mutex
	backends map[*Backend]struct{}
}

var openBackends = &databaseSizes{backends: map[*Backend]struct{}{}}

func (d *databaseSizes) add(b *Backend) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.backends[b] = struct{}{}
}

func (d *databaseSizes) remove(b *Backend) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.backends, b)
}

func (d *databaseSizes) DescribeWithStability(ch chan<- *metrics.Desc) { ch <- databaseBytes }

// CollectWithStability sums the backends' sizes; if any cannot be read in time,
// it reports none rather than a partial sum.
func (d *databaseSizes) CollectWithStability(ch chan<- metrics.Metric) {
	d.mu.Lock()
	backends := slices.Collect(maps.Keys(d.backends))
	d.mu.Unlock()
	if len(backends) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), databaseSizeTimeout)
	defer cancel()
	var total int64
	for _, b := range backends {
		n, err := b.db.databaseBytes(ctx)
		if err != nil {
			klog.ErrorS(err, "Reading the database size for /metrics failed")
			return
		}
		total += n
	}
	ch <- metrics.NewLazyConstMetric(databaseBytes, metrics.GaugeValue, float64(total))
}

var registerMetrics sync.Once

func init() {
	registerMetrics.Do(func() {
		legacyregistry.MustRegister(batchSize, commitDuration, compactionDuration, leader, dispatchedRevision, watchLag, rows, watchers, watchOverflows, transactions)
		legacyregistry.CustomMustRegister(openBackends)
	})
}
