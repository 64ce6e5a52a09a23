package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/value"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
)

// ResourceConfig describes one resource stored in a Backend.
type ResourceConfig struct {
	// Codec encodes objects for storage and decodes them back.
	Codec runtime.Codec
	// NewFunc and NewListFunc make empty objects and lists of the resource.
	NewFunc, NewListFunc func() runtime.Object
	// ResourcePrefix is what every key of the resource starts with, e.g. "/pods".
	ResourcePrefix string
	// GroupResource names the resource in errors and metrics.
	GroupResource schema.GroupResource
	// Transformer turns values into their stored form and back (encryption at
	// rest); nil stores them as encoded.
	Transformer value.Transformer
	// Clustered tells that the first key segment after ResourcePrefix is the
	// logical cluster, as in /<group>/<resource>/<cluster>/<namespace>/<name>.
	Clustered bool
	// ClusterAnnotation, if set on a clustered store, is the annotation every
	// object read carries with the name of its cluster (taken from its key, so it
	// cannot be forged); it is never stored.
	ClusterAnnotation string
}

// Store implements k8s.io/apiserver's storage.Interface for one resource of a
// Backend.
type Store struct {
	b              *Backend
	codec          runtime.Codec
	versioner      storage.APIObjectVersioner
	transformer    value.Transformer
	newFunc        func() runtime.Object
	newListFunc    func() runtime.Object
	resourcePrefix string
	groupResource  schema.GroupResource
	clustered      bool
	clusterMark    string
	estimateSize   atomic.Bool
	// id names the store's entries in the backend's cache of decoded objects.
	id uint64
	// typed is the Go type of the store's objects unless they are
	// unstructured (custom resources): a value then decodes alike into a new
	// object and as a watch decodes it (to the codec's decoding version, the
	// store's type), but for the kind, which the watch's decoding clears; so
	// a write's decoding serves its watchers.
	typed reflect.Type
}

var _ storage.Interface = (*Store)(nil)

// NewStore returns the storage.Interface of one resource.
func (b *Backend) NewStore(c ResourceConfig) (*Store, error) {
	if c.ResourcePrefix == "" || c.ResourcePrefix == "/" || !strings.HasPrefix(c.ResourcePrefix, "/") {
		return nil, fmt.Errorf("resource prefix %q must start with / and name a resource", c.ResourcePrefix)
	}
	if c.Codec == nil || c.NewFunc == nil || c.NewListFunc == nil {
		return nil, errors.New("a store needs a codec, NewFunc and NewListFunc")
	}
	transformer := c.Transformer
	if transformer == nil {
		transformer = identity{}
	}
	if unsafeDeletion() {
		transformer = corruptTransformer{transformer}
	}
	return &Store{
		b:              b,
		codec:          c.Codec,
		transformer:    transformer,
		newFunc:        c.NewFunc,
		newListFunc:    c.NewListFunc,
		resourcePrefix: c.ResourcePrefix,
		groupResource:  c.GroupResource,
		clustered:      c.Clustered,
		clusterMark:    c.ClusterAnnotation,
		id:             b.stores.Add(1),
		typed:          typedOf(c.NewFunc()),
	}, nil
}

// typedOf returns the type of obj unless obj is unstructured.
func typedOf(obj runtime.Object) reflect.Type {
	if _, ok := obj.(runtime.Unstructured); ok {
		return nil
	}
	return reflect.TypeOf(obj)
}

// identity stores values as they are.
type identity struct{}

func (identity) TransformFromStorage(_ context.Context, data []byte, _ value.Context) ([]byte, bool, error) {
	return data, false, nil
}

func (identity) TransformToStorage(_ context.Context, data []byte, _ value.Context) ([]byte, error) {
	return data, nil
}

// authenticatedData binds a stored value to its key, so an encrypted value moved to
// another key does not decrypt.
type authenticatedData string

func (d authenticatedData) AuthenticatedData() []byte { return []byte(d) }

// keyColumns are the parts of a key stored in columns of their own.
type keyColumns struct {
	cluster, namespace, name string
}

// prepareKey checks a key as etcd3's store does and refuses what SQL text cannot
// hold (invalid UTF-8, NUL).
func (s *Store) prepareKey(key string, recursive bool) (string, error) {
	k, err := storage.PrepareKey(s.resourcePrefix, key, recursive)
	if err != nil {
		return "", err
	}
	if !utf8.ValidString(k) || strings.ContainsRune(k, 0) {
		return "", fmt.Errorf("invalid key: %q is not UTF-8 text without NUL", key)
	}
	return k, nil
}

