package storage

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// hostileNames are namespaces and names that break SQL built by string pasting,
// LIKE patterns, escaping and byte-unaware collations.
var hostileNames = []string{
	"'; drop table objects; --",
	`"; drop table log; --`,
	"%", "_", "a%b_c", `\`, `a\b`, `a\%b`, "'", `"`, "''", "$1", "?1", "*", "[ab]",
	"ünïcødé-名前", "emoji-🦫", "with space", "tab\there", "new\nline", "\u00a0nbsp", "\u200bzero-width",
}

// listNames lists a key and returns the namespace/name of every item.
func listNames(t *testing.T, s *Store, key string, recursive bool, limit int64) []string {
	t.Helper()
	var names []string
	opts := storage.ListOptions{Recursive: recursive, Predicate: storage.Everything}
	opts.Predicate.Limit = limit
	for {
		list := &example.PodList{}
		if err := s.GetList(context.Background(), key, opts, list); err != nil {
			t.Fatalf("listing %q: %v", key, err)
		}
		for _, pod := range list.Items {
			names = append(names, pod.Namespace+"/"+pod.Name)
		}
		if list.Continue == "" {
			return names
		}
		opts.Predicate.Continue = list.Continue
	}
}

func TestHostileNamesRoundTripByteIdentical(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, Config{})
			s := podStore(t, b, nil)
			ctx := context.Background()

			// Every hostile string as a namespace and as a name, beside plain ones.
			type object struct{ namespace, name string }
			var objects []object
			for _, h := range hostileNames {
				objects = append(objects, object{h, h}, object{h, "plain"}, object{"plain", h})
			}
			byNamespace := map[string][]string{}
			var all []string
			for _, o := range objects {
				pod := newPod(o.namespace, o.name)
				pod.Annotations = map[string]string{"copy": o.namespace + "|" + o.name}
				if err := s.Create(ctx, podKey(o.namespace, o.name), pod, nil, 0); err != nil {
					t.Fatalf("creating %q: %v", podKey(o.namespace, o.name), err)
				}
				byNamespace[o.namespace] = append(byNamespace[o.namespace], o.namespace+"/"+o.name)
				all = append(all, o.namespace+"/"+o.name)
			}

			for _, o := range objects {
				got := &example.Pod{}
				if err := s.Get(ctx, podKey(o.namespace, o.name), storage.GetOptions{}, got); err != nil {
					t.Fatalf("reading %q: %v", podKey(o.namespace, o.name), err)
				}
				if got.Namespace != o.namespace || got.Name != o.name || got.Annotations["copy"] != o.namespace+"|"+o.name {
					t.Errorf("%q read back as %q/%q with annotation %q", podKey(o.namespace, o.name), got.Namespace, got.Name, got.Annotations["copy"])
				}
			}
			for namespace, want := range byNamespace {
				slices.Sort(want)
				if got := listNames(t, s, "/pods/"+namespace, true, 0); !slices.Equal(got, want) {
					t.Errorf("listing namespace %q: got %q, want %q", namespace, got, want)
				}
			}
			// Pages of one object carry every hostile key in a continue token;
			// the pages together are the whole list in key order.
			slices.SortFunc(all, func(x, y string) int { return strings.Compare(objectKey(x), objectKey(y)) })
			if got := listNames(t, s, "/pods/", true, 1); !slices.Equal(got, all) {
				t.Errorf("listing everything page by page: got %q, want %q", got, all)
			}
		})
	}
}

// objectKey is the key of a pod written namespace/name.
func objectKey(namespacedName string) string {
	namespace, name, _ := strings.Cut(namespacedName, "/")
	return podKey(namespace, name)
}

