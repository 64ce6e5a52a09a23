// Package encodings keeps the protobuf encodings of the items of API lists, so
// that a list of objects that did not change since an earlier answer carried
// them writes the bytes kept instead of encoding each object again.
//
// A list answer in protobuf is upstream's envelope around the list's ListMeta
// and its items, each item encoded on its own (k8s.io/apimachinery's streaming
// list encoder writes exactly that). An item's encoding is a function of its
// content, and in warren an object's content is a function of which object it
// is (its UID, assigned by the server), of its resourceVersion (a revision names
// one write on a shard for as long as the process runs, as in etcd) and of the
// kind it was converted to. Encoders from Cache.Serializer therefore write a
// list as upstream does, byte for byte, taking each item's bytes from the cache
// under (list kind, namespace, name, UID, resourceVersion), encoding only the
// items it misses and items without a UID or a resourceVersion (never kept).
// Everything that is not a list of that shape is upstream's to encode.
//
// A database restored from a backup under a running process could name two
// versions of an object by one resourceVersion; as with etcd and
// kube-apiserver, whose watch cache has the same blind spot, the process must
// be restarted after a restore.
package encodings

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"sync"

	"github.com/maypok86/otter/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// key names an item's encoding: the kind of the list it was converted into
// and which version of which object it is.
type key struct {
	list            schema.GroupVersionKind
	namespace, name string
	uid             types.UID
	resourceVersion string
}

// overhead weighs an entry's own memory beyond its strings and bytes: 20,000
// entries of 250 bytes, with the key strings of the bench's ConfigMaps, took
// 537 bytes of heap each, 232 more than their strings and bytes.
const overhead = 232

// Cache keeps item encodings up to a budget of bytes. A nil *Cache keeps
// nothing: its Serializer is the one it is given.
type Cache struct {
	entries *otter.Cache[key, []byte]
}

// items counts the items of lists written through a cache, by whether their
// encoding was taken from it.
var items = metrics.NewCounterVec(&metrics.CounterOpts{
	Namespace: "warren", Name: "list_items_total", StabilityLevel: metrics.ALPHA,
	Help: "Items of protobuf list answers, by whether their encoding was kept from an earlier answer (cached) or made anew (encoded).",
}, []string{"encoding"})

func init() {
	legacyregistry.MustRegister(items)
}

// New returns a cache of at most budget bytes, or nil if budget is not
// positive.
func New(budget int64) *Cache {
	if budget <= 0 {
		return nil
	}
	return &Cache{entries: otter.Must(&otter.Options[key, []byte]{
		MaximumWeight: uint64(budget),
		Weigher: func(k key, b []byte) uint32 {
			n := len(k.namespace) + len(k.name) + len(k.uid) + len(k.resourceVersion) + len(b) + overhead
			return uint32(min(n, math.MaxUint32))
		},
	})}
}

// protobufSerializer is the identifier of upstream's protobuf serializer (not
// of its raw or streaming ones), the one whose lists the cache writes.
var protobufSerializer = protobuf.NewSerializer(nil, nil).Identifier()

// Serializer makes the protobuf encoders of s write lists through c; the rest
// it leaves to s.
func (c *Cache) Serializer(s runtime.NegotiatedSerializer) runtime.NegotiatedSerializer {
	if c == nil {
		return s
	}
	return serializer{s, c}
}

type serializer struct {
	runtime.NegotiatedSerializer
	cache *Cache
}

// EncoderForVersion hands s's versioning encoder, which converts what it is
// given to gv, an encoder that writes the converted lists through the cache.
func (s serializer) EncoderForVersion(e runtime.Encoder, gv runtime.GroupVersioner) runtime.Encoder {
	if e.Identifier() == protobufSerializer {
		e = encoder{e, s.cache}
	}
	return s.NegotiatedSerializer.EncoderForVersion(e, gv)
}

// encoder is upstream's protobuf serializer, whose lists it writes as
// runtime.Unknown objects holding the list's bytes: the serializer writes
// those as it would the list.
type encoder struct {
	runtime.Encoder
	cache *Cache
}

var _ runtime.EncoderWithAllocator = encoder{}

func (e encoder) Encode(obj runtime.Object, w io.Writer) error {
	return e.encode(obj, func(obj runtime.Object) error { return e.Encoder.Encode(obj, w) })
}

// EncodeWithAllocator hands the allocator on to the serializer if it takes
// one.
func (e encoder) EncodeWithAllocator(obj runtime.Object, w io.Writer, a runtime.MemoryAllocator) error {
	inner, ok := e.Encoder.(runtime.EncoderWithAllocator)
	if !ok {
		return e.Encode(obj, w)
	}
	return e.encode(obj, func(obj runtime.Object) error { return inner.EncodeWithAllocator(obj, w, a) })
}

