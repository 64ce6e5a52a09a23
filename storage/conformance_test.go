package storage

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/apitesting"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/features"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	"k8s.io/apiserver/pkg/storage/value"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/component-base/featuregate"
	featuregatetesting "k8s.io/component-base/featuregate/testing"
)

// conformance is one case of k8s.io/apiserver/pkg/storage/testing, wired as
// etcd3's store_test.go and watcher_test.go wire it.
type conformance struct {
	name string
	// gates are set for the case, as etcd3's tests set them.
	gates  map[featuregate.Feature]bool
	config Config
	run    func(ctx context.Context, t *testing.T, e *env)
}

// env is what a case gets: a fresh shard and a pod store on it.
type env struct {
	b           *Backend
	store       *Store
	transformer *storagetesting.PrefixTransformer
	lists       *countingDialect
}

// TestConformance runs upstream's storage conformance suite on every dialect.
func TestConformance(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			for _, c := range conformanceCases {
				t.Run(c.name, func(t *testing.T) {
					for gate, on := range c.gates {
						featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, gate, on)
					}
					b, lists := newCountingBackend(t, dialect, c.config)
					transformer := newTestTransformer()
					c.run(context.Background(), t, &env{b: b, store: podStore(t, b, transformer), transformer: transformer, lists: lists})
				})
			}
		})
	}
}

func unsafeDeletionGate(on bool) map[featuregate.Feature]bool {
	return map[featuregate.Feature]bool{features.AllowUnsafeMalformedObjectDeletion: on}
}