// columns splits a key into cluster, namespace and name: the segments after the
// resource prefix are [cluster/][namespace/]name.
func (s *Store) columns(key string) keyColumns {
	var c keyColumns
	if s.clustered {
		c.cluster, c.namespace, c.name = SplitClusterKey(s.resourcePrefix, key)
		return c
	}
	c.namespace, c.name = splitName(strings.Trim(strings.TrimPrefix(key, s.resourcePrefix), "/"))
	return c
}

// Versioner implements storage.Interface.
func (s *Store) Versioner() storage.Versioner { return s.versioner }

// Get implements storage.Interface.
func (s *Store) Get(ctx context.Context, key string, opts storage.GetOptions, out runtime.Object) error {
	k, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	if newestKnownAllowed(ctx) && s.cachedAtLeast(ctx, k, opts.ResourceVersion, out) {
		return nil
	}
	r, current, err := s.b.db.get(ctx, k)
	if err != nil {
		return storage.NewInternalError(err)
	}
	if err := s.validateMinimumResourceVersion(opts.ResourceVersion, current); err != nil {
		return err
	}
	if r == nil {
		if opts.IgnoreNotFound {
			return runtime.SetZeroValue(out)
		}
		return storage.NewKeyNotFoundError(k, 0)
	}
	data, _, err := s.transformer.TransformFromStorage(ctx, r.value, authenticatedData(k))
	if err != nil {
		return corrupt(k, storage.NewInternalError(err))
	}
	if err := s.decode(k, r.value, data, out, r.revision); err != nil {
		return corrupt(k, undecodable(err))
	}
	return nil
}

type newestKnownKey struct{}

// AllowNewestKnown returns ctx under which a get with a resourceVersion (a
// revision, not "" nor "0": no older than that) may be answered, without
// reading the database, by the newest version of the key this process wrote or
// read, if that is at least as new. That version was the key's state at its
// revision, but the key may have changed since — even been deleted, by another
// process, an expiry or a cluster's erase — so it is for a controller that a
// later change queues again, and is never allowed for API requests.
func AllowNewestKnown(ctx context.Context) context.Context {
	return context.WithValue(ctx, newestKnownKey{}, true)
}

func newestKnownAllowed(ctx context.Context) bool {
	allowed, _ := ctx.Value(newestKnownKey{}).(bool)
	return allowed
}

// cachedAtLeast fills out with the newest version of key this process wrote or
// read, if it is at least resourceVersion and the transformer still reads its
// stored value as it did (AllowNewestKnown).
func (s *Store) cachedAtLeast(ctx context.Context, key, resourceVersion string, out runtime.Object) bool {
	if resourceVersion == "" || resourceVersion == "0" {
		return false
	}
	minimum, err := s.versioner.ParseResourceVersion(resourceVersion)
	if err != nil {
		return false // the read says why
	}
	st, ok := s.newestKnown(ctx, key, reflect.TypeOf(out))
	if !ok || st.rev < int64(minimum) {
		return false
	}
	setInto(out, st.obj)
	return true
}

// newestKnown is the state of the newest version of key this process wrote or
// read, an object of type t, if the cache of decoded objects holds it and the
// transformer still reads its stored value as it did (a read of the key would
// fail otherwise).
func (s *Store) newestKnown(ctx context.Context, key string, t reflect.Type) (*objState, bool) {
	d, ok := s.b.decoded.latest(s.id, key, t)
	if !ok {
		return nil, false
	}
	data, stale, err := s.transformer.TransformFromStorage(ctx, d.stored, authenticatedData(key))
	if err != nil || !bytes.Equal(data, d.data) {
		return nil, false
	}
	return &objState{obj: d.obj.DeepCopyObject(), rev: d.revision, data: data, stale: stale}, true
}

// decode fills out, a pointer to an object of the store's type, with the object
// key held at revision, decoded from data (its value as the transformer gave it
// back) or copied from the backend's cache of decoded objects, which then keeps
// it as the newest version of key known (unless it knows a newer one), given
// the value as stored.
func (s *Store) decode(key string, stored, data []byte, out runtime.Object, revision int64) error {
	k := decodedKey{store: s.id, key: key, revision: revision, form: formInto}
	if obj, ok := s.b.decoded.get(k, data, reflect.TypeOf(out)); ok {
		setInto(out, obj)
		return nil
	}
	if err := s.decodeAnew(key, data, out, revision); err != nil {
		return err
	}
	s.b.decoded.put(k, data, out, stored)
	return nil
}

