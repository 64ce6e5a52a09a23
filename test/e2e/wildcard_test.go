package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

const clusterAnnotation = "kcp.io/cluster"

// TestWildcard lists and watches configmaps of every cluster through
// /clusters/*, as the admin only.
func TestWildcard(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		for _, cluster := range []string{"east", "west"} {
			s.kubectl(cluster, "create", "configmap", "shared-name", "--from-literal=home="+cluster)
		}
		out := s.kubectl("*", "get", "configmaps", "-A", "-o", `jsonpath={range .items[*]}{.metadata.annotations.kcp\.io/cluster}={.data.home}{"\n"}{end}`)
		for _, cluster := range []string{"east", "west"} {
			if !strings.Contains(out, s.Workspace(cluster)+"="+cluster) {
				t.Errorf("wildcard list lacks %s's configmap, or its annotation:\n%s", cluster, out)
			}
		}
		// Forged annotations are replaced by the truth.
		s.kubectl("east", "annotate", "configmap", "shared-name", clusterAnnotation+"=west", "--overwrite")
		if got := s.kubectl("east", "get", "configmap", "shared-name", "-o", `jsonpath={.metadata.annotations.kcp\.io/cluster}`); got != s.Workspace("east") {
			t.Errorf("annotation after forging = %q, want east's logical cluster %s", got, s.Workspace("east"))
		}
		// Only list and watch, and only for the admin.
		if out, err := s.kubectlAs("", "*", "get", "configmap", "shared-name", "-n", "default"); err == nil || !strings.Contains(out, "MethodNotAllowed") {
			t.Errorf("get across clusters: %v\n%s", err, out)
		}
		s.kubectl("east", "create", "clusterrolebinding", "alice-admin", "--clusterrole=cluster-admin", "--user=alice")
		alice := clientFor(t, s.tokenConfig("alice-token", "*"))
		if _, err := alice.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("alice lists across clusters: %v", err)
		}

		// kubectl get -w across clusters sees a configmap made in a third cluster.
		watcher := exec.Command("kubectl", "--kubeconfig", s.Kubeconfig, "--server", s.ClusterURL("*"), "get", "configmaps", "-A", "-w", "-o", "name")
		watcher.Env = append(os.Environ(), "KUBECACHEDIR="+t.TempDir())
		stdout, err := watcher.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := watcher.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = watcher.Process.Kill(); _ = watcher.Wait() }()
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// The initial list comes first; then a new object.
		waitLine(t, lines, "configmap/shared-name")
		s.kubectl("north", "create", "configmap", "newcomer")
		waitLine(t, lines, "configmap/newcomer")
	})
}

func waitLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("watch ended before %q", want)
			}
			if strings.TrimSpace(line) == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %q from the watch within 20s", want)
		}
	}
}

// TestWildcardController runs a small controller built on client-go's informer
// machinery against /clusters/*: for each configmap labelled mirror=yes, in any
// cluster, it makes a secret of the same name in the same cluster and namespace.
func TestWildcardController(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := newMirror(t, s)
		go c.run(ctx)

		for _, cluster := range []string{"red", "blue"} {
			s.kubectl(cluster, "create", "configmap", "one", "--from-literal=k="+cluster)
			s.kubectl(cluster, "label", "configmap", "one", "mirror=yes")
			s.kubectl(cluster, "create", "configmap", "ignored")
		}
		for _, cluster := range []string{"red", "blue"} {
			eventually(t, "mirror secret in "+cluster, func() error {
				sec, err := s.client(cluster).CoreV1().Secrets("default").Get(ctx, "one", metav1.GetOptions{})
				if err != nil {
					return err
				}
				if got := string(sec.Data["k"]); got != cluster {
					return fmt.Errorf("secret data %q, want %q", got, cluster)
				}
				return nil
			})
			if _, err := s.client(cluster).CoreV1().Secrets("default").Get(ctx, "ignored", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("%s: unlabelled configmap mirrored: %v", cluster, err)
			}
		}
	})
}

// mirror is the controller of TestWildcardController. Its informer keys objects
// by cluster as well as namespace and name: the wildcard returns objects of
// the same name from several clusters.
type mirror struct {
	t       *testing.T
	s       *server
	mu      sync.Mutex
	clients map[string]kubernetes.Interface
	ctl     cache.Controller
	events  chan *corev1.ConfigMap
}

func clusterKey(obj any) (string, error) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d.Key, nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", err
	}
	return m.GetAnnotations()[clusterAnnotation] + "|" + m.GetNamespace() + "/" + m.GetName(), nil
}

func newMirror(t *testing.T, s *server) *mirror {
	m := &mirror{t: t, s: s, clients: map[string]kubernetes.Interface{}, events: make(chan *corev1.ConfigMap, 100)}
	all := s.client("*")
	lw := cache.NewFilteredListWatchFromClient(all.CoreV1().RESTClient(), "configmaps", "", func(o *metav1.ListOptions) {
		o.LabelSelector = "mirror=yes"
		o.FieldSelector = fields.Everything().String()
	})
	store := cache.NewIndexer(clusterKey, cache.Indexers{})
	fifo := cache.NewDeltaFIFOWithOptions(cache.DeltaFIFOOptions{KeyFunction: clusterKey, KnownObjects: store})
	m.ctl = cache.New(&cache.Config{
		Queue:         fifo,
		ListerWatcher: lw,
		ObjectType:    &corev1.ConfigMap{},
		Process: func(obj any, _ bool) error {
			for _, d := range obj.(cache.Deltas) {
				if d.Type == cache.Deleted {
					if err := store.Delete(d.Object); err != nil {
						return err
					}
					continue
				}
				if err := store.Update(d.Object); err != nil {
					return err
				}
				m.events <- d.Object.(*corev1.ConfigMap)
			}
			return nil
		},
	})
	return m
}

func (m *mirror) run(ctx context.Context) {
	go m.ctl.RunWithContext(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case cm := <-m.events:
			if err := m.reconcile(ctx, cm); err != nil {
				m.t.Errorf("reconciling %s: %v", cm.Name, err)
			}
		}
	}
}

func (m *mirror) reconcile(ctx context.Context, cm *corev1.ConfigMap) error {
	cluster := cm.Annotations[clusterAnnotation]
	if cluster == "" {
		return fmt.Errorf("configmap %s/%s has no cluster annotation", cm.Namespace, cm.Name)
	}
	m.mu.Lock()
	c, ok := m.clients[cluster]
	if !ok {
		c = clientFor(m.t, m.s.Config(cluster))
		m.clients[cluster] = c
	}
	m.mu.Unlock()
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: cm.Name, Namespace: cm.Namespace}, Data: data}
	_, err := c.CoreV1().Secrets(cm.Namespace).Create(ctx, secret, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = c.CoreV1().Secrets(cm.Namespace).Update(ctx, secret, metav1.UpdateOptions{})
	}
	return err
}
