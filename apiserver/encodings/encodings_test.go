package encodings

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsinstall "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsv1beta1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	runtimeserializer "k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-base/metrics/testutil"

	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
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
	apiextensionsinstall.Install(s)
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
	// Two objects written at one resourceVersion (by one transaction, or on
	// two shards) are two objects.
	oneVersion := configMaps(2)
	oneVersion.Items[0].ResourceVersion, oneVersion.Items[1].ResourceVersion = "5000", "5000"

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
		{"two objects at one resourceVersion", oneVersion, 0, 2},
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

	// API handlers encode with an allocator.
	var allocated bytes.Buffer
	hits, misses := counts(t)
	if err := cached.(runtime.EncoderWithAllocator).EncodeWithAllocator(changed, &allocated, &runtime.Allocator{}); err != nil {
		t.Fatal(err)
	}
	if want := encoded(t, upstream, changed); !bytes.Equal(allocated.Bytes(), want) {
		t.Fatalf("with an allocator: %d bytes through the cache differ from upstream's %d", allocated.Len(), len(want))
	}
	if h, m := counts(t); h-hits != 200 || m-misses != 0 {
		t.Errorf("with an allocator: %d items from the cache and %d encoded, want 200 and 0", h-hits, m-misses)
	}

	// The same objects as a list of another kind (here their metadata
	// only) are encoded anew, then kept as their own.
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

	// An object kept internally, as warren's stores keep built-in ones, is
	// converted to the version asked for: each version is encoded once.
	crds := &apiextensions.CustomResourceDefinitionList{Items: []apiextensions.CustomResourceDefinition{{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com", UID: "crd-uid", ResourceVersion: "7"},
		Spec: apiextensions.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextensions.NamespaceScoped,
			Names:    apiextensions.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensions.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true}},
		},
	}}}
	for _, step := range []struct {
		gv           schema.GroupVersion
		hits, misses int64
	}{{apiextensionsv1.SchemeGroupVersion, 0, 1}, {apiextensionsv1beta1.SchemeGroupVersion, 0, 1}, {apiextensionsv1.SchemeGroupVersion, 1, 0}, {apiextensionsv1beta1.SchemeGroupVersion, 1, 0}} {
		hits, misses := counts(t)
		if got, want := encoded(t, encoderFor(t, cache.Serializer(codecs), protobuf, step.gv), crds), encoded(t, encoderFor(t, codecs, protobuf, step.gv), crds); !bytes.Equal(got, want) {
			t.Fatalf("CRDs as %s: %d bytes through the cache differ from upstream's %d", step.gv, len(got), len(want))
		}
		if h, m := counts(t); h-hits != step.hits || m-misses != step.misses {
			t.Errorf("CRDs as %s: %d items from the cache and %d encoded, want %d and %d", step.gv, h-hits, m-misses, step.hits, step.misses)
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

// TestOnlyListsOfObjectsWithProtobufAreWrittenFromTheCache: lists the cache
// cannot write are upstream's, whatever their items.
func TestOnlyListsOfObjectsWithProtobufAreWrittenFromTheCache(t *testing.T) {
	for _, c := range []struct {
		obj  runtime.Object
		list bool
	}{
		{&corev1.ConfigMapList{}, true},
		{&corev1.ConfigMap{}, false},
		{&metav1.Table{}, false},
		{&metav1.List{Items: []runtime.RawExtension{{Raw: []byte("{}")}}}, false},
		{&tenancyv1alpha1.WorkspaceList{Items: []tenancyv1alpha1.Workspace{{}}}, false}, // no protobuf
		{&runtime.Unknown{}, false},
	} {
		if _, _, ok := listOf(c.obj); ok != c.list {
			t.Errorf("%T written from the cache: %v, want %v", c.obj, ok, c.list)
		}
	}
}

// TestListsWrittenAtOnceAreEachUpstreams: encodings under way at once share
// the cache and nothing else.
func TestListsWrittenAtOnceAreEachUpstreams(t *testing.T) {
	cache := New(1 << 20)
	cached, upstream := encoderFor(t, cache.Serializer(codecs), runtime.ContentTypeProtobuf, corev1.SchemeGroupVersion), encoderFor(t, codecs, runtime.ContentTypeProtobuf, corev1.SchemeGroupVersion)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		list := configMaps(10 + g*20)
		list.Items[0].Data["v"] = fmt.Sprint("writer ", g)
		list.Items[0].UID = types.UID(fmt.Sprint("writer-", g))
		want := encoded(t, upstream, list)
		wg.Go(func() {
			for range 50 {
				var b bytes.Buffer
				if err := cached.Encode(list, &b); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(b.Bytes(), want) {
					errs <- fmt.Errorf("writer %d: %d bytes, upstream's %d", g, b.Len(), len(want))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