// decodeAnew is decode without the cache: what tells whether the codec can
// decode a value.
func (s *Store) decodeAnew(key string, data []byte, out runtime.Object, revision int64) error {
	if _, err := conversion.EnforcePtr(out); err != nil {
		return fmt.Errorf("unable to convert output object to pointer: %w", err)
	}
	if _, _, err := s.codec.Decode(data, nil, out); err != nil {
		return err
	}
	if err := s.versioner.UpdateObject(out, uint64(revision)); err != nil {
		return err
	}
	return s.markCluster(key, out)
}

// markCluster sets the cluster annotation of an object read from key.
func (s *Store) markCluster(key string, obj runtime.Object) error {
	if s.clusterMark == "" || !s.clustered {
		return nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Errorf("marking the cluster of %q: %w", key, err)
	}
	a := m.GetAnnotations()
	if a == nil {
		a = make(map[string]string, 1)
	}
	a[s.clusterMark] = s.columns(key).cluster
	m.SetAnnotations(a)
	return nil
}

// encode encodes obj in its stored form, without the cluster annotation. The
// annotation is taken off obj only while it is encoded.
func (s *Store) encode(obj runtime.Object) ([]byte, error) {
	if s.clusterMark == "" {
		return runtime.Encode(s.codec, obj)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	a := m.GetAnnotations()
	cluster, marked := a[s.clusterMark]
	if !marked {
		return runtime.Encode(s.codec, obj)
	}
	delete(a, s.clusterMark)
	if len(a) == 0 {
		m.SetAnnotations(nil)
	}
	data, err := runtime.Encode(s.codec, obj)
	a[s.clusterMark] = cluster
	m.SetAnnotations(a)
	return data, err
}

// Create implements storage.Interface.
func (s *Store) Create(ctx context.Context, key string, obj, out runtime.Object, ttl uint64) error {
	k, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	if version, err := s.versioner.ObjectResourceVersion(obj); err == nil && version != 0 {
		return storage.ErrResourceVersionSetOnCreate
	}
	if err := s.versioner.PrepareObjectForStorage(obj); err != nil {
		return fmt.Errorf("PrepareObjectForStorage failed: %w", err)
	}
	data, err := s.encode(obj)
	if err != nil {
		return err
	}
	stored, err := s.transformer.TransformToStorage(ctx, data, authenticatedData(k))
	if err != nil {
		return storage.NewInternalError(err)
	}
	res, err := s.putDecoded(ctx, k, stored, data, 0, ttl, out)
	if err == nil && !res.ok() {
		err = storage.NewKeyExistsError(k, 0)
	}
	return err
}

// put writes value under key if the key's live revision is expect; committed,
// if set, is called with the revision the moment the write commits, before
// any watcher is told of it.
func (s *Store) put(ctx context.Context, key string, value []byte, expect int64, ttl uint64, committed func(revision int64)) (writeResult, error) {
	if len(value) > s.b.cfg.MaxObjectSize {
		return writeResult{}, &tooLargeError{size: len(value), limit: s.b.cfg.MaxObjectSize}
	}
	w := &write{key: key, columns: s.columns(key), value: value, expect: expect, committed: committed}
	if ttl > 0 {
		w.expiresAt = time.Now().Add(time.Duration(ttl) * time.Second).UnixMilli()
	}
	res := s.b.submit(ctx, w)
	if erased := (*erasedError)(nil); errors.As(res.err, &erased) {
		return res, erased
	}
	if res.err != nil {
		return res, writeError(key, res.err)
	}
	return res, nil
}

// putDecoded is put of stored, the transformed data, for a write that answers
// with the object it stores, decoded into out (if not nil). The object is decoded before
// the write is sent, and a copy of it becomes the key's newest version in the
// cache of decoded objects as the write commits, before the change reaches
// any watcher: they copy it instead of decoding it again (a write the
// precondition refuses wasted the decoding).
func (s *Store) putDecoded(ctx context.Context, key string, stored, data []byte, expect int64, ttl uint64, out runtime.Object) (writeResult, error) {
	if out == nil || s.b.decoded == nil || reflect.TypeOf(out) != s.typed || len(stored) > s.b.cfg.MaxObjectSize {
		res, err := s.put(ctx, key, stored, expect, ttl, nil)
		if err == nil && res.ok() && out != nil {
			err = s.decode(key, stored, data, out, res.revision)
		}
		return res, err
	}
	// A new object: a decoding into out would merge with what it holds.
	obj := s.newFunc()
	if err := s.decodeAnew(key, data, obj, 0); err != nil {
		return writeResult{}, err
	}
	cached := obj.DeepCopyObject()
	res, err := s.put(ctx, key, stored, expect, ttl, func(revision int64) {
		if s.versioner.UpdateObject(cached, uint64(revision)) == nil {
			s.b.decoded.keep(decodedKey{store: s.id, key: key, revision: revision, form: formInto}, data, cached, stored)
		}
	})
	if err != nil || !res.ok() {
		return res, err
	}
	if err := s.versioner.UpdateObject(obj, uint64(res.revision)); err != nil {
		return res, err
	}
	setInto(out, obj)
	return res, nil
}

// writeError says what a failed write means to the registry: a request that ran
// out of time (the write may still commit, as a timed-out etcd request may), or a
// server error.
func writeError(key string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return storage.NewTimeoutError(key, "request did not complete within requested timeout")
	}
	return storage.NewInternalError(err)
}

