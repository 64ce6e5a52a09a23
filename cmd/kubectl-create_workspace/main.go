// Command kubectl-create_workspace is the kubectl plugin "kubectl create
// workspace", as kcp's of the same name. kubectl finds it by the binary name
// kubectl-create-workspace: build it under that name.
package main

import "github.com/warren-dev/warren/cmd/kubectl-ws/plugin"

func main() { plugin.Main(plugin.NewCreateWorkspaceCommand) }
