// Command kubectl-ws is the kubectl plugin "kubectl ws": it shows, enters,
// creates and draws workspaces of warren (or kcp), as kcp's plugin of the same
// name does. The commands live in package plugin, which kubectl-create_workspace
// shares.
package main

import "github.com/warren-dev/warren/cmd/kubectl-ws/plugin"

func main() { plugin.Main(plugin.NewWorkspaceCommand) }
