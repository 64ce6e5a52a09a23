package main

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// previousName names the kubeconfig cluster and context that hold the
// workspace entered before the current one.
const previousName = "workspace.warren.dev/previous"

// kubeconfig is the user's kubeconfig as loaded from its files, to read the
// current workspace from and to write a new one to.
type kubeconfig struct {
	access *clientcmd.PathOptions
	config *clientcmdapi.Config
}

// loadKubeconfig loads the file explicitPath names or, if it is empty, the
// files $KUBECONFIG or ~/.kube/config name.
func loadKubeconfig(explicitPath string) (*kubeconfig, error) {
	if explicitPath != "" {
		// clientcmd takes a missing file for an empty kubeconfig.
		if _, err := os.Stat(explicitPath); err != nil {
			return nil, fmt.Errorf("loading kubeconfig: %w", err)
		}
	}
	access := clientcmd.NewDefaultPathOptions()
	access.LoadingRules.ExplicitPath = explicitPath
	config, err := access.GetStartingConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	return &kubeconfig{access: access, config: config}, nil
}

// currentContext returns the current context and the cluster it uses.
func (k *kubeconfig) currentContext() (*clientcmdapi.Context, *clientcmdapi.Cluster, error) {
	name := k.config.CurrentContext
	if name == "" {
		return nil, nil, errors.New("the kubeconfig has no current context")
	}
	context, ok := k.config.Contexts[name]
	if !ok {
		return nil, nil, fmt.Errorf("the kubeconfig has no context %q, its current context", name)
	}
	cluster, ok := k.config.Clusters[context.Cluster]
	if !ok {
		return nil, nil, fmt.Errorf("the kubeconfig has no cluster %q, which context %q uses", context.Cluster, name)
	}
	return context, cluster, nil
}

// current returns the workspace the current context addresses.
func (k *kubeconfig) current() (location, error) {
	_, cluster, err := k.currentContext()
	if err != nil {
		return location{}, err
	}
	return parseServerURL(cluster.Server)
}

// previous returns the workspace entered before the current one.
func (k *kubeconfig) previous() (location, error) {
	cluster, ok := k.config.Clusters[previousName]
	if !ok {
		return location{}, errors.New("there is no previous workspace")
	}
	return parseServerURL(cluster.Server)
}

// switchTo makes target the current workspace, and the current one the
// previous, and writes the kubeconfig: only the current cluster and the
// previous cluster and context change.
func (k *kubeconfig) switchTo(target location) error {
	context, cluster, err := k.currentContext()
	if err != nil {
		return err
	}
	if context.Cluster == previousName {
		return fmt.Errorf("the current context uses the cluster %q, which kubectl ws overwrites: use another context", previousName)
	}
	previousContext := context.DeepCopy()
	previousContext.Cluster = previousName
	k.config.Clusters[previousName] = cluster.DeepCopy()
	k.config.Contexts[previousName] = previousContext
	cluster.Server = target.serverURL()
	if err := clientcmd.ModifyConfig(k.access, *k.config, true); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}

// restConfig returns the client configuration of the current context, with
// the paths of files it names resolved against the kubeconfig naming them.
func (k *kubeconfig) restConfig() (*rest.Config, error) {
	resolved := k.config.DeepCopy()
	if err := clientcmd.ResolveLocalPaths(resolved); err != nil {
		return nil, fmt.Errorf("resolving kubeconfig paths: %w", err)
	}
	config, err := clientcmd.NewDefaultClientConfig(*resolved, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("client configuration of the current context: %w", err)
	}
	return config, nil
}
