package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"

	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
	kcpclientset "github.com/kcp-dev/sdk/client/clientset/versioned/cluster"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The kubeconfig cluster and context that address the current workspace, and
// the context (with, if it used the current cluster, a cluster) that holds the
// one used before. kcp's plugin uses these names; sharing them lets either
// plugin pick up where the other left off.
const (
	currentName  = "workspace.kcp.io/current"
	previousName = "workspace.kcp.io/previous"
)

// kubeconfigEdit changes the current workspace in the kubeconfig files the
// flags select.
type kubeconfigEdit struct {
	config clientcmd.ClientConfig
	// starting is the kubeconfig as loaded, which the edit starts from.
	starting    *clientcmdapi.Config
	client      *kcpclientset.ClusterClientset
	out, errOut io.Writer
}

// write saves config to the files it was loaded from.
func (k *kubeconfigEdit) write(config *clientcmdapi.Config) error {
	if err := clientcmd.ModifyConfig(k.config.ConfigAccess(), *config, true); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}

// commit points the current context at the workspace at server, keeps the
// context used before as the previous one, warns about unresolved permission
// claims in the new workspace and prints it with its type, if known.
//
// The current context is copied, not changed, so that a context the user made
// keeps addressing what it did: the copy and a copy of its cluster become
// "workspace.kcp.io/current".
func (k *kubeconfigEdit) commit(ctx context.Context, currentContext *clientcmdapi.Context, server *url.URL, short bool, typ *tenancyv1alpha1.WorkspaceTypeReference) error {
	config := k.starting.DeepCopy()
	oldCluster, ok := k.starting.Clusters[currentContext.Cluster]
	if !ok {
		return fmt.Errorf("cluster %q not found in kubeconfig", currentContext.Cluster)
	}
	newCluster := *oldCluster
	newCluster.Server = server.String()
	config.Clusters[currentName] = &newCluster
	newContext := *currentContext
	newContext.Cluster = currentName
	config.Contexts[currentName] = &newContext

	previous := currentContext
	// The current cluster is about to be overwritten: the previous context
	// gets a copy of it.
	if currentContext.Cluster == currentName {
		previous = currentContext.DeepCopy()
		previous.Cluster = previousName
		config.Clusters[previousName] = oldCluster
	}
	config.Contexts[previousName] = previous
	config.CurrentContext = currentName
	if err := k.write(config); err != nil {
		return err
	}
	k.warnUnresolvedClaims(ctx, server.String())
	return printWorkspace(k.out, server.String(), short, typ)
}

// swapContexts makes the previous context current and the current one
// previous, moving the clusters "workspace.kcp.io/current" and
// "workspace.kcp.io/previous" with them, and returns the new server URL. It
// checks nothing with the server: going back needs no permission.
func (k *kubeconfigEdit) swapContexts(ctx context.Context, currentContext *clientcmdapi.Context) (string, error) {
	previous, ok := k.starting.Contexts[previousName]
	if !ok {
		return "", errors.New("no previous workspace found in kubeconfig")
	}
	config := k.starting.DeepCopy()
	current := currentContext.DeepCopy()
	if current.Cluster == currentName {
		cluster, ok := k.starting.Clusters[current.Cluster]
		if !ok {
			return "", fmt.Errorf("cluster %q not found in kubeconfig", current.Cluster)
		}
		current.Cluster = previousName
		config.Clusters[previousName] = cluster
	}
	if previous.Cluster == previousName {
		cluster, ok := k.starting.Clusters[previous.Cluster]
		if !ok {
			return "", fmt.Errorf("cluster %q not found in kubeconfig", previous.Cluster)
		}
		previous = previous.DeepCopy()
		previous.Cluster = currentName
		config.Clusters[currentName] = cluster
	}
	config.Contexts[currentName] = previous
	config.Contexts[previousName] = current
	config.CurrentContext = currentName
	if err := k.write(config); err != nil {
		return "", err
	}
	server := config.Clusters[previous.Cluster].Server
	k.warnUnresolvedClaims(ctx, server)
	return server, nil
}

// contextRequest asks for a kubeconfig context of a workspace.
type contextRequest struct {
	// name of the context and its cluster; empty means the current path.
	name string
	// server of the new cluster; empty means the current context's.
	server string
	// overwrite allows replacing an existing context of that name.
	overwrite bool
	// keepCurrent leaves the current context current.
	keepCurrent bool
}

// createContext adds a context and cluster named r.name, copies of the
// current ones, and says so.
func (o *options) createContext(config clientcmd.ClientConfig, starting *clientcmdapi.Config, r contextRequest) error {
	raw, err := config.RawConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	currentContext, ok := raw.Contexts[raw.CurrentContext]
	if !ok {
		return fmt.Errorf("current context %q is not found in kubeconfig", raw.CurrentContext)
	}
	currentCluster, ok := raw.Clusters[currentContext.Cluster]
	if !ok {
		return fmt.Errorf("current cluster %q is not found in kubeconfig", currentContext.Cluster)
	}
	_, current, err := parseClusterURL(currentCluster.Server)
	if err != nil {
		return fmt.Errorf("current URL %q does not point to a workspace", currentCluster.Server)
	}
	name := r.name
	if name == "" {
		name = current.String()
	}
	_, existed := starting.Contexts[name]
	if existed && !r.overwrite {
		return fmt.Errorf("context %q already exists in kubeconfig, use --overwrite to update it", name)
	}

	edited := starting.DeepCopy()
	cluster := *currentCluster
	if r.server != "" {
		cluster.Server = r.server
	}
	edited.Clusters[name] = &cluster
	context := *currentContext
	context.Cluster = name
	edited.Contexts[name] = &context
	edited.CurrentContext = name
	if r.keepCurrent {
		edited.CurrentContext = raw.CurrentContext
	}
	if err := clientcmd.ModifyConfig(config.ConfigAccess(), *edited, true); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}

	verb := "Created"
	if existed {
		verb = "Updated"
	}
	if r.keepCurrent || starting.CurrentContext == name {
		_, err = fmt.Fprintf(o.out, "%s context %q.\n", verb, name)
	} else {
		_, err = fmt.Fprintf(o.out, "%s context %q and switched to it.\n", verb, name)
	}
	return err
}
