package storage

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
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
	watchOverflows = metrics.NewCounter(&metrics.CounterOpts{
		Namespace:      "warren",
		Subsystem:      "storage",
		Name:           "watch_overflows_total",
		Help:           "Times a slow watcher left the dispatch to read the log on its own.",
		StabilityLevel: metrics.ALPHA,
	})
)

var registerMetrics sync.Once

func init() {
	registerMetrics.Do(func() {
		legacyregistry.MustRegister(batchSize, commitDuration, compactionDuration, dispatchedRevision, watchLag, rows, watchers, watchOverflows)
	})
}
