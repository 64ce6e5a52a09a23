package plugin

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/kcp-dev/logicalcluster/v3"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// clustersPrefix precedes a workspace path in a server URL.
const clustersPrefix = "/clusters/"

// parseClusterURL splits a server URL into the URL before its first
// /clusters/ (scheme, host and any proxy prefix) and the workspace path after
// it. A URL without /clusters/ addresses no workspace.
func parseClusterURL(host string) (*url.URL, logicalcluster.Path, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, logicalcluster.Path{}, fmt.Errorf("parsing server URL %q: %w", host, err)
	}
	i := strings.Index(u.Path, clustersPrefix)
	if i < 0 {
		return nil, logicalcluster.Path{}, fmt.Errorf("current cluster URL %s is not pointing to a workspace", u)
	}
	segment, _, _ := strings.Cut(u.Path[i+len(clustersPrefix):], "/")
	p := logicalcluster.NewPath(segment)
	if !p.IsValid() {
		return nil, logicalcluster.Path{}, fmt.Errorf("invalid cluster name: %q", p)
	}
	base := *u
	base.Path = u.Path[:i]
	return &base, p, nil
}

// withPath returns base with the request path of the workspace p appended,
// the server URL by which clients reach p.
func withPath(base *url.URL, p logicalcluster.Path) *url.URL {
	u := *base
	u.Path = path.Join(u.Path, p.RequestPath())
	return &u
}

// resolveDots turns an absolute path that may hold "." (stay) and ".." (up)
// segments into one without them; upErr is the error of going above the top.
func resolveDots(p string, upErr error) (logicalcluster.Path, error) {
	var resolved logicalcluster.Path
	for _, segment := range strings.Split(p, ":") {
		switch segment {
		case ".":
		case "..":
			if resolved.Empty() {
				return logicalcluster.Path{}, upErr
			}
			resolved, _ = resolved.Parent()
		default:
			resolved = resolved.Join(segment)
		}
	}
	return resolved, nil
}

// absolute turns the argument naming a workspace into an absolute path: a
// leading ":" makes it absolute already, anything else is relative to current.
func absolute(current logicalcluster.Path, arg string) string {
	if rest, ok := strings.CutPrefix(arg, ":"); ok {
		return rest
	}
	return current.Join(arg).String()
}

// typeString writes a workspace type as kcp's messages do: path:name, or the
// bare name when the path is empty.
func typeString(t *tenancyv1alpha1.WorkspaceTypeReference) string {
	if t == nil {
		// kcp's plugin assumes the server always sets the type; an answer
		// without one prints as an empty type instead of crashing.
		return ""
	}
	return logicalcluster.NewPath(t.Path).Join(string(t.Name)).String()
}

// workspaceOverride is the kubeconfig with the server URL pointed at the
// workspace the -w flag names, resolved against the current workspace.
type workspaceOverride struct {
	delegate  clientcmd.ClientConfig
	workspace string
}

func (w *workspaceOverride) RawConfig() (clientcmdapi.Config, error) { return w.delegate.RawConfig() }

func (w *workspaceOverride) Namespace() (string, bool, error) { return w.delegate.Namespace() }

func (w *workspaceOverride) ConfigAccess() clientcmd.ConfigAccess { return w.delegate.ConfigAccess() }

func (w *workspaceOverride) ClientConfig() (*rest.Config, error) {
	config, err := w.delegate.ClientConfig()
	if err != nil {
		return nil, err
	}
	config = rest.CopyConfig(config)
	base, current, err := parseClusterURL(config.Host)
	if err != nil {
		return nil, fmt.Errorf("current URL %q does not point to a workspace: %w", config.Host, err)
	}
	p, err := resolveDots(absolute(current, w.workspace), errors.New("cannot go above the root workspace"))
	if err != nil {
		return nil, err
	}
	if !p.IsValid() {
		return nil, fmt.Errorf("invalid workspace path: %s", w.workspace)
	}
	config.Host = withPath(base, p).String()
	return config, nil
}