// writeNeighbours creates pods around namespace "ns": pod a in each of
// neighbourNamespaces, a second pod in ns and in ns2, and the cluster-scoped pod
// whose key is the prefix of ns without its slash. It returns their changes in
// the order written.
func writeNeighbours(ctx context.Context, t *testing.T, s *Store) []change {
	t.Helper()
	var changes []change
	create := func(namespace, name string) {
		changes = append(changes, change{watch.Added, namespace + "/" + name, revisionOf(t, createPod(ctx, t, s, namespace, name))})
	}
	// Namespaces whose keys sort next to those of "ns", and namespaces that, read
	// as LIKE patterns, match it.
	for _, namespace := range []string{"ns", "ns2", "ns-a", "ns.a", "ns0", "nsa", "n", "n_", "ns%", "n%", `ns\`, "ns ", "nś"} {
		create(namespace, "a")
	}
	create("", "ns")
	create("ns", "b")
	create("ns2", "b")
	return changes
}

func TestPrefixListExcludesNeighbours(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, Config{})
			s := podStore(t, b, nil)
			writeNeighbours(context.Background(), t, s)
			for _, c := range []struct {
				key       string
				recursive bool
				want      []string
			}{
				{"/pods/ns", true, []string{"ns/a", "ns/b"}},
				{"/pods/ns/", true, []string{"ns/a", "ns/b"}},
				{"/pods/n_", true, []string{"n_/a"}},
				{"/pods/ns%", true, []string{"ns%/a"}},
				{"/pods/n%", true, []string{"n%/a"}},
				{`/pods/ns\`, true, []string{`ns\/a`}},
				{"/pods/n", true, []string{"n/a"}},
				{"/pods/ns", false, []string{"/ns"}},
				{"/pods/ns/a", false, []string{"ns/a"}},
				{"/pods/n_/a", false, []string{"n_/a"}},
			} {
				for _, limit := range []int64{0, 1} {
					got := listNames(t, s, c.key, c.recursive, limit)
					if !slices.Equal(got, c.want) {
						t.Errorf("listing %q (recursive %v, limit %d): got %q, want %q", c.key, c.recursive, limit, got, c.want)
					}
				}
			}
		})
	}
}

func TestPrefixWatchExcludesNeighbours(t *testing.T) {
	namespaces := []string{"ns", "n_", "ns%", "n%", `ns\`, "n"}
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, Config{})
			s := podStore(t, b, nil)
			ctx := context.Background()
			// Watchers registered before the writes get them from the hub's
			// dispatch; watchers opened after them read them from the log. Both
			// must tell a namespace from its neighbours.
			fromHub := make([]watch.Interface, len(namespaces))
			for i, namespace := range namespaces {
				fromHub[i] = watchFrom(t, s, "/pods/"+namespace, 1)
			}
			waitRegistered(t, b.hub, len(namespaces))
			written := writeNeighbours(ctx, t, s)
			fromLog := make([]watch.Interface, len(namespaces))
			for i, namespace := range namespaces {
				fromLog[i] = watchFrom(t, s, "/pods/"+namespace, 1)
			}
			// A sentinel in each namespace ends what its watchers may see.
			for _, namespace := range namespaces {
				written = append(written, change{watch.Added, namespace + "/sentinel", revisionOf(t, createPod(ctx, t, s, namespace, "sentinel"))})
			}
			for i, namespace := range namespaces {
				var want []change
				for _, c := range written {
					if strings.HasPrefix(c.key, namespace+"/") {
						want = append(want, c)
					}
				}
				t.Run(namespace, func(t *testing.T) {
					expectChanges(t, fromHub[i], want)
					expectChanges(t, fromLog[i], want)
				})
			}
		})
	}
}

func continueToken(json string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(json))
}

func TestMalformedContinueTokensAreRefused(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, Config{})
			s := podStore(t, b, nil)
			ctx := context.Background()
			for _, namespace := range []string{"a", "b"} {
				for _, name := range []string{"x", "y"} {
					createPod(ctx, t, s, namespace, name)
				}
			}
			for _, c := range []struct {
				name  string
				token string
				want  func(error) bool
			}{
				{"not base64", "%%%garbage%%%", apierrors.IsBadRequest},
				{"base64 of garbage", continueToken("garbage"), apierrors.IsBadRequest},
				{"base64 of a JSON array", continueToken("[1,2]"), apierrors.IsBadRequest},
				{"base64 of truncated JSON", continueToken(`{"v":"meta.k8s.io/v1","rv":2,"start":"x`), apierrors.IsBadRequest},
				{"unknown version", continueToken(`{"v":"meta.k8s.io/v0","rv":2,"start":"x"}`), apierrors.IsBadRequest},
				{"zero revision", continueToken(`{"v":"meta.k8s.io/v1","rv":0,"start":"x"}`), apierrors.IsBadRequest},
				{"revision as text", continueToken(`{"v":"meta.k8s.io/v1","rv":"2","start":"x"}`), apierrors.IsBadRequest},
				{"empty start", continueToken(`{"v":"meta.k8s.io/v1","rv":2,"start":""}`), apierrors.IsBadRequest},
				{"start escaping the prefix", continueToken(`{"v":"meta.k8s.io/v1","rv":2,"start":"../b/x"}`), apierrors.IsBadRequest},
				{"start escaping the prefix from inside", continueToken(`{"v":"meta.k8s.io/v1","rv":2,"start":"x/../../b/x"}`), apierrors.IsBadRequest},
				{"future revision", continueToken(`{"v":"meta.k8s.io/v1","rv":1000000,"start":"x"}`), storage.IsTooLargeResourceVersion},
				{"largest revision", continueToken(`{"v":"meta.k8s.io/v1","rv":9223372036854775807,"start":"x"}`), storage.IsTooLargeResourceVersion},
			} {
				t.Run(c.name, func(t *testing.T) {
					opts := storage.ListOptions{Recursive: true, Predicate: storage.Everything}
					opts.Predicate.Limit = 1
					opts.Predicate.Continue = c.token
					err := s.GetList(ctx, "/pods/a/", opts, &example.PodList{})
					if !c.want(err) {
						t.Errorf("got %v, want the error it names", err)
					}
				})
			}

			// A valid token of another prefix is only a start key: it must not
			// let the list reach outside the prefix it is used with.
			t.Run("token of another prefix", func(t *testing.T) {
				opts := storage.ListOptions{Recursive: true, Predicate: storage.Everything}
				opts.Predicate.Limit = 1
				first := &example.PodList{}
				if err := s.GetList(ctx, "/pods/a/", opts, first); err != nil || first.Continue == "" {
					t.Fatalf("listing the first page: %v (continue %q)", err, first.Continue)
				}
				opts.Predicate.Limit = 0
				opts.Predicate.Continue = first.Continue
				list := &example.PodList{}
				if err := s.GetList(ctx, "/pods/b/", opts, list); err != nil {
					return
				}
				for _, pod := range list.Items {
					if pod.Namespace != "b" {
						t.Errorf("listing /pods/b/ returned %s/%s", pod.Namespace, pod.Name)
					}
				}
			})
		})
	}
}