var conformanceCases = []conformance{
	{name: "Create", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestCreate(ctx, t, e.store, keyValidation(e))
	}},
	{name: "CreateWithTTL", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestCreateWithTTL(ctx, t, e.store)
	}},
	{name: "CreateWithKeyExist", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestCreateWithKeyExist(ctx, t, e.store)
	}},
	{name: "Get", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestGet(ctx, t, e.store)
	}},
	{name: "UnconditionalDelete", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestUnconditionalDelete(ctx, t, e.store)
	}},
	{name: "ConditionalDelete", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestConditionalDelete(ctx, t, e.store)
	}},
	{name: "DeleteWithSuggestion", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestDeleteWithSuggestion(ctx, t, e.store)
	}},
	{name: "DeleteWithSuggestionAndConflict", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestDeleteWithSuggestionAndConflict(ctx, t, e.store)
	}},
	{name: "DeleteWithSuggestionOfDeletedObject", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestDeleteWithSuggestionOfDeletedObject(ctx, t, e.store)
	}},
	{name: "ValidateDeletionWithSuggestion", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestValidateDeletionWithSuggestion(ctx, t, e.store)
	}},
	{name: "ValidateDeletionWithOnlySuggestionValid", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestValidateDeletionWithOnlySuggestionValid(ctx, t, e.store)
	}},
	{name: "DeleteWithConflict", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestDeleteWithConflict(ctx, t, e.store)
	}},
	{name: "DeleteWithConflictAndMissingExpectedTransformOrDecodeError", gates: unsafeDeletionGate(true), run: func(ctx context.Context, t *testing.T, e *env) {
		codec := &failingCodec{Codec: apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)}
		store := newStore(t, e.b, "/pods/", e.transformer, codec)
		storagetesting.RunTestDeleteWithConflictAndMissingExpectedTransformOrDecodeError(ctx, t, store, codec.fail.Store)
	}},
	{name: "DeleteWithConflictAndExpectedTransformError", gates: unsafeDeletionGate(true), run: func(ctx context.Context, t *testing.T, e *env) {
		transformer := &failingTransformer{Transformer: e.transformer}
		store := newStore(t, e.b, "/pods/", transformer, apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion))
		storagetesting.RunTestDeleteExpectedTransformOrDecodeError(ctx, t, store, transformer.fail.Store)
	}},
	{name: "DeleteWithConflictAndExpectedDecodeError", gates: unsafeDeletionGate(true), run: func(ctx context.Context, t *testing.T, e *env) {
		codec := &failingCodec{Codec: apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)}
		store := newStore(t, e.b, "/pods/", e.transformer, codec)
		storagetesting.RunTestDeleteExpectedTransformOrDecodeError(ctx, t, store, codec.fail.Store)
	}},
	{name: "DeleteWithSuggestionAndMissingExpectedTransformOrDecodeError", gates: unsafeDeletionGate(true), run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestDeleteWithSuggestionAndMissingExpectedTransformOrDecodeError(ctx, t, e.store)
	}},
	{name: "PreconditionalDeleteWithSuggestion", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestPreconditionalDeleteWithSuggestion(ctx, t, e.store)
	}},
	{name: "PreconditionalDeleteWithOnlySuggestionPass", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestPreconditionalDeleteWithOnlySuggestionPass(ctx, t, e.store)
	}},
	{name: "ListPaging", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestListPaging(ctx, t, e.store)
	}},
	{name: "GetListNonRecursive", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestGetListNonRecursive(ctx, t, increaseRV(e.b), e.store)
	}},
	{name: "GetListRecursivePrefix", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestGetListRecursivePrefix(ctx, t, e.store)
	}},
	{name: "KeySchema", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestKeySchema(ctx, t, e.store)
	}},
	{name: "GetListWithErrorAggregation", gates: unsafeDeletionGate(true), run: func(ctx context.Context, t *testing.T, e *env) {
		corruptErr := &corruptObjectError{err: errors.New("bits flipped"), what: "data from the storage is not transformable"}
		storagetesting.RunTestGetListWithErrorAggregation(ctx, t, transformerSwap{e.store}, corruptErr)
	}},
	{name: "GetListWithoutErrorAggregation", gates: unsafeDeletionGate(false), run: func(ctx context.Context, t *testing.T, e *env) {
		corruptErr := &corruptObjectError{err: errors.New("bits flipped"), what: "data from the storage is not transformable"}
		storagetesting.RunTestGetListWithoutErrorAggregation(ctx, t, transformerSwap{e.store}, corruptErr)
	}},
	{name: "GuaranteedUpdate", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestGuaranteedUpdate(ctx, t, transformerSwap{e.store}, keyValidation(e))
	}},
	{name: "GuaranteedUpdateWithTTL", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestGuaranteedUpdateWithTTL(ctx, t, e.store)
	}},
	{name: "GuaranteedUpdateChecksStoredData", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestGuaranteedUpdateChecksStoredData(ctx, t, transformerSwap{e.store})
	}},
	{name: "GuaranteedUpdateWithConflict", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestGuaranteedUpdateWithConflict(ctx, t, e.store)
	}},
	{name: "GuaranteedUpdateWithSuggestionAndConflict", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestGuaranteedUpdateWithSuggestionAndConflict(ctx, t, e.store)
	}},
	// etcd3's test store runs without the decorators that turn unreadable objects
	// into corrupt ones; with the feature off, warren's store is that store.
	{name: "TransformationFailure", gates: unsafeDeletionGate(false), run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestTransformationFailure(ctx, t, transformerSwap{e.store})
	}},
	{name: "List", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestList(ctx, t, e.store, compaction(e.b), false, nil)
	}},
	{name: "ConsistentList", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestConsistentList(ctx, t, e.store, increaseRV(e.b), false, true, false)
	}},
	{name: "CompactRevision", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestCompactRevision(ctx, t, e.store, increaseRV(e.b), compaction(e.b))
	}},
	{name: "ListContinuation", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestListContinuation(ctx, t, e.store, callsValidation(e))
	}},
	{name: "ListPaginationRareObject", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestListPaginationRareObject(ctx, t, e.store, callsValidation(e))
	}},
	{name: "ListContinuationWithFilter", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestListContinuationWithFilter(ctx, t, e.store, callsValidation(e))
	}},
	{name: "NamespaceScopedList", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestNamespaceScopedList(ctx, t, e.store)
	}},
	{name: "ListInconsistentContinuation", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestListInconsistentContinuation(ctx, t, e.store, compaction(e.b))
	}},
	{name: "ListResourceVersionMatch", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestListResourceVersionMatch(ctx, t, transformerSwap{e.store})
	}},
	{name: "Stats", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestStats(ctx, t, e.store, e.store.codec, e.transformer, false)
	}},
	{name: "StatsWithSizeEstimation", run: func(ctx context.Context, t *testing.T, e *env) {
		if err := e.store.EnableResourceSizeEstimation(func(context.Context) ([]string, error) { return nil, nil }); err != nil {
			t.Fatal(err)
		}
		storagetesting.RunTestStats(ctx, t, e.store, e.store.codec, e.transformer, true)
	}},

	{name: "Watch", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestWatch(ctx, t, e.store)
	}},
	{name: "ClusterScopedWatch", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestClusterScopedWatch(ctx, t, e.store)
	}},
	{name: "NamespaceScopedWatch", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestNamespaceScopedWatch(ctx, t, e.store)
	}},
	{name: "DeleteTriggerWatch", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestDeleteTriggerWatch(ctx, t, e.store)
	}},
	{name: "WatchFromZero", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestWatchFromZero(ctx, t, e.store, compaction(e.b))
	}},
	{name: "WatchFromNonZero", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestWatchFromNonZero(ctx, t, e.store)
	}},
	{name: "DelayedWatchDelivery", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestDelayedWatchDelivery(ctx, t, e.store)
	}},
	{name: "WatchError", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestWatchError(ctx, t, transformerSwap{e.store})
	}},
	{name: "WatchContextCancel", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestWatchContextCancel(ctx, t, e.store)
	}},
	{name: "WatcherTimeout", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestWatcherTimeout(ctx, t, e.store)
	}},
	{name: "WatchDeleteEventObjectHaveLatestRV", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestWatchDeleteEventObjectHaveLatestRV(ctx, t, e.store)
	}},
	{name: "WatchInitializationSignal", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestWatchInitializationSignal(ctx, t, e.store)
	}},
	{name: "ProgressNotify", config: Config{ProgressNotifyInterval: time.Second}, run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunOptionalTestProgressNotify(ctx, t, e.store, increaseRV(e.b))
	}},
	{name: "WatchWithUnsafeDelete", gates: unsafeDeletionGate(true), run: func(ctx context.Context, t *testing.T, e *env) {
		corruptErr := &corruptObjectError{err: errors.New("bits flipped"), what: "data from the storage is not transformable"}
		storagetesting.RunTestWatchWithUnsafeDelete(ctx, t, transformerSwap{e.store}, corruptErr)
	}},
	{name: "WatchDispatchBookmarkEvents", config: Config{ProgressNotifyInterval: time.Second}, run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunTestWatchDispatchBookmarkEvents(ctx, t, e.store, false)
	}},
	{name: "SendInitialEventsBackwardCompatibility", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunSendInitialEventsBackwardCompatibility(ctx, t, e.store)
	}},
	{name: "WatchSemantics", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunWatchSemantics(ctx, t, e.store)
	}},
	{name: "WatchSemanticInitialEventsExtended", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunWatchSemanticInitialEventsExtended(ctx, t, e.store)
	}},
	{name: "WatchListMatchSingle", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunWatchListMatchSingle(ctx, t, e.store)
	}},
	{name: "WatchErrorIsBlockingFurtherEvents", run: func(ctx context.Context, t *testing.T, e *env) {
		storagetesting.RunWatchErrorIsBlockingFurtherEvents(ctx, t, transformerSwap{e.store})
	}},
}

