package scheme

import (
	"bytes"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/apitesting/fuzzer"
	"k8s.io/apimachinery/pkg/api/meta"
	metafuzzer "k8s.io/apimachinery/pkg/apis/meta/fuzzer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/dump"
)

// storedKinds returns the kinds of gv that are objects of their own (with
// metadata), not lists or options.
func storedKinds(t *testing.T, gv string) []string {
	t.Helper()
	var kinds []string
	for _, g := range Served {
		if g.GroupVersion.String() != gv {
			continue
		}
		for kind, typ := range Scheme.KnownTypes(g.GroupVersion) {
			if f, ok := typ.FieldByName("ObjectMeta"); ok && f.Type == reflect.TypeFor[metav1.ObjectMeta]() && !strings.HasSuffix(kind, "List") {
				kinds = append(kinds, kind)
			}
		}
	}
	if len(kinds) == 0 {
		t.Fatalf("no kinds stored in %s", gv)
	}
	return kinds
}

// TestCBORStorageReadsAsJSONDid: every kind stored as CBOR comes back from
// storage as it came back when it was stored as JSON, fuzzed objects and all,
// and what was stored as JSON before is still read.
func TestCBORStorageReadsAsJSONDid(t *testing.T) {
	json, ok := runtime.SerializerInfoForMediaType(StorageCodecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
	if !ok {
		t.Fatal("no JSON serializer")
	}
	seed := rand.Int63()
	t.Logf("seed %d", seed)
	f := fuzzer.FuzzerFor(metafuzzer.Funcs, rand.NewSource(seed), Codecs)
	tried := 0
	for _, g := range Served {
		if g.StoredAs != runtime.ContentTypeCBOR {
			continue
		}
		for _, kind := range storedKinds(t, g.GroupVersion.String()) {
			gvk := g.GroupVersion.WithKind(kind)
			gvr := g.GroupVersion.WithResource(strings.ToLower(kind) + "s")
			codec, err := StorageCodec(gvr)
			if err != nil {
				t.Fatal(err)
			}
			asJSON := StorageCodecs.CodecForVersions(json.Serializer, StorageCodecs.UniversalDeserializer(), g.GroupVersion, runtime.InternalGroupVersioner)
			for range 50 {
				obj, err := Scheme.New(gvk)
				if err != nil {
					t.Fatal(err)
				}
				f.Fill(obj)
				// The fuzzer leaves managed fields empty; every object written
				// through the API has some, as raw JSON.
				m, err := meta.Accessor(obj)
				if err != nil {
					t.Fatal(err)
				}
				m.SetManagedFields([]metav1.ManagedFieldsEntry{{
					Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: g.GroupVersion.String(),
					Time: &metav1.Time{Time: time.Unix(1764979200, 0)}, FieldsType: "FieldsV1",
					FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{".":{},"f:a":{}}},"f:spec":{"f:x":{}}}`)},
				}})
				var cbor, js bytes.Buffer
				if err := codec.Encode(obj, &cbor); err != nil {
					t.Fatalf("%s as CBOR: %v", gvk, err)
				}
				if !bytes.HasPrefix(cbor.Bytes(), []byte{0xd9, 0xd9, 0xf7}) {
					t.Fatalf("%s stored as %q, not CBOR", gvk, cbor.Bytes())
				}
				if err := asJSON.Encode(obj, &js); err != nil {
					t.Fatalf("%s as JSON: %v", gvk, err)
				}
				// As a watch decodes (no target) and as a get does (into a
				// new object of the kind).
				for _, into := range []bool{false, true} {
					decode := func(data []byte) runtime.Object {
						var target runtime.Object
						if into {
							target, _ = Scheme.New(gvk)
						}
						out, _, err := codec.Decode(data, nil, target)
						if err != nil {
							t.Fatalf("%s from %q: %v", gvk, data, err)
						}
						return out
					}
					fromCBOR, fromJSON := decode(cbor.Bytes()), decode(js.Bytes())
					if !reflect.DeepEqual(fromCBOR, fromJSON) {
						t.Fatalf("%s (seed %d): from CBOR\n%s\nfrom JSON\n%s", gvk, seed, dump.Pretty(fromCBOR), dump.Pretty(fromJSON))
					}
				}
				tried++
			}
		}
	}
	if tried == 0 {
		t.Fatal("no kind is stored as CBOR")
	}
}
