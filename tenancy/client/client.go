// Package client reads, creates and waits for workspaces through a server's
// API, for benchmarks and tests. It addresses every workspace of one server by
// path, with one set of credentials, through kcp's generated cluster-aware
// clientset, exactly as a kcp client would.
package client

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
	kcpclientset "github.com/kcp-dev/sdk/client/clientset/versioned/cluster"
)

// Client is a client of the workspaces of one server.
type Client struct {
	// Base is the server's URL without any /clusters/ path.
	Base   string
	config *rest.Config
	kcp    kcpclientset.ClusterInterface
}

// New returns a client with config's credentials; config's host may address
// any workspace of the server.
func New(config *rest.Config) (*Client, error) {
	base, _, _ := strings.Cut(strings.TrimSuffix(config.Host, "/"), "/clusters/")
	c := rest.CopyConfig(config)
	c.Host = base
	// kcp's types have no protobuf form.
	c.ContentType, c.AcceptContentTypes = runtime.ContentTypeJSON, runtime.ContentTypeJSON
	kcp, err := kcpclientset.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("kcp client of %s: %w", base, err)
	}
	return &Client{Base: base, config: config, kcp: kcp}, nil
}

// Config returns the client configuration of the workspace at path (or of the
// logical cluster of that name).
func (c *Client) Config(path string) *rest.Config {
	config := rest.CopyConfig(c.config)
	config.Host = c.Base + "/clusters/" + path
	return config
}

// KCP returns the kcp clientset the client uses, for calls it does not wrap.
func (c *Client) KCP() kcpclientset.ClusterInterface { return c.kcp }

// Get reads the workspace name in the workspace at parent.
func (c *Client) Get(ctx context.Context, parent, name string) (*tenancyv1alpha1.Workspace, error) {
	ws, err := c.kcp.TenancyV1alpha1().Workspaces().Cluster(logicalcluster.NewPath(parent)).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("getting workspace %q in %q: %w", name, parent, err)
	}
	return ws, nil
}

// List reads the workspaces in the workspace at path.
func (c *Client) List(ctx context.Context, path string) ([]tenancyv1alpha1.Workspace, error) {
	list, err := c.kcp.TenancyV1alpha1().Workspaces().Cluster(logicalcluster.NewPath(path)).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing workspaces in %q: %w", path, err)
	}
	return list.Items, nil
}

// Create creates the workspace name of type typ (the parent type's default if
// nil) in the workspace at parent, and returns it as stored.
func (c *Client) Create(ctx context.Context, parent, name string, typ *tenancyv1alpha1.WorkspaceTypeReference) (*tenancyv1alpha1.Workspace, error) {
	ws := &tenancyv1alpha1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: tenancyv1alpha1.WorkspaceSpec{Type: typ}}
	created, err := c.kcp.TenancyV1alpha1().Workspaces().Cluster(logicalcluster.NewPath(parent)).Create(ctx, ws, metav1.CreateOptions{})
	if err != nil {
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
		return err == nil && ws.Status.Phase == corev1alpha1.LogicalClusterPhaseReady, err
	})
	if err != nil {
		if ws != nil {
			return nil, fmt.Errorf("workspace %q in %q is %s: %w", name, parent, ws.Status.Phase, err)
		}
		return nil, err
	}
	return ws, nil
}