// keyValidation reads the raw row of a key: the stored object has no resource
// version and no self link.
func keyValidation(e *env) storagetesting.KeyValidation {
	return func(ctx context.Context, t *testing.T, key string) {
		r, _, err := e.b.db.get(ctx, key)
		if err != nil || r == nil {
			t.Fatalf("reading the row of %s: %v (row %v)", key, err, r)
		}
		obj, err := runtime.Decode(e.store.codec, r.value[len(testPrefix):])
		if err != nil {
			t.Fatalf("decoding the row of %s: %v", key, err)
		}
		pod := obj.(*example.Pod)
		if pod.ResourceVersion != "" {
			t.Errorf("stored object has resource version %q", pod.ResourceVersion)
		}
		if pod.SelfLink != "" {
			t.Errorf("stored object has self link %q", pod.SelfLink)
		}
	}
}

// callsValidation checks the reads a paginated list made: every object decoded
// once, and as many page reads as etcd3's store makes when it doubles the page size
// of a filtered list.
func callsValidation(e *env) storagetesting.CallsValidation {
	return func(t *testing.T, pageSize, estimatedProcessedObjects uint64) {
		if reads := e.transformer.GetReadsAndReset(); reads != estimatedProcessedObjects {
			t.Errorf("unexpected reads: %d, expected: %d", reads, estimatedProcessedObjects)
		}
		want := uint64(1)
		if pageSize != 0 {
			limit := pageSize
			for sum := uint64(1); sum < estimatedProcessedObjects; want++ {
				limit = min(2*limit, maxPage)
				sum += limit
			}
		}
		if got := e.lists.lists.Swap(0); got != want {
			t.Fatalf("unexpected page reads: %d, want: %d", got, want)
		}
	}
}

