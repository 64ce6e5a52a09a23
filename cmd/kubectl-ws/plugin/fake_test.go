package plugin

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// fakeToken is the bearer token the fake server requires.
const fakeToken = "fake-token"

// homeCluster is the logical-cluster name of the user's home workspace on the
// fake server, which "~" resolves to.
const homeCluster = "2x7k9q"

var workspacesResource = tenancyv1alpha1.SchemeGroupVersion.WithResource("workspaces").GroupResource()

// fakeKCP fakes the endpoints of a kcp server that the plugins use, with
// kcp's answers: discovery, Workspaces (get, list, create) and "~" in a
// workspace, APIBindings and the LogicalCluster. Workspaces are keyed by path;
// root and the home workspace always exist.
type fakeKCP struct {
	mu         sync.Mutex
	workspaces map[string]*tenancyv1alpha1.Workspace
	// created are the bodies of the creates, before any defaulting.
	created map[string]*tenancyv1alpha1.Workspace
	// forbidden are the workspaces whose Workspaces the user may not touch.
	forbidden map[string]bool
	// noAccess are the workspaces whose discovery the user may not read.
	noAccess map[string]bool
	// denyUnknown answers 403 instead of 404 for a workspace that does not
	// exist, as a server does that does not tell strangers what exists.
	denyUnknown bool
	// homeBusy is how many more GETs of "~" answer 429, as while the home
	// workspace is being created.
	homeBusy int
	// readyAfter is how many GETs a created workspace stays Initializing for.
	readyAfter int
	bindings   map[string][]apisv1alpha2.APIBinding
	gets       map[string]int
	requests   []string
}

func newFakeKCP() *fakeKCP {
	return &fakeKCP{
		workspaces: map[string]*tenancyv1alpha1.Workspace{},
		created:    map[string]*tenancyv1alpha1.Workspace{},
		forbidden:  map[string]bool{},
		noAccess:   map[string]bool{},
		bindings:   map[string][]apisv1alpha2.APIBinding{},
		gets:       map[string]int{},
	}
}

// add adds a Ready workspace at path of type root:universal.
func (f *fakeKCP) add(path string) *tenancyv1alpha1.Workspace {
	name := path[strings.LastIndex(path, ":")+1:]
	ws := &tenancyv1alpha1.Workspace{
		TypeMeta:   metav1.TypeMeta{APIVersion: tenancyv1alpha1.SchemeGroupVersion.String(), Kind: "Workspace"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: tenancyv1alpha1.WorkspaceSpec{
			Type:    &tenancyv1alpha1.WorkspaceTypeReference{Name: "universal", Path: "root"},
			Cluster: "c-" + name,
			URL:     clustersPrefix + path,
		},
		Status: tenancyv1alpha1.WorkspaceStatus{Phase: corev1alpha1.LogicalClusterPhaseReady},
	}
	f.workspaces[path] = ws
	return ws
}

// requested returns the requests served so far, as "METHOD path".
func (f *fakeKCP) requested() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *fakeKCP) exists(path string) bool {
	return path == "root" || path == homeCluster || f.workspaces[path] != nil
}

func (f *fakeKCP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	if r.Header.Get("Authorization") != "Bearer "+fakeToken {
		writeStatus(w, apierrors.NewUnauthorized("no token"))
		return
	}
	path, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, clustersPrefix), "/")
	if !ok || !strings.HasPrefix(r.URL.Path, clustersPrefix) || !f.exists(path) {
		if f.denyUnknown {
			writeStatus(w, apierrors.NewForbidden(workspacesResource, path, fmt.Errorf("access denied")))
			return
		}
		writeStatus(w, apierrors.NewNotFound(workspacesResource, path))
		return
	}
	const workspaces = "apis/tenancy.kcp.io/v1alpha1/workspaces"
	switch {
	case (rest == "api" || rest == "apis") && f.noAccess[path]:
		writeStatus(w, apierrors.NewForbidden(workspacesResource, "", fmt.Errorf("user may not access %s", path)))
	case rest == "api":
		writeJSON(w, http.StatusOK, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
	case rest == "apis":
		gv := metav1.GroupVersionForDiscovery{GroupVersion: tenancyv1alpha1.SchemeGroupVersion.String(), Version: "v1alpha1"}
		writeJSON(w, http.StatusOK, metav1.APIGroupList{
			TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
			Groups:   []metav1.APIGroup{{Name: tenancyv1alpha1.SchemeGroupVersion.Group, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv}},
		})
	case f.forbidden[path] && strings.HasPrefix(rest, workspaces):
		writeStatus(w, apierrors.NewForbidden(workspacesResource, "", fmt.Errorf("user may not touch workspaces in %s", path)))
	case rest == workspaces+"/~" && path == "root" && r.Method == http.MethodGet:
		f.serveHome(w, r)
	case rest == workspaces && r.Method == http.MethodGet:
		f.serveList(w, r, path)
	case rest == workspaces && r.Method == http.MethodPost:
		f.serveCreate(w, r, path)
	case strings.HasPrefix(rest, workspaces+"/") && r.Method == http.MethodGet:
		f.serveGet(w, r, path+":"+strings.TrimPrefix(rest, workspaces+"/"))
	case rest == "apis/apis.kcp.io/v1alpha2/apibindings" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, apisv1alpha2.APIBindingList{Items: f.bindings[path]})
	case rest == "apis/core.kcp.io/v1alpha1/logicalclusters/cluster" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, corev1alpha1.LogicalCluster{
			ObjectMeta: metav1.ObjectMeta{Name: "cluster"},
			Status:     corev1alpha1.LogicalClusterStatus{Phase: corev1alpha1.LogicalClusterPhaseReady},
		})
	default:
		writeStatus(w, apierrors.NewNotFound(workspacesResource, r.URL.Path))
	}
}