func TestInvalidKeysAreRefused(t *testing.T) {
	keys := []struct{ name, key string }{
		{"empty", ""},
		{"outside the resource prefix", "/secrets/ns/a"},
		{"sharing the prefix without its slash", "/podsx/ns/a"},
		{"relative", "pods/ns/a"},
		{"escaping the prefix", "/pods/../secrets/a"},
		{"dot segment", "/pods/./a"},
		{"invalid UTF-8", "/pods/ns/\xff\xfe"},
		{"invalid UTF-8 in the namespace", "/pods/\xc3/a"},
		{"NUL", "/pods/ns/a\x00b"},
		{"NUL in the namespace", "/pods/n\x00s/a"},
	}
	update := func(obj runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
		return obj, nil, nil
	}
	ops := []struct {
		name string
		do   func(ctx context.Context, s *Store, key string) error
	}{
		{"Create", func(ctx context.Context, s *Store, key string) error {
			return s.Create(ctx, key, newPod("ns", "a"), &example.Pod{}, 0)
		}},
		{"Get", func(ctx context.Context, s *Store, key string) error {
			return s.Get(ctx, key, storage.GetOptions{IgnoreNotFound: true}, &example.Pod{})
		}},
		{"GuaranteedUpdate", func(ctx context.Context, s *Store, key string) error {
			return s.GuaranteedUpdate(ctx, key, &example.Pod{}, true, nil, update, nil)
		}},
		{"Delete", func(ctx context.Context, s *Store, key string) error {
			return s.Delete(ctx, key, &example.Pod{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{})
		}},
		{"GetList", func(ctx context.Context, s *Store, key string) error {
			return s.GetList(ctx, key, storage.ListOptions{Predicate: storage.Everything}, &example.PodList{})
		}},
		{"recursive GetList", func(ctx context.Context, s *Store, key string) error {
			return s.GetList(ctx, key, storage.ListOptions{Recursive: true, Predicate: storage.Everything}, &example.PodList{})
		}},
		{"Watch", func(ctx context.Context, s *Store, key string) error {
			w, err := s.Watch(ctx, key, storage.ListOptions{ResourceVersion: "1", Predicate: storage.Everything})
			if err == nil {
				w.Stop()
			}
			return err
		}},
		{"recursive Watch", func(ctx context.Context, s *Store, key string) error {
			w, err := s.Watch(ctx, key, storage.ListOptions{ResourceVersion: "1", Recursive: true, Predicate: storage.Everything})
			if err == nil {
				w.Stop()
			}
			return err
		}},
	}
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, Config{})
			s := podStore(t, b, nil)
			ctx := context.Background()
			for _, k := range keys {
				for _, op := range ops {
					if err := op.do(ctx, s, k.key); err == nil {
						t.Errorf("%s of %s key %q succeeded", op.name, k.name, k.key)
					}
				}
			}
			// Nothing reached the database: no revision, no row anywhere.
			current, err := b.CurrentRevision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pg, err := b.db.list(ctx, listQuery{r: keyRange{start: "", end: "\U0010FFFF"}})
			if err != nil {
				t.Fatal(err)
			}
			if current != 1 || len(pg.rows) != 0 {
				t.Errorf("after refused writes the shard is at revision %d with %d rows, want 1 and none", current, len(pg.rows))
			}
		})
	}
}