// countingDialect counts page reads.
type countingDialect struct {
	dialect
	lists, gets, logReads atomic.Uint64
}

func (d *countingDialect) query(ctx context.Context, sql string, args ...any) (cursor, error) {
	return d.counted(d.dialect.query)(ctx, sql, args...)
}

func (d *countingDialect) snapshot(ctx context.Context, fn func(read queryFunc) error) error {
	return d.dialect.snapshot(ctx, func(read queryFunc) error { return fn(d.counted(read)) })
}

// counted counts the page reads of read (each reads its rows with one of
// these statements), its reads of one key and its reads of the log.
func (d *countingDialect) counted(read queryFunc) queryFunc {
	return func(ctx context.Context, sql string, args ...any) (cursor, error) {
		switch sql {
		case sqlPage, sqlUnchangedAt:
			d.lists.Add(1)
		case sqlGet:
			d.gets.Add(1)
		case sqlEvents:
			d.logReads.Add(1)
		}
		return read(ctx, sql, args...)
	}
}

// transformerSwap lets upstream's tests replace the store's transformer.
type transformerSwap struct{ *Store }

func (s transformerSwap) UpdatePrefixTransformer(modify storagetesting.PrefixTransformerModifier) func() {
	orig := s.transformer
	if wrapped, ok := orig.(corruptTransformer); ok {
		copied := *wrapped.Transformer.(*storagetesting.PrefixTransformer)
		s.transformer = corruptTransformer{modify(&copied)}
	} else {
		copied := *orig.(*storagetesting.PrefixTransformer)
		s.transformer = modify(&copied)
	}
	return func() { s.transformer = orig }
}

func (s transformerSwap) UpdateTransformer(modify storagetesting.TransformerModifier) func() {
	orig := s.transformer
	s.transformer = modify(orig)
	return func() { s.transformer = orig }
}

// failingTransformer fails every read while fail is set.
type failingTransformer struct {
	value.Transformer
	fail atomic.Bool
}

func (f *failingTransformer) TransformFromStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, bool, error) {
	if f.fail.Load() {
		return nil, false, errors.New("synthetic error")
	}
	return f.Transformer.TransformFromStorage(ctx, data, dataCtx)
}

// failingCodec fails every decode while fail is set.
type failingCodec struct {
	runtime.Codec
	fail atomic.Bool
}

func (f *failingCodec) Decode(data []byte, defaults *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	if f.fail.Load() {
		return nil, nil, fmt.Errorf("synthetic error")
	}
	return f.Codec.Decode(data, defaults, into)
}