// withURL returns a copy of ws whose spec.URL is absolute on the server r
// was sent to.
func withURL(r *http.Request, ws *tenancyv1alpha1.Workspace) *tenancyv1alpha1.Workspace {
	ws = ws.DeepCopy()
	if strings.HasPrefix(ws.Spec.URL, "/") {
		ws.Spec.URL = "https://" + r.Host + ws.Spec.URL
	}
	return ws
}

func (f *fakeKCP) serveHome(w http.ResponseWriter, r *http.Request) {
	if f.homeBusy > 0 {
		f.homeBusy--
		w.Header().Set("Retry-After", "1")
		writeStatus(w, apierrors.NewTooManyRequests("home workspace is being created", 1))
		return
	}
	writeJSON(w, http.StatusOK, withURL(r, &tenancyv1alpha1.Workspace{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster"},
		Spec:       tenancyv1alpha1.WorkspaceSpec{Cluster: homeCluster, URL: clustersPrefix + homeCluster},
		Status:     tenancyv1alpha1.WorkspaceStatus{Phase: corev1alpha1.LogicalClusterPhaseReady},
	}))
}

func (f *fakeKCP) serveList(w http.ResponseWriter, r *http.Request, parent string) {
	list := tenancyv1alpha1.WorkspaceList{TypeMeta: metav1.TypeMeta{APIVersion: tenancyv1alpha1.SchemeGroupVersion.String(), Kind: "WorkspaceList"}}
	for path, ws := range f.workspaces {
		if path[:strings.LastIndex(path, ":")] == parent {
			list.Items = append(list.Items, *withURL(r, ws))
		}
	}
	// The server lists in name order, as the tree then is.
	sortWorkspaces(list.Items)
	writeJSON(w, http.StatusOK, list)
}

func (f *fakeKCP) serveGet(w http.ResponseWriter, r *http.Request, path string) {
	ws := f.workspaces[path]
	if ws == nil {
		writeStatus(w, apierrors.NewNotFound(workspacesResource, path[strings.LastIndex(path, ":")+1:]))
		return
	}
	f.gets[path]++
	if ws.Status.Phase != corev1alpha1.LogicalClusterPhaseReady && f.gets[path] > f.readyAfter {
		ws.Status.Phase = corev1alpha1.LogicalClusterPhaseReady
	}
	writeJSON(w, http.StatusOK, withURL(r, ws))
}

func (f *fakeKCP) serveCreate(w http.ResponseWriter, r *http.Request, parent string) {
	ws := &tenancyv1alpha1.Workspace{}
	if err := json.NewDecoder(r.Body).Decode(ws); err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	path := parent + ":" + ws.Name
	switch {
	case len(validation.IsDNS1123Label(ws.Name)) > 0:
		writeStatus(w, apierrors.NewInvalid(tenancyv1alpha1.SchemeGroupVersion.WithKind("Workspace").GroupKind(), ws.Name, nil))
		return
	case f.workspaces[path] != nil:
		writeStatus(w, apierrors.NewAlreadyExists(workspacesResource, ws.Name))
		return
	}
	f.created[path] = ws.DeepCopy()
	// Like kcp's admission, the server fills in the type and its path.
	if ws.Spec.Type == nil {
		ws.Spec.Type = &tenancyv1alpha1.WorkspaceTypeReference{Name: "universal"}
	}
	if ws.Spec.Type.Path == "" {
		ws.Spec.Type.Path = "root"
	}
	ws.Spec.URL = clustersPrefix + path
	ws.Status.Phase = corev1alpha1.LogicalClusterPhaseScheduling
	f.workspaces[path] = ws
	writeJSON(w, http.StatusCreated, withURL(r, ws))
}

func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	status := err.Status()
	status.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}
	writeJSON(w, int(status.Code), status)
}

func writeJSON(w http.ResponseWriter, code int, obj any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(obj)
}

// startFake serves f over TLS for the test's duration and returns the
// server's base URL and a kubeconfig file whose current context "kcp"
// addresses the workspace at path with the token the fake requires.
func startFake(t *testing.T, f *fakeKCP, path string) (base, kubeconfigPath string) {
	t.Helper()
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	config := clientcmdapi.NewConfig()
	config.Clusters["kcp"] = &clientcmdapi.Cluster{Server: srv.URL + clustersPrefix + path, CertificateAuthorityData: ca}
	config.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: fakeToken}
	config.Contexts["kcp"] = &clientcmdapi.Context{Cluster: "kcp", AuthInfo: "user"}
	config.CurrentContext = "kcp"
	kubeconfigPath = filepath.Join(t.TempDir(), "config")
	if err := clientcmd.WriteToFile(*config, kubeconfigPath); err != nil {
		t.Fatal(err)
	}
	return srv.URL, kubeconfigPath
}

// loadConfig loads the kubeconfig file at path.
func loadConfig(t *testing.T, path string) *clientcmdapi.Config {
	t.Helper()
	config, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return config
}

// serverOf returns the server URL of the cluster that the context name uses
// in the kubeconfig file, or "" if there is none.
func serverOf(t *testing.T, kubeconfigPath, name string) string {
	t.Helper()
	config := loadConfig(t, kubeconfigPath)
	context, ok := config.Contexts[name]
	if !ok {
		return ""
	}
	cluster, ok := config.Clusters[context.Cluster]
	if !ok {
		return ""
	}
	return cluster.Server
}

// readFile returns the content of the file at path.
func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func sortWorkspaces(items []tenancyv1alpha1.Workspace) {
	slices.SortFunc(items, func(a, b tenancyv1alpha1.Workspace) int { return strings.Compare(a.Name, b.Name) })
}
