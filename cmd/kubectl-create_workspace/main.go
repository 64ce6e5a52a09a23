// Command kubectl-create_workspace is the kubectl plugin "kubectl create
// workspace", as kcp's of the same name. kubectl finds it by the binary name
// kubectl-create-workspace: build it under that name.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/warren-dev/warren/cmd/kubectl-ws/plugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := plugin.NewCreateWorkspaceCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	// cobra has printed the error.
	if err != nil {
		os.Exit(1)
	}
}
