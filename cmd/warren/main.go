// Command warren is the multi-tenant control plane: one binary that serves many
// logical clusters from SQL storage, and the tools to operate it.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "warren:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "warren",
		Short:         "A Kubernetes-style control plane serving many logical clusters from SQL",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newStartCommand(), newProxyCommand(), newMigrateCommand(), newVersionCommand())
	return root
}
