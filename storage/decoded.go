package storage

import (
	"bytes"
	"context"
	"math"
	"reflect"
	"sync/atomic"

	"github.com/maypok86/otter/v2"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// decodedKey names an object decoded from a stored value: the store that
// decoded it (each has its own codec and version), the key, and how it was
// decoded; a watch's decodings are named by their revision too.
type decodedKey struct {
	store    uint64
	key      string
	revision int64
	form     decodedForm
}

// decodedForm tells apart the decodings of one value: into an object of the
// store's type (gets, lists, writes), or as a watch decodes a change's new or
// previous value (without a target object, so possibly converted differently;
// a previous value carries the revision of the change, as the new one does).
type decodedForm uint8

const (
	// formInto keeps, under revision 0, the newest version of a key that this
	// process wrote or read: what gets and lists of it copy, and the guess of
	// the current state a write may start from (a wrong one costs the write a
	// retry, never a lost update).
	formInto decodedForm = iota
	formWatch
	formWatchPrev
)

// decodedObject is an object as decoded from data, the value as the transformer
// gave it back, at revision. Nobody writes to obj: gets, writes and watches
// get deep copies; list items share its maps, slices and pointers (as items
// of upstream's watch cache do), so what lists return is read only.
type decodedObject struct {
	data     []byte
	obj      runtime.Object
	revision int64
	// stored is the value as stored, of an object decoded into the store's
	// type: what the transformer is asked again before a write starts from it.
	stored []byte
}

// decodedCache keeps objects decoded from stored values, so that a get, a list
// page, a write's read of the current state and every watcher of a change each
// pay a deep copy instead of a decode (decoding is most of a list's CPU). Values
// still pass through the transformer on every read — a decryption failure or a
// value that must be rewritten under a new key is seen as without the cache —
// and an entry is used only if the bytes it was decoded from equal the ones just
// read, so that not even a revision reused by a database restored from an older
// backup can serve a stale object. It holds at most a budget of bytes, each
// entry weighed by its bytes and an estimate of its object's.
type decodedCache struct {
	entries      *otter.Cache[decodedKey, *decodedObject]
	hits, misses atomic.Int64
	// detector, on in tests (client-go's KUBE_CACHE_MUTATION_DETECTOR),
	// kills the process if an object held is changed: by a reader of a
	// list, say.
	detector cache.MutationDetector
}

// An entry is weighed by its key, its bytes, its decoded object and
// decodedOverhead for the entry itself. A typed object is taken to be its
// struct plus typedGrowth times its bytes for what hangs off it (strings,
// maps, managed fields); one held as nested maps (custom resources),
// unstructuredGrowth times its bytes. Decoded with warren's storage codecs, a
// ConfigMap of 246 protobuf bytes took 1,310 bytes of heap and a Workspace of
// 702 CBOR bytes 1,785 (20,000 copies each); weighed as its bytes alone, a
// cache of example pods held 2.35 times its budget (19.7 MB of heap for 8 MiB,
// TestDecodedCacheHoldsItsBudget), 1.05 times now.
const (
	decodedOverhead    = 256
	typedGrowth        = 3
	unstructuredGrowth = 6
)

func newDecodedCache(budget int64) *decodedCache {
	if budget <= 0 {
		return nil
	}
	return &decodedCache{detector: cache.NewCacheMutationDetector("decoded objects"), entries: otter.Must(&otter.Options[decodedKey, *decodedObject]{
		MaximumWeight: uint64(budget),
		Weigher: func(k decodedKey, d *decodedObject) uint32 {
			decoded := unstructuredGrowth * len(d.data)
			if _, ok := d.obj.(runtime.Unstructured); !ok {
				decoded = typedGrowth * len(d.data)
				if t := reflect.TypeOf(d.obj); t != nil && t.Kind() == reflect.Pointer {
					decoded += int(t.Elem().Size())
				}
			}
			n := len(k.key) + len(d.data) + decoded + decodedOverhead
			if len(d.stored) > 0 && &d.stored[0] != &d.data[0] {
				n += len(d.stored) // kept besides data: transformed (encrypted)
			}
			return uint32(min(uint64(n), math.MaxUint32))
		},
	})}
}

// entryKey is where the cache keeps what k names: objects of the store's type
// one per key, the newest.
func entryKey(k decodedKey) decodedKey {
	if k.form == formInto {
		k.revision = 0
	}
	return k
}

// detect runs the mutation detector, if on, until ctx ends.
func (c *decodedCache) detect(ctx context.Context) {
	if c != nil {
		c.detector.Run(ctx.Done())
	}
}

// get returns a copy of the object decoded from data at k, if the cache holds
// it as an object of type t (nil: of any type).
func (c *decodedCache) get(k decodedKey, data []byte, t reflect.Type) (runtime.Object, bool) {
	obj, hit := c.getEither(data, decodedTry{k, t})
	return obj, hit == 0
}

// shared returns the object decoded from data at k itself, if the cache holds
// it as an object of type t: for a list, whose items share it, and whose
// readers must not change it. found, if not nil, is the entry the list's page
// found for k, which spares a look-up if it holds data.
func (c *decodedCache) shared(found *decodedObject, k decodedKey, data []byte, t reflect.Type) (runtime.Object, bool) {
	try := decodedTry{k, t}
	if c != nil && found != nil && found.holds(try, data) {
		c.hits.Add(1)
		return found.obj, true
	}
	if d, ok := c.lookup(try, data); ok {
		return d.obj, true
	}
	c.missed()
	return nil, false
}

// missed counts a lookup that found nothing.
func (c *decodedCache) missed() {
	if c != nil {
		c.misses.Add(1)
	}
}

// lookup returns the entry of try holding what data decodes to, counting a
// hit.
func (c *decodedCache) lookup(try decodedTry, data []byte) (*decodedObject, bool) {
	if c == nil {
		return nil, false
	}
	d, ok := c.entries.GetIfPresent(entryKey(try.k))
	if ok && d.holds(try, data) {
		c.hits.Add(1)
		return d, true
	}
	return nil, false
}

// decodedTry is a key an object decoded from some data may be kept under, and
// the type it must have there (nil: any).
type decodedTry struct {
	k decodedKey
	t reflect.Type
}

// holds tells whether d is what data decodes to at try.k, as try.t asks.
func (d *decodedObject) holds(try decodedTry, data []byte) bool {
	return d.revision == try.k.revision && (try.t == nil || reflect.TypeOf(d.obj) == try.t) && bytes.Equal(d.data, data)
}

// getEither is get of the first of tries the cache holds, and its index (-1
// for none), counted as one hit or one miss.
func (c *decodedCache) getEither(data []byte, tries ...decodedTry) (runtime.Object, int) {
	for i, try := range tries {
		if d, ok := c.lookup(try, data); ok {
			return d.obj.DeepCopyObject(), i
		}
	}
	c.missed()
	return nil, -1
}

// put keeps a copy of obj, decoded from data at k; one decoded into the
// store's type needs the value as stored, and is kept unless a newer version
// of its key is.
func (c *decodedCache) put(k decodedKey, data []byte, obj runtime.Object, stored []byte) {
	if c.refuses(k, data, stored) {
		return
	}
	c.keep(k, data, obj.DeepCopyObject(), stored)
}

// refuses tells whether put and keep would not keep what k names.
func (c *decodedCache) refuses(k decodedKey, data, stored []byte) bool {
	return c == nil || len(data) == 0 || (k.form == formInto && stored == nil)
}

// keep is put of obj itself, which the caller hands over.
func (c *decodedCache) keep(k decodedKey, data []byte, obj runtime.Object, stored []byte) {
	if c.refuses(k, data, stored) {
		return
	}
	if known, ok := c.entries.GetIfPresent(entryKey(k)); ok && known.revision > k.revision {
		return
	}
	c.entries.Set(entryKey(k), &decodedObject{data: data, obj: obj, revision: k.revision, stored: stored})
	c.detector.AddObject(obj)
}

// latest returns the newest version of key that the store with id store wrote
// or read, if the cache holds one of type t; its obj is the caller's to copy,
// not to change.
func (c *decodedCache) latest(store uint64, key string, t reflect.Type) (*decodedObject, bool) {
	if c == nil {
		return nil, false
	}
	d, ok := c.entries.GetIfPresent(decodedKey{store: store, key: key, form: formInto})
	if !ok || reflect.TypeOf(d.obj) != t {
		return nil, false
	}
	return d, true
}

// forget drops what is kept of key, as it is deleted.
func (c *decodedCache) forget(store uint64, key string) {
	if c != nil {
		c.entries.Invalidate(decodedKey{store: store, key: key, form: formInto})
	}
}

// setInto makes out, a pointer to a struct, hold obj, a pointer of the same type.
func setInto(out, obj runtime.Object) {
	reflect.ValueOf(out).Elem().Set(reflect.ValueOf(obj).Elem())
}
