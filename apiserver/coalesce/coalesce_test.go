package coalesce_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"

	"github.com/warren-dev/warren/apiserver/coalesce"
)

// codecs stream lists, as the codecs of upstream's API groups do.
var codecs = func() serializer.CodecFactory {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		panic(err)
	}
	metav1.AddToGroupVersion(s, metav1.SchemeGroupVersion)
	return serializer.NewCodecFactory(s,
		serializer.WithStreamingCollectionEncodingToJSON(),
		serializer.WithStreamingCollectionEncodingToProtobuf())
}()

// encoderFor is the encoder an API handler negotiates for mediaType.
func encoderFor(t testing.TB, ns runtime.NegotiatedSerializer, mediaType string) runtime.Encoder {
	info, ok := runtime.SerializerInfoForMediaType(ns.SupportedMediaTypes(), mediaType)
	if !ok {
		t.Fatalf("no serializer for %s", mediaType)
	}
	return ns.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion)
}

// configMaps is a list of n ConfigMaps of a few hundred bytes each.
func configMaps(n int) *corev1.ConfigMapList {
	list := &corev1.ConfigMapList{ListMeta: metav1.ListMeta{ResourceVersion: "42"}}
	for i := range n {
		list.Items = append(list.Items, corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%05d", i), Namespace: "default", ResourceVersion: "41"},
			Data:       map[string]string{"key": strings.Repeat("v", 100)},
		})
	}
	return list
}

// writes records an answer and the writes it came in.
type writes struct {
	*httptest.ResponseRecorder
	n int
}

func (w *writes) Write(p []byte) (int, error) {
	w.n++
	return w.ResponseRecorder.Write(p)
}

// serve answers a GET with obj through upstream's response writer, as an API
// handler does, with e.
func serve(e runtime.Encoder, gzipped bool, mediaType string, obj runtime.Object) *writes {
	req := httptest.NewRequest(http.MethodGet, "/api/v1/configmaps", nil)
	if gzipped {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	w := &writes{ResponseRecorder: httptest.NewRecorder()}
	responsewriters.SerializeObject(mediaType, e, w, req, http.StatusOK, obj)
	return w
}

// body is what a client reads of an answer.
func body(t *testing.T, w *writes) []byte {
	t.Helper()
	if w.Header().Get("Content-Encoding") != "gzip" {
		return w.Body.Bytes()
	}
	r, err := gzip.NewReader(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatalf("reading the gzipped answer: %v", err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading the gzipped answer: %v", err)
	}
	return b
}

func TestAnswersAreUpstreamsInOneWriteOrLongOnes(t *testing.T) {
	for _, mediaType := range []string{runtime.ContentTypeProtobuf, runtime.ContentTypeJSON} {
		upstream := encoderFor(t, codecs, mediaType)
		coalesced := encoderFor(t, coalesce.Serializer(codecs), mediaType)
		for _, items := range []int{0, 200, 2000} {
			for _, gzipped := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%d items/gzip %v", mediaType, items, gzipped), func(t *testing.T) {
					list := configMaps(items)
					want, got := serve(upstream, gzipped, mediaType, list), serve(coalesced, gzipped, mediaType, list)
					if got.Code != want.Code {
						t.Errorf("status %d, upstream's %d", got.Code, want.Code)
					}
					for _, h := range []string{"Content-Type", "Content-Encoding", "Vary"} {
						if got.Header().Get(h) != want.Header().Get(h) {
							t.Errorf("%s %q, upstream's %q", h, got.Header().Get(h), want.Header().Get(h))
						}
					}
					if !bytes.Equal(body(t, got), body(t, want)) {
						t.Fatalf("the answer differs from upstream's (%d bytes, upstream's %d)", len(body(t, got)), len(body(t, want)))
					}
					size := len(body(t, want))
					compressed := want.Header().Get("Content-Encoding") == "gzip"
					if compressed != (gzipped && size >= coalesce.Threshold) {
						t.Fatalf("%d bytes, compressed %v: the test's threshold is not upstream's", size, compressed)
					}
					if size < coalesce.Threshold && got.n != 1 {
						t.Errorf("%d bytes came in %d writes, want 1", size, got.n)
					}
				})
			}
		}
	}
}

// failing writes part of an answer, then fails.
type failing struct{ runtime.Encoder }

func (f failing) Encode(obj runtime.Object, w io.Writer) error {
	if _, ok := obj.(*metav1.Status); ok {
		return f.Encoder.Encode(obj, w)
	}
	if _, err := w.Write([]byte("a partial answer")); err != nil {
		return err
	}
	return errors.New("the encoding failed")
}

func TestAFailedEncodingWritesOnlyItsError(t *testing.T) {
	e := coalesce.Encoder(failing{encoderFor(t, codecs, runtime.ContentTypeJSON)})
	w := serve(e, false, runtime.ContentTypeJSON, configMaps(1))
	var status metav1.Status
	if err := runtime.DecodeInto(codecs.UniversalDecoder(), w.Body.Bytes(), &status); err != nil {
		t.Fatalf("the answer %q is not a Status: %v", w.Body.String(), err)
	}
	if w.Code != http.StatusInternalServerError || status.Code != http.StatusInternalServerError {
		t.Errorf("status %d (Status %d), want 500", w.Code, status.Code)
	}
}

// discard is a ResponseWriter that keeps nothing, so that a benchmark counts
// only what the encoding allocates.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkListAnswer is a 200-item list answered to a client that accepts
// gzip (as client-go does), as upstream encodes it and coalesced.
func BenchmarkListAnswer(b *testing.B) {
	list := configMaps(200)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/configmaps", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	for _, bc := range []struct {
		name string
		ns   runtime.NegotiatedSerializer
	}{{"upstream", codecs}, {"coalesced", coalesce.Serializer(codecs)}} {
		e := encoderFor(b, bc.ns, runtime.ContentTypeProtobuf)
		w := &discard{h: http.Header{}}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				responsewriters.SerializeObject(runtime.ContentTypeProtobuf, e, w, req, http.StatusOK, list)
			}
		})
	}
}
