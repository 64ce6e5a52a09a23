package main

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	corev1alpha1 "github.com/warren-dev/warren/tenancy/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/warren-dev/warren/tenancy/apis/tenancy/v1alpha1"
)

// fakeToken is the bearer token the fake server requires.
const fakeToken = "fake-token"

// workspacesResource is the resource of Workspaces, served in their parent.
var workspacesResource = tenancyv1alpha1.SchemeGroupVersion.WithResource("workspaces")

// fakeWarren fakes the few endpoints of a warren server that the plugin uses:
// Workspaces (get, list, create) in a workspace and API discovery (/api) in a
// workspace. Workspaces are keyed by path; root always exists.
type fakeWarren struct {
	mu         sync.Mutex
	workspaces map[string]*tenancyv1alpha1.Workspace
	// forbidden are the paths whose Workspaces the user may not read or create.
	forbidden map[string]bool
	// noAccess are the paths the user may not enter.
	noAccess map[string]bool
	// unavailable are the paths that answer 503 with Retry-After, as a
	// workspace that is not ready does.
	unavailable map[string]bool
	// readyAfter is how many GETs a created workspace stays Initializing for;
	// negative for ever.
	readyAfter int
	gets       map[string]int
	requests   []string
}

func newFakeWarren() *fakeWarren {
	return &fakeWarren{
		workspaces:  map[string]*tenancyv1alpha1.Workspace{},
		forbidden:   map[string]bool{},
		noAccess:    map[string]bool{},
		unavailable: map[string]bool{},
		gets:        map[string]int{},
	}
}

// add adds a workspace at path in phase.
func (f *fakeWarren) add(path string, phase corev1alpha1.LogicalClusterPhase) {
	_, name, _ := splitParent(path)
	f.workspaces[path] = &tenancyv1alpha1.Workspace{
		TypeMeta:   metav1.TypeMeta{APIVersion: tenancyv1alpha1.SchemeGroupVersion.String(), Kind: "Workspace"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       tenancyv1alpha1.WorkspaceSpec{Type: corev1alpha1.TypeReference{Name: "universal"}, Cluster: "c-" + name},
		Status:     tenancyv1alpha1.WorkspaceStatus{Phase: phase},
	}
}

// requested returns the requests served so far, as "METHOD path".
func (f *fakeWarren) requested() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *fakeWarren) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	if r.Header.Get("Authorization") != "Bearer "+fakeToken {
		writeStatus(w, apierrors.NewUnauthorized("no token"))
		return
	}
	path, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, clustersPrefix), "/")
	if !ok || (path != rootPath && f.workspaces[path] == nil) {
		writeStatus(w, apierrors.NewNotFound(workspacesResource.GroupResource(), r.URL.Path))
		return
	}
	const workspacesPath = "apis/tenancy.warren.dev/v1alpha1/workspaces"
	switch {
	case rest == "api":
		f.serveDiscovery(w, path)
	case f.forbidden[path] && strings.HasPrefix(rest, workspacesPath):
		writeStatus(w, apierrors.NewForbidden(workspacesResource.GroupResource(), "", fmt.Errorf("user may not touch workspaces in %s", path)))
	case rest == workspacesPath && r.Method == http.MethodGet:
		f.serveList(w, path)
	case rest == workspacesPath && r.Method == http.MethodPost:
		f.serveCreate(w, r, path)
	case strings.HasPrefix(rest, workspacesPath+"/") && r.Method == http.MethodGet:
		f.serveGet(w, path+separator+strings.TrimPrefix(rest, workspacesPath+"/"))
	default:
		writeStatus(w, apierrors.NewNotFound(workspacesResource.GroupResource(), r.URL.Path))
	}
}

func (f *fakeWarren) serveDiscovery(w http.ResponseWriter, path string) {
	if f.unavailable[path] {
		w.Header().Set("Retry-After", "1")
		writeStatus(w, apierrors.NewServiceUnavailable("workspace "+path+" is Initializing"))
		return
	}
	if f.noAccess[path] {
		writeStatus(w, apierrors.NewForbidden(workspacesResource.GroupResource(), "", fmt.Errorf("user may not access %s", path)))
		return
	}
	writeJSON(w, http.StatusOK, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
}

func (f *fakeWarren) serveList(w http.ResponseWriter, parent string) {
	list := tenancyv1alpha1.WorkspaceList{TypeMeta: metav1.TypeMeta{APIVersion: tenancyv1alpha1.SchemeGroupVersion.String(), Kind: "WorkspaceList"}}
	for path, ws := range f.workspaces {
		if p, _, _ := splitParent(path); p == parent {
			list.Items = append(list.Items, *ws)
		}
	}
	writeJSON(w, http.StatusOK, list)
}

func (f *fakeWarren) serveGet(w http.ResponseWriter, path string) {
	ws := f.workspaces[path]
	if ws == nil {
		_, name, _ := splitParent(path)
		writeStatus(w, apierrors.NewNotFound(workspacesResource.GroupResource(), name))
		return
	}
	f.gets[path]++
	if ws.Status.Phase == corev1alpha1.Initializing && f.readyAfter >= 0 && f.gets[path] > f.readyAfter {
		ws.Status.Phase = corev1alpha1.Ready
	}
	writeJSON(w, http.StatusOK, ws)
}

func (f *fakeWarren) serveCreate(w http.ResponseWriter, r *http.Request, parent string) {
	ws := &tenancyv1alpha1.Workspace{}
	if err := json.NewDecoder(r.Body).Decode(ws); err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	path := parent + separator + ws.Name
	switch {
	case len(validation.IsDNS1123Label(ws.Name)) > 0:
		writeStatus(w, apierrors.NewInvalid(tenancyv1alpha1.SchemeGroupVersion.WithKind("Workspace").GroupKind(), ws.Name, nil))
		return
	case f.workspaces[path] != nil:
		writeStatus(w, apierrors.NewAlreadyExists(workspacesResource.GroupResource(), ws.Name))
		return
	}
	if ws.Spec.Type.Name == "" {
		ws.Spec.Type.Name = "universal"
	}
	ws.Status.Phase = corev1alpha1.Initializing
	f.workspaces[path] = ws
	writeJSON(w, http.StatusCreated, ws)
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
// server's base URL and a kubeconfig file whose current context "warren"
// addresses the workspace at path with the token the fake requires.
func startFake(t *testing.T, f *fakeWarren, path string) (base, kubeconfigPath string) {
	t.Helper()
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	config := clientcmdapi.NewConfig()
	config.Clusters["warren"] = &clientcmdapi.Cluster{Server: srv.URL + clustersPrefix + path, CertificateAuthorityData: ca}
	config.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: fakeToken}
	config.Contexts["warren"] = &clientcmdapi.Context{Cluster: "warren", AuthInfo: "user"}
	config.CurrentContext = "warren"
	kubeconfigPath = filepath.Join(t.TempDir(), "config")
	if err := clientcmd.WriteToFile(*config, kubeconfigPath); err != nil {
		t.Fatal(err)
	}
	return srv.URL, kubeconfigPath
}

// serverOf returns the server URL of the cluster name in the kubeconfig file.
func serverOf(t *testing.T, kubeconfigPath, name string) string {
	t.Helper()
	config, err := clientcmd.LoadFromFile(kubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cluster, ok := config.Clusters[name]
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
