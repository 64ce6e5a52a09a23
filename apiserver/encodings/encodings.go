// Package encodings keeps the protobuf encodings of the items of API lists, so
// that a list of objects that did not change since an earlier answer carried
// them writes the bytes kept instead of encoding each object again.
//
// A list answer in protobuf is upstream's envelope around the list's ListMeta
// and its items, each item encoded on its own (k8s.io/apimachinery's streaming
// list encoder writes exactly that). An item's encoding is a function of its
// content, and an object warren stores has the same content wherever it is
// listed for as long as it keeps its UID (assigned by the server) and its
// resourceVersion (a revision names one write on a shard for as long as the
// process runs, as in etcd), once converted to a given kind. Encoders from
// Cache.Serializer therefore write a list as upstream does, byte for byte,
// taking each item's bytes from the cache under (list kind, namespace, name,
// UID, resourceVersion) and encoding only the items it misses. Objects made
// up on read rather than stored — bootstrap cluster roles, shown in each
// cluster with its name, and the CRDs of bound APIs — have no UID or no
// resourceVersion, and items without both are encoded every time, never kept.
// Everything that is not a list of that shape is upstream's to encode.
//
// A database restored from a backup under a running process could name two
// versions of an object by one resourceVersion; as with etcd and
// kube-apiserver, whose watch cache has the same blind spot, the process must
// be restarted after a restore.
package encodings

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"reflect"

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

// encoder is upstream's protobuf serializer, whose lists it writes itself as
// that serializer writes them: its prefix, then a runtime.Unknown holding the
// list's bytes, streamed item by item.
type encoder struct {
	runtime.Encoder
	cache *Cache
}

var _ runtime.EncoderWithAllocator = encoder{}

func (e encoder) Encode(obj runtime.Object, w io.Writer) error {
	return e.encode(obj, w, func() error { return e.Encoder.Encode(obj, w) })
}

// EncodeWithAllocator hands the allocator on to the serializer if it takes
// one (lists need none).
func (e encoder) EncodeWithAllocator(obj runtime.Object, w io.Writer, a runtime.MemoryAllocator) error {
	inner, ok := e.Encoder.(runtime.EncoderWithAllocator)
	if !ok {
		return e.Encode(obj, w)
	}
	return e.encode(obj, w, func() error { return inner.EncodeWithAllocator(obj, w, a) })
}

// encode writes obj to w if it is a list the cache can write, or has upstream
// write it.
func (e encoder) encode(obj runtime.Object, w io.Writer, upstream func() error) error {
	items, listMeta, ok := listOf(obj)
	if !ok {
		return upstream()
	}
	return e.cache.writeList(w, obj.GetObjectKind().GroupVersionKind(), listMeta, items)
}

// prefix is what upstream's protobuf serializer writes before the
// runtime.Unknown holding an object.
var prefix = func() []byte {
	var b bytes.Buffer
	unknown := &runtime.Unknown{}
	if err := protobuf.NewSerializer(nil, nil).Encode(unknown, &b); err != nil {
		panic(fmt.Sprintf("encoding an empty runtime.Unknown: %v", err))
	}
	return b.Bytes()[:b.Len()-unknown.Size()]
}()

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

// writeList writes to w a list of kind gvk with listMeta and the items of list,
// as upstream's serializer does: its prefix, then a runtime.Unknown whose raw
// bytes are field 1 the ListMeta, field 2 each item. It first sums the sizes
// (of items it holds, their bytes'), so that it can stream the items after
// the raw bytes' length, as upstream does, holding no copy of the list.
func (c *Cache) writeList(w io.Writer, gvk schema.GroupVersionKind, listMeta *metav1.ListMeta, list reflect.Value) error {
	kept := make([][]byte, list.Len())
	size, hits := field(listMeta.Size()), 0
	for i := range kept {
		item := list.Index(i).Addr().Interface().(object)
		if b, ok := c.entries.GetIfPresent(keyOf(gvk, item)); ok {
			kept[i] = b
			hits++
			size += field(len(b))
		} else {
			size += field(item.Size())
		}
	}
	items.WithLabelValues("cached").Add(float64(hits))
	items.WithLabelValues("encoded").Add(float64(len(kept) - hits))

	if _, err := w.Write(prefix); err != nil {
		return err
	}
	unknown := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind}}
	_, err := unknown.MarshalToWriter(w, size, func(w io.Writer) (int, error) {
		header := make([]byte, 0, 1+binary.MaxVarintLen64)
		written := 0
		writeField := func(number int, b []byte) error {
			header = binary.AppendUvarint(append(header[:0], byte(number<<3|2)), uint64(len(b)))
			n, err := w.Write(header)
			written += n
			if err != nil {
				return err
			}
			n, err = w.Write(b)
			written += n
			return err
		}
		b, err := encode(listMeta)
		if err != nil {
			return written, err
		}
		if err := writeField(1, b); err != nil {
			return written, err
		}
		for i, b := range kept {
			if b == nil {
				item := list.Index(i).Addr().Interface().(object)
				if b, err = encode(item); err != nil {
					return written, err
				}
				if k := keyOf(gvk, item); k.uid != "" && k.resourceVersion != "" {
					c.entries.Set(k, b)
				}
			}
			if err := writeField(2, b); err != nil {
				return written, err
			}
		}
		return written, nil
	})
	return err
}

// keyOf is the key of item's encoding in a list of kind gvk.
func keyOf(gvk schema.GroupVersionKind, item object) key {
	return key{list: gvk, namespace: item.GetNamespace(), name: item.GetName(), uid: item.GetUID(), resourceVersion: item.GetResourceVersion()}
}

// field is the length of a protobuf field of wire type 2 holding size bytes.
func field(size int) int {
	return 1 + (bits.Len64(uint64(size)|1)+6)/7 + size
}

// encode returns m's protobuf encoding.
func encode(m marshaler) ([]byte, error) {
	b := make([]byte, m.Size())
	n, err := m.MarshalToSizedBuffer(b)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, fmt.Errorf("%T: its size was %d bytes, but encoding it wrote %d", m, len(b), n)
	}
	return b, nil
}
