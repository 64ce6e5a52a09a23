package encodings

import (
	"bytes"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	runtimeserializer "k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-base/metrics/testutil"
)

// codecs stream lists, as the codecs of upstream's API groups do.
var codecs = func() runtimeserializer.CodecFactory {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		panic(err)
	}
	metav1.AddToGroupVersion(s, metav1.SchemeGroupVersion)
	if err := metav1.AddMetaToScheme(s); err != nil {
		panic(err)
	}
	return runtimeserializer.NewCodecFactory(s,
		runtimeserializer.WithStreamingCollectionEncodingToJSON(),
		runtimeserializer.WithStreamingCollectionEncodingToProtobuf())
}()

// encoderFor is the encoder an API handler negotiates for mediaType and gv.
func encoderFor(t testing.TB, ns runtime.NegotiatedSerializer, mediaType string, gv schema.GroupVersion) runtime.Encoder {
	info, ok := runtime.SerializerInfoForMediaType(ns.SupportedMediaTypes(), mediaType)
	if !ok {
		t.Fatalf("no serializer for %s", mediaType)
	}
	return ns.EncoderForVersion(info.Serializer, gv)
}

// configMaps is a list of n ConfigMaps as a server returns them: each with a
// UID, a resourceVersion and managed fields.
func configMaps(n int) *corev1.ConfigMapList {
	list := &corev1.ConfigMapList{ListMeta: metav1.ListMeta{ResourceVersion: "1000"}}
	for i := range n {
		list.Items = append(list.Items, corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("cm-%d", i), Namespace: "default",
				UID:             types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i)),
				ResourceVersion: fmt.Sprint(100 + i),
				Annotations:     map[string]string{"kcp.io/cluster": "2x4kd0zl6rqkz1bq"},
				ManagedFields: []metav1.ManagedFieldsEntry{{
					Manager: "bench", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
					FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{".":{},"f:v":{}}}`)},
				}},
			},
			Data: map[string]string{"v": fmt.Sprint(i)},
		})
	}
	return list
}

// counts is how many items of lists were taken from caches and how many were
// encoded, so far.
func counts(t testing.TB) (cached, encoded int64) {
	t.Helper()
	for _, c := range []struct {
		label string
		n     *int64
	}{{"cached", &cached}, {"encoded", &encoded}} {
		v, err := testutil.GetCounterMetricValue(items.WithLabelValues(c.label))
		if err != nil {
			t.Fatal(err)
		}
		*c.n = int64(v)
	}
	return cached, encoded
}

// encoded is what e writes for obj.
func encoded(t testing.TB, e runtime.Encoder, obj runtime.Object) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := e.Encode(obj, &b); err != nil {
		t.Fatalf("encoding %T: %v", obj, err)
	}
	return b.Bytes()
}

// TestListsAreUpstreamsByteForByte: whatever the cache holds, a list written
// through it is the list upstream writes, byte for byte; items of a list seen
// before come from the cache, and an item changed (a new resourceVersion), an
// item without a UID or resourceVersion, or the same object in a list of
// another kind is encoded anew.
func TestListsAreUpstreamsByteForByte(t *testing.T) {
	const protobuf = runtime.ContentTypeProtobuf
	cache := New(1 << 20)
	cached, upstream := encoderFor(t, cache.Serializer(codecs), protobuf, corev1.SchemeGroupVersion), encoderFor(t, codecs, protobuf, corev1.SchemeGroupVersion)
	list := configMaps(200)

	changed := configMaps(200)
	changed.Items[7].ResourceVersion = "2000"
	changed.Items[7].Data["v"] = "changed"
	changed.ResourceVersion = "2000"

	unnamed := configMaps(3)
	unnamed.Items[0].UID = ""
	unnamed.Items[1].ResourceVersion = ""
	// Objects without a UID or a resourceVersion are told apart by neither:
	// these two have the names and versions of the two above, and other data.
	otherUnnamed := configMaps(3)
	otherUnnamed.Items[0].UID = ""
	otherUnnamed.Items[1].ResourceVersion = ""
	otherUnnamed.Items[0].Data["v"], otherUnnamed.Items[1].Data["v"] = "other", "other"

	steps := []struct {
		name         string
		obj          runtime.Object
		hits, misses int64
	}{
		{"a first list", list, 0, 200},
		{"the same list again", list, 200, 0},
		{"one item changed", changed, 199, 1},
		{"items without a UID or resourceVersion", unnamed, 1, 2},
		{"other items without a UID or resourceVersion", otherUnnamed, 1, 2},
		{"an empty list", &corev1.ConfigMapList{}, 0, 0},
		{"a list of another kind", &corev1.SecretList{Items: []corev1.Secret{{ObjectMeta: list.Items[0].ObjectMeta, Data: map[string][]byte{"k": []byte("secret")}}}}, 0, 1},
		{"not a list", &list.Items[0], 0, 0},
	}
	for _, s := range steps {
		hits, misses := counts(t)
		if got, want := encoded(t, cached, s.obj), encoded(t, upstream, s.obj); !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes through the cache differ from upstream's %d", s.name, len(got), len(want))
		}
		if h, m := counts(t); h-hits != s.hits || m-misses != s.misses {
			t.Errorf("%s: %d items from the cache and %d encoded, want %d and %d", s.name, h-hits, m-misses, s.hits, s.misses)
		}
	}

	// Partial metadata of the same objects, as a list of their metadata
	// only (their UIDs and resourceVersions are kept under the list kind
	// above), is encoded anew, then kept as its own.
	metadata := &metav1.PartialObjectMetadataList{}
	for _, item := range list.Items {
		metadata.Items = append(metadata.Items, metav1.PartialObjectMetadata{ObjectMeta: item.ObjectMeta})
	}
	cachedMeta, upstreamMeta := encoderFor(t, cache.Serializer(codecs), protobuf, metav1.SchemeGroupVersion), encoderFor(t, codecs, protobuf, metav1.SchemeGroupVersion)
	for _, want := range [][2]int64{{0, 200}, {200, 0}} {
		hits, misses := counts(t)
		if got, want := encoded(t, cachedMeta, metadata), encoded(t, upstreamMeta, metadata); !bytes.Equal(got, want) {
			t.Fatalf("partial metadata: %d bytes through the cache differ from upstream's %d", len(got), len(want))
		}
		if h, m := counts(t); h-hits != want[0] || m-misses != want[1] {
			t.Errorf("partial metadata: %d items from the cache and %d encoded, want %d and %d", h-hits, m-misses, want[0], want[1])
		}
	}

	// JSON is upstream's to write.
	if got, want := encoded(t, encoderFor(t, cache.Serializer(codecs), runtime.ContentTypeJSON, corev1.SchemeGroupVersion), list), encoded(t, encoderFor(t, codecs, runtime.ContentTypeJSON, corev1.SchemeGroupVersion), list); !bytes.Equal(got, want) {
		t.Fatalf("JSON through the cache:\n%s\nupstream's:\n%s", got, want)
	}
}

// TestACacheOverItsBudgetStillWritesUpstreamsBytes: items evicted are encoded
// again; a cache of no budget is no cache.
func TestACacheOverItsBudgetStillWritesUpstreamsBytes(t *testing.T) {
	if New(0) != nil {
		t.Fatal("a cache of no budget was made")
	}
	if s, ok := (*Cache)(nil).Serializer(codecs).(runtimeserializer.CodecFactory); !ok {
		t.Fatalf("no cache's serializer is %T, not the one it was given", s)
	}
	cache := New(4 << 10) // about ten of the items
	cached, upstream := encoderFor(t, cache.Serializer(codecs), runtime.ContentTypeProtobuf, corev1.SchemeGroupVersion), encoderFor(t, codecs, runtime.ContentTypeProtobuf, corev1.SchemeGroupVersion)
	list := configMaps(200)
	for range 3 {
		if got, want := encoded(t, cached, list), encoded(t, upstream, list); !bytes.Equal(got, want) {
			t.Fatalf("%d bytes through a full cache differ from upstream's %d", len(got), len(want))
		}
	}
	if hits, misses := counts(t); misses <= 200 {
		t.Fatalf("a cache of 4 KiB took %d of 600 items from the cache: it encoded only the first list's %d", hits, misses)
	}
}

// BenchmarkListEncoding: a list of 200 ConfigMaps that did not change,
// encoded by upstream and through the cache.
func BenchmarkListEncoding(b *testing.B) {
	list := configMaps(200)
	for _, bench := range []struct {
		name string
		ns   runtime.NegotiatedSerializer
	}{
		{"upstream", codecs},
		{"cached", New(64 << 20).Serializer(codecs)},
	} {
		b.Run(bench.name, func(b *testing.B) {
			e := encoderFor(b, bench.ns, runtime.ContentTypeProtobuf, corev1.SchemeGroupVersion)
			var w bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				w.Reset()
				if err := e.Encode(list, &w); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(w.Len()))
		})
	}
}
