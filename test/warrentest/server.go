package warrentest

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/test/pgtest"
)

// T is the part of testing.TB that a Server uses; *testing.T and *testing.B
// are one.
type T interface {
	pgtest.T
	TempDir() string
	Logf(format string, args ...any)
	Failed() bool
}

// Storage returns the arguments that put a server on dialect: "sqlite", the
// default file in its data directory, or "postgres", a schema of its own of
// the test PostgreSQL, dropped when the test ends.
func Storage(t T, dialect string) []string {
	if dialect != "postgres" {
		return nil
	}
	return []string{"--storage", pgtest.URL(), "--shard", pgtest.Schema(t, "test_")}
}

// Server is a Process owned by a test: its methods fail the test instead of
// returning errors.
type Server struct {
	*Process
	t T

	mu sync.Mutex
	// workspaces are the logical clusters of the workspaces Workspace made.
	workspaces map[string]string
}

// Start starts binary with a fresh data directory and extra arguments, waits
// until it is ready, and stops it when the test ends.
func Start(t T, binary string, extra ...string) *Server {
	t.Helper()
	p, err := StartProcess(binary, filepath.Join(t.TempDir(), "data"), extra...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return Adopt(t, p)
}

// Adopt makes p, started by the test, a Server stopped when the test ends.
func Adopt(t T, p *Process) *Server {
	s := &Server{Process: p, t: t}
	t.Cleanup(s.Stop)
	return s
}

// Launch starts the process again and waits until it is ready.
func (s *Server) Launch() {
	s.t.Helper()
	if err := s.Process.Launch(); err != nil {
		s.t.Fatalf("%v", err)
	}
}

// Stop stops the process gracefully, and shows its log if the test failed.
// The test fails if client-go's mutation detector, when on
// (KUBE_CACHE_MUTATION_DETECTOR), found an object held by a cache changed.
func (s *Server) Stop() {
	if err := s.Process.Stop(); err != nil {
		s.t.Errorf("%v", err)
	}
	if strings.Contains(s.Log(), "ALTERED!") {
		s.t.Errorf("an object held by a cache of warren's was changed by its reader")
	}
	if s.t.Failed() {
		s.t.Logf("warren's log:\n%s", s.Log())
	}
}

// Restart stops the process gracefully and starts it again on the same data.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.Process.Restart(); err != nil {
		s.t.Fatalf("%v", err)
	}
}

// ClusterURL is the server URL of a workspace: a path (root:a:b), a logical
// cluster name the server assigned, the wildcard "*", or any other name, which
// is the child of root of that name, made by Workspace on first use.
func (s *Server) ClusterURL(cluster string) string {
	s.t.Helper()
	return s.URL("/clusters/" + s.address(cluster))
}

func (s *Server) address(cluster string) string {
	s.mu.Lock()
	_, made := s.workspaces[cluster]
	assigned := false
	for _, c := range s.workspaces {
		assigned = assigned || c == cluster
	}
	s.mu.Unlock()
	if cluster == "*" || tenancy.IsPath(cluster) || assigned {
		return cluster
	}
	if !made {
		s.Workspace(cluster)
	}
	return string(tenancy.RootPath.Join(cluster))
}

// Config is a client-go configuration for cluster (as ClusterURL takes it), as
// the admin.
func (s *Server) Config(cluster string) *rest.Config {
	s.t.Helper()
	cfg, err := s.AdminConfig(s.address(cluster))
	if err != nil {
		s.t.Fatalf("%v", err)
	}
	return cfg
}

// Workspace makes the child name of root, as the admin, waits until it is
// Ready, lets every authenticated user enter it (what they may do inside is its
// RBAC), and returns its logical cluster's name. It does so once per name.
func (s *Server) Workspace(name string) string {
	s.t.Helper()
	s.mu.Lock()
	cluster, ok := s.workspaces[name]
	s.mu.Unlock()
	if ok {
		return cluster
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cluster, err := s.CreateWorkspace(ctx, name)
	if err != nil {
		s.t.Fatalf("%v", err)
	}
	s.openToAll(ctx, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.workspaces == nil {
		s.workspaces = map[string]string{}
	}
	s.workspaces[name] = cluster
	return cluster
}

// openToAll lets every authenticated user enter root's child name: its RBAC
// binds them kcp's role granting "access" on "/".
func (s *Server) openToAll(ctx context.Context, name string) {
	s.t.Helper()
	cfg, err := s.AdminConfig(string(tenancy.RootPath.Join(name)))
	if err != nil {
		s.t.Fatalf("%v", err)
	}
	inside, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		s.t.Fatalf("access to workspace %s: %v", name, err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "everyone-enters"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:kcp:workspace:access"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: user.AllAuthenticated}},
	}
	if _, err := inside.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		s.t.Fatalf("access to workspace %s: %v", name, err)
	}
}
