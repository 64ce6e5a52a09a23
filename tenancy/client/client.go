// Package client reads, creates and waits for workspaces through a warren
// server's API, for tools (kubectl ws, benchmarks) and tests. It addresses every
// workspace of one server by path, with one set of credentials.
package client

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	corev1alpha1 "github.com/warren-dev/warren/tenancy/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/warren-dev/warren/tenancy/apis/tenancy/v1alpha1"
)

var codecs = func() serializer.CodecFactory {
	s := runtime.NewScheme()
	if err := tenancyv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := corev1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return serializer.NewCodecFactory(s)
}()

// Client is a client of the workspaces of one server.
type Client struct {
	// Base is the server's URL without any /clusters/ path.
	Base   string
	config *rest.Config
	http   *http.Client
}

// New returns a client with config's credentials; config's host may address
// any workspace of the server.
func New(config *rest.Config) (*Client, error) {
	base, _, _ := strings.Cut(strings.TrimSuffix(config.Host, "/"), "/clusters/")
	hc, err := rest.HTTPClientFor(config)
	if err != nil {
		return nil, fmt.Errorf("HTTP client for %s: %w", base, err)
	}
	return &Client{Base: base, config: config, http: hc}, nil
}

// Config returns the client configuration of the workspace at path (or of the
// logical cluster of that name).
func (c *Client) Config(path string) *rest.Config {
	config := rest.CopyConfig(c.config)
	config.Host = c.Base + "/clusters/" + path
	return config
}

// workspaces returns a REST client of the tenancy API in the workspace at path.
func (c *Client) workspaces(path string) (*rest.RESTClient, error) {
	config := c.Config(path)
	config.GroupVersion = &tenancyv1alpha1.SchemeGroupVersion
	config.APIPath = "/apis"
	config.NegotiatedSerializer = codecs.WithoutConversion()
	// warren's own types have no protobuf form.
	config.ContentType, config.AcceptContentTypes = runtime.ContentTypeJSON, runtime.ContentTypeJSON
	rc, err := rest.RESTClientForConfigAndClient(config, c.http)
	if err != nil {
		return nil, fmt.Errorf("client of workspace %q: %w", path, err)
	}
	return rc, nil
}

// Get reads the workspace name in the workspace at parent.
func (c *Client) Get(ctx context.Context, parent, name string) (*tenancyv1alpha1.Workspace, error) {
	rc, err := c.workspaces(parent)
	if err != nil {
		return nil, err
	}
	ws := &tenancyv1alpha1.Workspace{}
	if err := rc.Get().Resource("workspaces").Name(name).Do(ctx).Into(ws); err != nil {
		return nil, fmt.Errorf("getting workspace %q in %q: %w", name, parent, err)
	}
	return ws, nil
}

// List reads the workspaces in the workspace at path.
func (c *Client) List(ctx context.Context, path string) ([]tenancyv1alpha1.Workspace, error) {
	rc, err := c.workspaces(path)
	if err != nil {
		return nil, err
	}
	list := &tenancyv1alpha1.WorkspaceList{}
	if err := rc.Get().Resource("workspaces").Do(ctx).Into(list); err != nil {
		return nil, fmt.Errorf("listing workspaces in %q: %w", path, err)
	}
	return list.Items, nil
}

// Create creates the workspace name of type typ (the parent type's default if
// empty) in the workspace at parent, and returns it as stored.
func (c *Client) Create(ctx context.Context, parent, name string, typ corev1alpha1.TypeReference) (*tenancyv1alpha1.Workspace, error) {
	rc, err := c.workspaces(parent)
	if err != nil {
		return nil, err
	}
	ws := &tenancyv1alpha1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: tenancyv1alpha1.WorkspaceSpec{Type: typ}}
	created := &tenancyv1alpha1.Workspace{}
	if err := rc.Post().Resource("workspaces").Body(ws).Do(ctx).Into(created); err != nil {
		return nil, fmt.Errorf("creating workspace %q in %q: %w", name, parent, err)
	}
	return created, nil
}

// WaitReady reads the workspace name in parent every interval until it is
// Ready, and returns it; it gives up when ctx ends.
func (c *Client) WaitReady(ctx context.Context, parent, name string, interval time.Duration) (*tenancyv1alpha1.Workspace, error) {
	var ws *tenancyv1alpha1.Workspace
	err := wait.PollUntilContextCancel(ctx, interval, true, func(ctx context.Context) (bool, error) {
		var err error
		ws, err = c.Get(ctx, parent, name)
		return err == nil && ws.Status.Phase == corev1alpha1.Ready, err
	})
	if err != nil {
		if ws != nil {
			return nil, fmt.Errorf("workspace %q in %q is %s: %w", name, parent, ws.Status.Phase, err)
		}
		return nil, err
	}
	return ws, nil
}
