package storage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// The fuzz targets run on a real SQLite store; `make fuzz` runs each for
// FUZZTIME, and `go test` runs their seeds and committed corpora.

// fuzzStore is a SQLite store holding a few pods in namespaces that neighbour each
// other in key order.
func fuzzStore(f *testing.F) *Store {
	b := newBackend(f, "sqlite", Config{})
	s := podStore(f, b, nil)
	for _, ns := range []string{"a", "a-b", "a0", "ab", "b"} {
		for _, name := range []string{"x", "y", "z"} {
			pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"name": name}}}
			pod.Spec.NodeName = "node-" + name
			if err := s.Create(context.Background(), "/pods/"+ns+"/"+name, pod, nil, 0); err != nil {
				f.Fatal(err)
			}
		}
	}
	return s
}

// clientError tells whether err is what a client should get for bad input: a
// Status error below 500, or a storage error the registry turns into one (not
// found, invalid).
func clientError(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code := status.Status().Code
		return code >= 400 && code < 500 || code == 504 // 504: resource version too large
	}
	return storage.IsNotFound(err) || storage.IsInvalidError(err)
}

func FuzzKey(f *testing.F) {
	s := fuzzStore(f)
	for _, seed := range []string{"/pods/a/x", "/pods/a/", "/pods", "pods/a", "/pods/../x", "/pods/a\x00b", "/pods/\xff", "/pods/a/./x", "/pods/'; drop table objects; --"} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, key string, recursive bool) {
		k, err := s.prepareKey(key, recursive)
		if err != nil {
			return
		}
		if !strings.HasPrefix(k, "/pods/") || !utf8.ValidString(k) || strings.ContainsRune(k, 0) {
			t.Fatalf("prepareKey(%q) = %q: outside the prefix, or not text SQL holds", key, k)
		}
		if recursive {
			r := prefixRange(k)
			if r.start != k || !(k+"\U0010FFFF" < r.end) {
				t.Fatalf("prefixRange(%q) = %+v does not bound the keys under it", k, r)
			}
			return
		}
		c := s.columns(k)
		if c.name == "" && !strings.HasSuffix(k, "/") {
			t.Fatalf("columns(%q) = %+v has no name", k, c)
		}
		// Every key the store accepts must reach the database and come back as
		// absent or present, never as a database error.
		if err := s.Get(context.Background(), key, storage.GetOptions{}, &example.Pod{}); err != nil && !storage.IsNotFound(err) {
			t.Fatalf("Get(%q): %v", key, err)
		}
	})
}

func FuzzContinueToken(f *testing.F) {
	s := fuzzStore(f)
	first := &example.PodList{}
	pred := storage.Everything
	pred.Limit = 2
	if err := s.GetList(context.Background(), "/pods/", storage.ListOptions{Recursive: true, Predicate: pred}, first); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{first.Continue, "", "x", "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MSwic3RhcnQiOiIuLiJ9", "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6LTEsInN0YXJ0IjoiYVx1MDAwMCJ9"} {
		f.Add(seed, "/pods/")
		f.Add(seed, "/pods/a/")
	}
	f.Fuzz(func(t *testing.T, token, prefix string) {
		pred := storage.Everything
		pred.Limit, pred.Continue = 2, token
		list := &example.PodList{}
		err := s.GetList(context.Background(), prefix, storage.ListOptions{Recursive: true, Predicate: pred}, list)
		if err != nil {
			if !clientError(err) && !strings.Contains(err.Error(), "invalid key") && !strings.Contains(err.Error(), "empty key") && !strings.Contains(err.Error(), "lacks resource prefix") {
				t.Fatalf("GetList(%q, continue %q): %v", prefix, token, err)
			}
			return
		}
		k, _ := s.prepareKey(prefix, true)
		for _, pod := range list.Items {
			if key := "/pods/" + pod.Namespace + "/" + pod.Name; !strings.HasPrefix(key, k) {
				t.Fatalf("GetList(%q, continue %q) returned %s", prefix, token, key)
			}
		}
	})
}

func FuzzResourceVersion(f *testing.F) {
	s := fuzzStore(f)
	for _, seed := range []string{"", "0", "1", "5", "18446744073709551615", "-1", "abc", "1e3", " 1"} {
		for match := range 3 {
			f.Add(seed, uint8(match))
		}
	}
	matches := []metav1.ResourceVersionMatch{"", metav1.ResourceVersionMatchNotOlderThan, metav1.ResourceVersionMatchExact}
	f.Fuzz(func(t *testing.T, rv string, match uint8) {
		ctx := context.Background()
		opts := storage.ListOptions{ResourceVersion: rv, ResourceVersionMatch: matches[int(match)%len(matches)], Recursive: true, Predicate: storage.Everything}
		if err := s.GetList(ctx, "/pods/", opts, &example.PodList{}); err != nil && !clientError(err) {
			t.Fatalf("GetList at %q (%s): %v", rv, opts.ResourceVersionMatch, err)
		}
		if err := s.Get(ctx, "/pods/a/x", storage.GetOptions{ResourceVersion: rv}, &example.Pod{}); err != nil && !clientError(err) {
			t.Fatalf("Get at %q: %v", rv, err)
		}
		w, err := s.Watch(ctx, "/pods/", storage.ListOptions{ResourceVersion: rv, Recursive: true, Predicate: storage.Everything})
		if err != nil {
			if !clientError(err) {
				t.Fatalf("Watch from %q: %v", rv, err)
			}
			return
		}
		w.Stop()
	})
}

func FuzzSelectors(f *testing.F) {
	s := fuzzStore(f)
	for _, seed := range [][2]string{{"", ""}, {"name=x", ""}, {"name in (x,y)", "spec.nodeName=node-z"}, {"!name", "metadata.name!=x"}, {"name notin (x)", "metadata.namespace=a"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, label, field string) {
		ls, err := labels.Parse(label)
		if err != nil {
			return
		}
		fs, err := fields.ParseSelector(field)
		if err != nil {
			return
		}
		pred := storage.SelectionPredicate{Label: ls, Field: fs, GetAttrs: podAttrs, Limit: 2}
		for token := ""; ; {
			pred.Continue = token
			list := &example.PodList{}
			if err := s.GetList(context.Background(), "/pods/", storage.ListOptions{Recursive: true, Predicate: pred}, list); err != nil {
				t.Fatalf("GetList with %q and %q: %v", label, field, err)
			}
			for i := range list.Items {
				if ok, err := pred.Matches(&list.Items[i]); err != nil || !ok {
					t.Fatalf("GetList with %q and %q returned %s/%s, which does not match", label, field, list.Items[i].Namespace, list.Items[i].Name)
				}
			}
			if token = list.Continue; token == "" {
				return
			}
		}
	})
}

// podAttrs are the labels and fields of an example pod, as upstream's tests use.
func podAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	pod := obj.(*example.Pod)
	return pod.Labels, fields.Set{
		"metadata.name":      pod.Name,
		"metadata.namespace": pod.Namespace,
		"spec.nodeName":      pod.Spec.NodeName,
	}, nil
}
