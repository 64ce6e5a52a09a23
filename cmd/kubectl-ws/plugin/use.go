package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/kcp-dev/sdk/apis/core"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
	kcpclientset "github.com/kcp-dev/sdk/client/clientset/versioned/cluster"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	rootNote = "Note: Using 'root:' to define an absolute path is no longer supported. Instead, use ':root' to specify an absolute path.\n"
	homeNote = "Note: 'kubectl ws' now matches 'cd' semantics: go to home workspace. 'kubectl ws -' to go back. 'kubectl ws .' to print current workspace.\n"
)

// newClient returns a client of kcp's APIs on the server config addresses.
// Its host has no path: every request names its workspace by /clusters/<path>
// from the host's root, as kcp's plugin does (so a proxy prefix before
// /clusters/ in the kubeconfig is not used for requests).
func newClient(config clientcmd.ClientConfig) (*kcpclientset.ClusterClientset, error) {
	rc, err := config.ClientConfig()
	if err != nil {
		return nil, err
	}
	rc = rest.CopyConfig(rc)
	u, err := url.Parse(rc.Host)
	if err != nil {
		return nil, fmt.Errorf("parsing server URL %q: %w", rc.Host, err)
	}
	u.Path = ""
	rc.Host = u.String()
	rc.UserAgent = rest.DefaultKubernetesUserAgent()
	client, err := kcpclientset.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("creating kcp client: %w", err)
	}
	return client, nil
}

// use enters the workspace arg names, as "kubectl ws <arg>" does; short
// prints only the path.
func (o *options) use(ctx context.Context, arg string, short bool) (err error) {
	name := arg
	// An unquoted ~ the shell expanded becomes ~ again; a path may be written
	// with slashes.
	if home, _ := o.homeDir(); home != "" && strings.HasPrefix(name, home) {
		name = "~" + strings.TrimPrefix(name, home)
	}
	name = strings.ReplaceAll(name, "/", ":")
	root := core.RootCluster.String()
	if name == root || strings.HasPrefix(name, root+":") && !short {
		name = ":" + name
		fmt.Fprint(o.errOut, rootNote)
	}
	if name == "" {
		if !short {
			defer func() {
				if err == nil {
					fmt.Fprint(o.errOut, homeNote)
				}
			}()
		}
		name = "~"
	}

	config := o.clientConfig()
	starting, err := config.ConfigAccess().GetStartingConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	client, err := newClient(config)
	if err != nil {
		return err
	}
	raw, err := config.RawConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	k := &kubeconfigEdit{config: config, starting: starting, client: client, out: o.out, errOut: o.errOut}
	currentContext, ok := starting.Contexts[raw.CurrentContext]
	if !ok {
		return fmt.Errorf("current %q context not found", raw.CurrentContext)
	}

	switch {
	case name == "-":
		host, err := k.swapContexts(ctx, currentContext)
		if err != nil {
			return err
		}
		return printWorkspace(o.out, host, short, nil)
	case name == ":":
		base, current, err := currentWorkspace(config)
		if err != nil {
			return err
		}
		return k.commit(ctx, currentContext, withPath(base, topOf(current)), short, nil)
	case name == ".":
		return o.printCurrent(short)
	case name == "~" || strings.HasPrefix(name, "~:"):
		home, err := homePath(ctx, client)
		if err != nil {
			return err
		}
		name = ":" + home.String() + strings.TrimPrefix(name, "~")
	}

	base, current, err := currentWorkspace(config)
	if err != nil {
		return err
	}
	name = absolute(current, name)
	target, err := resolveDots(name, errors.New("cannot go up from root"))
	if err != nil {
		return err
	}
	if !target.IsValid() {
		return fmt.Errorf("invalid workspace path: %s", arg)
	}
	typ, err := checkEnterable(ctx, client, target, name)
	if err != nil {
		return err
	}
	return k.commit(ctx, currentContext, withPath(base, target), short, typ)
}

