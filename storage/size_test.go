package storage

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/value"
)

// storedSize is the size of the pod's stored form under key: encoded, then
// transformed.
func storedSize(t *testing.T, s *Store, key string, pod *example.Pod) int {
	t.Helper()
	data, err := runtime.Encode(s.codec, pod)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.transformer.TransformToStorage(context.Background(), data, authenticatedData(key))
	if err != nil {
		t.Fatal(err)
	}
	return len(stored)
}

// podOfSize returns a pod for key whose stored form is exactly size bytes, padded
// by an annotation of its own.
func podOfSize(t *testing.T, s *Store, key, namespace, name string, size int) *example.Pod {
	t.Helper()
	pod := newPod(namespace, name)
	pod.Annotations = map[string]string{"pad": ""}
	pod.Annotations["pad"] = strings.Repeat("x", size-storedSize(t, s, key, pod))
	if got := storedSize(t, s, key, pod); got != size {
		t.Fatalf("padded pod stores %d bytes, want %d", got, size)
	}
	return pod
}

func isTooLarge(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status) && status.Status().Code == http.StatusRequestEntityTooLarge
}

func TestObjectLargerThanMaxObjectSizeIsRefused(t *testing.T) {
	const limit = 4096
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, Config{MaxObjectSize: limit})
			ctx := context.Background()
			// The limit is on the stored form: with a transformer that adds bytes,
			// an object whose encoding fits may not.
			for _, c := range []struct {
				namespace   string
				transformer value.Transformer
			}{
				{"plain", nil},
				{"transformed", newTestTransformer()},
			} {
				t.Run(c.namespace, func(t *testing.T) {
					s := podStore(t, b, c.transformer)
					get := func(key string) (*example.Pod, error) {
						out := &example.Pod{}
						return out, s.Get(ctx, key, storage.GetOptions{}, out)
					}
					unchanged := func(before int64) {
						t.Helper()
						if current, err := b.CurrentRevision(ctx); err != nil || current != before {
							t.Errorf("a refused write moved the revision from %d to %d (%v)", before, current, err)
						}
					}

					tooBig := podKey(c.namespace, "too-big")
					before, err := b.CurrentRevision(ctx)
					if err != nil {
						t.Fatal(err)
					}
					err = s.Create(ctx, tooBig, podOfSize(t, s, tooBig, c.namespace, "too-big", limit+1), &example.Pod{}, 0)
					if !isTooLarge(err) {
						t.Errorf("creating %d bytes: got %v, want 413", limit+1, err)
					}
					if _, err := get(tooBig); !storage.IsNotFound(err) {
						t.Errorf("reading the refused pod: got %v, want not found", err)
					}
					unchanged(before)

					fits := podKey(c.namespace, "fits")
					if err := s.Create(ctx, fits, podOfSize(t, s, fits, c.namespace, "fits", limit), &example.Pod{}, 0); err != nil {
						t.Fatalf("creating %d bytes: %v", limit, err)
					}
					stored, err := get(fits)
					if err != nil {
						t.Fatal(err)
					}

					updateTo := func(size int) error {
						pod := podOfSize(t, s, fits, c.namespace, "fits", size)
						return s.GuaranteedUpdate(ctx, fits, &example.Pod{}, false, nil,
							func(runtime.Object, storage.ResponseMeta) (runtime.Object, *uint64, error) {
								return pod.DeepCopy(), nil, nil
							}, nil)
					}
					before = revisionOf(t, stored)
					if err := updateTo(limit + 1); !isTooLarge(err) {
						t.Errorf("updating to %d bytes: got %v, want 413", limit+1, err)
					}
					after, err := get(fits)
					if err != nil {
						t.Fatal(err)
					}
					if after.ResourceVersion != stored.ResourceVersion || after.Annotations["pad"] != stored.Annotations["pad"] {
						t.Errorf("a refused update changed the pod: revision %s, was %s", after.ResourceVersion, stored.ResourceVersion)
					}
					unchanged(before)
					if err := updateTo(limit - 1); err != nil {
						t.Errorf("updating to %d bytes: %v", limit-1, err)
					}
				})
			}
		})
	}
}