func (e encoder) encode(obj runtime.Object, write func(runtime.Object) error) error {
	items, listMeta, ok := listOf(obj)
	if !ok {
		return write(obj)
	}
	raw := raws.Get().(*[]byte)
	defer func() {
		if cap(*raw) <= keptRaw {
			*raw = (*raw)[:0]
			raws.Put(raw)
		}
	}()
	gvk := obj.GetObjectKind().GroupVersionKind()
	var err error
	if *raw, err = e.cache.appendList(*raw, gvk, listMeta, items); err != nil {
		return err
	}
	return write(&runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind}, Raw: *raw})
}

// raws keeps the buffers of lists' bytes between encodings, those of up to
// keptRaw bytes: a buffer grown by a list of thousands of objects is left to
// the collector.
var raws = sync.Pool{New: func() any { return new([]byte) }}

const keptRaw = 1 << 20

// marshaler is what generated protobuf code gives an API object.
type marshaler interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

// object is an item the cache can keep: an API object with generated protobuf
// code.
type object interface {
	marshaler
	metav1.Object
}

var (
	typeMetaType = reflect.TypeFor[metav1.TypeMeta]()
	listMetaType = reflect.TypeFor[metav1.ListMeta]()
	objectType   = reflect.TypeFor[object]()
)

// listOf returns the items and ListMeta of obj if it is a pointer to a list
// shaped as upstream's streaming protobuf encoder requires (TypeMeta not
// encoded, ListMeta as field 1, items as field 2), whose items are structs
// with object metadata and generated protobuf code.
func listOf(obj runtime.Object) (reflect.Value, *metav1.ListMeta, bool) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, nil, false
	}
	v = v.Elem()
	t := v.Type()
	if t.NumField() != 3 ||
		t.Field(0).Type != typeMetaType || t.Field(0).Tag.Get("protobuf") != "" ||
		t.Field(1).Type != listMetaType || t.Field(1).Tag.Get("protobuf") != "bytes,1,opt,name=metadata" ||
		t.Field(2).Type.Kind() != reflect.Slice || t.Field(2).Tag.Get("protobuf") != "bytes,2,rep,name=items" {
		return reflect.Value{}, nil, false
	}
	items := v.Field(2)
	if elem := items.Type().Elem(); elem.Kind() != reflect.Struct || !reflect.PointerTo(elem).Implements(objectType) {
		return reflect.Value{}, nil, false
	}
	return items, v.Field(1).Addr().Interface().(*metav1.ListMeta), true
}

// appendList appends to b the protobuf encoding of a list of kind gvk with
// listMeta and items: field 1 the ListMeta, field 2 each item.
func (c *Cache) appendList(b []byte, gvk schema.GroupVersionKind, listMeta *metav1.ListMeta, list reflect.Value) ([]byte, error) {
	var err error
	if b, err = appendField(b, 1, listMeta); err != nil {
		return nil, err
	}
	hits := 0
	for i := range list.Len() {
		item := list.Index(i).Addr().Interface().(object)
		k := key{list: gvk, namespace: item.GetNamespace(), name: item.GetName(), uid: item.GetUID(), resourceVersion: item.GetResourceVersion()}
		kept, ok := c.entries.GetIfPresent(k)
		if ok {
			hits++
		} else {
			if kept, err = encode(item); err != nil {
				return nil, err
			}
			if k.uid != "" && k.resourceVersion != "" {
				c.entries.Set(k, kept)
			}
		}
		b = appendHeader(b, 2, len(kept))
		b = append(b, kept...)
	}
	items.WithLabelValues("cached").Add(float64(hits))
	items.WithLabelValues("encoded").Add(float64(list.Len() - hits))
	return b, nil
}

// appendField appends m to b as the protobuf field number field (wire type
// 2: its length, then its bytes).
func appendField(b []byte, field int, m marshaler) ([]byte, error) {
	size := m.Size()
	b = appendHeader(b, field, size)
	b = slices.Grow(b, size)[:len(b)+size]
	return b, marshal(m, b[len(b)-size:])
}

// encode returns m's protobuf encoding.
func encode(m marshaler) ([]byte, error) {
	b := make([]byte, m.Size())
	return b, marshal(m, b)
}

// marshal encodes m into b, which is as long as m's size.
func marshal(m marshaler, b []byte) error {
	n, err := m.MarshalToSizedBuffer(b)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("%T: its size was %d bytes, but encoding it wrote %d", m, len(b), n)
	}
	return nil
}

// appendHeader appends the tag of field number field with wire type 2 and the
// length size.
func appendHeader(b []byte, field, size int) []byte {
	b = append(b, byte(field<<3|2))
	return binary.AppendUvarint(b, uint64(size))
}
