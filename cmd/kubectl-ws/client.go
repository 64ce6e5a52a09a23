package main

import (
	"context"
	"fmt"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	corev1alpha1 "github.com/warren-dev/warren/tenancy/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/warren-dev/warren/tenancy/apis/tenancy/v1alpha1"
)

// workspacesResource is the resource of Workspaces, served in their parent.
var workspacesResource = tenancyv1alpha1.SchemeGroupVersion.WithResource("workspaces")

// server is a client of the workspaces of one warren server. Its methods
// return the client's errors wrapped, so that apierrors can classify them.
type server struct {
	base   string
	config *rest.Config
	client *http.Client
}

// newServer returns a client of the server at base, with config's credentials
// and TLS settings; config's own host is not used.
func newServer(config *rest.Config, base string) (*server, error) {
	client, err := rest.HTTPClientFor(config)
	if err != nil {
		return nil, fmt.Errorf("HTTP client for %s: %w", base, err)
	}
	return &server{base: base, config: config, client: client}, nil
}

// configFor returns the client configuration addressing the workspace at path.
func (s *server) configFor(path string) *rest.Config {
	config := rest.CopyConfig(s.config)
	config.Host = location{base: s.base, path: path}.serverURL()
	return config
}

// workspaces returns the client of the Workspaces in the workspace at path.
func (s *server) workspaces(path string) (dynamic.ResourceInterface, error) {
	client, err := dynamic.NewForConfigAndClient(s.configFor(path), s.client)
	if err != nil {
		return nil, fmt.Errorf("client of workspace %q: %w", path, err)
	}
	return client.Resource(workspacesResource), nil
}

// getWorkspace reads the Workspace name in the workspace at parent.
func (s *server) getWorkspace(ctx context.Context, parent, name string) (*tenancyv1alpha1.Workspace, error) {
	workspaces, err := s.workspaces(parent)
	if err != nil {
		return nil, err
	}
	obj, err := workspaces.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("getting workspace %q in %q: %w", name, parent, err)
	}
	ws := &tenancyv1alpha1.Workspace{}
	if err := fromUnstructured(obj.UnstructuredContent(), ws); err != nil {
		return nil, err
	}
	return ws, nil
}

// listWorkspaces reads the Workspaces in the workspace at path.
func (s *server) listWorkspaces(ctx context.Context, path string) ([]tenancyv1alpha1.Workspace, error) {
	workspaces, err := s.workspaces(path)
	if err != nil {
		return nil, err
	}
	list, err := workspaces.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing workspaces in %q: %w", path, err)
	}
	result := &tenancyv1alpha1.WorkspaceList{}
	if err := fromUnstructured(list.UnstructuredContent(), result); err != nil {
		return nil, err
	}
	return result.Items, nil
}

// createWorkspace creates the Workspace name of type typ in the workspace at
// parent and returns it as the server stored it.
func (s *server) createWorkspace(ctx context.Context, parent, name string, typ corev1alpha1.TypeReference) (*tenancyv1alpha1.Workspace, error) {
	workspaces, err := s.workspaces(parent)
	if err != nil {
		return nil, err
	}
	ws := &tenancyv1alpha1.Workspace{
		TypeMeta:   metav1.TypeMeta{APIVersion: tenancyv1alpha1.SchemeGroupVersion.String(), Kind: "Workspace"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       tenancyv1alpha1.WorkspaceSpec{Type: typ},
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ws)
	if err != nil {
		return nil, fmt.Errorf("encoding workspace %q: %w", name, err)
	}
	obj, err := workspaces.Create(ctx, &unstructured.Unstructured{Object: content}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating workspace %q in %q: %w", name, parent, err)
	}
	created := &tenancyv1alpha1.Workspace{}
	if err := fromUnstructured(obj.UnstructuredContent(), created); err != nil {
		return nil, err
	}
	return created, nil
}

// checkAccess asks the workspace at path for its API discovery, which the
// server answers only to users who may enter the workspace. A workspace that
// is not ready answers 503 with Retry-After: that is an answer too, not to be
// retried.
func (s *server) checkAccess(ctx context.Context, path string) error {
	client, err := discovery.NewDiscoveryClientForConfigAndClient(s.configFor(path), s.client)
	if err != nil {
		return fmt.Errorf("discovery client of workspace %q: %w", path, err)
	}
	return client.RESTClient().Get().AbsPath("/api").MaxRetries(0).Do(ctx).Error()
}

// fromUnstructured converts an object the dynamic client read into its type.
func fromUnstructured(content map[string]any, into any) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(content, into); err != nil {
		return fmt.Errorf("decoding %T: %w", into, err)
	}
	return nil
}