// objState is a key's state as a write starts from it.
type objState struct {
	obj   runtime.Object
	rev   int64
	data  []byte
	stale bool
	// stored is the value as stored, of a state read from the database.
	stored []byte
	// current tells that the state was read from the database, not handed in by
	// the caller (who may hold an older version).
	current bool
}

// stateOf decodes a row (nil: absent) into a state for the object type of v.
func (s *Store) stateOf(ctx context.Context, key string, r *row, v reflect.Value, ignoreNotFound, expectBroken bool) (*objState, error) {
	st := &objState{current: true}
	if u, ok := v.Addr().Interface().(runtime.Unstructured); ok {
		st.obj = u.NewEmptyInstance()
	} else {
		st.obj = reflect.New(v.Type()).Interface().(runtime.Object)
	}
	if r == nil {
		if !ignoreNotFound {
			return nil, storage.NewKeyNotFoundError(key, 0)
		}
		if err := runtime.SetZeroValue(st.obj); err != nil {
			return nil, err
		}
		return st, nil
	}
	st.rev = r.revision
	data, stale, err := s.transformer.TransformFromStorage(ctx, r.value, authenticatedData(key))
	if err != nil {
		if !expectBroken {
			return nil, storage.NewInternalError(err)
		}
		st.obj, st.stale = nil, true
		return st, nil
	}
	st.data, st.stale = data, stale
	st.stored = r.value
	// An unsafe deletion is allowed only if the codec itself fails.
	decode := func() error { return s.decode(key, r.value, data, st.obj, st.rev) }
	if expectBroken {
		decode = func() error { return s.decodeAnew(key, data, st.obj, st.rev) }
	}
	if err := decode(); err != nil {
		if !expectBroken {
			return nil, err
		}
		st.obj = nil
		return st, nil
	}
	if expectBroken {
		return nil, storage.NewInvalidObjError(key, "unsafe deletion is not allowed because the object is decodable from storage")
	}
	return st, nil
}

// currentState reads the key's state from the database.
func (s *Store) currentState(ctx context.Context, key string, v reflect.Value, ignoreNotFound, expectBroken bool) (*objState, error) {
	r, _, err := s.b.db.get(ctx, key)
	if err != nil {
		return nil, storage.NewInternalError(err)
	}
	return s.stateOf(ctx, key, r, v, ignoreNotFound, expectBroken)
}

// latestState is the state of the newest version of key this process wrote or
// read, if the cache of decoded objects holds it, else the current state. Like
// an object the caller holds, it may be stale: a write from it that finds the
// key changed starts again from the current state.
//
// If the transformer can no longer read the stored value, the state is read
// from the database, where the write fails as it would have without the guess.
func (s *Store) latestState(ctx context.Context, key string, v reflect.Value, ignoreNotFound bool) (*objState, error) {
	if st, ok := s.newestKnown(ctx, key, reflect.PointerTo(v.Type())); ok {
		return st, nil
	}
	return s.currentState(ctx, key, v, ignoreNotFound, false)
}