// checkEnterable says whether the user may enter target, and returns its
// type if its Workspace could be read. name is target as the user wrote it,
// dots unresolved: kcp reads the Workspace and words its errors by that.
//
// Discovery in the workspace is the access check, as a user may be let into
// a workspace whose parent they may not read. The Workspace in the parent
// only tells "not found" from "denied" and gives the type.
func checkEnterable(ctx context.Context, client *kcpclientset.ClusterClientset, target logicalcluster.Path, name string) (*tenancyv1alpha1.WorkspaceTypeReference, error) {
	groups, err := client.Cluster(target).Discovery().ServerGroups()
	if err != nil && !apierrors.IsForbidden(err) {
		return nil, err
	}
	denied := apierrors.IsForbidden(err) || len(groups.Groups) == 0

	var typ *tenancyv1alpha1.WorkspaceTypeReference
	notFound := false
	if target == core.RootCluster.Path() {
		typ = &tenancyv1alpha1.WorkspaceTypeReference{Name: "root"}
	} else if parent, base := logicalcluster.NewPath(name).Split(); base != "" {
		// Any error but 404 (e.g. 403 in the parent) leaves the type unknown.
		ws, err := client.Cluster(parent).TenancyV1alpha1().Workspaces().Get(ctx, base, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			notFound = true
		case err == nil:
			typ = ws.Spec.Type
		}
	}
	switch {
	case denied && notFound:
		return nil, fmt.Errorf("workspace %q not found", name)
	case denied:
		return nil, fmt.Errorf("access to workspace %q denied", name)
	}
	return typ, nil
}

// homePath asks the server for the user's home workspace, which it creates on
// first use, and returns its path.
func homePath(ctx context.Context, client *kcpclientset.ClusterClientset) (logicalcluster.Path, error) {
	home, err := client.Cluster(core.RootCluster.Path()).TenancyV1alpha1().Workspaces().Get(ctx, "~", metav1.GetOptions{})
	if err != nil {
		return logicalcluster.Path{}, err
	}
	u, err := url.Parse(home.Spec.URL)
	if err != nil {
		return logicalcluster.Path{}, fmt.Errorf("invalid home workspace URL %q: %w", home.Spec.URL, err)
	}
	return logicalcluster.NewPath(strings.TrimPrefix(u.Path, clustersPrefix)), nil
}

// topOf returns the first segment of p: root, or the cluster a path starts from.
func topOf(p logicalcluster.Path) logicalcluster.Path {
	for {
		parent, ok := p.Parent()
		if !ok {
			return p
		}
		p = parent
	}
}

// currentWorkspace returns the server URL before /clusters/ and the path of
// the workspace the kubeconfig addresses.
func currentWorkspace(config clientcmd.ClientConfig) (*url.URL, logicalcluster.Path, error) {
	rc, err := config.ClientConfig()
	if err != nil {
		return nil, logicalcluster.Path{}, err
	}
	base, current, err := parseClusterURL(rc.Host)
	if err != nil {
		return nil, logicalcluster.Path{}, fmt.Errorf("current URL %q does not point to a workspace", rc.Host)
	}
	return base, current, nil
}

// printCurrent prints the workspace the kubeconfig addresses, without asking
// the server.
func (o *options) printCurrent(short bool) error {
	rc, err := o.clientConfig().ClientConfig()
	if err != nil {
		return err
	}
	return printWorkspace(o.out, rc.Host, short, nil)
}

// printWorkspace tells which workspace the server URL host addresses, with
// its type if known; short prints only the path, for shell prompts.
func printWorkspace(out io.Writer, host string, short bool, typ *tenancyv1alpha1.WorkspaceTypeReference) error {
	_, p, err := parseClusterURL(host)
	switch {
	case err != nil && short:
		return nil
	case err != nil:
		_, err = fmt.Fprintf(out, "Current workspace is the URL %q.\n", host)
		return err
	case short:
		_, err = fmt.Fprintf(out, "%s\n", p)
		return err
	}
	message := fmt.Sprintf("Current workspace is '%s'", p)
	if typ != nil {
		message += fmt.Sprintf(" (type %s)", typeString(typ))
	}
	_, err = fmt.Fprintln(out, message+".")
	return err
}