// cachedState is the state of an object the caller already holds.
func (s *Store) cachedState(obj runtime.Object) (*objState, error) {
	rv, err := s.versioner.ObjectResourceVersion(obj)
	if err != nil {
		return nil, fmt.Errorf("couldn't get resource version: %w", err)
	}
	// The stored form has no resource version; encode it so, then put it back.
	if err := s.versioner.PrepareObjectForStorage(obj); err != nil {
		return nil, fmt.Errorf("PrepareObjectForStorage failed: %w", err)
	}
	data, err := s.encode(obj)
	if err != nil {
		return nil, err
	}
	if err := s.versioner.UpdateObject(obj, rv); err != nil {
		return nil, err
	}
	return &objState{obj: obj, rev: int64(rv), data: data}, nil
}

// Delete implements storage.Interface.
func (s *Store) Delete(ctx context.Context, key string, out runtime.Object, preconditions *storage.Preconditions,
	validateDeletion storage.ValidateObjectFunc, cachedExistingObject runtime.Object, opts storage.DeleteOptions) error {
	k, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	v, err := conversion.EnforcePtr(out)
	if err != nil {
		return fmt.Errorf("unable to convert output object to pointer: %w", err)
	}
	expectBroken := opts.ExpectTransformOrDecodeError &&
		utilfeature.DefaultFeatureGate.Enabled(features.AllowUnsafeMalformedObjectDeletion)

	var st *objState
	switch {
	case expectBroken:
		st, err = s.currentState(ctx, k, v, false, expectBroken)
	case cachedExistingObject != nil:
		st, err = s.cachedState(cachedExistingObject)
	default:
		st, err = s.latestState(ctx, k, v, false)
	}
	if err != nil {
		return err
	}
	for {
		// A check that fails on a cached state is retried on the current one; it
		// stands only if the object did not change in between.
		check := func() error {
			if preconditions != nil {
				if err := preconditions.Check(k, st.obj); err != nil {
					return err
				}
			}
			if validateDeletion == nil {
				return nil
			}
			return validateDeletion(ctx, st.obj)
		}
		if err := check(); err != nil {
			if st.current {
				return err
			}
			cachedRev, cachedErr := st.rev, err
			if st, err = s.currentState(ctx, k, v, false, expectBroken); err != nil {
				return err
			}
			if st.rev == cachedRev {
				return cachedErr
			}
			continue
		}
		res := s.b.submit(ctx, &write{key: k, expect: st.rev})
		if res.err != nil {
			return writeError(k, res.err)
		}
		if !res.ok() {
			if st, err = s.stateOf(ctx, k, res.current, v, false, expectBroken); err != nil {
				return err
			}
			continue
		}
		s.b.decoded.forget(s.id, k)
		if expectBroken {
			return nil
		}
		return s.decodeAnew(k, st.data, out, res.revision)
	}
}

// GuaranteedUpdate implements storage.Interface.
func (s *Store) GuaranteedUpdate(ctx context.Context, key string, destination runtime.Object, ignoreNotFound bool,
	preconditions *storage.Preconditions, tryUpdate storage.UpdateFunc, cachedExistingObject runtime.Object) error {
	k, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	v, err := conversion.EnforcePtr(destination)
	if err != nil {
		return fmt.Errorf("unable to convert output object to pointer: %w", err)
	}
	var st *objState
	if cachedExistingObject != nil {
		st, err = s.cachedState(cachedExistingObject)
	} else {
		st, err = s.latestState(ctx, k, v, ignoreNotFound)
	}
	if err != nil {
		return err
	}
	for {
		if err := preconditions.Check(k, st.obj); err != nil {
			if st.current {
				return err
			}
			if st, err = s.currentState(ctx, k, v, ignoreNotFound, false); err != nil {
				return err
			}
			continue
		}
		updated, ttl, err := s.tryUpdate(st, tryUpdate)
		if err != nil {
			if st.current {
				return err
			}
			cachedRev, cachedErr := st.rev, err
			if st, err = s.currentState(ctx, k, v, ignoreNotFound, false); err != nil {
				return err
			}
			if st.rev == cachedRev {
				return cachedErr
			}
			continue
		}
		data, err := s.encode(updated)
		if err != nil {
			return err
		}
		if !st.stale && bytes.Equal(data, st.data) {
			// Nothing to write. A cached state must be confirmed first: the stored
			// bytes may differ from what the caller's object encodes to.
			if !st.current {
				if st, err = s.currentState(ctx, k, v, ignoreNotFound, false); err != nil {
					return err
				}
				if !bytes.Equal(data, st.data) {
					continue
				}
			}
			if !st.stale {
				return s.decode(k, st.stored, st.data, destination, st.rev)
			}
		}
		stored, err := s.transformer.TransformToStorage(ctx, data, authenticatedData(k))
		if err != nil {
			return storage.NewInternalError(err)
		}
		res, err := s.putDecoded(ctx, k, stored, data, st.rev, ttl, destination)
		if err != nil {
			return err
		}
		if !res.ok() {
			if st, err = s.stateOf(ctx, k, res.current, v, ignoreNotFound, false); err != nil {
				return err
			}
			continue
		}
		return nil
	}
}

func (s *Store) tryUpdate(st *objState, update storage.UpdateFunc) (runtime.Object, uint64, error) {
	updated, ttl, err := update(st.obj, storage.ResponseMeta{ResourceVersion: uint64(st.rev)})
	if err != nil {
		return nil, 0, err
	}
	if err := s.versioner.PrepareObjectForStorage(updated); err != nil {
		return nil, 0, fmt.Errorf("PrepareObjectForStorage failed: %w", err)
	}
	if ttl == nil {
		return updated, 0, nil
	}
	return updated, *ttl, nil
}

// Stats implements storage.Interface. The database sums the stored sizes, so the
// average object size is exact once estimation is enabled.
func (s *Store) Stats(ctx context.Context) (storage.Stats, error) {
	prefix, err := s.prepareKey(s.resourcePrefix, true)
	if err != nil {
		return storage.Stats{}, err
	}
	count, size, err := s.b.db.stats(ctx, prefixRange(prefix))
	if err != nil {
		return storage.Stats{}, storage.NewInternalError(err)
	}
	stats := storage.Stats{ObjectCount: count}
	if s.estimateSize.Load() && count > 0 {
		stats.EstimatedAverageObjectSizeBytes = size / count
	}
	return stats, nil
}

// EnableResourceSizeEstimation implements storage.Interface. The keys function is
// not needed: the database knows every stored size.
func (s *Store) EnableResourceSizeEstimation(keys storage.KeysFunc) error {
	if keys == nil {
		return errors.New("KeysFunc cannot be nil")
	}
	if !s.estimateSize.CompareAndSwap(false, true) {
		return errors.New("resource size estimation already enabled")
	}
	return nil
}

// ReadinessCheck implements storage.Interface: the shard's database must have
// answered its latest poll.
func (s *Store) ReadinessCheck() error { return s.b.Ready() }

// GetCurrentResourceVersion implements storage.Interface.
func (s *Store) GetCurrentResourceVersion(ctx context.Context) (uint64, error) {
	current, err := s.b.CurrentRevision(ctx)
	if err != nil {
		return 0, storage.NewInternalError(err)
	}
	return uint64(current), nil
}

// CompactRevision implements storage.Interface.
func (s *Store) CompactRevision() int64 { return s.b.compacted.Load() }

// RequestWatchProgress implements storage.Interface: every watcher of the shard in
// this process gets a bookmark once it has seen all changes committed before.
func (s *Store) RequestWatchProgress(ctx context.Context) error {
	return s.b.hub.requestProgress(ctx)
}

// validateMinimumResourceVersion refuses a read that cannot return data at least as
// new as the resource version asked for.
func (s *Store) validateMinimumResourceVersion(minimum string, actual int64) error {
	if minimum == "" {
		return nil
	}
	rv, err := s.versioner.ParseResourceVersion(minimum)
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid resource version: %v", err))
	}
	if rv > uint64(actual) {
		return storage.NewTooLargeResourceVersionError(rv, uint64(actual), 0)
	}
	return nil
}

// prefixRange is the range of keys under a directory-like prefix ending in "/"
// (storage.PrepareKey ends every recursive key so): "/" + 1 is "0".
func prefixRange(prefix string) keyRange {
	return keyRange{start: prefix, end: strings.TrimSuffix(prefix, "/") + "0"}
}

// fromKey turns a range start from a continue token, which may end in NUL ("just
// after this key"), into one SQL text holds. Keys hold no NUL, so every key at or
// after k+"\x00"+anything is at or after k+"\x01".
func fromKey(k string) string {
	if i := strings.IndexByte(k, 0); i >= 0 {
		return k[:i] + "\x01"
	}
	return k
}
